"""Read and search over the :mod:`catalog` sources, with keyset paging.

A search compiles its parameters into SQL conditions on the type's source, counts the matches
(``Bundle.total``) and fetches one page ordered by the source's integer key ``k``. The next link
carries ``_cursor=<last k>``: pages never overlap or skip, even when rows are added meanwhile.
Every parameter the server does not know is a 400, as are bad values.
"""

from __future__ import annotations

import calendar
import re
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from carecloud_sandbox.fhir.catalog import ARM_SPAN, GENERATED, LOADERS, Param, TypeSpec
from carecloud_sandbox.fhir.common import FhirError, Practice, bad_request, not_found
from carecloud_sandbox.fhir.ids import IdMap
from carecloud_sandbox.fhir.resources import Ctx, build
from carecloud_sandbox.tenant import Tenant
from carecloud_sandbox.v2.common import to_db_instant

DEFAULT_COUNT = 50
MAX_COUNT = 1000
# Result parameters understood (and the ones accepted but without effect on a JSON server).
RESULT_PARAMS = {"_count", "_cursor", "_summary", "_total", "_totalMethod", "_format", "_pretty"}
FORMATS = {"json", "application/json", "application/fhir+json", "application/json+fhir"}
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
DATE_RE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?)?)?"
)
MAX_VALUES = 100  # comma-separated values of one parameter


@dataclass
class Query:
    """SQL conditions on a source (``s``) and their bound values."""

    conds: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, cond: str, *params: Any) -> None:
        """AND one more condition."""
        self.conds.append(cond)
        self.params.extend(params)

    def where(self) -> str:
        """The WHERE clause (always at least the practice scope)."""
        return " AND ".join(self.conds) if self.conds else "1"


@dataclass
class Search:
    """A parsed search request."""

    query: Query
    count: int
    cursor: int | None
    count_only: bool
    echo: list[tuple[str, str]]  # the parameters to carry into the next link


# --- values -----------------------------------------------------------------------------------


