"""Envelope encryption of upstream credentials."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carebridge.errors import ConfigError
from carebridge.store.vault import KEY_BYTES, KeyRing, Sealed, Vault, VaultError


@pytest.fixture
def vault() -> Vault:
    return Vault(KeyRing.generate())


@settings(max_examples=50, derandomize=True, database=None)
@given(
    secret=st.binary(max_size=512),
    tenant=st.text(min_size=1, max_size=20),
    name=st.text(min_size=1, max_size=20),
)
def test_a_sealed_secret_opens_for_its_tenant_and_slot(
    secret: bytes, tenant: str, name: str
) -> None:
    vault = Vault(KeyRing({"k1": bytes(range(KEY_BYTES))}, "k1"))
    sealed = vault.seal(tenant, name, secret)
    assert vault.open(tenant, name, sealed) == secret
    assert Sealed.from_text(sealed.to_text()) == sealed


def test_the_sealed_form_does_not_contain_the_secret(vault: Vault) -> None:
    sealed = vault.seal("t1", "portal.password", "sandbox-Password-1")
    assert "sandbox-Password-1" not in sealed.to_text()
    assert "sandbox-Password-1" not in repr(sealed)
    assert vault.seal("t1", "portal.password", "x") != vault.seal("t1", "portal.password", "x")


@pytest.mark.parametrize(
    ("tenant", "name"), [("t2", "portal.password"), ("t1", "v2.refresh_token")]
)
def test_another_tenant_or_slot_cannot_open_it(vault: Vault, tenant: str, name: str) -> None:
    sealed = vault.seal("t1", "portal.password", "secret")
    with pytest.raises(VaultError) as err:
        vault.open(tenant, name, sealed)
    assert "secret" not in str(err.value).replace("sealed secret", "")


@pytest.mark.parametrize("field", ["ciphertext", "nonce", "wrapped_key"])
def test_tampering_is_detected(vault: Vault, field: str) -> None:
    sealed = vault.seal("t1", "totp", "JBSWY3DPEHPK3PXP")
    value = getattr(sealed, field)
    flipped = ("A" if value[0] != "A" else "B") + value[1:]
    with pytest.raises(VaultError):
        vault.open("t1", "totp", dataclasses.replace(sealed, **{field: flipped}))


def test_rotation_rewraps_without_reencrypting_and_retires_the_old_key() -> None:
    old = KeyRing.generate("k1")
    sealed = Vault(old).seal("t1", "v2.client_secret", "s3cret")
    ring = old.with_primary("k2", bytes(KEY_BYTES))
    rotated = Vault(ring).rewrap(sealed)
    assert rotated.kid == "k2"
    assert (rotated.nonce, rotated.ciphertext) == (sealed.nonce, sealed.ciphertext)
    retired = Vault(KeyRing({"k2": ring.keys["k2"]}, "k2"))
    assert retired.open_text("t1", "v2.client_secret", rotated) == "s3cret"
    with pytest.raises(VaultError, match="not in the key ring"):
        retired.open("t1", "v2.client_secret", sealed)
    assert Vault(ring).rewrap(rotated) is rotated


def test_key_ring_text_round_trip_and_primary_first() -> None:
    ring = KeyRing.generate("a").with_primary("b", bytes(range(KEY_BYTES)))
    again = KeyRing.parse(ring.to_text())
    assert again.primary == "b"
    assert again.keys == ring.keys


def test_key_ring_from_env_and_file(tmp_path: Path) -> None:
    key = base64.urlsafe_b64encode(bytes(KEY_BYTES)).decode()
    assert KeyRing.from_env({"CAREBRIDGE_VAULT_KEY": key}).primary == "k1"
    path = tmp_path / "vault.key"
    path.write_text(f"main:{key}\n")
    assert KeyRing.from_env({"CAREBRIDGE_VAULT_KEY_FILE": str(path)}).primary == "main"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "set CAREBRIDGE_VAULT_KEY"),
        ({"CAREBRIDGE_VAULT_KEY": "!!!"}, "not urlsafe base64"),
        ({"CAREBRIDGE_VAULT_KEY": base64.urlsafe_b64encode(b"short").decode()}, "must be 32 bytes"),
        ({"CAREBRIDGE_VAULT_KEY": "a:AAAA,a:AAAA"}, "appears twice"),
        ({"CAREBRIDGE_VAULT_KEY_FILE": "/nonexistent/vault.key"}, "cannot read the vault key file"),
    ],
)
def test_bad_keys_are_config_errors(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        KeyRing.from_env(environ)


def test_garbage_is_not_a_sealed_secret() -> None:
    with pytest.raises(VaultError):
        Sealed.from_text("v2.a.b.c.d")
