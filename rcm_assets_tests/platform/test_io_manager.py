"""ParquetLakeIOManager: layout, round trips, range writes, mapped loads, pruning, atomicity, metadata."""

import uuid
from collections.abc import Iterator

import dagster as dg
import fsspec
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from upath import UPath

from rcm_assets.platform import io_manager as iom
from rcm_assets.platform.io_manager import (
    HiveParquetIOManager,
    ParquetLakeIOManager,
    partition_column,
    partition_path,
    unpartitioned_path,
)
from rcm_assets_tests.production.services import s3_env, s3_server  # noqa: F401 (fixtures: the S3 lake)

DAILY = dg.DailyPartitionsDefinition(start_date="2025-01-01")
WEEKLY = dg.WeeklyPartitionsDefinition(start_date="2025-01-05")  # weeks start on Sunday
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
EXPECTED_METADATA = {"path", "dagster/row_count", "bytes", "dagster/column_schema", "partitions_written"}


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def mem_url() -> Iterator[str]:
    name = f"lake-{uuid.uuid4().hex[:8]}"
    yield f"memory://{name}"
    fs = fsspec.filesystem("memory")
    if fs.exists(f"/{name}"):
        fs.rm(f"/{name}", recursive=True)


@pytest.fixture(params=["local", "memory", "s3"])
def base_url(request, tmp_path, mem_url) -> str:
    """The same tests on a local folder, fsspec memory and a real S3 server (moto on loopback)."""
    if request.param == "s3":
        server = request.getfixturevalue("s3_env")
        return f"s3://{server.new_bucket('lake')}/prefix/lake"
    return str(tmp_path / "lake") if request.param == "local" else mem_url


def _res(url: str) -> dict:
    return {"lake": ParquetLakeIOManager(base_url=url)}


def _files(url: str) -> list[str]:
    """All files under the lake, relative to the base, sorted (includes dot files such as tmp)."""
    base = iom.lake_root(url)  # no listings cache on object stores: sees what other instances wrote
    fs = base.fs
    root = base.path.rstrip("/")
    if not fs.exists(root):
        return []
    return sorted(p[len(root) + 1 :] for p in fs.find(root))


def _read(url: str, rel: str, **kw) -> pd.DataFrame:
    base = iom.lake_root(url)
    with base.fs.open((base / rel).path, "rb") as f:
        return pq.read_table(f, **kw).to_pandas()


def _error_text(exc: BaseException) -> str:
    parts, seen = [], set()
    while exc is not None and id(exc) not in seen:  # dagster chains form cycles
        seen.add(id(exc))
        parts.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    return "\n".join(parts)


def _range(start: str, end: str) -> dict[str, str]:
    return {RANGE_START: start, RANGE_END: end}


def _typed_frame(day: str, n: int = 3) -> pd.DataFrame:
    """One frame per frame conventions: object strings (with None), int64, float64, bool, datetime64[ns]."""
    return pd.DataFrame(
        {
            "claim_id": [f"C{day}-{i}" if i != 1 else None for i in range(n)],
            "units": np.arange(n, dtype="int64"),
            "amount": np.array([10.5, np.nan, 3.25][:n] + [1.0] * max(0, n - 3), dtype="float64"),
            "denied": np.array([True, False, True][:n] + [False] * max(0, n - 3), dtype=bool),
            "submitted_at": pd.to_datetime([f"{day} 0{i % 10}:00:00.123456789" for i in range(n)]),
            "dt": [day] * n,
        }
    )


@dg.asset(partitions_def=DAILY, io_manager_key="lake", backfill_policy=dg.BackfillPolicy.single_run())
def daily_src(context: dg.AssetExecutionContext) -> pd.DataFrame:
    """Rows on every day of the run except days whose date is divisible by 3."""
    days = [k for k in context.partition_keys if int(k[-2:]) % 3 != 0]
    frames = [_typed_frame(k) for k in days] or [_typed_frame("2025-01-01").iloc[0:0]]
    return pd.concat(frames, ignore_index=True)


