"""Pure helpers of the v2 surface: Link header, money, dates and ids."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carecloud_sandbox.v2 import common


def test_link_header_orders_first_prev_last_next_with_a_trailing_comma() -> None:
    header = common.link_header("http://h", "/v2/appointments", {"start_date": "2026-11-24"}, 2, 3)
    assert header == (
        '<http://h/v2/appointments?start_date=2026-11-24&page=1>; rel="first", '
        '<http://h/v2/appointments?start_date=2026-11-24&page=1>; rel="prev", '
        '<http://h/v2/appointments?start_date=2026-11-24&page=3>; rel="last", '
        '<http://h/v2/appointments?start_date=2026-11-24&page=3>; rel="next", '
    )


def test_link_header_omits_prev_on_the_first_page_and_next_on_the_last() -> None:
    first = common.link_header("http://h", "/p", {}, 1, 1)
    assert first == '<http://h/p?page=1>; rel="first", <http://h/p?page=1>; rel="last", '


def test_link_header_replaces_the_page_parameter() -> None:
    header = common.link_header("http://h/", "/p", {"page": "2"}, 2, 2)
    assert "page=2&page" not in header
    assert header.count("page=") == 3


@given(st.integers(min_value=-(10**9), max_value=10**9))
def test_money_round_trips_through_parse_money(cents: int) -> None:
    text = common.money(cents)
    assert text is not None
    assert common.parse_money(text) == cents
    assert text.split(".")[1].__len__() == 2


@pytest.mark.parametrize(
    ("cents", "text"), [(2500, "25.0"), (2550, "25.5"), (2555, "25.55"), (0, "0.0")]
)
def test_ruby_decimal_renders_like_bigdecimal_to_s(cents: int, text: str) -> None:
    assert common.ruby_decimal(cents) == text


@pytest.mark.parametrize("bad", ["abc", "1.234", "", "1e5", None, True])
def test_parse_money_refuses_non_amounts(bad: object) -> None:
    assert common.parse_money(bad) is None


def test_local_iso_renders_practice_local_time_with_its_offset() -> None:
    tz = common.zone("America/Chicago")
    assert common.local_iso("2026-11-24T15:00:00Z", tz) == "2026-11-24T09:00:00-06:00"
    assert common.local_iso("2026-07-01T15:00:00Z", tz) == "2026-07-01T10:00:00-05:00"


def test_parse_timestamp_takes_naive_times_as_practice_local() -> None:
    tz = common.zone("America/Chicago")
    assert common.parse_timestamp("2026-11-24T09:00:00", tz) == datetime(
        2026, 11, 24, 15, tzinfo=UTC
    )
    assert common.parse_timestamp("2026-11-24T09:00:00-05:00", tz) == datetime(
        2026, 11, 24, 14, tzinfo=UTC
    )


@pytest.mark.parametrize("bad", ["2026-13-01T00:00:00", "yesterday", 5, "0001-01-01T00:00:00"])
def test_parse_timestamp_refuses_garbage_and_out_of_range(bad: object) -> None:
    with pytest.raises(ValueError):
        common.parse_timestamp(bad, common.zone("UTC"))


def test_local_day_bounds_cover_whole_local_days() -> None:
    lo, hi = common.local_day_bounds(
        date(2026, 11, 24), date(2026, 11, 24), common.zone("America/Chicago")
    )
    assert (lo, hi) == ("2026-11-24T06:00:00Z", "2026-11-25T06:00:00Z")


def test_ids_and_guids() -> None:
    assert common.is_guid("37d480d1-fe7d-4600-bbb1-bd79367e418d")
    assert not common.is_guid("37d480d1fe7d4600bbb1bd79367e418d")
    assert common.parse_int_id("42") == 42
    assert common.parse_int_id("-1") is None
    assert common.parse_int_id(True) is None
    assert common.parse_id_list("1, 2") == [1, 2]
    with pytest.raises(ValueError):
        common.parse_id_list("1,x")


def test_parse_page_defaults_to_one() -> None:
    assert common.parse_page(None) == 1
    assert common.parse_page("x") == 1
    assert common.parse_page("3") == 3
