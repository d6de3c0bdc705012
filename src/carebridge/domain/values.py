"""Value types of the normalized model: validated strings, money and instants.

Each type is an ``Annotated`` alias (or, for ids, a small ``str`` subclass) that pydantic validates
on the way in and serializes as a plain JSON string on the way out, so
``Model.model_validate_json(m.model_dump_json()) == m`` holds for every model built on them.

::

    prefixed ids     PatientId, ClaimId, ...   "pat_" + 1..64 of [0-9a-z]; .new(key) / make_id()
    Money            Decimal, exactly 2 dp     JSON: "12.50"; int | str | Decimal | exact float
    Instant          aware datetime in UTC     naive refused; other offsets converted
    NPI              ten digits, Luhn           carebridge.domain.npi
    codes            ICD10CM, ProcedureCode (CPT/HCPCS), Modifier, CARC, RARC, ServiceTypeCode
                     (X12 1365), PlaceOfService, Taxonomy (NUCC), LOINC, RxNorm, CVX, SNOMED
    contact          USState, ZipCode, PhoneE164, Email, SSN, LanguageCode, RaceCode, TimeZoneName

Validators raise ``ValueError`` (which pydantic reports as a ``ValidationError`` naming the
field); messages describe the expected format and never echo the input, which may be PHI.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    GetCoreSchemaHandler,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
)
from pydantic_core import CoreSchema, core_schema

from carebridge.domain.npi import is_valid_npi

# --- prefixed ids --------------------------------------------------------------------------------

_ID_BODY = re.compile(r"[0-9a-z]{1,64}")
_ID_BODY_LENGTH = 26  # 130 bits of base32: collision-free for any tenant we will ever see


def _base32(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()[:_ID_BODY_LENGTH]


class PrefixedId(str):
    """A carebridge id: a type prefix, an underscore, then 1 to 64 lowercase letters or digits.

    Subclasses set ``prefix``; each subclass is its own type for mypy (a ``PatientId`` is not a
    ``ClaimId``) and its own validated string for pydantic. The body never contains ``_``, so the
    prefix can always be split off unambiguously.
    """

    __slots__ = ()
    prefix: ClassVar[str] = ""

    def __new__(cls, value: str) -> Self:
        if not cls.prefix:
            raise TypeError("PrefixedId is abstract; use a subclass such as PatientId")
        head, sep, body = str(value).partition("_")
        if head != cls.prefix or not sep or not _ID_BODY.fullmatch(body):
            raise ValueError(
                f"a {cls.__name__} is {cls.prefix!r} + '_' + 1 to 64 lowercase letters or digits"
            )
        return super().__new__(cls, value)

    @classmethod
    def new(cls, key: str | None = None) -> Self:
        """A new id: derived from ``key`` (stable: the same key gives the same id), else random.

        Args:
            key: a stable natural key, e.g. ``"tenant-1:v2:patient:<guid>"``. It is hashed, so the
                id reveals nothing of it.
        """
        if key is None:
            body = _base32(secrets.token_bytes(17))
        else:
            body = _base32(hashlib.sha256(f"{cls.prefix}:{key}".encode()).digest())
        return cls(f"{cls.prefix}_{body}")

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        pattern = rf"^{cls.prefix}_[0-9a-z]{{1,64}}$"
        return core_schema.no_info_after_validator_function(
            cls,
            core_schema.str_schema(pattern=pattern),
            serialization=core_schema.plain_serializer_function_ser_schema(
                str, return_schema=core_schema.str_schema(pattern=pattern)
            ),
        )


class PatientId(PrefixedId):
    __slots__ = ()
    prefix = "pat"


class CoverageId(PrefixedId):
    __slots__ = ()
    prefix = "cov"


class PayerId(PrefixedId):
    __slots__ = ()
    prefix = "pyr"


class ProviderId(PrefixedId):
    __slots__ = ()
    prefix = "prv"


class LocationId(PrefixedId):
    __slots__ = ()
    prefix = "loc"


class ResourceId(PrefixedId):
    __slots__ = ()
    prefix = "res"


class VisitReasonId(PrefixedId):
    __slots__ = ()
    prefix = "vr"


class AppointmentId(PrefixedId):
    __slots__ = ()
    prefix = "apt"


class EncounterId(PrefixedId):
    __slots__ = ()
    prefix = "enc"


class VitalsId(PrefixedId):
    __slots__ = ()
    prefix = "vit"


class ProblemId(PrefixedId):
    __slots__ = ()
    prefix = "prb"


class MedicationId(PrefixedId):
    __slots__ = ()
    prefix = "med"


class AllergyId(PrefixedId):
    __slots__ = ()
    prefix = "alg"


class LabResultId(PrefixedId):
    __slots__ = ()
    prefix = "lab"


class ImmunizationId(PrefixedId):
    __slots__ = ()
    prefix = "imm"


class DocumentId(PrefixedId):
    __slots__ = ()
    prefix = "doc"


class ChargeId(PrefixedId):
    __slots__ = ()
    prefix = "chg"


class LedgerEntryId(PrefixedId):
    __slots__ = ()
    prefix = "txn"


class ClaimId(PrefixedId):
    __slots__ = ()
    prefix = "clm"


class PaymentId(PrefixedId):
    __slots__ = ()
    prefix = "pay"


class RemittanceId(PrefixedId):
    __slots__ = ()
    prefix = "rem"


class StatementId(PrefixedId):
    __slots__ = ()
    prefix = "stm"


class EligibilityCheckId(PrefixedId):
    __slots__ = ()
    prefix = "elg"


ID_TYPES: Mapping[str, type[PrefixedId]] = MappingProxyType(
    {
        t.prefix: t
        for t in (
            PatientId,
            CoverageId,
            PayerId,
            ProviderId,
            LocationId,
            ResourceId,
            VisitReasonId,
            AppointmentId,
            EncounterId,
            VitalsId,
            ProblemId,
            MedicationId,
            AllergyId,
            LabResultId,
            ImmunizationId,
            DocumentId,
            ChargeId,
            LedgerEntryId,
            ClaimId,
            PaymentId,
            RemittanceId,
            StatementId,
            EligibilityCheckId,
        )
    }
)
"""Every id type, by prefix."""


def make_id(prefix: str, key: str | None = None) -> PrefixedId:
    """An id of the kind named by ``prefix`` (``"pat"``, ``"clm"``, ...); see ``PrefixedId.new``.

    Raises:
        ValueError: the prefix is not a known kind.
    """
    try:
        kind = ID_TYPES[prefix]
    except KeyError:
        raise ValueError(f"unknown id prefix {prefix!r}") from None
    return kind.new(key)


def parse_id(value: str) -> PrefixedId:
    """The typed id for ``value``, chosen by its prefix.

    Raises:
        ValueError: unknown prefix or malformed body.
    """
    head, _, _ = value.partition("_")
    kind = ID_TYPES.get(head)
    if kind is None:
        raise ValueError("unknown id prefix")
    return kind(value)


# --- money ---------------------------------------------------------------------------------------

CENT = Decimal("0.01")
MONEY_LIMIT = Decimal(10) ** 11
"""Amounts must stay below this in magnitude (a billion dollars with room to spare)."""

_ZERO = Decimal("0.00")
_MONEY_TEXT = re.compile(r"[+-]?[0-9]{1,15}(\.[0-9]{1,12})?")


MONEY_KEPT = 4096
"""Distinct amounts :func:`to_money` remembers (a page of records repeats a few amounts, and
every domain model that holds money checks again what a mapper just made)."""

_money_seen: dict[object, Decimal] = {}


def to_money(value: object) -> Decimal:
    r"""``value`` as a ``Decimal`` with exactly two decimal places.

    Accepts ``int``, ``Decimal``, decimal strings (``"25"``, ``"25.0"``, ``"-3.10"``) and floats whose
    shortest representation has at most two decimals (``12.5`` yes, ``0.1 + 0.2`` no). Refuses
    booleans, non-finite values, amounts with a non-zero third decimal (never rounds silently) and
    amounts of ``MONEY_LIMIT`` or more.

    Answers for strings and ``Decimal``\ s are remembered: a string's depends only on the string,
    a ``Decimal``'s only on its value (``Decimal("1.0")`` and ``Decimal("1.00")`` are both
    ``Decimal("1.00")``), and a ``str`` never equals a ``Decimal``. Refusals are not remembered.
    """
    kind = type(value)
    if kind is str or kind is Decimal:
        try:
            known = _money_seen.get(value)
        except TypeError:  # a signalling NaN cannot be hashed: refused below
            known = None
        if known is not None:
            return known
        money = _to_money(value)
        if len(_money_seen) < MONEY_KEPT:
            _money_seen[value] = money
        return money
    return _to_money(value)


def _to_money(value: object) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("money must be a number or a decimal string, not a boolean")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("money must be finite")
        amount = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip()
        if not _MONEY_TEXT.fullmatch(text):
            raise ValueError("money must be a decimal string such as '12.50'")
        try:
            amount = Decimal(text)
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
            raise ValueError("money must be a decimal string such as '12.50'") from None
    else:
        raise ValueError("money must be an int, a decimal string or a Decimal")
    if not amount.is_finite():
        raise ValueError("money must be finite")
    if abs(amount) >= MONEY_LIMIT:
        raise ValueError("money is out of range")
    quantized = amount.quantize(CENT)
    if quantized != amount:
        raise ValueError("money has at most two decimal places")
    return _ZERO if quantized.is_zero() else quantized


def _non_negative(amount: Decimal) -> Decimal:
    if amount < 0:
        raise ValueError("must not be negative")
    return amount


_MONEY_JSON = WithJsonSchema(
    {"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{2}$", "examples": ["125.00"]}
)

Money = Annotated[
    Decimal,
    PlainValidator(to_money, json_schema_input_type=str),
    PlainSerializer(str, return_type=str, when_used="json"),
    _MONEY_JSON,
]
"""A signed amount in dollars, 2 dp; a string in JSON."""

NonNegativeMoney = Annotated[Money, AfterValidator(_non_negative)]
"""An amount that is zero or more."""


def money_sum(amounts: Any) -> Decimal:
    """The sum of amounts, as money (``Decimal('0.00')`` for none)."""
    total = _ZERO
    for amount in amounts:
        total += amount
    return to_money(total)


# --- time ----------------------------------------------------------------------------------------


def to_utc(value: datetime) -> datetime:
    """``value`` converted to UTC; naive datetimes, and those whose UTC instant falls outside
    years 1 to 9999 (``0001-01-01T00:00:00+14:00``), are refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("an instant needs a UTC offset; naive datetimes are refused")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("an instant must fall within years 1 to 9999 in UTC") from None


