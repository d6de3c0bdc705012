"""Where MFA codes come from: pluggable sources the session broker asks when a flow needs one.

- :class:`TotpSource`: RFC 6238 codes from the user's seed (pyotp), never the same step twice;
- :class:`OutboxSource`: SMS and e-mail codes read from the emulated tenant's outbox
  (development and tests);
- :class:`InboundSmsSource`: codes pushed by an inbound-SMS webhook (production);
- :class:`ImapSource`: codes read from a mailbox over IMAP (production).

A source answers None when it has no code; the broker then raises ``MfaRequired``.

A TOTP step is good once per account upstream, and refused sign-ins lock the account (and the
practice's staff with it), so :class:`TotpSource` claims each step in a ledger shared by every
process (the ``MfaSteps`` port) and :class:`SignInGuard` stops sign-ins well before a lockout.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.utils
import hashlib
import imaplib
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import Message

import anyio.to_thread
import httpx
import pyotp

from carebridge.connectors.carecloud.auth import NeedCode
from carebridge.errors import AccountLocked, AuthError, MfaLockoutRisk
from carebridge.ports.upstream import MfaAccountState, MfaSteps, StepClaim

CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")


def extract_code(text: str) -> str | None:
    """The first six-digit code in a message, if any."""
    match = CODE.search(text)
    return match.group(1) if match else None


STEP_SECONDS = 30  # RFC 6238's time step
MAX_FAILURES = (
    2  # consecutive refused sign-ins before the connector stops (the upstream locks at 5)
)
MAX_STEP_WAIT = 2 * STEP_SECONDS  # longer than this for a fresh step means the clocks disagree


def account_key(api_url: str, username: str) -> str:
    """The ledger key of an upstream account: a digest, so no username lands in the store."""
    raw = f"{api_url.rstrip('/').lower()}\n{username.strip().lower()}".encode()
    return hashlib.sha256(raw).hexdigest()


class MemoryMfaSteps:
    """``MfaSteps`` in one process's memory, for tests and tools that have no store.

    It keeps one process from reusing a step, not two: a deployment wires the store's ledger.
    """

    def __init__(self) -> None:
        self._accounts: dict[str, MfaAccountState] = {}

    async def state(self, account: str) -> MfaAccountState:
        return self._accounts.get(account, MfaAccountState())

    async def claim(
        self, account: str, step: int, *, max_failures: int, now: datetime
    ) -> StepClaim:
        state = await self.state(account)
        if state.failures >= max_failures or state.locked(now):
            return "blocked"
        if step <= state.last_step:
            return "used"
        self._accounts[account] = replace(state, last_step=step)
        return "claimed"

    async def failed(self, account: str) -> int:
        state = await self.state(account)
        self._accounts[account] = replace(state, failures=state.failures + 1)
        return state.failures + 1

    async def succeeded(self, account: str) -> None:
        self._accounts[account] = replace(await self.state(account), failures=0)

    async def locked(self, account: str, until: datetime) -> None:
        state = await self.state(account)
        if state.locked_until is None or state.locked_until < until:
            self._accounts[account] = replace(state, locked_until=until)

    async def reset(self, account: str) -> None:
        state = await self.state(account)
        self._accounts[account] = replace(state, failures=0, locked_until=None)


def blocked_error(state: MfaAccountState, now: datetime) -> AuthError:
    """Why an account may not sign in now: the upstream's lockout, or our own stop."""
    if state.locked_until is not None and state.locked(now):
        return AccountLocked(
            "the upstream account is locked; no sign-in before the lockout ends",
            locked_until=state.locked_until,
            endpoint="POST /session",
        )
    return MfaLockoutRisk(
        f"{state.failures} sign-ins of the upstream account were refused in a row; sign-ins are "
        "stopped before the upstream locks the account (and the practice's staff with it). "
        "Check the account's password and MFA seed, then reset its sign-in state.",
        failures=state.failures,
        endpoint="POST /session",
    )


class SignInGuard:
    """An upstream account's sign-in discipline, over the ledger every process shares.

    :meth:`admit` refuses a sign-in while the upstream's lockout runs or after ``max_failures``
    refused sign-ins in a row (password or code: the upstream counts both); :meth:`refused`,
    :meth:`locked` and :meth:`succeeded` record each outcome. ``max_failures`` stays well below
    the upstream's threshold, because the practice's staff share the account and its count.
    """

    def __init__(
        self,
        steps: MfaSteps,
        account: str,
        clock: Callable[[], datetime],
        *,
        max_failures: int = MAX_FAILURES,
    ) -> None:
        self.steps = steps
        self.account = account
        self.clock = clock
        self.max_failures = max_failures

    async def admit(self) -> None:
        """Raise :class:`AccountLocked` or :class:`MfaLockoutRisk` when no sign-in may start."""
        state = await self.steps.state(self.account)
        if state.failures >= self.max_failures or state.locked(self.clock()):
            raise blocked_error(state, self.clock())

    async def refused(self, error: AuthError) -> AuthError:
        """Count a refusal; the error to raise (:class:`MfaLockoutRisk` at the bound)."""
        failures = await self.steps.failed(self.account)
        if failures < self.max_failures:
            return error
        state = await self.steps.state(self.account)
        risk = blocked_error(replace(state, locked_until=None), self.clock())
        risk.__cause__ = error
        return risk

    async def locked(self, until: datetime) -> None:
        """Record the upstream's lockout."""
        await self.steps.locked(self.account, until)

    async def succeeded(self) -> None:
        """A sign-in went through."""
        await self.steps.succeeded(self.account)


class TotpSource:
    """TOTP codes from a base32 seed on an injected clock, each step used once per account.

    The step is claimed in ``steps``, the ledger every process of the deployment shares (the
    store's, wired by ``carebridge.wiring``; by default one in this source's memory): a step
    another process or an earlier run already sent is never sent again, and the source waits
    (``sleep``) for the next step rather than send a future one. It answers None when no fresh
    step comes up within :data:`MAX_STEP_WAIT`, and refuses while the account is blocked.

    Raises:
        AccountLocked, MfaLockoutRisk: the account may not sign in now.
    """

    def __init__(
        self,
        seed: str,
        clock: Callable[[], datetime],
        *,
        steps: MfaSteps | None = None,
        account: str = "totp",
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_failures: int = MAX_FAILURES,
    ) -> None:
        self._totp = pyotp.TOTP(seed)
        self._clock = clock
        self._steps: MfaSteps = steps if steps is not None else MemoryMfaSteps()
        self._account = account
        self._sleep = sleep
        self._max_failures = max_failures

    async def __call__(self, need: NeedCode) -> str | None:
        if need.method != "totp":
            return None
        waited = 0.0
        while True:
            now = self._clock()
            step = int(now.timestamp()) // STEP_SECONDS
            claim = await self._steps.claim(
                self._account, step, max_failures=self._max_failures, now=now
            )
            if claim == "claimed":
                return str(self._totp.at(step * STEP_SECONDS))
            state = await self._steps.state(self._account)
            if claim == "blocked":
                raise blocked_error(state, now)
            # Used: wait for the step after the newest one taken (never send a future code).
            wait = (max(step, state.last_step) + 1) * STEP_SECONDS - now.timestamp()
            if waited + wait > MAX_STEP_WAIT:
                return None
            waited += wait
            await self._sleep(wait)


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
