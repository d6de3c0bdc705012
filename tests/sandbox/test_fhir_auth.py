"""SMART backend services of the Connector, over real HTTP, with assertions built by PyJWT."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fhir.resources.R4B import get_fhir_model_class
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from tests.support.sandbox import (
    LiveTenant,
    fhir_base,
    smart_assertion,
    smart_credentials,
    smart_token,
    smart_token_response,
)


@pytest.fixture(scope="module")
def live(fhir_live: LiveTenant) -> LiveTenant:
    """The Connector modules share one tenant (see ``fhir_live``)."""
    return fhir_live


def _public_jwk(private_key: Any, kid: str, alg: str) -> dict[str, Any]:
    algorithm = RSAAlgorithm if alg == "RS384" else ECAlgorithm
    jwk: dict[str, Any] = algorithm.to_jwk(private_key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


def _register(
    live: LiveTenant, fhir_http: httpx.Client, client_id: str, keys: list[dict[str, Any]]
) -> httpx.Response:
    return fhir_http.post(
        f"{live.base_url}/_sandbox/smart/clients",
        json={"client_id": client_id, "jwks": {"keys": keys}},
    )


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _oauth_error(r: httpx.Response) -> str:
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["cache-control"] == "no-store"
    return str(r.json()["error"])


def test_es384_assertion_of_the_default_client_gets_a_token(
    live: LiveTenant, fhir_http: httpx.Client
) -> None:
    r = smart_token_response(live, smart_assertion(live), http=fhir_http)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == live.tenant.config.smart_token_ttl
    assert body["scope"] == "system/*.read"
    patients = fhir_http.get(
        f"{fhir_base(live)}/Patient", params={"_count": 1}, headers=_bearer(body["access_token"])
    )
    assert patients.status_code == 200
    assert patients.headers["content-type"].startswith("application/fhir+json")


def test_the_default_client_key_is_generated_once_and_kept(
    live: LiveTenant, fhir_http: httpx.Client
) -> None:
    first, second = smart_credentials(live), smart_credentials(live)
    assert first["private_key_pem"] == second["private_key_pem"]
    assert first["kid"] == second["kid"]
    assert live.tenant.db.get_meta("fhir.smart.default_key") is not None
    codes = [p["fhir_code"] for p in first["practices"]]
    assert first["fhir_base"] == {code: f"{live.base_url}/api/fhir/R4/{code}" for code in codes}


def test_rs384_client_registered_through_the_control_plane(
    live: LiveTenant, fhir_http: httpx.Client
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    r = _register(live, fhir_http, "rs-client", [_public_jwk(key, "rs-1", "RS384")])
    assert r.status_code == 201, r.text
    assertion = smart_assertion(
        live, client_id="rs-client", private_key=key, kid="rs-1", algorithm="RS384"
    )
    token = smart_token_response(
        live, assertion, "system/Patient.read system/Observation.read", http=fhir_http
    )
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == "system/Patient.read system/Observation.read"
    listed = fhir_http.get(f"{live.base_url}/_sandbox/smart/clients").json()["clients"]
    assert {"rs-client", smart_credentials(live)["client_id"]} <= {x["client_id"] for x in listed}


def test_registration_refuses_private_keys_and_garbage(
    live: LiveTenant, fhir_http: httpx.Client
) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    private = ECAlgorithm.to_jwk(key, as_dict=True)
    assert _register(live, fhir_http, "leaky", [private]).status_code == 400
    assert _register(live, fhir_http, "empty", []).status_code == 400
    assert _register(live, fhir_http, "", [_public_jwk(key, "k", "ES384")]).status_code == 400
    bad_point = {"kty": "EC", "crv": "P-384", "x": "AAAA", "y": "AAAA"}
    assert _register(live, fhir_http, "bad-point", [bad_point]).status_code == 400
    url = f"{live.base_url}/_sandbox/smart/clients"
    assert fhir_http.post(url, content=b"[1]").status_code == 400
    assert fhir_http.post(url, content=b"{nope").status_code == 400


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("wrong_aud", "invalid_client"),
        ("expired", "invalid_client"),
        ("too_far_ahead", "invalid_client"),
        ("no_exp", "invalid_client"),
        ("no_jti", "invalid_client"),
        ("unknown_client", "invalid_client"),
        ("bad_signature", "invalid_client"),
        ("iss_not_sub", "invalid_client"),
        ("hs256", "invalid_client"),
        ("not_a_jwt", "invalid_client"),
        ("bad_scope", "invalid_scope"),
        ("no_scope", "invalid_scope"),
    ],
)
def test_bad_assertions_are_refused(
    live: LiveTenant, fhir_http: httpx.Client, case: str, error: str
) -> None:
    now = int(live.clock.now().timestamp())
    scope = "system/*.read"
    if case == "wrong_aud":
        assertion = smart_assertion(live, aud=f"{live.base_url}/oauth2/access_token")
    elif case == "expired":
        assertion = smart_assertion(live, exp=now - 1)
    elif case == "too_far_ahead":
        assertion = smart_assertion(live, exp=now + 301)
    elif case == "no_exp":
        assertion = smart_assertion(live, exp=None)
    elif case == "no_jti":
        assertion = smart_assertion(live, jti=None)
    elif case == "unknown_client":
        assertion = smart_assertion(live, client_id="nobody")
    elif case == "bad_signature":
        other = ec.generate_private_key(ec.SECP384R1())
        assertion = smart_assertion(live, private_key=other)
    elif case == "iss_not_sub":
        assertion = smart_assertion(live, sub="someone-else")
    elif case == "hs256":
        assertion = jwt.encode(
            {"iss": "x", "sub": "x", "aud": "a", "exp": now + 60, "jti": "j"},
            "a-shared-secret-of-at-least-32-bytes!",
            algorithm="HS256",
        )
    elif case == "not_a_jwt":
        assertion = "not.a.jwt"
    elif case == "bad_scope":
        assertion, scope = smart_assertion(live), "patient/*.read"
    else:
        assertion, scope = smart_assertion(live), ""
    r = smart_token_response(live, assertion, scope, http=fhir_http)
    assert r.status_code in (400, 401)
    assert _oauth_error(r) == error


def test_a_jti_is_good_once(live: LiveTenant, fhir_http: httpx.Client) -> None:
    assertion = smart_assertion(live, jti=f"once-{uuid.uuid4()}")
    assert smart_token_response(live, assertion, http=fhir_http).status_code == 200
    replay = smart_token_response(live, assertion, http=fhir_http)
    assert replay.status_code == 401
    assert _oauth_error(replay) == "invalid_client"


def test_a_failed_assertion_does_not_burn_its_jti(
    live: LiveTenant, fhir_http: httpx.Client
) -> None:
    jti = f"keep-{uuid.uuid4()}"
    wrong = smart_assertion(live, jti=jti, aud="https://elsewhere.example/token")
    assert smart_token_response(live, wrong, http=fhir_http).status_code == 401
    assert (
        smart_token_response(live, smart_assertion(live, jti=jti), http=fhir_http).status_code
        == 200
    )


def test_grant_and_assertion_type_are_checked(live: LiveTenant, fhir_http: httpx.Client) -> None:
    r = smart_token_response(
        live, smart_assertion(live), http=fhir_http, grant_type="authorization_code"
    )
    assert _oauth_error(r) == "unsupported_grant_type"
    r = smart_token_response(
        live, smart_assertion(live), http=fhir_http, client_assertion_type="basic"
    )
    assert _oauth_error(r) == "invalid_request"
    r = smart_token_response(
        live, smart_assertion(live), http=fhir_http, client_id="not-the-issuer"
    )
    assert _oauth_error(r) == "invalid_client"
    assert fhir_http.get(smart_credentials(live)["token_url"]).status_code == 405


def test_tokens_expire_on_the_tenant_clock(live: LiveTenant, fhir_http: httpx.Client) -> None:
    token = smart_token(live, http=fhir_http)
    base = fhir_base(live)
    assert fhir_http.get(f"{base}/Practitioner", headers=_bearer(token)).status_code == 200
    live.clock.advance(timedelta(seconds=live.tenant.config.smart_token_ttl))
    expired = fhir_http.get(f"{base}/Practitioner", headers=_bearer(token))
    assert expired.status_code == 401
    assert expired.json()["resourceType"] == "OperationOutcome"
    assert expired.headers["www-authenticate"].startswith("Bearer")


def test_401_without_or_with_a_foreign_token(live: LiveTenant, fhir_http: httpx.Client) -> None:
    base = fhir_base(live)
    v2_token = live.token(0)
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Bearer {v2_token}"}):
        r = fhir_http.get(f"{base}/Patient", headers=headers)
        assert r.status_code == 401
        outcome = r.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["code"] == "login"


def test_403_outside_the_granted_scopes(live: LiveTenant, fhir_http: httpx.Client) -> None:
    token = smart_token(live, "system/Patient.read", http=fhir_http)
    base = fhir_base(live)
    headers = _bearer(token)
    assert fhir_http.get(f"{base}/Patient", headers=headers).status_code == 200
    r = fhir_http.get(f"{base}/Observation", headers=headers)
    assert r.status_code == 403
    assert r.json()["issue"][0]["code"] == "forbidden"
    group = smart_credentials(live)["practices"][0]["group_id"]
    assert fhir_http.get(f"{base}/Group/{group}", headers=headers).status_code == 403


def test_discovery_documents_at_the_root_and_per_practice(
    live: LiveTenant, fhir_http: httpx.Client
) -> None:
    creds = smart_credentials(live)
    for prefix in (live.base_url, fhir_base(live)):
        config = fhir_http.get(f"{prefix}/.well-known/smart-configuration")
        assert config.status_code == 200
        body = config.json()
        assert body["token_endpoint"] == creds["token_url"]
        assert "private_key_jwt" in body["token_endpoint_auth_methods_supported"]
        assert {"RS384", "ES384"} <= set(body["token_endpoint_auth_signing_alg_values_supported"])
        assert "system/*.read" in body["scopes_supported"]
        metadata = fhir_http.get(f"{prefix}/metadata")
        assert metadata.status_code == 200
        statement = metadata.json()
        assert statement["fhirVersion"] == "4.0.1"
        get_fhir_model_class("CapabilityStatement").model_validate(statement)
        types = {r["type"] for r in statement["rest"][0]["resource"]}
        assert {"Patient", "Observation", "Coverage", "Group"} <= types
    assert fhir_http.get(f"{live.base_url}/api/fhir/R4/NOPE/metadata").status_code == 404


def test_deleting_a_client_revokes_its_tokens(live: LiveTenant, fhir_http: httpx.Client) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    assert (
        _register(live, fhir_http, "short-lived", [_public_jwk(key, "e1", "ES384")]).status_code
        == 201
    )
    assertion = smart_assertion(live, client_id="short-lived", private_key=key, kid="e1")
    token = smart_token_response(live, assertion, http=fhir_http).json()["access_token"]
    url = f"{fhir_base(live)}/Location"
    assert fhir_http.get(url, headers=_bearer(token)).status_code == 200
    gone = fhir_http.delete(f"{live.base_url}/_sandbox/smart/clients/short-lived")
    assert gone.status_code == 204
    assert fhir_http.get(url, headers=_bearer(token)).status_code == 401
    again = fhir_http.delete(f"{live.base_url}/_sandbox/smart/clients/short-lived")
    assert again.status_code == 404
