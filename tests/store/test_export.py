"""``carebridge export``: the store's tables to SQLite, PostgreSQL and Parquet, incrementally."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pyarrow.parquet as pq
import pytest
from pydantic import BaseModel
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.support import factories
from typer.testing import CliRunner

from carebridge.cli.export import export_command
from carebridge.domain import Appointment, Patient, PatientId
from carebridge.services.export import KIND_TABLES, ExportError, columns
from carebridge.store import entities, migrate
from carebridge.store import events as event_log
from carebridge.store.engine import create_engine
from carebridge.store.schema import entities as entity_table
from carebridge.store.schema import events as event_table
from carebridge.store.schema import tenants
from carebridge.wiring.export import export, parse_target

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _patients() -> list[Patient]:
    base = factories.patient()  # the first keeps the factory's coverages and balances
    others = [
        factories.changed(
            base,
            id=PatientId.new(f"p{i}"),
            birth_date=date(1980 + i, 1, 1),
            active=i != 2,
            coverages=[],
            balances=[],
        )
        for i in (1, 2)
    ]
    return [base, *others]


def _appointments(n: int) -> list[Appointment]:
    base = factories.appointment()
    return [
        factories.changed(
            base,
            id=type(base.id).new(f"a{i}"),
            patient_id=PatientId.new(f"p{i % 3}"),
            start=base.start + timedelta(days=i),
            end=base.end + timedelta(days=i),
            arrived_at=None,
            departed_at=None,
            status="scheduled",
            encounter_id=None,
        )
        for i in range(n)
    ]


@dataclass
class Source:
    engine: AsyncEngine
    url: str
    patients: list[Patient]
    appointments: list[Appointment]


async def _put(
    engine: AsyncEngine, tenant: str, kind: str, records: list[Any], at: datetime
) -> None:
    async with engine.begin() as conn:
        changes = await entities.upsert(conn, tenant, kind, records, fetched_at=at)
        await event_log.append(conn, tenant, changes, detected_at=at)


async def _fill(engine: AsyncEngine) -> Source:
    patients, appointments = _patients(), _appointments(4)
    await _put(engine, "ten_a", "patient", patients, NOW)
    await _put(engine, "ten_a", "appointment", appointments, NOW)
    await _put(engine, "ten_a", "lab", [factories.lab_result()], NOW)
    await _put(engine, "ten_a", "claim", [factories.claim()], NOW)
    await _put(engine, "ten_a", "provider", [factories.provider()], NOW)
    await _put(engine, "ten_b", "patient", patients[:1], NOW)
    url = engine.url.render_as_string(hide_password=False)
    return Source(engine, url, patients, appointments)


async def _migrated_sqlite(url: str) -> AsyncEngine:
    await anyio.to_thread.run_sync(migrate.upgrade, url)
    engine = create_engine(url)
    async with engine.begin() as conn:
        for tenant in ("ten_a", "ten_b"):
            await conn.execute(
                tenants.insert().values(
                    id=tenant, name=tenant, upstream="carecloud", settings={}, created_at=NOW
                )
            )
    return engine


@pytest.fixture
async def source(seeded: AsyncEngine) -> Source:
    return await _fill(seeded)


@pytest.fixture
async def sqlite_source(tmp_path: Path) -> AsyncIterator[Source]:
    """A SQLite source, for the tests whose target is PostgreSQL."""
    engine = await _migrated_sqlite(f"sqlite:///{tmp_path / 'source.db'}")
    yield await _fill(engine)
    await engine.dispose()


async def _source_counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        by_kind = {
            KIND_TABLES[kind]: n
            for kind, n in await conn.execute(
                select(entity_table.c.kind, func.count()).group_by(entity_table.c.kind)
            )
        }
        by_kind["events"] = int(
            await conn.scalar(select(func.count()).select_from(event_table)) or 0
        )
    return by_kind


async def _sql_rows(url: str, table: str, order: str = "tenant_id, id") -> list[dict[str, Any]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(text(f"SELECT * FROM {table} ORDER BY {order}"))
            return [dict(row) for row in result.mappings()]
    finally:
        await engine.dispose()


def _parquet_rows(directory: Path, table: str) -> list[dict[str, Any]]:
    """Every part's rows, the latest per (tenant_id, id) winning, as a reader should."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for part in sorted((directory / table).glob("part-*.parquet")):
        for row in pq.read_table(part).to_pylist():
            key = (row["tenant_id"], row["id"])
            if key not in latest or latest[key]["fetched_at"] <= row["fetched_at"]:
                latest[key] = row
    return [latest[k] for k in sorted(latest)]


