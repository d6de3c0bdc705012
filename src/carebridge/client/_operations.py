"""Every operation of the API as a :class:`~carebridge.client._core.Call` builder, shared by the
sync and the async client (each namespace method builds a call here and runs it).

Records are read as the contract's model of their kind (``carebridge.contract.RECORDS``); for
static typing each is named by its domain model, which the contract's model is (or extends
with ``currency``, for kinds that carry amounts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, TypeVar, cast

from pydantic_core import to_jsonable_python

from carebridge.client._core import Call, ListCall, ParamValue, call
from carebridge.contract import RECORDS, WriteAnswer

R = TypeVar("R")

Instant = datetime | str
"""An instant for a request: an aware ``datetime``, or RFC 3339 text with its offset."""
Day = date | str
"""A calendar day: a ``date``, or ``YYYY-MM-DD``."""


def body(**fields: Any) -> dict[str, Any]:
    """A request body: the fields given (None left out), as JSON values."""
    out: dict[str, Any] = to_jsonable_python({k: v for k, v in fields.items() if v is not None})
    return out


@dataclass(frozen=True)
class Records(Generic[R]):
    """A kind's reads: the list at ``path`` and one record at ``path/{id}``."""

    kind: str
    path: str
    cursor_param: str = "cursor"

    @property
    def model(self) -> Any:
        """The contract's model of the kind's records."""
        return RECORDS[self.kind]

    def listing(
        self,
        filters: Mapping[str, ParamValue],
        *,
        limit: int | None,
        order: str | None,
        max_age: int | None,
    ) -> ListCall[R]:
        """The list, filtered; ``limit`` records a page."""
        params = {**filters, "limit": limit, "order": order, "max_age": max_age}
        return ListCall(self.path, self.model, params, self.cursor_param)

    def one(self, record_id: str, *, max_age: int | None = None) -> Call[R]:
        """One record by its id."""
        return call("GET", f"{self.path}/{record_id}", self.model, params={"max_age": max_age})


def write(
    operation: str, kind: str, fields: dict[str, Any], idempotency_key: str | None
) -> Call[WriteAnswer[Any]]:
    """``POST /<operation>`` with ``fields`` as its body; the answer carries a ``kind`` record."""
    return call(
        "POST",
        f"/{operation}",
        cast(Any, WriteAnswer)[RECORDS[kind]],
        body=body(**fields),
        idempotency_key=idempotency_key,
    )


def booking(
    *,
    resource_id: str,
    location_id: str,
    visit_reason_id: str,
    start: Instant,
    provider_id: str | None,
    end: Instant | None,
    chief_complaint: str | None,
    comments: str | None,
) -> dict[str, Any]:
    """The slot fields of a booking or a reschedule."""
    return {
        "resource_id": resource_id,
        "location_id": location_id,
        "visit_reason_id": visit_reason_id,
        "start": start,
        "provider_id": provider_id,
        "end": end,
        "chief_complaint": chief_complaint,
        "comments": comments,
    }


def seq_param(value: int | str | None) -> ParamValue:
    """``after`` as the API takes it (a seq, or the ``next_cursor`` it answered)."""
    return value


def id_list(values: Sequence[str] | None) -> list[str] | None:
    """A repeated query parameter (None when not given)."""
    return list(values) if values else None
