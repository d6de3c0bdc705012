"""Revenue cycle of the tenant: the claim lifecycle, the scrubber, adjudication and ERAs.

CareCloud exposes no claims API (``upstream/carecloud.md`` §6.2), so this follows X12
semantics: an 837P claim moves ``draft → scrubbed → submitted → accepted | rejected → pending →
paid | partially_paid | denied → appealed → closed``; each step is recorded with its 277 claim
status category (A1 receipt, A2 accepted into adjudication, A3 rejected, P1 pending, F1
finalized/payment, F2 finalized/denial). An ERA (835) line carries CAS adjustments (group CO,
PR, OA, PI with a CARC and optional RARC) and always satisfies
``billed = paid + sum(adjustments)``.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson

from carecloud_sandbox import codes
from carecloud_sandbox.npi import is_valid_npi

Add = Callable[[str, tuple[Any, ...]], None]

CLAIM_STATUSES: tuple[str, ...] = (
    "draft",
    "scrubbed",
    "submitted",
    "accepted",
    "rejected",
    "pending",
    "paid",
    "partially_paid",
    "denied",
    "appealed",
    "closed",
)
TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"scrubbed", "closed"}),
    "scrubbed": frozenset({"submitted", "draft"}),
    "submitted": frozenset({"accepted", "rejected"}),
    "accepted": frozenset({"pending", "paid", "partially_paid", "denied"}),
    "rejected": frozenset({"draft", "closed"}),
    "pending": frozenset({"paid", "partially_paid", "denied"}),
    "paid": frozenset({"closed"}),
    "partially_paid": frozenset({"appealed", "closed"}),
    "denied": frozenset({"appealed", "closed"}),
    "appealed": frozenset({"pending", "paid", "partially_paid", "denied", "closed"}),
    "closed": frozenset(),
}
# The 277 claim status category each status is reported with (None: internal to the practice).
CATEGORY: dict[str, str | None] = {
    "draft": None,
    "scrubbed": None,
    "submitted": "A1",
    "accepted": "A2",
    "rejected": "A3",
    "pending": "P1",
    "paid": "F1",
    "partially_paid": "F1",
    "denied": "F2",
    "appealed": "A1",
    "closed": None,
}


def _insert(table: str, columns: str) -> str:
    names = [c.strip() for c in columns.split(",")]
    return f"INSERT INTO {table}({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"


SQL_CLAIM = _insert(
    "claims",
    "id, claim_number, practice_id, patient_id, encounter_id, payer_id, insurance_policy_id, "
    "provider_id, location_id, service_from, service_to, status, billed_cents, paid_cents, "
    "patient_resp_cents, diagnoses_json, attachments_json, scrub_errors_json, "
    "payer_control_number, submitted_at, adjudicated_at, created_at, updated_at",
)
SQL_CLAIM_LINE = _insert(
    "claim_lines",
    "id, claim_id, line_number, charge_id, procedure_code, modifiers_json, units, service_date, "
    "billed_cents, diagnosis_pointers_json",
)
SQL_HISTORY = _insert("claim_status_history", "claim_id, status, category_code, note, at")
SQL_PAYMENT = _insert(
    "payments",
    "id, practice_id, kind, payer_id, patient_id, trace_number, method, payment_date, "
    "amount_cents, created_at, updated_at",
)
SQL_REMITTANCE = _insert(
    "remittances",
    "id, payment_id, practice_id, claim_id, claim_status_code, billed_cents, paid_cents, "
    "patient_resp_cents, received_at, created_at, updated_at",
)
SQL_REMITTANCE_LINE = _insert(
    "remittance_lines",
    "id, remittance_id, claim_line_id, billed_cents, allowed_cents, paid_cents",
)
SQL_ADJUSTMENT = _insert("adjustments", "remittance_line_id, group_code, carc, rarc, amount_cents")


class ClaimError(Exception):
    """A claim operation refused: ``code`` for the error envelope, ``field`` names the input."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        field: str | None = None,
        status: int = 422,
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.status = status
        self.errors = errors or ([{"field": field, "message": message}] if field else [])


def claim_number(practice_code: str, claim_id: int) -> str:
    """The portal's claim number: the practice's code and a zero-padded sequence."""
    return f"{practice_code}-{claim_id:07d}"


