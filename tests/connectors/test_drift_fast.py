"""Drift detection's level-at-a-time comparison (``compare``) answers exactly what the plain walk
(``compare_walk``) and the ordered shape memo (``compare_ordered``) answer: for arbitrary JSON in
long arrays (values at one path grouped by shape), for real FHIR bundles and v2 pages changed in
many places, and where two values at one path give different findings under one key (which one
the walk keeps depends on its order); ``check`` raises and reports the same through either."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from tests.connectors.test_drift_memo import FUZZ, changed, json_values
from tests.connectors.wire_models import WIRE_MODELS, model_id, model_keys

from carebridge.connectors.carecloud import drift, drift_compare
from carebridge.connectors.carecloud.drift import DriftReport
from carebridge.connectors.carecloud.drift_compare import (
    Finding,
    compare,
    compare_ordered,
    compare_walk,
)
from carebridge.connectors.carecloud.wire import fhir as fw
from carebridge.connectors.carecloud.wire import v2
from carebridge.errors import UnexpectedPayload


def same(payload: Any, model: type[BaseModel], *, many: bool = False) -> list[Finding]:
    """The three comparisons' findings, asserted equal (the memoised two twice: the second
    from the memo), and equal field by field (``Finding`` equality is by value)."""
    walked = compare_walk(payload, model, many=many)
    for _ in range(2):
        assert compare(payload, model, many=many) == walked
        assert compare_ordered(payload, model, many=many) == walked
    return walked


# --- arbitrary JSON, in arrays long enough to be grouped ---------------------------------------


@pytest.mark.parametrize("model", WIRE_MODELS, ids=model_id)
@settings(FUZZ, max_examples=8)
@given(data=st.data())
def test_long_arrays_of_any_json_compare_as_the_walk_does(
    model: type[BaseModel], data: Any
) -> None:
    keys = st.sampled_from([*model_keys(model), "x.y", "[]", ""])
    keyed = st.dictionaries(keys, json_values, max_size=8)
    # few distinct objects, repeated and shuffled: groups of one shape, of several, of one each
    pool = data.draw(st.lists(keyed | json_values, min_size=1, max_size=4))
    items = data.draw(st.lists(st.sampled_from(pool), min_size=5, max_size=30))
    same(items, model, many=True)
    same({**(items[0] if isinstance(items[0], dict) else {}), "entry": items}, model)


NESTED = [v2.PatientShowResponse, v2.AppointmentEnvelope, fw.PatientBundle, fw.Patient]
"""Models of several levels of nested models and arrays of them."""


@pytest.mark.parametrize("model", NESTED, ids=model_id)
@settings(FUZZ, max_examples=15)
@given(data=st.data())
def test_any_nested_json_compares_as_the_walk_does(model: type[BaseModel], data: Any) -> None:
    keyed = st.dictionaries(st.sampled_from(model_keys(model)), json_values, max_size=8)
    nested = st.recursive(
        keyed,
        lambda inner: (
            st.lists(inner, max_size=8)
            | st.dictionaries(st.sampled_from(model_keys(model)), inner, max_size=6)
        ),
        max_leaves=20,
    )
    payload = data.draw(nested | st.lists(nested, max_size=8))
    same(payload, model)
    same(payload, model, many=True)


# --- real payloads, changed in several places ---------------------------------------------------


@pytest.fixture(scope="module")
def bundle(fhir: httpx.Client) -> Any:
    """The Connector's Patient search as one page (40 patients)."""
    r = fhir.get(f"{str(fhir.base_url).rstrip('/')}/Patient", params={"_count": 1000})
    assert r.status_code == 200, r.text
    payload = r.json()
    assert len(payload["entry"]) > drift_compare.FEW
    return payload


@pytest.fixture(scope="module")
def page(bundle: Any) -> Iterator[list[Any]]:
    """A v2 appointments page from another tenant (the memo tests' sandbox)."""
    from tests.connectors.harness import Sandbox

    box = Sandbox(seed=29)
    try:
        yield box.get("/v2/appointments", start_date="2026-11-01", end_date="2026-12-31")
    finally:
        box.tenant.db.close()


@FUZZ
@given(data=st.data())
def test_a_fhir_bundle_changed_in_places_compares_as_the_walk_does(bundle: Any, data: Any) -> None:
    same(bundle, fw.PatientBundle)
    same(data.draw(changed(bundle)), fw.PatientBundle)


