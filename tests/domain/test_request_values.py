"""The value types of what a request names: calendar dates, RFC 3339 instants and window
bounds are text within 1900-2199, never numbers; instants whose UTC conversion over- or
underflows are a ValueError (a 422 at the API), not an OverflowError."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from pydantic import BaseModel, ValidationError

from carebridge.domain.values import (
    Instant,
    RequestBound,
    RequestDay,
    RequestInstant,
    parse_bound,
    parse_day,
    parse_instant,
    to_utc,
)


class Asked(BaseModel):
    day: RequestDay | None = None
    moment: RequestInstant | None = None
    bound: RequestBound | None = None


class Stored(BaseModel):
    at: Instant


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-14))),
    ],
)
def test_an_instant_whose_utc_conversion_overflows_is_a_value_error(moment: datetime) -> None:
    with pytest.raises(ValueError):
        to_utc(moment)
    with pytest.raises(ValidationError):
        Stored(at=moment)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01T15:00:00Z", datetime(2026, 12, 1, 15, tzinfo=UTC)),
        ("2026-12-01t15:00:00z", datetime(2026, 12, 1, 15, tzinfo=UTC)),
        ("2026-12-01 10:00:00-05:00", datetime(2026, 12, 1, 15, tzinfo=UTC)),
        ("2026-12-01T15:00:00.250+00:00", datetime(2026, 12, 1, 15, 0, 0, 250000, tzinfo=UTC)),
    ],
)
def test_rfc3339_instants_are_read_in_utc(text: str, expected: datetime) -> None:
    assert parse_instant(text) == expected
    assert Asked.model_validate_json(f'{{"moment": "{text}"}}').moment == expected


@pytest.mark.parametrize(
    "value",
    [
        0.5,
        1700000000,
        "0.5",
        "1700000000",
        "2026-12-01",
        "2026-12-01T15:00:00",  # naive
        "2026-12-01T15:00Z",  # RFC 3339 has seconds
        "2026-02-30T15:00:00Z",
        "2026-12-01T15:00:00+24:00",
        "1899-12-31T23:59:59Z",
        "2200-01-01T00:00:00Z",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "",
        None,
        [],
    ],
)
def test_anything_else_is_not_an_instant(value: object) -> None:
    with pytest.raises(ValueError):
        parse_instant(value)


@pytest.mark.parametrize(
    "value",
    [0, 20261201, "20261201", "2026-2-1", "2026-02-30", "1899-12-31", "2200-01-01", "9999-12-31"],
)
def test_a_day_is_yyyy_mm_dd_within_the_calendar(value: object) -> None:
    with pytest.raises(ValueError):
        parse_day(value)
    assert parse_day("1900-01-01") == date(1900, 1, 1)
    assert parse_day(date(2199, 12, 31)) == date(2199, 12, 31)


def test_a_window_bound_is_a_day_at_midnight_utc_or_an_instant() -> None:
    assert parse_bound("2026-12-01") == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_bound("2026-12-01T00:00:00-05:00") == datetime(2026, 12, 1, 5, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_bound("9999-12-31")


def test_numbers_in_json_are_refused_and_the_schema_says_text() -> None:
    for body in ('{"day": 0}', '{"moment": 0.5}', '{"bound": 1700000000}'):
        with pytest.raises(ValidationError):
            Asked.model_validate_json(body)
    schema = Asked.model_json_schema()["properties"]
    assert "RFC 3339" in str(schema["moment"])
    assert "1900-01-01 to 2199-12-31" in str(schema["day"])
