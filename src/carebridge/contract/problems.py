"""The RFC 9457 problem body every error of the API answers, and the problem types.

Each type is ``https://carebridge.dev/problems/<slug>`` and is documented in
``docs/problems/<slug>.md``. A refusal by one of the practice's rules (a
:class:`~carebridge.errors.DomainError`) is typed by its class name (``SlotTaken``:
``slot-taken``).
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict, Field

TYPES_BASE: Final = "https://carebridge.dev/problems/"

PROBLEM_TYPES: Final[dict[str, str]] = {
    "bad-request": "The request is malformed: not JSON, a cursor the API did not issue, a bad "
    "header.",
    "validation-error": "The request is well-formed but a field breaks a rule.",
    "unauthorized": "No credential, or one that is not valid.",
    "missing-scope": "The credential lacks the scope the route needs.",
    "not-found": "No such object for the caller's tenant (or no such route).",
    "method-not-allowed": "The path exists but not with that method.",
    "conflict": "The object exists already.",
    "idempotency-key-in-flight": "A request with the same Idempotency-Key is still running.",
    "idempotency-key-reused": "The Idempotency-Key was used with another body.",
    "content-too-large": "The request body is over the deployment's limit.",
    "locked": "Sign-in is locked for a while after failed attempts.",
    "rate-limited": "The caller's own rate limit is spent; retry after Retry-After seconds.",
    "not-configured": "The tenant has no working upstream connection.",
    "upstream-busy": "The upstream is rate limiting carebridge; retry after Retry-After.",
    "upstream-unreachable": "The upstream did not answer in time.",
    "upstream-auth": "The upstream refused carebridge's credentials.",
    "upstream-error": "The upstream failed or answered unexpectedly.",
    "internal-error": "An unexpected error (reported with its request id).",
    "invalid-transition": "The object's state does not allow that change.",
    "slot-taken": "The slot is no longer free.",
    "claim-rejected": "The claim scrubber refused the claim; each field is named.",
    "encounter-locked": "The encounter is signed; add an addendum instead.",
    "unknown-id": "An id the upstream does not know.",
    "invalid-mfa-step": "That second factor is not enrolled for the user.",
    "invalid-scopes": "A scope that does not exist.",
    "url-refused": "The webhook URL points somewhere carebridge will not send.",
    "domain-error": "A rule of the practice refuses the request.",
    "confirmation-refused": "An agent's write confirmation is used, expired or for other "
    "arguments.",
    "agent-limit-exceeded": "An agent reached one of its per-principal limits.",
}
"""Every problem type the API answers, by slug, with what it means."""


class FieldError(BaseModel):
    """One refused input: which field, which rule it broke, and a message."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(description="The field: a dotted body path, or a query/header name.")
    rule: str = Field(description="The rule it broke (`missing`, `pattern`, `extra_forbidden`...).")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem: what went wrong, its type, and the request it answers."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "type": f"{TYPES_BASE}validation-error",
                    "title": "Unprocessable Content",
                    "status": 422,
                    "detail": "the request is not valid",
                    "request_id": "req_4f3c2a1b0e9d8c7b",
                    "errors": [
                        {
                            "field": "limit",
                            "rule": "less_than_equal",
                            "message": "Input should be less than or equal to 500",
                        }
                    ],
                }
            ]
        },
    )

    type: str = Field(description=f"`{TYPES_BASE}<slug>`, documented in docs/problems/.")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    request_id: str = Field(description="The answer's `X-Request-Id`.")
    code: str | None = Field(default=None, description="The refusing rule's name, if one did.")
    errors: list[FieldError] | None = None