def _capture(name: str, store: dict, **ins_kwargs):
    """A daily downstream asset that records what the IO manager handed it."""

    @dg.asset(
        name=name,
        partitions_def=ins_kwargs.pop("partitions_def", DAILY),
        io_manager_key="lake",
        ins={"upstream": dg.AssetIn(key=ins_kwargs.pop("key", "daily_src"), **ins_kwargs)},
    )
    def _asset(upstream) -> None:
        store["frame"] = upstream
        return None

    return _asset


# --------------------------------------------------------------------------------------------- pure functions


def test_partition_column_from_definition():
    assert partition_column(DAILY) == "dt"
    assert partition_column(WEEKLY) == "week"
    assert partition_column(dg.WeeklyPartitionsDefinition(start_date="2025-01-06", day_offset=1)) == "week"
    assert partition_column(dg.HourlyPartitionsDefinition(start_date="2025-01-01-00:00")) == "dt"
    assert partition_column(dg.MonthlyPartitionsDefinition(start_date="2025-01-01")) == "dt"
    weekdays = dg.TimeWindowPartitionsDefinition(
        start="2025-01-01", cron_schedule="0 0 * * 1-5", fmt="%Y-%m-%d"
    )
    assert partition_column(weekdays) == "dt"  # a daily cadence restricted to weekdays is not weekly
    assert partition_column(dg.StaticPartitionsDefinition(["a"])) == "dt"
    assert partition_column(None) == "dt"


def test_partition_path_is_pure(tmp_path):
    base = UPath(tmp_path)
    got = partition_path(base, ["silver", "claims"], "2025-01-02", "dt")
    assert got == base / "silver" / "claims" / "dt=2025-01-02" / "part-0.parquet"
    assert partition_path(base, ["silver", "claims"], "2025-01-02", "dt") == got  # deterministic
    mem = partition_path(UPath("memory://lake"), ["g"], "2025-01-05", "week")
    assert str(mem) == "memory://lake/g/week=2025-01-05/part-0.parquet"
    assert unpartitioned_path(base, ["ref", "payers"]) == base / "ref" / "payers" / "data.parquet"
    for bad in ("a/b", "..", ""):
        with pytest.raises(ValueError, match="path segment"):
            partition_path(base, ["x"], bad, "dt")


def test_storage_options_upath_03(tmp_path):
    # a plain local path ignores storage options (UPath warns); a file:// URL keeps them
    mgr = ParquetLakeIOManager(base_url=f"file://{tmp_path}", storage_options={"auto_mkdir": True})
    io = mgr.create_io_manager(dg.build_init_resource_context())
    assert isinstance(io, HiveParquetIOManager)
    assert io.storage_options == {"auto_mkdir": True}  # stock property raises AttributeError on upath 0.3
    assert ParquetLakeIOManager(base_url="memory://x").create_io_manager(None).storage_options == {}


# --------------------------------------------------------------------------------------------- layout / round trip


def test_layout_daily_weekly_unpartitioned(base_url):
    @dg.asset(key_prefix=["silver"], partitions_def=DAILY, io_manager_key="lake")
    def claims(context) -> pd.DataFrame:
        return _typed_frame(context.partition_key)

    @dg.asset(partitions_def=WEEKLY, io_manager_key="lake")
    def weekly_stats(context) -> pd.DataFrame:
        return pd.DataFrame({"n": [1], "week": [context.partition_key]})

    @dg.asset(io_manager_key="lake")
    def payers() -> pd.DataFrame:
        return pd.DataFrame({"payer_id": ["P1", "P2"]})

    assert dg.materialize([claims], resources=_res(base_url), partition_key="2025-01-02").success
    assert dg.materialize([weekly_stats], resources=_res(base_url), partition_key="2025-01-05").success
    assert dg.materialize([payers], resources=_res(base_url)).success
    assert _files(base_url) == [
        "payers/data.parquet",
        "silver/claims/dt=2025-01-02/part-0.parquet",
        "weekly_stats/week=2025-01-05/part-0.parquet",
    ]
    # the partition column lives in the path only (DAGSTER_NOTES §2.4)
    assert "dt" not in _read(base_url, "silver/claims/dt=2025-01-02/part-0.parquet").columns
    assert list(_read(base_url, "weekly_stats/week=2025-01-05/part-0.parquet").columns) == ["n"]


