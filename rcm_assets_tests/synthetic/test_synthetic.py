"""The synthetic generator: determinism, registry conformance, realism targets, writers and CLI.

`data` is the default world (realism "default"); `clean` the clean one (realism "none") for the
properties that only it has (one row per claim version, the historic shares of second rows). The
realism parts themselves are tested in test_realism.py."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from rcm_assets.lib.columns import PLAN_TYPES, source_column_names, source_columns
from rcm_assets.synthetic import (
    GROUND_TRUTH_COLUMNS,
    Drift,
    generate,
    landing_rows,
    write_ground_truth,
    write_landing_file,
    write_source,
)
from rcm_assets.synthetic import world as ref

START = date(2025, 1, 1)
TS_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$")
DATE_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DRIFT = Drift(date(2025, 2, 15), "BCBS", "imaging")


@pytest.fixture(scope="module")
def data():
    return generate(START, days=75, claims_per_day=400, seed=11)


@pytest.fixture(scope="module")
def clean():
    return generate(START, days=75, claims_per_day=400, seed=11, realism="none")


@pytest.fixture(scope="module")
def drifted():
    return generate(START, days=90, claims_per_day=600, seed=11, drift=DRIFT)


def _latest_truth(d):
    return d.ground_truth[d.ground_truth["adjudicated"]]


# --- determinism ------------------------------------------------------------------------------------


def test_same_seed_gives_identical_frames():
    a = generate(START, 5, 200, seed=3)
    b = generate(START, 5, 200, seed=3)
    for name in ("claims", "remittances", "ground_truth"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    c = generate(START, 5, 200, seed=4)
    assert not a.claims["billed_amount"].equals(c.claims["billed_amount"])


def test_clean_world_is_the_pre_realism_output():
    """realism="none" reproduces, draw for draw, what the generator produced before realism existed
    (figures taken from that version for these arguments)."""
    d = generate(START, 20, 300, seed=5, realism="none")
    c, r, g = d.claims, d.remittances, d.ground_truth
    assert (len(c), len(r), int(g["denied"].sum())) == (6283, 6307, 867)
    assert round(c["billed_amount"].sum(), 2) == 6506728.45
    assert round(r["paid_amount"].sum(), 2) == 2628910.16
    assert round(g["true_denial_probability"].sum(), 6) == 866.649568
    assert (c["claim_id"].iloc[0], c["claim_id"].iloc[-1]) == ("C0913200001", "C0914900258")


@pytest.mark.parametrize("kwargs", [{"days": 0}, {"claims_per_day": 0}, {"claims_per_day": 100_000}])
def test_bad_sizes_are_refused(kwargs):
    args = {"start": START, "days": 3, "claims_per_day": 10, "seed": 1} | kwargs
    with pytest.raises(ValueError):
        generate(**args)


def test_drift_validates_its_names():
    with pytest.raises(ValueError, match="unknown payer"):
        Drift(START, "NOPE", "imaging")
    with pytest.raises(ValueError, match="unknown CPT family"):
        Drift(START, "UHC", "dentistry")
    assert Drift("2025-03-01", "UHC", "lab").start == date(2025, 3, 1)


# --- registry conformance ---------------------------------------------------------------------------


def _assert_conforms(frame: pd.DataFrame, table: str) -> None:
    assert list(frame.columns) == source_column_names(table)
    for col in source_columns(table):
        s = frame[col.name]
        where = f"{table}.{col.name}"
        if col.dtype == "string":
            assert s.dtype == object, where
            assert s.map(lambda x: x is None or type(x) is str).all(), where
        elif col.dtype in ("date", "timestamp"):
            assert s.dtype == "datetime64[ns]", where
            if col.dtype == "date":
                assert (s.dropna() == s.dropna().dt.normalize()).all(), where
        else:
            assert s.dtype == col.dtype, where
        if not col.nullable:
            assert s.notna().all(), f"{where} has nulls"
        values = s.dropna()
        if col.regex:
            bad = values[~values.str.fullmatch(col.regex)]
            assert bad.empty, f"{where} breaks {col.regex}: {bad.head().tolist()}"
        if col.isin:
            assert set(values.unique()) <= set(col.isin), where
        if col.ge is not None:
            assert (values >= col.ge).all(), where
        if col.le is not None:
            assert (values <= col.le).all(), where
        if col.dtype == "string":
            assert not (values == "").any(), f"{where} has empty strings (they would load as NULL)"


def test_frames_follow_the_registry(data):
    _assert_conforms(data.claims, "claims")
    _assert_conforms(data.remittances, "remittances")
    assert list(data.ground_truth.columns) == list(GROUND_TRUTH_COLUMNS)


def test_codes_come_from_the_reference(data):
    c = data.claims
    assert set(c["cpt_code"]) <= set(ref.CPT_CODES)
    assert set(c["icd10_primary"]) <= set(ref.ICD10_CODES)
    assert set(c["place_of_service"]) <= set(ref.PLACE_OF_SERVICE)
    assert set(c["payer_id"]) == set(ref.PAYER_IDS)
    assert (c["plan_type"] == c["payer_id"].map(ref.PAYER_PLAN_TYPE)).all()
    mods = c["modifiers"].dropna().str.split(",").explode()
    assert set(mods) <= set(ref.MODIFIERS)
    assert (c["service_date"] <= c["submitted_at"]).all()
    assert (c["updated_at"] >= c["submitted_at"]).all()


def test_reference_codes_match_the_registry_patterns():
    cpt_re = next(c.regex for c in source_columns("claims") if c.name == "cpt_code")
    icd_re = next(c.regex for c in source_columns("claims") if c.name == "icd10_primary")
    assert all(re.fullmatch(cpt_re, code) for code in ref.CPT_CODES)
    assert all(re.fullmatch(icd_re, code) for code in ref.ICD10_CODES)
    assert all(ref.icd_chapter(code) == chapter for code, chapter in ref.ICD10_CHAPTER.items())
    assert {p.plan_type for p in ref.PAYER_LIST} <= set(PLAN_TYPES)
    assert ref.cpt_family("99213") == "em" and ref.cpt_family("00000") == ref.UNKNOWN
    assert ref.icd_chapter("T81.4XXA") == "injury"
    assert ref.requires_prior_auth("UHC", "imaging") and not ref.requires_prior_auth("MEDICARE", "imaging")
    assert ref.filing_limit_days("CIGNA") == 90 and ref.filing_limit_days("??") == ref.DEFAULT_FILING_LIMIT_DAYS
    assert ref.is_consistent("therapy", "musculoskeletal") and not ref.is_consistent("therapy", "mental")
    assert np.isnan(ref.typical_charge("00000"))


def test_npis_are_luhn_valid(data):
    def luhn_ok(npi: str) -> bool:
        digits = [int(ch) for ch in "80840" + npi]
        total = 0
        for i, dgt in enumerate(reversed(digits)):
            total += (dgt * 2 - 9 if dgt * 2 > 9 else dgt * 2) if i % 2 else dgt
        return total % 10 == 0

    npis = pd.concat([data.claims["billing_npi"], data.claims["rendering_npi"]]).unique()
    assert all(luhn_ok(n) for n in npis)


# --- realism targets --------------------------------------------------------------------------------


def test_denial_rate_is_realistic_and_varies_by_payer(data):
    latest = _latest_truth(data)
    assert 0.10 <= latest["denied"].mean() <= 0.15
    by_payer = latest.groupby("payer_id")["denied"].mean()
    assert by_payer.max() - by_payer.min() > 0.06
    first = data.remittances.drop_duplicates("claim_id")
    assert (first["claim_status"] == "denied").mean() == pytest.approx(latest["denied"].mean())


def test_causes_have_their_target_rates(data):
    v1 = data.ground_truth[data.ground_truth["claim_version"] == 1]
    assert 0.015 <= v1["cause_timely_filing"].mean() <= 0.035
    assert 0.03 <= v1["cause_eligibility_unverified"].mean() <= 0.07
    assert 0.025 <= v1["cause_dx_inconsistent"].mean() <= 0.055
    required = v1[v1["prior_auth_required"]]
    assert 0.08 <= required["cause_missing_prior_auth"].mean() <= 0.25
    # every named cause raises the denial probability
    for cause in [c for c in GROUND_TRUTH_COLUMNS if c.startswith("cause_")]:
        on = v1.loc[v1[cause], "true_denial_probability"].mean()
        off = v1.loc[~v1[cause], "true_denial_probability"].mean()
        assert on > off, cause


def test_denials_carry_the_dominant_cause(data):
    latest = _latest_truth(data)
    denied = latest[latest["denied"]]
    assert denied["denial_carc"].notna().all()
    assert latest.loc[~latest["denied"], "denial_carc"].isna().all()
    filing = denied[denied["cause_timely_filing"]]
    assert (filing["denial_carc"].isin(["29", "16", "50", "18"])).all()
    assert (filing["denial_carc"] == "29").mean() > 0.8


def test_outcomes_arrive_14_to_60_days_after_the_latest_version(data):
    latest = _latest_truth(data)[["claim_id", "submitted_at"]]
    first = data.remittances.sort_values("updated_at").drop_duplicates("claim_id", keep="first")
    joined = first.merge(latest, on="claim_id", how="inner", validate="one_to_one")
    assert len(joined) == len(latest) == data.claims["claim_id"].nunique()
    lag = (joined["adjudicated_at"] - joined["submitted_at"]).dt.total_seconds() / 86_400
    assert lag.min() >= 14 and lag.max() <= 60
    r = data.remittances
    assert (r["updated_at"] >= r["adjudicated_at"]).all()
    assert (r["paid_amount"] <= r["allowed_amount"] + 1e-9).all()
    # the payer prices what was submitted: the first state of the latest version (updates come later)
    submitted = data.claims.drop_duplicates(["claim_id", "claim_version"], keep="first")
    latest_state = submitted.sort_values("claim_version").drop_duplicates("claim_id", keep="last")
    billed = r.merge(latest_state[["claim_id", "billed_amount"]])
    assert (billed["allowed_amount"] <= billed["billed_amount"] + 1e-9).all()
    denied = r["claim_status"] == "denied"
    assert (r.loc[denied, "paid_amount"] == 0).all()


def test_versions_late_rows_and_second_remittances(clean):
    data = clean
    c = data.claims
    n_claims = c["claim_id"].nunique()
    corrected = c.loc[c["claim_version"] >= 2, "claim_id"].nunique() / n_claims
    assert 0.025 <= corrected <= 0.06
    assert not c.duplicated(["claim_id", "claim_version"]).any()
    late = (c["updated_at"] - c["submitted_at"]) > pd.Timedelta(days=1)
    assert 0.01 <= late.mean() <= 0.03
    second = data.remittances["claim_id"].duplicated().sum() / n_claims
    assert 0.03 <= second <= 0.07
    # ground truth: one row per claim version, same keys, one adjudicated version per claim
    gt = data.ground_truth
    assert len(gt) == len(c)
    assert set(zip(gt["claim_id"], gt["claim_version"], strict=True)) == set(
        zip(c["claim_id"], c["claim_version"], strict=True))
    assert gt.loc[gt["adjudicated"], "claim_id"].is_unique
    top = gt.groupby("claim_id")["claim_version"].transform("max")
    assert (gt["adjudicated"] == (gt["claim_version"] == top)).all()
    assert gt["true_denial_probability"].between(0, 1, inclusive="neither").all()


def test_corrections_mostly_fix_the_cause(data):
    gt = data.ground_truth.set_index(["claim_id", "claim_version"])
    v2 = gt.xs(2, level="claim_version")
    v1 = gt.xs(1, level="claim_version").loc[v2.index]
    had = v1["cause_missing_prior_auth"] | v1["cause_eligibility_unverified"] | v1["cause_dx_inconsistent"]
    still = v2["cause_missing_prior_auth"] | v2["cause_eligibility_unverified"] | v2["cause_dx_inconsistent"]
    assert had.mean() > 0.5
    assert still[had].mean() < 0.3
    assert v2["true_denial_probability"].mean() < v1["true_denial_probability"].mean()


def test_drift_raises_denials_for_the_payer_and_family(drifted):
    gt = _latest_truth(drifted)
    cell = gt[(gt["payer_id"] == DRIFT.payer_id) & (gt["cpt_family"] == DRIFT.cpt_family)]
    after = cell["submitted_at"] >= pd.Timestamp(DRIFT.start)
    assert after.sum() > 100 and (~after).sum() > 50
    assert cell.loc[after, "drift_active"].all() and not cell.loc[~after, "drift_active"].any()
    assert not gt.loc[gt.index.difference(cell.index), "drift_active"].any()
    before_rate, after_rate = cell.loc[~after, "denied"].mean(), cell.loc[after, "denied"].mean()
    assert after_rate > before_rate + 0.3
    assert (cell.loc[after & cell["denied"], "denial_carc"] == "197").mean() > 0.5


# --- writers ----------------------------------------------------------------------------------------


def test_write_source_sqlite_round_trip(data, tmp_path):
    db = tmp_path / "source.db"
    write_source(data, f"sqlite:///{db}")
    con = sqlite3.connect(db)
    try:
        for table, frame in (("claims", data.claims), ("remittances", data.remittances)):
            assert con.execute(f"select count(*) from {table}").fetchone()[0] == len(frame)
            cols = [r[1] for r in con.execute(f"pragma table_info({table})")]
            assert cols == source_column_names(table)
            row = con.execute(f"select * from {table} order by rowid limit 1").fetchone()
            for col, value in zip(source_columns(table), row, strict=True):
                if col.dtype == "timestamp":
                    assert TS_TEXT.match(value), (col.name, value)
                elif col.dtype == "date":
                    assert DATE_TEXT.match(value), (col.name, value)
                elif col.dtype == "bool":
                    assert value in (0, 1)
            indexed = {r[0] for r in con.execute(
                "select sql from sqlite_master where type='index' and tbl_name=?", (table,))}
            assert any("(updated_at)" in s for s in indexed) and any("(claim_id)" in s for s in indexed)
        nulls = con.execute("select count(*) from claims where prior_auth_number is null").fetchone()[0]
        assert nulls == data.claims["prior_auth_number"].isna().sum()
        back = pd.read_sql("select * from claims order by rowid", con)
    finally:
        con.close()
    assert back["claim_id"].tolist() == data.claims["claim_id"].tolist()
    assert (pd.to_datetime(back["submitted_at"]) == data.claims["submitted_at"]).all()
    assert np.allclose(back["billed_amount"], data.claims["billed_amount"])
    # append keeps existing rows; replace starts again
    write_source(data, f"sqlite:///{db}", replace=False)
    write_source(data, f"sqlite:///{db}", replace=True)
    con = sqlite3.connect(db)
    assert con.execute("select count(*) from claims").fetchone()[0] == len(data.claims)
    con.close()


def test_write_source_in_memory_sqlite_uses_the_fallback(data):
    small = generate(START, 3, 50, seed=2)
    write_source(small, "sqlite://")  # no file: sqlite3 executemany path, must not raise


@pytest.mark.postgres
def test_write_source_postgres_round_trip():
    base = os.environ.get("RCM_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    admin_url = sa.make_url(base).set(drivername="postgresql+psycopg2")
    name = f"rcm_synth_{uuid.uuid4().hex[:8]}"
    try:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001 - no server: skip, do not fail
        pytest.skip(f"PostgreSQL not available: {exc}")
    small = generate(START, 10, 300, seed=5)
    url = admin_url.set(database=name, drivername="postgresql")  # bare postgresql:// must work too
    try:
        write_source(small, url.render_as_string(hide_password=False))
        engine = sa.create_engine(url.set(drivername="postgresql+psycopg2"))
        with engine.connect() as conn:
            back = pd.read_sql("select * from claims", conn)
            n_rem = conn.exec_driver_sql("select count(*) from remittances").scalar()
        engine.dispose()
        assert n_rem == len(small.remittances)
        key = ["claim_id", "claim_version", "updated_at"]  # an in-place update shares claim_id and version
        back = back.sort_values(key).reset_index(drop=True)
        want = small.claims.sort_values(key).reset_index(drop=True)
        for col in ("patient_dob", "service_date"):
            back[col] = pd.to_datetime(back[col])
        pd.testing.assert_frame_equal(back, want, check_dtype=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def test_landing_file_holds_the_rows_of_that_day(data, tmp_path):
    day = date(2025, 2, 10)
    path = write_landing_file(data, day, tmp_path, fmt="csv", table="claims", suffix="_a")
    assert path.name == "claims_2025-02-10_a.csv"
    expected = landing_rows(data, day, "claims")
    assert len(expected) > 0
    upd = data.claims["updated_at"]
    assert len(expected) == ((upd >= "2025-02-10") & (upd < "2025-02-11")).sum()
    got = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(got.columns) == source_column_names("claims")
    assert got["claim_id"].tolist() == expected["claim_id"].tolist()
    assert got["submitted_at"].str.match(TS_TEXT.pattern).all()
    assert got["service_date"].str.match(DATE_TEXT.pattern).all()
    pq = write_landing_file(data, day, tmp_path, fmt="parquet", table="remittances")
    assert pq.name == "remittances_2025-02-10.parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(pq), landing_rows(data, day, "remittances"))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_ground_truth_parquet(data, tmp_path):
    path = write_ground_truth(data, tmp_path / "gt" / "truth.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(path), data.ground_truth)


# --- CLI --------------------------------------------------------------------------------------------


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"RCM_DATA_DIR": str(cwd / "data")}
    env.pop("RCM_SOURCE_URL", None)
    return subprocess.run([sys.executable, "-m", "rcm_assets.synthetic", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_writes_source_ground_truth_and_landing(tmp_path):
    landing = tmp_path / "landing"
    res = _cli("--start", "2025-01-01", "--days", "4", "--claims-per-day", "50", "--seed", "9",
               "--landing-dir", str(landing), "--landing-days", "2025-01-02", "--landing-only",
               "--drift-start", "2025-01-02", "--drift-payer", "UHC", "--drift-cpt-family", "imaging",
               "--realism", "none", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "synthetic source ready" in res.stderr and "200 claims" in res.stderr
    db = tmp_path / "data" / "source.db"
    truth = pd.read_parquet(tmp_path / "data" / "ground_truth" / "claims_truth.parquet")
    in_file = pd.read_csv(landing / "claims_2025-01-02.csv", dtype=str)
    con = sqlite3.connect(db)
    n_source = con.execute("select count(*) from claims").fetchone()[0]
    on_day = con.execute("select count(*) from claims where updated_at >= '2025-01-02' "
                         "and updated_at < '2025-01-03'").fetchone()[0]
    con.close()
    assert on_day == 0 and n_source + len(in_file) == len(truth)
    expected = generate(START, 4, 50, seed=9, drift=Drift(date(2025, 1, 2), "UHC", "imaging"), realism="none")
    pd.testing.assert_frame_equal(truth, expected.ground_truth)  # same data in another process


@pytest.mark.parametrize("args", [
    ["--start", "2025-01-01", "--days", "0", "--claims-per-day", "5"],
    ["--start", "2025-13-01", "--days", "1", "--claims-per-day", "5"],
    ["--start", "2025-01-01", "--days", "1", "--claims-per-day", "5", "--drift-payer", "UHC"],
    ["--start", "2025-01-01", "--days", "1", "--claims-per-day", "5", "--landing-days", "2025-01-01"],
    ["--start", "2025-01-01", "--days", "1", "--claims-per-day", "5", "--realism", "extreme"],
    ["--start", "2025-01-01", "--days", "1", "--claims-per-day", "5", "--facility-tz", "Mars/Olympus_Mons"],
])
def test_cli_bad_arguments_exit_2(tmp_path, args):
    from rcm_assets.synthetic.__main__ import main

    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
