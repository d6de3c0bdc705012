"""OAuth 2.0 as the real upstream runs it (``upstream/carecloud.md`` §2.2).

- ``GET /oauth2/authorize``: a practice user consents for one practice; the sandbox consents
  automatically as the practice's first user and redirects with ``code``.
- ``POST /oauth2/access_token``: client authenticated with HTTP Basic; ``authorization_code``
  and ``refresh_token`` grants; form-encoded (JSON is accepted too). ``access_token`` is the
  first field of the answer. Refresh-token rotation is optional (``rotate_refresh_tokens``).
- ``GET /oauth2/token_info`` and ``GET /oauth2/authorization`` (also under ``/v2``):
  introspection of the bearer token.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from carecloud_sandbox.tenant import Grant, Tenant
from carecloud_sandbox.v2.common import (
    ApiError,
    from_db_instant,
    json_response,
    loads,
    parse_int_id,
    read_form_or_json,
    to_db_instant,
)
from carecloud_sandbox.v2.routing import authed, public


def _client_from_basic(tenant: Tenant, header: str | None) -> str:
    """Authenticate the client by HTTP Basic; return its id."""
    if not header or not header.lower().startswith("basic "):
        raise ApiError(401, "invalid_client", {"WWW-Authenticate": 'Basic realm="oauth2"'})
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ApiError(
            401, "invalid_client", {"WWW-Authenticate": 'Basic realm="oauth2"'}
        ) from None
    client_id, _, secret = decoded.partition(":")
    row = tenant.db.one("SELECT client_secret FROM oauth_clients WHERE client_id = ?", (client_id,))
    if row is None or not secrets.compare_digest(row["client_secret"], secret):
        raise ApiError(401, "invalid_client", {"WWW-Authenticate": 'Basic realm="oauth2"'})
    return client_id


def _practice_by_ref(tenant: Tenant, ref: str | None) -> int | None:
    """A practice from ``practice_id``: its business entity GUID or its integer id."""
    if not ref:
        return None
    number = parse_int_id(ref)
    if number is not None:
        found = tenant.db.scalar("SELECT id FROM practices WHERE id = ?", (number,))
    else:
        found = tenant.db.scalar(
            "SELECT id FROM practices WHERE business_entity_id = ?", (ref.lower(),)
        )
    return None if found is None else int(found)


def issue_token(
    tenant: Tenant, *, client_id: str, practice_id: int, user_id: int, refresh_token: str | None
) -> dict[str, object]:
    """Mint an access token (and a refresh token unless one is carried over)."""
    cfg = tenant.config
    now = tenant.now()
    scopes = tenant.db.scalar(
        "SELECT scopes_json FROM oauth_clients WHERE client_id = ?", (client_id,)
    )
    access = tenant.new_token()
    refresh = refresh_token or tenant.new_token()
    with tenant.db.transaction() as conn:
        refresh_expires = to_db_instant(now + timedelta(seconds=cfg.refresh_token_ttl))
        if refresh_token is not None:
            kept = conn.execute(
                "SELECT refresh_expires_at FROM oauth_tokens WHERE refresh_token = ? LIMIT 1",
                (refresh_token,),
            ).fetchone()
            if kept is not None:
                refresh_expires = kept[0]
        conn.execute(
            "INSERT INTO oauth_tokens(access_token, refresh_token, client_id, practice_id, "
            "user_id, scopes_json, issued_at, expires_at, refresh_expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                access,
                refresh,
                client_id,
                practice_id,
                user_id,
                scopes,
                to_db_instant(now),
                to_db_instant(now + timedelta(seconds=cfg.access_token_ttl)),
                refresh_expires,
            ),
        )
    return {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": cfg.access_token_ttl,
        "refresh_token": refresh,
        "scope": " ".join(loads(scopes)),
    }


async def authorize(request: Request, tenant: Tenant) -> Response:
    """Auto-consent as the practice's first user and redirect with a code."""
    q = request.query_params
    client = tenant.db.one(
        "SELECT * FROM oauth_clients WHERE client_id = ?", (q.get("client_id", ""),)
    )
    if client is None:
        raise ApiError(400, "invalid_client")
    if q.get("response_type") != "code":
        raise ApiError(400, "unsupported_response_type")
    redirect_uri = q.get("redirect_uri") or client["redirect_uri"]
    if redirect_uri != client["redirect_uri"]:
        raise ApiError(400, "redirect_uri does not match the application's registered URI")
    practice_id = _practice_by_ref(tenant, q.get("practice_id"))
    if practice_id is None:
        raise ApiError(400, "practice_id must name a practice this application may access")
    user_id = tenant.db.scalar(
        "SELECT id FROM users WHERE practice_id = ? ORDER BY id LIMIT 1", (practice_id,)
    )
    if user_id is None:
        raise ApiError(400, "The practice has no user who can grant access")
    code = tenant.new_token()
    expires = to_db_instant(tenant.now() + timedelta(seconds=tenant.config.auth_code_ttl))
    with tenant.db.transaction() as conn:
        conn.execute(
            "INSERT INTO oauth_codes(code, client_id, practice_id, user_id, redirect_uri, "
            "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            (code, client["client_id"], practice_id, int(user_id), redirect_uri, expires),
        )
    params = {"code": code}
    if "state" in q:
        params["state"] = q["state"]
    sep = "&" if urlsplit(redirect_uri).query else "?"
    return RedirectResponse(f"{redirect_uri}{sep}{urlencode(params)}", status_code=302)


async def callback(request: Request, tenant: Tenant) -> Response:
    """The sandbox app's registered redirect target: shows the code it received."""
    del tenant
    return json_response(dict(request.query_params))