def _sqlite(path: Path, statement: str) -> None:
    db = sqlite3.connect(path)
    try:
        db.execute(statement)
        db.commit()
    finally:
        db.close()


def _nonzero(rows: dict[str, int]) -> dict[str, int]:
    return {table: n for table, n in rows.items() if n}


def _json(model: BaseModel, name: str) -> Any:
    return model.model_dump(mode="json")[name]


def _check_patient(row: dict[str, Any], patient: Patient) -> None:
    assert row["birth_date"] == _json(patient, "birth_date")
    assert bool(row["active"]) is patient.active
    assert row["gender"] == patient.gender
    assert json.loads(row["name"]) == _json(patient, "name")
    assert json.loads(row["coverages"]) == _json(patient, "coverages")
    assert row["drivers_license"] is None
    assert bool(row["deleted"]) is False


# --- the columns --------------------------------------------------------------------------------


def test_columns_come_from_the_domain_model_in_a_stable_order() -> None:
    names = [c.name for c in columns("patient")]
    assert names[:2] == ["tenant_id", "id"]
    assert names[-2:] == ["fetched_at", "deleted"]
    assert names[2:-2] == sorted(names[2:-2])
    types = {c.name: c.type for c in columns("patient")}
    assert types["birth_date"] == "text"
    assert types["active"] == "boolean"
    assert types["name"] == types["coverages"] == types["sources"] == "json"
    lab = {c.name: c.type for c in columns("lab")}
    assert lab["value_number"] == "number"
    assert {c.name: c.type for c in columns("document")}["size_bytes"] == "integer"


@pytest.mark.parametrize(
    "target", ["mysql://u@h/db", "parquet:", "s3://bucket/x", "warehouse", "sqlite"]
)
def test_unsupported_targets_are_refused(target: str) -> None:
    with pytest.raises(ExportError):
        parse_target(target)


def test_targets_are_parsed() -> None:
    assert parse_target("sqlite:///x.db").scheme == "sqlite"
    assert parse_target("postgresql://u:secret@h/db").scheme == "postgresql"
    assert "secret" not in parse_target("postgresql://u:secret@h/db").describe()
    assert parse_target("parquet:out/dir").location == "out/dir"


# --- SQLite -------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_export_to_sqlite_matches_the_source(source: Source, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 'warehouse.db'}"
    result = await export(source.url, target)
    expected = await _source_counts(source.engine)
    assert _nonzero(result.rows) == expected
    for table, n in expected.items():
        order = "tenant_id, seq" if table == "events" else "tenant_id, id"
        assert len(await _sql_rows(target, table, order)) == n
    patients = {(r["tenant_id"], r["id"]): r for r in await _sql_rows(target, "patients")}
    for patient in source.patients:
        _check_patient(patients["ten_a", str(patient.id)], patient)
    _check_patient(patients["ten_b", str(source.patients[0].id)], source.patients[0])
    events = await _sql_rows(target, "events", "tenant_id, seq")
    assert [e["seq"] for e in events if e["tenant_id"] == "ten_a"] == list(
        range(1, expected["events"])
    )
    assert all(isinstance(json.loads(e["diff"]), dict) for e in events)


@pytest.mark.anyio
async def test_a_second_export_writes_only_what_changed(source: Source, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 'warehouse.db'}"
    await export(source.url, target)
    before = await _source_counts(source.engine)
    moved = [factories.changed(a, status="cancelled") for a in source.appointments[1:3]]
    await _put(source.engine, "ten_a", "appointment", moved, LATER)
    new_events = (await _source_counts(source.engine))["events"] - before["events"]

    second = await export(source.url, target, batch_size=1)
    assert _nonzero(second.rows) == {"appointments": 2, "events": new_events}
    rows = {r["id"]: r for r in await _sql_rows(target, "appointments")}
    assert len(rows) == 4
    assert {i for i, r in rows.items() if r["status"] == "cancelled"} == {str(a.id) for a in moved}
    marks = {
        (m["tenant_id"], m["table_name"]): m
        for m in await _sql_rows(target, "_carebridge_export", "tenant_id, table_name")
    }
    mark = marks["ten_a", "appointments"]
    assert mark["last_id"] == max(str(a.id) for a in moved)
    assert datetime.fromisoformat(str(mark["fetched_at"])).replace(tzinfo=UTC) == LATER
    assert marks["ten_a", "events"]["last_seq"] == before["events"] - 1 + new_events

    third = await export(source.url, target)
    assert third.total == 0


