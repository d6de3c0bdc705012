"""Normalized records in the store: one JSON row per entity, with indexed columns for filters.

:func:`upsert` writes domain records (any pydantic model with an ``id``) and reports what
changed, with the before and after JSON, so sync (issue 6) can turn changes into events in the
same transaction. :func:`query` reads one kind with filters and keyset pagination: the cursor is
the last id of the previous page, so a page boundary never skips or repeats a row.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy import Select, Text, bindparam, cast, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from carebridge.domain.events import keep_sticky, same_content
from carebridge.domain.kinds import KINDS
from carebridge.errors import BadCursor as BadCursor
from carebridge.store.engine import read_all
from carebridge.store.schema import entities

MAX_LIMIT = 500


@dataclass(frozen=True)
class Change:
    """One record's change: ``before`` is None for a new record."""

    kind: str
    id: str
    before: dict[str, Any] | None
    after: dict[str, Any]


def _text(value: Any) -> str | None:
    if isinstance(value, bool):  # a flag filters as ``true`` / ``false``, as the query gives it
        return "true" if value else "false"
    return None if value is None else str(value)


def _patient_key(kind: str) -> str | None:
    found = KINDS.get(kind)
    return found.patient_key if found is not None else "patient_id"


_FILLED_BY: dict[str, tuple[str, str, str]] = {
    name: (k.field_of("provider_id"), k.field_of("location_id"), k.field_of("status"))
    for name, k in KINDS.items()
}
"""Each kind's fields that fill the ``provider_id``, ``location_id`` and ``status`` columns
(the registry's ``columns``: a patient's ``primary_provider_id``...)."""
_SAME = ("provider_id", "location_id", "status")


def index_columns(kind: str, record: BaseModel) -> dict[str, Any]:
    """The filterable columns of one record (absent attributes give NULL)."""
    get = record.__dict__.get
    name = get("name")
    name_key = None
    if kind == "patient" and name is not None:
        name_key = f"{getattr(name, 'last', '')}, {getattr(name, 'first', '')}".lower()
    birth = get("birth_date")
    start = get("start")
    updated = get("updated_at")
    provider, location, status = _FILLED_BY.get(kind, _SAME)
    return {
        "patient_id": _text(get(key)) if (key := _patient_key(kind)) else None,
        "provider_id": _text(get(provider)),
        "location_id": _text(get(location)),
        "status": _text(get(status)),
        "name_key": name_key,
        "birth_date": birth.isoformat() if isinstance(birth, date) else None,
        "starts_at": start if isinstance(start, datetime) else None,
        "upstream_updated_at": updated if isinstance(updated, datetime) else None,
    }


_UPSERTS: dict[str, Any] = {}
_KEY = ("tenant_id", "kind", "id")
_WRITTEN = (
    "data",
    "fetched_at",
    "deleted",
    "patient_id",
    "provider_id",
    "location_id",
    "status",
    "name_key",
    "birth_date",
    "starts_at",
    "upstream_updated_at",
)
"""The columns an upsert writes besides the key: the record, when it was read, and
:func:`index_columns`."""


def _upsert(dialect: str) -> Any:
    """The page's ``INSERT ... ON CONFLICT DO UPDATE`` (unless the stored read is newer), built
    once per dialect and run with a list of rows (executemany): building a statement and its
    cache key per page costs more than running it."""
    found = _UPSERTS.get(dialect)
    if found is None:
        statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(entities)
        stored, incoming = entities.c.upstream_updated_at, statement.excluded.upstream_updated_at
        found = _UPSERTS[dialect] = statement.on_conflict_do_update(
            index_elements=list(_KEY),
            set_={column: statement.excluded[column] for column in _WRITTEN},
            where=or_(stored.is_(None), incoming.is_(None), incoming >= stored),
        )
    return found


_STORED = select(entities.c.id, entities.c.data, entities.c.upstream_updated_at).where(
    entities.c.tenant_id == bindparam("s_tenant"),
    entities.c.kind == bindparam("s_kind"),
    entities.c.id.in_(bindparam("s_ids", expanding=True)),
)
"""The stored rows of a page's records (built once, bound by name)."""


async def upsert(
    conn: AsyncConnection,
    tenant_id: str,
    kind: str,
    records: Iterable[BaseModel],
    *,
    fetched_at: datetime,
) -> list[Change]:
    """Insert or update records of one kind in the caller's transaction; returns the changes
    (a record whose content is unchanged, provenance aside, is not a change).

    A read older than the stored record (its upstream ``updated_at`` is earlier) changes
    nothing: the sync and the change feed read the same records at different moments, and the
    slower one's answer must not take the record back. The statement itself says so too, so a
    concurrent writer between this function's read and its write cannot either."""
    rows = [(str(r.__dict__["id"]), r.model_dump(mode="json"), r) for r in records]
    if not rows:
        return []
    existing: dict[str, Any] = {}
    stamped: dict[str, datetime] = {}
    for row in await conn.execute(
        _STORED, {"s_tenant": tenant_id, "s_kind": kind, "s_ids": [row[0] for row in rows]}
    ):
        existing[row.id] = row.data
        if row.upstream_updated_at is not None:
            stamped[row.id] = _aware(row.upstream_updated_at)
    changes: list[Change] = []
    batch: dict[str, dict[str, Any]] = {}
    for entity_id, fetched, record in rows:
        columns = index_columns(kind, record)
        newer = columns["upstream_updated_at"]
        if newer is not None and entity_id in stamped and _aware(newer) < stamped[entity_id]:
            continue  # an older read than the stored record's: it changes nothing
        before = existing.get(entity_id)
        data = keep_sticky(kind, before, fetched)
        batch[entity_id] = {  # a record listed twice: its last read wins, as it did row by row
            "tenant_id": tenant_id,
            "kind": kind,
            "id": entity_id,
            "data": data,
            "fetched_at": fetched_at,
            "deleted": False,
            **columns,
        }
        if not same_content(before, data):
            changes.append(Change(kind, entity_id, before, data))
    if not batch:
        return changes
    await conn.execute(  # one statement for the page (executemany), not one per record
        _upsert(conn.dialect.name), list(batch.values())
    )
    return changes


