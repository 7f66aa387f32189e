"""`--dry-run` validates for real: the real registry read-only, an `--input` file through every check, and
the real run's exit code — while nothing in the lake, the landing folder, the instance or the registry
changes (listings and registry compared before and after)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from mlflow import MlflowClient

from rcm_assets.cli.main import main
from rcm_assets.lib import settings
from rcm_assets.platform.dry_run import registry_changes, snapshot_registry
from rcm_assets.synthetic import write_landing_file

DAY = "2025-02-03"
MODEL = "rcm_denial_model"


def rcm(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    """`rcm ARGS` in this process (the code location is imported once for all tests): exit code, output."""
    monkeypatch.setenv("RCM_ENV", os.environ.get("RCM_ENV", "dev"))  # main() sets these; undone after the test
    monkeypatch.setenv("RCM_CONFIG", os.environ.get("RCM_CONFIG", ""))
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out + out.err


def listing(*folders: Path) -> dict[str, tuple[int, int]]:
    """Every file under the folders: (size, modification time)."""
    found = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")) if folder.exists() else []:
            if path.is_file():
                st = path.stat()
                found[str(path)] = (st.st_size, st.st_mtime_ns)
    return found


def registry(uri: str) -> dict:
    """Versions with their tags, and the registered model's tags and aliases."""
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return {}  # no registry (opening one would create it)
    client = MlflowClient(tracking_uri=uri)
    found = {"versions": {mv.version: dict(mv.tags) for mv in client.search_model_versions(f"name='{MODEL}'")}}
    try:
        model = client.get_registered_model(MODEL)
        found.update(tags=dict(model.tags), aliases=dict(model.aliases))
    except Exception:  # no registered model yet
        found.update(tags={}, aliases={})
    return found


def runs(home: Path) -> list[str]:
    if not (home / "dagster.yaml").exists():
        return []
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return [r.run_id for r in instance.get_runs()]


@pytest.fixture()
def home(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = isolated_env.parent / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(path))
    return path


