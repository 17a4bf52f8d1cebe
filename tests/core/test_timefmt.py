"""core.timefmt.parse_utc: what comes in as a timestamp leaves as a UTC datetime or a ValueError."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.timefmt import parse_utc


def test_an_offset_beyond_what_postgresql_takes_is_converted_to_utc():
    assert parse_utc("2026-01-01T18:22:00+18:22") == datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "text", ["", "yesterday", "2026-01-01T00:00:00", "2026-02-30T00:00:00Z", "0001-01-01T00:00:00+01:00"]
)
def test_anything_but_a_representable_zoned_timestamp_is_a_value_error(text):
    with pytest.raises(ValueError):
        parse_utc(text)
