"""The submit path's plain-body check agrees with ActionSubmitInputSerializer wherever it answers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ValidationError

from approvals.api.serializers import ActionSubmitInputSerializer, _submission_plain, submission_validated
from tests.helpers import submission_body

EDGES = st.sampled_from(["", " ", "a ", " a", "a\n", "\u00a0a", "a\x1f", "x\x00y", "x\ud800y", "ok", "é ✓"])
AWKWARD_TEXT = st.one_of(
    EDGES,
    EDGES,
    st.text(max_size=8),
    st.builds(lambda n: "a" * n, st.sampled_from([199, 200, 201, 299, 300, 301, 499, 500, 501, 2000, 2001, 5001])),
)
WORDS = st.text(st.characters(categories=["L", "N", "P"]), min_size=1, max_size=12)
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), AWKWARD_TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=6,
)
OBJECTS = st.dictionaries(st.text(max_size=4), JSON_VALUES, max_size=3)
EVIDENCE_ITEMS = st.fixed_dictionaries({"title": WORDS}, optional={"url": WORDS, "excerpt": st.just("")})
VALID_BODIES = st.fixed_dictionaries(
    {
        "action_type": st.sampled_from(["search_web", "send_external_email", "a.b:c-d_1", "a" * 200]),
        "params": OBJECTS,
        "summary": WORDS,
    },
    optional={
        "evidence": st.lists(EVIDENCE_ITEMS, max_size=3),
        "confidence": st.one_of(st.none(), st.floats(0, 1), st.sampled_from([0, 1])),
        "context": OBJECTS,
        "callback_url": st.just(""),
    },
)
ABSENT = st.just(...)
# A field of the body (or of its first evidence item), and what to put there instead (ABSENT: remove it).
TEXT_CHANGES = st.tuples(
    st.sampled_from(["action_type", "summary", "callback_url", "unknown"]), st.one_of(ABSENT, AWKWARD_TEXT)
)
CHANGES = st.one_of(
    TEXT_CHANGES,
    TEXT_CHANGES,
    st.tuples(st.sampled_from(["params", "context", "evidence", "unknown"]), st.one_of(ABSENT, JSON_VALUES)),
    st.tuples(
        st.just("confidence"),
        st.one_of(
            ABSENT,
            st.booleans(),
            st.integers(min_value=-2, max_value=2),
            st.integers(min_value=10**300, max_value=10**310),
            st.floats(),
            st.sampled_from([1.0000001, -0.0, "0.5"]),
        ),
    ),
    st.tuples(st.just("evidence"), st.lists(st.builds(dict, title=st.just("t")), min_size=49, max_size=52)),
    st.tuples(
        st.sampled_from(["evidence.title", "evidence.url", "evidence.excerpt", "evidence.source"]),
        st.one_of(ABSENT, AWKWARD_TEXT, JSON_VALUES),
    ),
)


def changed(body: dict, changes: list) -> dict:
    body = {**body, "evidence": [dict(item) for item in body.get("evidence", [{"title": "t"}])]}
    for name, value in changes:
        target = body
        if name.startswith("evidence."):
            items = body.get("evidence")
            if not (isinstance(items, list) and items and isinstance(items[0], dict)):
                continue
            target, name = items[0], name.removeprefix("evidence.")
        if value is ...:
            target.pop(name, None)
        else:
            target[name] = value
    return body


BODIES = st.builds(changed, VALID_BODIES, st.lists(CHANGES, max_size=2))


def serializer_result(data) -> dict | None:
    serializer = ActionSubmitInputSerializer(data=data)
    if not serializer.is_valid():
        return None
    validated = dict(serializer.validated_data)
    validated["evidence"] = [dict(item) for item in validated["evidence"]]
    return validated


@settings(max_examples=1000, deadline=None)
@given(BODIES)
def test_where_it_answers_it_answers_as_the_serializer_does(body):
    plain = _submission_plain(body)

    if plain is not None:
        assert serializer_result(body) == plain
        assert [type(v) for v in plain.values()] == [type(v) for v in serializer_result(body).values()]


def test_a_typical_body_is_answered_without_the_serializer():
    body = submission_body(action_type="search_web")

    plain = _submission_plain(body)

    assert plain is not None
    assert plain == serializer_result(body)
    assert _submission_plain({**body, "confidence": 1}) == {**plain, "confidence": 1.0}
    assert _submission_plain({"action_type": "a", "params": {}, "summary": "s"}) == serializer_result(
        {"action_type": "a", "params": {}, "summary": "s"}
    )


def test_what_it_leaves_to_the_serializer_gets_the_serializers_errors():
    body = submission_body(action_type=" search_web", confidence=True, unknown=1)
    assert _submission_plain(body) is None

    try:
        submission_validated(body)
    except ValidationError as exc:
        errors = exc.detail
    else:
        raise AssertionError("an invalid body was accepted")

    assert {name: [e.code for e in errors[name]] for name in errors} == {
        "unknown": ["unknown_field"],
        "confidence": ["invalid_type"],
    }