@pytest.fixture()
def trained_world(pipeline, isolated_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The session pipeline's lake and registry, copied for this test (the registry by the same snapshot a
    dry run takes, so neither this test's real runs nor its dry runs touch the session's folders)."""
    shutil.copytree(pipeline.data_dir / "lake", isolated_env / "lake")
    shutil.copytree(pipeline.data_dir / "reference", isolated_env / "reference")  # part of feature_version
    shutil.copyfile(pipeline.data_dir / "source.db", isolated_env / "source.db")
    with monkeypatch.context() as mp:
        mp.setenv("RCM_DATA_DIR", str(pipeline.data_dir))
        real_uri = settings.mlflow_tracking_uri()
    uri, artifacts = snapshot_registry(real_uri, tmp_path / "registry")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("RCM_MLFLOW_ARTIFACTS", artifacts)
    return isolated_env


def unchanged_by(dry, world: Path, home: Path) -> tuple[int, str]:
    """Run `dry()` and assert the lake, landing folder, instance and registry are exactly as before."""
    uri = settings.mlflow_tracking_uri()
    artifacts = Path(settings.mlflow_artifact_location().removeprefix("file://"))
    before = (listing(world, artifacts), runs(world.parent / "dagster_home"), registry(uri))
    code, out = dry()
    after = (listing(world, artifacts), runs(world.parent / "dagster_home"), registry(uri))
    changed = sorted(k for k in before[0].keys() | after[0].keys() if before[0].get(k) != after[0].get(k))
    assert changed == [], out
    assert after[1:] == before[1:], out
    return code, out


def input_file(source, folder: Path, corrupt_share: float = 0.0) -> Path:
    """A claims landing file of DAY; with `corrupt_share`, that share of its rows are new claims whose
    billing NPI fails its check digit (a contract violation only silver sees)."""
    path = write_landing_file(source.data, pd.Timestamp(DAY).date(), folder, fmt="csv")
    if corrupt_share:
        rows = pd.read_csv(path, dtype=str, keep_default_na=False)
        bad = rows.sample(frac=corrupt_share, random_state=1).index
        rows.loc[bad, "claim_id"] = rows.loc[bad, "claim_id"] + "-X"
        rows.loc[bad, "billing_npi"] = "1234567890"
        rows.to_csv(path, index=False)
    return path


def test_extract_input_dry_run_checks_the_files_rows_and_exits_like_the_real_run(
        source_in_data_dir, isolated_env, home, tmp_path, monkeypatch, capsys):
    good = input_file(source_in_data_dir, tmp_path / "good")
    bad = input_file(source_in_data_dir, tmp_path / "bad", corrupt_share=0.3)
    garbage = tmp_path / f"claims_{DAY}_broken.csv"
    garbage.write_text("claim_id,member_id\n\x00\x01,")

    for path, expected in ((garbage, 2), (good, 0), (bad, 1)):
        dry_code, dry_out = unchanged_by(lambda p=path: rcm(monkeypatch, capsys, "extract", "--input", str(p),
                                                            "--dry-run"), isolated_env, home)
        assert dry_code == expected, dry_out
        real_code, real_out = rcm(monkeypatch, capsys, "extract", "--input", str(path))
        assert real_code == dry_code, real_out
        if expected == 1:  # the file's own rows broke the contract: one line naming asset, partition, reason
            failed = [line for line in dry_out.splitlines() if line.startswith("FAILED")]
            assert any("silver/claims" in line and DAY in line and "reject rate" in line for line in failed), dry_out
            assert "Traceback" not in dry_out
        if expected == 0:
            assert f"landing: would copy {path}" in dry_out and "lake: bronze/claims" in dry_out
            assert (isolated_env / "landing" / path.name).is_file()  # the real run copied it


def test_predict_dry_run_scores_with_the_real_champion(trained_world, home, monkeypatch, capsys):
    day = "2025-05-14"
    code, out = unchanged_by(lambda: rcm(monkeypatch, capsys, "predict", "--date", day, "--dry-run"),
                             trained_world, home)
    assert code == 0, out
    real_code, real_out = rcm(monkeypatch, capsys, "predict", "--date", day)
    assert real_code == 0, real_out
    scored = pd.read_parquet(trained_world / "lake" / "predictions" / "claim_denial_scores" / f"dt={day}")
    assert f"lake: predictions/claim_denial_scores: {len(scored):,} rows in 1 partition(s)" in out
    assert "no champion" not in out


def test_train_dry_run_gates_against_the_real_registry(trained_world, home, pipeline, monkeypatch, capsys):
    """The last trained week was promoted: its re-training is refused without --force, dry or real
    (a throwaway registry has no promotion to refuse, so a dry run there would train and pass)."""
    week = pipeline.weeks[-1]
    code, out = unchanged_by(lambda: rcm(monkeypatch, capsys, "train", "--date", week, "--dry-run"),
                             trained_world, home)
    assert code == 1 and "already promoted" in out, out
    assert rcm(monkeypatch, capsys, "train", "--date", week)[0] == 1


@pytest.mark.slow
def test_forced_train_dry_run_announces_the_registry_changes_of_the_real_run(trained_world, home, pipeline, tmp_path,
                                                                              monkeypatch, capsys):
    """The registry changes the dry run announces are the ones the real run then makes."""
    week = pipeline.weeks[-1]
    uri = settings.mlflow_tracking_uri()
    code, out = unchanged_by(lambda: rcm(monkeypatch, capsys, "train", "--date", week, "--force", "--dry-run"),
                             trained_world, home)
    assert code == 0, out
    announced = [line.strip().removeprefix("MLflow: ") for line in out.splitlines()
                 if line.strip().startswith("MLflow: ") and "would register no model version" not in line]
    before_uri, _ = snapshot_registry(uri, tmp_path / "before")
    real_code, real_out = rcm(monkeypatch, capsys, "train", "--date", week, "--force")
    assert real_code == 0, real_out
    made = registry_changes(MlflowClient(tracking_uri=before_uri), MlflowClient(tracking_uri=uri), MODEL)
    assert announced == made


@pytest.mark.slow
def test_a_forced_backfill_retrains_promoted_weeks_reason_model_included(trained_world, home, pipeline,
                                                                          monkeypatch, capsys):
    """`rcm backfill --select model --force` (after a feature change) re-trains a promoted week as
    `rcm train --force` does: it used to force the denial model only, and the week's reason model, promoted
    by the forced train before it, refused the week and failed the backfill."""
    week = pipeline.weeks[-1]
    code, out = rcm(monkeypatch, capsys, "train", "--date", week, "--force")
    assert code == 0, out
    code, out = rcm(monkeypatch, capsys, "backfill", "--select", "model", "--start", week, "--end", week, "--force")
    assert code == 0 and "already promoted" not in out, out
    assert "weekly models: ok" in out
    reasons = pd.read_parquet(trained_world / "lake" / "model" / "denial_reason_model" / f"week={week}")
    assert len(reasons) == 1


def test_prod_config_train_dry_run_on_a_tracking_server_is_refused_plainly(home, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    code, out = rcm(monkeypatch, capsys, "train", "--date", "2025-05-12", "--dry-run")
    assert code == 2 and "needs a SQLite tracking store" in out
