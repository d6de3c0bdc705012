"""SMART Backend Services for the Connector: client registration, the token endpoint and bearer
checks.

A client authenticates with ``private_key_jwt``: a JWT assertion signed with RS384 or ES384 whose
``iss`` and ``sub`` are its client id, ``aud`` the token URL, ``exp`` in the future but at most
five minutes ahead and ``jti`` never seen before. The assertion's times are judged on real time
(:func:`authorization_now`), as a real authorization server judges them on its own clock: the
activity clock moves the practice's data, not the server's wall clock, so a clock advance does
not lock out a client that signs with the time of day. The answer is a bearer token living
``config.smart_token_ttl`` seconds with the granted ``system/*.read`` or ``system/<Type>.read``
scopes. The token endpoint answers OAuth errors (RFC 6749 §5.2); the FHIR routes OperationOutcomes.

A default client (``carebridge-sandbox-backend``) exists from first use: its EC P-384 key is
generated once and kept in the ``meta`` table; :func:`credentials` hands it out.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import orjson
from joserfc import jws
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet
from starlette.requests import Request
from starlette.responses import Response

from carecloud_sandbox.clock import OffsetClock, SystemClock
from carecloud_sandbox.fhir.catalog import TYPES
from carecloud_sandbox.fhir.common import (
    FhirError,
    ensure_schema,
    fhir_base,
    public_base,
    token_url,
)
from carecloud_sandbox.tenant import Tenant
from carecloud_sandbox.v2.common import dumps, from_db_instant, loads, to_db_instant

DEFAULT_CLIENT_ID = "carebridge-sandbox-backend"
META_KEY = "fhir.smart.default_key"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("RS384", "ES384")
MAX_ASSERTION_LIFETIME = 300
MAX_ASSERTION_BYTES = 16_384
EXTRA_TYPES = ("Group", "Binary")  # readable types outside the search catalogue


def scope_types() -> tuple[str, ...]:
    """The types a ``system/<Type>.read`` scope may name."""
    return (*TYPES, *EXTRA_TYPES)


def supported_scopes() -> list[str]:
    """Every scope the token endpoint grants."""
    return ["system/*.read", *(f"system/{t}.read" for t in scope_types())]


class OAuthError(Exception):
    """An RFC 6749 §5.2 error of the token endpoint."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def response(self) -> Response:
        """The JSON error body, never cached."""
        return Response(
            orjson.dumps({"error": self.error, "error_description": self.description}),
            status_code=self.status,
            media_type="application/json",
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )


@dataclass(frozen=True)
class SmartGrant:
    """What a valid Connector bearer token stands for."""

    access_token: str
    client_id: str
    scopes: tuple[str, ...]

    def allows(self, resource_type: str) -> bool:
        """True when the scopes grant reading ``resource_type``."""
        return "system/*.read" in self.scopes or f"system/{resource_type}.read" in self.scopes


# --- clients ----------------------------------------------------------------------------------


def _default_key(tenant: Tenant) -> ECKey:
    """The default client's private key, generated once and kept in ``meta``."""
    pem = tenant.db.get_meta(META_KEY)
    if pem is None:
        key = ECKey.generate_key("P-384", auto_kid=True)
        tenant.db.set_meta(META_KEY, key.as_pem(private=True).decode(), only_if_missing=True)
        pem = tenant.db.get_meta(META_KEY)
    imported = ECKey.import_key(str(pem))
    imported.ensure_kid()
    return imported


def ensure_default_client(tenant: Tenant) -> ECKey:
    """Register the default backend client if it is not yet; return its private key."""
    ensure_schema(tenant)
    key = _default_key(tenant)
    public = key.as_dict(private=False)
    public.update({"alg": "ES384", "use": "sig"})
    with tenant.db.lock:
        tenant.db.conn.execute(
            "INSERT OR IGNORE INTO fhir_smart_clients(client_id, jwks_json, created_at) "
            "VALUES (?, ?, ?)",
            (DEFAULT_CLIENT_ID, dumps({"keys": [public]}), tenant.now_db()),
        )
    return key