@pytest.mark.anyio
async def test_deleted_rows_are_exported_as_deleted(source: Source, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 'warehouse.db'}"
    parquet = tmp_path / "lake"
    await export(source.url, target)
    await export(source.url, f"parquet:{parquet}")
    gone = str(source.patients[1].id)
    async with source.engine.begin() as conn:
        await conn.execute(
            update(entity_table)
            .where(entity_table.c.tenant_id == "ten_a", entity_table.c.id == gone)
            .values(deleted=True, fetched_at=LATER)
        )
    assert _nonzero((await export(source.url, target)).rows) == {"patients": 1}
    assert _nonzero((await export(source.url, f"parquet:{parquet}")).rows) == {"patients": 1}
    sql = {r["id"]: bool(r["deleted"]) for r in await _sql_rows(target, "patients")}
    lake = {r["id"]: r["deleted"] for r in _parquet_rows(parquet, "patients")}
    for deleted in (sql, lake):
        assert deleted[gone] is True
        assert sum(deleted.values()) == 1


@pytest.mark.anyio
async def test_a_tenant_filter_exports_and_advances_only_that_tenant(
    source: Source, tmp_path: Path
) -> None:
    target = f"sqlite:///{tmp_path / 'warehouse.db'}"
    only_b = await export(source.url, target, tenant="ten_b")
    assert only_b.rows["patients"] == 1
    assert {r["tenant_id"] for r in await _sql_rows(target, "patients")} == {"ten_b"}
    rest = await export(source.url, target)
    assert rest.rows["patients"] == 3
    assert rest.rows["appointments"] == 4
    with pytest.raises(ExportError):
        await export(source.url, target, tenant="ten_nobody")


@pytest.mark.anyio
async def test_a_sql_target_gains_the_columns_a_model_gained(
    source: Source, tmp_path: Path
) -> None:
    target = f"sqlite:///{tmp_path / 'warehouse.db'}"
    _sqlite(  # an export from an older model
        tmp_path / "warehouse.db",
        "CREATE TABLE labs (tenant_id VARCHAR(64) NOT NULL, id VARCHAR(64) NOT NULL,"
        " fetched_at DATETIME NOT NULL, deleted BOOLEAN NOT NULL, PRIMARY KEY (tenant_id, id))",
    )
    await export(source.url, target)
    (lab,) = await _sql_rows(target, "labs")
    assert lab["value_number"] == factories.lab_result().value_number
    assert lab["loinc_code"] == factories.lab_result().loinc_code


@pytest.mark.anyio
async def test_a_foreign_table_in_the_target_is_refused(source: Source, tmp_path: Path) -> None:
    _sqlite(tmp_path / "warehouse.db", "CREATE TABLE events (name TEXT)")
    with pytest.raises(ExportError):
        await export(source.url, f"sqlite:///{tmp_path / 'warehouse.db'}")


@pytest.mark.anyio
async def test_the_source_cannot_be_the_target(source: Source) -> None:
    with pytest.raises(ExportError):
        await export(source.url, source.url)


# --- Parquet ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_export_to_parquet_matches_the_source(source: Source, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    result = await export(source.url, f"parquet:{lake}")
    expected = await _source_counts(source.engine)
    assert _nonzero(result.rows) == expected
    for table, n in expected.items():
        assert pq.read_table(lake / table / "part-00001.parquet").num_rows == n
    patients = {(r["tenant_id"], r["id"]): r for r in _parquet_rows(lake, "patients")}
    for patient in source.patients:
        _check_patient(patients["ten_a", str(patient.id)], patient)
    appointment = source.appointments[0]
    row = next(r for r in _parquet_rows(lake, "appointments") if r["id"] == str(appointment.id))
    assert row["start"] == _json(appointment, "start")
    assert row["fetched_at"] == NOW
    assert not (lake / "claims" / "part-00002.parquet").exists()
    schema = pq.read_schema(lake / "labs" / "part-00001.parquet")
    assert str(schema.field("value_number").type) == "double"
    assert str(schema.field("fetched_at").type) == "timestamp[us, tz=UTC]"


