"""model/denial_model: the point-in-time window, what each training logs to MLflow, and the quality gate.

Read-only assertions use the session `pipeline` (weeks 2025-04-28 … trained once, all promoted). The
gate and the point-in-time retraining need their own registry, so `gated` copies the pipeline's gold,
silver remittances and reference files into a fresh data folder with an empty MLflow store and runs, in order:

  A. week W1 with ModelConfig(auc_floor=0.99)       -> blocking gate fails (ERROR), nothing promoted
  -- remittance corrections reaching the source on W1's first day flip two W1 training labels, and
     that day is extracted (bronze + silver remittances) --
  B. week W1 with the default config                  -> promoted (first week, no champion); its training
                                                         data and metrics equal A's (point in time)
  C. week W2 with ModelConfig(max_auc_drop=-1.0)     -> must beat the champion by 1.0: WARN, not promoted
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from rcm_assets.defs import partitions
from rcm_assets.defs.model import GATE_CHECK, MODEL_KEY
from rcm_assets.defs.training_set import training_window
from rcm_assets.lib import champion as champion_lib
from rcm_assets.lib import modelling
from rcm_assets.lib.settings import sqlite_url
from rcm_assets_tests.conftest import failure_text

PHI_KEY = "test-phi-key-0123456789abcdef"
SOURCE_TS = "%Y-%m-%d %H:%M:%S.%f"


def day_range(first: date, last: date) -> list[str]:
    """ISO days first..last inclusive."""
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def mapped_days(mapping, week: str) -> list[str]:
    """Daily partition keys the mapping loads for model week `week` (Dagster's own mapping API)."""
    subset = partitions.weekly_partitions.empty_subset().with_partition_keys([week])
    result = mapping.get_upstream_mapped_partitions_result_for_partitions(
        subset, partitions.weekly_partitions, partitions.daily_partitions)
    assert not list(result.required_but_nonexistent_subset.get_partition_keys())
    return sorted(result.partitions_subset.get_partition_keys())


def model_row(data_dir: Path, week: str) -> pd.Series:
    frame = pd.read_parquet(data_dir / "lake" / "model" / "denial_model" / f"week={week}" / "part-0.parquet")
    assert len(frame) == 1
    return frame.assign(week=week).iloc[0]  # the partition column lives in the path, not the file


def mlflow_client(data_dir: Path):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=sqlite_url(data_dir / "mlflow" / "mlflow.db"))


def gate_evaluation(result):
    found = [e for e in result.get_asset_check_evaluations()
             if e.check_name == GATE_CHECK and e.asset_key == MODEL_KEY]
    assert len(found) == 1, [e.check_name for e in result.get_asset_check_evaluations()]
    return found[0]


# --------------------------------------------------------------------------------------------------
# The window: partition mappings (pure)
# --------------------------------------------------------------------------------------------------


def model_weeks_to_check() -> list[str]:
    """The first model weeks (window clipped at the partitions start) and one whose window is not clipped."""
    keys = partitions.weekly_partitions.get_partition_keys()
    unclipped = [k for k in keys if date.fromisoformat(k) - timedelta(days=260) >= partitions.PARTITIONS_START]
    return keys[:3] + unclipped[:1]


@pytest.mark.parametrize("week", model_weeks_to_check())
def test_feature_mapping_covers_the_training_window_and_nothing_near_the_cutoff(week):
    W = date.fromisoformat(week)
    start, end, cutoff = training_window(W)
    assert (cutoff.date(), end.date(), start.date()) == (
        W, W - timedelta(days=partitions.LABEL_HORIZON_DAYS),
        W - timedelta(days=partitions.LABEL_HORIZON_DAYS + partitions.TRAIN_WINDOW_DAYS))
    loaded = mapped_days(partitions.TRAINING_FEATURES_MAPPING, week)

    # every gold day of [W - 240d, W - 60d) that exists is loaded, with no gaps
    wanted = [d for d in day_range(start.date(), end.date() - timedelta(days=1))
              if d >= partitions.PARTITIONS_START.isoformat()]
    assert set(wanted) <= set(loaded)
    assert loaded == day_range(date.fromisoformat(loaded[0]), date.fromisoformat(loaded[-1]))
    # Weekly offsets cannot express 240 days exactly: the start is the tightest whole-week cover. Gold is
    # read up to the day before W (corrected versions of window claims land later); never day W or after.
    first, last = date.fromisoformat(loaded[0]), date.fromisoformat(loaded[-1])
    assert first >= max(start.date() - timedelta(days=6), partitions.PARTITIONS_START)
    assert last == W - timedelta(days=1)


