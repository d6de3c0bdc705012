"""The sync use cases' decisions, without a store or an upstream: what a report announces, which
read-path slices it makes fresh, which streams a caller may name, and how both ingest pipelines
read a kind's slice."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from carebridge.domain.kinds import KINDS
from carebridge.domain.values import PatientId
from carebridge.errors import BadRequest, Forbidden
from carebridge.ports.events import Announcement
from carebridge.ports.upstream import Upstream
from carebridge.services.records import Principal
from carebridge.services.sync import (
    STREAMS,
    StreamResult,
    SyncReport,
    SyncRequest,
    Syncs,
    announcements,
    check_streams,
    fresh_kinds,
)
from carebridge.sync.slices import read_slice, tenant_wide

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def _report(**results: StreamResult) -> SyncReport:
    return SyncReport("ten_a", NOW, dict(results))


def test_a_failed_stream_is_announced_by_its_error_class_only() -> None:
    report = _report(
        patients=StreamResult(error="UpstreamStatusError: 502 from /patients for p-123"),
        claims=StreamResult(),
    )
    found = announcements(report, {"endpoints": {}}, {})
    assert found == [
        Announcement(
            "integration.degraded",
            "stream",
            "patients",
            {"stream": "patients", "error": "UpstreamStatusError"},
        )
    ]


def test_drift_is_announced_once_per_endpoint_when_it_starts_to_break() -> None:
    drift = {
        "endpoints": {
            "/v2/patients": {"breaking": 2, "missing": 1, "retyped": 1},
            "/v2/claims": {"breaking": 0, "missing": 0, "retyped": 0, "added": 3},
        }
    }
    seen: dict[str, int] = {}
    first = announcements(_report(), drift, seen)
    assert [(a.event_type, a.entity_id) for a in first] == [("upstream.drift", "/v2/patients")]
    assert first[0].details == {
        "endpoint": "/v2/patients",
        "breaking": 2,
        "missing": 1,
        "retyped": 1,
    }
    assert seen == {"/v2/patients": 2}
    assert announcements(_report(), drift, seen) == []  # once
    long = "/v2/" + "x" * 100
    (only,) = announcements(_report(), {"endpoints": {long: {"breaking": 1}}}, {})
    assert only.entity_id == long[:64]
    assert only.details["endpoint"] == long


def test_completed_tenant_wide_streams_make_their_slice_fresh() -> None:
    report = _report(
        providers=StreamResult(done=True),
        patients=StreamResult(done=True),
        encounters=StreamResult(done=True),  # read per patient
        appointments=StreamResult(done=True),  # read by window
        claims=StreamResult(error="TransportError: timed out"),
        payments=StreamResult(skipped="another sync is running it"),
    )
    assert fresh_kinds(report) == ["provider", "patient"]
    for stream in STREAMS.values():
        kind = KINDS[stream.kind]
        assert tenant_wide(kind) == (kind.reach == "tenant"), stream.name


def test_unknown_streams_are_a_bad_request_naming_the_field() -> None:
    assert check_streams(None) is None
    assert check_streams(["patients"]) == ["patients"]
    with pytest.raises(BadRequest) as refused:
        check_streams(["patients", "gizmos"])
    assert refused.value.field == "streams"
    assert str(refused.value).startswith("unknown streams: gizmos (known: providers,")


class _Untouched:
    """Any port: touching it fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"{name} was reached")


async def _no_tenants() -> list[str]:
    raise AssertionError("tenants were listed")


def _syncs() -> Syncs:
    port: Any = _Untouched()
    return Syncs(port, port, port, port, _no_tenants, clock=lambda: NOW)


@pytest.mark.anyio
async def test_a_caller_needs_sync_write_and_known_streams_before_anything_runs() -> None:
    syncs = _syncs()
    reader = Principal("key_r", "ten_a", frozenset({"patient.read"}))
    with pytest.raises(Forbidden):
        await syncs.sync_now(reader, SyncRequest(("patients",)))
    admin = Principal("key_a", "ten_a", frozenset({"sync.write"}))
    with pytest.raises(BadRequest):
        await syncs.sync_now(admin, SyncRequest(("gizmos",), timedelta(hours=1)))
    assert await syncs.tenants("ten_b") == ["ten_b"]


class _Recorder:
    """An upstream that records how each reader method was called."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        def method(**arguments: Any) -> AsyncIterator[Any]:
            self.calls.append((name, arguments))
            return _empty()

        return method


async def _empty() -> AsyncIterator[Any]:
    for item in ():
        yield item


def test_a_slice_is_read_as_the_registry_describes_its_kind() -> None:
    upstream = _Recorder()
    u = cast(Upstream, upstream)
    patient = PatientId.new("p1")
    read_slice(u, KINDS["provider"], since=NOW)
    read_slice(u, KINDS["patient"], since=NOW)
    read_slice(u, KINDS["encounter"], patient_id=patient, since=None)
    read_slice(u, KINDS["lab"], patient_id=patient, since=NOW)
    expected: Sequence[tuple[str, dict[str, Any]]] = [
        ("providers", {}),
        ("patients", {"updated_since": NOW}),
        ("encounters", {"patient_id": patient, "updated_since": None}),
        ("labs", {"patient_id": patient}),
    ]
    assert upstream.calls == expected
