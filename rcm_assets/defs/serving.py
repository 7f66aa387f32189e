"""Serving: what the pre-submission scoring service (`rcm serve`, `rcm_assets/serving`) needs for day D,
and what it scored.

`serving/bundle` of day D is one row: the champion and fallback versions serving D (the champion history,
as the batch scores D), the reason champion, the decision threshold, the feature_version, the versions of
the reference tables, of the learned statistics and of the learned payer rules in force on D. Gold D learns
from the evidence that arrived before D, so the bundle of D is complete once D - 1's evidence is stored
(its upstream dependency). The service resolves the same inputs with the same functions
(`resolve_serving`) and refuses to serve when they differ from the bundle (a service and a batch that
would compute different features); it re-reads bundle and champion history while running, so a promotion or
rollback is served without a restart.

`predictions/presubmission_scores` of day D gathers what the service scored on D (request id, claim id and
version, probability, decision, reason, model lineage; no other claim content) from its spool folder, so the
later batch score of the same claim version can be joined to it and monitoring can read it.
"""


import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from rcm_assets.defs.gold import learned_rules
from rcm_assets.defs.learned import adjudication_evidence, read_learned_tables
from rcm_assets.defs.partitions import DAILY_BACKFILL_POLICY, daily_partitions, scoring_partitions
from rcm_assets.defs.payer_rules import authorization_denials
from rcm_assets.defs.predictions import Registry, ScoringConfig
from rcm_assets.defs.reason_model import reason_model_name
from rcm_assets.defs.reference import REFERENCE_ASSETS
from rcm_assets.lib import champion as champion_lib
from rcm_assets.lib import features as feature_lib
from rcm_assets.lib import learned as learned_lib
from rcm_assets.lib import settings
from rcm_assets.lib.reference_tables import ReferenceTables
from rcm_assets.platform.resources import FeatureResource, MlflowResource

BUNDLE_KEY = dg.AssetKey(["serving", "bundle"])
PRESUBMISSION_KEY = dg.AssetKey(["predictions", "presubmission_scores"])
SPOOL_ENV = "RCM_SERVE_SPOOL_DIR"
# What must agree between the published bundle and what a service resolves before it serves.
FEATURE_INPUTS = ("feature_version", "reference_version", "learned_version", "rules_version")
SPOOL_COLUMNS = ["request_id", "route", "claim_id", "claim_version", "serving_day", "denial_probability",
                 "decision", "threshold", "reason_category", "likely_reason", "model_name", "model_version",
                 "feature_version", "scored_by", "scored_at"]


def spool_dir() -> Path:
    """Where the service appends what it scored (RCM_SERVE_SPOOL_DIR, else <RCM_DATA_DIR>/serving/scored)."""
    return Path(os.environ.get(SPOOL_ENV) or settings.data_dir() / "serving" / "scored")


def rules_version(rules: pd.DataFrame) -> str:
    """Content version of the learned payer rules in force on a day (payer x CPT family, order-free)."""
    pairs = sorted(f"{p}/{f}" for p, f in zip(rules["payer_id"], rules["cpt_family"], strict=True))
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:16]


@dataclass
class Resolved:
    """Everything the scoring of day D uses, resolved as the batch resolves it."""

    day: str
    config: feature_lib.FeatureConfig
    reference: ReferenceTables
    rules: pd.DataFrame
    learned: learned_lib.LearnedTables
    registry: Registry
    champion_version: str | None
    fallback_version: str | None
    reason_version: str | None
    threshold: float
    versions: dict[str, Any] = field(default_factory=dict)


def serving_versions(mlf: MlflowResource, day: str, feature_version: str
                     ) -> tuple[Registry, str | None, str | None, str | None]:
    """(registry, champion, fallback, reason champion) serving `day` as the batch picks them: the champion
    history for this feature_version, the newest fallback fitted for a week on or before the day
    (`Registry.fallback_for`), the reason model's own champion history. Reads the registry, loads no model."""
    registry = Registry(mlf)
    champion = registry.champion_for(day, feature_version)
    eligible = [mv for mv in registry.fallbacks if (mv.tags or {}).get("dagster_partition", "") <= day]
    fallback = str(eligible[-1].version) if eligible else None
    events = champion_lib.history(mlf.client(), reason_model_name(mlf))
    return registry, champion, fallback, champion_lib.serving_version(events, date.fromisoformat(day))


