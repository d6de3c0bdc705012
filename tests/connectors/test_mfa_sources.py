"""MFA code sources for production: inbound SMS and IMAP; and credential rotation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import pytest

from carebridge.connectors.carecloud.auth import NeedCode
from carebridge.connectors.carecloud.mfa import ImapSource, InboundSmsSource, extract_code
from carebridge.connectors.carecloud.session import Broker

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def test_extract_code_takes_six_digits_only() -> None:
    assert extract_code("Your code is 482913. It expires in 5 minutes.") == "482913"
    assert extract_code("Order 1234567 shipped") is None
    assert extract_code("no digits") is None


def test_inbound_sms_hands_the_code_to_the_waiting_flow() -> None:
    source = InboundSmsSource("+15550100001", timeout=1.0)

    async def run() -> tuple[str | None, str | None]:
        waiter = asyncio.create_task(source(NeedCode("sms")))
        await asyncio.sleep(0)
        assert not source.deliver("+15550109999", "Code 111111")  # another number
        assert source.deliver("+15550100001", "CareCloud code: 246810")
        email = await source(NeedCode("email"))
        return await waiter, email

    code, email = asyncio.run(run())
    assert code == "246810"
    assert email is None


def test_inbound_sms_gives_up_after_its_timeout() -> None:
    source = InboundSmsSource("+15550100001", timeout=0)  # no waiting: nothing was delivered
    assert asyncio.run(source(NeedCode("sms"))) is None


class FakeImap:
    """Just enough of imaplib.IMAP4 for the source: one mailbox of messages."""

    def __init__(self, messages: list[bytes]) -> None:
        self.messages = messages
        self.logged_in = False
        self.searched: tuple[Any, ...] = ()
        self.closed = False

    def login(self, user: str, password: str) -> tuple[str, list[bytes]]:
        self.logged_in = (user, password) == ("inbox@example.test", "app-password")
        return ("OK", [b""])

    def select(self, folder: str, readonly: bool = False) -> tuple[str, list[bytes]]:
        assert readonly
        return ("OK", [str(len(self.messages)).encode()])

    def search(self, charset: Any, *criteria: str) -> tuple[str, list[bytes]]:
        self.searched = criteria
        return ("OK", [b" ".join(str(n + 1).encode() for n in range(len(self.messages)))])

    def fetch(self, number: str, parts: str) -> tuple[str, list[Any]]:
        return ("OK", [(b"1 (RFC822)", self.messages[int(number) - 1]), b")"])

    def logout(self) -> tuple[str, list[bytes]]:
        self.closed = True
        return ("BYE", [b""])


def _mail(code: str, sent: datetime) -> bytes:
    message = EmailMessage()
    message["From"] = "no-reply@portal.example"
    message["Subject"] = "Your sign-in code"
    message["Date"] = format_datetime(sent)
    message.set_content(f"Use {code} to sign in.")
    return message.as_bytes()


def test_imap_source_reads_the_newest_code_sent_after_the_challenge() -> None:
    fake = FakeImap(
        [_mail("100001", NOW - timedelta(hours=2)), _mail("200002", NOW + timedelta(seconds=5))]
    )
    source = ImapSource(
        "imap.example.test",
        "inbox@example.test",
        "app-password",
        sender="no-reply@portal.example",
        connect=lambda host, port: fake,  # type: ignore[arg-type,return-value]
    )
    code = asyncio.run(source(NeedCode("email", requested_at=NOW)))
    assert code == "200002"
    assert fake.logged_in
    assert fake.closed
    assert "no-reply@portal.example" in " ".join(fake.searched)


def test_imap_source_ignores_codes_older_than_the_challenge() -> None:
    fake = FakeImap([_mail("100001", NOW - timedelta(hours=2))])
    source = ImapSource(
        "imap.example.test",
        "inbox@example.test",
        "app-password",
        sender="no-reply@portal.example",
        connect=lambda host, port: fake,  # type: ignore[arg-type,return-value]
    )
    assert asyncio.run(source(NeedCode("email", requested_at=NOW))) is None
    assert asyncio.run(source(NeedCode("sms", requested_at=NOW))) is None


def test_rotated_secrets_are_used_by_the_next_renewal_without_a_restart() -> None:
    used: list[str] = []

    async def renew(secret: str, current: str | None) -> str:
        used.append(secret)
        return f"credential-from-{secret}"

    broker: Broker[str, str] = Broker(
        "v2", "old-secret", renew, expires=lambda _: None, clock=lambda: NOW
    )

    async def run() -> tuple[str, str, str]:
        first = await broker.current()
        again = await broker.current()
        broker.rotate("new-secret")
        return first, again, await broker.current()

    first, again, rotated = asyncio.run(run())
    assert (first, again, rotated) == (
        "credential-from-old-secret",
        "credential-from-old-secret",
        "credential-from-new-secret",
    )
    assert used == ["old-secret", "new-secret"]
    assert broker.state().renewals == 2


def test_a_failed_renewal_is_reported_without_secrets() -> None:
    async def renew(secret: str, current: str | None) -> str:
        raise ValueError("upstream said no")

    broker: Broker[str, str] = Broker(
        "portal", "pw", renew, expires=lambda _: None, clock=lambda: NOW
    )
    with pytest.raises(ValueError):
        asyncio.run(broker.current())
    state = broker.state()
    assert (state.has_credential, state.last_error, state.renewals) == (False, "ValueError", 0)
