"""Predictions: day D's gold features scored by the model serving on D, every row stamped with lineage.

Who serves D comes from the promotion history in the MLflow registry (data time, not wall time), so a
backfill of an old day never uses a model trained on later data. When no champion serves D (none promoted
yet, a review retired it, its features differ from the gold being scored) or it cannot be loaded, the
week's fallback model scores instead (`scored_by = fallback`, WARN check `scored_by_champion`). The model
weeks up to D's own are a declared dependency (lineage, and automation requests D only once one of them
is trained: before that nothing can score it), but scoring never waits for D's own week: an earlier
week's champion or fallback serves, and the `model_week_trained` check says which week is missing.

Scores a biller may already have worked from are kept: re-materializing a day scores only claims it does
not hold yet; `ScoringConfig.rescore` (`rcm predict --rescore`) rewrites them, and each rewrite is recorded
in the materialization's metadata and the run log. `predictions/shadow_scores` holds what the previous
champion, the challengers and the fallback would have said about the same claims (not the billers' table);
the weekly review in `model/lifecycle_review` compares them on matured labels.
"""


import json
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

import dagster as dg
import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from rcm_assets.defs import checks
from rcm_assets.defs.automation import follow_upstream, follow_upstream_once_scorable
from rcm_assets.defs.model import MODEL_KEY
from rcm_assets.defs.partitions import DAILY_BACKFILL_POLICY, SCORING_HISTORY_MAPPING, scoring_partitions
from rcm_assets.lib import champion as champion_lib
from rcm_assets.lib import fallback as fallback_lib
from rcm_assets.lib import quality, settings
from rcm_assets.lib.scoring import rows_by_day, score
from rcm_assets.platform import catalog
from rcm_assets.platform.resources import MlflowResource

SCORES_KEY = dg.AssetKey(["predictions", "claim_denial_scores"])
SHADOW_KEY = dg.AssetKey(["predictions", "shadow_scores"])
PSI_WARN = 0.2
MIN_PSI_ROWS = 200  # a day with fewer scores gives a PSI that is mostly sampling noise
SCORE_KEY_COLUMNS = ["claim_id", "claim_version"]


# Thresholds the environment or the configuration file set, read when the code location loads (the defaults
# of runs launched without run config: daemon, UI, schedules, sensors).
CONFIGURED = settings.scoring_overrides()


class ScoringConfig(dg.Config):
    """Defaults: environment > configuration file > the values below (`settings.scoring_overrides`)."""

    # at or above: send the claim to a biller for review
    decision_threshold: float = CONFIGURED.get("decision_threshold", 0.35)
    psi_warn_threshold: float = CONFIGURED.get("psi_warn_threshold", PSI_WARN)
    # Rewrite scores already written for a day (`rcm predict --rescore`); every rewrite is recorded.
    rescore: bool = False


# Registered models this process has loaded, by (tracking URI, MLflow run id, model URI). A version's
# artifacts never change once registered, and its run id is unique even across a re-created store, so the
# consecutive runs of one process (the chunks of a CLI backfill, the scores and the worklist of one run)
# load each model once. Runs launched by the daemon each get a fresh process: nothing is kept between them.
_LOADED: OrderedDict[tuple[str, str, str], object] = OrderedDict()
LOADED_MODELS_KEPT = 8


def load_registered(mlf: MlflowResource, name: str, version: str, run_id: str | None = None) -> object:
    """The scikit-learn model of registered version `name`/`version`, loaded once per process."""
    if run_id is None:
        run_id = mlf.client().get_model_version(name, version).run_id
    uri = f"models:/{name}/{version}"
    key = (mlf.tracking_uri, str(run_id), uri)
    if key in _LOADED:
        _LOADED.move_to_end(key)
        return _LOADED[key]
    mlf.client()  # sets the tracking URI the models:/ URI resolves against
    model = mlflow.sklearn.load_model(uri)
    _LOADED[key] = model
    while len(_LOADED) > LOADED_MODELS_KEPT:
        _LOADED.popitem(last=False)
    return model


