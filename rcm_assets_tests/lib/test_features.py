"""Features: the leakage guard (frame and config paths), exact values, dtypes, ranges, feature_version."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rcm_assets.lib import features as F
from rcm_assets.lib import reference as ref
from rcm_assets_tests.conftest import silver_claims


def one_claim(**overrides: object) -> pd.DataFrame:
    """A single clean claim with chosen values."""
    base = F.decision_time_view(silver_claims(1)).iloc[[0]].reset_index(drop=True)
    base = base.assign(payer_id="MEDICARE", cpt_code="99213", icd10_primary="I10", modifiers=None,
                       prior_auth_number=None, eligibility_verified=True, units=1, billed_amount=150.0,
                       patient_age=70, service_date=pd.Timestamp("2025-02-27"),
                       submitted_at=pd.Timestamp("2025-03-01 10:00"))
    for name, value in overrides.items():
        base[name] = pd.Series([value], dtype=base[name].dtype)
    return base


# ---------------------------------------------------------------------------------------------- leakage


@pytest.mark.parametrize("column", ["paid_amount", "adjudicated_at", "claim_status", "denied", "carc_code"])
def test_frame_with_post_outcome_column_is_refused_by_name(column: str) -> None:
    frame = F.decision_time_view(silver_claims(20)).assign(**{column: 1})
    with pytest.raises(F.LeakageError, match=column) as err:
        F.compute_features(frame)
    assert err.value.columns == [column]
    assert "post-outcome" in str(err.value)


def test_raw_silver_frame_is_refused_naming_bookkeeping_columns() -> None:
    with pytest.raises(F.LeakageError) as err:
        F.compute_features(silver_claims(20))
    assert set(err.value.columns) == {"updated_at", "_ingested_at", "_source", "_run_id"}


def test_unregistered_column_is_refused() -> None:
    frame = F.decision_time_view(silver_claims(5)).assign(payer_paid_flag=1)
    with pytest.raises(F.LeakageError, match="unregistered column\\(s\\) payer_paid_flag"):
        F.compute_features(frame)


@pytest.mark.parametrize("column", ["paid_amount", "adjudicated_at", "updated_at", "_ingested_at"])
def test_config_reading_a_non_decision_time_column_is_refused(column: str) -> None:
    with pytest.raises(F.LeakageError, match=column):
        F.FeatureConfig(source_columns=(*F.DEFAULT_SOURCE_COLUMNS, column))


def test_config_refuses_phi_and_missing_sources() -> None:
    with pytest.raises(ValueError, match="PHI column\\(s\\) member_id"):
        F.FeatureConfig(source_columns=(*F.DEFAULT_SOURCE_COLUMNS, "member_id"))
    with pytest.raises(ValueError, match="lacks cpt_code"):
        F.FeatureConfig(source_columns=tuple(c for c in F.DEFAULT_SOURCE_COLUMNS if c != "cpt_code"))
    with pytest.raises(ValueError, match="age_band_edges"):
        F.FeatureConfig(age_band_edges=(50, 18))


def test_check_decision_time_accepts_decision_time_columns_and_dt() -> None:
    F.check_decision_time([*F.DEFAULT_SOURCE_COLUMNS, "member_token", "patient_zip3", "dt"])
    with pytest.raises(F.LeakageError, match="paid_amount.*updated_at|post-outcome column\\(s\\) paid_amount"):
        F.check_decision_time(["claim_id", "paid_amount", "updated_at"])


def test_decision_time_view_keeps_only_sources_and_dt() -> None:
    view = F.decision_time_view(silver_claims(10))
    assert list(view.columns) == [*F.DEFAULT_SOURCE_COLUMNS, "dt"]
    with pytest.raises(KeyError, match="cpt_code"):
        F.decision_time_view(silver_claims(3).drop(columns="cpt_code"))


# ------------------------------------------------------------------------------------- values and dtypes


def test_output_columns_dtypes_and_row_alignment() -> None:
    claims = silver_claims(300)
    out = F.compute_features(F.decision_time_view(claims))
    assert list(out.columns) == list(F.OUTPUT_COLUMNS)
    assert out.dtypes.to_dict() == F.output_dtypes()
    assert out["claim_id"].tolist() == claims["claim_id"].tolist()
    assert (out["feature_version"] == F.feature_version()).all()
    assert set(F.FEATURE_COLUMNS) == set(F.CATEGORICAL_FEATURES) | set(F.NUMERIC_FEATURES)


def test_empty_frame_keeps_the_schema() -> None:
    out = F.compute_features(F.decision_time_view(silver_claims(5).iloc[:0]))
    assert len(out) == 0
    assert out.dtypes.to_dict() == F.output_dtypes()


def test_deterministic_and_independent_of_row_order() -> None:
    view = F.decision_time_view(silver_claims(400, seed=3))
    a = F.compute_features(view)
    pd.testing.assert_frame_equal(a, F.compute_features(view.copy()))
    shuffled = F.compute_features(view.sample(frac=1.0, random_state=1))
    pd.testing.assert_frame_equal(
        shuffled.sort_values("claim_id").reset_index(drop=True), a.sort_values("claim_id").reset_index(drop=True)
    )
    # categories are fixed by the reference, not by the values seen in this batch
    small = F.compute_features(view.iloc[:3])
    for name in F.CATEGORICAL_FEATURES:
        assert list(small[name].cat.categories) == list(a[name].cat.categories)


def test_prior_auth_rule_follows_the_reference_policy() -> None:
    assert ref.requires_prior_auth("AETNA", "imaging") and not ref.requires_prior_auth("MEDICARE", "imaging")
    rows = pd.concat([
        one_claim(payer_id="AETNA", cpt_code="70551", prior_auth_number=None),
        one_claim(payer_id="AETNA", cpt_code="70551", prior_auth_number="PA-77"),
        one_claim(payer_id="AETNA", cpt_code="70551", prior_auth_number="  "),
        one_claim(payer_id="MEDICARE", cpt_code="70551", prior_auth_number=None),
    ], ignore_index=True)
    out = F.compute_features(rows)
    assert out["prior_auth_required"].tolist() == [1, 1, 1, 0]
    assert out["prior_auth_present"].tolist() == [0, 1, 0, 0]
    assert out["prior_auth_missing"].tolist() == [1, 0, 1, 0]


def test_filing_charge_modifier_and_coding_features() -> None:
    cigna_limit = ref.filing_limit_days("CIGNA")
    row = one_claim(payer_id="CIGNA", cpt_code="97110", units=4, billed_amount=480.0, modifiers="25, 59",
                    icd10_primary="M99.9", service_date=pd.Timestamp("2025-01-01"),
                    submitted_at=pd.Timestamp("2025-01-01 23:59") + pd.Timedelta(days=cigna_limit + 10))
    out = F.compute_features(row).iloc[0]
    assert out["days_to_submit"] == cigna_limit + 10
    assert out["filing_limit_days"] == cigna_limit
    assert out["filing_margin_days"] == -10 and out["past_filing_limit"] == 1
    assert out["charge_ratio"] == pytest.approx(480.0 / (ref.typical_charge("97110") * 4))
    assert out["log_billed_amount"] == pytest.approx(np.log1p(480.0))
    assert (out["n_modifiers"], out["has_modifier_25"], out["has_modifier_59"]) == (2, 1, 1)
    assert out["cpt_family"] == "therapy" and out["icd_chapter"] == "musculoskeletal"  # by ICD block
    assert out["cpt_icd_consistent"] == int(ref.is_consistent("therapy", "musculoskeletal"))
    assert out["patient_age_band"] == "65-74"


def test_values_outside_the_reference_become_unknown() -> None:
    row = one_claim(payer_id="NEWPAYER", cpt_code="0001U", place_of_service="99", icd10_primary="U99",
                    plan_type=None)
    out = F.compute_features(row).iloc[0]
    assert out["payer_id"] == "unknown" and out["cpt_family"] == "unknown"
    assert out["place_of_service"] == "unknown" and out["plan_type"] == "unknown"
    assert out["filing_limit_days"] == ref.DEFAULT_FILING_LIMIT_DAYS
    assert np.isnan(out["charge_ratio"])


def test_features_stay_in_declared_ranges_and_null_rates() -> None:
    out = F.compute_features(F.decision_time_view(silver_claims(2000, seed=5)))
    for name, (lo, hi) in F.FEATURE_RANGES.items():
        assert out[name].between(lo, hi).all(), name
    null_rates = out[list(F.FEATURE_COLUMNS)].isna().mean()
    for name, rate in null_rates.items():
        assert rate <= F.MAX_NULL_RATE[name], name
    for name in F.CATEGORICAL_FEATURES:
        assert out[name].notna().all()


def test_feature_ranges_follow_the_registry_bounds() -> None:
    """Real claims reach 9,999 units, 25 diagnoses and $10M: gold's range checks admit what silver admits."""
    assert F.FEATURE_RANGES["units"] == (1, 9999)
    assert F.FEATURE_RANGES["icd10_count"] == (1, 25)
    assert F.FEATURE_RANGES["log_billed_amount"][1] == pytest.approx(np.log1p(10_000_000))
    row = one_claim(cpt_code="J3490", units=150, icd10_count=18, billed_amount=1_250_000.0)
    out = F.compute_features(row).iloc[0]
    for name, (lo, hi) in F.FEATURE_RANGES.items():
        assert np.isnan(out[name]) or lo <= out[name] <= hi, name


