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
from rcm_assets.lib.reference_tables import NO_TABLES, ReferenceTables, normalize
from rcm_assets_tests.conftest import silver_claims

REPO = Path(__file__).resolve().parents[2]


def tables(**csv_rows: list[dict]) -> ReferenceTables:
    """Reference tables from rows as a hospital writes them (text), normalized like the files."""
    return ReferenceTables(**{name: normalize(name, pd.DataFrame(rows, dtype=str)) for name, rows in csv_rows.items()})


HOSPITAL = tables(
    payers=[{"payer_id": "60054", "payer_name": "Aetna", "plan_type": "commercial", "filing_limit_days": "180"},
            {"payer_id": "62308", "payer_name": "Cigna", "plan_type": "commercial", "filing_limit_days": "90"},
            {"payer_id": "00430", "payer_name": "Medicaid", "plan_type": "medicaid"}],
    prior_auth_list=[{"payer_id": "60054", "procedure_code": "70551"},
                     {"payer_id": "62308", "procedure_code": "97110", "effective_from": "2025-02-01"}],
    chargemaster=[{"procedure_code": "97110", "description": "Therapeutic exercise", "list_price": "60"}],
    code_categories=[{"procedure_code": "70551", "category": "imaging"}],
)


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
    assert F.FEATURE_COLUMNS == (*F.CONTEXT_COLUMNS, *F.CATEGORICAL_FEATURES, *F.NUMERIC_FEATURES)
    assert set(F.MODEL_FEATURES) == set(F.FEATURE_COLUMNS) - set(F.CONTEXT_COLUMNS)
    assert set(F.DEFECT_FLAGS) <= set(F.INT_FEATURES) and set(F.LEARNED_FEATURES) <= set(F.FLOAT_FEATURES)


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


def test_prior_auth_required_comes_from_the_payers_published_list_in_effect() -> None:
    rows = pd.concat([
        one_claim(payer_id="60054", cpt_code="70551", prior_auth_number=None),
        one_claim(payer_id="60054", cpt_code="70551", prior_auth_number="PA-77"),
        one_claim(payer_id="60054", cpt_code="70551", prior_auth_number="  "),
        one_claim(payer_id="62308", cpt_code="70551", prior_auth_number=None),  # not on Cigna's list
        one_claim(payer_id="62308", cpt_code="97110", service_date=pd.Timestamp("2025-01-31")),  # before effect
        one_claim(payer_id="62308", cpt_code="97110", service_date=pd.Timestamp("2025-02-01")),
    ], ignore_index=True)
    out = F.compute_features(rows, reference=HOSPITAL)
    assert out["prior_auth_required"].tolist() == [1, 1, 1, 0, 0, 1]
    assert out["prior_auth_present"].tolist() == [0, 1, 0, 0, 0, 0]
    assert out["prior_auth_missing"].tolist() == [1, 0, 1, 0, 0, 1]
    # without a list nothing is known to require it (learned rules may add it: test_payer_rules)
    assert F.compute_features(rows)["prior_auth_required"].tolist() == [0] * 6


def test_filing_charge_modifier_and_coding_features_from_the_hospitals_tables() -> None:
    row = one_claim(payer_id="62308", plan_type=None, cpt_code="97110", units=4, billed_amount=480.0,
                    modifiers="25, 59", icd10_primary="M99.9", service_date=pd.Timestamp("2025-01-01"),
                    submitted_at=pd.Timestamp("2025-01-01 23:59") + pd.Timedelta(days=100))
    out = F.compute_features(row, reference=HOSPITAL).iloc[0]
    assert out["days_to_submit"] == 100
    assert out["filing_limit_days"] == 90  # Cigna's contract in payers.csv
    assert out["filing_margin_days"] == -10 and out["past_filing_limit"] == 1
    assert out["charge_ratio"] == pytest.approx(480.0 / (60.0 * 4))  # chargemaster list price
    assert out["log_billed_amount"] == pytest.approx(np.log1p(480.0))
    assert (out["n_modifiers"], out["has_modifier_25"], out["has_modifier_59"]) == (2, 1, 1)
    assert out["plan_type"] == "commercial"  # the claim has none: payers.csv
    assert out["procedure_section"] == "medicine" and out["cpt_family"] == "medicine"  # 97110, public range
    assert out["icd_chapter"] == "musculoskeletal"  # by ICD-10 block
    assert out["patient_age_band"] == "65-74"
    imaging = F.compute_features(one_claim(payer_id="60054", cpt_code="70551"), reference=HOSPITAL).iloc[0]
    assert imaging["cpt_family"] == "imaging" and imaging["procedure_section"] == "radiology"