@FUZZ
@given(data=st.data())
def test_an_appointments_page_changed_in_places_compares_as_the_walk_does(
    page: list[Any], data: Any
) -> None:
    assert same(page, v2.AppointmentEnvelope, many=True) == []
    same(data.draw(changed(page)), v2.AppointmentEnvelope, many=True)


# --- where the walk's order decides -------------------------------------------------------------


def _retyped_in_items(firsts: list[Any]) -> list[Any]:
    """A page of twelve appointments whose ``recurrence_id`` (a nullable integer) is each of
    ``firsts`` in turn, then null."""
    appointment = {
        "id": "a1",
        "start_time": "2026-11-24T09:00:00-06:00",
        "end_time": "2026-11-24T09:20:00-06:00",
        "recurrence_id": None,
    }
    values = [*firsts, *([None] * (12 - len(firsts)))]
    return [{"appointment": {**appointment, "recurrence_id": v}} for v in values]


@pytest.mark.parametrize(
    "firsts", [["r-9", True], [True, "r-9"], [[], {}, "x"], [{}, 1.5, "x", False, []]]
)
def test_a_field_retyped_differently_in_items_keeps_the_first_the_walk_meets(
    firsts: list[Any],
) -> None:
    found = same(_retyped_in_items(firsts), v2.AppointmentEnvelope, many=True)
    retyped = [f for f in found if f.path == "[].appointment.recurrence_id"]
    assert [f.actual for f in retyped] == [drift_compare.json_type(firsts[0])]


def test_an_unknown_key_of_different_types_keeps_the_first_the_walk_meets() -> None:
    items = [{"id": n, "name": "x", "extra": [n] if n == 3 else str(n)} for n in range(10)]
    assert same(items, v2.NamedRef, many=True) == [Finding("unknown", "[].extra", actual="string")]
    items[0], items[3] = items[3], items[0]
    assert same(items, v2.NamedRef, many=True) == [Finding("unknown", "[].extra", actual="array")]


def test_a_key_spelled_like_a_path_keeps_the_first_the_walk_meets() -> None:
    # ``resource.x`` at the top and ``x`` inside ``resource``: one path, two value types
    entries = [{"resource": {"id": "p", "resourceType": "Patient", "x": 1}} for _ in range(6)]
    payload = {"entry": entries, "resourceType": "Bundle", "type": "searchset", "entry[].x": "s"}
    found = same(payload, fw.PatientBundle)
    assert Finding("unknown", "entry[].resource.x", actual="integer") in found


def test_the_grouped_comparison_names_a_clash_and_the_ordered_one_answers() -> None:
    found: dict[tuple[str, str], Finding] = {}
    items = _retyped_in_items(["r-9", True])
    clash = drift_compare._batch_values(
        [items], drift_compare._array_of(v2.AppointmentEnvelope), "", True, found
    )
    assert clash
    assert compare(items, v2.AppointmentEnvelope, many=True) == compare_ordered(
        items, v2.AppointmentEnvelope, many=True
    )


# --- checks raise and report the same -----------------------------------------------------------


def _outcome(check: Any, payload: Any) -> tuple[Any, ...]:
    report = DriftReport(clock=lambda: datetime(2026, 11, 24, 15, tzinfo=UTC))
    try:
        parsed = check(payload, report)
    except UnexpectedPayload as err:
        return ("refused", err.field_path, str(err), report.as_dict())
    return ("read", parsed, report.as_dict())


@FUZZ
@given(data=st.data())
def test_checks_refuse_read_and_report_the_same_through_the_walk(
    bundle: Any, page: list[Any], data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    drifted_bundle = data.draw(changed(bundle))
    drifted_page = data.draw(changed(page))
    checks = [
        (
            lambda p, r: drift.check_as(p, fw.PatientBundle, fw.PatientKeysBundle, "GET /P", r),
            drifted_bundle,
        ),
        (lambda p, r: drift.check_list(p, v2.AppointmentEnvelope, "GET /a", r), drifted_page),
    ]
    fast = [_outcome(check, payload) for check, payload in checks]
    with monkeypatch.context() as patch:
        patch.setattr(drift, "compare", compare_walk)
        walked = [_outcome(check, payload) for check, payload in checks]
    assert fast == walked
