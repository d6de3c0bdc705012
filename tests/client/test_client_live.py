"""The async client against carebridge itself (the API in process over an emulated tenant,
through ``httpx.ASGITransport``): typed records, every page, one record, a write and its
idempotent replay, typed problems, and a real webhook delivery verified."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from tests.support.api import API, Live, book_body, running

from carebridge.client import (
    AsyncCarebridge,
    MissingScope,
    NotFound,
    Unauthorized,
    WebhookVerificationError,
    verify,
)
from carebridge.contract import RECORDS, WriteAnswer
from carebridge.domain.patients import Patient
from carebridge.domain.scheduling import Appointment
from carebridge.events.webhooks import headers_for
from carebridge.ports.webhooks import SigningSecrets

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def live() -> AsyncIterator[Live]:
    with tempfile.TemporaryDirectory() as folder:
        async with running(f"{folder}/store.db", patients=6) as started:
            yield started


def client_of(live: Live, key: str = "admin_a") -> AsyncCarebridge:
    transport = live.client._transport
    assert isinstance(transport, httpx.AsyncBaseTransport)
    return AsyncCarebridge(API, api_key=live.keys[key], transport=transport)


async def test_lists_page_through_every_record_as_typed_models(live: Live) -> None:
    async with client_of(live) as api:
        first = await api.patients.list(limit=2).first_page()
        everyone = await api.patients.list(limit=2).to_list()
    assert first.has_more
    assert len(everyone) > len(first.data)
    assert len({p.id for p in everyone}) == len(everyone)
    assert all(isinstance(p, Patient) for p in everyone)
    assert [p.id for p in everyone[:2]] == [p.id for p in first.data]


async def test_one_record_by_id_and_an_unknown_id_is_not_found(live: Live) -> None:
    async with client_of(live) as api:
        listed = await api.patients.list(limit=1).first_page()
        one = await api.patients.get(listed.data[0].id)
        assert one.id == listed.data[0].id
        with pytest.raises(NotFound) as missing:
            await api.patients.get("pat_" + "a" * 26)
    assert missing.value.status == 404


async def test_a_booking_is_typed_and_replays_under_its_key(live: Live) -> None:
    async with client_of(live) as api:
        patient = (await api.patients.list(limit=1).first_page()).data[0]
        slot = await book_body(live, patient.id)
        booked = await api.appointments.create(**slot, idempotency_key="client-book-1")
        again = await api.appointments.create(**slot, idempotency_key="client-book-1")
    assert isinstance(booked, WriteAnswer)
    assert isinstance(booked.data, Appointment)
    assert isinstance(booked.data, RECORDS["appointment"])
    assert booked.data.patient_id == patient.id
    assert again.data.id == booked.data.id
    assert again.ledger_id == booked.ledger_id


async def test_an_encounter_is_opened_signed_and_given_an_addendum(live: Live) -> None:
    async with client_of(live) as api:
        patient = (await api.patients.list(limit=1).first_page()).data[0]
        opened = await api.encounters.create(patient_id=patient.id, diagnoses=["J06.9"])
        signed = await api.encounters.sign(opened.data.id)
        added = await api.encounters.add_addendum(
            opened.data.id, text="Culture result reviewed.", idempotency_key="client-add-1"
        )
        again = await api.encounters.add_addendum(
            opened.data.id, text="Culture result reviewed.", idempotency_key="client-add-1"
        )
    assert signed.data.signed_at is not None
    assert len(added.data.addenda) == len(signed.data.addenda) + 1
    assert again.ledger_id == added.ledger_id
    assert len(again.data.addenda) == len(added.data.addenda)


async def test_a_bad_key_and_a_missing_scope_raise_their_types(live: Live) -> None:
    await live.key("ten_a", "practice.read", "narrow")
    live.keys["nobody"] = "cbk_not_a_key"
    async with client_of(live, "nobody") as nobody:
        with pytest.raises(Unauthorized):
            await nobody.patients.list().first_page()
    async with client_of(live, "narrow") as narrow:
        with pytest.raises(MissingScope) as refused:
            await narrow.patients.list().first_page()
    assert refused.value.request_id


def test_a_delivery_signed_by_carebridge_verifies_and_a_tampered_one_does_not() -> None:
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    at = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    body = (
        '{"id":"msg_1","type":"appointment.cancelled","timestamp":"2026-11-24T15:00:02Z",'
        '"data":{"id":"evt_1","seq":1,"type":"appointment.cancelled"}}'
    )
    headers = headers_for(SigningSecrets(current=secret, previous=None), "msg_1", at, body)
    message = verify(body.encode(), headers, secret, now=at)
    assert message.id == "msg_1"
    assert message.type == "appointment.cancelled"
    assert message.data["seq"] == 1
    # during a rotation either secret verifies
    other = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="
    assert verify(body, headers, [other, secret], now=at).id == "msg_1"
    with pytest.raises(WebhookVerificationError):
        verify(body.replace("cancelled", "booked"), headers, secret, now=at)
    with pytest.raises(WebhookVerificationError):
        verify(body, headers, other, now=at)
    with pytest.raises(WebhookVerificationError):
        verify(body, headers, secret, now=datetime(2026, 11, 24, 16, 0, tzinfo=UTC))
    with pytest.raises(WebhookVerificationError):
        verify(body, {k: v for k, v in headers.items() if k != "webhook-id"}, secret, now=at)
