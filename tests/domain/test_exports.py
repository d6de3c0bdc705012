"""The exported surface of ``carebridge.domain`` and its dependency rule."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pydantic

import carebridge.domain as domain

DOMAIN_DIR = Path(domain.__file__).parent


def test_every_exported_name_exists_once() -> None:
    for name in domain.__all__:
        assert getattr(domain, name) is not None, name
    assert len(set(domain.__all__)) == len(domain.__all__)


def test_every_record_type_is_exported_and_frozen() -> None:
    records = [
        getattr(domain, name)
        for name in domain.__all__
        if isinstance(getattr(domain, name), type)
        and issubclass(getattr(domain, name), pydantic.BaseModel)
    ]
    assert len(records) >= 40
    for model in records:
        assert model.model_config.get("frozen") is True, model.__name__
        assert model.model_config.get("extra") == "forbid", model.__name__
    wanted = [
        "Patient",
        "Coverage",
        "Payer",
        "Provider",
        "Location",
        "Resource",
        "VisitReason",
        "Slot",
        "Appointment",
        "Encounter",
        "Problem",
        "Medication",
        "Allergy",
        "LabResult",
        "Immunization",
        "Document",
        "Charge",
        "Claim",
        "Payment",
        "Remittance",
        "Adjustment",
        "Statement",
        "Balance",
        "EligibilityCheck",
        "Provenance",
    ]
    assert set(wanted) <= {m.__name__ for m in records}


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module)
    return roots


def test_the_domain_imports_only_the_standard_library_pydantic_and_itself() -> None:
    allowed_project = ("carebridge.domain", "carebridge.errors")
    for path in sorted(DOMAIN_DIR.glob("*.py")):
        for module in _imported_roots(path):
            top = module.split(".")[0]
            ok = (
                top in sys.stdlib_module_names
                or top in ("pydantic", "pydantic_core")
                or module.startswith(allowed_project)
            )
            assert ok, f"{path.name} imports {module}"
