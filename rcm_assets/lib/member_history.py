"""The member's earlier claims of the same procedure code: what frequency limits deny.

Payers limit how often a service is paid (a lab test once in 30 days, four therapy visits in 14): the member's
(k+1)th claim of a code within N days is denied (CARC 119). A hospital knows its own claims, so at submission
it can count the member's earlier claims of the code; the count is a decision-time fact of the claim. The
counts look in a claims history (silver claims rows, `HISTORY_COLUMNS`) and count a claim only when it was
first submitted before the claim counted for (`member_code_counts`), so a history holding later claims is
harmless. Features (`lib/features`) and the evidence of `lib/learned` (a version's count at its submission)
both use it. Pure; the member is its pseudonym (`member_token`), never an id.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# The member's earlier claims of the same procedure code whose service date lies within these many days
# before the claim's.
MEMBER_WINDOWS_DAYS: tuple[int, ...] = (14, 30, 60)
MEMBER_COUNT_FEATURES: tuple[str, ...] = tuple(f"member_code_claims_{n}d" for n in MEMBER_WINDOWS_DAYS)
# The columns of a claims history the counts look in (silver claims rows).
HISTORY_COLUMNS: tuple[str, ...] = ("claim_id", "member_token", "cpt_code", "service_date", "submitted_at")


def member_code_counts(claims: pd.DataFrame, history: pd.DataFrame | None = None,
                       windows_days: tuple[int, ...] = MEMBER_WINDOWS_DAYS) -> dict[str, np.ndarray]:
    """Per row of `claims`, the number of *other* claims (distinct claim_id) of the same member_token and
    procedure code whose service date lies in [service date - N days, service date], for each N, counted in
    `history` and `claims` together.

    Point in time: a claim counts only when its first submission (earliest submitted_at of its claim_id
    among the rows given) is strictly before the row's own claim's first submission, so a claim submitted
    later (the same day or after), a later version of the same claim or a row of the future passed in
    `history` never changes a count; a corrected claim counts what its original submission counted. A
    missing member token or code counts 0 (the claim cannot be linked). One row per input row, int64."""
    n = len(claims)
    names = tuple(f"member_code_claims_{w}d" for w in windows_days)
    if n == 0:
        return {name: np.zeros(0, dtype="int64") for name in names}
    need = list(HISTORY_COLUMNS)
    for label, frame in (("claims", claims), ("history", history)):
        missing = [] if frame is None else [c for c in need if c not in frame.columns]
        if missing:
            raise KeyError(f"{label} frame lacks column(s) {', '.join(missing)} that the member counts read")
    rows = claims[need].reset_index(drop=True).assign(_row=np.arange(n))
    known = pd.concat([f[need] for f in (history, claims) if f is not None], ignore_index=True)
    known = known[known["member_token"].notna() & known["cpt_code"].notna()]
    first = known.groupby("claim_id", sort=False)["submitted_at"].min()
    known = known.drop_duplicates(["claim_id", "member_token", "cpt_code", "service_date"])
    known = known.assign(_first=known["claim_id"].map(first).to_numpy(dtype="datetime64[ns]"))
    rows = rows.assign(_first=rows["claim_id"].map(first).to_numpy(dtype="datetime64[ns]"))
    rows = rows[rows["member_token"].notna() & rows["cpt_code"].notna()]
    pairs = rows[["_row", "claim_id", "member_token", "cpt_code", "service_date", "_first"]].merge(
        known[["claim_id", "member_token", "cpt_code", "service_date", "_first"]],
        on=["member_token", "cpt_code"], suffixes=("", "_other"))
    before = (pairs["_first_other"] < pairs["_first"]) & (pairs["claim_id_other"] != pairs["claim_id"])
    pairs = pairs[before.to_numpy()]
    gap = (pairs["service_date"] - pairs["service_date_other"]).dt.days.to_numpy()
    out = {}
    for name, window in zip(names, windows_days, strict=True):
        within = (gap >= 0) & (gap <= window)
        hit = pairs.loc[within, ["_row", "claim_id_other"]].drop_duplicates()
        out[name] = np.bincount(hit["_row"].to_numpy(dtype="int64"), minlength=n).astype("int64")
    return out
