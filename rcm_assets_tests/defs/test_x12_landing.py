"""X12 837/835 files through the landing folder: the sensor requests their days, bronze reads them, and
the silver rows equal the SQL path's for the same days (round trip); bad EDI is quarantined with the
envelope, segment position and problem; patient names never leave bronze."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from rcm_assets.defs import bronze, sensors, silver
from rcm_assets.defs.sensors import landing_file_sensor
from rcm_assets.lib import settings
from rcm_assets.lib.columns import source_column_names
from rcm_assets.platform.resources import LandingResource, build_resources
from rcm_assets.synthetic import generate, write_source, write_x12_files
from rcm_assets_tests.conftest import materialize_range

START = date(2025, 1, 20)
DAYS = [date(2025, 3, 4), date(2025, 3, 5)]
TZ = "America/New_York"
INGEST = ["_ingested_at", "_source", "_run_id"]


@pytest.fixture(scope="module")
def data():
    return generate(start=START, days=45, claims_per_day=60, seed=5, facility_tz=TZ)


@pytest.fixture()
def x12_env(data, isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's data folder: an SQL source with the same rows, and the X12 files of DAYS in landing."""
    monkeypatch.setenv("RCM_FACILITY_TZ", TZ)
    monkeypatch.setattr(sensors, "SETTLE_SECONDS", 0.0)
    write_source(data, settings.source_url())
    write_x12_files(data, DAYS, settings.landing_dir(), TZ)
    return isolated_env


def without_rows(data):
    """The same synthetic world with an empty SQL source: its rows arrive as X12 files only."""
    return replace(data, claims=data.claims.iloc[0:0], remittances=data.remittances.iloc[0:0])


def tick(landing_dir: Path, quarantine_dir: Path, cursor: str | None = None) -> dg.SensorResult:
    landing = LandingResource(landing_dir=str(landing_dir), quarantine_dir=str(quarantine_dir),
                              first_day="2025-01-01")
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"landing": landing})
        return landing_file_sensor(context)


def day_rows(frame: pd.DataFrame, days: list[date]) -> pd.DataFrame:
    keep = frame["updated_at"].dt.normalize().dt.date.isin(days)
    return frame[keep]


def test_the_sensor_requests_each_table_and_day_an_x12_file_holds(x12_env, data):
    landing = settings.landing_dir()
    files = sorted(p.name for p in landing.iterdir())
    assert any(f.endswith(".837") for f in files) and any(f.endswith(".835") for f in files)
    result = tick(landing, settings.quarantine_dir())
    requested = {(r.asset_selection[0].to_user_string(), r.partition_key) for r in result.run_requests}
    expected = {(f"bronze/{table}", d.isoformat()) for d in DAYS for table in ("claims", "remittances")
                if len(day_rows(getattr(data, table), [d]))}
    assert requested == expected
    assert len({r.run_key for r in result.run_requests}) == len(result.run_requests)


X12_ONLY = ("payer_claim_control_number", "cas_group")


def test_x12_only_days_give_the_same_silver_rows_as_the_sql_path(x12_env, data, tmp_path):
    """Round trip: the same days ingested from X12 files alone and from the SQL source alone."""
    first, last = DAYS[0].isoformat(), DAYS[-1].isoformat()
    assets = [bronze.claims, bronze.remittances, silver.claims, silver.remittances]
    sql_lake = tmp_path / "sql_lake"
    x12_landing = settings.landing_dir()
    # 1. the SQL path: the same source, no landing files
    hidden = tmp_path / "hidden_landing"
    shutil.move(x12_landing, hidden)
    resources = build_resources("dev")
    result = materialize_range(assets, first, last, dg.DagsterInstance.ephemeral(), resources)
    assert result.success
    shutil.move(settings.data_dir() / "lake", sql_lake)
    # 2. the X12 path: an empty SQL source, the files back in landing
    shutil.move(hidden, x12_landing)
    write_source(without_rows(data), settings.source_url())
    result = materialize_range(assets, first, last, dg.DagsterInstance.ephemeral(), build_resources("dev"))
    assert result.success

    for table in ("claims", "remittances"):
        from_sql = pd.read_parquet(sql_lake / "silver" / table)
        from_x12 = pd.read_parquet(settings.data_dir() / "lake" / "silver" / table)
        # CLP07 and the CAS group are carried only by X12 (the generator's SQL source leaves them null)
        columns = [c for c in from_sql.columns if c not in INGEST and c not in X12_ONLY]
        order = ["claim_id", "updated_at"]
        left = from_sql[columns].sort_values(order, ignore_index=True)
        right = from_x12[columns].sort_values(order, ignore_index=True)
        assert len(left) > 50
        pd.testing.assert_frame_equal(left, right, check_categorical=False)
        assert from_x12["_source"].str.startswith("landing:").all()


