"""The connector's wire models, found by walking their modules, for the property tests that
run every model (the fuzzed parsers, the memoised drift comparison)."""

from __future__ import annotations

import inspect

from pydantic import BaseModel

from carebridge.connectors.carecloud.wire import fhir as fw
from carebridge.connectors.carecloud.wire import portal, v2


def _wire_models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    for module in (v2, fw, portal):
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseModel) and value.__module__ == module.__name__:
                found.append(value)
    return found


WIRE_MODELS = _wire_models()
"""Every pydantic model defined in the v2, FHIR and portal wire modules."""


def model_keys(model: type[BaseModel]) -> list[str]:
    """The keys a payload of ``model`` may carry (its aliases), sorted; ``id`` for none."""
    return sorted({f.alias or name for name, f in model.model_fields.items()}) or ["id"]


def model_id(model: type[BaseModel]) -> str:
    """A test id: the wire module's name and the model's."""
    return f"{model.__module__.split('.')[-1]}.{model.__name__}"
