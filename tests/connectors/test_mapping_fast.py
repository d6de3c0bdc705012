"""The v2 mappers' fast paths answer what their plain forms answer, on real patient payloads
changed in many places (drifted, emptied, retyped, extra keys, the other alias):

- the consumed-field recorder (a view class per wire model, a recording property per field)
  against the plain recorder it replaced (``__getattr__``, kept here as the reference);
- present paths read from per-(path, spelling) plans against the public-API reading;
- ids derived once per key against ``PrefixedId.new``;
- ``to_money``'s remembered answers against the computation itself.

Each mapping is run both ways and compared whole: the domain record (equal, and the same JSON),
the dropped report, or the error (type and field path).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError
from tests.connectors.harness import Sandbox
from tests.connectors.test_mapping_present import reference

from carebridge.connectors.carecloud import drift
from carebridge.connectors.carecloud.mapping.common import Context
from carebridge.connectors.carecloud.mapping.v2 import (
    _base,
    billing,
    contacts,
    map_patient,
    patients,
)
from carebridge.connectors.carecloud.wire import v2 as vw
from carebridge.connectors.carecloud.wire.v2 import V2Model
from carebridge.domain import AgingBuckets, values
from carebridge.domain.values import CoverageId, PayerId, ProviderId, to_money
from carebridge.errors import UnexpectedPayload

FUZZ = settings(
    max_examples=120,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
CTX = Context(
    tenant="t1",
    surface="v2",
    endpoint="GET /v2/patients/{id}",
    fetched_at=datetime(2026, 12, 1, 10, tzinfo=UTC),
)


# --- the plain forms --------------------------------------------------------------------------


class PlainTracked:
    """The recorder as it was: every read found missing first, then ``__getattr__``."""

    __slots__ = ("_cb_model", "_cb_path", "_cb_run")

    def __init__(self, model: V2Model, path: str, run: _base._Run) -> None:
        object.__setattr__(self, "_cb_model", model)
        object.__setattr__(self, "_cb_path", path)
        object.__setattr__(self, "_cb_run", run)

    def __getattr__(self, name: str) -> Any:
        model = self._cb_model
        value = getattr(model, name)
        key = model.upstream_key(name)
        path = f"{self._cb_path}.{key}" if self._cb_path else key
        if type(value) in _base._LEAVES:
            self._cb_run.used.add(path)
            return value
        return plain_wrap(value, path, self._cb_run)


def plain_wrap(value: Any, path: str, run: _base._Run) -> Any:
    if isinstance(value, V2Model):
        return PlainTracked(value, path, run)
    if isinstance(value, list | tuple) and any(isinstance(v, V2Model) for v in value):
        return [plain_wrap(v, f"{path}[]", run) for v in value]
    run.used.add(path)
    return value


def plain_field_path(obj: Any, name: str) -> str:
    if isinstance(obj, PlainTracked):
        model = object.__getattribute__(obj, "_cb_model")
        path = object.__getattribute__(obj, "_cb_path")
        key = model.upstream_key(name)
        return f"{path}.{key}" if path else key
    return name


def plain_path_of(obj: Any) -> str:
    return str(object.__getattribute__(obj, "_cb_path")) if isinstance(obj, PlainTracked) else ""


def plain_present(model: V2Model, path: str = "") -> set[str]:
    return reference(model, path)


def plainly(patch: pytest.MonkeyPatch) -> None:
    """Swap the fast paths of the v2 mappers for the plain forms (where each module reads them)."""
    patch.setattr(_base, "_Tracked", PlainTracked)
    patch.setattr(_base, "_field_path", plain_field_path)
    for module in (_base, patients):
        patch.setattr(module, "_wrap", plain_wrap)
        patch.setattr(module, "present_paths", plain_present)
        patch.setattr(module, "_derived_id", lambda kind, key: kind.new(key))
    for module in (_base, patients, billing, contacts):
        patch.setattr(module, "_path_of", plain_path_of)


# --- payloads -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def payloads() -> Iterator[list[tuple[Any, Any]]]:
    box = Sandbox(seed=31)
    ids = [row["id"] for row in box.truth("SELECT id FROM patients ORDER BY internal_id LIMIT 8")]
    yield [(box.get(f"/v2/patients/{i}"), box.get(f"/v2/patients/{i}/balance")) for i in ids]
    box.tenant.db.close()


values_drawn = (
    st.none()
    | st.sampled_from(["", "  ", "x", "2020-01-01", "01/02/2003", "12.50", "NY", "ny", "M", "self"])
    | st.sampled_from(["spouse", "ppo", "Active", "a@b.co", "5551234567", "1234567893", "9"])
    | st.sampled_from([[], {}, [{"a": 1}], {"id": 3}, 0, 7, -1, 2.5, True, False])
)
ALIASES = {
    "state_code": "state",
    "state": "state_code",
    "phone_type_code": "phone_type",
    "phone_type": "phone_type_code",
    "extension": "phone_ext",
    "phone_ext": "extension",
    "dob": "date_of_birth",
    "date_of_birth": "dob",
    "payer_pending?": "pending",
    "pending": "payer_pending?",
}


def _paths(value: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*here, key)
            yield from _paths(inner, (*here, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield (*here, index)
            yield from _paths(inner, (*here, index))


def _changed(value: Any, path: tuple[Any, ...], change: Any) -> Any:
    """``value`` with the item at ``path`` changed by ``change(parent, key)`` (on a copy)."""
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    if len(path) == 1:
        change(copy, path[0])
    else:
        copy[path[0]] = _changed(value[path[0]], path[1:], change)
    return copy


def _drifted(doc: Any, data: Any) -> Any:
    for _ in range(data.draw(st.integers(0, 4))):
        paths = list(_paths(doc))
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        how = data.draw(st.sampled_from(["set", "set", "drop", "extra", "alias"]))
        new = data.draw(values_drawn)

        def change(parent: Any, key: Any, how: str = how, new: Any = new) -> None:
            if how == "drop" and isinstance(parent, dict):
                del parent[key]
            elif how == "extra" and isinstance(parent, dict):
                parent["added_field"] = new
            elif how == "alias" and isinstance(parent, dict) and key in ALIASES:
                parent[ALIASES[key]] = parent.pop(key)
            else:
                parent[key] = new

        doc = _changed(doc, path, change)
    return doc


def _outcome(show: Any, balance: Any) -> tuple[Any, ...]:
    try:
        wire = drift.check(show, vw.PatientShowResponse, CTX.endpoint)
        rows = drift.check_list(balance, vw.BalancePayload, "GET /v2/patients/{id}/balance")
        mapped = map_patient(wire.patient, CTX, balances=rows)
    except UnexpectedPayload as err:
        return ("refused", err.field_path, err.endpoint)
    except ValidationError as err:  # a record the mapper fails to build (reported as it is)
        return ("invalid", str(err))
    patient = mapped.value
    return ("mapped", patient, patient.model_dump_json(), _fields_set(patient), mapped.dropped)


def _fields_set(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return (
            type(value).__name__,
            sorted(value.model_fields_set),
            [_fields_set(getattr(value, name)) for name in type(value).model_fields],
        )
    if isinstance(value, tuple | list):
        return [_fields_set(v) for v in value]
    return None


@FUZZ
@given(data=st.data())
def test_a_patient_maps_as_the_plain_recorder_and_reading_map_it(
    payloads: list[tuple[Any, Any]], data: Any
) -> None:
    show, balance = data.draw(st.sampled_from(payloads))
    if data.draw(st.integers(0, 3)):
        show = _drifted(show, data)
    else:
        balance = _drifted(balance, data)
    fast = _outcome(show, balance)
    with pytest.MonkeyPatch.context() as patch:
        plainly(patch)
        plain = _outcome(show, balance)
    assert fast == plain


def test_the_plain_forms_are_what_the_comparison_runs(payloads: list[tuple[Any, Any]]) -> None:
    """The comparison above is not vacuous: swapped in, the plain recorder is the one read."""
    show, balance = payloads[0]
    seen: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        plainly(patch)
        patch.setattr(PlainTracked, "__getattr__", _spy(PlainTracked.__getattr__, seen))
        assert _outcome(show, balance)[0] == "mapped"
    assert "first_name" in seen


def _spy(read: Any, seen: list[str]) -> Any:
    def spied(self: Any, name: str) -> Any:
        seen.append(name)
        return read(self, name)

    return spied


# --- present paths, ids, money --------------------------------------------------------------------


def test_present_paths_equal_the_reference_when_spellings_are_not_shared(
    payloads: list[tuple[Any, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ``SPELLINGS_KEPT`` each model has a spelling of its own; its plan is keyed by that
    spelling's ``id``, and kept with it, so a later spelling never reads another's plan."""
    monkeypatch.setattr(vw, "SPELLINGS_KEPT", 0)
    monkeypatch.setattr(vw, "_SPELLINGS", {})
    for _ in range(3):
        for show, _balance in payloads:
            wire = vw.PatientShowResponse.model_validate(show)
            assert _base.present_paths(wire.patient) == reference(wire.patient)


