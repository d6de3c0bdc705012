"""Issue 14's "done when": schemathesis against the live app (in process, over ASGI, wired to an
emulated tenant) with a key holding every scope passes its default checks, response-schema
conformance included, on every operation of ``/openapi.json``, with no server error.

The run is short and derandomized (a fixed number of examples per operation, the same every
run), so it fits the default suite (``make test``). A conformance check is only as strong as
the schemas it checks against, so the document's success answers must be typed: a 2xx JSON
answer described as an open object would pass any body.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import schemathesis
import stamina
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from tests.support.api import ADMIN_TOKEN, running

from carebridge.api.main import build, shell
from carebridge.services.keys import SCOPES

EXAMPLES = 6
"""Examples per operation: about 50 operations, positive and negative, under a minute."""

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
]
"""Schemathesis' default checks, named so none can be turned off by a default changing."""

# What a valid request may still be refused with beyond schemathesis' own allowance, each because
# the rule crosses parameters or lives upstream (a window over 31 days, a slot not free, a reused
# key, a sign-in locked): 400, 422 and 423.
ACCEPTED = ["2xx", "3xx", "400", "401", "403", "404", "409", "422", "423", "429", "5xx"]
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {name: {"enabled": True} for name in CHECKS}
        | {"positive_data_acceptance": {"enabled": True, "expected-statuses": ACCEPTED}},
        "generation": {"mode": "all", "deterministic": True},
    }
)
EVERY_SCOPE = ",".join(sorted(SCOPES))


def _app(holder: dict[str, Any]) -> FastAPI:
    """carebridge over a fresh two-practice sandbox, started by the first lifespan and kept
    for the process (schemathesis ends and restarts the lifespan around loading the schema)."""

    @asynccontextmanager
    async def lifespan(outer: FastAPI) -> AsyncIterator[None]:
        if "key" not in holder:
            folder = tempfile.mkdtemp(prefix="carebridge-contract-")
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            stack = AsyncExitStack()
            live = await stack.enter_async_context(running(f"{folder}/store.db", patients=6))
            stamina.set_testing(False)  # `running` turned it on for the whole process
            holder["stack"] = stack  # closed by the process's exit
            holder["key"] = await live.key("ten_a", EVERY_SCOPE, "every_scope")
            outer.mount("/", build(live.deployment, admin_token=ADMIN_TOKEN))
        yield

    return shell(lifespan)


HOLDER: dict[str, Any] = {}
# Loaded at collection: schemathesis' lazy `from_fixture` does not run under pytest 9.
schema = schemathesis.openapi.from_asgi("/openapi.json", _app(HOLDER), config=CONFIG)


def _call(case: Any) -> None:
    headers = dict(case.headers or {})
    negative = case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER)
    if not (negative and "authorization" not in {h.lower() for h in headers}):
        token = ADMIN_TOKEN if case.path.startswith("/tenants") else HOLDER["key"]
        headers |= {"Authorization": f"Bearer {token}"}
    case.call_and_validate(headers=headers)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_passes_the_default_checks_with_a_key_holding_every_scope(
    case: Any,
) -> None:
    _call(case)


def _document() -> dict[str, Any]:
    raw = schema.raw_schema
    assert isinstance(raw, dict)
    return raw


def _resolve(node: Any, document: dict[str, Any]) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = document
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _open_object(node: Any, document: dict[str, Any]) -> bool:
    """Whether a schema accepts any object: no properties, or extra ones allowed untyped."""
    node = _resolve(node, document)
    if not isinstance(node, dict):
        return True
    if any(key in node for key in ("allOf", "anyOf", "oneOf")):
        return False
    if node.get("type") == "array":
        return _open_object(node.get("items", {}), document)
    if node.get("type") not in (None, "object"):
        return False
    return not node.get("properties") or node.get("additionalProperties") is True


def test_every_success_answer_of_the_document_is_a_typed_schema() -> None:
    document = _document()
    untyped: list[str] = []
    operations = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            operations += 1
            for status, answer in operation.get("responses", {}).items():
                if not status.startswith("2"):
                    continue
                for media, content in (answer.get("content") or {}).items():
                    if "json" in media and _open_object(content.get("schema", {}), document):
                        untyped.append(f"{method.upper()} {path} {status}")
    assert operations >= 40
    assert not untyped


def test_every_operation_documents_its_problems_as_problem_json() -> None:
    document = _document()
    missing: list[str] = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            errors = {s: a for s, a in operation["responses"].items() if s[0] in "45"}
            if not errors or any(
                "application/problem+json" not in (a.get("content") or {}) for a in errors.values()
            ):
                missing.append(f"{method.upper()} {path}")
    assert not missing
