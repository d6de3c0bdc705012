"""National Provider Identifier: ten digits whose last is a Luhn check digit over ``80840`` + the
first nine (CMS, "Requirements for NPI Check Digit")."""

from __future__ import annotations

_PREFIX = "80840"


def _luhn_sum(digits: str) -> int:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total


def check_digit(base: str) -> str:
    """The check digit for a nine-digit NPI base."""
    if len(base) != 9 or not base.isdigit():
        raise ValueError("an NPI base has nine digits")
    total = _luhn_sum(_PREFIX + base + "0")
    return str((10 - total % 10) % 10)


def is_valid_npi(value: str) -> bool:
    """True when ``value`` is ten digits with a correct Luhn check digit."""
    return (
        len(value) == 10
        and value.isdigit()
        and value[0] in "12"
        and (_luhn_sum(_PREFIX + value) % 10 == 0)
    )


def npi_from_base(number: int) -> str:
    """A valid NPI built from a nine-digit number (first digit 1 or 2)."""
    base = f"{number:09d}"
    return base + check_digit(base)