async def access_token(request: Request, tenant: Tenant) -> Response:
    """Exchange a code or a refresh token for an access token."""
    client_id = _client_from_basic(tenant, request.headers.get("authorization"))
    form = await read_form_or_json(request, tenant.config.max_body_bytes)
    grant_type = form.get("grant_type")
    now_db = tenant.now_db()
    if grant_type == "authorization_code":
        code = tenant.db.one("SELECT * FROM oauth_codes WHERE code = ?", (form.get("code", ""),))
        if code is None or code["client_id"] != client_id or code["used"]:
            raise ApiError(400, "invalid_grant")
        if code["expires_at"] <= now_db:
            raise ApiError(400, "invalid_grant")
        if form.get("redirect_uri", code["redirect_uri"]) != code["redirect_uri"]:
            raise ApiError(400, "invalid_grant")
        with tenant.db.transaction() as conn:
            conn.execute("UPDATE oauth_codes SET used = 1 WHERE code = ?", (code["code"],))
        body = issue_token(
            tenant,
            client_id=client_id,
            practice_id=int(code["practice_id"]),
            user_id=int(code["user_id"]),
            refresh_token=None,
        )
        return json_response(body, headers={"Cache-Control": "no-store"})
    if grant_type == "refresh_token":
        presented = form.get("refresh_token", "")
        row = tenant.db.one(
            "SELECT * FROM oauth_tokens WHERE refresh_token = ? ORDER BY issued_at DESC LIMIT 1",
            (presented,),
        )
        if (
            row is None
            or row["client_id"] != client_id
            or row["refresh_revoked"]
            or row["refresh_expires_at"] <= now_db
        ):
            raise ApiError(400, "invalid_grant")
        rotate = tenant.config.rotate_refresh_tokens
        if rotate:
            with tenant.db.transaction() as conn:
                conn.execute(
                    "UPDATE oauth_tokens SET refresh_revoked = 1 WHERE refresh_token = ?",
                    (presented,),
                )
        body = issue_token(
            tenant,
            client_id=client_id,
            practice_id=int(row["practice_id"]),
            user_id=int(row["user_id"]),
            refresh_token=None if rotate else presented,
        )
        return json_response(body, headers={"Cache-Control": "no-store"})
    raise ApiError(400, "unsupported_grant_type")


def _expires_in(tenant: Tenant, grant: Grant) -> int:
    remaining = from_db_instant(grant.expires_at) - tenant.now()
    return max(0, int(remaining.total_seconds()))


async def token_info(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """``OAuth2TokenInfo_Response``: the time remaining on the token."""
    del request
    return json_response(
        {
            "access_token": grant.access_token,
            "type": "Bearer",
            "expires_in": _expires_in(tenant, grant),
            "scope": " ".join(grant.scopes),
        }
    )


async def authorization(request: Request, tenant: Tenant, grant: Grant) -> Response:
    """``OAuth2Authorization_Response``: who granted what to which application."""
    del request
    practice = tenant.db.one(
        "SELECT business_entity_id, name FROM practices WHERE id = ?", (grant.practice_id,)
    )
    user = tenant.db.one(
        "SELECT id, first_name, last_name FROM users WHERE id = ?", (grant.user_id,)
    )
    app_id = tenant.db.scalar(
        "SELECT app_id FROM oauth_clients WHERE client_id = ?", (grant.client_id,)
    )
    return json_response(
        {
            "access_token": grant.access_token,
            "type": "Bearer",
            "expires_in": _expires_in(tenant, grant),
            "scopes": list(grant.scopes),
            "business_entity": {
                "id": practice["business_entity_id"] if practice else None,
                "name": practice["name"] if practice else None,
            },
            "application": {"id": app_id},
            "user": {
                "id": user["id"] if user else None,
                "first_name": user["first_name"] if user else None,
                "last_name": user["last_name"] if user else None,
            },
        }
    )


def routes(tenant: Tenant) -> list[BaseRoute]:
    """The OAuth routes, at the host root and (introspection) under ``/v2``."""
    info = authed(tenant, None, token_info)
    auth = authed(tenant, None, authorization)
    return [
        Route("/oauth2/authorize", public(tenant, authorize), methods=["GET"]),
        Route("/oauth2/callback", public(tenant, callback), methods=["GET"]),
        Route("/oauth2/access_token", public(tenant, access_token), methods=["POST"]),
        Route("/oauth2/token_info", info, methods=["GET"]),
        Route("/v2/oauth2/token_info", info, methods=["GET"]),
        Route("/oauth2/authorization", auth, methods=["GET"]),
        Route("/v2/oauth2/authorization", auth, methods=["GET"]),
    ]


def seed_refresh_token(tenant: Tenant, client_id: str, practice_id: int) -> str:
    """A long-lived refresh token for the credentials document (a pre-consented grant)."""
    existing = tenant.db.scalar(
        "SELECT refresh_token FROM oauth_tokens WHERE client_id = ? AND practice_id = ? "
        "AND refresh_revoked = 0 AND refresh_expires_at > ? ORDER BY issued_at LIMIT 1",
        (client_id, practice_id, tenant.now_db()),
    )
    if existing:
        return str(existing)
    user_id = tenant.db.scalar(
        "SELECT id FROM users WHERE practice_id = ? ORDER BY id LIMIT 1", (practice_id,)
    )
    body = issue_token(
        tenant,
        client_id=client_id,
        practice_id=practice_id,
        user_id=int(user_id or 0),
        refresh_token=None,
    )
    return str(body["refresh_token"])


__all__ = ["issue_token", "routes", "seed_refresh_token"]
