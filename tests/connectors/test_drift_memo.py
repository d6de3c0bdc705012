"""Drift detection's shape memo (``compare``) answers exactly what the plain walk over the
model's spec (``compare_walk``) answers, for arbitrary JSON and for real payloads changed in many
places at once; and it samples nothing: a drifted field in one record of hundreds is reported."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from tests.connectors.harness import Sandbox
from tests.connectors.wire_models import WIRE_MODELS, model_id, model_keys

from carebridge.connectors.carecloud import drift_compare
from carebridge.connectors.carecloud.drift import DriftReport, check, check_list, compare
from carebridge.connectors.carecloud.drift_compare import compare_walk
from carebridge.connectors.carecloud.wire import v2
from carebridge.errors import UnexpectedPayload

FUZZ = settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=6)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=16,
)


def same(payload: Any, model: type[BaseModel], *, many: bool = False) -> list[Any]:
    """The memo's findings, asserted equal to the walk's (twice: the second from the memo)."""
    walked = compare_walk(payload, model, many=many)
    assert compare(payload, model, many=many) == walked
    assert compare(payload, model, many=many) == walked
    return walked


@pytest.mark.parametrize("model", WIRE_MODELS, ids=model_id)
@settings(FUZZ, max_examples=8)
@given(data=st.data())
def test_any_json_compares_as_the_walk_does(model: type[BaseModel], data: Any) -> None:
    keyed = st.dictionaries(st.sampled_from(model_keys(model)), json_values, max_size=8)
    payload = data.draw(json_values | keyed | st.lists(keyed, max_size=3))
    same(payload, model)
    same(payload, model, many=True)


# --- real payloads, changed in several places ---------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox(seed=23)
    yield box
    box.tenant.db.close()


@pytest.fixture(scope="module")
def payloads(sandbox: Sandbox) -> dict[str, tuple[Any, type[BaseModel], bool]]:
    listed = sandbox.get("/v2/appointments", start_date="2026-11-20", end_date="2026-11-30")
    patients = sorted({a["appointment"]["patient"]["id"] for a in listed})[:3]
    shows = [sandbox.get(f"/v2/patients/{p}") for p in patients]
    return {
        "appointments": (listed[:12], v2.AppointmentEnvelope, True),
        "patient": (shows[0], v2.PatientShowResponse, False),
        "providers": (sandbox.get("/v2/providers"), v2.ProvidersResponse, False),
        "balances": (sandbox.get(f"/v2/patients/{patients[0]}/balance"), v2.BalancePayload, True),
    }


def _paths(value: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield here
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*here, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths(inner, (*here, index))


def _change(value: Any, path: tuple[Any, ...], new: Any, *, delete: bool, add: str | None) -> Any:
    """``value`` with the part at ``path`` replaced by ``new``, deleted, or (an object) given
    the extra key ``add``."""
    if not path:
        if add is not None and isinstance(value, dict):
            return {**value, add: new}
        return new
    head, rest = path[0], path[1:]
    if delete and not rest and isinstance(value, dict):
        return {k: v for k, v in value.items() if k != head}
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _change(value[head], rest, new, delete=delete, add=add)
    return copy


@st.composite
def changed(draw: Any, payload: Any) -> Any:
    """``payload`` with one to five parts retyped, removed, or given an unknown key."""
    for _ in range(draw(st.integers(1, 5))):
        paths = list(_paths(payload))
        path = draw(st.sampled_from(paths))
        how = draw(st.sampled_from(["replace", "delete", "add"]))
        new = draw(json_values)
        add = draw(st.sampled_from(["added_field", "x_new"])) if how == "add" else None
        payload = _change(payload, path, new, delete=how == "delete", add=add)
    return payload


@pytest.mark.parametrize("name", ["appointments", "patient", "providers", "balances"])
@FUZZ
@given(data=st.data())
def test_a_real_payload_changed_in_places_compares_as_the_walk_does(
    payloads: dict[str, tuple[Any, type[BaseModel], bool]], name: str, data: Any
) -> None:
    payload, model, many = payloads[name]
    assert same(payload, model, many=many) == []  # as served: no drift
    same(data.draw(changed(payload)), model, many=many)


# --- nothing is sampled ------------------------------------------------------------------------


def test_a_field_added_in_one_record_of_hundreds_is_reported(
    payloads: dict[str, tuple[Any, type[BaseModel], bool]],
) -> None:
    envelopes, _, _ = payloads["appointments"]
    page = [envelopes[n % len(envelopes)] for n in range(300)]
    report = DriftReport()
    check_list(page, v2.AppointmentEnvelope, "GET /v2/appointments", report)  # shapes memoised
    page[217] = {"appointment": {**page[217]["appointment"], "telehealth_url": "added"}}
    check_list(page, v2.AppointmentEnvelope, "GET /v2/appointments", report)
    seen = report.endpoint("GET /v2/appointments")
    assert seen is not None
    assert [(o.kind, o.path, o.actual, o.count) for o in seen.observations.values()] == [
        ("unknown", "[].appointment.telehealth_url", "string", 1)
    ]


def test_a_field_retyped_in_one_record_of_hundreds_is_breaking(
    payloads: dict[str, tuple[Any, type[BaseModel], bool]],
) -> None:
    envelopes, _, _ = payloads["appointments"]
    page = [envelopes[n % len(envelopes)] for n in range(300)]
    check_list(page, v2.AppointmentEnvelope, "GET /v2/appointments")
    # a nullable integer, null in every other record, a string in this one
    page[217] = {"appointment": {**page[217]["appointment"], "recurrence_id": "r-9"}}
    report = DriftReport()
    with pytest.raises(UnexpectedPayload) as err:
        check_list(page, v2.AppointmentEnvelope, "GET /v2/appointments", report)
    assert err.value.field_path == "[].appointment.recurrence_id"
    seen = report.endpoint("GET /v2/appointments")
    assert seen is not None
    assert seen.breaking == 1


def test_a_required_field_missing_in_one_record_is_breaking(
    payloads: dict[str, tuple[Any, type[BaseModel], bool]],
) -> None:
    envelopes, _, _ = payloads["appointments"]
    page = [envelopes[n % len(envelopes)] for n in range(200)]
    check_list(page, v2.AppointmentEnvelope, "GET /v2/appointments")
    odd = {k: v for k, v in page[150]["appointment"].items() if k != "start_time"}
    page[150] = {"appointment": odd}
    with pytest.raises(UnexpectedPayload) as err:
        check_list(page, v2.AppointmentEnvelope, "GET /v2/appointments")
    assert err.value.field_path == "[].appointment.start_time"


def test_an_upstream_of_ever_new_keys_is_compared_in_full_with_a_bounded_memo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(drift_compare, "PLANS_PER_MODEL", 4)
    monkeypatch.setattr(drift_compare, "_object_plans", {})
    items = [{"id": n, "name": "x", f"key_{n}": n} for n in range(50)]
    assert same(items, v2.NamedRef, many=True) == [
        drift_compare.Finding("unknown", f"[].key_{n}", actual="integer")
        for n in sorted(range(50), key=str)
    ]
    assert len(drift_compare._object_plans[v2.NamedRef]) == 4
    assert check({"id": 1, "name": None}, v2.NamedRef, "GET /x").id == 1
