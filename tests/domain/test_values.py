"""Value types: ids, money, instants, phones and code formats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError
from tests.support.factories import PROPERTY

from carebridge.domain import (
    CARC,
    ICD10CM,
    ID_TYPES,
    LOINC,
    NPI,
    RARC,
    SSN,
    ClaimId,
    ClaimStatusCategory,
    Email,
    Instant,
    Modifier,
    Money,
    NonNegativeMoney,
    PatientId,
    PhoneE164,
    PlaceOfService,
    PrefixedId,
    ProcedureCode,
    ServiceTypeCode,
    Taxonomy,
    USState,
    ZipCode,
    make_id,
    money_sum,
    parse_id,
    to_e164,
    to_money,
)
from carebridge.domain.npi import npi_from_base
from carebridge.domain.values import MONEY_LIMIT, SERVICE_TYPES, US_STATE_CODES

MONEY: TypeAdapter[Decimal] = TypeAdapter(Money)
NON_NEGATIVE: TypeAdapter[Decimal] = TypeAdapter(NonNegativeMoney)
INSTANT: TypeAdapter[datetime] = TypeAdapter(Instant)


def adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


cents = st.integers(min_value=-(10**13) + 1, max_value=10**13 - 1)


# --- prefixed ids --------------------------------------------------------------------------------


class Holder(BaseModel):
    patient: PatientId
    claim: ClaimId


@PROPERTY
@given(st.text(min_size=0, max_size=40))
def test_ids_from_the_same_key_are_equal_and_well_formed(key: str) -> None:
    first, second = PatientId.new(key), PatientId.new(key)
    assert first == second
    assert isinstance(first, PatientId)
    assert first.startswith("pat_")
    assert len(first) == len("pat_") + 26
    assert PatientId(str(first)) == first


@PROPERTY
@given(st.text(max_size=20), st.text(max_size=20))
def test_ids_from_different_keys_differ(a: str, b: str) -> None:
    if a != b:
        assert PatientId.new(a) != PatientId.new(b)


def test_the_same_key_gives_unrelated_bodies_for_different_kinds() -> None:
    assert PatientId.new("k")[4:] != ClaimId.new("k")[4:]


def test_random_ids_are_distinct() -> None:
    ids = {PatientId.new() for _ in range(200)}
    assert len(ids) == 200


@pytest.mark.parametrize(
    "value",
    ["pat_", "pat", "clm_abc", "PAT_abc", "pat_ABC", "pat_a_b", "pat_a-b", "pat_" + "a" * 65],
)
def test_malformed_ids_are_refused(value: str) -> None:
    with pytest.raises(ValueError):
        PatientId(value)
    with pytest.raises(ValidationError):
        Holder.model_validate({"patient": value, "claim": ClaimId.new("x")})


def test_ids_round_trip_through_json_keeping_their_type() -> None:
    held = Holder(patient=PatientId.new("p"), claim=ClaimId.new("c"))
    data = held.model_dump_json()
    assert f'"{held.patient}"' in data
    again = Holder.model_validate_json(data)
    assert again == held
    assert type(again.patient) is PatientId
    assert type(again.claim) is ClaimId


def test_an_id_of_another_kind_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        Holder.model_validate({"patient": ClaimId.new("c"), "claim": ClaimId.new("c")})
    assert caught.value.errors()[0]["loc"] == ("patient",)


def test_the_base_id_class_cannot_be_instantiated() -> None:
    with pytest.raises(TypeError):
        PrefixedId("pat_abc")


@pytest.mark.parametrize("prefix", sorted(ID_TYPES))
def test_make_id_and_parse_id_agree_for_every_kind(prefix: str) -> None:
    made = make_id(prefix, "key")
    assert type(made) is ID_TYPES[prefix]
    assert made == ID_TYPES[prefix].new("key")
    parsed = parse_id(str(made))
    assert parsed == made
    assert type(parsed) is ID_TYPES[prefix]


def test_every_kind_from_the_spec_has_an_id_type() -> None:
    wanted = "pat apt enc clm chg pay rem stm prv loc res vr cov pyr doc lab imm prb med alg elg"
    assert set(wanted.split()) <= set(ID_TYPES)


def test_unknown_prefixes_are_refused() -> None:
    with pytest.raises(ValueError):
        make_id("zzz", "k")
    with pytest.raises(ValueError):
        parse_id("zzz_abc")


# --- money ---------------------------------------------------------------------------------------


@PROPERTY
@given(cents)
def test_money_round_trips_through_json_as_a_two_decimal_string(amount_cents: int) -> None:
    amount = Decimal(amount_cents).scaleb(-2)
    value = MONEY.validate_python(amount)
    text = MONEY.dump_json(value)
    assert text == f'"{amount:.2f}"'.encode()
    assert MONEY.validate_json(text) == amount
    assert MONEY.validate_json(text).as_tuple().exponent == -2


@PROPERTY
@given(cents)
def test_money_accepts_ints_strings_and_decimals_alike(amount_cents: int) -> None:
    as_decimal = Decimal(amount_cents).scaleb(-2)
    assert MONEY.validate_python(str(as_decimal)) == as_decimal
    assert MONEY.validate_python(as_decimal) == as_decimal
    whole = int(as_decimal)  # truncates toward zero, so it stays in range
    assert MONEY.validate_python(whole) == Decimal(whole)
    assert str(MONEY.validate_python(whole)).endswith(".00")


@PROPERTY
@given(st.integers(min_value=-(10**6), max_value=10**6))
def test_floats_with_at_most_two_decimals_are_exact(amount_cents: int) -> None:
    as_float = amount_cents / 100
    assert MONEY.validate_python(as_float) == Decimal(amount_cents).scaleb(-2)


@pytest.mark.parametrize(
    "bad",
    [
        0.1 + 0.2,
        "12.345",
        Decimal("0.001"),
        "1e3",
        "abc",
        "",
        True,
        None,
        [],
        float("nan"),
        float("inf"),
        MONEY_LIMIT,
        "12,50",
    ],
)
def test_money_refuses_lossy_or_non_numeric_input(bad: object) -> None:
    with pytest.raises(ValidationError):
        MONEY.validate_python(bad)


def test_money_keeps_trailing_zeros_and_normalizes_negative_zero() -> None:
    assert str(to_money("25.0")) == "25.00"
    assert str(to_money("12.340")) == "12.34"
    assert str(to_money("-0.00")) == "0.00"
    assert str(to_money(Decimal("-0"))) == "0.00"


def test_money_in_json_may_also_arrive_as_a_number() -> None:
    assert MONEY.validate_json(b"12.5") == Decimal("12.50")
    with pytest.raises(ValidationError):
        MONEY.validate_json(b"12.345")


def test_non_negative_money_refuses_credits() -> None:
    assert NON_NEGATIVE.validate_python("0") == Decimal("0.00")
    with pytest.raises(ValidationError):
        NON_NEGATIVE.validate_python("-0.01")


@PROPERTY
@given(st.lists(st.integers(min_value=-(10**11), max_value=10**11), max_size=20))
def test_money_sum_is_exact(values: list[int]) -> None:
    amounts = [Decimal(v).scaleb(-2) for v in values]
    total = money_sum(amounts)
    assert total == Decimal(sum(values)).scaleb(-2)
    assert total.as_tuple().exponent == -2


# --- instants ------------------------------------------------------------------------------------


@PROPERTY
@given(
    st.datetimes(
        min_value=datetime(1990, 1, 1),  # noqa: DTZ001 - hypothesis attaches the zone
        max_value=datetime(2090, 1, 1),  # noqa: DTZ001
        timezones=st.integers(min_value=-14 * 60, max_value=14 * 60).map(
            lambda m: timezone(timedelta(minutes=m))
        ),
    )
)
def test_instants_are_converted_to_utc_without_changing_the_moment(moment: datetime) -> None:
    value = INSTANT.validate_python(moment)
    assert value.tzinfo is UTC
    assert value == moment
    assert INSTANT.validate_json(INSTANT.dump_json(value)) == value


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValidationError):
        INSTANT.validate_python(datetime(2025, 1, 1, 12))  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValidationError):
        INSTANT.validate_json(b'"2025-01-01T12:00:00"')


def test_offset_strings_become_utc() -> None:
    value = INSTANT.validate_json(b'"2025-07-10T13:00:00-05:00"')
    assert value == datetime(2025, 7, 10, 18, tzinfo=UTC)
    assert INSTANT.dump_json(value) == b'"2025-07-10T18:00:00Z"'


# --- phones --------------------------------------------------------------------------------------

nanp = st.tuples(
    st.integers(min_value=200, max_value=999),
    st.integers(min_value=200, max_value=999),
    st.integers(min_value=0, max_value=9999),
)


@PROPERTY
@given(
    nanp,
    st.sampled_from(
        [
            "{a}{e}{n}",
            "{a}-{e}-{n}",
            "({a}) {e}-{n}",
            "1{a}{e}{n}",
            "+1 {a} {e} {n}",
            "{a}.{e}.{n}",
            " 1-{a}-{e}-{n} ",
        ]
    ),
)
def test_us_numbers_in_any_common_format_normalize_to_one_e164(
    parts: tuple[int, int, int], template: str
) -> None:
    area, exchange, line = parts
    text = template.format(a=area, e=exchange, n=f"{line:04d}")
    expected = f"+1{area}{exchange}{line:04d}"
    assert to_e164(text) == expected
    assert to_e164(expected) == expected  # idempotent
    assert adapter(PhoneE164).validate_python(text) == expected


@PROPERTY
@given(st.integers(min_value=2, max_value=9), st.integers(min_value=10**6, max_value=10**12))
def test_international_numbers_need_a_plus(country: int, rest: int) -> None:
    digits = f"{country}{rest}"
    assert to_e164("+" + digits) == "+" + digits


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "555-0100",
        "303-555-010",
        "123-555-0100",
        "303-155-0100",
        "303-555-0100 x12",
        "3035550100123",
        "+0123456789",
        "phone",
        "+1 303 555 01000",
    ],
)
def test_undialable_phone_numbers_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        to_e164(bad)


# --- NPI -----------------------------------------------------------------------------------------


@PROPERTY
@given(st.integers(min_value=100_000_000, max_value=299_999_999))
def test_npis_with_a_correct_check_digit_are_accepted_and_others_refused(base: int) -> None:
    npi = npi_from_base(base)
    assert adapter(NPI).validate_python(npi) == npi
    wrong = npi[:-1] + str((int(npi[-1]) + 3) % 10)
    with pytest.raises(ValidationError):
        adapter(NPI).validate_python(wrong)


# --- code formats --------------------------------------------------------------------------------

CASES: list[tuple[Any, str, str]] = [
    (ICD10CM, "E11.9", "E11.9"),
    (ICD10CM, "e119", "E11.9"),
    (ICD10CM, "I10", "I10"),
    (ICD10CM, "S52.521A", "S52.521A"),
    (ICD10CM, "U07.1", "U07.1"),
    (ProcedureCode, "99213", "99213"),
    (ProcedureCode, "g0439", "G0439"),
    (ProcedureCode, "3074F", "3074F"),
    (ProcedureCode, "0042T", "0042T"),
    (Modifier, "25", "25"),
    (Modifier, "gt", "GT"),
    (CARC, "45", "45"),
    (CARC, "197", "197"),
    (CARC, "b7", "B7"),
    (RARC, "N130", "N130"),
    (RARC, "MA04", "MA04"),
    (RARC, "m51", "M51"),
    (ClaimStatusCategory, "A1", "A1"),
    (ClaimStatusCategory, "f2", "F2"),
    (PlaceOfService, "11", "11"),
    (PlaceOfService, "02", "02"),
    (USState, "co", "CO"),
    (USState, "DC", "DC"),
    (USState, "PR", "PR"),
    (USState, "GU", "GU"),
    (ZipCode, "80540", "80540"),
    (ZipCode, "805401234", "80540-1234"),
    (ZipCode, "80540-1234", "80540-1234"),
    (ServiceTypeCode, "30", "30"),
    (ServiceTypeCode, "98", "98"),
    (ServiceTypeCode, "al", "AL"),
    (ServiceTypeCode, "MH", "MH"),
    (ServiceTypeCode, "UC", "UC"),
    (Taxonomy, "207q00000x", "207Q00000X"),
    (LOINC, "4548-4", "4548-4"),
    (SSN, "900000001", "900-00-0001"),
    (Email, "someone@sandbox.example", "someone@sandbox.example"),
]


@pytest.mark.parametrize(("kind", "given_value", "expected"), CASES)
def test_valid_codes_are_accepted_in_canonical_form(
    kind: Any, given_value: str, expected: str
) -> None:
    assert adapter(kind).validate_python(given_value) == expected


BAD: list[tuple[Any, str]] = [
    (ICD10CM, "E1"),
    (ICD10CM, "11.9"),
    (ICD10CM, "E11.12345"),
    (ICD10CM, "E11."),
    (ProcedureCode, "9921"),
    (ProcedureCode, "992130"),
    (ProcedureCode, "W1234"),
    (ProcedureCode, "1234X"),
    (Modifier, "2"),
    (CARC, "0"),
    (CARC, "1000"),
    (CARC, "AB"),
    (RARC, "X1"),
    (RARC, "N"),
    (RARC, "45"),
    (ClaimStatusCategory, "Z1"),
    (PlaceOfService, "00"),
    (PlaceOfService, "1"),
    (PlaceOfService, "111"),
    (USState, "ZZ"),
    (USState, "Colorado"),
    (ZipCode, "8054"),
    (ZipCode, "80540-12"),
    (ServiceTypeCode, "29"),
    (ServiceTypeCode, "ZZ"),
    (Taxonomy, "207Q00000"),
    (LOINC, "4548"),
    (SSN, "90000001"),
    (Email, "no-at-sign"),
    (Email, "a@b"),
]


@pytest.mark.parametrize(("kind", "bad"), BAD)
def test_malformed_codes_are_refused(kind: Any, bad: str) -> None:
    with pytest.raises(ValidationError):
        adapter(kind).validate_python(bad)


def test_state_list_has_fifty_states_dc_and_territories() -> None:
    assert (
        len(
            US_STATE_CODES
            - {"DC", "AS", "GU", "MP", "PR", "VI", "UM", "FM", "MH", "PW", "AA", "AE", "AP"}
        )
        == 50
    )


def test_service_type_table_has_the_codes_eligibility_relies_on() -> None:
    assert SERVICE_TYPES["30"] == "Health Benefit Plan Coverage"
    assert SERVICE_TYPES["98"] == "Professional (Physician) Visit - Office"
    for code in ("1", "33", "35", "47", "48", "50", "86", "88", "AL", "MH", "UC"):
        assert code in SERVICE_TYPES


def test_validator_messages_describe_the_format_without_echoing_the_input() -> None:
    with pytest.raises(ValidationError) as caught:
        TypeAdapter(SSN).validate_python("123-45-678")
    message = caught.value.errors()[0]["msg"]
    assert "SSN" in message
    assert "123-45-678" not in message
