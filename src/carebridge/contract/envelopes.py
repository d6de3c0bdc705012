"""The list envelope and a write's answer, generic over the record they carry."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of a list: its records, whether more follow, and the cursor of the next page.

    ``has_more`` is true exactly when ``next_cursor`` is not null; pass ``cursor=<next_cursor>``
    (``after=<next_cursor>`` on ``/events`` and ``/audit_events``) for the next page."""

    model_config = ConfigDict(extra="forbid")

    data: list[T]
    has_more: bool
    next_cursor: str | None = Field(description="The next page's cursor (null on the last page).")


class WriteAnswer(BaseModel, Generic[T]):
    """A write's record as read back from the upstream, whether the read-back matched the
    request (``confirmation``; ``diverged`` names the fields that did not), and the write's
    ledger entry (``led_<n>``)."""

    model_config = ConfigDict(extra="forbid")

    data: T
    confirmation: str = Field(description="`confirmed`, or how the read-back differed.")
    diverged: list[str]
    ledger_id: str = Field(pattern=r"^led_[0-9]+$")