def test_round_trip_preserves_dtypes(tmp_path):
    base_url = str(tmp_path)
    got: dict = {}
    sink = _capture("sink", got)
    res = _res(base_url)
    assert dg.materialize([daily_src], resources=res, partition_key="2025-01-02").success
    assert dg.materialize(
        [daily_src, sink], selection=[sink], resources=res, partition_key="2025-01-02"
    ).success
    frame = got["frame"]
    expected = _typed_frame("2025-01-02")
    pd.testing.assert_frame_equal(frame, expected)
    assert frame["claim_id"].dtype == object and frame["claim_id"][1] is None
    assert frame["dt"].map(type).eq(str).all()
    assert str(frame["submitted_at"].dtype) == "datetime64[ns]"
    assert frame["submitted_at"][0].nanosecond == 789


def test_unpartitioned_upstream_loads_data_parquet(tmp_path):
    url = str(tmp_path)

    @dg.asset(io_manager_key="lake")
    def payers() -> pd.DataFrame:
        return pd.DataFrame({"payer_id": ["P1", "P2"], "weight": [1.5, 2.0]})

    got: dict = {}
    sink = _capture("sink", got, key="payers", metadata={"columns": ["payer_id"]})
    assert dg.materialize([payers], resources=_res(url)).success
    assert dg.materialize(
        [payers, sink], selection=[sink], resources=_res(url), partition_key="2025-01-03"
    ).success
    pd.testing.assert_frame_equal(got["frame"], pd.DataFrame({"payer_id": ["P1", "P2"]}))


# --------------------------------------------------------------------------------------------- single-run ranges


def test_single_run_range_writes_every_day_with_metadata(base_url):
    res = _res(base_url)
    result = dg.materialize([daily_src], resources=res, tags=_range("2025-01-02", "2025-01-06"))
    assert result.success
    days = ["2025-01-02", "2025-01-03", "2025-01-04", "2025-01-05", "2025-01-06"]
    assert _files(base_url) == [f"daily_src/dt={d}/part-0.parquet" for d in days]
    schema = pq.read_schema(
        UPath(base_url).fs.open((UPath(base_url) / "daily_src/dt=2025-01-02/part-0.parquet").path)
    )
    for d in days:
        part = _read(base_url, f"daily_src/dt={d}/part-0.parquet")
        assert len(part) == (0 if int(d[-2:]) % 3 == 0 else 3)
        empty_schema = pq.read_schema(
            UPath(base_url).fs.open((UPath(base_url) / f"daily_src/dt={d}/part-0.parquet").path)
        )
        assert empty_schema.equals(schema, check_metadata=False)  # empty days keep the schema

    mats = {
        m.materialization.partition: m.materialization.metadata
        for m in result.get_asset_materialization_events()
    }
    assert sorted(mats) == days
    for d, md in mats.items():
        assert EXPECTED_METADATA <= set(md)
        assert md["dagster/row_count"].value == (0 if int(d[-2:]) % 3 == 0 else 3)  # per partition
        assert md["partitions_written"].value == 5
        assert md["path"].value.rstrip("/").endswith("daily_src")  # the folder for ranges
        assert md["bytes"].value > 0
        cols = [c.name for c in md["dagster/column_schema"].schema.columns]
        assert cols == ["claim_id", "units", "amount", "denied", "submitted_at", "dt"]
    handled = [e for e in result.all_node_events if e.event_type_value == "HANDLED_OUTPUT"]
    assert handled[0].event_specific_data.metadata["dagster/row_count"].value == 9  # the whole range
    total = sum(UPath(base_url).fs.size((UPath(base_url) / f).path) for f in _files(base_url))
    assert handled[0].event_specific_data.metadata["bytes"].value == total


