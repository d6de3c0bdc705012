"""Envelope encryption of upstream credentials (passwords, TOTP seeds, refresh tokens, keys).

Each secret gets its own random 256-bit data key; the secret is sealed with AES-256-GCM under
that key, bound by its associated data to the tenant and the secret's name, so a sealed value
copied to another tenant or slot does not open. The data key is itself wrapped with AES-GCM
under a key-encryption key (KEK) named by a key id. The KEK comes from ``CAREBRIDGE_VAULT_KEY``
(urlsafe base64 of 32 bytes, optionally ``kid:key``; several separated by commas, the first is
primary) or from a key file with the same content.

Rotation adds a new primary KEK and re-wraps each data key under it: the sealed secrets
themselves are not re-encrypted, and an old KEK can be dropped once nothing uses it. Nothing
here logs or repeats a secret.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from carebridge.errors import ConfigError
from carebridge.errors import VaultError as VaultError

KEY_BYTES = 32
NONCE_BYTES = 12
ENV_KEY = "CAREBRIDGE_VAULT_KEY"
ENV_KEY_FILE = "CAREBRIDGE_VAULT_KEY_FILE"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    padded = (text + "=" * (-len(text) % 4)).encode()
    return base64.b64decode(padded, altchars=b"-_", validate=True)


@dataclass(frozen=True)
class Sealed:
    """One sealed secret as stored: all fields are text, safe for any column type."""

    kid: str
    wrapped_key: str  # nonce + AES-GCM(data key) under the KEK
    nonce: str
    ciphertext: str

    def to_text(self) -> str:
        """A single-line form, ``v1.kid.wrapped.nonce.ciphertext``."""
        return ".".join(("v1", self.kid, self.wrapped_key, self.nonce, self.ciphertext))

    @classmethod
    def from_text(cls, text: str) -> Sealed:
        """Parse :meth:`to_text`."""
        parts = text.split(".")
        if len(parts) != 5 or parts[0] != "v1":
            raise VaultError("not a sealed secret")
        return cls(*parts[1:])


class KeyRing:
    """Key-encryption keys by id; the first is the primary that seals and wraps."""

    def __init__(self, keys: Mapping[str, bytes], primary: str) -> None:
        if primary not in keys:
            raise ConfigError("the primary vault key is not in the key ring")
        for kid, key in keys.items():
            if len(key) != KEY_BYTES:
                raise ConfigError(f"vault key {kid!r} must be {KEY_BYTES} bytes")
            if not kid or "." in kid or ":" in kid or "," in kid:
                raise ConfigError("a vault key id must be non-empty, without '.', ':' or ','")
        self.keys = dict(keys)
        self.primary = primary

    @classmethod
    def generate(cls, kid: str = "k1") -> KeyRing:
        """A ring with one fresh random key (for ``carebridge vault init`` and tests)."""
        return cls({kid: secrets.token_bytes(KEY_BYTES)}, kid)

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        """``[kid:]base64key[,kid:base64key...]``; a key without an id is ``k1``, ``k2`` ..."""
        keys: dict[str, bytes] = {}
        order: list[str] = []
        for n, item in enumerate(p.strip() for p in text.split(",") if p.strip()):
            kid, _, encoded = item.rpartition(":")
            kid = kid or f"k{n + 1}"
            try:
                key = _unb64(encoded)
            except (binascii.Error, ValueError):
                raise ConfigError(f"vault key {kid!r} is not urlsafe base64") from None
            if kid in keys:
                raise ConfigError(f"vault key id {kid!r} appears twice")
            keys[kid] = key
            order.append(kid)
        if not order:
            raise ConfigError("no vault key given")
        return cls(keys, order[0])

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KeyRing:
        """From ``CAREBRIDGE_VAULT_KEY``, else the file named by ``CAREBRIDGE_VAULT_KEY_FILE``."""
        env = os.environ if environ is None else environ
        if env.get(ENV_KEY):
            return cls.parse(env[ENV_KEY])
        path = env.get(ENV_KEY_FILE)
        if path:
            try:
                return cls.parse(Path(path).read_text(encoding="utf-8"))
            except OSError as err:
                raise ConfigError(f"cannot read the vault key file ({err.strerror})") from None
        raise ConfigError(f"set {ENV_KEY} or {ENV_KEY_FILE}")

    def to_text(self) -> str:
        """The ring in :meth:`parse` form, primary first (to write a key file)."""
        order = [self.primary, *(k for k in self.keys if k != self.primary)]
        return ",".join(f"{kid}:{_b64(self.keys[kid])}" for kid in order)

    def with_primary(self, kid: str, key: bytes) -> KeyRing:
        """This ring with a new primary key (rotation); the old keys stay for unwrapping."""
        return KeyRing({kid: key, **{k: v for k, v in self.keys.items() if k != kid}}, kid)


def needs_vault(vault: Vault | None) -> Vault:
    """The vault, or :class:`ConfigError` when no key ring was configured."""
    if vault is None:
        raise ConfigError(f"set {ENV_KEY} or {ENV_KEY_FILE}")
    return vault


def _aad(tenant: str, name: str) -> bytes:
    return f"carebridge-vault:v1:{tenant}:{name}".encode()


class Vault:
    """Seals and opens secrets with a key ring."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    def seal(self, tenant: str, name: str, secret: str | bytes) -> Sealed:
        """Encrypt ``secret`` for ``tenant``'s slot ``name``."""
        plain = secret.encode() if isinstance(secret, str) else secret
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = AESGCM(data_key).encrypt(nonce, plain, _aad(tenant, name))
        return Sealed(
            kid=self.ring.primary,
            wrapped_key=self._wrap(self.ring.primary, data_key),
            nonce=_b64(nonce),
            ciphertext=_b64(ciphertext),
        )

    def open(self, tenant: str, name: str, sealed: Sealed) -> bytes:
        """Decrypt a sealed secret of ``tenant``'s slot ``name``.

        Raises:
            VaultError: unknown key id, or the bytes do not authenticate (tampered, or sealed
                for another tenant or slot).
        """
        data_key = self._unwrap(sealed)
        try:
            return AESGCM(data_key).decrypt(
                _unb64(sealed.nonce), _unb64(sealed.ciphertext), _aad(tenant, name)
            )
        except (InvalidTag, binascii.Error, ValueError):
            raise VaultError("the sealed secret does not open for this tenant and slot") from None

    def open_text(self, tenant: str, name: str, sealed: Sealed) -> str:
        """:meth:`open`, decoded as UTF-8."""
        return self.open(tenant, name, sealed).decode()

    def rewrap(self, sealed: Sealed) -> Sealed:
        """The same secret with its data key wrapped under the primary KEK (rotation)."""
        if sealed.kid == self.ring.primary:
            return sealed
        data_key = self._unwrap(sealed)
        return Sealed(
            self.ring.primary,
            self._wrap(self.ring.primary, data_key),
            sealed.nonce,
            sealed.ciphertext,
        )

    def _wrap(self, kid: str, data_key: bytes) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        wrapped = AESGCM(self.ring.keys[kid]).encrypt(nonce, data_key, f"kek:{kid}".encode())
        return _b64(nonce + wrapped)

    def _unwrap(self, sealed: Sealed) -> bytes:
        key = self.ring.keys.get(sealed.kid)
        if key is None:
            raise VaultError(f"vault key {sealed.kid!r} is not in the key ring")
        try:
            raw = _unb64(sealed.wrapped_key)
            return AESGCM(key).decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], f"kek:{sealed.kid}".encode()
            )
        except (InvalidTag, binascii.Error, ValueError):
            raise VaultError("the data key does not unwrap") from None
