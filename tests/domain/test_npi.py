"""NPI check digits (CMS Luhn with the 80840 prefix)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from carebridge.domain.npi import check_digit, is_valid_npi, npi_from_base


def test_known_valid_npi() -> None:
    assert is_valid_npi("1234567893")  # the CMS worked example
    assert not is_valid_npi("1234567890")
    assert not is_valid_npi("123456789")
    assert check_digit("123456789") == "3"


@given(st.integers(min_value=100_000_000, max_value=299_999_999))
def test_generated_npis_validate_and_any_digit_change_breaks_them(base: int) -> None:
    npi = npi_from_base(base)
    assert is_valid_npi(npi)
    wrong = npi[:-1] + str((int(npi[-1]) + 1) % 10)
    assert not is_valid_npi(wrong)


def test_malformed_values_are_refused() -> None:
    assert not is_valid_npi("")
    assert not is_valid_npi("12345678931")  # eleven digits
    assert not is_valid_npi("123456789a")
    assert not is_valid_npi("323456789" + check_digit("323456789"))  # starts with 1 or 2
    for bad in ("12345678", "1234567890", "12345678x"):
        try:
            check_digit(bad)
        except ValueError:
            continue
        raise AssertionError(f"check_digit accepted {bad!r}")