def test_without_tables_unknown_values_stay_unknown_never_guessed() -> None:
    """A real hospital's numeric payer ids and codes outside every table: nothing becomes a guessed 90 days."""
    row = one_claim(payer_id="60054", cpt_code="0001U", place_of_service="99", icd10_primary="U99", plan_type=None)
    out = F.compute_features(row).iloc[0]
    assert out["payer_id"] == "60054"  # kept as the claim carries it (context, not a model input)
    assert out["cpt_family"] == "cpt_pla" and out["procedure_section"] == "cpt_pla"
    assert out["place_of_service"] == "99" and out["plan_type"] == "unknown" and out["icd_chapter"] == "unknown"
    assert np.isnan(out["filing_limit_days"]) and np.isnan(out["filing_margin_days"])
    assert out["past_filing_limit"] == 0
    assert np.isnan(out["charge_ratio"])
    for name in F.LEARNED_FEATURES:
        default = F.LEARNED_DEFAULTS[name]
        assert (np.isnan(out[name]) and np.isnan(default)) or out[name] == default, name


def test_defect_flags_are_features_and_missing_codes_are_unknown() -> None:
    view = F.decision_time_view(silver_claims(6))
    view = view.assign(cpt_code=[None, "99213", "BAD", "99213", "99213", "99213"],
                       icd10_primary=["I10", None, "I10", "4019", "I10", "I10"],
                       place_of_service=["11", "11", None, "11", "11", "11"],
                       patient_sex=["F", "M", None, "U", "F", "M"],
                       patient_age=[70.0, np.nan, 30.0, 40.0, 50.0, 60.0],
                       icd_code_set=["icd10", None, "icd10", "icd9", "icd10", "icd10"])
    for k, name in enumerate(F.DEFECT_FLAGS):
        view[name] = (np.arange(6) == k).astype("int64")
    out = F.compute_features(view)
    assert out["procedure_section"].tolist()[:3] == ["unknown", "evaluation_management", "unknown"]
    assert out["icd_chapter"].tolist()[:4] == ["circulatory", "unknown", "circulatory", "circulatory"]  # 4019: ICD-9
    assert out["place_of_service"].tolist()[2] == "unknown" and out["patient_sex"].tolist()[2] == "U"
    assert out["patient_age_band"].tolist()[1] == "unknown"
    for name in F.CATEGORICAL_FEATURES:
        assert out[name].notna().all(), name
    for k, name in enumerate(F.DEFECT_FLAGS):
        assert out[name].tolist() == (np.arange(6) == k).astype("int64").tolist(), name
    # silver's code set wins over the grammar: 4019 sent as ICD-10 is no ICD-10 chapter
    assert F.compute_features(view.assign(icd_code_set="icd10"))["icd_chapter"].tolist()[3] == "unknown"


def test_hundreds_of_payers_and_thousands_of_codes_stay_off_the_categoricals() -> None:
    """HistGradientBoosting takes at most 255 categories: no categorical grows with a hospital's payers/codes."""
    n = 5_000
    rng = np.random.default_rng(0)
    view = F.decision_time_view(silver_claims(n)).assign(
        payer_id=[str(60000 + p) for p in rng.integers(0, 600, n)],
        cpt_code=[f"{c:05d}" for c in rng.integers(10004, 99499, n)])
    out = F.compute_features(view)
    assert out["payer_id"].nunique() > 255 and out["cpt_family"].nunique() <= len(F.CATEGORIES["procedure_section"])
    for name in F.CATEGORICAL_FEATURES:
        assert len(out[name].cat.categories) <= 255, name
    assert set(F.CONTEXT_COLUMNS).isdisjoint(F.MODEL_FEATURES)


def test_nothing_outside_synthetic_imports_the_generators_reference_module() -> None:
    import ast

    offenders = []
    for path in sorted((REPO / "rcm_assets").rglob("*.py")):
        relative = path.relative_to(REPO).as_posix()
        if relative.startswith("rcm_assets/synthetic/") or relative == "rcm_assets/lib/reference.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [f"{node.module}.{a.name}" for a in node.names] if isinstance(node, ast.ImportFrom) else [])
            if any(name == "rcm_assets.lib.reference" or name.startswith("rcm_assets.lib.reference.")
                   for name in names):
                offenders.append(relative)
    assert offenders == []


def test_features_stay_in_declared_ranges_and_null_rates() -> None:
    out = F.compute_features(F.decision_time_view(silver_claims(2000, seed=5)), reference=HOSPITAL)
    for name, (lo, hi) in F.FEATURE_RANGES.items():
        assert out[name].dropna().between(lo, hi).all(), name
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


