"""Change detection and diffs of records: the fast forms answer exactly what stripping every
record of its provenance and comparing the copies answers."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from carebridge.domain.events import classify, content, diff, same_content


def _stripped(value: Any) -> Any:
    """The reference: a copy without ``sources`` at any depth."""
    if isinstance(value, dict):
        return {k: _stripped(v) for k, v in value.items() if k != "sources"}
    if isinstance(value, list):
        return [_stripped(v) for v in value]
    return value


def _reference_diff(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    old = _stripped(before) if before is not None else {}
    new = _stripped(after)
    return {
        key: [old.get(key), new.get(key)]
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    }


_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["a", "b", ""]), st.just(1.0)
)
_value = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["x", "y", "sources"]), inner, max_size=3),
    ),
    max_leaves=12,
)
_record = st.dictionaries(st.sampled_from(["id", "status", "vitals", "sources", "z"]), _value)


@settings(derandomize=True, max_examples=400)
@given(_record, _record)
def test_same_content_and_diff_agree_with_stripped_copies(
    before: dict[str, Any], after: dict[str, Any]
) -> None:
    assert same_content(before, after) == (_stripped(before) == _stripped(after))
    assert diff(before, after) == _reference_diff(before, after)
    assert diff(None, after) == _reference_diff(None, after)
    assert content(after) == _stripped(after)


def test_provenance_alone_is_no_change_at_any_depth() -> None:
    before = {"id": "enc_1", "sources": [{"at": 1}], "vitals": [{"bp": "120", "sources": [1]}]}
    after = {"id": "enc_1", "sources": [{"at": 2}], "vitals": [{"bp": "120", "sources": [2]}]}
    assert same_content(before, after)
    assert diff(before, after) == {}
    assert classify("encounter", before, after) == []
    moved = {**after, "vitals": [{"bp": "130", "sources": [2]}]}
    assert not same_content(before, moved)
    assert diff(before, moved) == {"vitals": [[{"bp": "120"}], [{"bp": "130"}]]}
    assert same_content(None, None)
    assert not same_content(None, after)


def test_classify_takes_a_diff_worked_out_already() -> None:
    before = {"id": "apt_1", "status": "scheduled"}
    after = {"id": "apt_1", "status": "cancelled"}
    changed = diff(before, after)
    assert classify("appointment", before, after, changed) == ["appointment.cancelled"]
    assert classify("appointment", before, after) == ["appointment.cancelled"]
