"""silver/adjudication_evidence and `read_learned_tables`, through Dagster on a generator world: one row per
claim version (its first adjudication, the label rule of lib/labels) with the version as submitted; a day
re-materialized alone equals the range; the tables gold reads for day D come only from evidence that
arrived before D."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from rcm_assets.defs import bronze, learned, silver
from rcm_assets.lib import claim_history, labels, settings
from rcm_assets.lib import learned as learned_lib
from rcm_assets.platform.resources import build_resources
from rcm_assets.synthetic import generate, write_source
from rcm_assets_tests.conftest import materialize_range
from rcm_assets_tests.defs.test_monitoring_assets import check_evaluations

START, DAYS = date(2025, 1, 1), 40
DAILY = [bronze.claims, bronze.remittances, silver.claims, silver.remittances, silver.claim_versions,
         learned.adjudication_evidence]


def read_table(data_dir: Path, *path: str) -> pd.DataFrame:
    frame = pd.read_parquet(data_dir / "lake" / Path(*path))
    return frame.assign(dt=frame["dt"].astype(str))


@pytest.mark.slow
def test_evidence_is_each_versions_first_adjudication_and_gold_reads_only_the_past(isolated_env: Path) -> None:
    data = generate(start=START, days=DAYS, claims_per_day=150, seed=7)
    write_source(data, settings.sqlite_url(isolated_env / "source.db"))
    resources, instance = build_resources("dev"), dg.DagsterInstance.ephemeral()
    first, last = START.isoformat(), (START + timedelta(days=DAYS - 1)).isoformat()
    assert materialize_range(DAILY, first, last, instance, resources).success

    stored = read_table(isolated_env, "silver", "adjudication_evidence")
    assert len(stored) > 1_000 and not stored.duplicated(["claim_id", "claim_version"]).any()
    assert stored["denied"].isin([0, 1]).all() and stored["provider"].notna().all()
    assert stored["diagnosis_category"].str.len().le(3).all()

    # the same rows the label rule gives from the whole of silver (every claim is inside the lookback here)
    claims = read_table(isolated_env, "silver", "claims")
    remittances = read_table(isolated_env, "silver", "remittances")
    versions = learned.version_states(claims)
    expected = learned_lib.adjudication_evidence(
        labels.first_adjudications(remittances, versions[["claim_id", "claim_version", "submitted_at"]]), versions)
    key = ["claim_id", "claim_version"]
    got = stored[list(learned_lib.EVIDENCE_COLUMNS)].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected.sort_values(key).reset_index(drop=True), check_dtype=False)
    # keys as submitted: the first state of the version, not a later in-place update
    firsts = claim_history.first_states(claims).sort_values("updated_at").drop_duplicates(key)
    merged = got.merge(firsts[[*key, "payer_id", "billed_amount", "units"]], on=key)
    assert (merged["payer_id_x"] == merged["payer_id_y"].str.strip()).all()
    assert (merged["billed_per_unit"] - merged["billed_amount"] / merged["units"]).abs().max() < 1e-9

    evaluations = check_evaluations(instance, learned.EVIDENCE_KEY, "answered_versions_found")
    assert evaluations and all(e.passed for e in evaluations.values())

    # a day alone (as the nightly run builds it) equals the range run
    busiest = stored["dt"].value_counts().idxmax()
    path = isolated_env / "lake" / "silver" / "adjudication_evidence" / f"dt={busiest}" / "part-0.parquet"
    in_range = pd.read_parquet(path)
    path.unlink()
    assert materialize_range([learned.adjudication_evidence], busiest, busiest, instance, resources).success
    pd.testing.assert_frame_equal(pd.read_parquet(path), in_range)

    # gold's tables for day D: exactly the evidence that arrived before D, whatever arrived on D or later
    lake = resources["lake"].create_io_manager(dg.build_init_resource_context())
    days = [(START + timedelta(days=k)).isoformat() for k in (20, 30, 39)]
    tables = learned.read_learned_tables(lake, days)
    view = claims.assign(dt=claims["dt"].astype(str))
    view = view[view["dt"].isin(days)]
    out = learned_lib.learned_features(view, tables)
    for d in days:
        known = learned_lib.build_learned_tables(stored[stored["dt"] < d], [d])
        rows = view["dt"].to_numpy() == d
        pd.testing.assert_frame_equal(out[rows].reset_index(drop=True),
                                      learned_lib.learned_features(view[rows], known))
        assert tables.version(d) == known.version(d)
    assert tables.days_missing == 0  # every window day since the partitions start was materialized
    path.unlink()  # a day never materialized is counted, not guessed
    assert learned.read_learned_tables(lake, days).days_missing == 1
    assert out["payer_denial_logit"].nunique() > 1
    known_charge = out["learned_typical_charge"].notna().groupby(view["dt"].to_numpy()).mean()
    # history accumulates: measured 0.47, 0.96, 1.0 on days 20, 30, 39
    assert known_charge.is_monotonic_increasing and known_charge.iloc[-1] > 0.8, known_charge.to_dict()
