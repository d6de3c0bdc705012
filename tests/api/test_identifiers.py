"""The identifiers a claim and a remittance carry are the upstream's, not null.

- A claim names the patient's insurance policy it billed (837P loop 2000B, the portal's
  ``insurancePolicyId``) as ``coverage_id``: one of the patient's own coverages.
- A remittance carries the payer's claim control number (835 CLP07, the portal's
  ``payerClaimControlNumber``), whether it was read from the ERA or from the claim.

Checked against the emulator's rows on a small tenant.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.support.api import Live, running

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    db = tmp_path_factory.mktemp("identifiers") / "store.db"
    async with running(str(db), patients=8) as started:
        yield started


async def every(live: Live, path: str) -> list[dict[str, Any]]:
    body = (await live.get(path, limit=500)).json()
    assert body["has_more"] is False, path
    return list(body["data"])


def upstream(record: dict[str, Any]) -> str:
    return str(record["sources"][0]["upstream_id"])


async def test_every_claim_names_one_of_its_patients_coverages(live: Live) -> None:
    claims = await every(live, "/claims")
    assert claims
    coverages: dict[str, dict[str, str]] = {}
    for claim in claims:
        patient = claim["patient_id"]
        if patient not in coverages:
            record = (await live.get(f"/patients/{patient}")).json()
            coverages[patient] = {c["id"]: upstream(c) for c in record["coverages"]}
        assert claim["coverage_id"] in coverages[patient], claim["claim_number"]
        truth = live.truth(
            "SELECT insurance_policy_id FROM claims WHERE claim_number = ?",
            (claim["claim_number"],),
        )[0]
        assert coverages[patient][claim["coverage_id"]] == str(truth["insurance_policy_id"])
    one = (await live.get(f"/claims/{claims[0]['id']}")).json()
    assert one["coverage_id"] == claims[0]["coverage_id"]


async def test_every_remittance_carries_the_payers_claim_control_number(live: Live) -> None:
    remittances = await every(live, "/remittances")
    assert remittances
    for remittance in remittances:
        era, claim_number = upstream(remittance).split("/", 1)
        truth = live.truth(
            "SELECT c.payer_control_number FROM remittances r JOIN claims c ON c.id = r.claim_id "
            "WHERE r.payment_id = ? AND c.claim_number = ?",
            (int(era), claim_number),
        )
        assert len(truth) == 1, upstream(remittance)
        expected = truth[0]["payer_control_number"]
        assert expected
        assert remittance["payer_claim_control_number"] == expected, upstream(remittance)
    claims = {c["id"]: c for c in await every(live, "/claims")}
    for remittance in remittances:  # the claim's own control number, as the 277 gave it
        claim = claims.get(remittance["claim_id"])
        if claim is not None:
            assert claim["payer_control_number"] == remittance["payer_claim_control_number"]
