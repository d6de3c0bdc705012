"""API keys: minted, stored hashed, verified; scopes validated."""

from __future__ import annotations

import pytest

from carebridge.services.keys import InvalidScopes, allows, mint, parse_scopes, split, verify


def test_a_minted_key_verifies_and_the_store_never_sees_it() -> None:
    key = mint()
    assert key.display.startswith(f"cbk_{key.prefix}_")
    assert key.display.split("_", 2)[2] not in key.secret_hash
    assert verify(key.display, key.secret_hash)
    assert split(key.display) is not None
    assert mint().display != key.display


def test_a_wrong_or_malformed_key_does_not_verify() -> None:
    key = mint()
    other = mint()
    assert not verify(other.display, key.secret_hash)
    assert not verify(key.display[:-1] + ("A" if key.display[-1] != "A" else "B"), key.secret_hash)
    for bad in ("", "cbk_short_x", "Bearer " + key.display, key.display.replace("cbk_", "cbx_")):
        assert not verify(bad, key.secret_hash)


def test_scopes_parse_and_check() -> None:
    scopes = parse_scopes("patient.read, appointment.write")
    assert scopes == {"patient.read", "appointment.write"}
    assert allows(scopes, "patient.read")
    assert not allows(scopes, "claim.write")
    assert allows(parse_scopes(["admin"]), "claim.write")


@pytest.mark.parametrize("text", ["patient.delete", "patients.read,claim.write", "", " , "])
def test_unknown_or_empty_scopes_are_refused(text: str) -> None:
    with pytest.raises(InvalidScopes) as err:
        parse_scopes(text)
    assert err.value.unknown
