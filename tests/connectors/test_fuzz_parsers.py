"""Hypothesis over the parsers of upstream payloads: arbitrary JSON into every wire model, and
real payloads with one part replaced by arbitrary JSON into the wire models and the mappers.
The only error allowed out is the connector's typed ``UnexpectedPayload`` (drift): never an
unhandled exception."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from tests.connectors.harness import Sandbox
from tests.connectors.wire_models import WIRE_MODELS, model_id, model_keys

from carebridge.connectors.carecloud import drift
from carebridge.connectors.carecloud.mapping import fhir as f
from carebridge.connectors.carecloud.mapping import v2 as vmap
from carebridge.connectors.carecloud.mapping.common import Context
from carebridge.connectors.carecloud.wire import fhir as fw
from carebridge.connectors.carecloud.wire import portal, v2
from carebridge.errors import UnexpectedPayload

FETCHED = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
FUZZ = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["", "0", "2026-11-24", "2026-11-24T15:00:00Z", "9999-99-99", "12.5"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def shaped(model: type[BaseModel]) -> st.SearchStrategy[Any]:
    """Objects keyed by the model's own field names, with arbitrary values (past the top)."""
    return st.dictionaries(st.sampled_from(model_keys(model)), json_values, max_size=8)


def parse(model: type[BaseModel], payload: Any) -> BaseModel | None:
    """The wire model, or None when the payload is refused as drift."""
    try:
        return drift.check(payload, model, "fuzz")
    except UnexpectedPayload:
        return None


def test_the_parsers_cover_every_wire_module() -> None:
    assert {m.__module__ for m in WIRE_MODELS} == {v2.__name__, fw.__name__, portal.__name__}
    assert len(WIRE_MODELS) > 50


@pytest.mark.parametrize("model", WIRE_MODELS, ids=model_id)
@settings(FUZZ, max_examples=30)
@given(data=st.data())
def test_any_json_into_a_wire_model_is_a_model_or_drift(model: type[BaseModel], data: Any) -> None:
    payload = data.draw(json_values | shaped(model))
    parsed = parse(model, payload)
    assert parsed is None or isinstance(parsed, model)


# --- real payloads, one part replaced, through the mappers -----------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox(seed=11)
    yield box
    box.tenant.db.close()


def _paths(value: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield here
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*here, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value[:3]):
            yield from _paths(inner, (*here, index))


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


def _delete(value: Any, path: tuple[Any, ...]) -> Any:
    if len(path) == 1 and isinstance(value, dict):
        return {k: v for k, v in value.items() if k != path[0]}
    if not path or not isinstance(value, dict | list):
        return value
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _delete(value[head], rest)}
    copy = list(value)
    copy[head] = _delete(copy[head], rest)
    return copy


def mutated(payload: Any) -> st.SearchStrategy[Any]:
    """``payload`` with one part (a leaf or a subtree) replaced by arbitrary JSON, or removed."""
    paths = list(_paths(payload))
    return st.sampled_from(paths).flatmap(
        lambda path: st.one_of(
            json_values.map(lambda new: _replace(payload, path, new)),
            st.just(_delete(payload, path)),
        )
    )


def ctx(endpoint: str) -> Context:
    return Context(tenant="tnt1", surface="v2", endpoint=endpoint, fetched_at=FETCHED)


def _cases(box: Sandbox) -> dict[str, tuple[Any, type[BaseModel], Callable[[Any], list[Any]]]]:
    listed = box.get("/v2/appointments", start_date="2026-11-20", end_date="2026-11-30")
    appointments = listed[:3]
    patient = appointments[0]["appointment"]["patient"]["id"]
    return {
        "patient": (
            box.get(f"/v2/patients/{patient}"),
            v2.PatientShowResponse,
            lambda w: [vmap.map_patient(w.patient, ctx("GET /v2/patients/{id}"))],
        ),
        "providers": (
            box.get("/v2/providers"),
            v2.ProvidersResponse,
            lambda w: [vmap.map_provider(p, ctx("GET /v2/providers")) for p in w.providers],
        ),
        "locations": (
            box.get("/v2/locations"),
            v2.LocationsResponse,
            lambda w: [vmap.map_location(p, ctx("GET /v2/locations")) for p in w.locations],
        ),
        "appointments": (
            appointments,
            v2.AppointmentEnvelope,
            lambda w: [vmap.map_appointment(e.appointment, ctx("GET /v2/appointments")) for e in w],
        ),
    }


