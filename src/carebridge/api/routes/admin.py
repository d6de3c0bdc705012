"""Operator routes: ``POST /tenants`` onboards a tenant.

They take the deployment's operator token (``CAREBRIDGE_ADMIN_TOKEN``), not a tenant's API key:
a tenant's key can never create or see another tenant. Secrets in the body are sealed by the
vault before they are stored, and are never answered back.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from carebridge.api.routes.common import declared_query
from carebridge.contract.resources import Tenant
from carebridge.errors import BadRequest, ConfigError
from carebridge.services.admin import Admin, OperatorGate, TenantSpec


class NewTenant(BaseModel):
    """A tenant to onboard: its upstream profile (settings) and credentials (secrets)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "ten_maple",
                    "name": "Maple Family Practice",
                    "upstream": "carecloud",
                    "settings": {
                        "base_url": "https://api.carecloud.com",
                        "token_url": "https://api.carecloud.com/oauth2/access_token",
                        "portal_api": "https://portal.example/portal/api",
                    },
                    "secrets": {
                        "v2.client_id": "…",
                        "v2.client_secret": "…",
                        "v2.refresh_token": "…",
                        "portal.username": "…",
                        "portal.password": "…",
                        "portal.totp_seed": "…",
                    },
                }
            ]
        },
    )

    id: str = Field(pattern=r"^ten_[a-z0-9_]{1,60}$")
    name: str = Field(min_length=1, max_length=200)
    upstream: Literal["carecloud"] = "carecloud"
    settings: dict[str, Any]
    secrets: dict[str, Annotated[str, Field(min_length=1, max_length=20_000)]]


class Onboarded(BaseModel):
    """The tenant as stored: the names of its sealed secrets, never their values."""

    id: str
    name: str
    upstream: str
    sealed_secrets: list[str]


def router(admin: Admin, admin_token: str | None) -> APIRouter:
    """The operator routes; with no operator token configured, they answer 401."""
    routes = APIRouter(tags=["admin"])
    gate = OperatorGate(admin_token)

    async def check_operator(authorization: Annotated[str | None, Header()] = None) -> None:
        """The operator token, checked before the body is validated (401 before 422)."""
        gate.check(authorization)

    @routes.post(
        "/tenants",
        status_code=201,
        summary="Onboard a tenant",
        response_model=Tenant,
        dependencies=[Depends(declared_query), Depends(check_operator)],
    )
    async def add_tenant(
        body: NewTenant, authorization: Annotated[str | None, Header()] = None
    ) -> JSONResponse:
        """Onboard a tenant (operator token). 409 if the id exists; 422 when the profile
        lacks a setting or secret the upstream needs (each named)."""
        operator = gate.check(authorization)
        spec = TenantSpec(body.id, body.name, body.upstream, body.settings, body.secrets)
        try:
            done = await admin.onboard(operator, spec)
        except ConfigError as err:
            raise BadRequest(str(err), field="settings") from None
        answer = Onboarded(
            id=done.id,
            name=done.name,
            upstream=done.upstream,
            sealed_secrets=list(done.sealed_secrets),
        )
        return JSONResponse(answer.model_dump(), 201, headers={"Location": f"/tenants/{done.id}"})

    return routes