Instant = Annotated[datetime, AfterValidator(to_utc)]
"""An aware instant, normalized to UTC (JSON: ``2025-07-10T18:00:00Z``)."""

EARLIEST_DAY = date(1900, 1, 1)
LATEST_DAY = date(2199, 12, 31)
"""The calendar a request may name (dates, instants, windows): far wider than any practice's
records or schedule, and far enough from year 9999 that window arithmetic never overflows."""

_DAY_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_RANGE = f"{EARLIEST_DAY.isoformat()} to {LATEST_DAY.isoformat()}"


def _in_calendar(day: date) -> None:
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise ValueError(f"must fall within {_RANGE}")


def parse_day(value: object) -> date:
    """A request's calendar date: ``YYYY-MM-DD`` text (or a ``date``) within the calendar.
    Numbers are refused (no epochs)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        day = value
    elif isinstance(value, str) and _DAY_TEXT.fullmatch(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ValueError("not a calendar date (YYYY-MM-DD)") from None
    else:
        raise ValueError("a calendar date is YYYY-MM-DD")
    _in_calendar(day)
    return day


def parse_instant(value: object) -> datetime:
    """A request's instant: RFC 3339 text with its offset (or an aware ``datetime``), within
    the calendar, normalized to UTC. Numbers (Unix epochs) and naive times are refused."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and _RFC3339.fullmatch(value):
        try:
            moment = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("not a valid RFC 3339 timestamp") from None
    else:
        raise ValueError("an RFC 3339 timestamp with its offset, e.g. 2026-12-01T15:00:00Z")
    utc = to_utc(moment)
    _in_calendar(utc.date())
    return utc


