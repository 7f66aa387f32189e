"""Bronze assets on the synthetic source: a day lands exactly the source rows of that day in its Hive path.

Each test works on its own copy of the synthetic source (`source_in_data_dir`) in its own RCM_DATA_DIR,
so it may change the copy (duplicate a row, rename a column) without touching other tests.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd

from rcm_assets.defs import bronze
from rcm_assets.lib.columns import source_column_names
from rcm_assets.platform.resources import build_resources
from rcm_assets.synthetic import write_landing_file
from rcm_assets_tests.conftest import failure_text, materialize_range

REPO = Path(__file__).resolve().parents[2]
DAGSTER_CLI = Path(sys.executable).parent / "dagster"
DAY = "2025-03-04"
KEY = ["claim_id", "claim_version", "updated_at"]
INGEST = ["_ingested_at", "_source", "_run_id"]


def next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def part_file(data_dir: Path, day: str, table: str = "claims") -> Path:
    return data_dir / "lake" / "bronze" / table / f"dt={day}" / "part-0.parquet"


def sql(db: Path, statement: str, params: tuple = ()) -> list[tuple]:
    with closing(sqlite3.connect(db)) as conn, conn:
        return conn.execute(statement, params).fetchall()


def source_keys(db: Path, first: str, last: str | None = None, table: str = "claims") -> pd.DataFrame:
    """(claim_id, claim_version, updated_at) of the source rows with first <= updated_at < last + 1 day."""
    rows = sql(db, f"SELECT claim_id, claim_version, updated_at FROM {table} "
                   "WHERE updated_at >= ? AND updated_at < ?", (first, next_day(last or first)))
    frame = pd.DataFrame(rows, columns=KEY)
    frame["updated_at"] = pd.to_datetime(frame["updated_at"], format="ISO8601")
    return frame


def key_set(frame: pd.DataFrame) -> set[tuple]:
    return set(frame[KEY].itertuples(index=False, name=None))


def generator_rows(synthetic_source, day: str) -> pd.DataFrame:
    claims = synthetic_source.data.claims
    start = pd.Timestamp(day)
    day_rows = claims[(claims["updated_at"] >= start) & (claims["updated_at"] < start + pd.Timedelta(days=1))]
    return day_rows.sort_values(KEY, ignore_index=True)


def run_bronze(first: str, last: str | None = None, instance: dg.DagsterInstance | None = None):
    instance = instance or dg.DagsterInstance.ephemeral()
    result = materialize_range([bronze.claims], first, last or first, instance, build_resources("dev"))
    return result, instance


def retry_events(result) -> list:
    return [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]


def check_evaluation(result, name: str):
    found = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    assert len(found) == 1, [e.check_name for e in result.get_asset_check_evaluations()]
    return found[0]


def test_cli_materialize_lands_exactly_the_days_source_rows_and_rerun_is_idempotent(
    source_in_data_dir, isolated_env: Path, tmp_path: Path
):
    """The issue's command, `dagster asset materialize --select 'bronze/claims' --partition 2025-03-04`.

    `-m` names the module: unlike `dagster definitions validate`, `dagster asset materialize` (1.13.27) does
    not read [tool.dagster] from pyproject.toml and exits 2 without a code location argument.
    """
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {**os.environ, "RCM_DATA_DIR": str(isolated_env), "DAGSTER_HOME": str(home)}
    done = subprocess.run(
        [str(DAGSTER_CLI), "asset", "materialize", "-m", "rcm_assets.definitions",
         "--select", "bronze/claims", "--partition", DAY],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]

    lake = isolated_env / "lake"
    assert [p.relative_to(lake) for p in lake.rglob("*.parquet")] == [part_file(isolated_env, DAY).relative_to(lake)]
    landed = pd.read_parquet(part_file(isolated_env, DAY))
    expected = source_keys(isolated_env / "source.db", DAY)
    assert len(expected) > 50
    assert len(landed) == len(expected)
    assert key_set(landed) == key_set(expected)
    # every value as the source holds it (the generator's frames are the source's content)
    got = landed.sort_values(KEY, ignore_index=True)[source_column_names("claims")]
    pd.testing.assert_frame_equal(got, generator_rows(source_in_data_dir, DAY)[source_column_names("claims")],
                                  check_dtype=False)
    assert list(landed.columns) == source_column_names("claims") + INGEST  # `dt` lives in the path only
    assert landed["_source"].eq("source:claims").all()
    assert landed["_ingested_at"].notna().all()
    assert landed["_run_id"].nunique() == 1
    cli_run_id = landed["_run_id"].iloc[0]
    assert cli_run_id in output and "RUN_SUCCESS" in output

    # a second run of the same day reads the same rows again, stores none twice and keeps when each
    # row first arrived (bronze is append-only by content)
    result, _ = run_bronze(DAY)
    assert result.success
    again = pd.read_parquet(part_file(isolated_env, DAY))
    pd.testing.assert_frame_equal(again, landed)
    assert set(again["_run_id"]) == {cli_run_id} != {result.run_id}
    (materialization,) = result.asset_materializations_for_node("bronze__claims")
    assert materialization.metadata["rows_added"].value == 0
    assert materialization.metadata["rows_already_stored"].value == len(landed)


def test_output_metadata_describes_the_written_partition(source_in_data_dir, isolated_env: Path):
    result, _ = run_bronze(DAY)
    assert result.success
    (materialization,) = result.asset_materializations_for_node("bronze__claims")
    meta = materialization.metadata
    path = part_file(isolated_env, DAY)
    written = pd.read_parquet(path)
    assert materialization.partition == DAY
    assert Path(meta["path"].value) == path
    assert meta["dagster/row_count"].value == len(written) == len(source_keys(isolated_env / "source.db", DAY))
    assert meta["bytes"].value == path.stat().st_size
    schema_columns = [c.name for c in meta["dagster/column_schema"].value.columns]
    assert [c for c in schema_columns if c != "dt"] == list(written.columns)
    assert meta["source_rows"].value == len(written)


def test_bronze_file_follows_the_frame_conventions(source_in_data_dir, isolated_env: Path):
    """Timestamps are datetime64[ns] (INTERFACES.md), the ingest stamp included."""
    result, _ = run_bronze(DAY)
    assert result.success
    written = pd.read_parquet(part_file(isolated_env, DAY))
    for name in ("submitted_at", "updated_at", "service_date", "patient_dob", "_ingested_at"):
        assert written[name].dtype == "datetime64[ns]", (name, written[name].dtype)


def test_single_run_range_writes_one_file_per_day_with_that_days_rows(source_in_data_dir, isolated_env: Path):
    first, last = "2025-03-01", "2025-03-05"
    result, instance = run_bronze(first, last)
    assert result.success
    assert len(instance.get_runs()) == 1  # one run for the whole range (BackfillPolicy.single_run)
    days = [(date.fromisoformat(first) + timedelta(days=i)).isoformat() for i in range(5)]
    materializations = {m.partition: m for m in result.asset_materializations_for_node("bronze__claims")}
    assert sorted(materializations) == days
    lake_dir = isolated_env / "lake" / "bronze" / "claims"
    assert sorted(p.name for p in lake_dir.iterdir()) == [f"dt={d}" for d in days]
    source = source_keys(isolated_env / "source.db", first, last)
    source_days = source["updated_at"].dt.strftime("%Y-%m-%d")
    for day in days:
        written = pd.read_parquet(part_file(isolated_env, day))
        expected = source[source_days == day]
        assert len(expected) > 0
        assert key_set(written) == key_set(expected), day
        assert len(written) == len(expected), day
        assert (written["updated_at"].dt.strftime("%Y-%m-%d") == day).all(), day
        assert materializations[day].metadata["dagster/row_count"].value == len(written), day
        assert materializations[day].metadata["bytes"].value == part_file(isolated_env, day).stat().st_size
    assert set(pd.concat(pd.read_parquet(part_file(isolated_env, d)) for d in days)["_run_id"]) == {result.run_id}


def test_duplicate_source_row_fails_the_blocking_check_and_writes_nothing(source_in_data_dir, isolated_env: Path):
    db = isolated_env / "source.db"
    sql(db, "INSERT INTO claims SELECT * FROM claims WHERE updated_at >= ? AND updated_at < ? LIMIT 1",
        (DAY, next_day(DAY)))
    result, _ = run_bronze(DAY)
    assert not result.success
    unique = check_evaluation(result, "claim_id_updated_at_unique")
    assert not unique.passed and unique.severity == dg.AssetCheckSeverity.ERROR
    assert unique.metadata["duplicate_rows"].value == 1
    assert check_evaluation(result, "required_columns_present").passed
    assert not part_file(isolated_env, DAY).exists()  # the check ran before the write
    assert not result.asset_materializations_for_node("bronze__claims")
    assert "claim_id_updated_at_unique" in failure_text(result)
    assert not retry_events(result), "bad data is not retried (30 s, 60 s, 120 s of RetryPolicy delays)"


def test_renamed_source_column_fails_naming_it_and_writes_nothing(source_in_data_dir, isolated_env: Path):
    sql(isolated_env / "source.db", "ALTER TABLE claims RENAME COLUMN billed_amount TO billed_amt")
    result, _ = run_bronze(DAY)
    assert not result.success
    message = failure_text(result)
    assert "billed_amount" in message and "missing" in message
    assert not (isolated_env / "lake").exists() or not list((isolated_env / "lake").rglob("*.parquet"))
    assert not retry_events(result), "a schema change is permanent: no RetryPolicy delays"


def test_landing_file_rows_join_bronze_once(source_in_data_dir, isolated_env: Path):
    """Rows only in the landing file are added with their file as source; rows also in the source are not doubled."""
    db = isolated_env / "source.db"
    day_rows = generator_rows(source_in_data_dir, DAY)
    only_landed = day_rows.iloc[::20]  # these rows never reached the database, only the landing file
    for row in only_landed.itertuples():
        sql(db, "DELETE FROM claims WHERE claim_id = ? AND claim_version = ?", (row.claim_id, row.claim_version))
    assert len(source_keys(db, DAY)) == len(day_rows) - len(only_landed)
    landing_file = write_landing_file(source_in_data_dir.data, date.fromisoformat(DAY), isolated_env / "landing")

    result, _ = run_bronze(DAY)
    assert result.success
    written = pd.read_parquet(part_file(isolated_env, DAY))
    assert len(written) == len(day_rows)
    assert key_set(written) == key_set(day_rows)
    from_file = written[written["_source"] == f"landing:{landing_file.name}"]
    assert key_set(from_file) == key_set(only_landed)
    assert (written.loc[written.index.difference(from_file.index), "_source"] == "source:claims").all()
    (materialization,) = result.asset_materializations_for_node("bronze__claims")
    assert materialization.metadata["landing_rows"].value == len(day_rows)
    assert materialization.metadata["landing_rows_redelivered"].value == len(day_rows) - len(only_landed)


def test_remittances_day_lands_its_source_rows(source_in_data_dir, isolated_env: Path):
    table = "remittances"
    result = materialize_range([bronze.remittances], DAY, DAY, dg.DagsterInstance.ephemeral(), build_resources("dev"))
    assert result.success
    written = pd.read_parquet(part_file(isolated_env, DAY, table))
    rows = sql(isolated_env / "source.db", f"SELECT claim_id, updated_at FROM {table} "
                                           "WHERE updated_at >= ? AND updated_at < ?", (DAY, next_day(DAY)))
    assert len(rows) > 0
    assert sorted(zip(written["claim_id"], written["updated_at"], strict=True)) == sorted(
        (c, pd.Timestamp(u)) for c, u in rows)
    assert written["_source"].eq(f"source:{table}").all()


def test_resent_and_overlapping_landing_files_never_block_the_day(source_in_data_dir, isolated_env: Path):
    """An exact copy of a landing file and a file overlapping it give each row once, reported in metadata;
    the same file dropped again later adds nothing. Today two copies failed the uniqueness check."""
    db = isolated_env / "source.db"
    day_rows = generator_rows(source_in_data_dir, DAY)
    sql(db, "DELETE FROM claims WHERE updated_at >= ? AND updated_at < ?", (DAY, next_day(DAY)))  # file-only day
    landing = isolated_env / "landing"
    original = write_landing_file(source_in_data_dir.data, date.fromisoformat(DAY), landing)
    copy = landing / f"claims_{DAY}_resent.csv"
    copy.write_bytes(original.read_bytes())
    lines = original.read_text().splitlines(keepends=True)  # header + the first half of the rows again
    overlap = lines[1: 1 + len(day_rows) // 2]
    (landing / f"claims_{DAY}_part2.csv").write_text("".join(lines[:1] + overlap))

    result, _ = run_bronze(DAY)
    assert result.success, failure_text(result)
    written = pd.read_parquet(part_file(isolated_env, DAY))
    assert len(written) == len(day_rows) and key_set(written) == key_set(day_rows)
    (materialization,) = result.asset_materializations_for_node("bronze__claims")
    assert materialization.metadata["landing_rows_repeated"].value == len(day_rows) + len(overlap)
    assert materialization.metadata["landing_files"].value == ", ".join(sorted(p.name for p in landing.iterdir()))

    copy.write_bytes(original.read_bytes())  # dropped once more
    again, _ = run_bronze(DAY)
    assert again.success
    assert len(pd.read_parquet(part_file(isolated_env, DAY))) == len(day_rows)


def test_a_row_committed_late_lands_in_its_day_on_the_next_run(source_in_data_dir, isolated_env: Path):
    """The nightly range re-reads the days before: a row committed after its day was extracted is added to
    that day, stored rows stay as they were, nothing twice."""
    db = isolated_env / "source.db"
    day_rows = generator_rows(source_in_data_dir, DAY)
    late = day_rows.iloc[::10]
    saved = sql(db, "SELECT * FROM claims WHERE updated_at >= ? AND updated_at < ?", (DAY, next_day(DAY)))
    for row in late.itertuples():
        sql(db, "DELETE FROM claims WHERE claim_id = ? AND claim_version = ?", (row.claim_id, row.claim_version))
    first, instance = run_bronze(DAY)
    assert first.success
    before = pd.read_parquet(part_file(isolated_env, DAY))
    assert len(before) == len(day_rows) - len(late)

    with closing(sqlite3.connect(db)) as conn, conn:  # the late rows commit now, with yesterday's updated_at
        conn.execute("DELETE FROM claims WHERE updated_at >= ? AND updated_at < ?", (DAY, next_day(DAY)))
        conn.executemany(f"INSERT INTO claims VALUES ({', '.join('?' * len(saved[0]))})", saved)
    later = next_day(next_day(DAY))
    second, _ = run_bronze(DAY, later, instance)  # the nightly run two days on, with its lookback
    assert second.success
    after = pd.read_parquet(part_file(isolated_env, DAY))
    assert len(after) == len(day_rows) and key_set(after) == key_set(day_rows)
    pd.testing.assert_frame_equal(after.iloc[: len(before)], before)  # stored rows untouched
    assert set(after.iloc[len(before):]["_run_id"]) == {second.run_id}


def landing_metadata(result) -> dict:
    (materialization,) = result.asset_materializations_for_node("bronze__claims")
    return {k: v.value for k, v in materialization.metadata.items()}


def test_a_days_later_runs_read_only_the_landing_files_it_has_not_ingested(source_in_data_dir, isolated_env: Path):
    """A burst of files for one day over several runs: each run reads only the file versions the day has not
    read yet (its ledger is in the partition's materialization metadata), every distinct row lands once,
    and a rewritten file is read again. Today every run re-read every file of its day."""
    db = isolated_env / "source.db"
    day_rows = generator_rows(source_in_data_dir, DAY)
    sql(db, "DELETE FROM claims WHERE updated_at >= ? AND updated_at < ?", (DAY, next_day(DAY)))  # file-only day
    landing = isolated_env / "landing"
    whole = write_landing_file(source_in_data_dir.data, date.fromisoformat(DAY), landing, suffix="_all")
    lines = whole.read_text().splitlines(keepends=True)
    half = len(lines) // 2
    first = landing / f"claims_{DAY}_a.csv"
    first.write_text("".join(lines[:half]))
    whole.unlink()

    one, instance = run_bronze(DAY)
    assert one.success and landing_metadata(one)["landing_files"] == first.name
    second = landing / f"claims_{DAY}_b.csv"  # the rest, overlapping a quarter of the first file
    second.write_text("".join(lines[:1] + lines[half // 2:]))
    (landing / f"claims_{DAY}_a_resent.csv").write_bytes(first.read_bytes())  # a byte-identical re-send
    two, _ = run_bronze(DAY, instance=instance)
    assert two.success, failure_text(two)
    assert landing_metadata(two)["landing_files"] == f"claims_{DAY}_a_resent.csv, claims_{DAY}_b.csv"
    written = pd.read_parquet(part_file(isolated_env, DAY))
    assert len(written) == len(day_rows) and key_set(written) == key_set(day_rows)

    three, _ = run_bronze(DAY, instance=instance)  # nothing new: nothing read, the ledger carried forward
    assert three.success and landing_metadata(three)["landing_rows"] == 0
    assert check_evaluation(three, "row_count_recorded").passed  # the day holds rows: not an empty day
    assert len(landing_metadata(three)["rcm/landing_ingested"]) == 3
    first.write_text("".join(lines[:half]))  # rewritten: a new version, read again, adds nothing
    four, _ = run_bronze(DAY, instance=instance)
    assert landing_metadata(four)["landing_files"] == first.name
    assert landing_metadata(four)["landing_rows"] == half - 1
    assert len(pd.read_parquet(part_file(isolated_env, DAY))) == len(day_rows)


def test_a_later_file_contradicting_a_stored_landing_row_still_blocks_the_day(source_in_data_dir, isolated_env: Path):
    """Same (claim_id, updated_at), other content, in a file that arrives after the first was ingested: the
    blocking uniqueness check sees the stored landing rows too, as it did when every run re-read every file."""
    db = isolated_env / "source.db"
    sql(db, "DELETE FROM claims WHERE updated_at >= ? AND updated_at < ?", (DAY, next_day(DAY)))
    landing = isolated_env / "landing"
    original = write_landing_file(source_in_data_dir.data, date.fromisoformat(DAY), landing)
    one, instance = run_bronze(DAY)
    assert one.success
    frame = pd.read_csv(original, dtype=str, keep_default_na=False)
    frame.loc[0, "billed_amount"] = str(float(frame.loc[0, "billed_amount"]) + 1.0)
    frame.iloc[:1].to_csv(landing / f"claims_{DAY}_corrected.csv", index=False)
    two, _ = run_bronze(DAY, instance=instance)
    assert not two.success
    assert "claim_id_updated_at_unique" in failure_text(two)