@dataclass
class LineOutcome:
    """How the payer treated one claim line: what it allowed and paid, and the CAS lines."""

    billed: int
    allowed: int
    paid: int
    adjustments: list[tuple[str, str, str | None, int]] = field(default_factory=list)

    def check(self) -> None:
        """Hold the 835 balancing rule: billed = paid + adjustments."""
        total = self.paid + sum(a[3] for a in self.adjustments)
        if total != self.billed:
            raise ValueError(f"line does not balance: {self.billed} != {total}")


def paid_line(
    billed: int, allowed: int, copay: int, deductible: int, coinsurance: int
) -> LineOutcome:
    """A processed line: CO-45 down to the allowed amount, then PR-3/PR-1/PR-2 for the patient."""
    paid = allowed - copay - deductible - coinsurance
    out = LineOutcome(billed, allowed, paid)
    if billed - allowed:
        out.adjustments.append(("CO", codes.CARC_CONTRACTUAL, None, billed - allowed))
    for carc, amount in (
        (codes.CARC_COPAY, copay),
        (codes.CARC_DEDUCTIBLE, deductible),
        (codes.CARC_COINSURANCE, coinsurance),
    ):
        if amount:
            out.adjustments.append(("PR", carc, None, amount))
    out.check()
    return out


def denied_line(billed: int, denial: tuple[str, str, str | None]) -> LineOutcome:
    """A denied line: nothing paid, the whole charge adjusted under the denial's group and CARC."""
    group, carc, rarc = denial
    out = LineOutcome(billed, 0, 0, [(group, carc, rarc, billed)])
    out.check()
    return out


def write_remittance(
    add: Add,
    ids: Callable[[str], int],
    *,
    payment_id: int,
    practice_id: int,
    claim_id: int,
    lines: list[tuple[int, LineOutcome]],
    at: str,
) -> tuple[int, int]:
    """Rows of one claim on an ERA; returns (paid, patient responsibility) in cents."""
    paid = sum(o.paid for _, o in lines)
    patient = sum(a[3] for _, o in lines for a in o.adjustments if a[0] == "PR")
    billed = sum(o.billed for _, o in lines)
    denied = paid == 0 and patient == 0
    remittance_id = ids("remittances")
    add(
        SQL_REMITTANCE,
        (
            remittance_id,
            payment_id,
            practice_id,
            claim_id,
            "4" if denied else "1",
            billed,
            paid,
            patient,
            at,
            at,
            at,
        ),
    )
    for claim_line_id, outcome in lines:
        line_id = ids("remittance_lines")
        add(
            SQL_REMITTANCE_LINE,
            (line_id, remittance_id, claim_line_id, outcome.billed, outcome.allowed, outcome.paid),
        )
        for group, carc, rarc, amount in outcome.adjustments:
            add(SQL_ADJUSTMENT, (line_id, group, carc, rarc, amount))
    return paid, patient


def final_status(lines: list[LineOutcome]) -> str:
    """paid when every line paid something, partially_paid when some did, else denied."""
    paying = [o.paid > 0 for o in lines]
    if all(paying):
        return "paid"
    if any(paying):
        return "partially_paid"
    if any(a[0] == "PR" for o in lines for a in o.adjustments):
        return "paid"  # processed, all to the patient (deductible)
    return "denied"


# --- run-time operations (portal and activity clock) ---------------------------------------------


def next_row_id(conn: sqlite3.Connection, table: str) -> int:
    """The next integer key of a table (call inside the writer's transaction)."""
    row = conn.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}").fetchone()
    return int(row[0])


def _row_ids(conn: sqlite3.Connection) -> Callable[[str], int]:
    cache: dict[str, int] = {}

    def ids(table: str) -> int:
        if table not in cache:
            cache[table] = next_row_id(conn, table)
        else:
            cache[table] += 1
        return cache[table]

    return ids


def _executor(conn: sqlite3.Connection) -> Add:
    def add(sql: str, row: tuple[Any, ...]) -> None:
        conn.execute(sql, row)

    return add


