"""Connector Observations to the domain: laboratory results and vital-sign sets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from carebridge.connectors.carecloud.mapping.common import Context, Mapped
from carebridge.connectors.carecloud.mapping.fhir.base import (
    _ROW_ID,
    LOINC,
    PatientIndex,
    _code,
    _coding,
    _instant,
    _label,
    _required,
    _updated,
    row_key,
)
from carebridge.connectors.carecloud.mapping.fhir.charts import (
    _encounter_ref,
)
from carebridge.connectors.carecloud.mapping.portal.base import (
    lab_result_id,
    map_traced,
    patient_id,
    unexpected,
    vitals_id,
)
from carebridge.connectors.carecloud.wire import fhir as w
from carebridge.connectors.carecloud.wire.portal import forget
from carebridge.domain import (
    LabResult,
    VitalSigns,
)
from carebridge.errors import UnresolvedReference

# --- observations -------------------------------------------------------------------------------


def _category(observation: w.Observation) -> set[str]:
    return {c.code for concept in observation.category for c in concept.coding if c.code}


def is_vital_sign(observation: w.Observation) -> bool:
    """True for a vital-signs Observation."""
    return "vital-signs" in _category(observation)


def is_laboratory(observation: w.Observation) -> bool:
    """True for a laboratory Observation."""
    return "laboratory" in _category(observation)


LAB_STATUS = {
    "preliminary": "preliminary",
    "final": "final",
    "amended": "amended",
    "corrected": "corrected",
    "cancelled": "cancelled",
    "entered-in-error": "entered_in_error",
}
INTERPRETATIONS = {"N", "H", "L", "A", "HH", "LL", "AA"}


def lab_from_fhir(
    resource: w.Observation,
    ctx: Context,
    patients: PatientIndex,
    *,
    order_codes: Mapping[str, str],
) -> Mapped[LabResult]:
    """A laboratory Observation coded in LOINC.

    Args:
        order_codes: the CPT each lab was billed under, by upstream lab id (``lab-12`` -> ``12``;
            the portal's ``orderCode``). The Connector does not carry it and the domain needs it.

    Raises:
        UnresolvedReference: the lab's order code is not in ``order_codes``.
    """

    def build() -> LabResult:
        o = resource
        chart = patients.chart_number(ctx, o.subject, "subject")
        loinc = _coding(o.code, LOINC)
        if loinc is None:
            raise unexpected(ctx, "code", "a lab result is coded in LOINC")
        upstream = row_key(o.id, "lab")
        order = order_codes.get(upstream)
        if order is None:
            raise UnresolvedReference(
                "the lab's order code is not known", field_path="code", endpoint=ctx.endpoint
            )
        status = LAB_STATUS.get(o.status)
        if status is None:
            raise unexpected(ctx, "status", "a result status the domain does not know")
        quantity = o.value_quantity
        number = quantity.value if quantity is not None else None
        unit = (quantity.unit or quantity.code) if quantity is not None else None
        reference = next(iter(o.reference_range), None)
        interpretation = next((_code(i) for i in o.interpretation if _code(i)), None)
        if interpretation is not None and interpretation not in INTERPRETATIONS:
            forget(o, "interpretation")
            interpretation = None
        return LabResult(
            id=lab_result_id(ctx, upstream),
            patient_id=patient_id(ctx, chart),
            encounter_id=_encounter_ref(ctx, o.encounter),
            order_code=order,
            loinc_code=loinc.code,
            name=_label(o.code, loinc) or loinc.code,
            value_number=number,
            value_text=o.value_string,
            unit=unit if number is not None else None,
            reference_low=reference.low.value if reference and reference.low else None,
            reference_high=reference.high.value if reference and reference.high else None,
            interpretation=interpretation,
            status=status,
            collected_at=_required(ctx, _instant(o.effective_date_time), "effectiveDateTime"),
            resulted_at=o.issued,
            updated_at=_updated(o),
            sources=(ctx.source(o.id),),
        )

    return map_traced(resource, build, ctx)


# LOINC code -> (VitalSigns field, {UCUM unit: factor to the domain's unit} or a converter key)
VITAL_CODES: Mapping[str, str] = {
    "8867-4": "heart_rate_bpm",
    "9279-1": "respiratory_rate",
    "8310-5": "temperature_c",
    "8302-2": "height_cm",
    "29463-7": "weight_kg",
    "39156-5": "bmi",
    "59408-5": "spo2_percent",
    "2708-6": "spo2_percent",
    "8480-6": "systolic_mmhg",
    "8462-4": "diastolic_mmhg",
}
BP_PANEL = "85354-9"
UNIT_FACTORS: Mapping[str, Mapping[str, float]] = {
    "height_cm": {"cm": 1.0, "m": 100.0, "[in_i]": 2.54, "in": 2.54},
    "weight_kg": {"kg": 1.0, "g": 0.001, "[lb_av]": 0.45359237, "lb": 0.45359237},
}
WHOLE_NUMBERS = frozenset(
    {"heart_rate_bpm", "respiratory_rate", "spo2_percent", "systolic_mmhg", "diastolic_mmhg"}
)


def _vital_value(quantity: w.Quantity | None, target: str) -> float | int | None:
    if quantity is None or quantity.value is None:
        return None
    value = quantity.value
    unit = quantity.code or quantity.unit or ""
    if target == "temperature_c" and unit in ("[degF]", "degF", "°F"):
        value = (value - 32) * 5 / 9
    elif target in UNIT_FACTORS:
        value = value * UNIT_FACTORS[target].get(unit, 1.0)
    return round(value) if target in WHOLE_NUMBERS else value


def vitals_key(observation: w.Observation) -> str:
    """The vitals set an Observation belongs to: ``vit-<id>-<sign>`` -> ``<id>``, else its
    encounter and time."""
    match = _ROW_ID.fullmatch(observation.id)
    if match and match.group(1) == "vit":
        return match.group(2)
    encounter = observation.encounter.reference if observation.encounter else ""
    return f"{encounter}@{observation.effective_date_time or ''}"


def vitals_from_fhir(
    observations: Iterable[w.Observation], ctx: Context, patients: PatientIndex
) -> tuple[Mapped[VitalSigns], ...]:
    """One ``VitalSigns`` per vitals set, from its vital-signs Observations (one per sign).

    Observations that are not vital signs are ignored; the sets come out in the order their
    first Observation came in. Each record's ``sources`` lists every Observation that fed it.
    """
    groups: dict[str, list[w.Observation]] = {}
    for observation in observations:
        if is_vital_sign(observation):
            groups.setdefault(vitals_key(observation), []).append(observation)
    return tuple(_vitals_set(key, group, ctx, patients) for key, group in groups.items())


def _vitals_set(
    key: str, group: list[w.Observation], ctx: Context, patients: PatientIndex
) -> Mapped[VitalSigns]:
    def build() -> VitalSigns:
        first = group[0]
        chart = patients.chart_number(ctx, first.subject, "subject")
        values: dict[str, float | int | None] = {}
        for o in group:
            codes = [c.code for c in o.code.coding if c.system == LOINC and c.code]
            if BP_PANEL in codes:
                for component in o.component:
                    target = next(
                        (
                            VITAL_CODES[c.code]
                            for c in component.code.coding
                            if c.system == LOINC and c.code is not None and c.code in VITAL_CODES
                        ),
                        None,
                    )
                    if target is not None:
                        values[target] = _vital_value(component.value_quantity, target)
                continue
            target = next((VITAL_CODES[c] for c in codes if c in VITAL_CODES), None)
            if target is not None:
                values[target] = _vital_value(o.value_quantity, target)
        encounter = _required(ctx, _encounter_ref(ctx, first.encounter), "encounter")
        return VitalSigns(
            id=vitals_id(ctx, key),
            patient_id=patient_id(ctx, chart),
            encounter_id=encounter,
            taken_at=_required(ctx, _instant(first.effective_date_time), "effectiveDateTime"),
            sources=tuple(ctx.source(o.id) for o in group),
            **values,
        )

    return map_traced(group, build, ctx)
