"""How a kind's slice is read from the upstream, for both ingest pipelines.

The read path refreshes a stale slice through the upstream (``services``' read-through) and the
sync engine pulls streams (:mod:`carebridge.sync.engine`); both read a kind the one way described
by its entry in :mod:`carebridge.domain.kinds` (its ``upstream`` method, its ``reach``, whether it
is ``incremental``), through :func:`read_slice`, and re-read the same :data:`LAG` before their
last high-water mark.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

from carebridge.domain.kinds import Kind
from carebridge.domain.values import PatientId
from carebridge.errors import BadRequest
from carebridge.ports.upstream import Upstream

LAG = timedelta(minutes=5)
"""Incremental reads re-read this much before the last high-water mark (clock skew, late
commits): the sync's streams and the read path's refreshes alike."""


def read_slice(
    upstream: Upstream,
    kind: Kind,
    *,
    patient_id: PatientId | None = None,
    since: datetime | None = None,
) -> AsyncIterator[Any]:
    """One slice of ``kind`` through its upstream method: one patient's (``patient_id``, for a
    kind read per patient) or the whole tenant's; ``since`` is ``updated_since`` for an
    incremental kind (None: everything), ignored for the others. Window kinds (appointments)
    are read by dates, not here.

    Raises:
        BadRequest: a per-patient kind asked without a patient.
    """
    method: Callable[..., AsyncIterator[Any]] = getattr(upstream, kind.upstream)
    arguments: dict[str, Any] = {}
    if kind.reach == "patient":
        if patient_id is None:  # pragma: no cover - per-patient kinds are only asked with one
            raise BadRequest("patient_id is required", field="patient_id")
        arguments["patient_id"] = patient_id
    if kind.incremental:
        arguments["updated_since"] = since
    return method(**arguments)


def tenant_wide(kind: Kind) -> bool:
    """Whether the read path keeps ``kind`` as one slice for the whole tenant (stored, and read
    neither per patient nor by window): a completed sync stream of it makes that slice fresh."""
    return kind.stored and kind.reach == "tenant"