def parse_bound(value: object) -> datetime:
    """A window's bound: an instant as :func:`parse_instant`, or a ``YYYY-MM-DD`` day, taken
    as its midnight in UTC."""
    if isinstance(value, str) and _DAY_TEXT.fullmatch(value):
        return datetime.combine(parse_day(value), time(), UTC)
    return parse_instant(value)


RequestDay = Annotated[
    date,
    BeforeValidator(parse_day, json_schema_input_type=str),
    WithJsonSchema({"type": "string", "format": "date", "description": f"YYYY-MM-DD, {_RANGE}"}),
]
"""A date a request names: ``YYYY-MM-DD`` within :data:`EARLIEST_DAY`..:data:`LATEST_DAY`."""

RequestInstant = Annotated[
    datetime,
    BeforeValidator(parse_instant, json_schema_input_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": f"RFC 3339 with its offset (Z or +hh:mm), {_RANGE} in UTC",
        }
    ),
]
"""An instant a request names: RFC 3339 with an offset, within the calendar, in UTC."""

RequestBound = Annotated[
    datetime,
    BeforeValidator(parse_bound, json_schema_input_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date"},
                {"type": "string", "format": "date-time"},
            ],
            "description": f"YYYY-MM-DD (midnight UTC) or an RFC 3339 instant, {_RANGE} in UTC",
        }
    ),
]
"""A window bound a request names: a day (its midnight in UTC) or an instant."""


