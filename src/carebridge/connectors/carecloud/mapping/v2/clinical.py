"""v2 clinical documents' metadata."""

from __future__ import annotations

from carebridge.connectors.carecloud.mapping.common import Context, Mapped
from carebridge.connectors.carecloud.mapping.v2._base import (
    PatientRef,
    _build,
    _dropped,
    _loinc,
    _Run,
    _text,
    _track,
    _valid,
)
from carebridge.connectors.carecloud.wire.v2 import DocumentPayload
from carebridge.domain import Document, DocumentId
from carebridge.errors import UnexpectedPayload

# --- documents and eligibility ---------------------------------------------------------------------


def map_document(wire: DocumentPayload, ctx: Context, *, patient: PatientRef) -> Mapped[Document]:
    """A clinical document's metadata.

    Raises:
        UnexpectedPayload: it belongs to another patient, or its content type is not a MIME type.
    """
    run = _Run()
    w = _track(wire, run)
    if w.patient_id != patient.v2_id.lower():
        raise UnexpectedPayload(
            f"v2 document {wire.id} belongs to another patient than requested",
            field_path="patient_id",
            endpoint=ctx.endpoint,
        )
    coding = w.document_type
    loinc = None
    if coding is not None:
        system = _text(coding.system)
        if system in ("", "http://loinc.org"):
            loinc = _valid(run, coding, "code", _loinc)
    document = _build(
        Document,
        "document",
        str(wire.id),
        ctx,
        id=DocumentId.new(ctx.key("document", str(w.id))),
        sources=(ctx.source(str(wire.id)),),
        patient_id=patient.patient_id(ctx),
        name=w.name,
        description=_text(w.description),
        source_name=_text(w.document_source_name),
        type_loinc=loinc,
        document_date=w.document_date,
        content_type=_text(w.content_type),
        size_bytes=w.size,
    )
    return Mapped(document, _dropped(run, wire))
