"""Base models and provenance.

Every normalized record is a frozen pydantic model with ``extra="forbid"`` that carries
``sources``: a non-empty tuple of ``Provenance``, one per upstream read that fed it. It is a tuple,
not a single value, because one record is often merged from several surfaces (a patient from the
v2 API's demographics, the portal's chart and the FHIR ``Patient``), and a client must be able to
tell which read, and how fresh, each contributed. The first entry is the primary source (the one
whose ids the record's crosswalk entry was created from); ``fetched_at`` says how stale the data is.

Validation errors never echo the input (``hide_input_in_errors``): the input may be PHI.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from carebridge.domain.values import Instant

Surface = Literal["v2", "portal", "fhir"]
"""The upstream surface a record was read from (``DESIGN.md`` §1)."""

NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class DomainModel(BaseModel):
    """The base of every model in ``carebridge.domain``: frozen, strict about extra keys."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        hide_input_in_errors=True,
        validate_default=True,
    )


class Provenance(DomainModel):
    """Where and when a record was read."""

    surface: Surface
    endpoint: NonEmptyStr
    """The route template that served it, e.g. ``GET /v2/patients/{id}``."""
    upstream_id: NonEmptyStr
    """The record's id on that surface (a v2 GUID, a claim number, a FHIR logical id)."""
    fetched_at: Instant


class Record(DomainModel):
    """A normalized record: it knows where it came from."""

    sources: tuple[Provenance, ...] = Field(min_length=1)

    @property
    def fetched_at(self) -> datetime:
        """When the freshest of its sources was read."""
        return max(s.fetched_at for s in self.sources)

    @model_validator(mode="after")
    def _sources_are_distinct(self) -> Record:
        seen = {(s.surface, s.endpoint, s.upstream_id) for s in self.sources}
        if len(seen) != len(self.sources):
            raise ValueError("sources: the same upstream read is listed twice")
        return self


def check_timestamps(created_at: datetime | None, updated_at: datetime | None) -> None:
    """Raise ``ValueError`` naming ``updated_at`` when it is before ``created_at``."""
    if created_at is not None and updated_at is not None and updated_at < created_at:
        raise ValueError("updated_at: must not be before created_at")
