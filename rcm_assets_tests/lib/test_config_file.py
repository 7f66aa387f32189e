"""Configuration files: the shipped configs load, bad files are refused naming the file and the key, secrets
are refused, the environment wins over the file, and the file's values reach the settings."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from rcm_assets.lib import config_file, settings

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "rcm.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["dev.yaml", "prod.yaml"])
def test_shipped_configs_are_valid_and_cover_every_section(name):
    values = config_file.load(REPO / "configs" / name)
    for env in ("RCM_TRAIN_WINDOW_DAYS", "RCM_GATE_AUC_FLOOR", "RCM_MAX_REJECT_RATE", "RCM_DECISION_THRESHOLD",
                "RCM_DAILY_INGEST_CRON", "RCM_LAKE_URL", "RCM_PARTITIONS_START"):
        assert env in values, env
    assert "RCM_PHI_KEY" not in values and "RCM_SOURCE_URL" not in values  # secrets stay in the environment


@pytest.mark.parametrize(
    "text, message",
    [
        ("model:\n  trian_window_days: 90\n", "unknown key model.trian_window_days"),
        ("lake:\n  url: /x\n  bucket: b\n", "unknown key lake.bucket"),
        ("model:\n  train_window_days: ninety\n", "model.train_window_days must be a whole number"),
        ("model:\n  train_window_days: true\n", "model.train_window_days must be a whole number"),
        ("gate:\n  auc_floor: high\n", "gate.auc_floor must be a number"),
        ("partitions:\n  start: 2025-13-01\n", "partitions.start must be a date"),
        ("schedules:\n  daily_ingest_cron: every night\n", "schedules.daily_ingest_cron must be a cron"),
        ("source:\n  facility_tz: Mars/Olympus\n", "source.facility_tz must be an IANA time zone"),
        ("env: staging\n", "env must be dev, demo or prod"),
        ("model: 3\n", "unknown key model"),
        ("lake: {url: [a, b]}\n", "lake.url must be a string"),
        ("- just\n- a list\n", "must be a mapping of sections"),
        ("model:\n  seed: [1\n", "not valid YAML at line"),
    ],
)
def test_bad_files_are_refused_naming_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(config_file.ConfigError) as err:
        config_file.load(path)
    assert message in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize(
    "text, message",
    [
        ("phi_key: abcdefabcdefabcdef\n", "phi_key is a secret"),
        ("source:\n  password: hunter2\n", "source.password is a secret"),
        ("source:\n  url: postgresql://rcm:hunter2@db.internal/claims\n", "source.url is a URL with a password"),
        ("mlflow:\n  tracking_uri: https://u:p@mlflow.example\n", "set MLFLOW_TRACKING_URI"),
        ("alerts:\n  webhook_url: https://example.org/hook\n", "alerts.webhook_url is a secret"),
        ("alerts:\n  url: https://hooks.slack.com/services/T0/B0/XYZ\n", "a webhook URL"),
        ("alerts:\n  url: https://alerts.example/notify?token=abc\n", "a URL with a token"),
    ],
)
def test_secrets_in_a_file_are_refused(tmp_path, text, message):
    with pytest.raises(config_file.ConfigError) as err:
        config_file.load(write(tmp_path, text))
    assert message in str(err.value) and "only from the environment" in str(err.value)
    assert "hunter2" not in str(err.value)


def test_file_values_reach_settings_and_the_environment_wins(tmp_path, monkeypatch):
    path = write(tmp_path, "model:\n  train_window_days: 90\ngate:\n  auc_floor: 0.8\n"
                           "thresholds:\n  decision_threshold: 0.5\npartitions:\n  start: 2025-02-01\n"
                           "source:\n  facility_tz: America/Chicago\nlake:\n  url: /srv/lake\n")
    monkeypatch.setenv("RCM_CONFIG", str(path))
    assert settings.train_window_days() == 90
    assert settings.partitions_start() == date(2025, 2, 1)
    assert settings.facility_tz() == "America/Chicago"
    assert settings.lake_url() == "/srv/lake"
    assert settings.model_overrides() == {"auc_floor": 0.8}
    assert settings.scoring_overrides() == {"decision_threshold": 0.5}
    monkeypatch.setenv("RCM_TRAIN_WINDOW_DAYS", "120")
    monkeypatch.setenv("RCM_GATE_AUC_FLOOR", "0.65")
    assert settings.train_window_days() == 120 and settings.model_overrides() == {"auc_floor": 0.65}
    assert settings.from_config_file("RCM_TRAIN_WINDOW_DAYS") is None
    assert settings.from_config_file("RCM_LAKE_URL") == "/srv/lake"
    # an edited file is read again (cached per file version)
    path.write_text("model:\n  train_window_days: 91\nlake:\n  url: /srv/other-lake\n")
    assert settings.lake_url() == "/srv/other-lake"


def test_a_missing_config_file_names_the_path(tmp_path, monkeypatch):
    monkeypatch.setenv("RCM_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(config_file.ConfigError, match="nope.yaml: configuration file not found"):
        settings.lake_url()


def test_prod_resources_take_non_secret_values_from_the_file(tmp_path, monkeypatch):
    """In prod a setting the file gives is used as is (not an unset EnvVar); secrets stay EnvVars."""
    import dagster as dg

    from rcm_assets.platform.resources import build_resources

    monkeypatch.setenv("RCM_CONFIG", str(write(tmp_path, "lake:\n  url: /srv/lake\n  landing_dir: /srv/in\n")))
    resources = build_resources("prod")
    assert resources["lake"].base_url == "/srv/lake"
    assert resources["landing"].landing_dir == "/srv/in"
    assert isinstance(resources["source"].url, dg.EnvVar)
    assert isinstance(resources["phi"].key, dg.EnvVar)


def test_a_value_the_setting_refuses_names_the_files_key(tmp_path, monkeypatch):
    path = write(tmp_path, "model:\n  train_window_days: 0\n")
    monkeypatch.setenv("RCM_CONFIG", str(path))
    with pytest.raises(config_file.ConfigError, match=r"model.train_window_days \(in .*rcm.yaml\)='0' must be"):
        settings.train_window_days()
    monkeypatch.setenv("RCM_TRAIN_WINDOW_DAYS", "zero")  # from the environment: the variable is named
    with pytest.raises(ValueError, match=r"^RCM_TRAIN_WINDOW_DAYS='zero'"):
        settings.train_window_days()