class ServingModel:
    """A registered version with the lineage every score is stamped with (its model loaded once per process)."""

    scored_by = "champion"

    def __init__(self, mlf: MlflowResource, version: str, mv=None):
        mv = mv if mv is not None else mlf.client().get_model_version(mlf.model_name, version)
        self.version = version
        self.tags = dict(mv.tags or {})
        self.feature_version = self.tags.get("feature_version", "")
        self.model = load_registered(mlf, mlf.model_name, version, mv.run_id)
        self.stamp = {
            "model_name": mlf.model_name, "model_version": version, "mlflow_run_id": mv.run_id,
            "training_window_start": self.tags.get("window_start"),
            "training_window_end": self.tags.get("window_end"),
        }
        self.reference = np.array(json.loads(self.tags.get("score_reference", "[]")), dtype=float)


class FallbackServing:
    """A registered fallback version: payer × CPT-family rates read from its MLflow run (JSON, no pickle)."""

    scored_by = "fallback"

    def __init__(self, mlf: MlflowResource, mv):
        client = mlf.client()
        self.version = str(mv.version)
        self.tags = dict(mv.tags or {})
        self.feature_version = None  # reads payer and CPT family only: any feature version
        local = client.download_artifacts(mv.run_id, fallback_lib.ARTIFACT_PATH)
        with open(local) as f:
            self.model = fallback_lib.FallbackModel.from_dict(json.load(f))
        self.stamp = {
            "model_name": fallback_lib.registered_name(mlf.model_name), "model_version": self.version,
            "mlflow_run_id": mv.run_id, "training_window_start": None, "training_window_end": None,
        }
        self.reference = np.array([], dtype=float)


@dataclass
class Registry:
    """What the registry says about serving, read once per run: the champion history, each version's
    tags, the fallback versions by week, and the models loaded so far."""

    mlf: MlflowResource
    events: pd.DataFrame = field(init=False)
    records: dict[str, object] = field(init=False)
    versions: dict[str, dict[str, str]] = field(init=False)
    fallbacks: list = field(init=False)
    loaded: dict[str, ServingModel | FallbackServing] = field(default_factory=dict)

    def __post_init__(self):
        client = self.mlf.client()
        self.events = champion_lib.history(client, self.mlf.model_name)
        self.records = self._records(self.mlf.model_name)
        self.versions = {v: dict(mv.tags or {}) for v, mv in self.records.items()}
        try:
            fallbacks = client.search_model_versions(f"name = '{fallback_lib.registered_name(self.mlf.model_name)}'")
        except MlflowException:
            fallbacks = []
        self.fallbacks = sorted(fallbacks, key=lambda mv: ((mv.tags or {}).get("dagster_partition", ""),
                                                           int(mv.version)))

    def _records(self, name: str) -> dict[str, object]:
        try:
            return {str(mv.version): mv for mv in self.mlf.client().search_model_versions(f"name = '{name}'")}
        except MlflowException:
            return {}

    def champion_for(self, day: str, feature_version: str) -> str | None:
        fvs = {v: t.get("feature_version", "") for v, t in self.versions.items()}
        return champion_lib.serving_version(self.events, date.fromisoformat(day), fvs, feature_version)

    def model(self, version: str) -> ServingModel:
        if version not in self.loaded:
            self.loaded[version] = ServingModel(self.mlf, version, self.records.get(version))
        return self.loaded[version]

    def fallback_for(self, day: str) -> FallbackServing | None:
        """The newest fallback fitted for a model week on or before `day` (data time, like the champion)."""
        eligible = [mv for mv in self.fallbacks if (mv.tags or {}).get("dagster_partition", "") <= day]
        if not eligible:
            return None
        key = f"fallback:{eligible[-1].version}"
        if key not in self.loaded:
            self.loaded[key] = FallbackServing(self.mlf, eligible[-1])
        return self.loaded[key]


def _day_feature_version(rows: pd.DataFrame) -> str:
    versions = sorted(rows["feature_version"].unique()) if len(rows) else [""]
    return versions[-1] if len(versions) == 1 else ",".join(versions)


