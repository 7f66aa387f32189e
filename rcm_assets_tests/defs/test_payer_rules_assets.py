"""silver/authorization_denials and gold's learned payer rules, through Dagster on a generator world where
AETNA starts requiring prior auth for lab claims: the rule comes into force once, on the day after its
evidence arrived, with a WARN the alert sensor carries; and a day re-materialized alone equals the range.
The hospital supplies its reference files as the demo writes them (`write_reference_files`): its code
categories name the segment AETNA/lab, and only the commercial payers publish prior-auth lists, so the
unpublished policies of the other payers are learned from their denials too."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from rcm_assets.defs import bronze, gold, learned, payer_rules, silver
from rcm_assets.lib import settings
from rcm_assets.platform.resources import build_resources
from rcm_assets.synthetic import generate, world, write_reference_files, write_source
from rcm_assets.synthetic.generator import Drift
from rcm_assets_tests.conftest import materialize_range
from rcm_assets_tests.defs.test_monitoring_assets import check_evaluations

START, DAYS, ONSET = date(2025, 1, 1), 48, date(2025, 1, 6)
DAILY = [bronze.claims, bronze.remittances, silver.claims, silver.remittances, silver.claim_versions,
         payer_rules.authorization_denials, learned.adjudication_evidence, gold.claim_features]
DRIFTED = ("AETNA", "lab")


def read_table(data_dir: Path, *path: str) -> pd.DataFrame:
    frame = pd.read_parquet(data_dir / "lake" / Path(*path))
    return frame.assign(dt=frame["dt"].astype(str))


@pytest.mark.slow
def test_gold_learns_the_payer_rule_once_and_a_day_alone_equals_the_range(isolated_env: Path) -> None:
    data = generate(start=START, days=DAYS, claims_per_day=300, seed=3, drift=Drift(ONSET, "AETNA", "lab"))
    write_source(data, settings.sqlite_url(isolated_env / "source.db"))
    written = write_reference_files(data, isolated_env / "reference")  # RCM_REFERENCE_DIR's default
    published = set(pd.read_csv(isolated_env / "reference" / "prior_auth_list.csv", dtype=str)["payer_id"])
    assert written and published
    resources, instance = build_resources("dev"), dg.DagsterInstance.ephemeral()
    first, last = START.isoformat(), (START + timedelta(days=DAYS - 1)).isoformat()
    assert materialize_range(DAILY, first, last, instance, resources).success

    denials = read_table(isolated_env, "silver", "authorization_denials")
    assert len(denials) and denials["claim_id"].notna().all()
    # outside the published lists: the drifted segment, and the real policies of payers that publish none
    outside = denials[denials["reference_requires"] == 0]
    segments = set(zip(outside["payer_id"], outside["cpt_family"], strict=True))
    assert DRIFTED in segments
    for payer, family in segments - {DRIFTED}:
        assert world.requires_prior_auth(payer, family) and payer not in published, (payer, family)

    warnings = {day: e for day, e in check_evaluations(instance, gold.GOLD_KEY, "no_new_payer_rule").items()
                if not e.passed}
    assert all(e.severity == dg.AssetCheckSeverity.WARN for e in warnings.values())
    # the drifted segment's rule comes into force once: one WARN names it, on the day it does
    drifted = {day: e for day, e in warnings.items() if "AETNA/lab as requiring prior authorization" in e.description}
    assert len(drifted) == 1, {d: e.description for d, e in warnings.items()}
    (rule_day, evaluation), = drifted.items()
    assert "AETNA denied" in evaluation.description
    assert 14 < (date.fromisoformat(rule_day) - ONSET).days <= 35, rule_day
    # every other WARN announces an unpublished policy of a payer without a list, each segment once
    others = [s.split("/", 1) for e in warnings.values() for s in e.metadata["new_rules"].value.split(", ")]
    others = [tuple(s) for s in others if tuple(s) != DRIFTED]
    assert len(others) == len(set(others)), others
    assert all(world.requires_prior_auth(p, f) and p not in published for p, f in others), others

    features = read_table(isolated_env, "gold", "claim_features")
    lab = features[(features["payer_id"] == "AETNA") & (features["cpt_family"] == "lab")]
    assert lab.loc[lab["dt"] < rule_day, "prior_auth_required"].eq(0).all()
    assert lab.loc[lab["dt"] >= rule_day, "prior_auth_required"].eq(1).all() and (lab["dt"] >= rule_day).any()

    # a day of denials again, alone (as the nightly run builds it): the same rows as in the range run
    busiest = denials["dt"].value_counts().idxmax()
    denial_file = isolated_env / "lake" / "silver" / "authorization_denials" / f"dt={busiest}" / "part-0.parquet"
    stored = pd.read_parquet(denial_file)
    denial_file.unlink()
    assert materialize_range([payer_rules.authorization_denials], busiest, busiest, instance, resources).success
    pd.testing.assert_frame_equal(pd.read_parquet(denial_file), stored)

    # the last day of gold again, alone: the same rows as in the range run
    gold_file = isolated_env / "lake" / "gold" / "claim_features" / f"dt={last}" / "part-0.parquet"
    in_range = pd.read_parquet(gold_file)
    gold_file.unlink()
    assert materialize_range([gold.claim_features], last, last, instance, resources).success
    pd.testing.assert_frame_equal(pd.read_parquet(gold_file), in_range)