def test_patient_names_from_x12_never_leave_bronze(x12_env, data):
    first, last = DAYS[0].isoformat(), DAYS[-1].isoformat()
    write_source(without_rows(data), settings.source_url())
    result = materialize_range([bronze.claims, silver.claims], first, last, dg.DagsterInstance.ephemeral(),
                               build_resources("dev"))
    assert result.success
    names = set(day_rows(data.claims, DAYS)["patient_name"])
    streets = set(day_rows(data.claims, DAYS)["patient_address"])
    bronze_rows = pd.read_parquet(settings.data_dir() / "lake" / "bronze" / "claims")
    assert names <= set(bronze_rows["patient_name"])  # the X12 names did arrive (PHI lives in bronze)
    texts = [str(e) for e in result.all_events]
    for event in result.get_asset_materialization_events():
        texts += [str(v.value) for v in event.materialization.metadata.values()]
    silver_text = pd.read_parquet(settings.data_dir() / "lake" / "silver" / "claims").astype(str).to_csv()
    for value in list(names)[:50] + list(streets)[:50]:
        assert value not in silver_text
        assert not any(value in text for text in texts)


def test_bad_x12_is_quarantined_naming_envelope_position_and_problem(x12_env):
    landing, quarantine = settings.landing_dir(), settings.quarantine_dir()
    good = next(p for p in landing.iterdir() if p.suffix == ".837")
    text = good.read_text()
    (landing / "truncated.837").write_text(text[: len(text) // 2])  # no IEA
    (landing / "garbage.edi").write_bytes(bytes(range(256)) * 4)
    (landing / "empty.835").write_bytes(b"")
    (landing / "claims_not_remits.835").write_text(text)  # an 837 where an 835 is expected
    result = tick(landing, quarantine)
    reasons = {json.loads(p.read_text())["file"]: json.loads(p.read_text())
               for p in quarantine.glob("*.reason.json")}
    assert set(reasons) == {"truncated.837", "garbage.edi", "empty.835", "claims_not_remits.835"}
    assert reasons["garbage.edi"]["reason"] == "not_x12"
    assert reasons["empty.835"]["reason"] == "empty"
    for name in ("truncated.837", "claims_not_remits.835"):
        record = reasons[name]
        assert record["reason"] == "bad_x12"
        assert record["detail"]["envelope"] and record["detail"]["segment_position"]
        assert record["detail"]["problem"]
    assert not {r.tags["rcm/landing_file"] for r in result.run_requests} & set(reasons)


def test_a_bad_transaction_set_is_refused_and_the_rest_of_the_file_kept(x12_env):
    landing, quarantine = settings.landing_dir(), settings.quarantine_dir()
    good = next(p for p in landing.iterdir() if p.suffix == ".837")
    segments = good.read_text().split("~")
    se = next(i for i, s in enumerate(segments) if s.strip().startswith("SE*"))
    parts = segments[se].strip().split("*")
    # SE02 not matching ST02 (a miscounted SE01 is only logged: public senders write it)
    segments[se] = segments[se].replace(f"SE*{parts[1]}*{parts[2]}", f"SE*{parts[1]}*9999", 1)
    broken = landing / "one_bad_set.x12"
    broken.write_text("~".join(segments))
    good.unlink()
    result = tick(landing, quarantine)
    assert any(r.tags["rcm/landing_file"] == broken.name for r in result.run_requests)
    (record,) = quarantine.glob("one_bad_set.x12.*.rejected.json")
    rejected = json.loads(record.read_text())["rejected_transaction_sets"]
    assert len(rejected) == 1 and rejected[0]["segment"] == "SE" and "ST" in rejected[0]["envelope"]


def test_a_wrong_interchange_control_number_lands_the_file_and_records_a_warning(x12_env):
    """IEA02 rewritten (as de-identification tools do) around intact sets: every claim lands, the warning
    names the file, the envelope and the IEA segment in a .warnings.json and a landing/quarantine event."""
    landing, quarantine = settings.landing_dir(), settings.quarantine_dir()
    good = next(p for p in landing.iterdir() if p.suffix == ".837")
    segments = good.read_text().split("~")
    iea = next(i for i, s in enumerate(segments) if s.strip().startswith("IEA*"))
    segments[iea] = segments[iea].rsplit("*", 1)[0] + "*999999999"
    rewritten = landing / "rewritten_iea.837"
    rewritten.write_text("~".join(segments))
    good.unlink()
    result = tick(landing, quarantine)
    assert any(r.tags["rcm/landing_file"] == rewritten.name for r in result.run_requests)
    assert not list(quarantine.glob("*.reason.json")) and not list(quarantine.glob("rewritten_iea.837.*.rejected.json"))
    (record,) = quarantine.glob("rewritten_iea.837.*.warnings.json")
    content = json.loads(record.read_text())
    assert content["file"] == rewritten.name and content["rejected_transaction_sets"] == []
    (warning,) = content["envelope_warnings"]
    assert warning["segment"] == "IEA" and warning["envelope"].startswith("ISA ")
    assert "IEA02 does not match" in warning["problem"]
    events = [e for e in result.asset_events if e.metadata["file"].value == rewritten.name]
    assert [e.metadata["reason"].value for e in events] == ["x12_envelope_warnings"]
    assert "IEA02 does not match" in events[0].metadata["message"].value


def test_rcm_extract_input_an_835_lands_its_days(x12_env, data, monkeypatch):
    from rcm_assets.cli.main import main

    monkeypatch.setenv("DAGSTER_HOME", str(x12_env.parent / "dagster_home"))
    remits = sorted(p for p in settings.landing_dir().iterdir() if p.suffix == ".835")[0]
    day = date.fromisoformat(remits.stem.split("_")[-1])  # the generator names its files by day
    outside = x12_env / "incoming" / remits.name
    outside.parent.mkdir()
    shutil.move(remits, outside)
    assert main(["extract", "--input", str(outside), "--lookback-days", "0"]) == 0
    assert (settings.landing_dir() / remits.name).is_file()
    landed = pd.read_parquet(settings.data_dir() / "lake" / "bronze" / "remittances" / f"dt={day}")
    assert len(landed) == len(day_rows(data.remittances, [day])) > 0
    assert set(source_column_names("remittances")) <= set(landed.columns)


def test_an_x12_file_of_a_future_day_is_refused(x12_env):
    from rcm_assets.lib import landing

    path = sorted(settings.landing_dir().glob("*.837"))[0]
    day = date.fromisoformat(path.stem.split("_")[-1])
    with pytest.raises(landing.LandingError) as refused:
        landing.validate_x12_file(path, date(2025, 1, 1), day - timedelta(days=1), TZ)
    assert refused.value.reason == "future_date" and str(day) in str(refused.value)


def test_rcm_extract_input_x12_dry_run_reads_the_file_and_writes_nothing(x12_env, monkeypatch):
    from rcm_assets.cli.main import main

    monkeypatch.setenv("DAGSTER_HOME", str(x12_env.parent / "dagster_home"))
    claims = sorted(settings.landing_dir().glob("*.837"))[0]
    outside = x12_env / "incoming" / claims.name
    outside.parent.mkdir()
    shutil.move(claims, outside)
    assert main(["extract", "--input", str(outside), "--lookback-days", "0", "--dry-run"]) == 0
    assert not (settings.landing_dir() / claims.name).exists()
    assert not (settings.data_dir() / "lake").exists()
    broken = x12_env / "incoming" / "broken.837"
    broken.write_text(outside.read_text()[:300])
    assert main(["extract", "--input", str(broken), "--dry-run"]) == 2


def test_a_payer_835_without_process_dates_is_adjudicated_no_later_than_its_file(x12_env):
    """Payers' 835s carry only BPR16, the payment date, often days after the ERA was produced: the row's
    adjudication falls back to the group's creation time, so silver's updated_at >= adjudicated_at holds."""
    from rcm_assets.lib import x12

    remits = sorted(settings.landing_dir().glob("*.835"))[0]
    segments = [s for s in remits.read_text().split("~") if not s.strip().startswith("DTM*009")]
    for i, seg in enumerate(segments):
        if seg.strip().startswith("BPR*"):
            parts = seg.split("*")
            parts[16] = "20991231"
            segments[i] = "*".join(parts)
    text = "~".join(segments)
    # the SE01 segment counts no longer match: recount each transaction set
    fixed, count = [], 0
    for seg in text.split("~"):
        body = seg.strip()
        count = 1 if body.startswith("ST*") else count + 1
        if body.startswith("SE*"):
            parts = seg.split("*")
            parts[1] = str(count)
            seg = "*".join(parts)
        fixed.append(seg)
    batch = x12.read_x12("~".join(fixed).encode(), facility_tz=TZ)
    assert not batch.rejected and len(batch.remittances) > 10
    rows = batch.remittances
    assert (rows["adjudicated_at"] == rows["updated_at"]).all()


@pytest.mark.parametrize("how", ["no_database_file", "source_url_none"])
def test_rcm_extract_input_works_without_any_sql_source(x12_env, data, monkeypatch, how):
    """Issue 24: an X12-only deployment failed with 'source database file not found'."""
    from rcm_assets.cli.main import main

    monkeypatch.setenv("DAGSTER_HOME", str(x12_env.parent / "dagster_home"))
    db = settings.data_dir() / "source.db"
    db.unlink()  # no SQL source at all
    if how == "source_url_none":
        monkeypatch.setenv("RCM_SOURCE_URL", "none")
    remits = sorted(p for p in settings.landing_dir().iterdir() if p.suffix == ".835")[0]
    day = date.fromisoformat(remits.stem.split("_")[-1])
    outside = x12_env / "incoming" / (remits.stem + ".rmt")  # a payer's own extension
    outside.parent.mkdir()
    shutil.move(remits, outside)
    assert main(["extract", "--input", str(outside), "--lookback-days", "0"]) == 0
    landed = pd.read_parquet(settings.data_dir() / "lake" / "bronze" / "remittances" / f"dt={day}")
    assert len(landed) == len(day_rows(data.remittances, [day])) > 0
    assert landed["_source"].str.startswith("landing:").all()


def test_a_configured_source_that_does_not_exist_is_still_an_error(x12_env, monkeypatch):
    from rcm_assets.lib.source import SourceError, SourceReader

    missing = settings.data_dir() / "elsewhere.db"
    monkeypatch.setenv("RCM_SOURCE_URL", f"sqlite:///{missing}")
    with pytest.raises(SourceError, match="not found"):
        SourceReader(settings.source_url(), max_attempts=1).read_changed("claims", date(2025, 1, 1), date(2025, 1, 2))
