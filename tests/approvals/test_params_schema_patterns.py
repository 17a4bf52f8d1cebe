"""Patterns in an agent's params schema run on RE2: linear time, so an edit can never stall the gateway."""

from __future__ import annotations

import threading

import pytest

from approvals.params_schema import params_problems, schema_problems

EVIL = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^(a+)+$"}}}


def test_a_catastrophic_backtracking_pattern_is_answered_at_once():
    # Python's re takes longer than the age of the universe on this; RE2 is linear.
    outcome: dict = {}
    worker = threading.Thread(
        target=lambda: outcome.setdefault("problems", params_problems(EVIL, {"code": "a" * 5000 + "!"}))
    )
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "pattern matching did not finish: backtracking regex engine in use"
    assert outcome["problems"] == [{"path": "/code", "message": f"{'a' * 5000 + '!'!r} does not match '^(a+)+$'"}]
    assert params_problems(EVIL, {"code": "aaaa"}) == []


@pytest.mark.parametrize(
    ("pattern", "feature"),
    [(r"^(a)\1$", "backreference"), (r"^(?=a)", "lookahead"), (r"(?<!x)y", "lookbehind")],
)
def test_patterns_re2_cannot_run_are_refused_when_the_schema_is_registered(pattern, feature):
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": pattern}}}

    [problem] = schema_problems(schema)

    assert problem["path"] == "/properties/code/pattern"
    assert "RE2" in problem["message"], feature


def test_pattern_properties_match_keys_with_re2():
    schema = {
        "type": "object",
        "patternProperties": {"^x-[a-z]+$": {"type": "integer"}},
    }
    assert schema_problems(schema) == []
    assert params_problems(schema, {"x-count": 3, "other": "free"}) == []
    assert params_problems(schema, {"x-count": "three"}) == [
        {"path": "/x-count", "message": "'three' is not of type 'integer'"}
    ]

    bad = {"type": "object", "patternProperties": {r"(\w)\1": {}}}
    assert schema_problems(bad)[0]["path"] == "/patternProperties/(\\w)\\1"
