"""Predictions: the billers' worklist of day D — every scored claim ranked by dollars at risk, with its likely
denial reason and the three things that raised its score most, exported as the file a biller opens.

Day D reads its scores, its gold features (reasons and drivers are computed on exactly what was scored),
the claims' CPT and billed amount from silver, the payer ratios of the week containing D (learned from
outcomes known before that week; a run over several weeks loads them all and each day picks its own,
`worklist.ratios_of_day`) and the reason champion serving on D. The export goes to the landing-out
folder (`WorklistConfig.export_dir`, else RCM_WORKLIST_DIR, else <RCM_DATA_DIR>/landing_out/worklist).
"""

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from rcm_assets.defs import checks
from rcm_assets.defs.automation import follow_upstream
from rcm_assets.defs.partitions import DAILY_BACKFILL_POLICY, SCORING_MODEL_MAPPING, scoring_partitions
from rcm_assets.defs.predictions import SCORES_KEY, load_registered
from rcm_assets.defs.reason_model import RATIOS_KEY, REASON_MODEL_KEY, reason_model_name
from rcm_assets.lib import champion as champion_lib
from rcm_assets.lib import drivers, reasons, settings
from rcm_assets.lib import worklist as worklist_lib
from rcm_assets.lib.reference_tables import NO_TABLES, ReferenceTables
from rcm_assets.lib.scoring import rows_by_day
from rcm_assets.platform import catalog
from rcm_assets.platform.resources import FeatureResource, MlflowResource

WORKLIST_KEY = dg.AssetKey(["predictions", "worklist"])
WORKLIST_DIR_ENV = "RCM_WORKLIST_DIR"
CLAIM_COLUMNS = ["claim_id", "claim_version", "cpt_code", "billed_amount", "updated_at", "dt"]
FALLBACK_TEXT = "scored by the fallback model (the payer's denial rate for this CPT family): no drivers"


def default_export_dir() -> Path:
    """RCM_WORKLIST_DIR, else landing_out/worklist under the data folder (read when a run starts)."""
    return Path(os.environ.get(WORKLIST_DIR_ENV) or settings.data_dir() / "landing_out" / "worklist")


class WorklistConfig(dg.Config):
    export_dir: str | None = None  # None: default_export_dir()
    export: bool = True  # write the CSV + Parquet files a biller opens


def day_claims(claims: pd.DataFrame) -> pd.DataFrame:
    """CPT and billed amount of each claim version as first submitted (its earliest state of the day)."""
    first = claims.sort_values(["claim_id", "claim_version", "updated_at"], kind="mergesort")
    return first.drop_duplicates(["claim_id", "claim_version"], keep="first")[
        ["claim_id", "claim_version", "cpt_code", "billed_amount"]]


class Explainers:
    """Models for one run: denial versions (for drivers) and reason champions (by version), each loaded once
    per process (`predictions.load_registered`); the reason model's promotion history read once per run; the
    hospital's reference tables the driver sentences name payers and limits from (read once per run)."""

    def __init__(self, mlf: MlflowResource, reference: ReferenceTables = NO_TABLES):
        self.mlf = mlf
        self.reference = reference
        self.denial: dict[tuple[str, str], object] = {}
        self.reason: dict[str, object] = {}
        self._reason_events: pd.DataFrame | None = None

    def denial_model(self, name: str, version: str, run_id: str | None = None):
        if (name, version) not in self.denial:
            self.denial[(name, version)] = load_registered(self.mlf, name, version, run_id)
        return self.denial[(name, version)]

    def reason_champion(self, day: str) -> tuple[str | None, object | None]:
        name = reason_model_name(self.mlf)
        if self._reason_events is None:
            self._reason_events = champion_lib.history(self.mlf.client(), name)
        version = champion_lib.serving_version(self._reason_events, date.fromisoformat(day))
        if version is None:
            return None, None
        if version not in self.reason:
            self.reason[version] = load_registered(self.mlf, name, version)
        return version, self.reason[version]


