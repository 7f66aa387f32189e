"""silver/adjudication_evidence: the first adjudications that arrived each day, with the keys of the claim
version they answer as submitted, so gold can learn denial rates, typical charges and filing limits point
in time (`lib/learned`) where no reference table gives them.

A remittance names the claim, not its payer or codes: the answered version's first state is read from the
silver claims days that hold it (the `silver/claim_versions` index of the `CLAIM_LOOKUP_DAYS` before, as
`defs/payer_rules` does for authorization denials). Whether a remittance is the *first* adjudication of
its version depends on the remittances of the claim that arrived before, so those days are read too. The
lookbacks are read from the lake rather than declared as partition-mapped inputs, for the reason
`defs/gold.read_earlier_versions` gives (a mapped lookback makes one-day backfills fan out).
"""

from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow as pa

from rcm_assets.defs import checks
from rcm_assets.defs.automation import follow_upstream
from rcm_assets.defs.partitions import DAILY_BACKFILL_POLICY, PARTITIONS_START, daily_partitions
from rcm_assets.defs.payer_rules import (
    CLAIM_LOOKUP_DAYS,
    SILVER_REMITTANCES,
    lake_days,
    read_claim_states,
)
from rcm_assets.defs.silver import claim_versions
from rcm_assets.lib import claim_history, labels, learned
from rcm_assets.platform import catalog
from rcm_assets.platform.resources import FeatureResource

EVIDENCE_KEY = dg.AssetKey(["silver", "adjudication_evidence"])
REMITTANCE_COLUMNS = ["claim_id", "adjudicated_at", "updated_at", "claim_status", "denied", "carc_code", "dt"]
VERSION_COLUMNS = ["claim_id", "claim_version", "submitted_at", "payer_id", "cpt_code", "icd10_primary",
                   "rendering_npi", "billing_npi", "units", "billed_amount", "service_date", "prior_auth_number",
                   "updated_at", "_ingested_at", "dt"]


def read_remittances(lake: Any, days: Sequence[str], claim_ids: set[str]) -> pd.DataFrame | None:
    """The silver remittance rows of `claim_ids` that arrived on `days` (days never written are skipped)."""
    frames = [lake.read_stored(SILVER_REMITTANCES.path, d, columns=REMITTANCE_COLUMNS) for d in days]
    frames = [f[f["claim_id"].isin(claim_ids)] for f in frames if f is not None]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else None


def version_states(claims: pd.DataFrame) -> pd.DataFrame:
    """One row per claim version: its first state (as submitted), whatever day it was first seen."""
    if claims.empty:
        return claims
    first = claim_history.first_states(claims)
    return first.sort_values([*claim_history.VERSION_KEY, "updated_at"], kind="stable").drop_duplicates(
        claim_history.VERSION_KEY, keep="first").reset_index(drop=True)


def day_evidence(lake: Any, remittances: pd.DataFrame, keys: Sequence[str], facility_tz: str
                 ) -> tuple[pd.DataFrame, pd.DataFrame, set[str]]:
    """The evidence rows whose first adjudication arrived on `keys` (the run's days, whose remittances are
    `remittances`); also the run's non-reversal rows and the claims found in silver (for the check)."""
    arrived = remittances[~labels.is_reversal(remittances)]
    claim_ids = set(arrived["claim_id"])
    if not claim_ids:
        return learned.empty_evidence(), arrived, set()
    before = [d for d in lake_days(keys[0], keys[0], CLAIM_LOOKUP_DAYS) if d < keys[0]]
    earlier = read_remittances(lake, before, claim_ids)
    everything = pd.concat([f for f in (earlier, remittances[REMITTANCE_COLUMNS]) if f is not None],
                           ignore_index=True)
    claims = read_claim_states(lake, lake_days(keys[0], keys[-1], CLAIM_LOOKUP_DAYS), claim_ids, VERSION_COLUMNS)
    versions = version_states(claims)
    first = labels.first_adjudications(everything, versions[["claim_id", "claim_version", "submitted_at"]])
    first = first[first["dt"].astype(str).isin(set(keys))]
    return learned.adjudication_evidence(first, versions, facility_tz), arrived, set(claims["claim_id"])


def evidence_schema() -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, dtype, description=text)
                                   for name, (dtype, text) in learned.EVIDENCE_COLUMNS.items()])


EVIDENCE_CHECKS = [
    checks.spec("answered_versions_found", EVIDENCE_KEY,
                f"Every remittance of the day answers a claim version found in silver within {CLAIM_LOOKUP_DAYS} "
                "days (else its evidence is lost to the learned statistics)", partitions_def=daily_partitions),
]


