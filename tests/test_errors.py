"""The exception tree is the documented one, and errors carry what callers need."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import carebridge
from carebridge import errors


def _classes() -> dict[str, type[errors.CarebridgeError]]:
    return {
        name: cls
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.CarebridgeError)
    }


def test_every_error_class_is_drawn_in_the_module_docstring() -> None:
    doc = errors.__doc__ or ""
    missing = [name for name in _classes() if name not in doc]
    assert missing == []


@pytest.mark.parametrize(
    ("cls", "parent"),
    [
        (errors.MfaRequired, errors.AuthError),
        (errors.SessionExpired, errors.AuthError),
        (errors.AuthError, errors.UpstreamError),
        (errors.RateLimited, errors.UpstreamError),
        (errors.UnexpectedPayload, errors.UpstreamError),
        (errors.InvalidTransition, errors.DomainError),
        (errors.SlotTaken, errors.DomainError),
        (errors.SignInRefused, errors.AuthError),
        (errors.WriteUnconfirmed, errors.UpstreamError),
        (errors.NotConfigured, errors.ConfigError),
        (errors.VaultError, errors.StoreError),
        (errors.LeaseLost, errors.SyncError),
        (errors.InvalidScopes, ValueError),
    ],
)
def test_tree_shape(cls: type, parent: type) -> None:
    assert issubclass(cls, parent)


def test_transient_errors_are_retryable_and_config_errors_are_not() -> None:
    assert errors.RateLimited("x", retry_after=2.0).retryable
    assert errors.SessionExpired("x").retryable
    assert errors.TransportError("x").retryable
    assert not errors.AuthError("x").retryable
    assert not errors.UnexpectedPayload("x", field_path="a.b").retryable


def test_errors_keep_their_structured_fields() -> None:
    err = errors.UnexpectedPayload("drift", field_path="patient.dob", endpoint="GET /v2/x")
    assert (err.field_path, err.endpoint) == ("patient.dob", "GET /v2/x")
    assert errors.RateLimited("slow", retry_after=3.5).retry_after == 3.5
    assert errors.MfaRequired("mfa", challenge="c1", methods=("totp",)).methods == ("totp",)


# The typed client is the API's other side: it may import only the contract and the domain, so
# its exceptions form their own tree under CarebridgeClientError (checked below).
CLIENT = "carebridge.client"


def _modules() -> list[str]:
    return [
        m.name
        for m in pkgutil.walk_packages(carebridge.__path__, "carebridge.")
        if ".migrations." not in m.name
        and not m.name.endswith("__main__")
        and not m.name.startswith(CLIENT)
    ]


def test_every_exception_class_in_carebridge_hangs_from_the_tree() -> None:
    """No layer grows an exception outside the tree: every exception class carebridge defines
    is a CarebridgeError (a framework's own base may come first). Signals (a BaseException that is
    not an Exception, like the CLI's Stopped) are not errors."""
    outside = []
    for name in _modules():
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != name or not issubclass(cls, Exception):
                continue
            if not issubclass(cls, errors.CarebridgeError):
                outside.append(f"{name}.{cls.__qualname__}")
    assert outside == []


def test_the_tree_is_defined_in_one_module() -> None:
    """Apart from the two that a framework must also recognise (drawn in the tree's docstring)
    and two private retry signals (the connector's, and the audit writer's when another process
    moved the chain head), every error class is defined in errors.py."""
    edge = {"BodyTooLarge", "PolicyRefused", "_Again", "_Moved"}
    root = Path(carebridge.__file__).parent
    elsewhere = []
    for path in root.rglob("*.py"):
        if path.name == "errors.py" and path.parent == root:
            continue
        if path.relative_to(root).parts[0] == "client":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.name not in edge:
                bases = {ast.unparse(b).rsplit(".", 1)[-1] for b in node.bases}
                if bases & {*_classes(), "Exception", "BaseException"}:
                    elsewhere.append(f"{path.relative_to(root)}:{node.name}")
    assert elsewhere == []


def test_the_clients_exceptions_hang_from_its_own_root() -> None:
    """Every exception the typed client raises is a CarebridgeClientError, never a server error."""
    client = importlib.import_module(CLIENT)
    found = [
        cls
        for m in pkgutil.walk_packages(client.__path__, f"{CLIENT}.")
        for _, cls in inspect.getmembers(importlib.import_module(m.name), inspect.isclass)
        if cls.__module__ == m.name and issubclass(cls, Exception)
    ]
    assert len(found) >= 5
    assert all(issubclass(cls, client.CarebridgeClientError) for cls in found)
    assert not any(issubclass(cls, errors.CarebridgeError) for cls in found)