def explain_day(scores: pd.DataFrame, gold: pd.DataFrame, cpt_code: pd.Series, explainers: Explainers,
                day: str) -> pd.DataFrame:
    """Reason and drivers for the scored claims of one day (rows aligned with `scores`; `cpt_code` too,
    for the sentences)."""
    feats = scores[["claim_id", "claim_version"]].merge(gold, on=["claim_id", "claim_version"], how="left",
                                                        validate="one_to_one")
    feats["cpt_code"] = cpt_code.to_numpy()
    out = pd.DataFrame(index=scores.index)
    version, reason_model = explainers.reason_champion(day)
    if reason_model is not None and len(feats):
        top = reasons.top_reasons(reasons.predict_reasons(reason_model, feats, n_threads=1))
        out["reason_category"] = top["reason_category"].to_numpy()
        out["likely_reason"] = top["reason"].to_numpy()
        out["reason_probability"] = top["reason_probability"].to_numpy()
    else:
        out["reason_category"], out["likely_reason"], out["reason_probability"] = None, None, np.nan
    out["reason_model_version"] = version
    for k in range(1, drivers.TOP_N + 1):
        out[f"driver_{k}"], out[f"driver_{k}_effect"], out[f"driver_{k}_text"] = None, 0.0, None
    scored_by = scores.get("scored_by", pd.Series("champion", index=scores.index)).fillna("champion")
    for (name, model_version), rows in scores[scored_by.to_numpy() != "fallback"].groupby(
            ["model_name", "model_version"], sort=True):
        run_id = rows["mlflow_run_id"].iloc[0] if "mlflow_run_id" in rows.columns else None
        model = explainers.denial_model(str(name), str(model_version),
                                        str(run_id) if isinstance(run_id, str) and run_id else None)
        positions = scores.index.get_indexer(rows.index)
        part = feats.iloc[positions].reset_index(drop=True)
        explained = drivers.explain(drivers.smooth_predict(model, n_threads=1), part,
                                    reference=explainers.reference)
        for column in explained.columns:
            out.loc[rows.index, column] = explained[column].to_numpy()
    out.loc[(scored_by == "fallback").to_numpy(), "driver_1_text"] = FALLBACK_TEXT
    out["prior_auth_missing"] = feats["prior_auth_missing"].to_numpy()
    out["cpt_family"] = feats["cpt_family"].astype(str).to_numpy()
    return out


def build_worklist(scores: pd.DataFrame, gold: pd.DataFrame, claims: pd.DataFrame, ratios: pd.DataFrame,
                   explainers: Explainers, log: dg.DagsterLogManager) -> pd.DataFrame:
    """Every scored claim of each day, with expected loss, reason and drivers, ranked per day."""
    frames, said = [], []
    gold_of, claims_of = rows_by_day(gold), rows_by_day(claims)
    for day, rows in scores.groupby("dt", sort=True):
        rows = rows.reset_index(drop=True)
        gold_day = gold_of.get(day, gold.iloc[0:0])
        amounts = rows[["claim_id", "claim_version"]].merge(
            day_claims(claims_of.get(day, claims.iloc[0:0])), on=["claim_id", "claim_version"], how="left",
            validate="one_to_one")
        explained = explain_day(rows, gold_day, amounts["cpt_code"], explainers, day)
        payer = gold_day[["claim_id", "claim_version", "payer_id"]]
        payer = rows[["claim_id", "claim_version"]].merge(payer, on=["claim_id", "claim_version"], how="left")
        ratio = worklist_lib.allowed_ratio_for(payer["payer_id"].astype(str), worklist_lib.ratios_of_day(ratios, day))
        payment, loss = worklist_lib.expected_loss(rows["denial_probability"].to_numpy(),
                                                   amounts["billed_amount"].to_numpy(dtype="float64"), ratio)
        frame = pd.concat([rows[["dt", "claim_id", "claim_version", "denial_probability", "decision",
                                 "model_name", "model_version"]],
                           pd.DataFrame({"scored_by": rows.get("scored_by", pd.Series("champion", index=rows.index)),
                                         "payer_id": payer["payer_id"].astype(str).to_numpy(),
                                         "cpt_code": amounts["cpt_code"].to_numpy(),
                                         "billed_amount": amounts["billed_amount"].to_numpy(dtype="float64"),
                                         "allowed_ratio": ratio, "expected_payment": payment,
                                         "expected_loss": loss}),
                           explained], axis=1)
        frames.append(frame)
        said.append(f"{day}: {len(frame)} claims on the worklist, ${loss.sum():,.0f} expected loss")
    if not frames:
        return pd.DataFrame(columns=["dt", "rank", "claim_id", "claim_version"])
    log.info("; ".join(said))  # one event for the run, not one per day (each is a write to the event log)
    return worklist_lib.rank_worklist(pd.concat(frames, ignore_index=True))


def days_with_own_ratios(ratios: pd.DataFrame, days: list[str]) -> int:
    """How many of `days` have the payer ratios of their own model week."""
    weeks = set(ratios["week"].astype(str)) if len(ratios) and "week" in ratios.columns else set()
    return sum(worklist_lib.model_week(day) in weeks for day in days)


def worklist_checks(frame: pd.DataFrame, scores: pd.DataFrame, ratio_days: int, days: int,
                    reason_days: int) -> list[dg.AssetCheckResult]:
    listed = frame.groupby(["dt", "claim_id", "claim_version"]).size() if len(frame) else pd.Series(dtype=int)
    scored = scores.groupby(["dt", "claim_id", "claim_version"]).size() if len(scores) else pd.Series(dtype=int)
    missing = int((~scored.index.isin(listed.index)).sum())
    repeated = int((listed > 1).sum())
    no_amount = int(frame["billed_amount"].isna().sum()) if len(frame) else 0
    bounded = bool(((frame["expected_loss"] >= 0) & (frame["expected_loss"] <= frame["billed_amount"])).all()) \
        if len(frame) else True
    return [
        checks.result("every_scored_claim_listed_once", not (missing or repeated or no_amount), asset_key=WORKLIST_KEY,
                      description=(f"{missing} scored claims missing, {repeated} listed twice, {no_amount} without "
                                   "a billed amount in silver") if (missing or repeated or no_amount) else None,
                      scored_claims=len(scored), listed_claims=len(listed)),
        checks.result("expected_loss_within_billed", bounded, asset_key=WORKLIST_KEY,
                      description=None if bounded else "an expected loss is negative or above the billed amount"),
        checks.result("allowed_ratios_learned", ratio_days == days, asset_key=WORKLIST_KEY, warn_only=True,
                      description=None if ratio_days == days else f"{days - ratio_days} day(s) without the payer "
                      "allowed ratios of their own model week (materialize model/payer_allowed_ratios): they use an "
                      "earlier week's, else the billed amount as expected payment",
                      days=days, days_with_own_ratios=ratio_days),
        checks.result("reason_model_serving", reason_days == days, asset_key=WORKLIST_KEY, warn_only=True,
                      description=None if reason_days == days else f"no reason champion serves {days - reason_days} "
                      "of the days: their likely reason is empty (train model/denial_reason_model)",
                      days=days, days_with_reason=reason_days),
    ]