@dg.asset(
    key=EVIDENCE_KEY,
    description=("First adjudications of claim versions that arrived on the day (one row per version), with the "
                 "payer, procedure, diagnosis category, provider, days to submit and billed per unit of the "
                 "version as submitted and the outcome (denied, CARC): the evidence gold learns denial rates, "
                 "typical charges and filing limits from, point in time (lib/learned)."),
    group_name="silver",
    partitions_def=daily_partitions,
    io_manager_key="lake",
    ins={"silver_remittances": dg.AssetIn(key=SILVER_REMITTANCES, metadata={"columns": REMITTANCE_COLUMNS})},
    # the day's own claims (lineage and order); the lookback days are read from the lake
    deps=[claim_versions],
    required_resource_keys={"lake", "features"},
    backfill_policy=DAILY_BACKFILL_POLICY,
    automation_condition=follow_upstream(),
    kinds={"pandas", "parquet"},
    owners=catalog.OWNERS,
    tags=catalog.tags("silver", phi=False),
    metadata=catalog.definition_metadata(evidence_schema()),
    check_specs=EVIDENCE_CHECKS,
)
def adjudication_evidence(context: dg.AssetExecutionContext, silver_remittances: pd.DataFrame) -> Iterator:
    """The day's first adjudications, each with the decision-time keys of the claim version it answers."""
    features: FeatureResource = context.resources.features
    keys = list(context.partition_keys)
    frame, arrived, found = day_evidence(context.resources.lake, silver_remittances, keys,
                                         features.config().facility_tz)
    context.log.info(f"silver/adjudication_evidence: {len(frame)} first adjudications with their version "
                     f"({len(arrived)} remittance rows arrived)")

    def day_checks(rows: pd.DataFrame, day: str) -> list[dg.AssetCheckResult]:
        of_day = arrived[arrived["dt"].astype(str) == day]
        missing = int((~of_day["claim_id"].isin(found)).sum())
        return [checks.result(
            "answered_versions_found", missing == 0, asset_key=EVIDENCE_KEY, warn_only=True,
            description=(f"{missing} of {len(of_day)} remittance rows answer no claim in silver within "
                         f"{CLAIM_LOOKUP_DAYS} days" if missing else None),
            remittance_rows=int(len(of_day)), first_adjudications=int(len(rows)), not_found=missing)]

    by_day = checks.per_partition(keys, frame, day_checks)
    metadata = {"first_adjudications": len(frame),
                "denied": int(frame["denied"].sum()),
                "timely_filing_denials": int((frame["carc_code"] == learned.TIMELY_FILING_CARC).sum()),
                "inconsistency_denials": int((frame["carc_code"] == learned.INCONSISTENT_CARC).sum())}
    yield from checks.publish([dg.Output(frame, metadata=metadata)], by_day, what="silver/adjudication_evidence",
                              context=context)


def read_learned_tables(lake: Any, days: list[str], config: learned.LearnedConfig = learned.DEFAULT_CONFIG
                        ) -> learned.LearnedTables:
    """The learned statistics of each of `days`, from the evidence partitions of their windows.

    Read from the lake for the reason `defs/gold.read_earlier_versions` gives; a window day that was never
    materialized is counted (`LearnedTables.days_missing`), not guessed. The window is concatenated in
    Arrow and its text read as categoricals; claim ids (one distinct string per row, the costliest column
    to convert) stay in Arrow unless a version is stored twice."""
    if not days:
        return learned.build_learned_tables(learned.empty_evidence(), [], config)
    arrival = [d for d in learned.evidence_days_for(days, config) if date.fromisoformat(d) >= PARTITIONS_START]
    wanted = [c for c in learned.EVIDENCE_COLUMNS if c != "dt"]
    stored = [lake.read_stored_table(EVIDENCE_KEY.path, d, columns=wanted) for d in arrival]
    parts = [t.append_column("dt", pa.DictionaryArray.from_arrays(pa.array([0] * t.num_rows, pa.int32()),
                                                                 pa.array([d], pa.string())))
             for d, t in zip(arrival, stored, strict=True) if t is not None and t.num_rows]
    missing = sum(t is None for t in stored)
    if not parts:
        return learned.build_learned_tables(learned.empty_evidence(), days, config, days_missing=missing)
    table = pa.concat_tables(parts, promote_options="permissive").unify_dictionaries()
    versions = table.group_by(["claim_id", "claim_version"]).aggregate([([], "count_all")]).num_rows
    distinct = versions == table.num_rows
    if distinct:
        table = table.drop_columns(["claim_id"])
    evidence = table.to_pandas(strings_to_categorical=True)
    return learned.build_learned_tables(evidence, days, config, days_missing=missing, distinct_versions=distinct)