def resolve_serving(lake: Any, mlf: MlflowResource, features: FeatureResource, day: str,
                    threshold: float | None = None) -> Resolved:
    """The inputs of day D's scores, through the batch's own functions: the learned payer rules in force
    on D (`gold.learned_rules`), D's learned statistics (`learned.read_learned_tables`), the reference
    tables and feature configuration of the feature resource, the champion serving D for this
    feature_version and the newest fallback (`predictions.Registry`), and the reason champion."""
    config, reference = features.config(), features.reference()
    rules, _ = learned_rules(lake, [day], config)
    rules = rules[rules["dt"] == day].reset_index(drop=True)
    learned = read_learned_tables(lake, [day])
    version = feature_lib.feature_version(config, reference)
    registry, champion, fallback, reason = serving_versions(mlf, day, version)
    threshold = ScoringConfig().decision_threshold if threshold is None else threshold
    versions = {
        "serving_day": day, "feature_version": version, "reference_version": reference.version,
        "reference_versions": json.dumps(reference.versions(), sort_keys=True),
        "learned_version": learned.version(day), "learned_window_days_missing": int(learned.days_missing),
        "rules_version": rules_version(rules),
        "rules_in_force": ", ".join(sorted(f"{p}/{f}" for p, f in zip(rules["payer_id"], rules["cpt_family"],
                                                                         strict=True))) or "none",
        "model_name": mlf.model_name, "champion_version": champion,
        "fallback_version": fallback,
        "reason_model_version": reason, "decision_threshold": float(threshold),
    }
    return Resolved(day, config, reference, rules, learned, registry, champion, fallback, reason, float(threshold),
                    versions)


def bundle_frame(resolved: Resolved) -> pd.DataFrame:
    """The bundle row of a day (the partition column `dt` is the serving day)."""
    row = {**resolved.versions, "published_at": pd.Timestamp(datetime.now(UTC).replace(tzinfo=None))}
    row.pop("serving_day")
    return pd.DataFrame([row]).astype({"champion_version": "object", "fallback_version": "object",
                                       "reason_model_version": "object"})


def bundle_differences(published: dict[str, Any], resolved: dict[str, Any]) -> list[str]:
    """The feature inputs on which a service's resolution differs from the published bundle."""
    return [f"{name}: bundle {published.get(name)!r}, resolved {resolved.get(name)!r}" for name in FEATURE_INPUTS
            if str(published.get(name)) != str(resolved.get(name))]


EVIDENCE_DAY_BEFORE = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)


@dg.asset(
    key=BUNDLE_KEY,
    description=("What the pre-submission scoring service needs to score claims arriving on the day exactly as "
                 "the batch will: champion, fallback and reason-model versions serving the day, decision "
                 "threshold, feature_version, reference, learned-statistics and learned-rules versions (one row)."),
    group_name="serving",
    partitions_def=daily_partitions,
    io_manager_key="lake",
    # gold D learns from the evidence and authorization denials that arrived up to D - 1
    deps=[dg.AssetDep(adjudication_evidence, partition_mapping=EVIDENCE_DAY_BEFORE),
          dg.AssetDep(authorization_denials, partition_mapping=EVIDENCE_DAY_BEFORE), *REFERENCE_ASSETS],
    required_resource_keys={"lake", "features", "mlflow_tracking"},
    kinds={"pandas", "parquet"},
)
def bundle(context: dg.AssetExecutionContext) -> dg.Output:
    """The serving inputs of day D (one row): the batch's champion, fallback, rules and learned versions."""
    day = context.partition_key
    resolved = resolve_serving(context.resources.lake, context.resources.mlflow_tracking,
                               context.resources.features, day)
    frame = bundle_frame(resolved)
    if resolved.champion_version is None and resolved.fallback_version is None:
        context.log.warning(f"serving/bundle {day}: no champion and no fallback serve the day: the service "
                            f"will not be ready until a model week on or before {day} is trained")
    return dg.Output(frame, metadata={k: dg.MetadataValue.text(str(v)) for k, v in resolved.versions.items()})


def read_spool(folder: Path, day: str) -> pd.DataFrame:
    """The rows the service scored on `day` (every process's file of the day); empty when none."""
    files = sorted((folder / f"dt={day}").glob("*.jsonl"))
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]
    frame = pd.DataFrame(rows, columns=SPOOL_COLUMNS)
    if frame.empty:
        return frame.astype({"denial_probability": "float64", "claim_version": "int64"})
    return frame.astype({"denial_probability": "float64", "claim_version": "int64", "threshold": "float64"}).assign(
        scored_at=pd.to_datetime(frame["scored_at"]).dt.tz_localize(None).astype("datetime64[ns]"))


@dg.asset(
    key=PRESUBMISSION_KEY,
    description=("Every claim the pre-submission service scored on the day: request id, claim id and version, "
                 "probability, decision, likely reason and model lineage (no other claim content); joins "
                 "to predictions/claim_denial_scores on (claim_id, claim_version)."),
    group_name="predictions",
    # landed for yesterday by the daily monitoring schedule (defs/jobs.monitoring_daily_job), beside drift
    partitions_def=scoring_partitions,
    io_manager_key="lake",
    backfill_policy=DAILY_BACKFILL_POLICY,
    kinds={"pandas", "parquet"},
)
def presubmission_scores(context: dg.AssetExecutionContext) -> dg.Output:
    """What the scoring service answered on day D (from its spool folder)."""
    days = list(context.partition_keys)
    frames = [read_spool(spool_dir(), day).assign(dt=day) for day in days]
    frame = pd.concat(frames, ignore_index=True) if len(days) > 1 else frames[0].drop(columns="dt")
    by = frame["scored_by"].value_counts().to_dict() if len(frame) else {}
    return dg.Output(frame, metadata={"claims": len(frame), "requests": int(frame["request_id"].nunique()),
                                      "scored_by": dg.MetadataValue.json(by)})
