"""Usage in CEL conditions, evaluated purely (issue 13): the calls, their validation, their values."""

from __future__ import annotations

import pytest

from policies.evaluation import CompiledPolicy, ConditionError, PolicyTable, RequestFacts, compile_condition, evaluate
from policies.usage import UsageQuery, usage_rewrite


class FakeUsage:
    """Answers every query from a dict keyed by its label, and records what it was asked."""

    def __init__(self, values: dict[str, float]) -> None:
        self.values = values
        self.asked: list[str] = []

    def usage(self, query: UsageQuery) -> float:
        self.asked.append(query.label())
        return self.values[query.label()]


def table(*policies: CompiledPolicy) -> PolicyTable:
    return PolicyTable.build(list(policies))


def refund(amount, **facts) -> RequestFacts:
    return RequestFacts(action_type="issue_refund", params={"amount": amount}, agent_name="billing-bot", **facts)


BUDGET = CompiledPolicy(
    id=1,
    action_pattern="issue_refund",
    mode="approve",
    priority=10,
    condition='usage.sum("params.amount", "24h") + params.amount > 500',
)
LOOPING = CompiledPolicy(
    id=2, action_pattern="issue_refund", mode="block", priority=20, condition='usage.count("1m") > 20'
)
OTHERWISE = CompiledPolicy(id=3, action_pattern="issue_refund", mode="auto")


@pytest.mark.parametrize(
    ("source", "queries"),
    [
        ('usage.count("1h") > 20', [UsageQuery("agent", "count", 3600)]),
        ("usage.count('90s') > 1", [UsageQuery("agent", "count", 90)]),
        ('usage.all.count("10m") > 3', [UsageQuery("all", "count", 600)]),
        ('usage.sum("params.amount", "24h") > 1', [UsageQuery("agent", "sum", 86400, "params.amount")]),
        ('usage.all.sum("params.order.total", "7d") > 1', [UsageQuery("all", "sum", 7 * 86400, "params.order.total")]),
        ('usage.count("1h") > 2 && usage.count("1h") < 9', [UsageQuery("agent", "count", 3600)]),
        ('params.note == "usage.count(\\"1h\\")"', []),
        ("params.usage > 1 && context.usage == 'x'", []),
    ],
)
def test_usage_calls_are_found_outside_string_literals(source, queries):
    assert list(usage_rewrite(source)[1]) == queries
    assert compile_condition(source) is not None


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ('usage.count("1 hour") > 1', "not a duration"),
        ('usage.count("91d") > 1', "longer than 90 days"),
        ('usage.count("0s") > 1', "not a duration"),
        ("usage.count(params.window) > 1", "literal arguments"),
        ('usage.sum("amount", "1h") > 1', "a field of params"),
        ('usage.sum("params.amount") > 1', "a field and a window"),
        ('usage.count("1h", "2h") > 1', "one argument"),
        ('usage.max("1h") > 1', "literal arguments"),
        ("usage > 1", "literal arguments"),
    ],
)
def test_a_usage_call_that_cannot_be_read_is_refused_when_the_policy_is_saved(source, says):
    with pytest.raises(ConditionError, match=says):
        compile_condition(source)


def test_a_budget_lets_amounts_through_until_the_days_sum_would_pass_it():
    budget = table(BUDGET, OTHERWISE)
    assert evaluate(table=budget, request=refund(100), usage=FakeUsage({BUDGET_SUM: 400})).mode == "auto"
    over = evaluate(table=budget, request=refund(101), usage=FakeUsage({BUDGET_SUM: 400}))
    assert over.mode == "approve"
    assert over.usage == ((BUDGET_SUM, 400),)
    assert over.budget_exceeded
    assert 'Usage: usage.sum("params.amount", "24h") = 400.' in over.reason


BUDGET_SUM = 'usage.sum("params.amount", "24h")'


def test_a_sum_adds_like_to_like_whether_the_amount_is_whole_or_fractional():
    budget = table(BUDGET, OTHERWISE)
    # A whole amount meets a fractional history: the sum is rounded up (never under-counted) to stay an int.
    whole = evaluate(table=budget, request=refund(100), usage=FakeUsage({BUDGET_SUM: 400.5}))
    assert whole.mode == "approve" and not whole.errors
    fractional = evaluate(table=budget, request=refund(99.5), usage=FakeUsage({BUDGET_SUM: 400}))
    assert fractional.mode == "auto" and not fractional.errors


def test_a_looping_agent_is_blocked_and_its_usage_is_read_once_per_query():
    loop = table(LOOPING, BUDGET, OTHERWISE)
    reader = FakeUsage({'usage.count("1m")': 21, BUDGET_SUM: 0})
    verdict = evaluate(table=loop, request=refund(10), usage=reader)
    assert verdict.mode == "block" and verdict.budget_exceeded
    assert reader.asked == ['usage.count("1m")']  # the lower-priority budget was never tried


def test_usage_is_not_read_for_policies_that_are_not_tried():
    reader = FakeUsage({})
    exact_first = CompiledPolicy(id=9, action_pattern="issue_refund", mode="auto", priority=100)
    assert evaluate(table=table(exact_first, BUDGET), request=refund(1000), usage=reader).mode == "auto"
    assert reader.asked == []


def test_usage_that_cannot_be_read_fails_the_verdict_instead_of_skipping_the_budget():
    with pytest.raises(RuntimeError, match="reads usage"):
        evaluate(table=table(BUDGET, OTHERWISE), request=refund(1))

    class Broken:
        def usage(self, query):
            raise ConnectionError("database unavailable")

    with pytest.raises(ConnectionError):
        evaluate(table=table(BUDGET, OTHERWISE), request=refund(1), usage=Broken())


def test_a_usage_policy_that_lets_a_request_through_is_not_a_budget_exceeded():
    within = CompiledPolicy(
        id=4, action_pattern="issue_refund", mode="auto", priority=30, condition='usage.count("1h") < 5'
    )
    verdict = evaluate(table=table(within), request=refund(1), usage=FakeUsage({'usage.count("1h")': 1}))
    assert verdict.mode == "auto" and verdict.usage and not verdict.budget_exceeded


def test_the_table_lists_the_usage_queries_an_action_type_may_need():
    loop = table(LOOPING, BUDGET, OTHERWISE)
    assert {query.label() for query in loop.usage_queries("issue_refund")} == {'usage.count("1m")', BUDGET_SUM}
    assert loop.usage_queries("search_web") == ()