def test_single_partition_metadata_and_no_row_values(tmp_path):
    url = str(tmp_path)
    secret = "MEMBER-SECRET-123"

    @dg.asset(partitions_def=DAILY, io_manager_key="lake")
    def members(context) -> pd.DataFrame:
        return pd.DataFrame({"member_id": [secret, "x"], "dt": [context.partition_key] * 2})

    result = dg.materialize([members], resources=_res(url), partition_key="2025-01-04")
    (mat,) = result.get_asset_materialization_events()
    md = mat.materialization.metadata
    assert set(md) == EXPECTED_METADATA
    assert md["path"].value == str(tmp_path / "members/dt=2025-01-04/part-0.parquet")
    assert md["dagster/row_count"].value == 2
    assert md["partitions_written"].value == 1
    assert md["bytes"].value == (tmp_path / "members/dt=2025-01-04/part-0.parquet").stat().st_size
    schema = md["dagster/column_schema"].schema
    assert [(c.name, c.type) for c in schema.columns] == [("member_id", "object"), ("dt", "object")]
    assert secret not in repr(md)


def test_partition_values_outside_run_raise(tmp_path):
    base_url = str(tmp_path)

    @dg.asset(partitions_def=DAILY, io_manager_key="lake", backfill_policy=dg.BackfillPolicy.single_run())
    def stray(context) -> pd.DataFrame:
        return pd.DataFrame({"x": [1, 2, 3, 4], "dt": ["2025-01-02", "2025-01-09", None, "2025-01-09"]})

    with pytest.raises(Exception) as exc:
        dg.materialize([stray], resources=_res(base_url), tags=_range("2025-01-02", "2025-01-03"))
    text = _error_text(exc.value)
    assert "ValueError" in text and "'2025-01-09'" in text and "None" in text
    assert _files(base_url) == []  # nothing written, nothing silently dropped

    with pytest.raises(Exception) as exc:
        dg.materialize([stray], resources=_res(base_url), partition_key="2025-01-02")
    assert "'2025-01-09'" in _error_text(exc.value)


def test_range_without_partition_column_raises_single_key_writes_all(tmp_path):
    url = str(tmp_path)

    @dg.asset(partitions_def=DAILY, io_manager_key="lake", backfill_policy=dg.BackfillPolicy.single_run())
    def nodt(context) -> pd.DataFrame:
        return pd.DataFrame({"x": [1, 2]})

    assert dg.materialize([nodt], resources=_res(url), partition_key="2025-01-02").success
    assert len(_read(url, "nodt/dt=2025-01-02/part-0.parquet")) == 2
    with pytest.raises(Exception) as exc:
        dg.materialize([nodt], resources=_res(url), tags=_range("2025-01-03", "2025-01-04"))
    assert "no partition column 'dt'" in _error_text(exc.value)


def test_none_output_writes_nothing(tmp_path):
    @dg.asset(partitions_def=DAILY, io_manager_key="lake")
    def nothing(context):
        return None

    assert dg.materialize([nothing], resources=_res(str(tmp_path)), partition_key="2025-01-02").success
    assert _files(str(tmp_path)) == []


def test_non_dataframe_output_raises(tmp_path):
    @dg.asset(io_manager_key="lake")
    def not_a_frame():
        return {"a": 1}

    with pytest.raises(Exception) as exc:
        dg.materialize([not_a_frame], resources=_res(str(tmp_path)))
    assert "stores pandas DataFrames, got dict" in _error_text(exc.value)


# --------------------------------------------------------------------------------------------- loading


