"""One response model per kind of record, derived from the kinds registry.

A kind's record is its domain model's JSON as stored. Where the model carries amounts (a
charge, a claim, a patient's balances...), the record adds a top-level ``currency`` (ISO 4217)
that applies to every amount in it: amounts are decimal strings with two places.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, Field, create_model

from carebridge.domain import billing, scheduling
from carebridge.domain.kinds import KINDS

Currency = Literal["USD"]
"""An ISO 4217 currency code; the upstream uses US dollars only."""

CURRENCY: Final = "USD"
"""The only currency the upstream uses."""

_MONEY_PATTERN: Final = r"^-?[0-9]+\.[0-9]{2}$"
"""The JSON schema pattern of ``domain.values.Money``."""


def _schema_has_money(node: Any) -> bool:
    if isinstance(node, dict):
        if node.get("pattern") == _MONEY_PATTERN:
            return True
        return any(_schema_has_money(v) for v in node.values())
    if isinstance(node, list):
        return any(_schema_has_money(v) for v in node)
    return False


def carries_money(model: type[BaseModel]) -> bool:
    """Whether records of ``model`` hold an amount anywhere (then they carry ``currency``)."""
    return _schema_has_money(model.model_json_schema(mode="serialization"))


def _record(model: type[BaseModel], name: str | None = None) -> type[BaseModel]:
    """The response model of ``model``'s records: the model itself, plus ``currency`` when
    it carries amounts. ``name`` names the copy (its OpenAPI schema) where the domain model
    also appears in the document as it is, nested in another record: every schema's name is
    unique, or a generated client drops both."""
    if not carries_money(model):
        return model
    made: type[BaseModel] = create_model(
        name or model.__name__,
        __base__=model,
        __module__=__name__,
        __doc__=(model.__doc__ or "").strip() + "\n\nAmounts are in ``currency``.",
        currency=(
            Currency,
            Field(default=CURRENCY, description="ISO 4217 currency of every amount."),
        ),
    )
    return made


RECORDS: Final[dict[str, type[BaseModel]]] = {
    name: _record(kind.model) for name, kind in KINDS.items()
}
"""Each kind's response model, by kind name."""

Balance: Final[type[BaseModel]] = _record(billing.Balance, "PatientBalance")
"""A patient's balance (``GET /balances``), read in real time: ``PatientBalance`` in the
OpenAPI document, apart from the ``Balance`` a patient's record nests (whose amounts take the
patient's ``currency``)."""

Slot: Final[type[BaseModel]] = _record(scheduling.Slot)
"""A free slot (``GET /availability``), read in real time."""


def record_model(kind: str) -> type[BaseModel]:
    """The response model of kind ``kind`` (KeyError for an unknown kind)."""
    return RECORDS[kind]


def with_currency(record: dict[str, Any], kind: str) -> dict[str, Any]:
    """``record`` as answered: with ``currency`` when its kind carries amounts."""
    return {"currency": CURRENCY, **record} if kind in MONEY_KINDS else record


MONEY_KINDS: Final = frozenset(
    name for name, model in RECORDS.items() if "currency" in model.model_fields
)
"""The kinds whose records carry ``currency``."""