@dg.asset(
    key=WORKLIST_KEY,
    group_name="predictions",
    partitions_def=scoring_partitions,
    io_manager_key="lake",
    ins={
        "scores": dg.AssetIn(key=SCORES_KEY),
        "gold": dg.AssetIn(key=["gold", "claim_features"]),
        "claims": dg.AssetIn(key=["silver", "claims"], metadata={"columns": CLAIM_COLUMNS}),
        "ratios": dg.AssetIn(key=RATIOS_KEY, partition_mapping=SCORING_MODEL_MAPPING,
                             metadata={"allow_missing_partitions": True}),
    },
    deps=[dg.AssetDep(REASON_MODEL_KEY, partition_mapping=SCORING_MODEL_MAPPING)],
    backfill_policy=DAILY_BACKFILL_POLICY,
    # the scores decide when a day's list is built; a retrained model week does not rebuild old lists
    automation_condition=follow_upstream().ignore(dg.AssetSelection.assets(REASON_MODEL_KEY, RATIOS_KEY)),
    kinds={"pandas", "parquet", "csv"},
    tags=catalog.tags("predictions", phi=True),  # claim numbers: the export is PHI too (lib.worklist)
    check_specs=[
        dg.AssetCheckSpec("every_scored_claim_listed_once", asset=WORKLIST_KEY, blocking=True),
        dg.AssetCheckSpec("expected_loss_within_billed", asset=WORKLIST_KEY, blocking=True),
        dg.AssetCheckSpec("allowed_ratios_learned", asset=WORKLIST_KEY,
                          description="The payer ratios of the days' model week exist"),
        dg.AssetCheckSpec("reason_model_serving", asset=WORKLIST_KEY,
                          description="A reason champion serves every day of the run"),
    ],
)
def worklist(
    context: dg.AssetExecutionContext, config: WorklistConfig, scores: pd.DataFrame, gold: pd.DataFrame,
    claims: pd.DataFrame, ratios: pd.DataFrame, mlflow_tracking: MlflowResource, features: FeatureResource,
) -> Iterator:
    """The billers' queue of day D: claims ranked by expected loss, likely denial reason, what to check."""
    explainers = Explainers(mlflow_tracking, features.reference())  # payer names in the sentences
    frame = build_worklist(scores, gold, claims, ratios if len(ratios) else pd.DataFrame(
        columns=worklist_lib.RATIO_COLUMNS), explainers, context.log)
    days = sorted(scores["dt"].unique()) if len(scores) else []
    reason_days = int(frame.groupby("dt")["reason_model_version"].first().notna().sum()) if len(frame) else 0
    results = worklist_checks(frame, scores, days_with_own_ratios(ratios, days), len(days), reason_days)
    written = []
    # `rcm ... --dry-run` points export_dir at its scratch folder and lists what would be written there
    if config.export and not any(not r.passed and r.severity == dg.AssetCheckSeverity.ERROR for r in results):
        folder = Path(config.export_dir) if config.export_dir else default_export_dir()
        permissions = settings.export_permissions()  # RCM_EXPORT_MODE / RCM_EXPORT_GROUP: the files are PHI
        for day, rows in frame.groupby("dt", sort=True):
            written += [str(p) for p in worklist_lib.write_export(worklist_lib.export_frame(rows), folder, day,
                                                                  permissions)]
    top = frame[frame["rank"] <= 200] if len(frame) else frame
    yield from checks.publish(
        [dg.Output(frame, metadata={
            "claims": len(frame),
            "expected_loss_total": float(frame["expected_loss"].sum()) if len(frame) else 0.0,
            "expected_loss_top_200": float(top["expected_loss"].sum()) if len(top) else 0.0,
            "exports": dg.MetadataValue.text("\n".join(written) or "none"),
            # the claim number is the patient's account number: whoever reads these files reads PHI
            "exports_classification": "PHI (claim numbers); mode and group from RCM_EXPORT_MODE / RCM_EXPORT_GROUP",
            "reason_model_versions": ", ".join(sorted(explainers.reason)) or "none",
        })],
        results, what="predictions/worklist",
    )