def test_feature_version_follows_the_reference_contents_not_their_order() -> None:
    v = F.feature_version()
    with_tables = F.feature_version(F.DEFAULT_CONFIG, HOSPITAL)
    assert with_tables != v
    reordered = ReferenceTables(**{name: None if HOSPITAL.table(name) is None else
                                   HOSPITAL.table(name).iloc[::-1].reset_index(drop=True)
                                   for name in ("payers", "prior_auth_list", "chargemaster", "code_categories")})
    assert F.feature_version(F.DEFAULT_CONFIG, reordered) == with_tables
    edited = tables(payers=[{"payer_id": "60054", "filing_limit_days": "181"}])
    assert F.feature_version(F.DEFAULT_CONFIG, edited) not in (v, with_tables)
    assert F.feature_version(F.DEFAULT_CONFIG, NO_TABLES) == v


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


# ---------------------------------------------------------------------------------------------- member counts


def claims_of(rows: list[tuple]) -> pd.DataFrame:
    """History rows (claim_id, member_token, cpt_code, service day offset, submitted hours offset)."""
    start = pd.Timestamp("2025-03-01")
    return pd.DataFrame({
        "claim_id": [r[0] for r in rows], "member_token": [r[1] for r in rows], "cpt_code": [r[2] for r in rows],
        "service_date": [start + pd.Timedelta(days=r[3]) for r in rows],
        "submitted_at": [start + pd.Timedelta(hours=r[4]) for r in rows]})


def test_member_counts_are_the_members_earlier_claims_of_the_code_within_each_window() -> None:
    a, b = "a" * 32, "b" * 32
    history = claims_of([
        ("H1", a, "85025", -70, -1000),  # 70 days before: no window
        ("H2", a, "85025", -45, -900),  # 60-day window only
        ("H3", a, "85025", -20, -400),  # 30 and 60
        ("H4", a, "85025", -14, -300),  # all three (the window includes its first day)
        ("H5", a, "85025", 0, -2),  # same service day, submitted earlier: counts
        ("H6", b, "85025", -5, -50),  # another member
        ("H7", a, "80053", -5, -50),  # another code
        ("H8", a, "85025", 3, -10),  # a later service date: not earlier
    ])
    row = claims_of([("R1", a, "85025", 0, 0)])
    got = F.member_code_counts(row, history)
    assert {k: int(v[0]) for k, v in got.items()} == {
        "member_code_claims_14d": 2, "member_code_claims_30d": 3, "member_code_claims_60d": 4}


def test_a_claim_submitted_later_never_reaches_the_count_point_in_time() -> None:
    """Claims submitted after the row (the same day, or any later day, even with an earlier service date)
    and rows of the future passed as history leave the count unchanged; a corrected version counts what its
    original submission counted and never counts its own claim."""
    a = "a" * 32
    earlier = claims_of([("H1", a, "85025", -3, -48)])
    row = claims_of([("R1", a, "85025", 0, 0)])
    future = claims_of([("F1", a, "85025", -1, 1), ("F2", a, "85025", -10, 24 * 20), ("R1", a, "85025", 0, 24)])
    alone = F.member_code_counts(row, earlier)
    with_future = F.member_code_counts(row, pd.concat([earlier, future], ignore_index=True))
    assert all(alone[k][0] == with_future[k][0] == 1 for k in F.MEMBER_COUNT_FEATURES)
    # the correction of R1, submitted after F1: counts H1 only (as R1 did), not F1 nor R1 itself
    correction = claims_of([("R1", a, "85025", 0, 48)])
    got = F.member_code_counts(correction, pd.concat([earlier, row, future], ignore_index=True))
    assert all(got[k][0] == 1 for k in F.MEMBER_COUNT_FEATURES)
    # a later claim with a later service date does see R1 and H1
    later = claims_of([("L1", a, "85025", 1, 5)])
    assert F.member_code_counts(later, pd.concat([earlier, row]))["member_code_claims_14d"][0] == 2


def test_member_counts_in_the_features_with_and_without_history() -> None:
    """Gold passes the earlier silver claims as history; without it the input rows count among themselves;
    a claim without a member token cannot be linked (0)."""
    token = "c" * 32
    first = one_claim(claim_id="X1", member_token=token, cpt_code="85025",
                      service_date=pd.Timestamp("2025-02-20"), submitted_at=pd.Timestamp("2025-02-21 09:00"))
    second = one_claim(claim_id="X2", member_token=token, cpt_code="85025")
    unlinked = one_claim(claim_id="X3", member_token=None, cpt_code="85025")
    both = F.compute_features(pd.concat([first, second, unlinked], ignore_index=True))
    assert both["member_code_claims_14d"].tolist() == [0, 1, 0]
    assert both["member_code_claims_14d"].dtype == np.dtype("int64")
    history = first[list(F.HISTORY_COLUMNS)]
    alone = F.compute_features(second, history=history)
    assert alone.loc[0, "member_code_claims_14d"] == 1
    assert F.compute_features(second).loc[0, "member_code_claims_14d"] == 0
    with pytest.raises(KeyError, match="history frame lacks column"):
        F.compute_features(second, history=history.drop(columns=["service_date"]))