def serving_for_day(day: str, rows: pd.DataFrame, registry: Registry, log: dg.DagsterLogManager
                    ) -> tuple[ServingModel | FallbackServing, str | None]:
    """The model that scores `day` (its champion, else the fallback) and, when the fallback serves, why."""
    fv = _day_feature_version(rows)
    version = registry.champion_for(day, fv)
    serving, why = None, None
    if version is not None:
        try:
            serving = registry.model(version)
        except Exception as exc:  # a champion that cannot load must not leave the day unscored
            why = f"champion v{version} could not be loaded ({type(exc).__name__}: {str(exc)[:200]})"
            log.warning(f"{day}: {why}; scoring with the fallback model")
    else:
        current = champion_lib.serving_version(registry.events, date.fromisoformat(day))
        why = (f"champion v{current} was trained on other features than the gold of {day} and no earlier "
               f"champion was trained on feature_version {fv}" if current else f"no champion serves {day}")
    if serving is not None:
        return serving, None
    serving = registry.fallback_for(day)
    if serving is None:
        raise dg.Failure(f"{why or f'no champion serves {day}'} and no fallback model is registered for "
                         f"a week on or before {day}: train and promote a model for a week starting on or "
                         f"before {day} (rcm train --date {day})")
    return serving, why


def score_days(gold: pd.DataFrame, registry: Registry, threshold: float, run_id: str,
               log: dg.DagsterLogManager) -> tuple[pd.DataFrame, dict[str, str]]:
    """Score each day of `gold` with the champion serving on that day, or the fallback; returns the scores
    (days in order, each day's rows in gold's order) and, per day the fallback served, why.

    The days one model serves are scored in one call (one model load, one predict for the whole range),
    then the rows are put back in day order."""
    if gold.empty:
        return pd.DataFrame(), {}
    gold = gold.reset_index(drop=True)
    fell_back: dict[str, str] = {}
    days_of: dict[int, list[str]] = {}
    serving_of: dict[int, ServingModel | FallbackServing] = {}
    said = []
    for day, rows in gold.groupby("dt", sort=True):
        serving, why = serving_for_day(day, rows, registry, log)
        if why is not None:
            fell_back[day] = why
        serving_of[id(serving)] = serving
        days_of.setdefault(id(serving), []).append(day)
        said.append(f"{day}: {len(rows)} claims scored by {serving.scored_by} v{serving.version}")
    log.info("; ".join(said))  # one event for the run, not one per day (each is a write to the event log)
    frames = []
    for key, days in days_of.items():
        serving = serving_of[key]
        rows = gold[gold["dt"].isin(days)]
        frames.append(score(serving.model, rows, model_feature_version=serving.feature_version,
                            threshold=threshold, stamp={**serving.stamp, "dagster_run_id": run_id},
                            scored_by=serving.scored_by).set_axis(rows.index))
    scored = pd.concat(frames) if len(frames) > 1 else frames[0]
    # the order of a day-by-day loop: days ascending, each day's rows in gold's order
    order = gold.sort_values("dt", kind="stable").index
    return scored.loc[order].reset_index(drop=True), fell_back


def keep_written_scores(stored: pd.DataFrame | None, gold_day: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows to keep as written, gold rows still to score) for one day: claims already scored keep their
    score; only claims the day did not hold when it was scored (late gold rows) are scored now."""
    if stored is None or stored.empty:
        return gold_day.iloc[0:0], gold_day
    done = pd.MultiIndex.from_frame(stored[SCORE_KEY_COLUMNS].astype(str))
    todo = ~pd.MultiIndex.from_frame(gold_day[SCORE_KEY_COLUMNS].astype(str)).isin(done)
    return stored, gold_day[todo]


def rewrites(stored: pd.DataFrame | None, rescored: pd.DataFrame) -> dict[str, object]:
    """What a re-score changes in one day's written scores (for the record)."""
    if stored is None or stored.empty:
        return {}
    both = stored.merge(rescored, on=SCORE_KEY_COLUMNS, suffixes=("_before", "_after"))
    changed = both[(both["model_version_before"].astype(str) != both["model_version_after"].astype(str))
                   | ~np.isclose(both["denial_probability_before"], both["denial_probability_after"])]
    moves = changed.groupby(["model_version_before", "model_version_after"]).size()
    return {"claims_rewritten": int(len(changed)), "claims_kept_identical": int(len(both) - len(changed)),
            "versions": ", ".join(f"v{a}→v{b}: {n}" for (a, b), n in moves.items()) or "none"}


