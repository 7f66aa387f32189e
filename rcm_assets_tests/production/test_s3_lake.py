"""The lake on an S3-compatible server (moto on loopback) through RCM_LAKE_URL=s3://bucket/prefix writes the
same Parquet, partition by partition, as the local lake, and leaves no tmp object behind."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import dagster as dg
import pytest

from rcm_assets_tests.conftest import SyntheticSource, failure_text, materialize_range
from rcm_assets_tests.production.lake_compare import assert_same_lake
from rcm_assets_tests.production.services import S3Server, report_figure

pytestmark = pytest.mark.slow

FIRST, LAST = "2025-02-03", "2025-02-05"


def _daily_assets() -> list:
    from rcm_assets.defs import bronze, gold, payer_rules, silver

    return [bronze.claims, bronze.remittances, silver.claims, silver.remittances, silver.claim_versions,
            payer_rules.authorization_denials, gold.claim_features]


def _materialize(lake_url: str, monkeypatch: pytest.MonkeyPatch) -> float:
    """Bronze to gold for FIRST..LAST as one run, with the lake named by RCM_LAKE_URL (as production sets it)."""
    from rcm_assets.platform.resources import build_resources

    monkeypatch.setenv("RCM_LAKE_URL", lake_url)
    started = time.monotonic()
    result = materialize_range(_daily_assets(), FIRST, LAST, dg.DagsterInstance.ephemeral(), build_resources("dev"))
    assert result.success, failure_text(result)
    return time.monotonic() - started


def test_s3_lake_matches_local_lake(synthetic_source: SyntheticSource, isolated_env: Path, s3_env: S3Server,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copyfile(synthetic_source.source_db, isolated_env / "source.db")
    local_url = str(isolated_env / "lake")
    bucket = s3_env.new_bucket("lake")
    s3_url = f"s3://{bucket}/rcm/lake"

    local_seconds = _materialize(local_url, monkeypatch)
    s3_seconds = _materialize(s3_url, monkeypatch)

    rows = assert_same_lake(local_url, s3_url)
    assert rows["bronze/claims"] > 0 and rows["gold/claim_features"] > 0
    keys = s3_env.keys(bucket)
    assert "rcm/lake/gold/claim_features/dt=2025-02-04/part-0.parquet" in keys
    assert all(k.startswith("rcm/lake/") and not k.rsplit("/", 1)[-1].startswith(".") for k in keys), keys
    report_figure(f"bronze->gold {FIRST}..{LAST} in process: local lake {local_seconds:.1f} s, "
                  f"S3 lake {s3_seconds:.1f} s; S3 server start {s3_env.service.seconds_to_start:.1f} s")
