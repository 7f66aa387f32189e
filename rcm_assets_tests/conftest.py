"""Shared fixtures: an isolated data folder per test, and a seeded synthetic source written once per session.

The synthetic window starts at the partitions start (2025-01-01) and is long enough for the first model
week (2025-04-28) to have matured labels, so model and prediction tests run on real generated data.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rcm_assets.lib import settings
from rcm_assets.lib.columns import DEFECT_FLAGS, columns
from rcm_assets.lib.transforms import claim_defects
from rcm_assets.synthetic import world as ref

SYNTH_START = date(2025, 1, 1)
SYNTH_DAYS = 135  # through 2025-05-15: model weeks 2025-04-28, 2025-05-05 and 2025-05-12 can train
SYNTH_CLAIMS_PER_DAY = 150
SYNTH_SEED = 11
PHI_TEST_KEY = b"test-phi-key-0123456789abcdef"
ENV_VARS = ("RCM_DATA_DIR", "RCM_SOURCE_URL", "RCM_LAKE_URL", "RCM_LANDING_DIR", "RCM_QUARANTINE_DIR",
            "MLFLOW_TRACKING_URI", "RCM_MLFLOW_ARTIFACTS", "RCM_PHI_KEY", "RCM_ENV", "DAGSTER_HOME",
            "RCM_FACILITY_TZ", "RCM_EXTRACT_LOOKBACK_DAYS", "RCM_REFERENCE_DIR")


@dataclass(frozen=True)
class SyntheticSource:
    data: object  # rcm_assets.synthetic.SyntheticData
    source_db: Path  # a pristine SQLite file: copy it, never write to it
    truth: Path
    start: date
    end: date  # last day with data (inclusive)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own RCM_DATA_DIR; no setting leaks in from the developer's shell."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    monkeypatch.setenv("RCM_DATA_DIR", str(data_dir))
    monkeypatch.setenv("RCM_PHI_KEY", "test-phi-key-0123456789abcdef")
    return data_dir


@pytest.fixture(scope="session")
def synthetic_source(tmp_path_factory: pytest.TempPathFactory) -> SyntheticSource:
    from rcm_assets.synthetic import generate, write_ground_truth, write_source

    folder = tmp_path_factory.mktemp("synthetic")
    data = generate(start=SYNTH_START, days=SYNTH_DAYS, claims_per_day=SYNTH_CLAIMS_PER_DAY, seed=SYNTH_SEED)
    source_db = folder / "source.db"
    write_source(data, settings.sqlite_url(source_db))
    truth = write_ground_truth(data, folder / "claims_truth.parquet")
    return SyntheticSource(data, source_db, truth, SYNTH_START, SYNTH_START + timedelta(days=SYNTH_DAYS - 1))


@pytest.fixture()
def source_in_data_dir(synthetic_source: SyntheticSource, isolated_env: Path) -> SyntheticSource:
    """The session's synthetic source copied to this test's RCM_DATA_DIR (the default source location)."""
    shutil.copyfile(synthetic_source.source_db, isolated_env / "source.db")
    (isolated_env / "ground_truth").mkdir(exist_ok=True)
    shutil.copyfile(synthetic_source.truth, settings.ground_truth_path())
    assert os.environ["RCM_DATA_DIR"] == str(isolated_env)
    return synthetic_source


@dataclass
class PipelineRun:
    """The whole graph materialized once over the synthetic source (read-only for tests)."""

    data_dir: Path
    env: dict[str, str]
    instance: object  # dagster.DagsterInstance
    resources: dict
    results: dict  # label -> dagster ExecuteInProcessResult
    source: SyntheticSource
    weeks: list[str]


def failure_text(result) -> str:
    """The errors and Failure descriptions of a run's failed steps, as one text."""
    parts = []
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        parts.append(data.error.to_string() if data.error else "")
        if data.user_failure_data is not None:
            parts.append(data.user_failure_data.description or "")
    return "\n".join(parts)