def test_present_paths_follow_the_fields_given_not_only_the_spelling() -> None:
    """A copy that sets more fields shares its original's spelling: its paths are its own."""
    sent = vw.AddressPayload.model_validate({"city": "Springfield", "zip_code": "62701"})
    assert _base.present_paths(sent) == reference(sent) == {"city", "zip_code"}
    copied = sent.model_copy(update={"line1": "1 Main St"})
    copied.__pydantic_fields_set__.add("line1")
    assert _base.present_paths(copied) == reference(copied) == {"city", "zip_code", "line1"}
    assert _base.present_paths(sent) == {"city", "zip_code"}


def test_present_paths_of_a_model_without_a_spelling_are_read_field_by_field() -> None:
    made = vw.AddressPayload.model_construct(city="Springfield", state_code="IL", zip_code="")
    assert _base.present_paths(made, "x") == reference(made, "x") == {"x.city", "x.state_code"}


@pytest.mark.parametrize("kind", [CoverageId, PayerId, ProviderId])
def test_a_derived_id_is_the_one_new_derives(kind: Any) -> None:
    for key in ("t1:payer:1", "t1:payer:1", "t2:payer:1", "t1:coverage:99"):
        derived = _base._derived_id(kind, key)
        assert derived == kind.new(key)
        assert type(derived) is kind


