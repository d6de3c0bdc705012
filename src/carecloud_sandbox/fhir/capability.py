"""The Connector's CapabilityStatement (``/metadata``), generated from the catalogue."""

from __future__ import annotations

from typing import Any

from carecloud_sandbox.fhir.catalog import TYPES
from carecloud_sandbox.fhir.common import FHIR_VERSION, generated_at, token_url
from carecloud_sandbox.tenant import Tenant

PARAM_TYPES = {"token": "token", "date": "date", "reference": "reference", "string": "string"}
BULK = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/"


def capability_statement(tenant: Tenant, base: str) -> dict[str, Any]:
    """A CapabilityStatement for the server at ``base`` (a practice base or the root)."""
    resources: list[dict[str, Any]] = []
    for spec in TYPES.values():
        entry: dict[str, Any] = {
            "type": spec.name,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [
                {"name": name, "type": PARAM_TYPES.get(param.kind, "token")}
                for name, param in sorted(spec.params.items())
            ]
            + [{"name": "_count", "type": "number"}],
        }
        if spec.name == "Patient":
            entry["operation"] = [{"name": "export", "definition": BULK + "patient-export"}]
        resources.append(entry)
    resources.append(
        {
            "type": "Group",
            "interaction": [{"code": "read"}],
            "operation": [{"name": "export", "definition": BULK + "group-export"}],
        }
    )
    resources.append({"type": "Binary", "interaction": [{"code": "read"}]})
    return {
        "resourceType": "CapabilityStatement",
        "id": "carecloud-connector",
        "url": f"{base}/metadata",
        "name": "CareCloudConnector",
        "title": "CareCloud Connector (emulated)",
        "status": "active",
        "date": generated_at(tenant),
        "publisher": "carebridge sandbox",
        "kind": "instance",
        "instantiates": ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"],
        "software": {"name": "CareCloud Connector (emulated by carebridge)"},
        "implementation": {"description": "Emulated CareCloud Connector", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": ["json", "application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "extension": [
                        {
                            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                            "extension": [{"url": "token", "valueUri": token_url(tenant)}],
                        }
                    ],
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                },
                "resource": resources,
            }
        ],
    }
