"""The portal's second factor: TOTP (RFC 6238) and one-time codes sent by SMS or e-mail.

TOTP here is HOTP (RFC 4226) over the time step: HMAC-SHA1 of the 8-byte big-endian step
number, dynamically truncated to 6 digits, with 30-second steps counted from the Unix epoch on
the tenant's clock. A code is accepted one step either side of now, and a step is good once per
user (``portal_user_state.last_totp_step``): a replayed code is refused.

SMS and e-mail codes are 6 random digits "sent" to the ``outbox`` table, which the control
plane lists at ``GET /_sandbox/outbox``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sqlite3
import struct
from dataclasses import dataclass
from datetime import datetime

STEP_SECONDS = 30
DIGITS = 6
WINDOW = 1  # steps accepted either side of now
METHODS: tuple[str, ...] = ("totp", "sms", "email")


def decode_seed(seed: str) -> bytes:
    """A base32 seed (any case, spaces and padding optional) as the HMAC key."""
    text = seed.replace(" ", "").upper().rstrip("=")
    return base64.b32decode(text + "=" * (-len(text) % 8))


def hotp(key: bytes, counter: int, digits: int = DIGITS) -> str:
    """The HOTP value of ``counter`` (RFC 4226 §5.3)."""
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    binary = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(binary % 10**digits).zfill(digits)


def time_step(moment: datetime) -> int:
    """The TOTP step number of an instant."""
    return int(moment.timestamp()) // STEP_SECONDS


def totp(seed: str, moment: datetime) -> str:
    """The TOTP code at ``moment``."""
    return hotp(decode_seed(seed), time_step(moment))


@dataclass(frozen=True)
class TotpCheck:
    """What a TOTP code matched: ``step`` is None when it matched no step in the window."""

    step: int | None
    reused: bool


def check_totp(seed: str, code: str, moment: datetime, last_step: int) -> TotpCheck:
    """Match ``code`` against the steps around ``moment``; a step at or before ``last_step``
    counts as a replay."""
    if len(code) != DIGITS or not (code.isascii() and code.isdigit()):
        return TotpCheck(None, False)
    key = decode_seed(seed)
    now = time_step(moment)
    for step in range(now - WINDOW, now + WINDOW + 1):
        if hmac.compare_digest(hotp(key, step), code):
            return TotpCheck(step, step <= last_step)
    return TotpCheck(None, False)


def new_code() -> str:
    """A fresh 6-digit one-time code."""
    return f"{secrets.randbelow(10**DIGITS):0{DIGITS}d}"


def mask_phone(phone: str) -> str:
    """``+12175553322`` as ``***-***-3322``."""
    digits = "".join(c for c in phone if c.isdigit())
    return f"***-***-{digits[-4:]}" if len(digits) >= 4 else "***"


def mask_email(email: str) -> str:
    """``frontdesk@maplegrove.example`` as ``f*******@maplegrove.example``."""
    local, at, domain = email.partition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}{'*' * max(len(local) - 1, 3)}@{domain}"


def destinations(phone: str, email: str) -> dict[str, str]:
    """The masked destinations of the SMS and e-mail methods."""
    return {"sms": mask_phone(phone), "email": mask_email(email)}


def send_code(
    conn: sqlite3.Connection, *, channel: str, recipient: str, code: str, at: str, ttl: int
) -> None:
    """Write the message carrying ``code`` to the outbox."""
    minutes = max(ttl // 60, 1)
    body = (
        f"Your CareCloud verification code is {code}. It expires in {minutes} minutes. "
        "Do not share it."
    )
    subject = "Your CareCloud verification code" if channel == "email" else ""
    conn.execute(
        "INSERT INTO outbox(channel, recipient, subject, body, code, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (channel, recipient, subject, body, code, at),
    )