# --- code formats --------------------------------------------------------------------------------


def _code(
    pattern: str, what: str, *, normalize: Callable[[str], str] = str.strip
) -> AfterValidator:
    regex = re.compile(pattern)

    def check(value: str) -> str:
        text = normalize(value)
        if not regex.fullmatch(text):
            raise ValueError(f"not a valid {what}")
        return text

    return AfterValidator(check)


def _upper(value: str) -> str:
    return value.strip().upper()


def _lower(value: str) -> str:
    return value.strip().lower()


def _check_npi(value: str) -> str:
    text = value.strip()
    if not is_valid_npi(text):
        raise ValueError("not a valid NPI (ten digits starting 1 or 2, Luhn check digit)")
    return text


NPI = Annotated[str, AfterValidator(_check_npi)]
"""A National Provider Identifier with a correct check digit."""


def normalize_icd10(value: str) -> str:
    """``e119`` / ``E11.9`` → ``E11.9``: upper case, a dot after the category.

    A value that already has a dot is only upper-cased, so a misplaced dot still fails the format.
    """
    text = value.strip().upper()
    if "." in text or len(text) <= 3:
        return text
    return f"{text[:3]}.{text[3:]}"


ICD10CM = Annotated[
    str,
    _code(r"[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?", "ICD-10-CM code", normalize=normalize_icd10),
]
"""An ICD-10-CM code in its dotted form (format only: whether it is billable is the codec's job)."""

ProcedureCode = Annotated[
    str, _code(r"[0-9]{4}[0-9FTU]|[A-V][0-9]{4}", "CPT or HCPCS code", normalize=_upper)
]
"""CPT category I (five digits), II (``F``), III (``T``), PLA (``U``) or HCPCS level II."""

Modifier = Annotated[str, _code(r"[0-9A-Z]{2}", "procedure modifier", normalize=_upper)]
"""A CPT/HCPCS modifier: two letters or digits (``25``, ``GT``)."""

CARC = Annotated[str, _code(r"[1-9][0-9]{0,2}|[A-Z][0-9]{1,2}", "CARC", normalize=_upper)]
"""A Claim Adjustment Reason Code: ``1``..``999`` or a letter and digits (``A1``, ``B7``, ``P2``)."""

RARC = Annotated[
    str, _code(r"M[1-9][0-9]{0,2}|MA[0-9]{2,3}|N[1-9][0-9]{0,2}", "RARC", normalize=_upper)
]
"""A Remittance Advice Remark Code: ``M1``.., ``MA01``.., ``N1``.."""

ClaimStatusCategory = Annotated[
    str, _code(r"[ADEFPR][0-9]{1,2}", "277 claim status category", normalize=_upper)
]
"""An X12 277 claim status category code (``A1``, ``A2``, ``P1``, ``F1``, ``F2``, ...)."""

