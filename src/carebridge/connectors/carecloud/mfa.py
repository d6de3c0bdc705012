"""Where MFA codes come from: pluggable sources the session broker asks when a flow needs one.

- :class:`TotpSource`: RFC 6238 codes from the user's seed (pyotp), never the same step twice;
- :class:`OutboxSource`: SMS and e-mail codes read from the emulated tenant's outbox
  (development and tests);
- :class:`InboundSmsSource`: codes pushed by an inbound-SMS webhook (production);
- :class:`ImapSource`: codes read from a mailbox over IMAP (production).

A source answers None when it has no code; the broker then raises ``MfaRequired``.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.utils
import imaplib
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.message import Message

import anyio.to_thread
import httpx
import pyotp

from carebridge.connectors.carecloud.auth import NeedCode

CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")


def extract_code(text: str) -> str | None:
    """The first six-digit code in a message, if any."""
    match = CODE.search(text)
    return match.group(1) if match else None


class TotpSource:
    """TOTP codes from a base32 seed on an injected clock.

    A step is used once: asking twice within one 30-second step answers the next step's code,
    which verifiers accept (one step of drift either side).
    """

    def __init__(self, seed: str, clock: Callable[[], datetime]) -> None:
        self._totp = pyotp.TOTP(seed)
        self._clock = clock
        self._last_step = -1

    async def __call__(self, need: NeedCode) -> str | None:
        if need.method != "totp":
            return None
        now = self._clock()
        step = int(now.timestamp()) // 30
        if step <= self._last_step:
            step = self._last_step + 1
        self._last_step = step
        return str(self._totp.at(step * 30))


class OutboxSource:
    """SMS and e-mail codes from the emulated tenant's ``/_sandbox/outbox``."""

    def __init__(
        self, client: httpx.AsyncClient, outbox_url: str, recipients: Mapping[str, str]
    ) -> None:
        self._client = client
        self._url = outbox_url
        self._recipients = recipients  # method -> phone or e-mail address

    async def __call__(self, need: NeedCode) -> str | None:
        recipient = self._recipients.get(need.method)
        if need.method not in ("sms", "email") or recipient is None:
            return None
        response = await self._client.get(
            self._url, params={"channel": need.method, "recipient": recipient, "limit": 1}
        )
        if response.status_code != 200:
            return None
        body = response.json()
        messages = body.get("messages", body) if isinstance(body, dict) else body
        for message in messages if isinstance(messages, list) else []:
            code = message.get("code") if isinstance(message, dict) else None
            if isinstance(code, str):
                return code
        return None


class InboundSmsSource:
    """Codes delivered by an inbound-SMS webhook: the API hands each message to
    :meth:`deliver`; a waiting flow takes the newest code for its number."""

    def __init__(self, phone: str, *, timeout: float = 60.0) -> None:
        self.phone = phone
        self.timeout = timeout
        self._codes: asyncio.Queue[str] = asyncio.Queue()

    def deliver(self, to: str, body: str) -> bool:
        """Accept one inbound message; True when it carried a code for this number."""
        code = extract_code(body)
        if to != self.phone or code is None:
            return False
        self._codes.put_nowait(code)
        return True

    async def __call__(self, need: NeedCode) -> str | None:
        if need.method != "sms":
            return None
        try:
            return await asyncio.wait_for(self._codes.get(), self.timeout)
        except TimeoutError:
            return None


class ImapSource:
    """E-mail codes read over IMAP: the newest message from ``sender`` after the challenge."""

    def __init__(
        self,
        host: str,
        username: str,
        password: str,
        *,
        sender: str,
        port: int = 993,
        folder: str = "INBOX",
        connect: Callable[[str, int], imaplib.IMAP4] | None = None,
    ) -> None:
        self.host, self.port, self.folder = host, port, folder
        self.username, self.password, self.sender = username, password, sender
        self._connect = connect or (lambda h, p: imaplib.IMAP4_SSL(h, p))

    async def __call__(self, need: NeedCode) -> str | None:
        if need.method != "email":
            return None
        since = need.requested_at or datetime.now(UTC) - timedelta(minutes=10)
        return await anyio.to_thread.run_sync(self._fetch, since)

    def _fetch(self, since: datetime) -> str | None:
        box = self._connect(self.host, self.port)
        try:
            box.login(self.username, self.password)
            box.select(self.folder, readonly=True)
            day = since.strftime("%d-%b-%Y")
            status, data = box.search(None, "FROM", f'"{self.sender}"', "SINCE", day)
            if status != "OK" or not data or not data[0]:
                return None
            for number in reversed(data[0].split()):
                status, parts = box.fetch(number.decode(), "(RFC822)")
                if status != "OK":
                    continue
                for part in parts:
                    if isinstance(part, tuple):
                        code = _message_code(email.message_from_bytes(part[1]), since)
                        if code:
                            return code
            return None
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                box.logout()


def _message_code(message: Message, since: datetime) -> str | None:
    sent = message.get("Date")
    if sent:
        try:
            when = email.utils.parsedate_to_datetime(sent)
        except (TypeError, ValueError):
            when = None
        if when is not None and when.tzinfo is not None and when < since - timedelta(seconds=30):
            return None
    texts: Sequence[Message] = list(message.walk()) if message.is_multipart() else [message]
    for part in texts:
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                code = extract_code(payload.decode(errors="replace"))
                if code:
                    return code
    return extract_code(str(message.get("Subject", "")))