def parse_date(value: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """A FHIR date/dateTime search value as the half-open UTC range it stands for.

    Partial dates cover their year, month or day; a value without a zone is practice-local.

    Raises:
        ValueError: when it is not a FHIR date.
    """
    text = value.strip().replace(" ", "+")  # an unencoded '+' of an offset arrives as a space
    match = DATE_RE.fullmatch(text)
    if match is None:
        raise ValueError(value)
    year, month, day, hour, minute, second, zone = match.groups()
    y = int(year)
    if not 1 <= y <= 9998:
        raise ValueError(value)
    if hour is not None:
        tzinfo: Any = tz
        if zone == "Z":
            tzinfo = UTC
        elif zone:
            sign = 1 if zone[0] == "+" else -1
            hh, mm = int(zone[1:3]), int(zone[4:6])
            if hh > 14 or mm > 59:
                raise ValueError(value)
            tzinfo = timezone(sign * timedelta(hours=hh, minutes=mm))
        start = datetime(
            y, int(month), int(day), int(hour), int(minute), int(second or 0), tzinfo=tzinfo
        )
        step = timedelta(seconds=1) if second is not None else timedelta(minutes=1)
        return start.astimezone(UTC), (start + step).astimezone(UTC)
    if day is not None:
        first = date(y, int(month), int(day))
        last = first + timedelta(days=1)
    elif month is not None:
        m = int(month)
        first = date(y, m, 1)
        last = first + timedelta(days=calendar.monthrange(y, m)[1])
    else:
        first, last = date(y, 1, 1), date(y + 1, 1, 1)
    lo = datetime(first.year, first.month, first.day, tzinfo=tz)
    hi = datetime(last.year, last.month, last.day, tzinfo=tz)
    return lo.astimezone(UTC), hi.astimezone(UTC)


def _split_prefix(value: str) -> tuple[str, str]:
    if len(value) > 2 and value[:2] in PREFIXES:
        return value[:2], value[2:]
    return "eq", value


def _floor_day(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).date().isoformat()


def _ceil_day(moment: datetime, tz: ZoneInfo) -> str:
    local = moment.astimezone(tz)
    day = local.date()
    if (local.hour, local.minute, local.second, local.microsecond) != (0, 0, 0, 0):
        day += timedelta(days=1)
    return day.isoformat()


def date_condition(name: str, param: Param, raw: str, tz: ZoneInfo, query: Query) -> None:
    """Add one date parameter (one prefix and value; several values are OR'ed)."""
    parts = []
    values: list[Any] = []
    for item in _values(name, raw):
        prefix, text = _split_prefix(item)
        if prefix in ("sa", "eb", "ap"):
            raise bad_request(
                f"The prefix '{prefix}' of '{name}' is not supported", "not-supported"
            )
        try:
            lo, hi = parse_date(text, tz)
        except ValueError:
            raise bad_request(f"Invalid date value in parameter '{name}'") from None
        col = f"s.{param.column}"
        if param.date_kind == "instant":
            bounds = {"lo": to_db_instant(lo), "hi": to_db_instant(hi)}
            eq = (f"({col} >= ? AND {col} < ?)", [bounds["lo"], bounds["hi"]])
            table = {
                "gt": (f"{col} >= ?", [bounds["hi"]]),
                "lt": (f"{col} < ?", [bounds["lo"]]),
                "ge": (f"{col} >= ?", [bounds["lo"]]),
                "le": (f"{col} < ?", [bounds["hi"]]),
            }
        else:
            eq = (f"({col} >= ? AND {col} < ?)", [_ceil_day(lo, tz), _floor_day(hi, tz)])
            table = {
                "gt": (f"{col} >= ?", [_floor_day(hi, tz)]),
                "lt": (f"{col} < ?", [_ceil_day(lo, tz)]),
                "ge": (f"{col} >= ?", [_floor_day(lo, tz)]),
                "le": (f"{col} < ?", [_ceil_day(hi, tz)]),
            }
        if prefix == "eq":
            sql, bound = eq
        elif prefix == "ne":
            sql, bound = f"({col} IS NOT NULL AND NOT {eq[0]})", eq[1]
        else:
            sql, bound = table[prefix]
        parts.append(sql)
        values.extend(bound)
    query.add("(" + " OR ".join(parts) + ")", *values)


def _values(name: str, raw: str) -> list[str]:
    values = [v for v in raw.split(",") if v != ""]
    if not values:
        raise bad_request(f"Parameter '{name}' has no value")
    if len(values) > MAX_VALUES:
        raise bad_request(f"Parameter '{name}' has too many values")
    return values


def token_condition(name: str, param: Param, raw: str, query: Query) -> None:
    """Add one token parameter: ``code``, ``system|code``, ``|code`` or ``system|``."""
    parts = []
    values: list[Any] = []
    for item in _values(name, raw):
        if "|" in item:
            system, code = item.split("|", 1)
            if param.system is not None and system != param.system:
                parts.append("0")
                continue
            if param.system is None and system == "" and code == "":
                parts.append("0")
                continue
        else:
            code = item
        if code == "":
            parts.append(f"s.{param.column} IS NOT NULL")
            continue
        parts.append(" OR ".join(f"s.{c} = ?" for c in param.columns))
        values.extend([code] * len(param.columns))
    query.add("(" + " OR ".join(f"({p})" for p in parts) + ")", *values)


def _like(text: str) -> str:
    return text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def string_condition(name: str, modifier: str, param: Param, raw: str, query: Query) -> None:
    """Add one string parameter (prefix match; ``:exact`` and ``:contains`` modifiers)."""
    parts = []
    values: list[Any] = []
    for item in _values(name, raw):
        for column in param.columns:
            if modifier == "exact":
                parts.append(f"s.{column} = ?")
                values.append(item)
            else:
                pattern = _like(item) + "%"
                if modifier == "contains":
                    pattern = "%" + pattern
                parts.append(f"lower(s.{column}) LIKE ? ESCAPE '\\'")
                values.append(pattern)
    query.add("(" + " OR ".join(parts) + ")", *values)


def reference_condition(name: str, param: Param, raw: str, ids: IdMap, query: Query) -> None:
    """Add one reference parameter: ``Patient/<id>``, ``<id>`` or an absolute URL."""
    keys: list[str] = []
    for item in _values(name, raw):
        parts = item.rstrip("/").split("/")
        if len(parts) >= 2 and parts[-2] != param.target:
            continue
        entity = ids.entity_of(str(param.target), "patients", parts[-1])
        if entity is not None:
            keys.append(entity)
    if not keys:
        query.add("0")
        return
    query.add(f"s.{param.column} IN ({','.join('?' * len(keys))})", *keys)


def id_condition(spec: TypeSpec, ids: Sequence[str], query: Query) -> None:
    """Match logical ids, with a row-id hint for prefixed ids so SQLite can use the key."""
    query.add(f"s.fid IN ({','.join('?' * len(ids))})", *ids)
    if spec.id_pattern is None:
        return
    rows: list[int] = []
    for fid in ids:
        match = re.fullmatch(spec.id_pattern, fid)
        if match is None:
            continue
        rows.append(int(next(g for g in match.groups() if g is not None)))
    if len(rows) == len(ids):
        query.add(f"s.row_id IN ({','.join('?' * len(rows))})", *rows)


# --- parsing a request ------------------------------------------------------------------------


def _int_param(name: str, raw: str, low: int) -> int:
    text = raw.strip()
    if not re.fullmatch(r"[0-9]{1,18}", text) or int(text) < low:
        raise bad_request(f"Parameter '{name}' must be an integer of at least {low}")
    return int(text)


def parse_search(
    spec: TypeSpec, practice: Practice, items: Sequence[tuple[str, str]], ids: IdMap
) -> Search:
    """Compile the query parameters of a search.

    Raises:
        FhirError: 400 for an unknown parameter, modifier or value.
    """
    query = Query()
    query.add("(s.practice_id = ? OR s.practice_id IS NULL)", practice.id)
    count = DEFAULT_COUNT
    cursor: int | None = None
    count_only = False
    echo: list[tuple[str, str]] = []
    seen_result: set[str] = set()
    for name, raw in items:
        if name in RESULT_PARAMS:
            if name in seen_result:
                raise bad_request(f"Parameter '{name}' is repeated")
            seen_result.add(name)
            if name == "_count":
                count = min(_int_param(name, raw, 0), MAX_COUNT)
                continue
            if name == "_cursor":
                cursor = _int_param(name, raw, 0)
                continue
            if name == "_summary":
                if raw == "count":
                    count_only = True
                elif raw != "false":
                    raise bad_request("Only _summary=count is supported", "not-supported")
            if name == "_format" and raw not in FORMATS:
                raise FhirError(406, "not-supported", "Only JSON is supported")
            echo.append((name, raw))
            continue
        base, _, modifier = name.partition(":")
        param = spec.params.get(base)
        if param is None:
            raise bad_request(f"Unknown search parameter '{base}' for {spec.name}", "not-supported")
        if modifier and not (param.kind == "string" and modifier in ("exact", "contains")):
            raise bad_request(
                f"Modifier ':{modifier}' of '{base}' is not supported", "not-supported"
            )
        echo.append((name, raw))
        if param.kind == "date":
            date_condition(name, param, raw, practice.tz, query)
        elif param.kind == "token":
            token_condition(name, param, raw, query)
        elif param.kind == "string":
            string_condition(name, modifier, param, raw, query)
        elif param.kind == "reference":
            reference_condition(name, param, raw, ids, query)
        else:
            id_condition(spec, _values(name, raw), query)
    if count == 0:
        count_only = True
    return Search(query=query, count=count, cursor=cursor, count_only=count_only, echo=echo)


# --- running ----------------------------------------------------------------------------------


def make_ctx(tenant: Tenant, practice: Practice, ids: IdMap) -> Ctx:
    """A builder context (with the payers, which coverages name)."""
    payers = {int(row["id"]): row for row in tenant.db.all("SELECT * FROM payers")}
    return Ctx(tenant=tenant, practice=practice, ids=ids, payers=payers)


def count_matches(tenant: Tenant, spec: TypeSpec, query: Query) -> int:
    """How many resources match (over every arm of the source)."""
    total = 0
    for arm in spec.arms:
        value = tenant.db.scalar(
            f"SELECT COUNT(*) FROM ({arm}) s WHERE {query.where()}", tuple(query.params)
        )
        total += int(value or 0)
    return total


def fetch(
    tenant: Tenant, spec: TypeSpec, query: Query, after: int | None, limit: int, ctx: Ctx
) -> list[tuple[int, dict[str, Any]]]:
    """One keyset page of rendered resources: ``[(cursor, resource)]`` in cursor order.

    Arm ``i`` holds the cursors ``[i * ARM_SPAN, (i + 1) * ARM_SPAN)``; each arm is read in the
    order of its own indexed key, so a page costs an index range scan, not a sort.
    """
    keys: list[tuple[int, sqlite3.Row]] = []
    for index, arm in enumerate(spec.arms):
        remaining = limit - len(keys)
        if remaining <= 0:
            break
        offset = index * ARM_SPAN
        if after is not None and after >= offset + ARM_SPAN - 1:
            continue
        where = query.where()
        params = list(query.params)
        if after is not None and after >= offset:
            where += " AND s.k > ?"
            params.append(after - offset)
        rows = tenant.db.all(
            f"SELECT s.k, s.fid, s.kind, s.row_id, s.sub FROM ({arm}) s "
            f"WHERE {where} ORDER BY s.k LIMIT ?",
            (*params, remaining),
        )
        keys.extend((offset + int(row["k"]), row) for row in rows)
    return render(tenant, keys, ctx)


def render(
    tenant: Tenant, keys: Sequence[tuple[int, sqlite3.Row]], ctx: Ctx
) -> list[tuple[int, dict[str, Any]]]:
    """Load the full rows of page keys and render them, keeping the keys' order."""
    by_kind: dict[str, set[Any]] = {}
    for _, key in keys:
        by_kind.setdefault(key["kind"], set()).add(key["row_id"])
    rows: dict[tuple[str, str], sqlite3.Row] = {}
    for kind, row_ids in by_kind.items():
        loader = LOADERS[kind]
        marks = ",".join("?" * len(row_ids))
        for row in tenant.db.all(
            f"SELECT t.*, {GENERATED} AS lu FROM {loader.table} t WHERE t.{loader.key} IN ({marks})",
            tuple(row_ids),
        ):
            rows[(kind, str(row[loader.key]))] = row
    out = []
    for cursor, key in keys:
        full = rows.get((key["kind"], str(key["row_id"])))
        if full is not None:
            out.append((cursor, build(key["kind"], full, key["sub"], key["fid"], ctx)))
    return out


def iterate(
    tenant: Tenant, spec: TypeSpec, query: Query, ctx: Ctx, chunk: int = 500
) -> Iterator[dict[str, Any]]:
    """Every matching resource in key order, fetched a chunk at a time."""
    after: int | None = None
    while True:
        page = fetch(tenant, spec, query, after, chunk, ctx)
        for _, resource in page:
            yield resource
        if len(page) < chunk:
            return
        after = page[-1][0]


def read(tenant: Tenant, practice: Practice, spec: TypeSpec, fid: str) -> dict[str, Any]:
    """One resource by logical id, in the practice's scope.

    Raises:
        FhirError: 404 when there is none.
    """
    if not re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", fid):
        raise not_found(f"{spec.name} not found")
    ids = IdMap(tenant)
    query = Query()
    query.add("(s.practice_id = ? OR s.practice_id IS NULL)", practice.id)
    id_condition(spec, [fid], query)
    page = fetch(tenant, spec, query, None, 1, make_ctx(tenant, practice, ids))
    if not page:
        raise not_found(f"{spec.name} not found")
    return page[0][1]


def search_bundle(
    tenant: Tenant,
    practice: Practice,
    spec: TypeSpec,
    items: Sequence[tuple[str, str]],
    self_url: str,
) -> dict[str, Any]:
    """Run a search and answer a searchset Bundle with total, self/next links and entries."""
    ids = IdMap(tenant)
    search = parse_search(spec, practice, items, ids)
    total = count_matches(tenant, spec, search.query)
    links = [{"relation": "self", "url": self_url}]
    entries: list[dict[str, Any]] = []
    if not search.count_only:
        ctx = make_ctx(tenant, practice, ids)
        page = fetch(tenant, spec, search.query, search.cursor, search.count + 1, ctx)
        more = len(page) > search.count
        page = page[: search.count]
        entries = [
            {
                "fullUrl": f"{practice.base}/{spec.name}/{resource['id']}",
                "resource": resource,
                "search": {"mode": "match"},
            }
            for _, resource in page
        ]
        if more and page:
            params = [*search.echo, ("_count", str(search.count)), ("_cursor", str(page[-1][0]))]
            links.append(
                {
                    "relation": "next",
                    "url": f"{practice.base}/{spec.name}?{urlencode(params)}",
                }
            )
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": tenant.now_db()},
        "type": "searchset",
        "total": total,
        "link": links,
    }
    if entries:
        bundle["entry"] = entries
    return bundle