def scrub(
    conn: sqlite3.Connection,
    *,
    practice_id: int,
    patient_id: str,
    charge_ids: list[int],
    attachments: list[dict[str, Any]],
    today: date,
) -> tuple[list[sqlite3.Row], sqlite3.Row | None, list[dict[str, str]]]:
    """Check a claim before submission; returns (charges, primary policy, errors).

    Each error names the field it is about, as a clearinghouse scrubber does.
    """
    errors: list[dict[str, str]] = []
    charges: list[sqlite3.Row] = []
    if not charge_ids:
        errors.append({"field": "chargeIds", "message": "A claim needs at least one charge."})
    for i, charge_id in enumerate(charge_ids):
        row = conn.execute(
            "SELECT * FROM transactions WHERE id = ? AND practice_id = ? AND patient_id = ? "
            "AND transaction_type = 'charge'",
            (charge_id, practice_id, patient_id),
        ).fetchone()
        if row is None:
            errors.append(
                {"field": f"chargeIds[{i}]", "message": "No such charge for this patient."}
            )
            continue
        if row["billed"]:
            errors.append(
                {"field": f"chargeIds[{i}]", "message": "The charge is already on a claim."}
            )
        if not orjson.loads(row["diagnosis_codes_json"]):
            errors.append(
                {
                    "field": f"lines[{i}].diagnosisPointers",
                    "message": "The line points at no diagnosis.",
                }
            )
        if row["service_date"] and row["service_date"] > today.isoformat():
            errors.append(
                {
                    "field": f"lines[{i}].serviceDate",
                    "message": "The service date is in the future.",
                }
            )
        if row["service_date"] and (today - date.fromisoformat(row["service_date"])).days > 365:
            errors.append(
                {
                    "field": f"lines[{i}].serviceDate",
                    "message": "Timely filing limit (365 days) exceeded.",
                }
            )
        charges.append(row)
    service = min((c["service_date"] for c in charges), default=today.isoformat())
    policy = conn.execute(
        "SELECT * FROM insurance_policies WHERE patient_id = ? AND policy_priority = 1 "
        "AND (effective_from IS NULL OR effective_from <= ?) "
        "AND (effective_to IS NULL OR effective_to >= ?) ORDER BY id LIMIT 1",
        (patient_id, service, service),
    ).fetchone()
    if policy is None:
        errors.append(
            {"field": "insurance", "message": "No active primary insurance on the date of service."}
        )
    elif not policy["member_number"]:
        errors.append(
            {
                "field": "insurance.memberNumber",
                "message": "The subscriber's member number is missing.",
            }
        )
    providers = {c["provider_id"] for c in charges}
    for provider_id in providers:
        npi = conn.execute("SELECT npi FROM providers WHERE id = ?", (provider_id,)).fetchone()
        if npi is None or not is_valid_npi(str(npi[0])):
            errors.append(
                {
                    "field": "renderingProvider.npi",
                    "message": "The rendering provider's NPI is missing or invalid.",
                }
            )
    for i, attachment in enumerate(attachments):
        doc = attachment.get("documentId")
        found = (
            isinstance(doc, int)
            and conn.execute(
                "SELECT 1 FROM documents WHERE id = ? AND patient_id = ?", (doc, patient_id)
            ).fetchone()
            is not None
        )
        if not found:
            errors.append(
                {
                    "field": f"attachments[{i}].documentId",
                    "message": "No such document for this patient.",
                }
            )
    return charges, policy, errors


def record_status(
    conn: sqlite3.Connection, claim_id: int, status: str, at: str, note: str = ""
) -> None:
    """Move a claim to ``status`` (checked against the lifecycle) and append its history."""
    row = conn.execute("SELECT status FROM claims WHERE id = ?", (claim_id,)).fetchone()
    if row is None:
        raise ClaimError("not_found", "No such claim.", status=404)
    if status not in TRANSITIONS[row["status"]]:
        raise ClaimError(
            "invalid_transition",
            f"A claim cannot go from {row['status']} to {status}.",
            field="status",
            status=409,
        )
    conn.execute(
        "UPDATE claims SET status = ?, updated_at = ? WHERE id = ?", (status, at, claim_id)
    )
    conn.execute(SQL_HISTORY, (claim_id, status, CATEGORY[status], note, at))