def prediction_checks(scores: pd.DataFrame, fresh: pd.DataFrame, gold: pd.DataFrame, loaded: dict,
                      psi_warn: float, fell_back: dict[str, str]) -> list[dg.AssetCheckResult]:
    """Coverage and range on every row of the days; model/feature agreement and drift on the rows scored
    by this run (`fresh`: rows kept as written were checked when they were written)."""
    in_range = scores["denial_probability"].between(0, 1).all() if len(scores) else True
    scored = scores.groupby(["dt", "claim_id"]).size() if len(scores) else pd.Series(dtype=int)
    expected = gold.groupby(["dt", "claim_id"]).size() if len(gold) else pd.Series(dtype=int)
    missing = int((~expected.index.isin(scored.index)).sum())
    repeated = int((scored > 1).sum())
    extra = int((~scored.index.isin(expected.index)).sum())
    champions = {k: m for k, m in loaded.items() if m.scored_by == "champion"}
    by_champion = fresh[fresh["scored_by"] == "champion"] if len(fresh) else fresh
    if len(by_champion):
        stamped = by_champion[["dt", "claim_id", "claim_version", "feature_version"]].merge(
            gold[["dt", "claim_id", "claim_version", "feature_version"]], how="left",
            on=["dt", "claim_id", "claim_version"], suffixes=("", "_gold"))
        mismatched = sorted(set(stamped.loc[stamped["feature_version"] != stamped["feature_version_gold"],
                                            "feature_version_gold"].astype(str)))
    else:
        mismatched = []
    psis = {v: quality.score_psi(m.reference, by_champion.loc[by_champion["model_version"] == v, "denial_probability"])
            for v, m in champions.items()
            if len(m.reference) and len(by_champion) and (by_champion["model_version"] == v).any()}
    worst_psi = max(psis.values(), default=0.0)
    fallback_rows = int((scores["scored_by"] == "fallback").sum()) if len(scores) else 0
    return [
        checks.result("probabilities_in_unit_interval", in_range, asset_key=SCORES_KEY,
                      min_probability=float(scores["denial_probability"].min()) if len(scores) else 0.0,
                      max_probability=float(scores["denial_probability"].max()) if len(scores) else 0.0),
        checks.result("every_gold_claim_scored_once", not (missing or repeated or extra), asset_key=SCORES_KEY,
                      description=f"{missing} unscored, {repeated} scored twice, {extra} unknown claims"
                      if (missing or repeated or extra) else None,
                      gold_claims=len(expected), scored_claims=len(scored)),
        checks.result("feature_version_matches_model", not mismatched, asset_key=SCORES_KEY,
                      description=f"gold feature_version(s) {', '.join(mismatched)} differ from the model's"
                      if mismatched else None,
                      model_feature_versions=", ".join(sorted({m.feature_version for m in champions.values()}))
                      or "none (fallback only)"),
        checks.result("score_drift_psi_below_threshold", worst_psi < psi_warn or len(by_champion) < MIN_PSI_ROWS,
                      asset_key=SCORES_KEY, warn_only=True,
                      description=f"score PSI {worst_psi:.3f} against the training holdout "
                      + (f"({'above' if worst_psi >= psi_warn else 'below'} the warning threshold {psi_warn})"
                         if len(by_champion) >= MIN_PSI_ROWS else
                         f"on {len(by_champion)} claims, too few for a stable PSI (at least {MIN_PSI_ROWS}; "
                         f"monitoring/score_drift follows drift by day and payer)"),
                      psi=float(worst_psi), threshold=psi_warn, claims=len(by_champion)),
        checks.result("scored_by_champion", not fell_back, asset_key=SCORES_KEY, warn_only=True,
                      description=" ".join(f"Fallback: {day}: {why}; its {int((scores['dt'] == day).sum())} claims "
                                           f"were scored by the fallback model (payer × CPT-family denial rates)."
                                           for day, why in sorted(fell_back.items())) or None,
                      fallback_days=", ".join(sorted(fell_back)) or "none", fallback_claims=fallback_rows),
    ]


def week_of(day: str) -> str:
    """The model week (Monday) a day belongs to."""
    d = date.fromisoformat(day)
    return (d - timedelta(days=d.weekday())).isoformat()