def test_window_mapping_loads_one_frame(tmp_path):
    base_url = str(tmp_path)
    res = _res(base_url)
    assert dg.materialize([daily_src], resources=res, tags=_range("2025-01-01", "2025-01-10")).success
    got: dict = {}
    sink = _capture(
        "sink", got, partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-6, end_offset=0)
    )

    assert dg.materialize(
        [daily_src, sink], selection=[sink], resources=res, partition_key="2025-01-10"
    ).success
    frame = got["frame"]
    assert isinstance(frame, pd.DataFrame)
    days = [f"2025-01-{d:02d}" for d in range(4, 11)]
    expected = pd.concat([_typed_frame(d) for d in days if int(d[-2:]) % 3 != 0], ignore_index=True)
    pd.testing.assert_frame_equal(frame, expected)

    # clipped at start_date: ONE mapped key still gives a DataFrame (stock UPathIOManager: bare object)
    assert dg.materialize(
        [daily_src, sink], selection=[sink], resources=res, partition_key="2025-01-01"
    ).success
    pd.testing.assert_frame_equal(got["frame"], _typed_frame("2025-01-01"))


def test_zero_mapped_keys_give_empty_frame_with_columns(tmp_path):
    url = str(tmp_path)
    res = _res(url)
    mapping = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)
    got: dict = {}
    sink = _capture("sink", got, partition_mapping=mapping)

    # nothing materialized at all: empty frame, no columns known
    assert dg.materialize(
        [daily_src, sink], selection=[sink], resources=res, partition_key="2025-01-01"
    ).success
    assert isinstance(got["frame"], pd.DataFrame) and got["frame"].empty

    # once a partition exists, the empty frame carries its columns and dtypes
    assert dg.materialize([daily_src], resources=res, partition_key="2025-01-02").success
    assert dg.materialize(
        [daily_src, sink], selection=[sink], resources=res, partition_key="2025-01-01"
    ).success
    frame = got["frame"]
    assert len(frame) == 0
    assert frame.dtypes.astype(str).to_dict() == _typed_frame("2025-01-02").dtypes.astype(str).to_dict()

    pruned: dict = {}
    psink = _capture("psink", pruned, partition_mapping=mapping, metadata={"columns": ["dt", "units"]})
    assert dg.materialize(
        [daily_src, psink], selection=[psink], resources=res, partition_key="2025-01-01"
    ).success
    assert list(pruned["frame"].columns) == ["dt", "units"] and pruned["frame"].empty
    assert str(pruned["frame"]["units"].dtype) == "int64"


def test_column_pruning(tmp_path, monkeypatch):
    url = str(tmp_path)
    res = _res(url)
    assert dg.materialize([daily_src], resources=res, tags=_range("2025-01-01", "2025-01-02")).success
    mapping = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=0)

    requested: list = []
    real = iom.HiveParquetIOManager._read_parquet
    monkeypatch.setattr(
        iom.HiveParquetIOManager,
        "_read_parquet",
        staticmethod(lambda pf, path, columns: requested.append(columns) or real(pf, path, columns)),
    )
    got: dict = {}
    sink = _capture(
        "sink", got, partition_mapping=mapping, metadata={"columns": ["amount", "dt", "claim_id"]}
    )
    assert dg.materialize(
        [daily_src, sink], selection=[sink], resources=res, partition_key="2025-01-02"
    ).success
    assert requested == [["amount", "claim_id"]] * 2  # pruned at read, partition column never read
    frame = got["frame"]
    assert list(frame.columns) == ["amount", "dt", "claim_id"]
    assert frame["dt"].tolist() == ["2025-01-01"] * 3 + ["2025-01-02"] * 3

    no_dt: dict = {}
    sink2 = _capture("sink2", no_dt, metadata={"columns": ["units"]})
    assert dg.materialize(
        [daily_src, sink2], selection=[sink2], resources=res, partition_key="2025-01-02"
    ).success
    assert list(no_dt["frame"].columns) == ["units"]

    bad = _capture("bad", {}, metadata={"columns": ["units", "nope"]})
    with pytest.raises(Exception) as exc:
        dg.materialize([daily_src, bad], selection=[bad], resources=res, partition_key="2025-01-02")
    assert "['nope'] not found" in _error_text(exc.value)