def _aware(moment: datetime) -> datetime:
    """An instant read back from the store (SQLite keeps no offset: its instants are UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _cursor(entity_id: str) -> str:
    return base64.urlsafe_b64encode(entity_id.encode()).decode().rstrip("=")


def _after(cursor: str) -> str:
    try:
        padded = (cursor + "=" * (-len(cursor) % 4)).encode()
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise BadCursor("the cursor is not one this API issued") from None


ORDERS = ("id", "start", "-start")
"""The orders :func:`query` reads in: by id, or by start (then id) ascending or descending."""
_BY_START = "\x1e"
"""Opens the cursor of an order by start (the start and the id, split by a unit separator);
an id-order cursor is the bare id, so a cursor of one order given to another is refused."""


def _start_cursor(starts_at: datetime, entity_id: str) -> str:
    at = starts_at if starts_at.tzinfo else starts_at.replace(tzinfo=UTC)
    return _cursor(f"{_BY_START}{at.astimezone(UTC).isoformat()}\x1f{entity_id}")


def _after_start(cursor: str) -> tuple[datetime, str]:
    text = _after(cursor)
    at, sep, entity_id = text.removeprefix(_BY_START).partition("\x1f")
    try:
        if not text.startswith(_BY_START) or not sep or not entity_id:
            raise ValueError(text)
        return datetime.fromisoformat(at).astimezone(UTC), entity_id
    except ValueError:
        raise BadCursor("the cursor is not one this API issued for this order") from None


@dataclass(frozen=True)
class Page:
    """One page of records and the cursor of the next, if any.

    ``raw`` holds each record's stored JSON text, unparsed (a list route can send it as is);
    ``patient_ids`` the patient each record is about (the audit's subject).
    """

    raw: Sequence[str]
    patient_ids: Sequence[str | None]
    next_cursor: str | None

    @property
    def items(self) -> list[dict[str, Any]]:
        """The records, parsed."""
        return [orjson.loads(text) for text in self.raw]


async def query(
    engine: AsyncEngine,
    tenant_id: str,
    kind: str,
    *,
    filters: dict[str, str] | None = None,
    updated_since: datetime | None = None,
    starts_from: datetime | None = None,
    starts_before: datetime | None = None,
    limit: int = 100,
    cursor: str | None = None,
    order: str = "id",
) -> Page:
    """A page of one kind's records, filtered by indexed columns, in ``order`` (one of
    :data:`ORDERS`; by start, ties go by id, and the cursor is the last row's start and id)."""
    if order not in ORDERS:
        raise ValueError(f"no order {order!r}")
    limit = max(1, min(limit, MAX_LIMIT))
    statement: Select[Any] = select(
        entities.c.id,
        entities.c.patient_id,
        cast(entities.c.data, Text).label("raw"),
        entities.c.starts_at,
    ).where(
        entities.c.tenant_id == tenant_id, entities.c.kind == kind, entities.c.deleted.is_(False)
    )
    for column, value in (filters or {}).items():
        statement = statement.where(entities.c[column] == value)
    if updated_since is not None:
        statement = statement.where(entities.c.upstream_updated_at >= updated_since.astimezone(UTC))
    if starts_from is not None:
        statement = statement.where(entities.c.starts_at >= starts_from.astimezone(UTC))
    if starts_before is not None:
        statement = statement.where(entities.c.starts_at < starts_before.astimezone(UTC))
    if order == "id":
        if cursor:
            last_id = _after(cursor)
            if last_id.startswith(_BY_START):
                raise BadCursor("the cursor is not one this API issued for this order")
            statement = statement.where(entities.c.id > last_id)
        statement = statement.order_by(entities.c.id)
    else:
        key = tuple_(entities.c.starts_at, entities.c.id)
        if cursor:
            at, last = _after_start(cursor)
            statement = statement.where(key > (at, last) if order == "start" else key < (at, last))
        if order == "start":
            statement = statement.order_by(entities.c.starts_at, entities.c.id)
        else:
            statement = statement.order_by(entities.c.starts_at.desc(), entities.c.id.desc())
    rows = await read_all(engine, statement.limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    following = None
    if more and rows:
        last_row = rows[-1]
        by_start = order != "id" and last_row.starts_at is not None
        following = (
            _start_cursor(last_row.starts_at, last_row.id) if by_start else _cursor(last_row.id)
        )
    return Page([row.raw for row in rows], [row.patient_id for row in rows], following)