def missing_model_weeks(days: list[str], trained_weeks: set[str]) -> list[str]:
    """The weeks of `days` without a model row: their training failed or has not run yet."""
    return sorted({week_of(d) for d in days} - trained_weeks)


def model_week_check(missing: list[str], loaded: dict) -> dg.AssetCheckResult:
    serving = ", ".join(f"{m.scored_by} v{m.version}" for m in loaded.values()) or "none"
    return checks.result(
        "model_week_trained", not missing, asset_key=SCORES_KEY, warn_only=True,
        description=(f"model week(s) {', '.join(missing)} have no trained model; the champion history "
                     f"served instead ({serving})" if missing else None),
        missing_weeks=", ".join(missing) or "none", serving_versions=serving,
    )


@dg.asset(
    key=SCORES_KEY,
    group_name="predictions",
    partitions_def=scoring_partitions,
    io_manager_key="lake",
    ins={"gold": dg.AssetIn(key=["gold", "claim_features"]),
         "model_weeks": dg.AssetIn(key=MODEL_KEY, partition_mapping=SCORING_HISTORY_MAPPING,
                                   metadata={"allow_missing_partitions": True, "columns": ["model_version", "week"]})},
    # the lake IO manager too: a day's written scores are read back to be kept
    required_resource_keys={"lake", "mlflow_tracking"},
    backfill_policy=DAILY_BACKFILL_POLICY,
    # gold decides when a day is scored, once a model week up to the day's is trained (something can
    # score it); the model weeks neither trigger nor re-score a day
    automation_condition=follow_upstream_once_scorable(MODEL_KEY),
    kinds={"scikitlearn", "parquet"},
    check_specs=[
        dg.AssetCheckSpec("probabilities_in_unit_interval", asset=SCORES_KEY, partitions_def=scoring_partitions, blocking=True,
                          description="Every denial probability is within [0, 1]"),
        dg.AssetCheckSpec("every_gold_claim_scored_once", asset=SCORES_KEY, partitions_def=scoring_partitions, blocking=True,
                          description="Each gold claim of the day scored exactly once, and no claim gold lacks"),
        dg.AssetCheckSpec("feature_version_matches_model", asset=SCORES_KEY, partitions_def=scoring_partitions, blocking=True,
                          description="The gold feature_version equals the serving model's (no scoring of other features)"),
        dg.AssetCheckSpec("score_drift_psi_below_threshold", asset=SCORES_KEY, partitions_def=scoring_partitions,
                          description="PSI of the day's scores against the training holdout scores"),
        dg.AssetCheckSpec("scored_by_champion", asset=SCORES_KEY, partitions_def=scoring_partitions,
                          description="Every claim was scored by a champion; warns naming each day the fallback "
                                      "model scored and why (no champion, features changed, champion failed to load)"),
        dg.AssetCheckSpec("model_week_trained", asset=SCORES_KEY, partitions_def=scoring_partitions,
                          description="The model week containing each scored day has its row (training ran); "
                                      "warns naming the missing weeks, while an earlier champion serves"),
    ],
)
def claim_denial_scores(
    context: dg.AssetExecutionContext, config: ScoringConfig, gold: pd.DataFrame, model_weeks: pd.DataFrame,
) -> Iterator:
    """Denial probability and review decision for every claim of day D, with model lineage."""
    registry = Registry(context.resources.mlflow_tracking)
    kept, todo, recorded = [], [], {}
    gold_of = rows_by_day(gold)
    for day in context.partition_keys:
        gold_day = gold_of.get(day, gold.iloc[0:0])
        stored = context.resources.lake.read_stored(SCORES_KEY.path, day)
        if config.rescore:
            todo.append(gold_day)
            recorded[day] = stored
        else:
            keep, new = keep_written_scores(stored, gold_day)
            kept.append(keep)
            todo.append(new)
    to_score = pd.concat(todo, ignore_index=True) if todo else gold.iloc[0:0]
    fresh, fell_back = score_days(to_score, registry, config.decision_threshold, context.run.run_id, context.log)
    frames = [f for f in (*kept, fresh) if len(f)]
    scores = pd.concat(frames, ignore_index=True) if frames else fresh
    if scores.empty:
        scores = pd.DataFrame({"dt": pd.Series(dtype=object), "claim_id": pd.Series(dtype=object),
                               "scored_by": pd.Series(dtype=object)})
    record = {day: rewrites(before, scores[scores["dt"] == day]) for day, before in recorded.items()}
    record = {day: r for day, r in record.items() if r}
    for day, r in record.items():
        context.log.warning(f"re-score of {day} (explicit, run {context.run.run_id}): {r['claims_rewritten']} "
                            f"written scores rewritten ({r['versions']}), {r['claims_kept_identical']} unchanged")
    trained = set(model_weeks.get("week", pd.Series(dtype=str)))
    fresh_of = rows_by_day(fresh)

    def day_checks(rows: pd.DataFrame, day: str) -> list[dg.AssetCheckResult]:
        """The checks of one day, recorded on its partition (a range run records each day's own)."""
        return [*prediction_checks(rows, fresh_of.get(day, fresh.iloc[0:0]), gold_of.get(day, gold.iloc[0:0]),
                                   registry.loaded, config.psi_warn_threshold,
                                   {d: why for d, why in fell_back.items() if d == day}),
                model_week_check(missing_model_weeks([day], trained), registry.loaded)]

    results = checks.per_partition(context.partition_keys, scores, day_checks)
    kept_rows = sum(len(k) for k in kept)
    yield from checks.publish(
        [dg.Output(scores, metadata={
            "model_versions": ", ".join(f"{m.scored_by} v{m.version}" for m in registry.loaded.values()) or "none",
            "flagged_for_review": int((scores.get("decision") == "review").sum()) if len(scores) else 0,
            "decision_threshold": config.decision_threshold,
            "scored_by_fallback": int((scores["scored_by"] == "fallback").sum()) if len(scores) else 0,
            "scores_kept_as_written": kept_rows,
            "rescore": config.rescore,
            "rewrites": dg.MetadataValue.json(record) if record else "none",
        })],
        results, what="predictions/claim_denial_scores", context=context,
    )


