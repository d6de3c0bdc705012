"""The exception tree is the documented one, and errors carry what callers need."""

from __future__ import annotations

import inspect

import pytest

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
        (errors.ParseError, errors.CodecError),
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