@pytest.fixture(scope="module")
def cases(sandbox: Sandbox) -> dict[str, tuple[Any, type[BaseModel], Callable[[Any], list[Any]]]]:
    return _cases(sandbox)


def _parse_many(model: type[BaseModel], payload: Any) -> Any:
    if model is v2.AppointmentEnvelope:
        return drift.check_list(payload, model, "fuzz")
    return drift.check(payload, model, "fuzz")


@pytest.mark.parametrize("name", ["patient", "providers", "locations", "appointments"])
@FUZZ
@given(data=st.data())
def test_a_real_payload_with_one_part_replaced_maps_or_is_drift(
    cases: dict[str, Any], name: str, data: Any
) -> None:
    payload, model, mapper = cases[name]
    assert mapper(_parse_many(model, payload))  # the payload as served maps
    changed = data.draw(mutated(payload))
    try:
        mapped = mapper(_parse_many(model, changed))
    except UnexpectedPayload:
        return
    assert all(m.value is not None for m in mapped)


# --- FHIR resources, one part replaced, through the FHIR mappers --------------------------------

FHIR_MAPPERS: dict[str, Callable[[Any, Context, Any], Any]] = {
    "Patient": lambda r, c, _i: [f.patient_from_fhir(r, c)],
    "Practitioner": lambda r, c, _i: [f.provider_from_fhir(r, c)],
    "Location": lambda r, c, _i: [f.location_from_fhir(r, c)],
    "Coverage": lambda r, c, i: [f.coverage_from_fhir(r, c, i)],
    "Encounter": lambda r, c, i: [f.encounter_from_fhir(r, c, i, practice_tz=UTC)],
    "Condition": lambda r, c, i: [f.problem_from_fhir(r, c, i)],
    "AllergyIntolerance": lambda r, c, i: [f.allergy_from_fhir(r, c, i)],
    "MedicationRequest": lambda r, c, i: [f.medication_from_fhir(r, c, i)],
    "Immunization": lambda r, c, i: [f.immunization_from_fhir(r, c, i)],
    "DocumentReference": lambda r, c, i: [f.document_from_fhir(r, c, i)],
    "Observation": lambda r, c, i: (
        [f.lab_from_fhir(r, c, i, order_codes={})]
        if f.is_laboratory(r)
        else list(f.vitals_from_fhir([r], c, i))
    ),
}


def fhir_ctx(resource_type: str) -> Context:
    return Context(
        tenant="tnt1", surface="fhir", endpoint=f"GET {{base}}/{resource_type}", fetched_at=FETCHED
    )


@pytest.mark.parametrize("resource_type", sorted(FHIR_MAPPERS))
@FUZZ
@given(data=st.data())
def test_a_fhir_resource_with_one_part_replaced_maps_or_is_drift(
    resources: dict[str, list[fw.Resource]],
    index: f.PatientIndex,
    resource_type: str,
    data: Any,
) -> None:
    found = resources[resource_type]
    assert found, resource_type
    resource = found[0]
    model = type(resource)
    mapper = FHIR_MAPPERS[resource_type]
    payload = resource.model_dump(mode="json", by_alias=True, exclude_none=True)
    changed = data.draw(mutated(payload))
    try:
        mapper(drift.check(changed, model, "fuzz"), fhir_ctx(resource_type), index)
    except UnexpectedPayload:
        return
