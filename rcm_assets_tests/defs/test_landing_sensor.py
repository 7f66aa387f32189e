"""landing_file_sensor ticks: requests per file version, cursor behaviour, pagination, quarantine."""

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from rcm_assets.defs import sensors
from rcm_assets.defs.partitions import daily_partitions
from rcm_assets.defs.sensors import LANDING_TARGETS, landing_file_sensor
from rcm_assets.lib import landing as lnd
from rcm_assets.platform.resources import LandingResource
from rcm_assets.synthetic import generate, write_landing_file

DAY = date(2025, 1, 2)
REMIT_DAY = date(2025, 1, 25)


@dg.asset(key=LANDING_TARGETS["claims"], partitions_def=daily_partitions)
def bronze_claims_stub() -> None: ...


@dg.asset(key=LANDING_TARGETS["remittances"], partitions_def=daily_partitions)
def bronze_remittances_stub() -> None: ...


@pytest.fixture(scope="module")
def data():
    return generate(start=date(2025, 1, 1), days=30, claims_per_day=10, seed=11)


@pytest.fixture(scope="module")
def instance():
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture(autouse=True)
def no_settle(monkeypatch):
    """Tests write files and tick at once; ctime cannot be back-dated, so skip the settle delay."""
    monkeypatch.setattr(sensors, "SETTLE_SECONDS", 0.0)


@pytest.fixture
def landing(tmp_path: Path) -> LandingResource:
    (tmp_path / "landing").mkdir()
    return LandingResource(
        landing_dir=str(tmp_path / "landing"), quarantine_dir=str(tmp_path / "quarantine"), first_day="2025-01-01"
    )


def tick(instance, landing: LandingResource, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"landing": landing})
    return landing_file_sensor(context)


def keys(result: dg.SensorResult) -> list[str]:
    return [r.run_key for r in result.run_requests or []]


def test_sensor_definition():
    assert landing_file_sensor.name == "landing_file_sensor"
    assert landing_file_sensor.minimum_interval_seconds == 30
    assert landing_file_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert landing_file_sensor.required_resource_keys == {"landing"}
    assert set(LANDING_TARGETS.values()) == {dg.AssetKey(["bronze", "claims"]), dg.AssetKey(["bronze", "remittances"])}


def test_new_files_request_their_bronze_partition_once(instance, landing, data):
    folder = Path(landing.landing_dir)
    claims = write_landing_file(data, DAY, folder, fmt="csv")
    remits = write_landing_file(data, REMIT_DAY, folder, fmt="parquet", table="remittances")

    first = tick(instance, landing, None)

    by_file = {r.tags["rcm/landing_file"]: r for r in first.run_requests}
    assert set(by_file) == {claims.name, remits.name}
    assert by_file[claims.name].partition_key == "2025-01-02"
    assert by_file[claims.name].asset_selection == [dg.AssetKey(["bronze", "claims"])]
    assert by_file[claims.name].run_key.startswith("claims:2025-01-02:")
    assert by_file[claims.name].tags["rcm/landing_files"] == "1"
    assert by_file[remits.name].partition_key == "2025-01-25"
    assert by_file[remits.name].asset_selection == [dg.AssetKey(["bronze", "remittances"])]
    assert all(r.tags["rcm/trigger"] == "landing_file_sensor" for r in first.run_requests)

    second = tick(instance, landing, first.cursor)
    assert second.run_requests == [] and second.skip_reason is not None
    assert second.cursor == first.cursor
    assert sorted(p.name for p in folder.iterdir()) == sorted([claims.name, remits.name])


def test_changed_file_requests_exactly_one_new_run(instance, landing, data):
    folder = Path(landing.landing_dir)
    write_landing_file(data, DAY, folder)
    write_landing_file(data, DAY, folder, suffix="_other")
    first = tick(instance, landing, None)
    assert len(first.run_requests) == 1  # two files of one day: one run

    write_landing_file(data, DAY, folder)  # replaced by a new version (atomic rename)
    second = tick(instance, landing, first.cursor)
    assert len(keys(second)) == 1 and keys(second)[0] not in keys(first)
    assert second.run_requests[0].tags["rcm/landing_file"] == f"claims_{DAY}.csv"
    assert tick(instance, landing, second.cursor).run_requests == []


