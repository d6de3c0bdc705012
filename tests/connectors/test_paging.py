"""Pagination of the three surfaces."""

from __future__ import annotations

from carebridge.connectors.carecloud.paging import (
    fhir_next,
    parse_link_header,
    portal_next,
    v2_next,
)


def test_v2_link_header_with_its_trailing_comma() -> None:
    header = (
        '<https://x.invalid/v2/appointments?page=1>; rel="first", '
        '<https://x.invalid/v2/appointments?page=2>; rel="prev", '
        '<https://x.invalid/v2/appointments?page=9>; rel="last", '
        '<https://x.invalid/v2/appointments?page=4>; rel="next",'
    )
    links = parse_link_header(header)
    assert links == {
        "first": "https://x.invalid/v2/appointments?page=1",
        "prev": "https://x.invalid/v2/appointments?page=2",
        "last": "https://x.invalid/v2/appointments?page=9",
        "next": "https://x.invalid/v2/appointments?page=4",
    }
    assert v2_next(header) == links["next"]


def test_v2_last_page_has_no_next() -> None:
    assert v2_next('<https://x.invalid/v2/p?page=1>; rel="first", ') is None
    assert v2_next(None) is None
    assert v2_next("") is None
    assert parse_link_header("garbage, ,") == {}


def test_fhir_next_link() -> None:
    bundle = {"link": [{"relation": "self", "url": "a"}, {"relation": "next", "url": "b"}]}
    assert fhir_next(bundle) == "b"
    assert fhir_next({"link": [{"relation": "self", "url": "a"}]}) is None
    assert fhir_next({}) is None


def test_portal_page_numbers() -> None:
    assert portal_next({"page": 1, "totalPages": 3}) == 2
    assert portal_next({"page": 3, "totalPages": 3}) is None
    assert portal_next({"page": "1", "totalPages": 3}) is None