def create_claim(
    conn: sqlite3.Connection,
    *,
    practice_id: int,
    practice_code: str,
    patient_id: str,
    charge_ids: list[int],
    attachments: list[dict[str, Any]],
    today: date,
    at: str,
    submit: bool = True,
) -> int:
    """Create a claim from charges, scrub it and (by default) submit it, in the caller's
    transaction. Scrubber errors raise :class:`ClaimError` (422, the first error's field) and
    write nothing."""
    charges, policy, errors = scrub(
        conn,
        practice_id=practice_id,
        patient_id=patient_id,
        charge_ids=charge_ids,
        attachments=attachments,
        today=today,
    )
    if errors:
        raise ClaimError(
            "validation_failed", errors[0]["message"], field=errors[0]["field"], errors=errors
        )
    if policy is None:  # the scrubber reports a missing policy; this keeps the type checker honest
        raise ClaimError("validation_failed", "No active primary insurance.", field="insurance")
    ids = _row_ids(conn)
    claim_id = ids("claims")
    diagnoses: list[str] = []
    for charge in charges:
        for code in orjson.loads(charge["diagnosis_codes_json"]):
            if code not in diagnoses:
                diagnoses.append(code)
    dates = sorted(c["service_date"] for c in charges)
    first = charges[0]
    conn.execute(
        SQL_CLAIM,
        (
            claim_id,
            claim_number(practice_code, claim_id),
            practice_id,
            patient_id,
            first["encounter_id"],
            policy["payer_id"],
            policy["id"],
            first["provider_id"],
            first["location_id"],
            dates[0],
            dates[-1],
            "draft",
            sum(int(c["amount_cents"]) for c in charges),
            0,
            0,
            orjson.dumps(diagnoses[:12]).decode(),
            orjson.dumps(attachments).decode(),
            "[]",
            None,
            None,
            None,
            at,
            at,
        ),
    )
    conn.execute(SQL_HISTORY, (claim_id, "draft", None, "Created from charges", at))
    for n, charge in enumerate(charges, start=1):
        pointers = [diagnoses.index(c) + 1 for c in orjson.loads(charge["diagnosis_codes_json"])][
            :4
        ]
        conn.execute(
            SQL_CLAIM_LINE,
            (
                ids("claim_lines"),
                claim_id,
                n,
                charge["id"],
                charge["procedure_code"],
                charge["modifiers_json"],
                charge["units"] or 1,
                charge["service_date"],
                charge["amount_cents"],
                orjson.dumps(pointers or [1]).decode(),
            ),
        )
        conn.execute(
            "UPDATE transactions SET billed = 1, transaction_status = 'posted', updated_at = ? WHERE id = ?",
            (at, charge["id"]),
        )
    record_status(conn, claim_id, "scrubbed", at, "Passed the scrubber")
    if submit:
        record_status(conn, claim_id, "submitted", at, "Sent in an 837P batch")
        conn.execute("UPDATE claims SET submitted_at = ? WHERE id = ?", (at, claim_id))
    return claim_id