def test_a_burst_makes_one_run_per_table_and_day_and_later_files_one_more(instance, landing, data):
    """50 files over 5 days and two tables in one tick: 6 runs, not 50; more files for a day in a later
    tick make exactly one more run for that day, and a re-evaluated tick the same run keys."""
    folder = Path(landing.landing_dir)
    days = [DAY + timedelta(days=i) for i in range(5)]
    for i in range(45):
        write_landing_file(data, days[i % 5], folder, suffix=f"_p{i:02d}")
    for i in range(5):
        write_landing_file(data, REMIT_DAY, folder, table="remittances", suffix=f"_p{i:02d}")
    first = tick(instance, landing, None)
    assert len(first.run_requests) == 6
    assert {(r.asset_selection[0].path[-1], r.partition_key) for r in first.run_requests} == {
        *(("claims", d.isoformat()) for d in days), ("remittances", REMIT_DAY.isoformat())}
    assert sorted(int(r.tags["rcm/landing_files"]) for r in first.run_requests) == [5, 9, 9, 9, 9, 9]
    assert keys(tick(instance, landing, None)) == keys(first)  # same files, same keys: the daemon drops repeats

    write_landing_file(data, days[0], folder, suffix="_late1")
    write_landing_file(data, days[0], folder, suffix="_late2")
    second = tick(instance, landing, first.cursor)
    [request] = second.run_requests
    assert request.partition_key == days[0].isoformat() and request.run_key not in keys(first)
    assert request.tags["rcm/landing_file"] == f"claims_{days[0]}_late1.csv, claims_{days[0]}_late2.csv"


def test_landing_runs_leave_the_freshness_checks_to_their_own_sensor(instance, landing, data):
    """A landing run executes bronze's own checks only: the freshness check of yesterday used to run (and
    warn) in every one of them."""
    from rcm_assets.definitions import defs

    write_landing_file(data, DAY, Path(landing.landing_dir))
    [request] = tick(instance, landing, None).run_requests
    own = {k for k in defs.resolve_asset_graph().asset_check_keys if k.asset_key == request.asset_selection[0]}
    assert {k.name for k in own} >= {"freshness_check", "claim_id_updated_at_unique"}
    assert {k.name for k in request.asset_check_keys} == {
        "required_columns_present", "claim_id_updated_at_unique", "row_count_recorded"}


def test_requests_resolve_against_the_partitioned_bronze_assets(instance, landing, data):
    write_landing_file(data, DAY, Path(landing.landing_dir))
    defs = dg.Definitions(
        assets=[bronze_claims_stub, bronze_remittances_stub], sensors=[landing_file_sensor],
        resources={"landing": landing},
    )
    context = dg.build_sensor_context(instance=instance, definitions=defs, resources={"landing": landing})
    evaluated = landing_file_sensor.evaluate_tick(context)
    [request] = evaluated.run_requests
    assert request.tags["dagster/partition"] == "2025-01-02"
    assert request.tags["dagster/sensor_name"] == "landing_file_sensor"
    assert request.asset_selection == [dg.AssetKey(["bronze", "claims"])]
    assert defs.resolve_job_def(landing_file_sensor.job_name).partitions_def == daily_partitions


