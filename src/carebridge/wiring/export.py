"""The export, composed: the store at a URL read through ``store.export``'s source, a target
(``sqlite:///FILE``, ``postgresql://...`` or ``parquet:DIR``) written through its sink, and the
use case between them (``services.export``)."""

from __future__ import annotations

from carebridge.services import export as use_case
from carebridge.services.export import BATCH, ExportResult, Progress
from carebridge.store.export import SqlExportSource, Target, check, sink
from carebridge.store.export import parse_target as parse_target

__all__ = ["ExportResult", "Progress", "Target", "export", "parse_target"]


async def export(
    source_url: str,
    target: str | Target,
    *,
    tenant: str | None = None,
    progress: Progress | None = None,
    batch_size: int = BATCH,
) -> ExportResult:
    """Export what changed in the store at ``source_url`` since the last export to ``target``
    (every tenant, or only ``tenant``); returns the rows written per table.

    Raises:
        ExportError: a bad target, the source store itself as the target, a missing source
            store or tenant, or a target that cannot be written.
    """
    parsed = target if isinstance(target, Target) else parse_target(target)
    check(source_url, parsed)
    source = SqlExportSource(source_url)
    try:
        return await use_case.run(
            source, sink(parsed), tenant=tenant, progress=progress, batch_size=batch_size
        )
    finally:
        await source.close()
