"""``POST /authenticate``: a tenant's user signs in, in up to three steps, for a session token.

::

    {"tenant", "username", "password"}      -> authenticated | mfa_required
    {"challenge_id", "method"}              -> code_sent (sms, email) | code_required (totp)
    {"challenge_id", "code"}                -> authenticated

A body that mixes the steps' fields, or adds others, is a 422 problem. Errors are the use case's
typed errors, answered as problems by :mod:`carebridge.api.problems`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends
from fastapi.openapi.models import Example
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from carebridge.api.routes.common import declared_query
from carebridge.contract.time import Timestamp
from carebridge.services.sessions import (
    Challenge,
    ChooseMethod,
    EnterCode,
    Issued,
    Sessions,
    SignIn,
    Step,
)
from carebridge.services.sessions import CodeSent as Sent

Method = Literal["totp", "sms", "email"]


class PasswordStep(BaseModel):
    """Step 1: the tenant, the username and the password."""

    model_config = ConfigDict(extra="forbid")

    tenant: str = Field(min_length=1, max_length=64)
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1024)


class MethodStep(BaseModel):
    """Step 2: the second factor to use."""

    model_config = ConfigDict(extra="forbid")

    challenge_id: str = Field(min_length=1, max_length=64)
    method: Method


class CodeStep(BaseModel):
    """Step 3: the 6-digit code (from the authenticator app, the text or the e-mail)."""

    model_config = ConfigDict(extra="forbid")

    challenge_id: str = Field(min_length=1, max_length=64)
    code: str = Field(pattern=r"^[0-9]{6}$")


def _step(body: Any) -> str | None:
    """Which step a body is, by its fields; a mixture is judged by the step it starts."""
    if not isinstance(body, dict):
        return None
    if {"tenant", "username", "password"} & body.keys():
        return "password_step"
    if "method" in body:
        return "method_step"
    if "code" in body:
        return "code_step"
    return None


AuthenticateBody = Annotated[
    Annotated[PasswordStep, Tag("password_step")]
    | Annotated[MethodStep, Tag("method_step")]
    | Annotated[CodeStep, Tag("code_step")],
    Discriminator(
        _step,
        custom_error_type="invalid_step",
        custom_error_message=(
            "send tenant+username+password, challenge_id+method, or challenge_id+code"
        ),
    ),
]

EXAMPLES = {
    "password": Example(
        summary="Step 1: password",
        value={"tenant": "ten_maple", "username": "frontdesk", "password": "correct horse"},
    ),
    "method": Example(
        summary="Step 2: choose the second factor",
        value={"challenge_id": "chl_6f1c0e5b2a9d4e7f8a1b2c3d4e5f6a7b", "method": "sms"},
    ),
    "code": Example(
        summary="Step 3: the code",
        value={"challenge_id": "chl_6f1c0e5b2a9d4e7f8a1b2c3d4e5f6a7b", "code": "123456"},
    ),
}


AuthenticateStatus = Literal["authenticated", "mfa_required", "code_sent", "code_required"]


class AuthenticateAnswer(BaseModel):
    """Where the sign-in stands (``status``) and what the next step needs; a field the status
    does not carry is absent:

    - ``authenticated``: ``token`` (send ``Authorization: Bearer <token>`` until
      ``expires_at``), ``token_type``, ``tenant`` and the token's ``scopes``;
    - ``mfa_required``: the password was right; send ``challenge_id`` and one of ``methods``
      before ``expires_at``;
    - ``code_sent`` (texted or e-mailed to the masked ``destination``) or ``code_required``
      (from the authenticator app): send ``challenge_id`` and the code.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "status": "authenticated",
                    "token": "cbs_4q2v8m1c7x9z3k5t6w0r2y4u8i1o3p5a",
                    "token_type": "Bearer",
                    "expires_at": "2026-11-25T03:00:00Z",
                    "tenant": "ten_maple",
                    "scopes": ["appointment.read", "patient.read"],
                },
                {
                    "status": "mfa_required",
                    "challenge_id": "chl_6f1c0e5b2a9d4e7f8a1b2c3d4e5f6a7b",
                    "methods": ["totp", "sms"],
                    "expires_at": "2026-11-24T15:05:00Z",
                },
                {
                    "status": "code_sent",
                    "challenge_id": "chl_6f1c0e5b2a9d4e7f8a1b2c3d4e5f6a7b",
                    "method": "sms",
                    "destination": "***-***-4821",
                },
            ]
        },
    )

    status: AuthenticateStatus
    token: str | None = None
    token_type: Literal["Bearer"] | None = None
    expires_at: Timestamp | None = None
    tenant: str | None = None
    scopes: list[str] | None = None
    challenge_id: str | None = None
    methods: list[Method] | None = None
    method: Method | None = None
    destination: str | None = None


def _use_case_step(body: PasswordStep | MethodStep | CodeStep) -> Step:
    if isinstance(body, PasswordStep):
        return SignIn(body.tenant, body.username, body.password)
    if isinstance(body, MethodStep):
        return ChooseMethod(body.challenge_id, body.method)
    return EnterCode(body.challenge_id, body.code)


def _reply(outcome: Issued | Challenge | Sent) -> AuthenticateAnswer:
    if isinstance(outcome, Sent):
        return AuthenticateAnswer(
            status="code_required" if outcome.destination is None else "code_sent",
            challenge_id=outcome.challenge_id,
            method=outcome.method,
            destination=outcome.destination,
        )
    if isinstance(outcome, Issued):
        return AuthenticateAnswer(
            status="authenticated",
            token=outcome.token,
            token_type="Bearer",  # noqa: S106 - the token scheme, not a secret
            expires_at=outcome.expires_at,
            tenant=outcome.tenant_id,
            scopes=sorted(outcome.scopes),
        )
    return AuthenticateAnswer(
        status="mfa_required",
        challenge_id=outcome.challenge_id,
        methods=list(outcome.methods),
        expires_at=outcome.expires_at,
    )


def router(sessions: Sessions) -> APIRouter:
    """The ``POST /authenticate`` route over the sign-in use case."""
    api = APIRouter(tags=["authentication"])

    @api.post(
        "/authenticate",
        summary="Sign in with a password and, when enrolled, a second factor",
        dependencies=[Depends(declared_query)],
        response_model_exclude_none=True,
        responses={
            401: {"description": "Invalid credentials, code or challenge"},
            422: {"description": "A malformed or mixed body, or a method not enrolled"},
            423: {"description": "Locked after too many failures; see Retry-After"},
        },
    )
    async def authenticate(
        body: Annotated[AuthenticateBody, Body(openapi_examples=EXAMPLES)],
    ) -> AuthenticateAnswer:
        """Sign a tenant's user in for a session token, in up to three steps: the tenant,
        username and password; then, when the user is enrolled in a second factor, the method
        (`totp`, `sms`, `email`); then the 6-digit code. Each answer's `status` says which step
        comes next; the token, once issued, works as an API key does until `expires_at`.
        Repeated failures lock the account for a while (423 with `Retry-After`)."""
        return _reply(await sessions.step(_use_case_step(body)))

    return api