PlaceOfService = Annotated[str, _code(r"0[1-9]|[1-9][0-9]", "place of service code")]
"""A CMS place of service code, two digits ``01``..``99``."""

Taxonomy = Annotated[str, _code(r"[0-9]{3}[0-9A-Z]{6}X", "NUCC taxonomy code", normalize=_upper)]
"""A NUCC health care provider taxonomy code (``207Q00000X``)."""

LOINC = Annotated[str, _code(r"[1-9][0-9]{0,6}-[0-9]", "LOINC code")]
RxNormCode = Annotated[str, _code(r"[1-9][0-9]{0,8}", "RxNorm code")]
CVXCode = Annotated[str, _code(r"[0-9]{1,3}", "CVX code")]
SnomedCode = Annotated[str, _code(r"[1-9][0-9]{5,17}", "SNOMED CT code")]
LanguageCode = Annotated[str, _code(r"[a-z]{3}", "ISO 639-2 language code", normalize=_lower)]
RaceCode = Annotated[str, _code(r"[0-9]{4}-[0-9]", "CDC race code")]
CountryCode = Annotated[str, _code(r"[A-Z]{3}", "ISO 3166 alpha-3 country", normalize=_upper)]
MimeType = Annotated[
    str,
    _code(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*", "MIME type", normalize=_lower),
]
TimeZoneName = Annotated[
    str, _code(r"UTC|[A-Z][A-Za-z_]+(/[A-Za-z0-9_+-]+){1,2}", "IANA time zone name")
]
"""An IANA zone name (format only; the zone database is not consulted here)."""

Email = Annotated[str, _code(r"[^@\s]+@[^@\s]+\.[^@\s.]+", "e-mail address")]


def _normalize_ssn(value: str) -> str:
    digits = value.strip().replace("-", "")
    return f"{digits[:3]}-{digits[3:5]}-{digits[5:]}" if len(digits) == 9 else value


SSN = Annotated[str, _code(r"[0-9]{3}-[0-9]{2}-[0-9]{4}", "SSN", normalize=_normalize_ssn)]
"""A Social Security number as ``123-45-6789`` (format only)."""


def _normalize_zip(value: str) -> str:
    text = value.strip()
    return f"{text[:5]}-{text[5:]}" if len(text) == 9 and text.isdigit() else text


ZipCode = Annotated[str, _code(r"[0-9]{5}(-[0-9]{4})?", "ZIP code", normalize=_normalize_zip)]
"""A US ZIP code: ``12345`` or ``12345-6789`` (nine bare digits get their dash)."""

# --- US states -----------------------------------------------------------------------------------

US_STATES: frozenset[str] = frozenset(
    [
        "AL",
        "AK",
        "AZ",
        "AR",
        "CA",
        "CO",
        "CT",
        "DE",
        "FL",
        "GA",
        "HI",
        "ID",
        "IL",
        "IN",
        "IA",
        "KS",
        "KY",
        "LA",
        "ME",
        "MD",
        "MA",
        "MI",
        "MN",
        "MS",
        "MO",
        "MT",
        "NE",
        "NV",
        "NH",
        "NJ",
        "NM",
        "NY",
        "NC",
        "ND",
        "OH",
        "OK",
        "OR",
        "PA",
        "RI",
        "SC",
        "SD",
        "TN",
        "TX",
        "UT",
        "VT",
        "VA",
        "WA",
        "WV",
        "WI",
        "WY",
    ]
)
US_DISTRICT_AND_TERRITORIES: frozenset[str] = frozenset(
    # DC; the inhabited territories; the freely associated states and the military "states",
    # all of which take USPS addresses.
    ["DC", "AS", "GU", "MP", "PR", "VI", "UM", "FM", "MH", "PW", "AA", "AE", "AP"]
)
US_STATE_CODES: frozenset[str] = US_STATES | US_DISTRICT_AND_TERRITORIES


def _check_state(value: str) -> str:
    text = value.strip().upper()
    if text not in US_STATE_CODES:
        raise ValueError("not a US state, district or territory code")
    return text


USState = Annotated[
    str,
    AfterValidator(_check_state),
    WithJsonSchema({"type": "string", "enum": sorted(US_STATE_CODES)}),
]
"""A USPS two-letter code of a state, DC or a territory (upper-cased)."""

# --- phones --------------------------------------------------------------------------------------

_PHONE_SEPARATORS = re.compile(r"[\s().-]")
_NANP = re.compile(r"1[2-9][0-9]{2}[2-9][0-9]{6}")
_E164 = re.compile(r"[1-9][0-9]{6,14}")


def to_e164(value: str) -> str:
    """A phone number in E.164 (``+13035550123``).

    US/NANP numbers may come as 10 digits or 11 starting with ``1``, with spaces, dots, dashes or
    parentheses; other countries need a leading ``+``. Extensions are not part of the number.

    Raises:
        ValueError: not a dialable number.
    """
    text = value.strip()
    plus = text.startswith("+")
    digits = _PHONE_SEPARATORS.sub("", text[1:] if plus else text)
    if not digits.isdigit():
        raise ValueError("a phone number has digits and separators only")
    if not plus and len(digits) == 10:
        digits = "1" + digits
    elif not plus and not (len(digits) == 11 and digits.startswith("1")):
        raise ValueError("a US phone number has ten digits; others need a leading '+'")
    if digits.startswith("1"):
        if not _NANP.fullmatch(digits):
            raise ValueError("not a valid North American number")
    elif not _E164.fullmatch(digits):
        raise ValueError("not a valid E.164 number")
    return "+" + digits


PhoneE164 = Annotated[
    str,
    AfterValidator(to_e164),
    WithJsonSchema({"type": "string", "pattern": r"^\+[1-9][0-9]{6,14}$"}),
]
"""A phone number normalized to E.164."""

# --- X12 service types and places of service -----------------------------------------------------

SERVICE_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "1": "Medical Care",
        "2": "Surgical",
        "3": "Consultation",
        "4": "Diagnostic X-Ray",
        "5": "Diagnostic Lab",
        "6": "Radiation Therapy",
        "7": "Anesthesia",
        "8": "Surgical Assistance",
        "9": "Other Medical",
        "10": "Blood Charges",
        "11": "Used Durable Medical Equipment",
        "12": "Durable Medical Equipment Purchase",
        "13": "Ambulatory Service Center Facility",
        "14": "Renal Supplies in the Home",
        "15": "Alternate Method Dialysis",
        "16": "Chronic Renal Disease (CRD) Equipment",
        "17": "Pre-Admission Testing",
        "18": "Durable Medical Equipment Rental",
        "19": "Pneumonia Vaccine",
        "20": "Second Surgical Opinion",
        "21": "Third Surgical Opinion",
        "22": "Social Work",
        "23": "Diagnostic Dental",
        "24": "Periodontics",
        "25": "Restorative",
        "26": "Endodontics",
        "27": "Maxillofacial Prosthetics",
        "28": "Adjunctive Dental Services",
        "30": "Health Benefit Plan Coverage",
        "32": "Plan Waiting Period",
        "33": "Chiropractic",
        "34": "Chiropractic Office Visits",
        "35": "Dental Care",
        "36": "Dental Crowns",
        "37": "Dental Accident",
        "38": "Orthodontics",
        "39": "Prosthodontics",
        "40": "Oral Surgery",
        "41": "Routine (Preventive) Dental",
        "42": "Home Health Care",
        "43": "Home Health Prescriptions",
        "44": "Home Health Visits",
        "45": "Hospice",
        "46": "Respite Care",
        "47": "Hospital",
        "48": "Hospital - Inpatient",
        "49": "Hospital - Room and Board",
        "50": "Hospital - Outpatient",
        "51": "Hospital - Emergency Accident",
        "52": "Hospital - Emergency Medical",
        "53": "Hospital - Ambulatory Surgical",
        "54": "Long Term Care",
        "55": "Major Medical",
        "56": "Medically Related Transportation",
        "57": "Air Transportation",
        "58": "Cabulance",
        "59": "Licensed Ambulance",
        "60": "General Benefits",
        "61": "In-vitro Fertilization",
        "62": "MRI/CAT Scan",
        "63": "Donor Procedures",
        "64": "Acupuncture",
        "65": "Newborn Care",
        "66": "Pathology",
        "67": "Smoking Cessation",
        "68": "Well Baby Care",
        "69": "Maternity",
        "70": "Transplants",
        "71": "Audiology Exam",
        "72": "Inhalation Therapy",
        "73": "Diagnostic Medical",
        "74": "Private Duty Nursing",
        "75": "Prosthetic Device",
        "76": "Dialysis",
        "77": "Otological Exam",
        "78": "Chemotherapy",
        "79": "Allergy Testing",
        "80": "Immunizations",
        "81": "Routine Physical",
        "82": "Family Planning",
        "83": "Infertility",
        "84": "Abortion",
        "85": "AIDS",
        "86": "Emergency Services",
        "87": "Cancer",
        "88": "Pharmacy",
        "89": "Free Standing Prescription Drug",
        "90": "Mail Order Prescription Drug",
        "91": "Brand Name Prescription Drug",
        "92": "Generic Prescription Drug",
        "93": "Podiatry",
        "94": "Podiatry - Office Visits",
        "95": "Podiatry - Nursing Home Visits",
        "96": "Professional (Physician)",
        "97": "Anesthesiologist",
        "98": "Professional (Physician) Visit - Office",
        "99": "Professional (Physician) Visit - Inpatient",
        "A0": "Professional (Physician) Visit - Outpatient",
        "A1": "Professional (Physician) Visit - Nursing Home",
        "A2": "Professional (Physician) Visit - Skilled Nursing Facility",
        "A3": "Professional (Physician) Visit - Home",
        "A4": "Psychiatric",
        "A5": "Psychiatric - Room and Board",
        "A6": "Psychotherapy",
        "A7": "Psychiatric - Inpatient",
        "A8": "Psychiatric - Outpatient",
        "A9": "Rehabilitation",
        "AA": "Rehabilitation - Room and Board",
        "AB": "Rehabilitation - Inpatient",
        "AC": "Rehabilitation - Outpatient",
        "AD": "Occupational Therapy",
        "AE": "Physical Medicine",
        "AF": "Speech Therapy",
        "AG": "Skilled Nursing Care",
        "AH": "Skilled Nursing Care - Room and Board",
        "AI": "Substance Abuse",
        "AJ": "Alcoholism",
        "AK": "Drug Addiction",
        "AL": "Vision (Optometry)",
        "AM": "Frames",
        "AN": "Routine Exam",
        "AO": "Lenses",
        "AQ": "Nonmedically Necessary Physical",
        "AR": "Experimental Drug Therapy",
        "BG": "Cardiac Rehabilitation",
        "BH": "Pediatric",
        "MH": "Mental Health",
        "UC": "Urgent Care",
    }
)
"""Common X12 5010 service type codes (element 1365) and their names."""


