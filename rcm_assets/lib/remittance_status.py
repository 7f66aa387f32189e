"""The outcome of one 835 claim payment (CLP) read per the X12 standard: status, denial, reason.

One pure function, `classify_remittance`, used by the 835 reader (`lib.x12`); docs/X12.md carries the same
table with one test per row (rcm_assets_tests/lib/test_x12_remittance_status.py). Why: a payer answers
"denied" in more ways than CLP02 = 4; a claim processed as primary (CLP02 1) with $0 paid and the whole
charge written off under CO-197 is a denial, while $0 paid because the charge went to the deductible (PR-1)
is not; and the reason is the CARC that cost the most, not the first CAS segment.

Inputs: CLP02 (claim status code), CLP03 (charge), CLP04 (payment) and every CAS reason/amount pair of the
claim payment, at claim (loop 2100) and service-line (loop 2110) level, as (group, reason, amount).

| case | CLP02 | paid (CLP04) | CAS groups | claim_status | denied | reason (carc_code, cas_group) |
|---|---|---|---|---|---|---|
| reversal | 22 | any (negative) | any | reversed | no | largest CO/PI by magnitude |
| denied by status | 4 | any | any | denied | yes | largest CO/PI |
| whole-claim write-off | 1, 2, 3, 19, 20, 21 | 0 | CO/PI/OA > 0, no PR | denied | yes | largest CO/PI (else OA) |
| deductible / coinsurance | 1, 2, 3, 19, 20, 21 | 0 | PR > 0 | paid | no | largest CO/PI, else PR |
| partial payment | any other | > 0 and < charge | CO/PI beyond contractual (45, 253) | partial | no | largest CO/PI |
| patient share of a payment | any other | > 0 and < allowed (AMT*AU) | PR | partial | no | largest CO/PI, else PR |
| contractual only | any other | > 0 | CO-45 / CO-253 (and PR) only | paid | no | largest CO/PI |
| paid in full | any other | = charge | none | paid | no | none |
| $0, no adjustment | 1, 2, 3, 19, 20, 21 | 0 | none | paid | no | none |
| other status, $0 | 23, 25, ... | 0 | any | paid | no | largest CO/PI |

Rules in words:
- "reason" = the CARC whose CO and PI amounts, summed over claim and line level, are the largest (ties: the
  first seen); without any CO/PI adjustment, the largest OA, then PR, then CR. The group is returned beside it.
- "partial" = paid > 0 and either paid < charge with some CO/PI amount that is not a contractual
  write-down (CARC 45 charge exceeds the fee schedule, 253 sequestration): the payer refused part of the
  claim; or paid < the allowed amount (AMT*AU) when the 835 gives it: the payer paid part of what it allows
  and the patient owes the rest. A CO-45 alone is the normal price of a paid claim, never a partial payment.
- PR (patient responsibility: deductible 1, coinsurance 2, copay 3) never makes a denial: the claim was
  paid by the plan's rules and the patient owes the rest.
- A reversal (CLP02 22) takes back an earlier payment; it is never a denial (it is not an adjudication of
  the claim), and its amounts are negative in the 835: the reader stores their magnitudes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["CONTRACTUAL_CARCS", "PROCESSED_STATUSES", "REVERSAL_STATUS", "RemittanceOutcome",
           "classify_remittance"]

DENIED_STATUS = "4"
REVERSAL_STATUS = "22"
# Processed as primary, secondary, tertiary (and the same, forwarded to another payer).
PROCESSED_STATUSES = frozenset({"1", "2", "3", "19", "20", "21"})
# CO adjustments that are the price of a paid claim, not a refusal: charge above the fee schedule, sequestration.
CONTRACTUAL_CARCS = frozenset({"45", "253"})
REASON_GROUPS = ("CO", "PI")  # the payer's refusals: the reason of a denial or partial payment
_FALLBACK_GROUPS = ("OA", "PR", "CR")
_CENT = 0.005


@dataclass(frozen=True)
class RemittanceOutcome:
    claim_status: str  # paid | denied | partial | reversed
    denied: bool
    carc_code: str | None
    cas_group: str | None


def _reason(adjustments: list[tuple[str, str, float]]) -> tuple[str | None, str | None]:
    """The CARC with the largest summed CO/PI magnitude; without CO/PI, the largest OA, then PR, then CR."""
    for groups in (REASON_GROUPS, *((g,) for g in _FALLBACK_GROUPS)):
        totals: dict[str, float] = {}
        group_of: dict[str, str] = {}
        for group, reason, amount in adjustments:
            if group in groups:
                totals[reason] = totals.get(reason, 0.0) + abs(amount)
                group_of.setdefault(reason, group)
        if totals:
            best = max(totals, key=lambda r: totals[r])  # max keeps the first of equal totals
            return best, group_of[best]
    return None, None


def classify_remittance(status_code: str, paid: float, charge: float | None,
                        adjustments: Iterable[tuple[str, str, float | None]],
                        allowed: float | None = None) -> RemittanceOutcome:
    """Status, denial and reason of one claim payment (see the module docstring's table)."""
    status_code = (status_code or "").strip()
    cas = [((g or "").strip().upper(), (r or "").strip(), float(a or 0.0)) for g, r, a in adjustments
           if (r or "").strip()]
    carc, group = _reason(cas)
    if status_code == REVERSAL_STATUS:
        return RemittanceOutcome("reversed", False, carc, group)
    if status_code == DENIED_STATUS:
        return RemittanceOutcome("denied", True, carc, group)
    payer_refused = sum(a for g, _, a in cas if g in ("CO", "PI", "OA"))
    patient_owes = sum(a for g, _, a in cas if g == "PR")
    if abs(paid) < _CENT:
        if status_code in PROCESSED_STATUSES and payer_refused >= _CENT and patient_owes < _CENT:
            return RemittanceOutcome("denied", True, carc, group)
        return RemittanceOutcome("paid", False, carc, group)
    refused_beyond_contract = sum(a for g, r, a in cas if g in REASON_GROUPS and r not in CONTRACTUAL_CARCS)
    if charge is not None and paid < charge - _CENT and refused_beyond_contract >= _CENT:
        return RemittanceOutcome("partial", False, carc, group)
    if allowed is not None and paid < allowed - _CENT:  # the payer paid part of what it allows
        return RemittanceOutcome("partial", False, carc, group)
    return RemittanceOutcome("paid", False, carc, group)
