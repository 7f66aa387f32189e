"""`--config FILE` on the CLI: validated (exit 2 naming file and key), secrets refused, prod satisfied by the
file for everything but secrets, and a value in the file changes what a run does."""

from __future__ import annotations

from pathlib import Path

import pytest

from rcm_assets_tests.cli.test_dry_run import DAY, home, input_file, rcm, trained_world  # noqa: F401

REPO = Path(__file__).resolve().parents[2]


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rcm.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_bad_config_file_is_a_usage_error_naming_file_and_key(tmp_path, home, monkeypatch, capsys, where):  # noqa: F811
    path = config(tmp_path, "gate:\n  auc_flor: 0.8\n")
    args = (["--config", str(path), "status"] if where == "before" else ["status", "--config", str(path)])
    code, out = rcm(monkeypatch, capsys, *args)
    assert code == 2 and str(path) in out and "unknown key gate.auc_flor" in out


def test_a_secret_in_the_config_file_is_refused(tmp_path, home, monkeypatch, capsys):  # noqa: F811
    path = config(tmp_path, "source:\n  url: postgresql://rcm:s3cret@db/claims\n")
    code, out = rcm(monkeypatch, capsys, "extract", "--date", DAY, "--config", str(path))
    assert code == 2 and "source.url is a URL with a password" in out and "s3cret" not in out


def test_prod_config_gives_every_setting_but_the_secrets(home, monkeypatch, capsys):  # noqa: F811
    for name in ("RCM_SOURCE_URL", "RCM_LAKE_URL", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("RCM_PHI_KEY")
    code, out = rcm(monkeypatch, capsys, "--env", "prod", "--config", str(REPO / "configs" / "prod.yaml"),
                    "extract", "--date", DAY)
    assert code == 2
    missing = out.split("settings", 1)[1]
    assert "RCM_PHI_KEY" in missing and "RCM_SOURCE_URL" in missing
    for from_file in ("RCM_LAKE_URL", "MLFLOW_TRACKING_URI", "RCM_LANDING_DIR", "RCM_MLFLOW_ARTIFACTS"):
        assert from_file not in missing


def test_a_threshold_in_the_config_file_changes_the_run(source_in_data_dir, isolated_env, home, tmp_path,  # noqa: F811
                                                        monkeypatch, capsys):
    """A file with 23 % contract violations fails silver at the default 1 % reject rate, and passes with
    `thresholds.max_reject_rate: 0.5` from a configuration file (which the environment still overrides)."""
    bad = input_file(source_in_data_dir, tmp_path / "bad", corrupt_share=0.3)
    lenient = config(tmp_path, "thresholds:\n  max_reject_rate: 0.5\n")
    assert rcm(monkeypatch, capsys, "extract", "--input", str(bad), "--dry-run")[0] == 1
    code, out = rcm(monkeypatch, capsys, "extract", "--input", str(bad), "--dry-run", "--config", str(lenient))
    assert code == 0, out
    assert "lake: silver/claims:" in out
    monkeypatch.setenv("RCM_MAX_REJECT_RATE", "0.01")
    assert rcm(monkeypatch, capsys, "extract", "--input", str(bad), "--dry-run", "--config", str(lenient))[0] == 1


@pytest.mark.slow
def test_gate_parameters_in_the_config_file_reach_the_model_run(trained_world, home, pipeline, tmp_path,  # noqa: F811
                                                                monkeypatch, capsys):
    strict = config(tmp_path, "gate:\n  auc_floor: 0.99\n")
    code, out = rcm(monkeypatch, capsys, "train", "--date", pipeline.weeks[-1], "--force", "--dry-run",
                    "--config", str(strict))
    assert code == 1 and "below the floor 0.9900" in out, out


def test_the_code_location_reads_rcm_config(tmp_path, monkeypatch):
    """What the webserver and the daemon load: partitions and resources from the file RCM_CONFIG names."""
    import os
    import subprocess
    import sys

    path = config(tmp_path, "partitions:\n  start: 2025-02-01\nlake:\n  url: /srv/rcm-lake\n")
    probe = ("from rcm_assets.definitions import defs; from rcm_assets.defs import partitions; "
             "print(partitions.daily_partitions.get_first_partition_key(), defs.resources['lake'].base_url)")
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", probe], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "RCM_CONFIG": str(path)}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["2025-02-01", "/srv/rcm-lake"]
