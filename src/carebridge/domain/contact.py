"""Names, addresses and phone numbers shared by patients, providers, locations and payers.

These are PHI when they belong to a patient, so their fields are left out of ``repr``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from carebridge.domain.provenance import DomainModel, NonEmptyStr
from carebridge.domain.values import CountryCode, PhoneE164, USState, ZipCode
from carebridge.domain.vocab import AddressUse, PhoneKind

Extension = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{1,6}$")]


class PersonName(DomainModel):
    """A person's name as the practice records it."""

    first: NonEmptyStr = Field(repr=False)
    last: NonEmptyStr = Field(repr=False)
    middle: str = Field(default="", repr=False)
    """The middle name or initial (CareCloud keeps an initial only)."""
    prefix: str = Field(default="", repr=False)
    suffix: str = Field(default="", repr=False)


class Address(DomainModel):
    """A postal address. US addresses carry a state and a ZIP code."""

    line1: str = Field(default="", repr=False)
    line2: str = Field(default="", repr=False)
    line3: str = Field(default="", repr=False)
    city: str = Field(default="", repr=False)
    state: USState | None = None
    zip_code: ZipCode | None = Field(default=None, repr=False)
    county: str = Field(default="", repr=False)
    country: CountryCode = "USA"
    latitude: float | None = Field(default=None, ge=-90, le=90, repr=False)
    longitude: float | None = Field(default=None, ge=-180, le=180, repr=False)
    use: AddressUse = "home"
    is_primary: bool = False

    @model_validator(mode="after")
    def _coordinates_come_in_pairs(self) -> Address:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude: comes with a longitude, and the other way round")
        return self


class Phone(DomainModel):
    """A phone number in E.164 with its kind; the extension is kept apart."""

    number: PhoneE164 = Field(repr=False)
    kind: PhoneKind = "other"
    extension: Extension | None = None
    is_primary: bool = False


def check_one_primary(items: tuple[Address, ...] | tuple[Phone, ...], field: str) -> None:
    """Raise ``ValueError`` naming ``field`` when more than one item is primary."""
    if sum(1 for item in items if item.is_primary) > 1:
        raise ValueError(f"{field}: at most one is primary")
