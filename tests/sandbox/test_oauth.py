"""OAuth 2.0 of the emulated tenant (upstream/carecloud.md §2.2), over real HTTP."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from tests.support.sandbox import ANCHOR, LiveTenant, start_live

from carecloud_sandbox import personas
from carecloud_sandbox.config import SandboxConfig


def _authorize(live: LiveTenant, **params: str) -> httpx.Response:
    creds = live.credentials
    query = {
        "client_id": creds["client_id"],
        "response_type": "code",
        "practice_id": creds["practices"][0]["business_entity_id"],
        "redirect_uri": creds["redirect_uri"],
        **params,
    }
    with live.client() as c:
        return c.get("/oauth2/authorize", params=query)


def _exchange(live: LiveTenant, code: str, **extra: str) -> httpx.Response:
    creds = live.credentials
    with live.client() as c:
        return c.post(
            "/oauth2/access_token",
            auth=(creds["client_id"], creds["client_secret"]),
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": creds["redirect_uri"],
                **extra,
            },
        )


def test_authorization_code_flow_consents_redirects_and_exchanges(live: LiveTenant) -> None:
    r = _authorize(live, state="xyz")
    assert r.status_code == 302
    location = urlsplit(r.headers["location"])
    assert location.path == "/oauth2/callback"
    query = parse_qs(location.query)
    assert query["state"] == ["xyz"]
    token = _exchange(live, query["code"][0])
    assert token.status_code == 200
    body = token.json()
    assert next(iter(body)) == "access_token", "access_token is the first field (§2.2)"
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == live.tenant.config.access_token_ttl
    assert body["refresh_token"]


def test_a_code_is_redeemable_once(live: LiveTenant) -> None:
    code = parse_qs(urlsplit(_authorize(live).headers["location"]).query)["code"][0]
    assert _exchange(live, code).status_code == 200
    again = _exchange(live, code)
    assert again.status_code == 400
    assert again.json() == {"error": "invalid_grant"}


def test_authorize_refuses_unknown_client_practice_and_redirect(live: LiveTenant) -> None:
    assert _authorize(live, client_id="nope").status_code == 400
    assert _authorize(live, practice_id="00000000-0000-0000-0000-000000000000").status_code == 400
    assert _authorize(live, redirect_uri="http://evil.example/cb").status_code == 400
    r = _authorize(live, response_type="token")
    assert r.status_code == 400
    assert r.json() == {"error": "unsupported_response_type"}


def test_token_endpoint_requires_http_basic_client_auth(live: LiveTenant) -> None:
    creds = live.credentials
    refresh = creds["practices"][0]["refresh_token"]
    with live.client() as c:
        no_auth = c.post(
            "/oauth2/access_token", data={"grant_type": "refresh_token", "refresh_token": refresh}
        )
        wrong = c.post(
            "/oauth2/access_token",
            auth=(creds["client_id"], "wrong"),
            data={"grant_type": "refresh_token", "refresh_token": refresh},
        )
        garbage = c.post(
            "/oauth2/access_token",
            headers={"Authorization": "Basic !!!"},
            data={"grant_type": "refresh_token", "refresh_token": refresh},
        )
    for r in (no_auth, wrong, garbage):
        assert r.status_code == 401
        assert r.json() == {"error": "invalid_client"}


def test_refresh_grant_keeps_the_refresh_token_without_rotation(live: LiveTenant) -> None:
    creds = live.credentials
    refresh = creds["practices"][0]["refresh_token"]
    with live.client() as c:
        r = c.post(
            "/oauth2/access_token",
            auth=(creds["client_id"], creds["client_secret"]),
            data={"grant_type": "refresh_token", "refresh_token": refresh},
        )
        json_body = c.post(
            "/oauth2/access_token",
            auth=(creds["client_id"], creds["client_secret"]),
            json={"grant_type": "refresh_token", "refresh_token": refresh},
        )
    assert r.status_code == 200
    assert r.json()["refresh_token"] == refresh
    assert json_body.status_code == 200, "the upstream also accepts a JSON token request"


def test_unknown_grant_type_is_refused(live: LiveTenant) -> None:
    creds = live.credentials
    with live.client() as c:
        r = c.post(
            "/oauth2/access_token",
            auth=(creds["client_id"], creds["client_secret"]),
            data={"grant_type": "password"},
        )
    assert r.status_code == 400
    assert r.json() == {"error": "unsupported_grant_type"}


def test_token_info_reports_time_remaining_as_the_clock_moves(live: LiveTenant) -> None:
    token = live.token(0)
    with live.client(token) as c:
        first = c.get("/oauth2/token_info").json()
        live.clock.advance(timedelta(seconds=600))
        second = c.get("/v2/oauth2/token_info").json()
    assert set(first) == {"access_token", "type", "expires_in", "scope"}
    assert first["expires_in"] - second["expires_in"] == 600


def test_authorization_describes_practice_application_and_user(live: LiveTenant) -> None:
    with live.client(live.token(0)) as c:
        body = c.get("/oauth2/authorization").json()
    assert body["business_entity"] == {
        "id": personas.PRACTICE_GUID,
        "name": personas.PRACTICE_NAME,
    }
    assert body["application"] == {"id": personas.APP_ID}
    assert body["user"]["id"] == personas.USER_ID
    assert isinstance(body["scopes"], list)
    assert body["type"] == "Bearer"


def test_missing_token_is_401_with_the_upstream_message(live: LiveTenant) -> None:
    with live.client() as c:
        r = c.get("/oauth2/token_info")
    assert r.status_code == 401
    assert r.json() == {"error": "Access token is required"}


def test_bearer_prefix_is_optional_as_upstream_strips_it(live: LiveTenant) -> None:
    token = live.token(0)
    with live.client() as c:
        r = c.get("/oauth2/token_info", headers={"Authorization": token})
    assert r.status_code == 200


def test_expired_access_token_is_401_and_refresh_gives_a_working_one(live: LiveTenant) -> None:
    token = live.token(0)
    live.clock.advance(timedelta(seconds=live.tenant.config.access_token_ttl + 1))
    with live.client(token) as c:
        r = c.get("/oauth2/token_info")
    assert r.status_code == 401
    with live.client(live.token(0)) as c:
        assert c.get("/oauth2/token_info").status_code == 200


@pytest.fixture(scope="module")
def rotating() -> object:
    config = SandboxConfig(
        seed=7,
        patients=10,
        practices=2,
        anchor=ANCHOR,
        rotate_refresh_tokens=True,
        access_token_ttl=120,
    )
    live, stop = start_live(config)
    yield live
    stop()


def test_rotation_issues_a_new_refresh_token_and_revokes_the_old(rotating: LiveTenant) -> None:
    creds = rotating.credentials
    old = creds["practices"][0]["refresh_token"]
    with rotating.client() as c:
        first = c.post(
            "/oauth2/access_token",
            auth=(creds["client_id"], creds["client_secret"]),
            data={"grant_type": "refresh_token", "refresh_token": old},
        )
        replay = c.post(
            "/oauth2/access_token",
            auth=(creds["client_id"], creds["client_secret"]),
            data={"grant_type": "refresh_token", "refresh_token": old},
        )
        new = first.json()["refresh_token"]
        second = c.post(
            "/oauth2/access_token",
            auth=(creds["client_id"], creds["client_secret"]),
            data={"grant_type": "refresh_token", "refresh_token": new},
        )
    assert first.status_code == 200
    assert first.json()["expires_in"] == 120, "the TTL is configurable"
    assert new != old
    assert replay.status_code == 400
    assert second.status_code == 200


def test_limited_client_gets_403_on_endpoints_outside_its_privileges(live: LiveTenant) -> None:
    token = live.token(0, client_id=live.credentials["limited_client"]["client_id"])
    with live.client(token) as c:
        r = c.post("/v2/patients", json={"patient": {"first_name": "A", "last_name": "B"}})
    assert r.status_code == 403
    assert r.json() == {"error": "This token does not have privileges for the requested endpoint"}