@pytest.mark.anyio
async def test_parquet_runs_write_one_part_of_the_changed_rows(
    source: Source, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    await export(source.url, f"parquet:{lake}")
    moved = [factories.changed(a, status="cancelled") for a in source.appointments[:2]]
    await _put(source.engine, "ten_a", "appointment", moved, LATER)

    second = await export(source.url, f"parquet:{lake}", batch_size=1)
    assert second.rows["appointments"] == 2
    part = pq.read_table(lake / "appointments" / "part-00002.parquet").to_pylist()
    assert sorted(r["id"] for r in part) == sorted(str(a.id) for a in moved)
    assert not (lake / "patients" / "part-00002.parquet").exists()
    latest = {r["id"]: r["status"] for r in _parquet_rows(lake, "appointments")}
    assert sorted(latest.values()) == ["cancelled", "cancelled", "scheduled", "scheduled"]
    state = json.loads((lake / "_state.json").read_text())
    assert state["parts"]["appointments"] == 2
    mark = state["marks"]["ten_a"]["appointments"]
    assert mark == {"fetched_at": LATER.isoformat(), "id": max(str(a.id) for a in moved)}
    events = pq.read_table(lake / "events").to_pylist()
    assert len({(e["tenant_id"], e["seq"]) for e in events}) == len(events)

    assert (await export(source.url, f"parquet:{lake}")).total == 0
    assert not (lake / "appointments" / "part-00003.parquet").exists()


class _Boom(Exception):
    pass


class _FailOn:
    """A progress report that fails the run in the middle of one table."""

    def __init__(self, table: str) -> None:
        self.table = table

    def start(self, table: str, total: int) -> None:
        pass

    def advance(self, table: str, rows: int) -> None:
        if table == self.table:
            raise _Boom


@pytest.mark.anyio
async def test_a_failed_parquet_run_leaves_no_part_and_no_watermark(
    source: Source, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    with pytest.raises(_Boom):
        await export(source.url, f"parquet:{lake}", progress=_FailOn("appointments"))
    assert [p.name for p in (lake / "appointments").iterdir()] == []
    state = json.loads((lake / "_state.json").read_text())
    assert set(state["parts"]) == {"patients"}
    again = await export(source.url, f"parquet:{lake}")
    assert _nonzero(again.rows) == {
        table: n
        for table, n in (await _source_counts(source.engine)).items()
        if table != "patients"
    }


# --- PostgreSQL ---------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.anyio
async def test_export_to_postgresql_upserts_incrementally(
    sqlite_source: Source, pg_url: str
) -> None:
    source = sqlite_source
    first = await export(source.url, pg_url)
    expected = await _source_counts(source.engine)
    assert _nonzero(first.rows) == expected
    patients = {(r["tenant_id"], r["id"]): r for r in await _sql_rows(pg_url, "patients")}
    assert len(patients) == expected["patients"]
    for patient in source.patients:
        _check_patient(patients["ten_a", str(patient.id)], patient)

    moved = [factories.changed(a, status="cancelled") for a in source.appointments[2:]]
    await _put(source.engine, "ten_a", "appointment", moved, LATER)
    second = await export(source.url, pg_url)
    assert second.rows["appointments"] == 2
    rows = await _sql_rows(pg_url, "appointments")
    assert len(rows) == 4
    assert sorted(r["status"] for r in rows) == ["cancelled", "cancelled", "scheduled", "scheduled"]
    assert (await export(source.url, pg_url)).total == 0


# --- the command --------------------------------------------------------------------------------


def _cli(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    import typer

    app = typer.Typer()
    app.command("export")(export_command)
    app.command("noop")(lambda: None)  # two commands: ``export`` stays a subcommand
    result = CliRunner().invoke(app, args, env=env)
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout, result.stderr


def test_the_command_exports_with_progress(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"

    async def seed() -> None:
        engine = await _migrated_sqlite(url)
        await _fill(engine)
        await engine.dispose()

    anyio.run(seed)
    lake = tmp_path / "lake"
    code, out, _ = _cli(
        ["export", "--to", f"parquet:{lake}", "--tenant", "ten_a"],
        {"CAREBRIDGE_DATABASE_URL": url},
    )
    assert code == 0
    assert out.startswith(f"exported 18 row(s) to parquet:{lake}: patients 3, appointments 4")
    assert pq.read_table(lake / "patients").num_rows == 3
    code, out, _ = _cli(["export", "--to", f"parquet:{lake}", "--db", url], {})
    assert (code, out.strip()) == (0, f"exported 2 row(s) to parquet:{lake}: patients 1, events 1")


@pytest.mark.parametrize("target", ["ftp://example/x", "parquet:"])
def test_the_command_refuses_a_bad_target_in_one_line(tmp_path: Path, target: str) -> None:
    code, out, err = _cli(
        ["export", "--to", target, "--db", f"sqlite:///{tmp_path / 'store.db'}"], {}
    )
    assert code == 2
    assert out == ""
    assert err.startswith("error: ")
    assert len(err.strip().splitlines()) == 1


def test_the_command_refuses_a_missing_source(tmp_path: Path) -> None:
    code, _, err = _cli(
        [
            "export",
            "--to",
            f"parquet:{tmp_path / 'lake'}",
            "--db",
            f"sqlite:///{tmp_path / 'no.db'}",
        ],
        {},
    )
    assert code == 2
    assert err.startswith("error: the source store")
    assert not (tmp_path / "no.db").exists()
