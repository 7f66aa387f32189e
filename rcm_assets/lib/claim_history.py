"""Which row of the claims history was the submission decision.

Silver keeps every state of every claim version. Two kinds of later row exist, and they mean different
things to a denial model:

- a **corrected claim** is a new `claim_version`: a new submission, a new decision, scored on the day it
  lands;
- an **in-place update** is a later state of the *same* version (same claim_id and claim_version, later
  `updated_at`), e.g. eligibility marked verified after the payer denied for eligibility. It is a new
  fact from its `updated_at` on, but it was not known when the version was submitted: it must never
  reach the features of that version (training would learn from the future) nor be scored again.

So the decision row of a version is its **first state**: the earliest `updated_at` of the first day the
version was seen. A state of a version already seen on one of the `lookback_days` before is an update;
so is a later state on the same day. Per claim and day the highest new version is the decision (a claim
corrected the same day it was submitted is scored once, as corrected).

A version seen once is never a new submission again, however late its update arrives, without reading
the whole history: an update carries its version's original `submitted_at`, and a version reaches the
source when it is submitted (its first state's day is its submission day, give or take a day of clock
or time zone). So a state of day D whose `submitted_at` is `lookback_days` or more before D is an update
of a version first seen before the lookback window (the index lookup covers every later submission).
The one state this rule also leaves out is a version whose *first* state reaches the source that late
(a back-dated load): scoring it is pointless (the payer answered it long ago) and its first visible state
is not what was known at its submission. Counted as `updates_past_lookback`; a deployment loading old
history raises RCM_UPDATE_LOOKBACK_DAYS for that load.

Pure functions over frames with `dt` (the UTC day the row reached the source, 'YYYY-MM-DD').
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

VERSION_KEY = ["claim_id", "claim_version"]
INDEX_COLUMNS = ["claim_id", "claim_version", "first_updated_at", "dt"]


def first_states(claims: pd.DataFrame) -> pd.DataFrame:
    """The earliest state of each claim version on each day (ties: the first ingested)."""
    # Ranking by the timestamps alone is enough (a stable sort keeps each version's rows in the order a sort
    # by (dt, version, updated_at, _ingested_at) gives them) and avoids sorting on the text keys.
    order = ["updated_at"] + (["_ingested_at"] if "_ingested_at" in claims.columns else [])
    ranked = claims.sort_values(order, kind="stable")
    return ranked.drop_duplicates(["dt", *VERSION_KEY], keep="first").sort_index()


def version_index(claims: pd.DataFrame) -> pd.DataFrame:
    """The claim versions each day holds, with their first `updated_at` that day: what gold looks up."""
    if claims.empty:
        return pd.DataFrame({"claim_id": pd.Series([], dtype=object),
                             "claim_version": pd.Series([], dtype="int64"),
                             "first_updated_at": pd.Series([], dtype="datetime64[ns]"),
                             "dt": pd.Series([], dtype=object)})
    first = first_states(claims)
    out = first[["claim_id", "claim_version", "updated_at", "dt"]].rename(columns={"updated_at": "first_updated_at"})
    return out.sort_values(["dt", "claim_id", "claim_version"], kind="stable").reset_index(drop=True)


def _days(dt: pd.Series) -> pd.Series:
    return pd.to_datetime(dt.astype(str), format="%Y-%m-%d")


def submitted_before_lookback(states: pd.DataFrame, lookback_days: int) -> np.ndarray:
    """States of day D whose version was submitted `lookback_days` or more days before D: updates of a
    version first seen before the lookback window (see the module docstring). False without submitted_at."""
    if "submitted_at" not in states.columns or states.empty:
        return np.zeros(len(states), dtype=bool)
    submitted = pd.to_datetime(states["submitted_at"])
    if submitted.dt.tz is not None:
        submitted = submitted.dt.tz_convert("UTC").dt.tz_localize(None)
    limit = _days(states["dt"]) - pd.Timedelta(days=lookback_days)
    return (submitted.dt.normalize() <= limit).fillna(False).to_numpy(dtype=bool)


def decision_rows(
    claims: pd.DataFrame, earlier_versions: pd.DataFrame | None, lookback_days: int
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The submission decisions among the claim states of `claims` (one or more days), and counts.

    `earlier_versions` is the `version_index` of the days before (any subset; days inside `claims`' own
    range are recomputed from `claims` so a range run and day-by-day runs agree). A state of day D is an
    update when its version was seen on one of the `lookback_days` days before D, or when its
    `submitted_at` is `lookback_days` or more before D (seen before the window: no index needed).
    """
    if claims.empty:
        return claims.copy(), {"states_in": 0, "decisions": 0, "in_place_updates": 0,
                               "updates_same_day": 0, "superseded_same_day": 0, "updates_past_lookback": 0}
    first = first_states(claims)
    updates_same_day = len(claims) - len(first)
    first_day = claims["dt"].min()
    seen = version_index(claims)[["claim_id", "claim_version", "dt"]]
    if earlier_versions is not None and not earlier_versions.empty:
        before = earlier_versions.loc[earlier_versions["dt"] < first_day, ["claim_id", "claim_version", "dt"]]
        seen = pd.concat([before.astype({"claim_version": "int64"}), seen], ignore_index=True)
    matches = first[[*VERSION_KEY, "dt"]].reset_index().merge(
        seen.rename(columns={"dt": "seen_dt"}), on=VERSION_KEY, how="inner")
    day, seen_day = _days(matches["dt"]), _days(matches["seen_dt"])
    earlier = (seen_day < day) & (seen_day >= day - pd.Timedelta(days=lookback_days))
    past_lookback = submitted_before_lookback(first, lookback_days)
    updated = pd.Index(matches.loc[earlier, "index"].unique()).union(first.index[past_lookback])
    new = first.drop(index=updated)
    ranked = new.sort_values("claim_version", kind="stable")  # per (dt, claim_id): the last version wins
    decisions = ranked.drop_duplicates(["dt", "claim_id"], keep="last").sort_index()
    stats = {
        "states_in": int(len(claims)),
        "decisions": int(len(decisions)),
        "in_place_updates": int(updates_same_day + len(updated)),
        "updates_same_day": int(updates_same_day),
        "superseded_same_day": int(len(new) - len(decisions)),
        "updates_past_lookback": int(past_lookback.sum()),
    }
    return decisions.reset_index(drop=True), stats