amounts = (
    st.decimals(allow_nan=True, allow_infinity=True)
    | st.decimals(min_value=-(10**12), max_value=10**12, places=3)
    | st.sampled_from([Decimal("-0"), Decimal("1.0"), Decimal("1.00"), Decimal("1E+2")])
    | st.sampled_from([Decimal("sNaN"), Decimal("NaN"), Decimal("-Infinity")])
    | st.from_regex(r"\s?[+-]?[0-9]{1,13}(\.[0-9]{1,4})?\s?", fullmatch=True)
    | st.text(max_size=8)
)


def _money(value: Any, convert: Any) -> tuple[str, str]:
    try:
        result = convert(value)
    except ValueError as err:
        return ("refused", str(err))
    return (type(result).__name__, str(result))


@FUZZ
@given(first=amounts, second=amounts)
def test_remembered_money_is_the_money_computed(first: Any, second: Any) -> None:
    for value in (first, second, first):
        assert _money(value, to_money) == _money(value, values._to_money)


def test_money_of_equal_decimals_is_the_same_two_places() -> None:
    assert str(to_money(Decimal("1.0"))) == str(to_money(Decimal("1.00"))) == "1.00"
    assert str(to_money(Decimal("-0"))) == str(to_money(Decimal("0.000"))) == "0.00"
    with pytest.raises(ValueError):
        to_money(Decimal("sNaN"))


# --- the views ------------------------------------------------------------------------------------


def _read(view: Any, name: str, run: _base._Run) -> tuple[Any, ...]:
    try:
        value = getattr(view, name)
    except AttributeError:
        return ("missing", sorted(run.used))
    if isinstance(value, list):
        return ("list", len(value), sorted(run.used))
    if isinstance(value, _base._Tracked | PlainTracked):
        return ("view", object.__getattribute__(value, "_cb_path"), sorted(run.used))
    return ("value", repr(value), sorted(run.used))


