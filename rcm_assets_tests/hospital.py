"""Gold as a hospital's pipeline computes it, for tests that train on the generator's world: the reference
files the world's hospital would supply (`synthetic.reference_tables`: payers, published prior-auth lists,
chargemaster, code categories; never the generator's truth) and the statistics learned point in time from
the first adjudications that arrived before each day (`lib/learned`)."""

from __future__ import annotations

import pandas as pd

from rcm_assets.lib import claim_history, labels, learned, payer_rules
from rcm_assets.lib import features as F
from rcm_assets.lib.reference_tables import NO_TABLES, ReferenceTables, normalize


def supplied_tables(data: object) -> ReferenceTables:
    """The world's reference files as the pipeline reads them (CSV text, normalized and contracted)."""
    from rcm_assets.synthetic import reference_tables

    files = reference_tables(data)
    return ReferenceTables(**{name.removesuffix(".csv"): normalize(name.removesuffix(".csv"),
                                                                  table.astype(str).replace({"nan": None}))
                              for name, table in files.items()})


def learned_tables(silver_claims: pd.DataFrame, silver_remittances: pd.DataFrame, days: list[str]
                   ) -> learned.LearnedTables:
    """The learned statistics of `days` from every first adjudication in the silver frames (each known from
    its arrival day: a day's statistics use only what arrived before it)."""
    versions = claim_history.first_states(silver_claims)
    versions = versions.sort_values([*claim_history.VERSION_KEY, "updated_at"], kind="stable").drop_duplicates(
        claim_history.VERSION_KEY, keep="first").reset_index(drop=True)
    remittances = silver_remittances[~labels.is_reversal(silver_remittances)]
    first = labels.first_adjudications(remittances, versions[["claim_id", "claim_version", "submitted_at"]])
    evidence = learned.adjudication_evidence(first, versions)
    return learned.build_learned_tables(evidence, days)


def hospital_gold(decisions: pd.DataFrame, silver_claims: pd.DataFrame, silver_remittances: pd.DataFrame,
                  tables: ReferenceTables = NO_TABLES) -> pd.DataFrame:
    """Gold of the decision rows as the gold asset computes it: the hospital's reference tables, the payer
    prior-auth rules and the statistics learned from what arrived before each day."""
    view = F.decision_time_view(decisions)
    days = sorted(view["dt"].astype(str).unique())
    denials = payer_rules.authorization_denials(silver_remittances, silver_claims, F.DEFAULT_CONFIG, tables)
    rules = payer_rules.rules_in_force(denials, days)
    return F.compute_features(view, learned_rules=rules, reference=tables,
                              learned=learned_tables(silver_claims, silver_remittances, days))