def test_a_thousand_files_keep_the_cursor_small_and_are_paged(instance, landing, data, monkeypatch):
    """1000 files with long names: every one handled exactly once over several ticks, cursor O(1).

    A quarter are valid (each is read and cast, ~20 ms); the rest are refused by name or date alone,
    which keeps the test fast while every file still goes through the same paging and watermark.
    """
    monkeypatch.setattr(sensors, "MAX_FILES_PER_TICK", 400)
    folder = Path(landing.landing_dir)
    payload = write_landing_file(data, DAY, folder.parent / "src").read_bytes()
    good, bad = set(), set()
    for i in range(1000):
        if i % 4 == 0:
            name = f"claims_{DAY}_batch{i:04d}_{'x' * 80}.csv"
            good.add(name)
        else:
            name = f"claims_2024-12-{1 + i % 28:02d}_batch{i:04d}_{'x' * 80}.csv"  # before the first day
            bad.add(name)
        (folder / name).write_bytes(payload)

    requested: list[dg.RunRequest] = []
    cursor, left = None, []
    for _ in range(4):  # 400 + 400 + 200 files handled, then nothing new
        result = tick(instance, landing, cursor)
        assert result.cursor is not None and len(result.cursor) < 200
        cursor = result.cursor
        requested += result.run_requests or []
        left.append(len(list(folder.iterdir())) - len(good))  # bad files not reached yet
    assert left == [750 - 300, 750 - 600, 0, 0]  # each page of 400 holds 300 bad files
    assert result.run_requests == [] and "0 accepted, 0 quarantined" in result.skip_reason.skip_message
    assert sum(int(r.tags["rcm/landing_files"]) for r in requested) == len(good) == 250
    assert len(requested) == 3 and len({r.run_key for r in requested}) == 3  # one run per tick with files of the day
    assert {p.name for p in folder.iterdir()} == good
    quarantined = {json.loads(p.read_text())["file"] for p in Path(landing.quarantine_dir).glob("*.reason.json")}
    assert quarantined == bad


def test_future_and_bad_files_are_quarantined_and_logged(instance, landing, data, capfd):
    folder = Path(landing.landing_dir)
    good = write_landing_file(data, DAY, folder)
    newest = sensors.newest_partition_day(date(2025, 1, 1))
    assert newest == datetime.now(UTC).date()  # daily partitions include today (end_offset=1)
    tomorrow = folder / f"claims_{(newest + timedelta(days=1)).isoformat()}.csv"
    tomorrow.write_bytes(good.read_bytes())
    far = folder / "claims_2999-01-01.csv"
    far.write_bytes(good.read_bytes())
    early = folder / "claims_2024-12-31.csv"
    early.write_bytes(good.read_bytes())
    (folder / "claims_2025-01-03.csv").write_bytes(b"")
    (folder / "weekly_report.xlsx").write_bytes(b"PK\x03\x04")
    (folder / "claims_2025-01-04.csv").write_text("claim_id,patient_name\nC0000000001,Jane Doe\n")

    result = tick(instance, landing, None)

    assert [r.tags["rcm/landing_file"] for r in result.run_requests] == [good.name]
    quarantine = Path(landing.quarantine_dir)
    reasons = {
        json.loads(p.read_text())["file"]: json.loads(p.read_text())["reason"]
        for p in quarantine.glob(f"*{lnd.REASON_SUFFIX}")
    }
    assert reasons == {
        tomorrow.name: "future_date",
        far.name: "future_date",
        early.name: "out_of_range_date",
        "claims_2025-01-03.csv": "empty",
        "weekly_report.xlsx": "bad_name",
        "claims_2025-01-04.csv": "wrong_columns",
    }
    assert [p.name for p in folder.iterdir()] == [good.name]
    logged = capfd.readouterr().err
    warnings = [line for line in logged.splitlines() if "WARNING" in line]
    assert any("future_date" in m and tomorrow.name in m for m in warnings), logged
    assert "Jane Doe" not in logged
    assert tick(instance, landing, result.cursor).run_requests == []


def test_a_file_for_today_is_accepted_while_its_partition_exists(instance, landing, data):
    """Today's rows (updated_at today) land in today's partition, which exists with end_offset=1."""
    today = datetime.now(UTC).date()
    text = write_landing_file(data, DAY, Path(landing.landing_dir).parent / "src").read_text()
    shifted = text.replace(f"{DAY} ", f"{today} ")  # timestamps (updated_at too) move to today
    (Path(landing.landing_dir) / f"claims_{today}.csv").write_text(shifted)
    [request] = tick(instance, landing, None).run_requests
    assert request.partition_key == today.isoformat()


