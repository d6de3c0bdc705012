"""The one timestamp format of the API: RFC 3339 in UTC, ``Z``, second precision."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final

from pydantic import AfterValidator, PlainSerializer, WithJsonSchema

PATTERN: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"
"""Every instant the API answers matches this (20 characters)."""


def rfc3339(at: datetime) -> str:
    """``at`` as the API writes instants: ``2026-11-24T15:00:00Z`` (UTC; fractions dropped).

    Raises:
        ValueError: ``at`` is naive (the API never guesses a time zone).
    """
    if at.tzinfo is None:
        raise ValueError("a naive datetime has no instant")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("the instant must carry its offset")
    return at.astimezone(UTC).replace(microsecond=0)


Timestamp = Annotated[
    datetime,
    AfterValidator(_utc),
    PlainSerializer(rfc3339, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": PATTERN,
            "examples": ["2026-11-24T15:00:00Z"],
        },
        mode="serialization",
    ),
]
"""An instant in the API's format (parsed from any RFC 3339 offset)."""
