"""Payer prior-authorization rules learned from authorization denials, as known before each day.

The payers' published prior-authorization lists (`prior_auth_list.csv`, when the hospital supplies it) say
which payer requires authorization for which code. Lists are partial and payers change their policies (a
payer starts requiring authorization for lab work on a given day), and the first anyone hears of it is
the remittance: a claim without an authorization number denied with an authorization
reason code (CARC 197 and its group, `carc_category == "authorization"`). A billing team reacts by adding
the rule to its payer policies; this module does the same from the data, so the features (and the
champion, without waiting for a retrain) treat the segment as requiring authorization.

Point in time: the rules in force on day D come only from denials that *arrived* (reached the source,
silver remittances' `dt`) on the `window_days` days before D, never on D or later; a gold row of day D
and a claim scored on day D see the same rules. A segment needs `min_denials` distinct claim versions
denied for authorization without an authorization number (one stray code is not a policy); segments the
published list already covers are left to the list. A rule lapses when its denials leave the window
(claims now carry the authorization, or the payer dropped the requirement).

A segment is (payer, procedure category): `cpt_family` of the features, the hospital's category of the
code from `code_categories.csv` when it lists the code, else the code's public CPT/HCPCS section
(`lib/code_structure`), so a rule learned on some codes of a section covers the section's other codes.

Pure functions on frames; `defs/payer_rules.py` and `defs/gold.py` wire them to the lake.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np
import pandas as pd

from rcm_assets.lib import claim_history
from rcm_assets.lib import features as feature_lib
from rcm_assets.lib.reference_tables import NO_TABLES, ReferenceTables

AUTHORIZATION = "authorization"
DENIAL_COLUMNS = ["claim_id", "claim_version", "adjudicated_at", "arrived_at", "payer_id", "cpt_family",
                  "prior_auth_present", "reference_requires", "dt"]
RULE_COLUMNS = ["dt", "payer_id", "cpt_family", "denials", "first_arrival", "last_arrival"]
REMITTANCE_COLUMNS = ["claim_id", "adjudicated_at", "updated_at", "denied", "carc_category", "dt"]


def empty_denials() -> pd.DataFrame:
    return pd.DataFrame({
        "claim_id": pd.Series([], dtype=object), "claim_version": pd.Series([], dtype="int64"),
        "adjudicated_at": pd.Series([], dtype="datetime64[ns]"), "arrived_at": pd.Series([], dtype="datetime64[ns]"),
        "payer_id": pd.Series([], dtype=object), "cpt_family": pd.Series([], dtype=object),
        "prior_auth_present": pd.Series([], dtype="int64"), "reference_requires": pd.Series([], dtype="int64"),
        "dt": pd.Series([], dtype=object)})


def empty_rules() -> pd.DataFrame:
    return pd.DataFrame({
        "dt": pd.Series([], dtype=object), "payer_id": pd.Series([], dtype=object),
        "cpt_family": pd.Series([], dtype=object), "denials": pd.Series([], dtype="int64"),
        "first_arrival": pd.Series([], dtype="datetime64[ns]"), "last_arrival": pd.Series([], dtype="datetime64[ns]")})


def authorization_denial_rows(remittances: pd.DataFrame) -> pd.DataFrame:
    """The remittance rows that deny a claim for an authorization reason."""
    return remittances[remittances["denied"].astype(bool) & remittances["carc_category"].eq(AUTHORIZATION)]


def authorization_denials(remittances: pd.DataFrame, claims: pd.DataFrame,
                          config: feature_lib.FeatureConfig = feature_lib.DEFAULT_CONFIG,
                          reference: ReferenceTables = NO_TABLES) -> pd.DataFrame:
    """Authorization denials among `remittances` (silver rows with `dt` = arrival day), each with the
    payer, procedure category and authorization presence of the version it answers *as submitted* (its
    first state in `claims`, derived by the feature code with the hospital's `reference` tables), and
    whether a published prior-auth list already requires it.

    The answered version is the latest one submitted at or before the adjudication; a denial whose claim
    is not in `claims` (outside the lookback) is left out; one row per version and arrival day.
    """
    denied = authorization_denial_rows(remittances)
    if denied.empty:
        return empty_denials()
    wanted = claims[claims["claim_id"].isin(set(denied["claim_id"]))]
    if wanted.empty:
        return empty_denials()
    first = claim_history.first_states(wanted)
    first = first.sort_values([*claim_history.VERSION_KEY, "updated_at"], kind="stable").drop_duplicates(
        claim_history.VERSION_KEY, keep="first").reset_index(drop=True)
    feats = feature_lib.compute_features(feature_lib.decision_time_view(first, config), config, None, reference)
    versions = pd.DataFrame({
        "claim_id": first["claim_id"].astype(object), "claim_version": first["claim_version"].astype("int64"),
        "submitted_at": first["submitted_at"].astype("datetime64[ns]"),
        "payer_id": feats["payer_id"].astype(object), "cpt_family": feats["cpt_family"].astype(object),
        "prior_auth_present": feats["prior_auth_present"], "reference_requires": feats["prior_auth_required"]})
    rows = denied[["claim_id", "adjudicated_at", "updated_at", "dt"]].astype(
        {"claim_id": object, "adjudicated_at": "datetime64[ns]", "updated_at": "datetime64[ns]"})
    matched = pd.merge_asof(rows.sort_values("adjudicated_at", kind="stable"),
                            versions.sort_values("submitted_at", kind="stable"), left_on="adjudicated_at",
                            right_on="submitted_at", by="claim_id", direction="backward")
    matched = matched[matched["claim_version"].notna()].rename(columns={"updated_at": "arrived_at"})
    # one row per version and arrival day (so a range run stores what day-by-day runs do); a version
    # denied again on a later day is counted once by `rules_in_force`
    matched = matched.sort_values(["claim_id", "claim_version", "arrived_at"], kind="stable").drop_duplicates(
        [*claim_history.VERSION_KEY, "dt"], keep="first")
    out = matched.astype({"claim_version": "int64", "prior_auth_present": "int64", "reference_requires": "int64"})
    return out[DENIAL_COLUMNS].sort_values(["arrived_at", "claim_id"], kind="stable").reset_index(drop=True)


def arrival_days_for(days: Sequence[str], window: int) -> list[str]:
    """The arrival days whose denials can decide the rules of `days`: [first - window, last - 1]."""
    first, last = date.fromisoformat(min(days)), date.fromisoformat(max(days))
    span = (last - first).days + window
    return [(first - timedelta(days=window) + timedelta(days=n)).isoformat() for n in range(span)]


def rules_in_force(denials: pd.DataFrame, days: Sequence[str],
                   config: feature_lib.FeatureConfig = feature_lib.DEFAULT_CONFIG) -> pd.DataFrame:
    """Per day D of `days`: the (payer, procedure category) segments no published list covers with at least
    `config.learned_rule_min_denials` distinct claim versions denied for authorization without an
    authorization number, arrived on [D - window, D - 1]. Columns `RULE_COLUMNS`."""
    evidence = denials[(denials["prior_auth_present"] == 0) & (denials["reference_requires"] == 0)]
    if evidence.empty or not len(days):
        return empty_rules()
    evidence = evidence.sort_values("arrived_at", kind="stable").drop_duplicates(claim_history.VERSION_KEY)
    arrival = evidence["dt"].astype(str).to_numpy()
    frames = []
    for day in sorted(set(days)):
        start = (date.fromisoformat(day) - timedelta(days=config.learned_rule_window_days)).isoformat()
        part = evidence[(arrival >= start) & (arrival < day)]
        if part.empty:
            continue
        seg = part.groupby(["payer_id", "cpt_family"], sort=True).agg(
            denials=("claim_id", "size"), first_arrival=("arrived_at", "min"), last_arrival=("arrived_at", "max"))
        seg = seg[seg["denials"] >= config.learned_rule_min_denials]
        if len(seg):
            frames.append(seg.reset_index().assign(dt=day))
    if not frames:
        return empty_rules()
    rules = pd.concat(frames, ignore_index=True)
    return rules.astype({"denials": "int64"})[RULE_COLUMNS]


def new_rules(rules: pd.DataFrame, day: str) -> pd.DataFrame:
    """The rules in force on `day` that were not on the day before (`rules` must hold both days)."""
    before = (date.fromisoformat(day) - timedelta(days=1)).isoformat()
    today, yesterday = rules[rules["dt"] == day], rules[rules["dt"] == before]
    known = set(zip(yesterday["payer_id"], yesterday["cpt_family"], strict=True))
    fresh = np.array([(p, f) not in known for p, f in zip(today["payer_id"], today["cpt_family"], strict=True)],
                     dtype=bool)
    return today[fresh]


def describe(rule: pd.Series) -> str:
    """One sentence for the operator (segment and counts only: no claim, no patient)."""
    return (f"{rule['payer_id']} denied {int(rule['denials'])} {rule['cpt_family']} claims without prior "
            f"authorization for an authorization reason (arrived {rule['first_arrival']:%Y-%m-%d} to "
            f"{rule['last_arrival']:%Y-%m-%d}); from {rule['dt']} the features treat {rule['payer_id']}/"
            f"{rule['cpt_family']} as requiring prior authorization")