@dg.asset(
    key=SHADOW_KEY,
    group_name="predictions",
    partitions_def=scoring_partitions,
    io_manager_key="lake",
    ins={"gold": dg.AssetIn(key=["gold", "claim_features"])},
    backfill_policy=DAILY_BACKFILL_POLICY,
    automation_condition=follow_upstream(),
    kinds={"scikitlearn", "parquet"},
    tags=catalog.tags("predictions", phi=True),  # keyed by claim id (a patient account number)
)
def shadow_scores(context: dg.AssetExecutionContext, gold: pd.DataFrame, mlflow_tracking: MlflowResource) -> pd.DataFrame:
    """What the previous champion, the challengers and the fallback would have said about each claim of
    day D (not the billers' table): the weekly review compares them with the champion on matured labels."""
    registry = Registry(mlflow_tracking)
    frames, roles = [], []
    for day, rows in gold.groupby("dt", sort=True):
        fv = _day_feature_version(rows)
        roster = champion_lib.shadow_roster(registry.events, registry.versions, date.fromisoformat(day), fv)
        for version, role in roster:
            model = registry.model(version)
            frames.append(score(model.model, rows, model_feature_version=model.feature_version, threshold=0.5,
                                stamp={**model.stamp, "dagster_run_id": context.run.run_id}, scored_by="shadow")
                          .assign(role=role))
            roles.append(f"{day}: {role} v{version}")
        fallback = registry.fallback_for(day)
        if fallback is not None and registry.champion_for(day, fv) is not None:
            frames.append(score(fallback.model, rows, model_feature_version=None, threshold=0.5,
                                stamp={**fallback.stamp, "dagster_run_id": context.run.run_id}, scored_by="shadow")
                          .assign(role="fallback"))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        {"dt": pd.Series(dtype=object), "claim_id": pd.Series(dtype=object), "role": pd.Series(dtype=object)})
    context.add_output_metadata({
        "shadow_models": ", ".join(sorted({f"{r} v{v}" for r, v in zip(out.get("role", []),
                                                                        out.get("model_version", []), strict=False)}))
        or "none",
        "rows": len(out),
    })
    return out