def test_allow_missing_partitions(base_url):
    res = _res(base_url)
    assert dg.materialize([daily_src], resources=res, partition_key="2025-01-04").success
    assert dg.materialize([daily_src], resources=res, partition_key="2025-01-05").success
    mapping = dg.TimeWindowPartitionMapping(start_offset=-2, end_offset=0)

    strict = _capture("strict", {}, partition_mapping=mapping)
    with pytest.raises(Exception) as exc:
        dg.materialize([daily_src, strict], selection=[strict], resources=res, partition_key="2025-01-05")
    text = _error_text(exc.value)
    assert "FileNotFoundError" in text and "daily_src/dt=2025-01-03/part-0.parquet" in text

    got: dict = {}
    lax = _capture("lax", got, partition_mapping=mapping, metadata={"allow_missing_partitions": True})
    assert dg.materialize(
        [daily_src, lax], selection=[lax], resources=res, partition_key="2025-01-05"
    ).success
    assert got["frame"]["dt"].unique().tolist() == ["2025-01-04", "2025-01-05"]

    # every mapped partition missing: an empty frame (columns from the existing files), never None
    assert dg.materialize(
        [daily_src, lax], selection=[lax], resources=res, partition_key="2025-01-20"
    ).success
    assert got["frame"].empty and "claim_id" in got["frame"].columns


def test_weekly_daily_mappings(tmp_path):
    url = str(tmp_path)
    res = _res(url)

    @dg.asset(partitions_def=WEEKLY, io_manager_key="lake")
    def weekly_agg(context, daily_src: pd.DataFrame) -> pd.DataFrame:
        # weekly <- daily: the 7 days of the week arrive as ONE frame with a dt column
        return pd.DataFrame(
            {"rows": [len(daily_src)], "days": [daily_src["dt"].nunique()], "week": [context.partition_key]}
        )

    got: dict = {}
    daily_from_weekly = _capture("daily_from_weekly", got, key="weekly_agg")
    assert dg.materialize([daily_src], resources=res, tags=_range("2025-01-05", "2025-01-11")).success
    assert dg.materialize(
        [daily_src, weekly_agg], selection=[weekly_agg], resources=res, partition_key="2025-01-05"
    ).success
    assert _read(url, "weekly_agg/week=2025-01-05/part-0.parquet").to_dict("records") == [
        {"rows": 15, "days": 5}
    ]
    # daily <- weekly: the containing week, partition column `week`
    assert dg.materialize(
        [daily_src, weekly_agg, daily_from_weekly],
        selection=[daily_from_weekly],
        resources=res,
        partition_key="2025-01-08",
    ).success
    pd.testing.assert_frame_equal(
        got["frame"], pd.DataFrame({"rows": [15], "days": [5], "week": ["2025-01-05"]})
    )


# --------------------------------------------------------------------------------------------- atomicity


def _crash_after_partial_bytes(table, where, *args, **kwargs):
    where.write(b"PAR1 partial garbage")
    raise OSError("disk full (simulated)")


