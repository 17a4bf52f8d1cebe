from __future__ import annotations

from countersign_client import Rejected
from countersign_client._common import refusal_for
from countersign_client.action import Action


def rejected_action(decision):
    return Action.from_json({"id": "x", "action_type": "send_email", "status": "rejected", "decision": decision})


def test_category_comes_from_the_servers_field():
    refusal = refusal_for(rejected_action({"reason_category": "wrong_data", "reason": "The amount is off"}))

    assert isinstance(refusal, Rejected)
    assert (refusal.category, refusal.reason) == ("wrong_data", "The amount is off")


def test_a_legacy_prefix_matching_the_field_is_not_repeated_in_the_reason():
    action = rejected_action({"reason_category": "unsafe", "reason": "unsafe: drops a table"})

    assert action.rejection() == ("unsafe", "drops a table")


def test_the_field_wins_over_a_different_prefix():
    action = rejected_action({"reason_category": "wrong_data", "reason": "pii: and the amount is off"})

    assert action.rejection() == ("wrong_data", "pii: and the amount is off")


def test_an_older_server_without_the_field_still_gets_the_prefix():
    action = rejected_action({"reason": "tone: too casual for legal"})

    assert action.rejection() == ("tone", "too casual for legal")


def test_an_older_server_reason_without_prefix_is_uncategorised():
    action = rejected_action({"reason": "Wrong customer"})

    assert action.rejection() == ("uncategorised", "Wrong customer")
