"""API keys and their scopes: minted once, stored hashed, checked in constant time.

A key reads ``cbk_<prefix>_<secret>``. The prefix (12 characters) is stored in clear and
identifies the key in listings and lookups; only a SHA-256 hash of the secret is stored, so a
leaked database does not leak usable keys (the secret has 256 bits, so a fast hash suffices).
Scopes are SMART-style ``<resource>.<read|write>`` plus ``admin``, which grants everything; the
resources are the kinds' scopes in :mod:`carebridge.domain.kinds` and the operations'.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from carebridge.domain.kinds import KINDS
from carebridge.errors import InvalidScopes as InvalidScopes

OPERATIONS = ("audit", "event", "webhook", "sync")
"""Resources that are not kinds of record: the audit log, the event log, webhook
subscriptions and syncs."""
RESOURCES: tuple[str, ...] = (
    *dict.fromkeys(kind.scope for kind in KINDS.values()),
    *OPERATIONS,
)
"""Every scope resource: each kind's (from the registry of kinds), then the operations'."""
SCOPES: frozenset[str] = frozenset(
    {f"{r}.{a}" for r in RESOURCES for a in ("read", "write")} | {"admin"}
)
_KEY = re.compile(r"^cbk_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class MintedKey:
    """A new key: ``display`` is shown once; the rest is what the store keeps."""

    display: str
    prefix: str
    secret_hash: str


def parse_scopes(text: str | list[str]) -> frozenset[str]:
    """``patient.read,appointment.write`` (or a list) as a validated set."""
    items = text.split(",") if isinstance(text, str) else text
    scopes = {s.strip() for s in items if s.strip()}
    unknown = sorted(scopes - SCOPES)
    if unknown:
        raise InvalidScopes(unknown)
    if not scopes:
        raise InvalidScopes(["(none)"])
    return frozenset(scopes)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def mint() -> MintedKey:
    """A fresh key."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    prefix = "".join(secrets.choice(alphabet) for _ in range(12))
    secret = secrets.token_urlsafe(32)
    return MintedKey(display=f"cbk_{prefix}_{secret}", prefix=prefix, secret_hash=_hash(secret))


def split(key: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed key, else None."""
    match = _KEY.match(key.strip())
    return (match.group(1), match.group(2)) if match else None


def verify(key: str, secret_hash: str) -> bool:
    """Whether ``key``'s secret hashes to ``secret_hash`` (constant-time comparison)."""
    parts = split(key)
    return parts is not None and hmac.compare_digest(_hash(parts[1]), secret_hash)


def allows(granted: frozenset[str], required: str) -> bool:
    """Whether the granted scopes cover ``required``; ``admin`` covers everything."""
    return "admin" in granted or required in granted