def test_parquet_round_trip_keeps_dtypes(tmp_path: Path) -> None:
    out = F.compute_features(F.decision_time_view(silver_claims(50)))
    out.to_parquet(tmp_path / "gold.parquet", index=False)
    back = pd.read_parquet(tmp_path / "gold.parquet")
    pd.testing.assert_frame_equal(back, out)


# ------------------------------------------------------------------------------------------ version


def test_feature_version_is_stable_and_tracks_config() -> None:
    v = F.feature_version()
    assert len(v) == 16 and int(v, 16) >= 0
    assert F.feature_version(F.FeatureConfig()) == v
    assert F.feature_version(F.FeatureConfig(age_band_edges=(18, 65))) != v
    assert F.feature_version(F.FeatureConfig(charge_ratio_cap=50.0)) != v


def test_feature_version_is_the_same_in_another_process() -> None:
    """Sets in the reference data must not make the hash depend on PYTHONHASHSEED."""
    code = "from rcm_assets.lib.features import feature_version; print(feature_version())"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                           cwd=Path(__file__).resolve().parents[2])
    assert other.stdout.strip() == F.feature_version()


def _features_module_from(source: str, name: str):
    """A copy of rcm_assets.lib.features loaded from `source` (as if the file had been edited)."""
    import importlib.util
    import tempfile

    folder = Path(tempfile.mkdtemp())
    path = folder / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"rcm_assets.lib.{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_a_comment_or_a_refactor_keeps_the_feature_version() -> None:
    """The old version hashed the module's text: any comment invalidated every model (issue 13)."""
    source = Path(F.__file__).read_text()
    edited = ("# a comment a maintainer added\n" + source).replace(
        "margin = filing_limit - days_to_submit", "days_left = filing_limit - days_to_submit\n    margin = days_left")
    assert edited.count("days_left") == 2
    copy = _features_module_from(edited, "features_refactored")
    assert copy.feature_version(copy.FeatureConfig()) == F.feature_version()


def test_a_real_change_of_the_features_changes_the_feature_version() -> None:
    source = Path(F.__file__).read_text()
    changed = source.replace("margin = filing_limit - days_to_submit", "margin = filing_limit - days_to_submit - 1")
    assert changed != source
    assert _features_module_from(changed, "features_changed").feature_version() != F.feature_version()
    current = f"FEATURE_LOGIC_VERSION = {F.FEATURE_LOGIC_VERSION}"
    assert current in source
    bumped = source.replace(current, f"FEATURE_LOGIC_VERSION = {F.FEATURE_LOGIC_VERSION + 1}")
    assert _features_module_from(bumped, "features_bumped").feature_version() != F.feature_version()
