"""CEL conditions and the order of evaluation. Pure: no database."""

from __future__ import annotations

import pytest

from policies.evaluation import (
    CompiledPolicy,
    ConditionError,
    PolicyTable,
    RequestFacts,
    compile_condition,
    evaluate,
)


def table(*policies):
    return PolicyTable.build(list(policies), version=3)


def facts(action_type="execute_financial_action", **kwargs):
    return RequestFacts(action_type=action_type, **kwargs)


BIG_REFUNDS = CompiledPolicy(
    id=1, action_pattern="execute_financial_action", mode="approve", condition="params.amount > 1000"
)
SMALL_REFUNDS = CompiledPolicy(id=2, action_pattern="execute_financial_action", mode="auto", priority=-1)


@pytest.mark.parametrize(
    ("amount", "mode", "policy_id"), [(20_000, "approve", 1), (20, "auto", 2), (1000.5, "approve", 1)]
)
def test_amount_condition_routes_big_refunds_to_a_human(amount, mode, policy_id):
    verdict = evaluate(table=table(BIG_REFUNDS, SMALL_REFUNDS), request=facts(params={"amount": amount}))

    assert (verdict.mode, verdict.policy_id) == (mode, policy_id)


@pytest.mark.parametrize(("to", "mode"), [("ceo@customer.org", "approve"), ("colleague@example.com", "auto")])
def test_email_outside_the_company_needs_approval(to, mode):
    t = table(
        CompiledPolicy(
            id=1, action_pattern="send_external_email", mode="approve", condition='!params.to.endsWith("@example.com")'
        ),
        CompiledPolicy(id=2, action_pattern="send_*", mode="auto"),
    )

    assert evaluate(table=t, request=facts("send_external_email", params={"to": to})).mode == mode


@pytest.mark.parametrize(("confidence", "mode"), [(0.5, "approve"), (0.95, "auto")])
def test_low_confidence_asks_a_human(confidence, mode):
    t = table(
        CompiledPolicy(id=1, action_pattern="*", mode="approve", condition="confidence < 0.8", priority=5),
        CompiledPolicy(id=2, action_pattern="classify_ticket", mode="auto"),
    )

    assert evaluate(table=t, request=facts("classify_ticket", confidence=confidence)).mode == mode


def test_condition_sees_agent_name_tags_and_action_type():
    t = table(
        CompiledPolicy(
            id=1,
            action_pattern="*",
            mode="block",
            condition='agent.name == "intern-bot" && "untrusted" in agent.tags && action_type.startsWith("delete_")',
        )
    )

    blocked = evaluate(table=t, request=facts("delete_user", agent_name="intern-bot", agent_tags=("untrusted",)))
    trusted = evaluate(table=t, request=facts("delete_user", agent_name="intern-bot", agent_tags=("staff",)))

    assert blocked.mode == "block"
    assert trusted.is_default


def test_condition_can_read_context():
    t = table(CompiledPolicy(id=1, action_pattern="*", mode="auto", condition='context.env == "staging"'))

    assert evaluate(table=t, request=facts(context={"env": "staging"})).mode == "auto"


@pytest.mark.parametrize("source", ["params.amount >", "foo(", "confidence < 0.8 &&"])
def test_condition_that_does_not_compile_is_refused_with_the_compiler_message(source):
    with pytest.raises(ConditionError, match="Syntax error"):
        compile_condition(source)


def test_condition_with_an_unknown_variable_is_refused():
    with pytest.raises(ConditionError, match="Unknown variable amount"):
        compile_condition("amount > 1000")


def test_comprehension_variables_are_allowed():
    assert compile_condition('agent.tags.exists(t, t == "finance")') is not None


def test_compiled_policy_refuses_a_bad_condition():
    with pytest.raises(ConditionError):
        CompiledPolicy(id=1, action_pattern="x", mode="auto", condition="1 +")


def test_missing_field_makes_the_policy_not_match_and_is_recorded():
    verdict = evaluate(table=table(BIG_REFUNDS, SMALL_REFUNDS), request=facts(params={"currency": "EUR"}))

    assert (verdict.mode, verdict.policy_id) == ("auto", 2)
    assert [(s.policy_id, s.why) for s in verdict.skipped] == [(1, "condition_error")]
    assert "amount" in verdict.skipped[0].detail
    assert "condition error" in verdict.reason