def adjudicate(
    conn: sqlite3.Connection,
    rng: random.Random,
    claim_id: int,
    *,
    at: str,
    paid_on: date,
) -> str:
    """The payer's decision on an accepted or pending claim, with its ERA and ledger postings.

    Returns the claim's new status. Allowed amounts, patient shares and denials follow the
    payer's profile (``codes.PAYERS``) and the policy's copay and coinsurance.
    """
    claim = conn.execute("SELECT * FROM claims WHERE id = ?", (claim_id,)).fetchone()
    if claim is None:
        raise ClaimError("not_found", "No such claim.", status=404)
    payer = codes.PAYER_BY_ID.get(int(claim["payer_id"]))
    policy = conn.execute(
        "SELECT * FROM insurance_policies WHERE id = ?", (claim["insurance_policy_id"],)
    ).fetchone()
    allowed_pct = payer.allowed_pct if payer else 70
    denial_rate = payer.denial_rate if payer else 0.08
    copay_due = int(policy["co_payment_cents"] or 0) if policy else 0
    coins_pct = int(policy["coinsurance_pct"] or 0) if policy else 0
    denied = rng.random() < denial_rate
    denial = codes.DENIALS[min(int(rng.expovariate(0.5)), len(codes.DENIALS) - 1)]
    outcomes: list[tuple[int, LineOutcome, sqlite3.Row]] = []
    for line in conn.execute(
        "SELECT * FROM claim_lines WHERE claim_id = ? ORDER BY line_number", (claim_id,)
    ):
        billed = int(line["billed_cents"])
        if denied:
            outcome = denied_line(billed, denial)
        else:
            allowed = billed * allowed_pct // 100
            copay = (
                min(allowed, copay_due) if line["procedure_code"] in codes.EVALUATION_CODES else 0
            )
            copay_due -= copay
            coinsurance = (allowed - copay) * coins_pct // 100
            outcome = paid_line(billed, allowed, copay, 0, coinsurance)
        charge = conn.execute(
            "SELECT * FROM transactions WHERE id = ?", (line["charge_id"],)
        ).fetchone()
        outcomes.append((int(line["id"]), outcome, charge))
    ids = _row_ids(conn)
    payment_id = ids("payments")
    paid_total = sum(o.paid for _, o, _ in outcomes)
    conn.execute(
        SQL_PAYMENT,
        (
            payment_id,
            claim["practice_id"],
            "era",
            claim["payer_id"],
            None,
            f"EFT{rng.randrange(10**9, 10**10)}",
            "ACH",
            paid_on.isoformat(),
            paid_total,
            at,
            at,
        ),
    )
    paid, patient = write_remittance(
        _executor(conn),
        ids,
        payment_id=payment_id,
        practice_id=int(claim["practice_id"]),
        claim_id=claim_id,
        lines=[(line_id, o) for line_id, o, _ in outcomes],
        at=at,
    )
    # Post to the ledger: payment and contractual or denial adjustment on each charge. A
    # denial of a visit whose copay was collected leaves a credit (a negative balance) that
    # the practice owes the patient.
    name = payer.name if payer else "Insurance"
    for _, outcome, charge in outcomes:
        if charge is None:
            continue
        credits: list[tuple[str, int, str]] = []
        if outcome.paid:
            credits.append(("insurance_payment", outcome.paid, f"{name} payment"))
        for group, carc, rarc, amount in outcome.adjustments:
            if group != "PR":
                label = f"{group}-{carc}" + (f" {rarc}" if rarc else "")
                credits.append(("insurance_adjustment", amount, f"{name} {label} adjustment"))
        balance = int(charge["balance_cents"]) - sum(c[1] for c in credits)
        for kind, amount, description in credits:
            conn.execute(
                "INSERT INTO transactions(id, practice_id, patient_id, transaction_type, "
                "transaction_status, balance_type, amount_cents, balance_cents, posting_date, "
                "service_date, location_id, provider_id, attending_provider_id, description, "
                "encounter_id, appointment_id, charge_id, insurance_profile_id, billed, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, 'posted', 'insurance', ?, 0, ?, ?, ?, ?, ?, ?, ?, "
                "?, ?, ?, 1, ?, ?)",
                (
                    ids("transactions"),
                    charge["practice_id"],
                    charge["patient_id"],
                    kind,
                    -amount,
                    paid_on.isoformat(),
                    charge["service_date"],
                    charge["location_id"],
                    charge["provider_id"],
                    charge["provider_id"],
                    description,
                    charge["encounter_id"],
                    charge["appointment_id"],
                    charge["id"],
                    charge["insurance_profile_id"],
                    at,
                    at,
                ),
            )
        conn.execute(
            "UPDATE transactions SET balance_cents = ?, balance_type = 'patient', "
            "transaction_status = ?, updated_at = ? WHERE id = ?",
            (balance, "closed" if balance <= 0 else "posted", at, charge["id"]),
        )
    status = final_status([o for _, o, _ in outcomes])
    record_status(conn, claim_id, status, at, f"ERA {payment_id}")
    conn.execute(
        "UPDATE claims SET paid_cents = ?, patient_resp_cents = ?, adjudicated_at = ?, updated_at = ? WHERE id = ?",
        (paid, patient, at, at, claim_id),
    )
    return status
