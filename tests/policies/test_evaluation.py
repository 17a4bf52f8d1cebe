"""The evaluation function is pure: these tests need no database."""

from __future__ import annotations

import pytest

from policies.evaluation import CompiledPolicy, DefaultRule, PolicyTable, RequestFacts, evaluate


def table(*policies, default=None):
    return PolicyTable.build(list(policies), default=default, version=7)


def verdict_for(t, action_type):
    return evaluate(table=t, request=RequestFacts(action_type=action_type))


def test_exact_name_matches():
    t = table(CompiledPolicy(id=1, action_pattern="search_web", mode="auto"))

    verdict = verdict_for(t, "search_web")

    assert (verdict.mode, verdict.policy_id, verdict.table_version) == ("auto", 1, 7)
    assert "Policy #1" in verdict.reason


def test_glob_matches_a_family_of_actions():
    t = table(CompiledPolicy(id=1, action_pattern="delete_*", mode="block"))

    assert verdict_for(t, "delete_user").mode == "block"
    assert verdict_for(t, "undelete_user").policy_id is None


def test_glob_question_mark_and_brackets():
    t = table(CompiledPolicy(id=1, action_pattern="send_[es]mail_v?", mode="log"))

    assert verdict_for(t, "send_email_v2").mode == "log"
    assert verdict_for(t, "send_xmail_v2").policy_id is None


def test_exact_name_beats_glob_at_equal_priority():
    t = table(
        CompiledPolicy(id=1, action_pattern="send_*", mode="block"),
        CompiledPolicy(id=2, action_pattern="send_external_email", mode="approve"),
    )

    verdict = verdict_for(t, "send_external_email")

    assert (verdict.mode, verdict.policy_id) == ("approve", 2)
    assert "outranks 1 other" in verdict.reason


def test_higher_priority_glob_beats_exact_name():
    t = table(
        CompiledPolicy(id=1, action_pattern="send_external_email", mode="auto"),
        CompiledPolicy(id=2, action_pattern="send_*", mode="block", priority=10),
    )

    assert verdict_for(t, "send_external_email").policy_id == 2


def test_lower_id_breaks_a_tie():
    t = table(
        CompiledPolicy(id=5, action_pattern="a_*", mode="auto"),
        CompiledPolicy(id=3, action_pattern="*_b", mode="block"),
    )

    assert verdict_for(t, "a_b").policy_id == 3


def test_no_match_fails_closed_to_approve_by_default():
    verdict = verdict_for(table(), "transfer_funds")

    assert verdict.mode == "approve"
    assert verdict.is_default
    assert "fails closed" in verdict.reason


def test_configured_default_can_block():
    t = table(default=DefaultRule(mode="block"))

    assert verdict_for(t, "anything").mode == "block"


@pytest.mark.parametrize("mode", ["auto", "log"])
def test_default_may_not_fail_open(mode):
    with pytest.raises(ValueError, match="fail closed"):
        DefaultRule(mode=mode)


def test_matching_is_case_sensitive():
    t = table(CompiledPolicy(id=1, action_pattern="search_web", mode="auto"))

    assert verdict_for(t, "SEARCH_WEB").policy_id is None


def test_verdict_carries_clocks_and_risk_of_the_deciding_policy():
    t = table(
        CompiledPolicy(
            id=1, action_pattern="pay", mode="approve", pending_ttl_seconds=60, approval_ttl_seconds=30, risk="critical"
        )
    )

    verdict = verdict_for(t, "pay")

    assert (verdict.pending_ttl_seconds, verdict.approval_ttl_seconds, verdict.risk) == (60, 30, "critical")


def test_unknown_mode_is_refused_when_compiling():
    with pytest.raises(ValueError):
        CompiledPolicy(id=1, action_pattern="x", mode="maybe")
