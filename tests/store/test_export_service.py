"""The export use case over in-memory ports: the tables it plans from the registry of kinds, the
watermarks it moves, and the source's batches it closes when the sink fails."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from carebridge.domain.kinds import EXPORT_ORDER, KINDS
from carebridge.ports.export import Mark, TableSpec
from carebridge.services.export import EVENTS_TABLE, event_row, run, tables

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def test_a_table_per_exported_kind_in_export_order_then_the_events() -> None:
    planned = tables()
    assert [t.kind for t in planned] == [k for k in EXPORT_ORDER if KINDS[k].table] + [None]
    assert [t.name for t in planned][-1] == EVENTS_TABLE
    for spec in planned:
        assert spec.key == (("tenant_id", "seq") if spec.kind is None else ("tenant_id", "id"))
        assert [c.name for c in spec.columns][: len(spec.key)] == list(spec.key)


def test_an_event_row_keeps_the_log_columns_only() -> None:
    event = {
        "tenant_id": "ten_a",
        "seq": 7,
        "type": "patient.updated",
        "kind": "patient",
        "entity_id": "pat_1",
        "patient_id": "pat_1",
        "diff": {"b": 1, "a": [2]},
        "occurred_at": NOW.replace(tzinfo=None),
        "detected_at": NOW,
        "message_id": "evt_1",
    }
    row = event_row(event)
    assert row["diff"] == '{"a":[2],"b":1}'
    assert row["occurred_at"] == NOW
    assert "message_id" not in row


class _Source:
    def __init__(self) -> None:
        self.closed = 0
        self.rows = [
            {"id": f"pat_{i}", "data": "{}", "fetched_at": NOW + timedelta(seconds=i)}
            | {"deleted": False}
            for i in range(3)
        ]

    async def tenants(self, only: str | None) -> list[str]:
        return ["ten_a"]

    async def count(self, tenant_id: str, kind: str | None, after: Mark) -> int:
        return len(self.rows) if kind == "patient" else 0

    async def batches(
        self, tenant_id: str, kind: str | None, after: Mark, size: int
    ) -> AsyncGenerator[Sequence[Mapping[str, Any]], None]:
        try:
            if kind == "patient":
                for start in range(0, len(self.rows), size):
                    yield self.rows[start : start + size]
        finally:
            self.closed += 1


class _Sink:
    def __init__(self, fail_on: str | None = None) -> None:
        self.fail_on = fail_on
        self.marks: dict[str, Mark] = {}
        self.opened: list[str] = []
        self.closed = False

    async def open(self, tables: Sequence[TableSpec]) -> None:
        self.opened = [t.name for t in tables]

    async def mark(self, tenant_id: str, table: str) -> Mark:
        return self.marks.get(table, Mark())

    async def write(
        self, tenant_id: str, table: str, rows: Sequence[dict[str, Any]], mark: Mark
    ) -> None:
        if table == self.fail_on:
            raise OSError("disk full")
        self.marks[table] = mark

    async def done(self, table: str) -> None:
        pass

    async def close(self) -> None:
        self.closed = True


@pytest.mark.anyio
async def test_the_run_moves_each_watermark_and_closes_what_it_opened() -> None:
    source, sink = _Source(), _Sink()
    result = await run(source, sink, batch_size=2)
    assert result.rows["patients"] == 3
    assert result.total == 3
    assert sink.marks["patients"] == Mark(NOW + timedelta(seconds=2), "pat_2")
    assert sink.opened == [t.name for t in tables()]
    assert sink.closed
    assert source.closed == len(tables())
    failing, broken = _Source(), _Sink(fail_on="patients")
    with pytest.raises(OSError, match="disk full"):
        await run(failing, broken)
    assert broken.closed
    assert failing.closed == 1
