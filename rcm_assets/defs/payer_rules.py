"""silver/authorization_denials: the authorization denials that arrived each day, with the segment of the
claim they answer, so gold can learn payer prior-authorization rules no published list (prior_auth_list.csv) has.

A remittance names the claim, not its payer or procedure: the answered version's first state is read from
the silver claims days that hold it (found through the `silver/claim_versions` index of the
`CLAIM_LOOKUP_DAYS` before), pruned to the feature source columns, and derived by the feature code. The
lookback is read from the lake rather than declared as a partition-mapped input, for the reason
`defs/gold.read_earlier_versions` gives (a mapped lookback makes one-day backfills fan out).
"""

from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from typing import Any

import dagster as dg
import pandas as pd

from rcm_assets.defs import checks
from rcm_assets.defs.automation import follow_upstream
from rcm_assets.defs.partitions import DAILY_BACKFILL_POLICY, PARTITIONS_START, daily_partitions
from rcm_assets.defs.silver import claim_versions
from rcm_assets.lib import features as feature_lib
from rcm_assets.lib import payer_rules, settings
from rcm_assets.platform import catalog
from rcm_assets.platform.resources import FeatureResource

AUTHORIZATION_DENIALS_KEY = dg.AssetKey(["silver", "authorization_denials"])
SILVER_CLAIMS_PATH = ["silver", "claims"]
SILVER_REMITTANCES = dg.AssetKey(["silver", "remittances"])
# A denial answers a claim submitted at most this many days before it arrived (the same lookback that tells
# a new submission from an update; payers adjudicate within weeks, timely-filing appeals within months).
CLAIM_LOOKUP_DAYS: int = settings.update_lookback_days()
CLAIM_STATE_COLUMNS = ("updated_at", "_ingested_at")


def lake_days(first_day: str, last_day: str, before: int) -> list[str]:
    """[first_day - before, last_day], without days before the partitions start."""
    first, last = date.fromisoformat(first_day) - timedelta(days=before), date.fromisoformat(last_day)
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)
            if first + timedelta(days=n) >= PARTITIONS_START]


def read_claim_states(lake: Any, days: Sequence[str], claim_ids: set[str], columns: Sequence[str]) -> pd.DataFrame:
    """The silver claim rows of `claim_ids` (`columns`) on the days among `days` whose version index holds
    them: reads the small version index of each day, then only the days that hold one of the claims."""
    index = [lake.read_stored(claim_versions.key.path, d, columns=["claim_id"]) for d in days]
    holding = sorted({day for day, f in zip(days, index, strict=True)
                      if f is not None and f["claim_id"].isin(claim_ids).any()})
    frames = [lake.read_stored(SILVER_CLAIMS_PATH, d, columns=list(columns)) for d in holding]
    frames = [f[f["claim_id"].isin(claim_ids)] for f in frames if f is not None]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(columns))


def read_answered_claims(lake: Any, days: Sequence[str], claim_ids: set[str],
                         config: feature_lib.FeatureConfig) -> pd.DataFrame:
    """The silver claim rows of `claim_ids` as submitted (the features' source columns and claim state)."""
    return read_claim_states(lake, days, claim_ids, [*config.source_columns, *CLAIM_STATE_COLUMNS, "dt"])


AUTHORIZATION_DENIALS_CHECKS = [
    checks.spec("denied_claims_found", AUTHORIZATION_DENIALS_KEY,
                f"Every authorization denial of the day answers a claim found in silver within {CLAIM_LOOKUP_DAYS} "
                "days (else its segment is unknown and a payer rule may be learned late)",
                partitions_def=daily_partitions),
]


@dg.asset(
    key=AUTHORIZATION_DENIALS_KEY,
    description=("Authorization denials (CARC group 'authorization', e.g. 197) that arrived on the day, with "
                 "the payer, procedure category and prior-auth presence of the claim version they answer as submitted: "
                 "the evidence gold learns payer prior-authorization rules from (lib/payer_rules)."),
    group_name="silver",
    partitions_def=daily_partitions,
    io_manager_key="lake",
    ins={"silver_remittances": dg.AssetIn(key=SILVER_REMITTANCES,
                                          metadata={"columns": payer_rules.REMITTANCE_COLUMNS})},
    # the day's own claims (lineage and order); the lookback days are read by `read_answered_claims`
    deps=[claim_versions],
    required_resource_keys={"lake", "features"},
    backfill_policy=DAILY_BACKFILL_POLICY,
    automation_condition=follow_upstream(),
    kinds={"pandas", "parquet"},
    owners=catalog.OWNERS,
    tags=catalog.tags("silver", phi=False),
    metadata=catalog.definition_metadata(catalog.authorization_denials_schema()),
    check_specs=AUTHORIZATION_DENIALS_CHECKS,
)
def authorization_denials(context: dg.AssetExecutionContext, silver_remittances: pd.DataFrame) -> Iterator:
    """The day's authorization denials, each with the segment of the claim version it answers."""
    features: FeatureResource = context.resources.features
    config = features.config()
    keys = context.partition_keys
    denied = payer_rules.authorization_denial_rows(silver_remittances)
    claims = read_answered_claims(context.resources.lake, lake_days(keys[0], keys[-1], CLAIM_LOOKUP_DAYS),
                                  set(denied["claim_id"]), config) if len(denied) else None
    frame = (payer_rules.authorization_denials(denied, claims, config, features.reference()) if claims is not None
             else payer_rules.empty_denials())
    context.log.info(f"silver/authorization_denials: {len(frame)} authorization denials matched to their claim "
                     f"({len(denied)} denial rows arrived)")

    def day_checks(rows: pd.DataFrame, day: str) -> list[dg.AssetCheckResult]:
        arrived = denied[denied["dt"].astype(str) == day]
        found = arrived["claim_id"].isin(set(rows["claim_id"])).sum() if len(rows) else 0
        missing = int(len(arrived) - found)
        return [checks.result(
            "denied_claims_found", missing == 0, asset_key=AUTHORIZATION_DENIALS_KEY, warn_only=True,
            description=(f"{missing} of {len(arrived)} authorization denials answer no claim in silver within "
                         f"{CLAIM_LOOKUP_DAYS} days" if missing else None),
            denial_rows=int(len(arrived)), claims_matched=int(len(rows)), not_found=missing)]

    by_day = checks.per_partition(keys, frame, day_checks)
    metadata = {"denials": len(frame), "without_prior_auth": int((frame["prior_auth_present"] == 0).sum()),
                "outside_reference": int((frame["reference_requires"] == 0).sum())}
    yield from checks.publish([dg.Output(frame, metadata=metadata)], by_day,
                              what="silver/authorization_denials", context=context)