def _check_service_type(value: str) -> str:
    text = value.strip().upper()
    if text not in SERVICE_TYPES:
        raise ValueError("not a known X12 service type code (element 1365)")
    return text


ServiceTypeCode = Annotated[
    str,
    AfterValidator(_check_service_type),
    WithJsonSchema({"type": "string", "enum": list(SERVICE_TYPES)}),
]
"""An X12 eligibility service type code from ``SERVICE_TYPES``."""

PLACES_OF_SERVICE: Mapping[str, str] = MappingProxyType(
    {
        "02": "Telehealth Provided Other than in Patient's Home",
        "03": "School",
        "10": "Telehealth Provided in Patient's Home",
        "11": "Office",
        "12": "Home",
        "13": "Assisted Living Facility",
        "19": "Off Campus-Outpatient Hospital",
        "20": "Urgent Care Facility",
        "21": "Inpatient Hospital",
        "22": "On Campus-Outpatient Hospital",
        "23": "Emergency Room - Hospital",
        "24": "Ambulatory Surgical Center",
        "31": "Skilled Nursing Facility",
        "32": "Nursing Facility",
        "49": "Independent Clinic",
        "50": "Federally Qualified Health Center",
        "71": "Public Health Clinic",
        "72": "Rural Health Clinic",
        "81": "Independent Laboratory",
        "99": "Other Place of Service",
    }
)
"""Names of the common CMS place of service codes (``PlaceOfService`` accepts any ``01``..``99``)."""