@pytest.mark.parametrize("week", model_weeks_to_check())
def test_outcome_mapping_stops_the_day_before_the_week(week):
    W = date.fromisoformat(week)
    start, _, _ = training_window(W)
    loaded = mapped_days(partitions.TRAINING_OUTCOMES_MAPPING, week)
    assert max(loaded) == (W - timedelta(days=1)).isoformat()  # everything that reached the source before W
    assert all(d < week for d in loaded)  # no outcome day >= W
    assert min(loaded) <= max(start.date(), partitions.PARTITIONS_START).isoformat()
    assert loaded == day_range(date.fromisoformat(loaded[0]), W - timedelta(days=1))


# --------------------------------------------------------------------------------------------------
# What a pipeline training logs (read-only, session pipeline)
# --------------------------------------------------------------------------------------------------


def test_every_pipeline_week_is_logged_registered_and_tagged(pipeline, tmp_path):
    import mlflow
    from mlflow.models import get_model_info

    client = mlflow_client(pipeline.data_dir)
    run_id = pipeline.results["model"].run_id
    assert pipeline.results["model"].success
    for week in pipeline.weeks:
        row = model_row(pipeline.data_dir, week)
        start, end, cutoff = training_window(date.fromisoformat(week))
        run = client.get_run(row["mlflow_run_id"])
        params, metrics = run.data.params, run.data.metrics

        # the data window, the feature code and the knobs
        assert params["week"] == week
        assert pd.Timestamp(params["window_start"]) == start
        assert pd.Timestamp(params["window_end"]) == end
        assert pd.Timestamp(params["cutoff"]) == cutoff
        assert params["feature_version"] == row["feature_version"]
        for knob in ("seed", "holdout_fraction", "window_days", "horizon_days"):
            assert knob in params
        # discrimination, calibration, counts
        for name in ("holdout_roc_auc", "holdout_pr_auc", "holdout_brier", "holdout_log_loss", "holdout_ece"):
            assert 0.0 <= metrics[name] <= (1.0 if name != "holdout_log_loss" else 10.0), name
        assert metrics["holdout_roc_auc"] == pytest.approx(row["holdout_roc_auc"])
        assert metrics["labelled"] == row["labelled"] > 0
        assert metrics["train_rows"] + metrics["holdout_rows"] == metrics["labelled"]
        assert "unlabelled" in metrics and 0.0 < metrics["denial_rate"] < 1.0
        # plots and the reliability table
        plots = sorted(a.path for a in client.list_artifacts(run.info.run_id, "plots"))
        assert plots == ["plots/calibration.png", "plots/feature_importance.png",
                         "plots/precision_recall.png", "plots/roc.png"]
        local = Path(client.download_artifacts(run.info.run_id, "plots", str(tmp_path)))
        assert all((local / Path(p).name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in plots)
        # the registered model: signature, source run, Dagster lineage tags
        version = client.get_model_version(row["model_name"], row["model_version"])
        assert version.run_id == run.info.run_id
        assert version.tags["dagster_run_id"] == run_id == run.data.tags["dagster_run_id"]
        assert version.tags["dagster_partition"] == week == run.data.tags["dagster_partition"]
        assert version.tags["feature_version"] == row["feature_version"]
        mlflow.set_tracking_uri(client.tracking_uri)
        info = get_model_info(f"models:/{row['model_name']}/{row['model_version']}")
        assert info.signature is not None
        assert "payer_id" in info.signature.inputs.input_names()
        assert "claim_id" not in info.signature.inputs.input_names()


def test_pipeline_rows_record_the_gate_decision(pipeline):
    client = mlflow_client(pipeline.data_dir)
    rows = [model_row(pipeline.data_dir, w) for w in pipeline.weeks]
    assert rows[0]["champion_version_before"] is None and rows[0]["promoted"]
    for previous, row in zip(rows, rows[1:], strict=False):
        assert row["champion_version_before"] == previous["serving_version"]
    for row in rows:
        assert row["serving_version"] == (row["model_version"] if row["promoted"] else row["champion_version_before"])
        assert champion_lib.champion_as_of(client, row["model_name"], date.fromisoformat(row["week"])) == (
            row["serving_version"])


# --------------------------------------------------------------------------------------------------
# Fresh registry: the gate in both directions and the point-in-time retraining
# --------------------------------------------------------------------------------------------------


@dataclass
class Gated:
    data_dir: Path
    w1: str
    w2: str
    late_day: str
    flipped: dict[str, str]  # claim_id -> kind of correction
    results: dict  # "A" | "extract" | "B" | "C" -> ExecuteInProcessResult
    rows: dict  # run label -> stored model row after that run
    champion_after: dict  # run label -> alias version (or None)
    history_after: dict  # run label -> number of promotion events
    registered: dict  # moment -> number of registered versions


def append_corrections(source_db: Path, lake: Path, week: str, late_day: date) -> dict[str, str]:
    """Flip the outcome of two paid W1 training claims with rows that reach the source on `late_day`.

    One correction is adjudicated on `late_day` (at or after W1); the other was adjudicated hours before
    W1 but reached the source only on `late_day` (a late-arriving correction). Neither was known at W1.
    """
    W = date.fromisoformat(week)
    start, end, cutoff = training_window(W)
    gold = pd.concat(pd.read_parquet(lake / "gold" / "claim_features" / f"dt={d}" / "part-0.parquet",
                                     columns=["claim_id", "claim_version", "submitted_at"])
                     for d in mapped_days(partitions.TRAINING_FEATURES_MAPPING, week))
    in_window = gold[(gold["submitted_at"] >= start) & (gold["submitted_at"] < end)]
    with sqlite3.connect(source_db) as con:
        remits = pd.read_sql("SELECT * FROM remittances", con)
        per_claim = remits.groupby("claim_id").size()
        single_paid = remits[remits["claim_status"].eq("paid")
                             & remits["claim_id"].map(per_claim).eq(1)
                             & remits["claim_id"].isin(in_window["claim_id"])
                             & (pd.to_datetime(remits["updated_at"]) < cutoff)]
        chosen = single_paid.sort_values("claim_id").head(2)
        assert len(chosen) == 2
        adjudicated = [pd.Timestamp(late_day) + pd.Timedelta(hours=9),
                       pd.Timestamp(W) - pd.Timedelta(hours=6)]
        arrived = pd.Timestamp(late_day) + pd.Timedelta(hours=10)
        rows = chosen.assign(claim_status="denied", paid_amount=0.0, carc_code="197", rarc_code="N54",
                             adjudicated_at=[t.strftime(SOURCE_TS) for t in adjudicated],
                             updated_at=arrived.strftime(SOURCE_TS))
        rows.to_sql("remittances", con, if_exists="append", index=False)
    kinds = ["adjudicated after the cutoff", "adjudicated before, arrived after the cutoff"]
    return dict(zip(chosen["claim_id"], kinds, strict=True))


@pytest.fixture(scope="module")
def gated(pipeline, tmp_path_factory: pytest.TempPathFactory) -> Gated:
    import dagster as dg
    from threadpoolctl import threadpool_limits

    from rcm_assets.defs import bronze, model, silver, training_set
    from rcm_assets.platform.resources import build_resources
    from rcm_assets_tests.conftest import ENV_VARS, materialize_range

    data_dir = tmp_path_factory.mktemp("gated") / "data"
    (data_dir / "lake" / "silver").mkdir(parents=True)
    shutil.copytree(pipeline.data_dir / "lake" / "gold", data_dir / "lake" / "gold")
    shutil.copytree(pipeline.data_dir / "lake" / "silver" / "remittances",
                    data_dir / "lake" / "silver" / "remittances")
    shutil.copyfile(pipeline.source.source_db, data_dir / "source.db")
    # the hospital's reference files enter the feature version: without them the copied gold would be of
    # another feature_version and no row of it could train
    shutil.copytree(pipeline.data_dir / "reference", data_dir / "reference")
    w1, w2 = pipeline.weeks[0], pipeline.weeks[1]
    # the cutoff day itself: the first day W1 must not see, and inside W1's own week, so even an outcome
    # mapping that wrongly reached into W1 would load it and leave only the cut in `training_frame`
    late_day = date.fromisoformat(w1)
    assert late_day <= pipeline.source.end

    results, rows, champions, histories, versions = {}, {}, {}, {}, {}
    with pytest.MonkeyPatch.context() as mp, threadpool_limits(limits=1, user_api="openmp"):
        for name in ENV_VARS:
            mp.delenv(name, raising=False)
        mp.setenv("RCM_DATA_DIR", str(data_dir))
        mp.setenv("RCM_PHI_KEY", PHI_KEY)
        resources = build_resources("dev")
        instance = dg.DagsterInstance.ephemeral()
        client = mlflow_client(data_dir)
        name = resources["mlflow_tracking"].model_name

        def train(label: str, week: str, **config) -> None:
            run_config = {"ops": {"model__denial_model": {"config": config}}} if config else None
            results[label] = materialize_range([training_set.training_set, model.denial_model], week, week, instance, resources,
                                               run_config=run_config)
            rows[label] = model_row(data_dir, week)
            champions[label] = champion_lib.current_champion(client, name)
            histories[label] = len(champion_lib.history(client, name))

        train("A", w1, auc_floor=0.99)
        flipped = append_corrections(data_dir / "source.db", data_dir / "lake", w1, late_day)
        results["extract"] = materialize_range([bronze.remittances, silver.remittances], late_day.isoformat(),
                                               late_day.isoformat(), instance, resources)
        train("B", w1)
        train("C", w2, max_auc_drop=-1.0)
        versions["before_rerun"] = len(client.search_model_versions(f"name = '{name}'"))
        train("D", w1)  # w1 promoted B's version: a plain re-run is refused
        versions["after_refused_rerun"] = len(client.search_model_versions(f"name = '{name}'"))
        train("E", w1, force=True, auc_floor=0.5)
    return Gated(data_dir, w1, w2, late_day.isoformat(), flipped, results, rows, champions, histories, versions)


def test_gate_below_the_floor_blocks_and_promotes_nothing(gated):
    result, row = gated.results["A"], gated.rows["A"]
    assert not result.success  # a blocking ERROR check fails the run
    evaluation = gate_evaluation(result)
    assert not evaluation.passed
    assert evaluation.severity.value == "ERROR"
    assert not row["promoted"] and row["gate"] == "error"
    assert row["serving_version"] is None  # nothing serves: there was no champion and none was made
    assert gated.champion_after["A"] is None and gated.history_after["A"] == 0  # alias untouched

    decision = evaluation.metadata["decision"].value
    assert decision == f"Week {gated.w1}: {row['gate_sentence']}"
    for part in ("Not promoted", "ROC AUC", f"{row['holdout_roc_auc']:.4f}", "floor 0.9900",
                 "no version is champion yet"):
        assert part in decision
    assert decision.count(". ") == 0 and decision.endswith(".")  # one sentence
    assert evaluation.metadata["metric"].value == "holdout ROC AUC"
    assert evaluation.metadata["floor"].value == pytest.approx(0.99)
    assert evaluation.description == decision


def test_gate_promotes_the_first_week_when_there_is_no_champion(gated):
    result, row = gated.results["B"], gated.rows["B"]
    assert result.success
    evaluation = gate_evaluation(result)
    assert evaluation.passed
    assert row["promoted"] and row["gate"] == "pass" and row["champion_version_before"] is None
    assert row["serving_version"] == row["model_version"] == gated.champion_after["B"]
    # A registered a version on the same training data and never promoted it: B reuses it (issue 13.4)
    assert row["model_version"] == gated.rows["A"]["model_version"] and row["reused_registered_version"]
    assert "no comparable champion" in evaluation.metadata["decision"].value
    assert gated.history_after["B"] == 1
    # a one-week run without a comparison still stores the comparison columns as floats, so the weeks'
    # files read as one table (they were stored as text, and `rcm demo` failed to read the model rows)
    import pyarrow.parquet as pq

    schema = pq.read_schema(gated.data_dir / "lake" / "model" / "denial_model" / f"week={gated.w1}" / "part-0.parquet")
    assert str(schema.field("champion_auc_on_holdout").type) == "double"
    assert str(schema.field("candidate_auc_vs_champion").type) == "double"


def test_gate_keeps_the_champion_when_the_candidate_is_worse_by_more_than_the_margin(gated):
    result, row, champion = gated.results["C"], gated.rows["C"], gated.rows["B"]["model_version"]
    assert result.success  # WARN does not block
    evaluation = gate_evaluation(result)
    assert not evaluation.passed
    assert evaluation.severity.value == "WARN"
    assert not row["promoted"] and row["gate"] == "warn"
    assert row["champion_version_before"] == champion
    assert row["serving_version"] == champion
    assert row["champion_auc_on_holdout"] is not None
    assert gated.champion_after["C"] == champion and gated.history_after["C"] == 1
    client = mlflow_client(gated.data_dir)
    assert champion_lib.champion_as_of(client, row["model_name"], date.fromisoformat(gated.w2)) == champion
    decision = evaluation.metadata["decision"].value
    for part in ("Not promoted", f"{row['holdout_roc_auc']:.4f}", f"v{champion}",
                 f"{row['champion_auc_on_holdout']:.4f}", "margin -1.0000", f"v{champion} stays champion"):
        assert part in decision
    assert decision.count(". ") == 0 and decision.endswith(".")


def test_a_correction_known_only_after_the_cutoff_cannot_change_the_training_set(gated):
    # the corrections really reached the lake (silver remittances of the later day), flipped to denied
    assert gated.results["extract"].success
    late = pd.read_parquet(gated.data_dir / "lake" / "silver" / "remittances" / f"dt={gated.late_day}"
                           / "part-0.parquet")
    corrected = late[late["claim_id"].isin(list(gated.flipped))]
    assert set(corrected["claim_id"]) == set(gated.flipped) and corrected["denied"].all()

    before, after = gated.rows["A"], gated.rows["B"]
    for stat in ("labelled", "unlabelled", "train_rows", "holdout_rows", "holdout_roc_auc",
                 "holdout_pr_auc", "holdout_brier", "window_start", "window_end", "cutoff"):
        assert after[stat] == before[stat], stat
    # the same data fingerprint (claims, labels, feature version, parameters): the corrections arrived
    # after the cutoff, so B trains on exactly A's rows and reuses A's registered version and MLflow run
    assert after["data_fingerprint"] == before["data_fingerprint"]
    assert after["mlflow_run_id"] == before["mlflow_run_id"] and after["model_version"] == before["model_version"]


def test_later_adjudications_never_relabel_but_an_earlier_arrival_does(gated):
    """The flipped rows are later adjudications (appeals): even once known they never relabel the first
    adjudication (the old rule, latest row wins, flipped the label from one week's model to the next).
    The label is the first answer to arrive: a restatement arriving later does not relabel either;
    positive control: the same flip arriving *before* the first adjudication's row does."""
    lake, W = gated.data_dir / "lake", date.fromisoformat(gated.w1)
    start, end, cutoff = training_window(W)
    gold = pd.concat(pd.read_parquet(lake / "gold" / "claim_features" / f"dt={d}" / "part-0.parquet").assign(dt=d)
                     for d in mapped_days(partitions.TRAINING_FEATURES_MAPPING, gated.w1))
    days = mapped_days(partitions.TRAINING_OUTCOMES_MAPPING, gated.w1) + [gated.late_day]
    outcomes = pd.concat(pd.read_parquet(lake / "silver" / "remittances" / f"dt={d}" / "part-0.parquet",
                                         columns=["claim_id", "adjudicated_at", "updated_at", "denied"])
                         for d in days if (lake / "silver" / "remittances" / f"dt={d}").exists())

    def labels(at: pd.Timestamp) -> pd.Series:
        ts = modelling.training_frame(gold, outcomes, at, start, end)
        return ts.y.set_axis(ts.claim_keys["claim_id"])

    at_cutoff = labels(cutoff)  # the later rows are in the frame, the cut must drop them
    assert (at_cutoff.loc[list(gated.flipped)] == 0).all()
    assert len(at_cutoff) == gated.rows["B"]["labelled"]
    later = labels(pd.Timestamp(gated.late_day) + pd.Timedelta(days=1))
    assert (later.loc[list(gated.flipped)] == 0).all()

    first = outcomes[outcomes["claim_id"].isin(list(gated.flipped)) & ~outcomes["denied"]]
    known = outcomes  # `labels` reads `outcomes` when called
    outcomes = pd.concat([known, first.assign(denied=True, updated_at=cutoff - pd.Timedelta(hours=1))],
                         ignore_index=True)
    assert (labels(cutoff).loc[list(gated.flipped)] == 0).all()
    outcomes = pd.concat([known, first.assign(denied=True, updated_at=first["updated_at"] - pd.Timedelta(minutes=1))],
                         ignore_index=True)
    assert (labels(cutoff).loc[list(gated.flipped)] == 1).all()


def test_a_week_trains_on_the_same_rows_alone_as_inside_a_multi_week_run(pipeline, gated):
    """The pipeline trained W1 in one run with W2 and W3 (gold loaded up to W3's window); `gated` trained
    W1 alone. The training set of a partition must not depend on which other weeks share its run."""
    in_range, alone = model_row(pipeline.data_dir, gated.w1), gated.rows["B"]
    assert len(pipeline.weeks) > 1
    for stat in ("labelled", "unlabelled", "train_rows", "holdout_rows"):
        assert alone[stat] == in_range[stat], stat
    metrics_range = mlflow_client(pipeline.data_dir).get_run(in_range["mlflow_run_id"]).data.metrics
    metrics_alone = mlflow_client(gated.data_dir).get_run(alone["mlflow_run_id"]).data.metrics
    assert metrics_alone["denial_rate"] == metrics_range["denial_rate"]
    assert metrics_alone["holdout_positive_rate"] == metrics_range["holdout_positive_rate"]
    assert metrics_alone["holdout_roc_auc"] == pytest.approx(metrics_range["holdout_roc_auc"], abs=1e-9)


def test_the_stored_training_set_is_the_weeks_point_in_time_set(pipeline):
    """model/training_set selects on gold's keys, then reads the chosen rows' features day by day: what it
    stored for each week equals the set built from the whole window in memory (same rows, order, features,
    labels, first adjudications and stats), and the denial model trained on that many rows."""
    from upath import UPath

    from rcm_assets.defs.training_set import stored_training_set, week_gold_days, week_training_set
    from rcm_assets.platform.io_manager import HiveParquetIOManager

    lake_dir = pipeline.data_dir / "lake"
    lake = HiveParquetIOManager(UPath(lake_dir))
    for week in pipeline.weeks:
        W = date.fromisoformat(week)
        gold = pd.concat(pd.read_parquet(lake_dir / "gold" / "claim_features" / f"dt={d}" / "part-0.parquet")
                         .assign(dt=d) for d in sorted(week_gold_days(W)))
        days = mapped_days(partitions.TRAINING_OUTCOMES_MAPPING, week)
        outcomes = pd.concat(pd.read_parquet(lake_dir / "silver" / "remittances" / f"dt={d}" / "part-0.parquet")
                             for d in days if (lake_dir / "silver" / "remittances" / f"dt={d}").exists())
        expected = week_training_set(W, gold.reset_index(drop=True), outcomes.reset_index(drop=True),
                                     gold["feature_version"].iloc[0])
        stored = stored_training_set(lake, week)
        assert stored.stats == expected.stats and stored.stats["labelled"] > 1_000
        pd.testing.assert_frame_equal(stored.X, expected.X)
        pd.testing.assert_frame_equal(stored.claim_keys, expected.claim_keys)
        assert (stored.y.to_numpy() == expected.y.to_numpy()).all()
        pd.testing.assert_frame_equal(stored.first_outcome, expected.first_outcome)
        assert model_row(pipeline.data_dir, week)["labelled"] == stored.stats["labelled"]


def test_each_week_of_a_training_set_run_records_its_own_figures(pipeline):
    """One run builds several weeks (the fixture's run holds every week): each week's materialization
    carries that week's rows, labels and window, not the run's totals copied onto every week."""
    events = {e.partition: e.step_materialization_data.materialization.metadata
              for e in pipeline.results["model"].get_asset_materialization_events()
              if e.asset_key.to_user_string() == "model/training_set"}
    assert sorted(events) == pipeline.weeks and len(events) > 1
    for week, metadata in events.items():
        stored = pd.read_parquet(pipeline.data_dir / "lake" / "model" / "training_set" / f"week={week}")
        assert metadata["dagster/row_count"].value == len(stored)
        assert metadata["labelled"].value == model_row(pipeline.data_dir, week)["labelled"]
        start, end, cutoff = training_window(date.fromisoformat(week))
        assert metadata["training_window"].value == f"{start.date()}..{end.date()}"
        assert metadata["cutoff"].value == week and metadata["path"].value.endswith("part-0.parquet")


def test_re_running_a_promoted_week_is_refused_without_force(gated):
    """Issue 13.1: a second `rcm train` of a promoted week used to compare the new version with the week's
    own earlier one and become champion for every day of the week, re-scoring days billers worked from."""
    result = gated.results["D"]
    assert not result.success
    text = failure_text(result)
    assert f"model week {gated.w1} already promoted v{gated.rows['B']['model_version']}" in text
    assert "--force" in text
    assert gated.registered["after_refused_rerun"] == gated.registered["before_rerun"]  # nothing registered
    assert gated.history_after["D"] == gated.history_after["C"]


def test_a_forced_re_run_never_changes_who_served_days_already_scored(gated):
    result, row = gated.results["E"], gated.rows["E"]
    assert result.success
    # compared with the champion as of the day before the week (none), not with the week's own version
    assert row["champion_version_before"] is None
    # the same data as B's run (same fingerprint): B's registered version is reused, not duplicated
    assert row["model_version"] == gated.rows["B"]["model_version"] and row["reused_registered_version"]
    assert row["data_fingerprint"] == gated.rows["B"]["data_fingerprint"]
    client = mlflow_client(gated.data_dir)
    name = row["model_name"]
    for day in pd.date_range(gated.w1, periods=7, freq="D"):
        assert champion_lib.champion_as_of(client, name, day.date()) == gated.rows["B"]["model_version"]
    if row["promoted"]:  # from today on, the re-trained week's version serves
        today = datetime.now(UTC).date()
        assert champion_lib.champion_as_of(client, name, today) == row["model_version"]


def test_nothing_is_promoted_when_the_weeks_row_cannot_be_written(gated, monkeypatch):
    """Issue 13.4: promotions happened inside the week loop, before the row was stored; a failed write
    left a champion with no lake row. Now the gate's promotion follows the write."""
    import dagster as dg

    from rcm_assets.defs import model, training_set
    from rcm_assets.platform.io_manager import HiveParquetIOManager
    from rcm_assets.platform.resources import build_resources
    from rcm_assets_tests.conftest import ENV_VARS, materialize_range

    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RCM_DATA_DIR", str(gated.data_dir))
    monkeypatch.setenv("RCM_PHI_KEY", PHI_KEY)
    real_write = HiveParquetIOManager._write_files

    def failing_write(self, tables):
        if any("denial_model" in str(path) for path in tables):
            raise OSError("the lake is full")
        return real_write(self, tables)

    monkeypatch.setattr(HiveParquetIOManager, "_write_files", failing_write)
    client = mlflow_client(gated.data_dir)
    name = gated.rows["C"]["model_name"]
    events_before = len(champion_lib.history(client, name))
    serving_before = champion_lib.champion_as_of(client, name, date.max)
    run_config = {"ops": {"model__denial_model": {"config": {"force": True, "auc_floor": 0.5,
                                                             "max_auc_drop": 1.0}}}}
    result = materialize_range([training_set.training_set, model.denial_model], gated.w2, gated.w2, dg.DagsterInstance.ephemeral(),
                               build_resources("dev"), run_config=run_config)
    assert not result.success and "the lake is full" in failure_text(result)
    assert len(champion_lib.history(client, name)) == events_before
    assert champion_lib.champion_as_of(client, name, date.max) == serving_before


def test_a_re_run_after_a_failed_write_reuses_the_registered_version(gated, monkeypatch):
    """Issue 13.4: a run that registered its version and then failed left a registered version behind; the
    re-run registered a second one for the same week and data. Now the re-run finds it by fingerprint."""
    import dagster as dg

    from rcm_assets.defs import model, partitions, training_set
    from rcm_assets.lib import fallback as fallback_lib
    from rcm_assets.platform.io_manager import HiveParquetIOManager
    from rcm_assets.platform.resources import build_resources
    from rcm_assets_tests.conftest import ENV_VARS, materialize_range

    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RCM_DATA_DIR", str(gated.data_dir))
    monkeypatch.setenv("RCM_PHI_KEY", PHI_KEY)
    week = [k for k in partitions.weekly_partitions.get_partition_keys() if k > gated.w2][0]
    client = mlflow_client(gated.data_dir)
    name = gated.rows["C"]["model_name"]

    def of_week(registered_name: str) -> list:
        return [mv for mv in client.search_model_versions(f"name = '{registered_name}'")
                if mv.tags.get("dagster_partition") == week]

    real_write = HiveParquetIOManager._write_files

    def failing_write(self, tables):
        if any("denial_model" in str(path) for path in tables):
            raise OSError("the lake is full")
        return real_write(self, tables)

    run_config = {"ops": {"model__denial_model": {"config": {"auc_floor": 0.5, "max_auc_drop": 1.0}}}}
    with monkeypatch.context() as failing:
        failing.setattr(HiveParquetIOManager, "_write_files", failing_write)
        failed = materialize_range([training_set.training_set, model.denial_model], week, week, dg.DagsterInstance.ephemeral(),
                                   build_resources("dev"), run_config=run_config)
    assert not failed.success
    registered = of_week(name)
    assert len(registered) == 1 and len(of_week(fallback_lib.registered_name(name))) == 1
    assert champion_lib.promoted_for_week(champion_lib.history(client, name), date.fromisoformat(week)) is None

    result = materialize_range([training_set.training_set, model.denial_model], week, week, dg.DagsterInstance.ephemeral(),
                               build_resources("dev"), run_config=run_config)
    assert result.success, failure_text(result)
    row = model_row(gated.data_dir, week)
    assert row["reused_registered_version"] and row["model_version"] == str(registered[0].version)
    assert len(of_week(name)) == 1 and len(of_week(fallback_lib.registered_name(name))) == 1
    assert row["promoted"]  # promoted once, now that its row is written
    events = champion_lib.history(client, name)
    assert (events["reason"] == champion_lib.gate_reason(date.fromisoformat(week))).sum() == 1
    sentence = events.iloc[-1]["sentence"]
    assert sentence.startswith(f"Week {week}: Promoted") and f"v{row['model_version']} serves from {week}" in sentence
