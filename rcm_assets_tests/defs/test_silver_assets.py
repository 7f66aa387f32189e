"""Silver assets: contract validation with a reject threshold, pseudonymization, and schema changes.

Mutating tests change their own copy of the synthetic source (`source_in_data_dir`) and run bronze → silver
for one day in process; read-only assertions use the whole-graph `pipeline` run.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from rcm_assets.defs import bronze, gold, silver
from rcm_assets.lib import transforms
from rcm_assets.lib.columns import columns, phi_column_names
from rcm_assets.platform.resources import build_resources
from rcm_assets_tests.conftest import materialize_range

DAY = "2025-03-04"
PHI_KEY = b"test-phi-key-0123456789abcdef"  # conftest's RCM_PHI_KEY


def next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def lake_file(data_dir: Path, layer: str, table: str, day: str = DAY) -> Path:
    return data_dir / "lake" / layer / table / f"dt={day}" / "part-0.parquet"


def sql(db: Path, statement: str, params: tuple = ()) -> list[tuple]:
    with closing(sqlite3.connect(db)) as conn, conn:
        return conn.execute(statement, params).fetchall()


def day_row_count(db: Path, day: str = DAY) -> int:
    return sql(db, "SELECT count(*) FROM claims WHERE updated_at >= ? AND updated_at < ?", (day, next_day(day)))[0][0]


def corrupt(db: Path, n: int, assignment: str, day: str = DAY) -> list[str]:
    """Apply `assignment` to the rows of `n` claims that have a single row on `day`; returns their ids."""
    ids = [r[0] for r in sql(db, "SELECT claim_id FROM claims WHERE updated_at >= ? AND updated_at < ? "
                                 "GROUP BY claim_id HAVING count(*) = 1 ORDER BY claim_id LIMIT ?",
                             (day, next_day(day), n))]
    assert len(ids) == n
    marks = ",".join("?" * n)
    sql(db, f"UPDATE claims SET {assignment} WHERE claim_id IN ({marks}) AND updated_at >= ? AND updated_at < ?",
        (*ids, day, next_day(day)))
    return ids


def run_day(assets: list, day: str = DAY, **kwargs):
    instance = dg.DagsterInstance.ephemeral()
    return materialize_range(assets, day, day, instance, build_resources("dev"), **kwargs), instance


def check_evaluation(result, name: str, asset: str = "silver/claims"):
    found = [e for e in result.get_asset_check_evaluations()
             if e.check_name == name and e.asset_key.to_user_string() == asset]
    assert len(found) == 1, [(e.asset_key, e.check_name) for e in result.get_asset_check_evaluations()]
    return found[0]


def materialized(result, node: str) -> set[str]:
    return {m.asset_key.to_user_string() for m in result.asset_materializations_for_node(node)}


def raw_phi(bronze_rows: pd.DataFrame) -> dict[str, set[str]]:
    return {name: set(bronze_rows[name].astype(str)) for name in ("patient_name", "member_id", "patient_address")}


def cell_text(frame: pd.DataFrame) -> str:
    return "\n".join(frame.astype(str).to_numpy().ravel())


# --------------------------------------------------------------------------------------------------
# read-only: the whole pipeline's silver


@pytest.fixture(scope="module")
def lake_tables(pipeline) -> dict[str, pd.DataFrame]:
    lake = pipeline.data_dir / "lake"

    def read(layer: str, table: str) -> pd.DataFrame:
        frame = pd.read_parquet(lake / layer / table)  # hive layout: `dt` comes back from the folder names
        return frame.assign(dt=frame["dt"].astype(str))

    return {"bronze": read("bronze", "claims"), "silver": read("silver", "claims"),
            "rejects": read("silver", "claims_rejects")}


def test_silver_holds_every_accepted_state_of_every_claim_version(lake_tables):
    """Silver is the history: corrected versions and in-place updates are all kept, once each (the old
    silver kept only the latest version per claim and day, so a same-day update replaced the submission)."""
    bronze_rows, silver_rows, rejects = lake_tables["bronze"], lake_tables["silver"], lake_tables["rejects"]
    state = ["dt", "claim_id", "claim_version", "updated_at"]
    assert not silver_rows.duplicated(state).any()
    rejected = set(zip(rejects["dt"], rejects["claim_id"], rejects["updated_at"], strict=True))
    accepted = bronze_rows[[k not in rejected for k in
                            zip(bronze_rows["dt"], bronze_rows["claim_id"], bronze_rows["updated_at"], strict=True)]]
    assert set(map(tuple, accepted[state].itertuples(index=False))) == set(
        map(tuple, silver_rows[state].itertuples(index=False)))
    assert (silver_rows["claim_version"] > 1).any(), "the synthetic data has corrected claims"
    assert silver_rows.duplicated(["claim_id", "claim_version"]).any(), "the synthetic data updates rows in place"


def test_silver_is_pseudonymized_without_phi(lake_tables):
    bronze_rows, silver_rows, rejects = lake_tables["bronze"], lake_tables["silver"], lake_tables["rejects"]
    assert not phi_column_names() & set(silver_rows.columns)
    assert not phi_column_names() & set(rejects.columns)
    assert transforms.phi_leaks(silver_rows.drop(columns=["dt"]), bronze_rows) == []
    assert transforms.phi_leaks(rejects.drop(columns=["dt"]), bronze_rows) == []
    # member_id became the keyed HMAC token of the run's key, row for row
    keys = ["dt", "claim_id", "claim_version"]
    joined = silver_rows[keys + ["member_token"]].merge(bronze_rows[keys + ["member_id"]], on=keys, how="left")
    assert joined["member_id"].notna().all()
    assert (joined["member_token"] == transforms.pseudonymize_member(joined["member_id"], PHI_KEY)).all()
    assert joined["member_token"].str.fullmatch(r"[0-9a-f]{32}").all()
    age = silver_rows["patient_age"]
    assert age.dropna().between(0, 90).all()
    assert (silver_rows.loc[age.isna(), "defect_demographics"] == 1).all()  # unknown age: a flagged defect


# --------------------------------------------------------------------------------------------------
# one day, bronze -> silver, in this test's own data folder


def test_day_leaves_no_raw_phi_in_files_event_log_or_captured_logs(
    source_in_data_dir, isolated_env: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture
):
    # one unusable row (the rejects path: reasons, metadata, descriptions) and one with a bad zip and a
    # date of birth after the service, which lands (issue 24) with its zip and age unknown
    db = isolated_env / "source.db"
    unusable_claim, bad_zip_claim = corrupt(db, 2, "patient_zip = 'Z1234'")
    sql(db, "UPDATE claims SET units = 0 WHERE claim_id = ?", (unusable_claim,))
    sql(db, "UPDATE claims SET patient_dob = '2099-01-01' WHERE claim_id = ?", (bad_zip_claim,))  # after service
    caplog.set_level(logging.DEBUG)
    result, instance = run_day([bronze.claims, silver.claims])
    assert result.success

    bronze_rows = pd.read_parquet(lake_file(isolated_env, "bronze", "claims"))
    silver_file, rejects_file = lake_file(isolated_env, "silver", "claims"), lake_file(isolated_env, "silver",
                                                                                      "claims_rejects")
    silver_rows, rejects = pd.read_parquet(silver_file), pd.read_parquet(rejects_file)
    assert list(rejects["claim_id"]) == [unusable_claim] and rejects["reasons"].iloc[0] == "units:greater_than_or_equal_to(1)"
    landed = silver_rows[silver_rows["claim_id"] == bad_zip_claim]
    assert len(landed) == 1 and landed["patient_zip3"].isna().all() and landed["patient_age"].isna().all()
    assert landed["claim_defects"].tolist() == ["demographics"]
    assert len(silver_rows) > 50
    assert transforms.phi_leaks(silver_rows, bronze_rows) == []
    assert transforms.phi_leaks(rejects, bronze_rows) == []

    raw = raw_phi(bronze_rows)
    values = set(silver_rows.astype(str).to_numpy().ravel()) | set(rejects.astype(str).to_numpy().ravel())
    silver_text = cell_text(silver_rows) + cell_text(rejects)
    for name, found in raw.items():
        assert not values & found, name
        assert not [v for v in found if v in silver_text], name
    # the Parquet bytes: the same search finds raw values in the bronze file, and none in silver's
    needles = [v.encode() for v in raw["patient_name"] | raw["member_id"]]
    assert any(n in lake_file(isolated_env, "bronze", "claims").read_bytes() for n in needles)
    for path in (silver_file, rejects_file):
        data = path.read_bytes()
        assert not [n for n in needles if n in data], path

    # the Dagster event log (messages, metadata, check descriptions) and everything logged or printed
    event_log = "\n".join(dg.serialize_value(entry) for entry in instance.all_logs(result.run_id))
    captured = capfd.readouterr()
    logged = caplog.text + captured.out + captured.err
    assert "silver/claims" in event_log and "reject_rate_within_threshold" in event_log
    assert "silver/claims:" in logged, "the run's log lines were captured"
    for name, found in raw.items():
        assert not [v for v in found if v in event_log], f"raw {name} in the event log"
        assert not [v for v in found if v in logged], f"raw {name} in the captured logs"


def test_reject_rate_above_threshold_fails_writes_rejects_but_not_silver(source_in_data_dir, isolated_env: Path):
    db = isolated_env / "source.db"
    rows = day_row_count(db)
    bad = corrupt(db, math.ceil(0.05 * rows), "billed_amount = -billed_amount")
    result, _ = run_day([bronze.claims, silver.claims])
    assert not result.success

    check = check_evaluation(result, "reject_rate_within_threshold")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["reject_rate"].value == pytest.approx(len(bad) / rows)
    assert check.metadata["threshold"].value == 0.01
    assert check.metadata["rows_rejected"].value == len(bad)
    assert "billed_amount" in check.metadata["rejects_by_column"].value
    assert DAY in check.description
    rejects = pd.read_parquet(lake_file(isolated_env, "silver", "claims_rejects"))
    assert sorted(rejects["claim_id"]) == sorted(bad)
    assert rejects["failed_columns"].str.contains("billed_amount").all()
    assert rejects["reasons"].str.contains("billed_amount").all()
    assert not lake_file(isolated_env, "silver", "claims").exists()
    assert materialized(result, "silver_claims") == {"silver/claims_rejects"}
    assert lake_file(isolated_env, "bronze", "claims").exists()


def test_reject_rate_within_threshold_succeeds_and_counts_rejects(source_in_data_dir, isolated_env: Path):
    db = isolated_env / "source.db"
    rows = day_row_count(db)
    n = max(1, int(0.005 * rows))
    assert n / rows <= 0.01
    bad = corrupt(db, n, "units = 0")
    result, _ = run_day([bronze.claims, silver.claims])
    assert result.success
    check = check_evaluation(result, "reject_rate_within_threshold")
    assert check.passed and check.metadata["rows_rejected"].value == n
    rejects = pd.read_parquet(lake_file(isolated_env, "silver", "claims_rejects"))
    assert sorted(rejects["claim_id"]) == sorted(bad)
    assert rejects["reasons"].str.contains("units").all()
    bronze_rows = pd.read_parquet(lake_file(isolated_env, "bronze", "claims"))
    silver_rows = pd.read_parquet(lake_file(isolated_env, "silver", "claims"))
    assert set(silver_rows["claim_id"]) == set(bronze_rows["claim_id"]) - set(bad)
    assert len(silver_rows) == bronze_rows["claim_id"].nunique() - n
    (good,) = [m for m in result.asset_materializations_for_node("silver_claims")
               if m.asset_key == dg.AssetKey(["silver", "claims"])]
    assert good.metadata["rows_rejected"].value == n
    assert good.metadata["dagster/row_count"].value == len(silver_rows)


def test_a_day_where_every_claim_has_defects_lands_and_passes_the_reject_rate(source_in_data_dir,
                                                                             isolated_env: Path):
    """Issue 24: test NPIs failing the check digit and ICD-9 codes after 2015 were rejected and the 100%
    reject rate blocked the day; they are the claims payers deny, so they land flagged and count as no reject."""
    db = isolated_env / "source.db"
    rows = day_row_count(db)
    sql(db, "UPDATE claims SET billing_npi = '1234567890', icd10_primary = '250.00', cpt_code = 'ABC12' "
            "WHERE updated_at >= ? AND updated_at < ?", (DAY, next_day(DAY)))
    result, _ = run_day([bronze.claims, silver.claims])
    assert result.success
    check = check_evaluation(result, "reject_rate_within_threshold")
    assert check.passed and check.metadata["rows_rejected"].value == 0 and check.metadata["rows_in"].value == rows
    silver_rows = pd.read_parquet(lake_file(isolated_env, "silver", "claims"))
    assert len(silver_rows) == rows
    assert silver_rows["defect_npi"].eq(1).all() and silver_rows["defect_diagnosis_code"].eq(1).all()
    assert silver_rows["defect_procedure_code"].eq(1).all() and silver_rows["cpt_code"].isna().all()
    assert (silver_rows["billing_npi"] == "1234567890").all() and (silver_rows["icd_code_set"] == "icd9").all()
    assert pd.read_parquet(lake_file(isolated_env, "silver", "claims_rejects")).empty
    (good,) = [m for m in result.asset_materializations_for_node("silver_claims")
               if m.asset_key == dg.AssetKey(["silver", "claims"])]
    assert good.metadata["rows_with_defects"].value == rows
    assert good.metadata["defects_by_flag"].value["npi"] == rows


def test_reject_threshold_is_run_config(source_in_data_dir, isolated_env: Path):
    db = isolated_env / "source.db"
    rows = day_row_count(db)
    bad = corrupt(db, math.ceil(0.05 * rows), "billed_amount = -billed_amount")
    assert silver.claims.op.name == "silver_claims"
    result, _ = run_day([bronze.claims, silver.claims],
                        run_config={"ops": {"silver_claims": {"config": {"max_reject_rate": 0.1}}}})
    assert result.success
    check = check_evaluation(result, "reject_rate_within_threshold")
    assert check.passed and check.metadata["threshold"].value == 0.1
    assert check.metadata["rows_rejected"].value == len(bad)
    assert sorted(pd.read_parquet(lake_file(isolated_env, "silver", "claims_rejects"))["claim_id"]) == sorted(bad)
    silver_rows = pd.read_parquet(lake_file(isolated_env, "silver", "claims"))
    assert not set(bad) & set(silver_rows["claim_id"]) and len(silver_rows) > 0


def test_unknown_new_source_column_is_tolerated_with_a_warning(source_in_data_dir, isolated_env: Path):
    db = isolated_env / "source.db"
    sql(db, "ALTER TABLE claims ADD COLUMN referral_source TEXT")
    sql(db, "UPDATE claims SET referral_source = 'portal'")
    result, instance = run_day([bronze.claims, silver.claims])
    assert result.success
    warnings = [e.user_message for e in instance.all_logs(result.run_id) if e.level == logging.WARNING]
    assert any("referral_source" in message for message in warnings), warnings
    (materialization,) = result.asset_materializations_for_node("bronze__claims")
    assert materialization.metadata["unknown_source_columns"].value == "referral_source"
    bronze_rows = pd.read_parquet(lake_file(isolated_env, "bronze", "claims"))
    silver_rows = pd.read_parquet(lake_file(isolated_env, "silver", "claims"))
    assert len(bronze_rows) == day_row_count(db)
    assert "referral_source" not in bronze_rows.columns and "referral_source" not in silver_rows.columns
    assert set(silver_rows["claim_id"]) == set(bronze_rows["claim_id"])


def test_empty_day_writes_empty_files_and_succeeds(source_in_data_dir, isolated_env: Path):
    data = source_in_data_dir.data
    last_arrival = max(data.claims["updated_at"].max(), data.remittances["updated_at"].max())
    day = (last_arrival.date() + timedelta(days=2)).isoformat()
    assert day <= date.today().isoformat()  # the partition exists
    assets = [bronze.claims, bronze.remittances, silver.claims, silver.remittances, gold.claim_features]
    result, _ = run_day(assets, day)
    assert result.success
    expected_columns = {
        ("bronze", "claims"): None, ("bronze", "remittances"): None,
        ("silver", "claims"): [c.name for c in columns("claims", "silver")],
        ("silver", "remittances"): [c.name for c in columns("remittances", "silver")],
        ("silver", "claims_rejects"): None, ("silver", "remittances_rejects"): None,
        ("gold", "claim_features"): None,
    }
    for (layer, table), names in expected_columns.items():
        path = lake_file(isolated_env, layer, table, day)
        assert path.exists(), path
        frame = pd.read_parquet(path)
        assert frame.empty and len(frame.columns) > 3, (layer, table)
        if names is not None:
            assert list(frame.columns) == names, (layer, table)
    row_count = check_evaluation(result, "row_count_recorded", "bronze/claims")
    assert not row_count.passed and row_count.severity == dg.AssetCheckSeverity.WARN


def test_day_checks_on_rows_split_once_give_the_figures_of_filtering_each_day():
    """Issue 16: silver splits the run's rows by day once (`rows_by_day`) instead of filtering the whole
    frames once per day; each day's checks keep their own figures, days without rows included."""
    days = ["2025-03-01", "2025-03-02", "2025-03-03"]
    raw = pd.DataFrame({"dt": ["2025-03-01"] * 4 + ["2025-03-02"] * 6, "claim_id": [f"C{i}" for i in range(10)]})
    rejects = pd.DataFrame({"dt": ["2025-03-02"] * 2, "claim_id": ["C5", "C6"]})
    good = pd.DataFrame({"claim_id": ["C0", "C0", "C1", "C7", "C8", "C9", "C4", "C3"],
                         "claim_version": [1] * 8,
                         "updated_at": pd.to_datetime(["2025-03-01"] * 8),
                         "dt": ["2025-03-01"] * 3 + ["2025-03-02"] * 3 + ["2025-03-01"] * 2})
    key = dg.AssetKey(["silver", "claims"])
    phi_ok = dg.AssetCheckResult(check_name="no_phi_in_silver", passed=True, asset_key=key)
    stats = {"rejects_by_column": {"payer_id": 2}, "rejects_by_check": {"not_nullable": 2}}
    split = {name: silver.rows_by_day(frame, days, cols) for name, frame, cols in (
        ("raw", raw, ["dt"]), ("rejects", rejects, ["dt"]),
        ("good", good, list(silver.contracts.SILVER_KEY_COLUMNS["claims"])))}
    assert list(split["good"]["2025-03-01"].columns) == ["claim_id", "claim_version", "updated_at", "dt"]
    assert split["raw"]["2025-03-03"].empty and list(split["raw"]["2025-03-03"].columns) == ["dt"]
    for day in days:
        whole = silver.day_checks(stats, raw, rejects, good, 0.1, "claims", key, phi_ok, day)
        once = silver.day_checks(stats, split["raw"][day], split["rejects"][day], split["good"][day], 0.1,
                                 "claims", key, phi_ok, day)
        assert [(c.check_name, c.passed, c.metadata) for c in once] == \
               [(c.check_name, c.passed, c.metadata) for c in whole]
    checks_of = {day: silver.day_checks(stats, split["raw"][day], split["rejects"][day], split["good"][day], 0.1,
                                        "claims", key, phi_ok, day) for day in days}
    assert [c.passed for c in checks_of["2025-03-01"]] == [True, True, False]  # C0's state twice
    assert [c.passed for c in checks_of["2025-03-02"]] == [False, True, True]  # 2 of 6 rejected
    assert checks_of["2025-03-02"][0].metadata["rows_in"].value == 6
    no_dt = silver.rows_by_day(raw.drop(columns=["dt"]), days, ["dt", "claim_id"])
    assert all(len(no_dt[d]) == 10 for d in days)  # a frame without dt counts for every day
