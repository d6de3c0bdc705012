"""The tenant remembers the access tokens it has read, and forgets them on any write: a token
revoked or cut short in the database is refused on the next request, one that expires is
refused once the clock passes its expiry, and the hidden rate limit still tells clients apart."""

from __future__ import annotations

from datetime import timedelta

from tests.support.sandbox import LiveTenant

from carecloud_sandbox import personas


def _show(live: LiveTenant, token: str) -> tuple[int, str]:
    with live.client(token) as c:
        r = c.get(f"/v2/patients/{personas.JORDAN.id}")
    return r.status_code, r.text


def test_a_token_revoked_in_the_database_is_refused_on_the_next_request(
    live: LiveTenant,
) -> None:
    token = live.token(0)
    assert _show(live, token)[0] == 200
    with live.tenant.db.transaction() as conn:
        conn.execute("UPDATE oauth_tokens SET revoked = 1 WHERE access_token = ?", (token,))
    assert _show(live, token) == (401, '{"error":"Access token is invalid"}')


def test_a_token_cut_short_in_the_database_is_refused_as_expired(live: LiveTenant) -> None:
    token = live.token(0)
    assert _show(live, token)[0] == 200
    with live.tenant.db.transaction() as conn:
        conn.execute(
            "UPDATE oauth_tokens SET expires_at = '2000-01-01T00:00:00Z' WHERE access_token = ?",
            (token,),
        )
    assert _show(live, token) == (401, '{"error":"Access token has expired"}')


def test_a_remembered_token_expires_with_the_clock(live: LiveTenant) -> None:
    token = live.token(0)
    assert _show(live, token)[0] == 200
    live.clock.advance(timedelta(seconds=live.tenant.config.access_token_ttl))
    assert _show(live, token) == (401, '{"error":"Access token has expired"}')


def test_the_hidden_limit_still_counts_each_client_apart(live: LiveTenant) -> None:
    main = live.token(0)
    limited = live.token(0, live.credentials["limited_client"]["client_id"])
    with live.client() as control:
        control.put("/_sandbox/settings", json={"rate_limit_rps": 1, "rate_limit_burst": 2})
        try:
            assert [_show(live, main)[0] for _ in range(3)] == [200, 200, 429]
            assert [_show(live, limited)[0] for _ in range(3)] == [200, 200, 429]
        finally:
            control.put("/_sandbox/settings", json={"rate_limit_rps": 0})
