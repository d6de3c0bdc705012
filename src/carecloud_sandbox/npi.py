"""NPIs the emulated tenant issues and checks.

CMS ("Requirements for NPI Check Digit"): an NPI is ten digits, the first 1 or 2, the last a Luhn
check digit computed as if the card issuer prefix ``80840`` stood before the first nine. The
emulator keeps its own copy so that it depends on nothing in carebridge.
"""

from __future__ import annotations


def _luhn_valid(digits: str) -> bool:
    doubled = (int(c) * (2 if i % 2 else 1) for i, c in enumerate(reversed(digits)))
    return sum(d - 9 if d > 9 else d for d in doubled) % 10 == 0


def is_valid_npi(value: str) -> bool:
    """True for ten digits, a leading 1 or 2, and a correct check digit."""
    return (
        len(value) == 10 and value.isdigit() and value[0] in "12" and _luhn_valid("80840" + value)
    )


def npi_from_base(number: int) -> str:
    """The NPI whose first nine digits are ``number`` (zero-padded), check digit appended."""
    base = f"{number:09d}"
    if len(base) != 9:
        raise ValueError("an NPI base has at most nine digits")
    return next(base + d for d in "0123456789" if _luhn_valid("80840" + base + d))