def test_crash_mid_write_keeps_old_file_and_leaves_no_tmp(base_url, monkeypatch):
    res = _res(base_url)
    assert dg.materialize([daily_src], resources=res, tags=_range("2025-01-01", "2025-01-02")).success
    before = {f: _read(base_url, f) for f in _files(base_url)}

    calls = {"n": 0}
    real = iom.pq.write_table

    def second_write_crashes(table, where, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the first partition's tmp is complete, the second crashes
            return _crash_after_partial_bytes(table, where)
        return real(table, where, *args, **kwargs)

    monkeypatch.setattr(iom.pq, "write_table", second_write_crashes)
    with pytest.raises(Exception) as exc:
        dg.materialize([daily_src], resources=res, tags=_range("2025-01-01", "2025-01-02"))
    assert "disk full" in _error_text(exc.value)
    assert _files(base_url) == sorted(before)  # no tmp left behind
    for f, frame in before.items():
        pd.testing.assert_frame_equal(_read(base_url, f), frame)  # both old files intact

    monkeypatch.setattr(iom.pq, "write_table", _crash_after_partial_bytes)
    with pytest.raises(OSError, match="disk full"):
        dg.materialize([daily_src], resources=res, partition_key="2025-01-01")
    assert _files(base_url) == sorted(before)
    pd.testing.assert_frame_equal(
        _read(base_url, "daily_src/dt=2025-01-01/part-0.parquet"),
        before["daily_src/dt=2025-01-01/part-0.parquet"],
    )


def test_rewrite_replaces_partition(tmp_path):
    base_url = str(tmp_path)
    version = {"v": 1}

    @dg.asset(partitions_def=DAILY, io_manager_key="lake")
    def versioned(context) -> pd.DataFrame:
        return pd.DataFrame(
            {"v": [version["v"]] * version["v"], "dt": [context.partition_key] * version["v"]}
        )

    res = _res(base_url)
    assert dg.materialize([versioned], resources=res, partition_key="2025-01-02").success
    version["v"] = 3
    assert dg.materialize([versioned], resources=res, partition_key="2025-01-02").success
    assert _files(base_url) == ["versioned/dt=2025-01-02/part-0.parquet"]
    assert _read(base_url, "versioned/dt=2025-01-02/part-0.parquet")["v"].tolist() == [3, 3, 3]


def test_append_only_asset_adds_only_new_content_and_keeps_stored_rows(base_url):
    """Bronze-style assets: a re-run of a range adds the rows a day lacks (a late commit) and keeps what is
    stored (a row the source has since overwritten), each row once."""
    rows = {"2025-01-02": [("a", 1), ("b", 1)], "2025-01-03": [("c", 1)]}

    @dg.asset(partitions_def=DAILY, io_manager_key="lake", backfill_policy=dg.BackfillPolicy.single_run(),
              metadata={iom.APPEND_ONLY_METADATA: ["claim_id", "version"]})
    def appended(context: dg.AssetExecutionContext) -> pd.DataFrame:
        data = [(c, v, k, context.run.run_id) for k in context.partition_keys for c, v in rows.get(k, [])]
        return pd.DataFrame(data, columns=["claim_id", "version", "dt", "_run_id"])

    res = _res(base_url)
    first = dg.materialize([appended], resources=res, tags=_range("2025-01-02", "2025-01-03"))
    assert first.success
    rows["2025-01-02"] = [("b", 1), ("d", 1), ("d", 1)]  # "a" overwritten at the source, "d" late, twice
    second = dg.materialize([appended], resources=res, tags=_range("2025-01-02", "2025-01-03"))
    assert second.success
    day2 = _read(base_url, "appended/dt=2025-01-02/part-0.parquet")
    assert list(zip(day2["claim_id"], day2["_run_id"], strict=True)) == [
        ("a", first.run_id), ("b", first.run_id), ("d", second.run_id)]
    assert _read(base_url, "appended/dt=2025-01-03/part-0.parquet")["claim_id"].tolist() == ["c"]
    handled = [e for e in second.all_node_events if e.event_type_value == "HANDLED_OUTPUT"]
    metadata = handled[0].event_specific_data.metadata
    assert metadata["rows_added"].value == 1 and metadata["rows_already_stored"].value == 2


@pytest.mark.parametrize("order", ["grouped", "interleaved", "repeat"])
def test_append_only_first_write_stores_each_days_rows_once_in_their_order(tmp_path, order):
    """A first write of a range (nothing stored) keeps the frame as it is only when that is what the
    per-day merge would build: rows grouped by day in key order, none repeated within its day."""
    data = {"grouped": [("a", "2025-01-02"), ("b", "2025-01-02"), ("c", "2025-01-03")],
            "interleaved": [("c", "2025-01-03"), ("a", "2025-01-02"), ("b", "2025-01-02")],
            "repeat": [("a", "2025-01-02"), ("b", "2025-01-02"), ("a", "2025-01-02"), ("a", "2025-01-03")]}[order]

    @dg.asset(partitions_def=DAILY, io_manager_key="lake", backfill_policy=dg.BackfillPolicy.single_run(),
              metadata={iom.APPEND_ONLY_METADATA: ["claim_id"]})
    def appended(context: dg.AssetExecutionContext) -> pd.DataFrame:
        return pd.DataFrame(data, columns=["claim_id", "dt"])

    result = dg.materialize([appended], resources=_res(str(tmp_path)), tags=_range("2025-01-02", "2025-01-03"))
    assert result.success
    expected = {"2025-01-02": ["a", "b"], "2025-01-03": ["c" if order != "repeat" else "a"]}
    for day, ids in expected.items():
        assert _read(str(tmp_path), f"appended/dt={day}/part-0.parquet")["claim_id"].tolist() == ids
    handled = [e for e in result.all_node_events if e.event_type_value == "HANDLED_OUTPUT"]
    metadata = handled[0].event_specific_data.metadata
    assert metadata["rows_added"].value == 3 and metadata["dagster/row_count"].value == 3


# --------------------------------------------------------------------------------------------- object storage


def _put_parquet(server, bucket: str, key: str, rows: int) -> None:
    """Write an object the way another process (a Celery worker) would: through its own S3 client."""
    import io

    import pyarrow as pa

    buffer = io.BytesIO()
    pq.write_table(pa.table({"claim_id": [f"C{i}" for i in range(rows)]}), buffer)
    server.client().put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())


