"""The patient: demographics, contacts, identifiers, guarantor, coverages and balances.

A ``Patient`` is one person across every surface (one carebridge id, ``pat_...``); the upstream
ids it is known by are in ``identifiers`` (and in the crosswalk). Its names, dates of birth,
SSN and contacts are PHI and are left out of ``repr``.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import Field, model_validator

from carebridge.domain.billing import Balance
from carebridge.domain.contact import Address, PersonName, Phone, check_one_primary
from carebridge.domain.insurance import Coverage
from carebridge.domain.provenance import DomainModel, NonEmptyStr, Record, check_timestamps
from carebridge.domain.values import (
    NPI,
    SSN,
    Email,
    Instant,
    LanguageCode,
    LocationId,
    PatientId,
    ProviderId,
    RaceCode,
    USState,
    money_sum,
)
from carebridge.domain.vocab import (
    AdministrativeGender,
    EmploymentStatusCode,
    Ethnicity,
    IdentifierKind,
    MaritalStatus,
    Relationship,
    StudentStatusCode,
)


class PatientIdentifier(DomainModel):
    """An identifier the practice or a surface knows the patient by."""

    kind: IdentifierKind
    value: NonEmptyStr = Field(repr=False)


class DriversLicense(DomainModel):
    number: NonEmptyStr = Field(repr=False)
    state: USState | None = None


class Guarantor(DomainModel):
    """The responsible party: who is billed for what the patient owes (absent: the patient)."""

    relationship: Relationship
    name: PersonName = Field(repr=False)
    birth_date: date | None = Field(default=None, repr=False)
    gender: AdministrativeGender | None = None
    email: Email | None = Field(default=None, repr=False)
    addresses: tuple[Address, ...] = ()
    phones: tuple[Phone, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Guarantor:
        if self.relationship == "self":
            raise ValueError("relationship: a guarantor other than the patient is not 'self'")
        check_one_primary(self.addresses, "addresses")
        check_one_primary(self.phones, "phones")
        return self


class Patient(Record):
    """A patient of the practice."""

    id: PatientId
    name: PersonName = Field(repr=False)
    birth_date: date | None = Field(default=None, repr=False)
    death_date: date | None = Field(default=None, repr=False)
    gender: AdministrativeGender | None = None
    ssn: SSN | None = Field(default=None, repr=False)
    email: Email | None = Field(default=None, repr=False)
    addresses: tuple[Address, ...] = ()
    phones: tuple[Phone, ...] = ()
    identifiers: tuple[PatientIdentifier, ...] = ()
    drivers_license: DriversLicense | None = Field(default=None, repr=False)
    marital_status: MaritalStatus | None = None
    language: LanguageCode | None = None
    race: RaceCode | None = None
    """CDC race code; None when declined or unknown."""
    ethnicity: Ethnicity | None = None
    employment_status: EmploymentStatusCode | None = None
    student_status: StudentStatusCode | None = None
    employer_name: str = ""
    school_name: str = ""
    active: bool = True
    primary_location_id: LocationId | None = None
    primary_provider_id: ProviderId | None = None
    primary_care_physician_npi: NPI | None = None
    referring_physician_npi: NPI | None = None
    last_seen_date: date | None = None
    guarantor: Guarantor | None = None
    coverages: tuple[Coverage, ...] = ()
    """Policies in priority order within each insurance profile."""
    balances: tuple[Balance, ...] = ()
    """At most one per responsible party (patient, insurance)."""
    created_at: Instant | None = None
    updated_at: Instant | None = None

    @model_validator(mode="after")
    def _check(self) -> Patient:
        if self.birth_date and self.death_date and self.death_date < self.birth_date:
            raise ValueError("death_date: must not be before birth_date")
        check_one_primary(self.addresses, "addresses")
        check_one_primary(self.phones, "phones")
        kinds = [i.kind for i in self.identifiers if i.kind != "other"]
        if len(set(kinds)) != len(kinds):
            raise ValueError("identifiers: at most one of each kind (except 'other')")
        if any(c.patient_id != self.id for c in self.coverages):
            raise ValueError("coverages: each must belong to this patient")
        if len({c.id for c in self.coverages}) != len(self.coverages):
            raise ValueError("coverages: must not repeat")
        if any(b.patient_id != self.id for b in self.balances):
            raise ValueError("balances: each must belong to this patient")
        if len({b.responsible for b in self.balances}) != len(self.balances):
            raise ValueError("balances: at most one per responsible party")
        check_timestamps(self.created_at, self.updated_at)
        return self

    @property
    def account_balance(self) -> Decimal:
        """The total owed on the account, by every responsible party."""
        return money_sum(b.total for b in self.balances)

    def identifier(self, kind: IdentifierKind) -> str | None:
        """The value of the first identifier of ``kind``, if any."""
        return next((i.value for i in self.identifiers if i.kind == kind), None)