def register_client(tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    """Register (or re-key) a backend client from ``{"client_id", "jwks": {"keys": [...]}}``.

    Raises:
        ValueError: with a message for a bad client id or key set (private keys included).
    """
    ensure_default_client(tenant)
    client_id = body.get("client_id")
    if not isinstance(client_id, str) or not 1 <= len(client_id) <= 200:
        raise ValueError("client_id must be a non-empty string")
    jwks = body.get("jwks")
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise ValueError('jwks must be {"keys": [...]} with at least one public key')
    public_keys = []
    for raw in jwks["keys"]:
        if not isinstance(raw, dict):
            raise ValueError("every key must be a JWK object")
        if any(name in raw for name in ("d", "p", "q", "dp", "dq", "qi", "k")):
            raise ValueError("register public keys only")
        if raw.get("kty") not in ("RSA", "EC"):
            raise ValueError("keys must be RSA or EC")
        public_keys.append(raw)
    try:
        KeySet.import_key_set({"keys": public_keys})
    except (JoseError, ValueError, TypeError, KeyError):
        raise ValueError("jwks holds a key that cannot be imported") from None
    with tenant.db.lock:
        tenant.db.conn.execute(
            "INSERT OR REPLACE INTO fhir_smart_clients(client_id, jwks_json, created_at) "
            "VALUES (?, ?, ?)",
            (client_id, dumps({"keys": public_keys}), tenant.now_db()),
        )
    return {"client_id": client_id, "token_url": token_url(tenant), "keys": len(public_keys)}


def list_clients(tenant: Tenant) -> list[dict[str, Any]]:
    """The registered backend clients with their public keys."""
    ensure_default_client(tenant)
    rows = tenant.db.all("SELECT * FROM fhir_smart_clients ORDER BY created_at, client_id")
    return [
        {"client_id": r["client_id"], "jwks": loads(r["jwks_json"]), "created_at": r["created_at"]}
        for r in rows
    ]


def delete_client(tenant: Tenant, client_id: str) -> bool:
    """Remove a client and revoke its tokens; False when it did not exist."""
    ensure_schema(tenant)
    with tenant.db.transaction() as conn:
        gone = conn.execute("DELETE FROM fhir_smart_clients WHERE client_id = ?", (client_id,))
        conn.execute("DELETE FROM fhir_smart_tokens WHERE client_id = ?", (client_id,))
        return gone.rowcount > 0


def credentials(tenant: Tenant) -> dict[str, Any]:
    """What a backend-services client needs: the default client's key and the base URLs."""
    key = ensure_default_client(tenant)
    practices = [
        {
            "id": row["id"],
            "fhir_code": row["fhir_code"],
            "fhir_base": fhir_base(tenant, row["fhir_code"]),
            "group_id": f"grp-{str(row['fhir_code']).lower()}",
        }
        for row in tenant.db.all("SELECT id, fhir_code FROM practices ORDER BY id")
    ]
    base = public_base(tenant)
    return {
        "client_id": DEFAULT_CLIENT_ID,
        "kid": key.kid,
        "alg": "ES384",
        "private_key_pem": key.as_pem(private=True).decode(),
        "token_url": token_url(tenant),
        "scope": "system/*.read",
        "smart_configuration_url": f"{base}/.well-known/smart-configuration",
        "metadata_url": f"{base}/metadata",
        "fhir_base": {p["fhir_code"]: p["fhir_base"] for p in practices},
        "practices": practices,
    }


# --- the token endpoint -----------------------------------------------------------------------


def _form(raw: bytes) -> dict[str, str]:
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise OAuthError(400, "invalid_request", "body must be form-encoded") from None
    parsed = parse_qs(text, keep_blank_values=True)
    for name, values in parsed.items():
        if len(values) > 1:
            raise OAuthError(400, "invalid_request", f"parameter {name} is repeated")
    return {k: v[0] for k, v in parsed.items()}


def _granted_scopes(requested: str) -> tuple[str, ...]:
    scopes = tuple(dict.fromkeys(requested.split()))
    if not scopes:
        raise OAuthError(400, "invalid_scope", "scope is required")
    allowed = set(supported_scopes())
    for scope in scopes:
        if scope not in allowed:
            raise OAuthError(400, "invalid_scope", f"scope {scope[:80]} is not supported")
    return scopes


def authorization_now(tenant: Tenant) -> datetime:
    """The authorization server's clock for client assertions: real time.

    A running tenant's clock (``serve``: wall-clock time plus whatever the control plane's clock
    advance added) moves the practice into the future, but a real SMART server judges ``exp``
    on its own wall clock (RFC 7523 §3; SMART Backend Services: ``exp`` no more than five
    minutes ahead), so the advance is not applied here. A manual clock (tests) is the test's
    own time, and is used as it is.
    """
    if isinstance(tenant.clock, OffsetClock | SystemClock):
        return datetime.now(UTC)
    return tenant.now()


def _verify_assertion(tenant: Tenant, assertion: str, client_id: str | None) -> str:
    """Check a client assertion; return the client id. Records its ``jti`` when valid."""
    if len(assertion) > MAX_ASSERTION_BYTES:
        raise OAuthError(400, "invalid_request", "client_assertion is too large")
    try:
        unverified = jws.extract_compact(assertion.encode())
        header = unverified.headers()
        claims = loads(unverified.payload)
    except (JoseError, ValueError, TypeError):
        raise OAuthError(401, "invalid_client", "client_assertion is not a JWT") from None
    if not isinstance(claims, dict):
        raise OAuthError(401, "invalid_client", "client_assertion claims must be an object")
    if header.get("alg") not in ALGORITHMS:
        raise OAuthError(401, "invalid_client", "client_assertion must be signed RS384 or ES384")
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or claims.get("sub") != issuer:
        raise OAuthError(401, "invalid_client", "iss and sub must both be the client id")
    if client_id is not None and client_id != issuer:
        raise OAuthError(401, "invalid_client", "client_id does not match the assertion")
    row = tenant.db.one("SELECT jwks_json FROM fhir_smart_clients WHERE client_id = ?", (issuer,))
    if row is None:
        raise OAuthError(401, "invalid_client", "unknown client")
    try:
        keys = KeySet.import_key_set(loads(row["jwks_json"]))
        kid = header.get("kid")
        key: Any = keys.get_by_kid(kid) if kid is not None else keys
        jose_jwt.decode(assertion, key, algorithms=list(ALGORITHMS))
    except (JoseError, ValueError, TypeError, KeyError):
        raise OAuthError(401, "invalid_client", "client_assertion signature is invalid") from None
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if token_url(tenant) not in audiences:
        raise OAuthError(401, "invalid_client", "aud must be the token URL")
    now = authorization_now(tenant)
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise OAuthError(401, "invalid_client", "exp is required")
    if exp <= now.timestamp():
        raise OAuthError(401, "invalid_client", "client_assertion has expired")
    if exp > now.timestamp() + MAX_ASSERTION_LIFETIME:
        raise OAuthError(401, "invalid_client", "exp is more than five minutes ahead")
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and not isinstance(nbf, bool) and nbf > now.timestamp():
        raise OAuthError(401, "invalid_client", "client_assertion is not valid yet")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 1 <= len(jti) <= 255:
        raise OAuthError(401, "invalid_client", "jti is required")
    now_db = to_db_instant(now)
    with tenant.db.transaction() as conn:
        conn.execute("DELETE FROM fhir_smart_jtis WHERE expires_at < ?", (now_db,))
        used = conn.execute(
            "SELECT 1 FROM fhir_smart_jtis WHERE client_id = ? AND jti = ?", (issuer, jti)
        ).fetchone()
        if used is None:
            expires = now + timedelta(seconds=MAX_ASSERTION_LIFETIME + 1)
            conn.execute(
                "INSERT INTO fhir_smart_jtis(client_id, jti, expires_at) VALUES (?, ?, ?)",
                (issuer, jti, to_db_instant(expires)),
            )
    if used is not None:
        raise OAuthError(401, "invalid_client", "jti has already been used")
    return issuer


async def token_endpoint(request: Request, tenant: Tenant) -> Response:
    """``POST {root}/oauth2/token``: the client-credentials grant with a JWT assertion."""
    try:
        ensure_default_client(tenant)
        if request.method != "POST":
            raise OAuthError(405, "invalid_request", "use POST")
        raw = await request.body()
        if len(raw) > 64_000:
            raise OAuthError(400, "invalid_request", "body is too large")
        form = _form(raw)
        if form.get("grant_type") != "client_credentials":
            raise OAuthError(400, "unsupported_grant_type", "grant_type must be client_credentials")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise OAuthError(
                400, "invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}"
            )
        assertion = form.get("client_assertion") or ""
        if not assertion:
            raise OAuthError(400, "invalid_request", "client_assertion is required")
        scopes = _granted_scopes(form.get("scope", ""))
        client_id = _verify_assertion(tenant, assertion, form.get("client_id"))
    except OAuthError as err:
        return err.response()
    now = tenant.now()
    ttl = int(tenant.config.smart_token_ttl)
    token = secrets.token_urlsafe(32)
    with tenant.db.transaction() as conn:
        conn.execute("DELETE FROM fhir_smart_tokens WHERE expires_at < ?", (to_db_instant(now),))
        conn.execute(
            "INSERT INTO fhir_smart_tokens(access_token, client_id, scopes_json, issued_at, "
            "expires_at) VALUES (?, ?, ?, ?, ?)",
            (
                token,
                client_id,
                dumps(list(scopes)),
                to_db_instant(now),
                to_db_instant(now + timedelta(seconds=ttl)),
            ),
        )
    body = {
        "access_token": token,
        "token_type": "bearer",
        "expires_in": ttl,
        "scope": " ".join(scopes),
    }
    return Response(
        orjson.dumps(body),
        media_type="application/json",
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


# --- bearer checks ----------------------------------------------------------------------------


def _unauthorized(text: str) -> FhirError:
    return FhirError(401, "login", text, headers={"WWW-Authenticate": 'Bearer realm="fhir"'})


def authenticate(tenant: Tenant, authorization: str | None) -> SmartGrant:
    """Resolve a Connector bearer token.

    Raises:
        FhirError: 401 without a valid, unexpired token.
    """
    ensure_schema(tenant)
    header = (authorization or "").strip()
    if not header.lower().startswith("bearer "):
        raise _unauthorized("A bearer token is required")
    token = header[7:].strip()
    row = tenant.db.one("SELECT * FROM fhir_smart_tokens WHERE access_token = ?", (token,))
    if row is None:
        raise _unauthorized("The bearer token is invalid")
    if from_db_instant(row["expires_at"]) <= tenant.now():
        raise _unauthorized("The bearer token has expired")
    return SmartGrant(
        access_token=token, client_id=row["client_id"], scopes=tuple(loads(row["scopes_json"]))
    )


def require(grant: SmartGrant, *resource_types: str) -> None:
    """Check that the grant may read every type given.

    Raises:
        FhirError: 403 when a scope is missing.
    """
    for resource_type in resource_types:
        if not grant.allows(resource_type):
            raise FhirError(
                403,
                "forbidden",
                f"The token's scopes do not allow reading {resource_type}",
                headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'},
            )


def smart_configuration(tenant: Tenant) -> dict[str, Any]:
    """The ``.well-known/smart-configuration`` document (backend services only)."""
    return {
        "issuer": f"{public_base(tenant)}/api/fhir",
        "token_endpoint": token_url(tenant),
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": supported_scopes(),
        "response_types_supported": ["token"],
        "capabilities": ["client-confidential-asymmetric", "permission-v1"],
    }