def test_s3_lake_reads_what_another_process_rewrote_after_a_listing(request):
    """fsspec caches listings per process by default; a partition listed, then rewritten by another worker,
    could no longer be read (s3fs raises FileExpired on the stale size/ETag). The lake root turns it off."""
    server = request.getfixturevalue("s3_env")
    bucket = server.new_bucket("lake")
    root = iom.lake_root(f"s3://{bucket}/lake")
    assert root.fs.dircache.use_listings_cache is False
    folder = root / "bronze" / "claims" / "dt=2025-01-01"
    _put_parquet(server, bucket, "lake/bronze/claims/dt=2025-01-01/part-0.parquet", 3)
    assert [p.rsplit("/", 1)[-1] for p in root.fs.ls(folder.path, detail=False)] == ["part-0.parquet"]
    _put_parquet(server, bucket, "lake/bronze/claims/dt=2025-01-01/part-0.parquet", 1000)  # another writer

    manager = ParquetLakeIOManager(base_url=f"s3://{bucket}/lake").create_io_manager(dg.build_init_resource_context())
    assert manager._read_table(folder / "part-0.parquet", ["claim_id"]).num_rows == 1000


def test_lake_root_keeps_local_and_memory_paths_plain(tmp_path, mem_url):
    assert iom.lake_root(str(tmp_path)).path == UPath(str(tmp_path)).path
    assert iom.lake_root(mem_url).protocol == "memory"
    assert iom.lake_root("s3://bucket/p", {"use_listings_cache": True}).fs.dircache.use_listings_cache is True


def test_arrow_strings_load_text_as_arrow_backed_strings_with_the_same_values(tmp_path):
    """AssetIn metadata rcm/arrow_strings: text columns come as pandas' Arrow-backed strings (nulls kept),
    the other columns as usual; without it, Python objects."""
    url = str(tmp_path)
    res = _res(url)
    assert dg.materialize([daily_src], resources=res, tags=_range("2025-01-01", "2025-01-02")).success
    mapping = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=0)
    arrow: dict = {}
    plain: dict = {}
    sinks = [_capture("arrow_sink", arrow, partition_mapping=mapping,
                      metadata={iom.ARROW_STRINGS_METADATA: True}),
             _capture("plain_sink", plain, partition_mapping=mapping)]
    assert dg.materialize([daily_src, *sinks], selection=sinks, resources=res, partition_key="2025-01-02").success
    got, expected = arrow["frame"], plain["frame"]
    assert got["claim_id"].dtype == pd.StringDtype("pyarrow") and expected["claim_id"].dtype == object
    assert got["claim_id"].isna().sum() == expected["claim_id"].isna().sum() == 2
    assert got["claim_id"].astype(object).where(got["claim_id"].notna(), None).tolist() == expected["claim_id"].tolist()
    pd.testing.assert_frame_equal(got.drop(columns=["claim_id"]), expected.drop(columns=["claim_id"]))