def materialize_range(assets_to_run, first: str, last: str, instance, resources, **kwargs):
    """Materialize `assets_to_run` for first..last as one run (range tags), raising nothing."""
    import dagster as dg

    from rcm_assets.definitions import defs

    tags = ({"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
            if first != last else {})
    extra = {"partition_key": first} if first == last else {}
    return dg.materialize([*defs.assets, *defs.asset_checks], selection=dg.AssetSelection.assets(*assets_to_run),
                          instance=instance, resources=resources, tags=tags, raise_on_error=False,
                          **extra, **kwargs)


@pytest.fixture(scope="session")
def pipeline(synthetic_source: SyntheticSource, tmp_path_factory: pytest.TempPathFactory) -> PipelineRun:
    import dagster as dg

    from rcm_assets.defs import (
        bronze,
        gold,
        model,
        partitions,
        payer_rules,
        predictions,
        silver,
        training_set,
    )
    from rcm_assets.platform.resources import build_resources

    data_dir = tmp_path_factory.mktemp("pipeline") / "data"
    data_dir.mkdir()
    shutil.copyfile(synthetic_source.source_db, data_dir / "source.db")
    from rcm_assets.synthetic import write_reference_files  # the partial files the world's hospital has

    write_reference_files(synthetic_source.data, data_dir / "reference")
    env = {"RCM_DATA_DIR": str(data_dir), "RCM_PHI_KEY": "test-phi-key-0123456789abcdef"}
    with pytest.MonkeyPatch.context() as mp:
        for name in ENV_VARS:
            mp.delenv(name, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        resources = build_resources("dev")
        instance = dg.DagsterInstance.ephemeral()
        first, last = synthetic_source.start.isoformat(), synthetic_source.end.isoformat()
        weeks = [k for k in partitions.weekly_partitions.get_partition_keys() if k <= last]
        results = {
            "ingest": materialize_range([bronze.claims, bronze.remittances, silver.claims, silver.remittances,
                                         silver.claim_versions, payer_rules.authorization_denials,
                                         gold.claim_features], first, last, instance, resources),
        }
        results["model"] = materialize_range([training_set.training_set, model.denial_model], weeks[0], weeks[-1], instance, resources)
        results["predictions"] = materialize_range([predictions.claim_denial_scores],
                                                   partitions.MODEL_START.isoformat(), last, instance, resources)
    return PipelineRun(data_dir, env, instance, resources, results, synthetic_source, weeks)


def process_group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group `pgid`, read from /proc: what a test started and must
    leave stopped."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


# --------------------------------------------------------------------------------------------------
# frame builders shared by the pure-logic tests


def to_bronze(source: pd.DataFrame, run_id: str = "run-test") -> pd.DataFrame:
    """Source rows as the bronze asset shapes them: ingest columns and dt (UTC day of updated_at)."""
    out = source.copy()
    out["_ingested_at"] = pd.Timestamp("2026-01-01 00:00:00")
    out["_source"] = "source:test"
    out["_run_id"] = run_id
    out["dt"] = out["updated_at"].dt.strftime("%Y-%m-%d")
    return out.reset_index(drop=True)


def silver_claims(n: int = 500, seed: int = 0, day: str = "2025-03-01") -> pd.DataFrame:
    """A silver-shaped claims frame (registry silver columns + dt) drawn from the reference tables."""
    rng = np.random.default_rng(seed)
    submitted = pd.Timestamp(day) + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s")
    service = submitted.normalize() - pd.to_timedelta(rng.integers(0, 200, n), unit="D")
    def strings(values: list, size: int) -> pd.Series:
        return pd.Series(rng.choice(np.array(values, dtype=object), size), dtype=object)
    frame = pd.DataFrame({
        "claim_id": [f"C{i:010d}" for i in range(n)],
        "claim_version": np.ones(n, dtype="int64"),
        "patient_sex": strings(["F", "M", "U"], n),
        "payer_id": strings(list(ref.PAYER_IDS), n),
        "plan_type": strings(["commercial", "medicare", "medicaid", "self_pay"], n),
        "billing_npi": "1234567893",
        "rendering_npi": "1234567893",
        "place_of_service": strings(list(ref.PLACE_OF_SERVICE), n),
        "cpt_code": strings(list(ref.CPT_CODES), n),
        "modifiers": strings(["25", "59", "25,59", None, "LT"], n),
        "icd10_primary": strings(list(ref.ICD10_CODES), n),
        "icd10_count": rng.integers(1, 13, n).astype("int64"),
        "units": rng.integers(1, 5, n).astype("int64"),
        "billed_amount": rng.uniform(10, 5000, n).round(2),
        "service_date": service.to_numpy(dtype="datetime64[ns]"),
        "submitted_at": submitted.to_numpy(dtype="datetime64[ns]"),
        "prior_auth_number": strings(["PA123", None], n),
        "eligibility_verified": rng.random(n) < 0.9,
        "updated_at": submitted.to_numpy(dtype="datetime64[ns]"),
        "_ingested_at": submitted.to_numpy(dtype="datetime64[ns]"),
        "_source": "source",
        "_run_id": "run",
        # one member per claim (not drawn from rng, so the other columns stay as they were): a single member
        # for every claim would make each claim the member's nth of its code (lib/member_history)
        "member_token": [f"{seed:08x}{pd.Timestamp(day).toordinal():08x}{i:016x}" for i in range(n)],
        "patient_age": rng.integers(0, 91, n).astype("float64"),
        "patient_zip3": "123",
        "icd_code_set": "icd10",
    })
    # claim defects (issue 24): the codes above are valid; an unknown sex is a demographics defect
    flags = pd.DataFrame(False, index=frame.index, columns=list(DEFECT_FLAGS))
    flags["demographics"] = frame["patient_sex"].eq("U")
    frame = frame.assign(**{f"defect_{f}": flags[f].astype("int64") for f in DEFECT_FLAGS},
                         claim_defects=claim_defects(flags), dt=day)
    assert set(frame.columns) == {c.name for c in columns("claims", "silver")} | {"dt"}
    return frame