def test_a_view_reads_every_name_as_the_plain_recorder_does(
    payloads: list[tuple[Any, Any]],
) -> None:
    """Fields (either spelling), extras, sub-models, lists, methods and names the model does not
    have: the per-class views answer and record what the plain recorder answers and records."""
    show, _balance = payloads[0]
    doc = dict(
        show["patient"], added_field="x", addresses=[dict(a) for a in show["patient"]["addresses"]]
    )
    for address in doc["addresses"]:
        address["state"] = address.pop("state_code", None)
    wire = drift.check({"patient": doc}, vw.PatientShowResponse, CTX.endpoint).patient
    names = [*vw.PatientPayload.model_fields, "added_field", "", "nope", "upstream_key", "_cb_path"]
    for name in names:
        fast_run, plain_run = _base._Run(), _base._Run()
        fast = _read(_base._track(wire, fast_run), name, fast_run)
        plain = _read(PlainTracked(wire, "", plain_run), name, plain_run)
        assert fast == plain, name
    run = _base._Run()
    view = _base._track(wire, run)
    assert [a.state_code for a in view.addresses] == [a.state_code for a in wire.addresses]
    assert "addresses[].state" in run.used
    assert "addresses[].state_code" not in run.used
    assert isinstance(view, _base._Tracked)
    with pytest.raises(AttributeError):
        view.first_name = "x"


checked_values = (
    st.sampled_from(["NY", "ny", " NY", "XX", "", "USA", "us", "en", "eng", "2106-3", "12345"])
    | st.sampled_from(["12345-6789", "1234567893", "1234567890", "207Q00000X", "30", "4548-4"])
    | st.text(max_size=12)
    | st.integers(-3, 99999)
    | st.none()
)


def _check(convert: Any, value: Any) -> tuple[str, str]:
    try:
        answer = convert(value)
    except (ValueError, TypeError) as err:
        return ("refused", type(err).__name__)
    return (type(answer).__name__, repr(answer))


@pytest.mark.parametrize(
    ("remembered", "annotation"),
    [
        (_base._state, values.USState),
        (_base._zip, values.ZipCode),
        (_base._country, values.CountryCode),
        (_base._language, values.LanguageCode),
        (_base._race, values.RaceCode),
        (_base._npi, values.NPI),
        (_base._taxonomy, values.Taxonomy),
        (_base._loinc, values.LOINC),
        (_base._service_type, values.ServiceTypeCode),
    ],
)
@FUZZ
@given(drawn=st.lists(checked_values, min_size=1, max_size=6))
def test_a_remembered_check_answers_what_the_check_answers(
    remembered: Any, annotation: Any, drawn: list[Any]
) -> None:
    """Asked again (the answer remembered) or for the first time, valid or not, a string or
    not: the same answer or the same refusal as pydantic's own check."""
    plain = TypeAdapter(annotation).validate_python
    for value in (*drawn, *drawn):
        assert _check(remembered, value) == _check(plain, value)


def test_a_remembered_check_keeps_at_most_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_base, "VALUES_KEPT", 2)
    calls: list[str] = []
    check = _base._remembered(lambda value: calls.append(value) or value.upper())
    for value in ("a", "b", "c", "a", "b", "c"):
        assert check(value) == value.upper()
    assert calls == ["a", "b", "c", "c"]


def _buckets(make: Any, amounts: tuple[Any, ...]) -> tuple[str, ...]:
    try:
        aging = make(amounts)
    except (ValueError, TypeError) as err:
        return ("refused", type(err).__name__)
    return (aging.model_dump_json(), str(sorted(aging.model_fields_set)))


def _plain_aging(amounts: tuple[Any, ...]) -> Any:
    current, over_30, over_60, over_90, over_120 = amounts
    return AgingBuckets(
        current=to_money(current),
        over_30=to_money(over_30),
        over_60=to_money(over_60),
        over_90=to_money(over_90),
        over_120=to_money(over_120),
    )


bucket_amounts = st.sampled_from(["0.00", "0.0", "12.50", "-3.10", "1.005", "x"]) | st.sampled_from(
    [0, 1, True, 2.5, Decimal("0"), Decimal("1.00")]
)


@FUZZ
@given(rows=st.lists(st.tuples(*[bucket_amounts] * 5), min_size=1, max_size=4))
def test_remembered_aging_buckets_are_the_buckets_made(rows: list[tuple[Any, ...]]) -> None:
    """Again or the first time, strings or not (``True`` equals ``1``): the same buckets, or the
    same refusal, as making them."""
    for amounts in (*rows, *rows):
        assert _buckets(billing._aging, amounts) == _buckets(_plain_aging, amounts)