def test_wrong_type_falls_through_to_the_fail_closed_default():
    t = table(
        CompiledPolicy(id=1, action_pattern="execute_financial_action", mode="auto", condition="params.amount < 10")
    )

    verdict = evaluate(table=t, request=facts(params={"amount": "ten"}))

    assert verdict.mode == "approve"
    assert verdict.is_default
    assert verdict.reason_code == "default"
    assert verdict.errors[0].policy_id == 1
    assert "fails closed" in verdict.reason


def test_missing_confidence_is_a_runtime_error_not_a_match():
    t = table(CompiledPolicy(id=1, action_pattern="x", mode="auto", condition="confidence > 0.9"))

    verdict = evaluate(table=t, request=facts("x", confidence=None))

    assert verdict.is_default
    assert verdict.skipped[0].why == "condition_error"


def test_non_boolean_condition_does_not_match():
    t = table(CompiledPolicy(id=1, action_pattern="x", mode="auto", condition="params.note"))

    verdict = evaluate(table=t, request=facts("x", params={"note": "yes"}))

    assert verdict.is_default
    assert "not a boolean" in verdict.skipped[0].detail


def test_false_condition_is_explained_as_skipped():
    verdict = evaluate(table=table(BIG_REFUNDS, SMALL_REFUNDS), request=facts(params={"amount": 5}))

    assert verdict.skipped[0].why == "condition_false"
    assert "Skipped #1 'execute_financial_action' (condition false)" in verdict.reason
    assert verdict.as_dict()["skipped"][0]["policy_id"] == 1


def test_order_is_priority_then_exact_before_glob_then_id():
    t = table(
        CompiledPolicy(id=4, action_pattern="pay_*", mode="block"),
        CompiledPolicy(id=3, action_pattern="pay_vendor", mode="log"),
        CompiledPolicy(id=2, action_pattern="pay_vendor", mode="auto"),
        CompiledPolicy(id=1, action_pattern="*", mode="approve", priority=-5),
        CompiledPolicy(id=9, action_pattern="pay_?endor", mode="approve", priority=1),
    )

    assert [p.id for p in t.candidates("pay_vendor")] == [9, 2, 3, 4, 1]


def test_reason_names_the_condition_that_held():
    verdict = evaluate(table=table(BIG_REFUNDS), request=facts(params={"amount": 5000}))

    assert "condition `params.amount > 1000` holds" in verdict.reason
    assert verdict.table_version == 3


def test_glob_index_only_finds_globs_that_match():
    policies = [CompiledPolicy(id=i, action_pattern=f"family{i}_*", mode="auto") for i in range(1, 200)]
    policies.append(CompiledPolicy(id=500, action_pattern="*_report", mode="log"))
    t = table(*policies)

    assert [p.id for p in t.candidates("family17_delete")] == [17]
    assert [p.id for p in t.candidates("family17_report")] == [17, 500]
    assert t.candidates("unrelated") == []


def test_out_of_scope_action_is_blocked_whatever_the_table_says():
    t = table(CompiledPolicy(id=1, action_pattern="delete_user", mode="auto"))

    verdict = evaluate(table=t, request=facts("delete_user", scopes=(("search_*", "summarize_document"),)))

    assert verdict.mode == "block"
    assert verdict.reason_code == "out_of_scope"
    assert verdict.reason.startswith("out_of_scope")


def test_in_scope_action_is_evaluated_normally():
    t = table(CompiledPolicy(id=1, action_pattern="search_web", mode="auto"))

    verdict = evaluate(table=t, request=facts("search_web", scopes=(("search_*",), ())))

    assert (verdict.mode, verdict.policy_id) == ("auto", 1)


def test_winning_policy_carries_quorum_and_routing():
    t = table(
        CompiledPolicy(
            id=1, action_pattern="x", mode="approve", required_approvals=2, reviewer_group_id=7, on_expiry="escalate"
        )
    )

    verdict = evaluate(table=t, request=facts("x"))

    assert (verdict.required_approvals, verdict.reviewer_group_id, verdict.on_expiry) == (2, 7, "escalate")