def test_path_traversal_names_and_symlinks_are_quarantined(instance, landing, data, tmp_path):
    folder = Path(landing.landing_dir)
    payload = write_landing_file(data, DAY, tmp_path / "elsewhere").read_bytes()
    hostile = folder / f"..\\..\\claims_{DAY}.csv"
    hostile.write_bytes(payload)
    secret = tmp_path / "secret.csv"
    secret.write_bytes(payload)
    link = folder / f"claims_{DAY}_link.csv"
    link.symlink_to(secret)

    result = tick(instance, landing, None)

    assert result.run_requests == []
    quarantine = Path(landing.quarantine_dir)
    records = [json.loads(p.read_text()) for p in quarantine.glob(f"*{lnd.REASON_SUFFIX}")]
    assert {(r["file"], r["reason"]) for r in records} == {
        (hostile.name, "path_traversal"), (link.name, "path_traversal")
    }
    assert list(folder.iterdir()) == []
    assert secret.read_bytes() == payload  # the link target is neither read into bronze nor moved
    assert all(p.parent == quarantine for p in quarantine.iterdir())


def test_files_still_settling_wait_for_a_later_tick(instance, landing, data, monkeypatch):
    monkeypatch.setattr(sensors, "SETTLE_SECONDS", 3600.0)
    write_landing_file(data, DAY, Path(landing.landing_dir))
    held = tick(instance, landing, None)
    assert held.run_requests == [] and "1 still settling" in held.skip_reason.skip_message
    monkeypatch.setattr(sensors, "SETTLE_SECONDS", 0.0)
    assert len(tick(instance, landing, held.cursor).run_requests) == 1


def test_missing_landing_folder_is_created_skips_and_keeps_the_cursor(instance, tmp_path):
    """The tick says so in the UI (it used to show only "0 runs requested") and creates the folder."""
    resource = LandingResource(landing_dir=str(tmp_path / "nope"), quarantine_dir=str(tmp_path / "q"))
    result = tick(instance, resource, '{"v":1,"t":5,"h":"ab"}')
    assert result.run_requests == []
    assert f"landing folder {tmp_path / 'nope'} did not exist: created it" in result.skip_reason.skip_message
    assert (tmp_path / "nope").is_dir()
    assert result.cursor == '{"v":1,"t":5,"h":"ab"}'


def test_landing_folder_that_cannot_be_created_is_named_in_the_skip_reason(instance, tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    resource = LandingResource(landing_dir=str(tmp_path / "a_file" / "landing"), quarantine_dir=str(tmp_path / "q"))
    result = tick(instance, resource, None)
    assert result.run_requests == []
    assert "does not exist and cannot be created" in result.skip_reason.skip_message
    assert "RCM_LANDING_DIR" in result.skip_reason.skip_message


def test_files_for_a_day_whose_landing_run_is_still_queued_join_that_run(landing, data):
    """The queued run has not listed the folder yet and reads every file its day has not ingested: a
    second run for the day would only queue behind it and read nothing."""
    folder = Path(landing.landing_dir)
    with dg.DagsterInstance.ephemeral() as instance:
        write_landing_file(data, DAY, folder, suffix="_a")
        first = tick(instance, landing, None)
        [request] = first.run_requests
        tags = {**request.tags, "dagster/partition": request.partition_key}
        instance.add_run(dg.DagsterRun(job_name="__ASSET_JOB", run_id="0" * 8 + "-queued", tags=tags,
                                       status=dg.DagsterRunStatus.NOT_STARTED,
                                       asset_selection=frozenset(request.asset_selection)))
        write_landing_file(data, DAY, folder, suffix="_b")
        write_landing_file(data, DAY + timedelta(days=1), folder)
        second = tick(instance, landing, first.cursor)
        assert [r.partition_key for r in second.run_requests] == [(DAY + timedelta(days=1)).isoformat()]

        instance.report_run_canceled(instance.get_run_by_id("0" * 8 + "-queued"))  # no longer waiting
        write_landing_file(data, DAY, folder, suffix="_c")
        third = tick(instance, landing, second.cursor)
        assert [r.partition_key for r in third.run_requests] == [DAY.isoformat()]
