"""The dropped-field report's present paths, computed from the models' own slots and shared
spellings, equal the plain reading through the models' public attributes (kept here as the
reference), on real patient payloads changed in places."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from tests.connectors.harness import Sandbox

from carebridge.connectors.carecloud.mapping.v2 import present_paths
from carebridge.connectors.carecloud.wire import v2
from carebridge.connectors.carecloud.wire.v2 import V2Model

FUZZ = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def reference(model: V2Model, path: str = "") -> set[str]:
    """Every field (extras included) that carries a value, read through the public API."""
    found: set[str] = set()
    extra = model.model_extra or {}
    for name in model.model_fields_set:
        if name in type(model).model_fields:
            key, value = model.upstream_key(name), getattr(model, name)
        else:
            key, value = name, extra.get(name)
        _reference(value, f"{path}.{key}" if path else key, found)
    return found


def _reference(value: Any, path: str, found: set[str]) -> None:
    if value is None or value == "" or (isinstance(value, list | tuple | dict) and not value):
        return
    if isinstance(value, V2Model):
        found |= reference(value, path)
    elif isinstance(value, list | tuple) and any(isinstance(v, V2Model) for v in value):
        for item in value:
            _reference(item, f"{path}[]", found)
    else:
        found.add(path)


@pytest.fixture(scope="module")
def shown() -> Iterator[list[Any]]:
    box = Sandbox(seed=29)
    listed = box.get("/v2/appointments", start_date="2026-11-20", end_date="2026-11-30")
    ids = sorted({a["appointment"]["patient"]["id"] for a in listed})[:4]
    yield [box.get(f"/v2/patients/{i}") for i in ids]
    box.tenant.db.close()


values = st.none() | st.just("") | st.just("x") | st.just([]) | st.just({}) | st.integers(0, 3)


def _leaves(value: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*here, key)
            yield from _leaves(inner, (*here, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _leaves(inner, (*here, index))


def _set(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _set(value[path[0]], path[1:], new)
    return copy


@FUZZ
@given(data=st.data())
def test_present_paths_equal_the_reference(shown: list[Any], data: Any) -> None:
    payload = data.draw(st.sampled_from(shown))
    for _ in range(data.draw(st.integers(0, 6))):
        path = data.draw(st.sampled_from(list(_leaves(payload))))
        payload = _set(payload, path, data.draw(values))
    if isinstance(payload.get("patient"), dict) and data.draw(st.booleans()):
        payload = {"patient": {**payload["patient"], "extra_field": data.draw(values)}}
    try:
        wire = v2.PatientShowResponse.model_validate(payload)
    except ValidationError:
        return
    assert present_paths(wire.patient) == reference(wire.patient)
    assert present_paths(wire) == reference(wire)
