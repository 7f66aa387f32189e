"""lib.landing: names, validation of every bad-file kind, quarantine, reading, and the incremental scan."""

import json
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from rcm_assets.lib import landing as lnd
from rcm_assets.lib.columns import source_column_names
from rcm_assets.lib.landing import LandingError, LandingName
from rcm_assets.synthetic import generate, landing_rows, write_landing_file

FIRST = date(2025, 1, 1)
LAST = date(2025, 3, 31)
DAY = date(2025, 1, 2)
REMIT_DAY = date(2025, 1, 25)  # remittances reach the source 14+ days after the first claims


@pytest.fixture(scope="module")
def data():
    return generate(start=FIRST, days=30, claims_per_day=20, seed=7)


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    landing, quarantine = tmp_path / "landing", tmp_path / "quarantine"
    landing.mkdir()
    return landing, quarantine


@pytest.fixture
def good(data, dirs) -> Path:
    """A valid file that must come through every bad-file scenario untouched."""
    return write_landing_file(data, DAY, dirs[0], fmt="csv", table="claims", suffix="_good")


def _csv_text(data, tmp_path: Path) -> str:
    """The generator's CSV for DAY, written outside the landing folder."""
    return write_landing_file(data, DAY, tmp_path / "src").read_text(encoding="utf-8")


def _frame(data, day=DAY, table="claims") -> pd.DataFrame:
    return landing_rows(data, day, table)


def _phi_values(data) -> list[str]:
    rows = _frame(data)
    return [str(v) for v in rows[["member_id", "patient_name", "patient_address"]].head(3).to_numpy().ravel()]


# ---------------------------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("claims_2025-01-02.csv", LandingName("claims", date(2025, 1, 2), "csv", "")),
        ("claims_2025-01-02_batch-7.parquet", LandingName("claims", date(2025, 1, 2), "parquet", "_batch-7")),
        ("remittances_2024-02-29.v2.csv", LandingName("remittances", date(2024, 2, 29), "csv", ".v2")),
    ],
)
def test_parse_name_accepts_the_documented_pattern(name, expected):
    parsed = lnd.parse_name(name)
    assert parsed == expected
    assert parsed.name == name
    assert parsed.partition_key == expected.day.isoformat()


@pytest.mark.parametrize(
    "name",
    [
        "claims-2025-01-02.csv",
        "claims_20250102.csv",
        "Claims_2025-01-02.csv",
        "claims_2025-01-02.CSV",
        "claims_2025-01-02.xlsx",
        "payments_2025-01-02.csv",
        "claims_2025-02-30.csv",  # not a calendar date
        "claims_2025-13-01.csv",
        "claims_٢٠٢٥-01-02.csv",  # non-ASCII digits
        "claims_2025-01-02 copy.csv",
        "claims_2025-01-02.csv\n",
        "notes.txt",
    ],
)
def test_parse_name_refuses_bad_names(name):
    with pytest.raises(LandingError) as info:
        lnd.parse_name(name)
    assert info.value.reason == "bad_name"


@pytest.mark.parametrize(
    "name",
    ["../claims_2025-01-02.csv", "..\\..\\claims_2025-01-02.csv", "sub/claims_2025-01-02.csv",
     "claims_2025-01-02..csv", "/etc/claims_2025-01-02.csv", "claims_2025-01-02\x00.csv", ".."],
)
def test_parse_name_refuses_path_traversal(name):
    with pytest.raises(LandingError) as info:
        lnd.parse_name(name)
    assert info.value.reason == "path_traversal"


def test_landing_error_rejects_unknown_reason_codes():
    with pytest.raises(ValueError, match="unknown landing reason"):
        LandingError("nope", "x")


# ---------------------------------------------------------------------------------------------- reading


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize(("table", "day"), [("claims", DAY), ("remittances", REMIT_DAY)])
def test_read_landing_file_round_trips_the_registry_frame(data, dirs, fmt, table, day):
    path = write_landing_file(data, day, dirs[0], fmt=fmt, table=table)
    assert lnd.validate_file(path, FIRST, LAST) == lnd.parse_name(path.name)
    frame = lnd.read_landing_file(path, table)
    expected = _frame(data, day, table)
    assert len(frame) > 0
    assert list(frame.columns) == source_column_names(table)
    pd.testing.assert_frame_equal(frame, expected, check_dtype=True)


def test_read_landing_file_keeps_leading_zeros_and_nulls(data, dirs):
    rows = _frame(data)
    rows.loc[0, "patient_zip"] = "01234"
    rows.loc[0, "prior_auth_number"] = None
    path = dirs[0] / f"claims_{DAY}.csv"
    _write_csv(rows, path, data)
    frame = lnd.read_landing_file(path, "claims")
    assert frame.loc[0, "patient_zip"] == "01234"
    assert frame.loc[0, "prior_auth_number"] is None


def test_read_landing_file_refuses_a_file_of_the_other_table(data, dirs):
    path = write_landing_file(data, DAY, dirs[0], table="claims")
    with pytest.raises(LandingError, match="not remittances"):
        lnd.read_landing_file(path, "remittances")


def _write_csv(rows: pd.DataFrame, path: Path, data) -> Path:
    """Rows written the way the generator writes CSV (timestamps as storage text)."""
    from rcm_assets.synthetic import storage_columns

    out = rows.copy()
    stored = storage_columns(rows, "claims")
    for name in ("patient_dob", "service_date", "submitted_at", "updated_at"):
        out[name] = stored[name]
    out.to_csv(path, index=False)
    return path


# ---------------------------------------------------------------------------------------------- bad files


def _bad_files(data, landing: Path, tmp_path: Path) -> dict[str, tuple[str, str | None]]:
    """name -> (expected reason, a word the message must contain); files created in `landing`."""
    text = _csv_text(data, tmp_path)
    header, *lines = text.splitlines(keepends=True)
    today = datetime.now(UTC).date()
    made: dict[str, tuple[str, str | None]] = {}

    def put(name: str, payload: bytes | str, reason: str, word: str | None = None) -> None:
        path = landing / name
        path.write_bytes(payload if isinstance(payload, bytes) else payload.encode("utf-8"))
        made[name] = (reason, word)

    put("claims-2025-01-02.csv", text, "bad_name")
    put("readme.txt", "hello", "not_x12")  # *.txt may hold X12: without an ISA header it is refused as not X12
    put("notes.doc", "hello", "bad_name")
    put("claims_2025-02-30.csv", text, "bad_name", "calendar")
    put("claims_2024-12-31.csv", text, "out_of_range_date", "2024-12-31")
    put(f"claims_{today.isoformat()}.csv", text, "future_date")
    put("claims_2999-01-01.csv", text, "future_date")
    put("claims_2025-01-02_garbage.parquet", b"PAR1 this is not parquet", "unreadable")
    put("claims_2025-01-02_ragged.csv", header + lines[0].rstrip("\n") + ",extra,fields\n" + "".join(lines[1:]),
        "unreadable", "row 2")
    put("claims_2025-01-02_truncated.csv", text[: len(text) - len(lines[-1]) // 2], "unreadable", "field(s)")
    rows = _frame(data)
    latin = _write_csv(rows.assign(patient_name="José Müller"), tmp_path / "latin.csv", data)
    put("claims_2025-01-02_latin1.csv", latin.read_text(encoding="utf-8").encode("latin-1"), "not_utf8", "line 2")
    put("claims_2025-01-02_utf16.csv", text.encode("utf-16"), "not_utf8")
    put("claims_2025-01-02_zero.csv", b"", "empty")
    put("claims_2025-01-02_header.csv", header, "empty")
    pq_empty = landing / "claims_2025-01-02_empty.parquet"
    rows.iloc[:0].to_parquet(pq_empty, index=False)
    made[pq_empty.name] = ("empty", None)
    put("claims_2025-01-02_nozip.csv", _write_csv(rows, tmp_path / "a.csv", data).read_text()
        .replace("patient_zip", "zip_code"), "wrong_columns", "patient_zip")
    extra = _write_csv(rows.assign(favourite_colour="blue"), tmp_path / "b.csv", data)
    put("claims_2025-01-02_extra.csv", extra.read_bytes(), "wrong_columns", "favourite_colour")
    put("claims_2025-01-02_noheader.csv", "".join(lines), "wrong_columns", "header")
    put("remittances_2025-01-02.csv", text, "wrong_columns")  # claims rows in a remittances file
    bad_units = rows.astype({"units": object})
    bad_units.loc[1, "units"] = "lots"
    put("claims_2025-01-02_units.csv", _write_csv(bad_units, tmp_path / "c.csv", data).read_bytes(),
        "bad_values", "units")
    late = rows.copy()
    late.loc[2, "updated_at"] = pd.Timestamp(DAY + timedelta(days=1)) + pd.Timedelta(minutes=5)
    put("claims_2025-01-02_late.csv", _write_csv(late, tmp_path / "d.csv", data).read_bytes(),
        "bad_values", "updated_at")
    put("..\\..\\claims_2025-01-02.csv", text, "path_traversal")
    outside = tmp_path / "outside_secret.csv"
    outside.write_text(text)
    (landing / "claims_2025-01-02_link.csv").symlink_to(outside)
    made["claims_2025-01-02_link.csv"] = ("path_traversal", "symbolic link")
    return made


def test_every_bad_kind_is_quarantined_with_a_reason_and_good_files_are_untouched(data, dirs, good, tmp_path):
    landing, quarantine = dirs
    other_good = write_landing_file(data, DAY, landing, fmt="parquet", table="claims")
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (good, other_good)}
    bad = _bad_files(data, landing, tmp_path)
    outside = tmp_path / "outside_secret.csv"
    outside_bytes = outside.read_bytes()

    result = lnd.scan_landing(landing, quarantine, None, first_day=FIRST, settle_seconds=0)

    assert sorted(a.path.name for a in result.accepted) == sorted(before)
    assert {r.name: r.error.reason for r in result.refused} == {n: r for n, (r, _) in bad.items()}
    assert sorted(os.listdir(landing)) == sorted(before)  # nothing bad left in landing
    for name, (content, mtime) in before.items():
        assert (landing / name).read_bytes() == content and (landing / name).stat().st_mtime_ns == mtime
    phi = _phi_values(data)
    for refused in result.refused:
        reason_file = refused.quarantined_as.with_name(refused.quarantined_as.name + lnd.REASON_SUFFIX)
        record = json.loads(reason_file.read_text())
        expected_reason, word = bad[refused.name]
        assert record["reason"] == expected_reason
        assert record["file"] == refused.name
        assert refused.quarantined_as.parent == quarantine
        if word:
            assert word in record["message"], record["message"]
        assert not any(v in record["message"] for v in phi), record["message"]
        assert "José" not in record["message"] and "lots" not in record["message"]
    # the symlink itself was moved; what it pointed at is untouched
    assert outside.read_bytes() == outside_bytes
    assert (quarantine / "claims_2025-01-02_link.csv").is_symlink()
    # the traversal name is neutralised inside quarantine
    assert all(p.parent == quarantine for p in quarantine.iterdir())


def test_wrong_columns_message_names_the_missing_column(data, dirs, tmp_path):
    rows = _frame(data).drop(columns=["patient_zip"])
    from rcm_assets.synthetic import storage_columns

    stored = storage_columns(_frame(data), "claims")
    for name in ("patient_dob", "service_date", "submitted_at", "updated_at"):
        rows[name] = stored[name]
    path = dirs[0] / f"claims_{DAY}.csv"
    rows.to_csv(path, index=False)
    with pytest.raises(LandingError) as info:
        lnd.validate_file(path, FIRST, LAST)
    assert info.value.reason == "wrong_columns"
    assert info.value.column == "patient_zip"
    assert "missing patient_zip" in str(info.value)


def test_bad_values_names_column_and_never_the_value(data, dirs, tmp_path):
    rows = _frame(data).astype({"billed_amount": object})
    rows.loc[3, "billed_amount"] = "SECRET-VALUE"
    path = _write_csv(rows, dirs[0] / f"claims_{DAY}.csv", data)
    with pytest.raises(LandingError) as info:
        lnd.validate_file(path, FIRST, LAST)
    assert (info.value.reason, info.value.column) == ("bad_values", "billed_amount")
    assert "SECRET-VALUE" not in str(info.value)
    assert path.name in str(info.value)


def test_updated_at_outside_the_day_reports_the_row(data, dirs):
    rows = _frame(data)
    rows.loc[4, "updated_at"] = pd.Timestamp(DAY) - pd.Timedelta(seconds=1)
    path = _write_csv(rows, dirs[0] / f"claims_{DAY}.csv", data)
    with pytest.raises(LandingError) as info:
        lnd.validate_file(path, FIRST, LAST)
    assert (info.value.reason, info.value.column, info.value.row) == ("bad_values", "updated_at", 5)


def test_day_bounds_are_inclusive(data, dirs):
    path = write_landing_file(data, DAY, dirs[0])
    assert lnd.validate_file(path, DAY, DAY).day == DAY
    with pytest.raises(LandingError, match="after the last completed day") as info:
        lnd.validate_file(path, FIRST, DAY - timedelta(days=1))
    assert info.value.reason == "future_date"
    with pytest.raises(LandingError) as info:
        lnd.validate_file(path, DAY + timedelta(days=1), LAST)
    assert info.value.reason == "out_of_range_date"


def test_last_completed_day_is_yesterday_in_utc():
    assert lnd.last_completed_day(datetime(2025, 3, 1, 0, 30, tzinfo=UTC)) == date(2025, 2, 28)
    assert lnd.last_completed_day(datetime(2025, 3, 1, 23, 59)) == date(2025, 2, 28)  # naive = UTC


# ---------------------------------------------------------------------------------------------- quarantine


def test_quarantine_never_overwrites_and_always_leaves_landing(dirs):
    landing, quarantine = dirs
    moved = []
    for payload in (b"first", b"second", b"third"):
        path = landing / "claims_2025-01-02.csv"
        path.write_bytes(payload)
        moved.append(lnd.quarantine(path, LandingError("empty", "test"), quarantine))
        assert not path.exists()
    assert moved[0].name == "claims_2025-01-02.csv"
    assert len({p.name for p in moved}) == 3
    assert [p.read_bytes() for p in moved] == [b"first", b"second", b"third"]
    assert all(p.suffix == ".csv" for p in moved)
    for p in moved:
        record = json.loads(p.with_name(p.name + lnd.REASON_SUFFIX).read_text())
        assert record["reason"] == "empty" and record["quarantined_as"] == p.name
        assert datetime.fromisoformat(record["quarantined_at"]).tzinfo is not None


def test_quarantine_keeps_hostile_names_inside_the_quarantine_folder(dirs):
    landing, quarantine = dirs
    path = landing / "..\\..\\evil.csv"
    path.write_text("x")
    dest = lnd.quarantine(path, LandingError("path_traversal", "t"), quarantine)
    assert dest.parent == quarantine and ".." not in dest.name and "\\" not in dest.name
    assert not path.exists()
    assert json.loads(dest.with_name(dest.name + lnd.REASON_SUFFIX).read_text())["file"] == path.name


# ---------------------------------------------------------------------------------------------- listing and versions


def test_files_for_day_lists_only_that_table_and_day(data, dirs):
    landing, _ = dirs
    b = write_landing_file(data, DAY, landing, suffix="_b")
    a = write_landing_file(data, DAY, landing, fmt="parquet", suffix="_a")
    write_landing_file(data, DAY + timedelta(days=1), landing)
    write_landing_file(data, DAY, landing, table="remittances")
    (landing / f".claims_{DAY}.csv.123.tmp").write_text("partial")
    (landing / f"claims_{DAY}.csv.part").write_text("partial")
    (landing / f"claims-{DAY}.csv").write_text("bad name")
    (landing / f"claims_{DAY}_dir.csv").mkdir()
    assert lnd.files_for_day(landing, "claims", DAY) == [a, b]
    assert lnd.files_for_day(landing / "missing", "claims", DAY) == []


def test_file_version_changes_when_the_file_changes(dirs):
    path = dirs[0] / f"claims_{DAY}.csv"
    path.write_text("a")
    first = lnd.file_version(path)
    assert first.startswith(f"{path.name}@")
    assert lnd.file_version(path) == first
    path.write_text("ab")
    assert lnd.file_version(path) != first
    os.utime(path, ns=(1, 1))
    assert lnd.file_version(path) == f"{path.name}@1-2"


# ---------------------------------------------------------------------------------------------- scan


def test_scan_is_incremental_and_pages_through_a_backlog(data, dirs):
    landing, quarantine = dirs
    source = write_landing_file(data, DAY, landing).read_bytes()
    for i in range(9):
        (landing / f"claims_{DAY}_{i:02d}.csv").write_bytes(source)
    seen, cursor, ticks = [], None, 0
    while True:
        result = lnd.scan_landing(landing, quarantine, cursor, first_day=FIRST, settle_seconds=0, max_files=4)
        ticks += 1
        seen += [a.path.name for a in result.accepted]
        cursor = result.cursor
        if not result.accepted:
            break
        assert result.backlog == max(0, 10 - len(seen))
    assert ticks == 4 and len(seen) == len(set(seen)) == 10


def test_scan_picks_up_a_changed_file_and_a_file_copied_with_an_old_mtime(data, dirs):
    landing, quarantine = dirs
    path = write_landing_file(data, DAY, landing)
    first = lnd.scan_landing(landing, quarantine, None, first_day=FIRST, settle_seconds=0)
    assert [a.version for a in first.accepted] == [lnd.file_version(path)]
    path.write_bytes(path.read_bytes() + b"")  # rewritten, same content
    os.utime(path)
    copied = landing / f"claims_{DAY}_copy.csv"
    copied.write_bytes(path.read_bytes())
    os.utime(copied, ns=(10**18, 10**18))  # `cp -p` of an old file: mtime in 2001
    second = lnd.scan_landing(landing, quarantine, first.cursor, first_day=FIRST, settle_seconds=0)
    assert sorted(a.path.name for a in second.accepted) == sorted([path.name, copied.name])
    assert first.accepted[0].version not in {a.version for a in second.accepted}


def test_scan_waits_for_files_to_settle(data, dirs):
    landing, quarantine = dirs
    write_landing_file(data, DAY, landing)
    held = lnd.scan_landing(landing, quarantine, None, first_day=FIRST, settle_seconds=3600)
    assert (held.accepted, held.settling) == ([], 1)
    later = datetime.now(UTC) + timedelta(hours=2)
    ready = lnd.scan_landing(landing, quarantine, held.cursor, first_day=FIRST, settle_seconds=3600, now=later)
    assert len(ready.accepted) == 1


def test_scan_ignores_uploads_in_progress_and_folders(dirs):
    landing, quarantine = dirs
    (landing / f".claims_{DAY}.csv.x1y2.tmp").write_text("half a file")
    (landing / f"claims_{DAY}.csv.part").write_text("half a file")
    (landing / "archive").mkdir()
    result = lnd.scan_landing(landing, quarantine, None, first_day=FIRST, settle_seconds=0)
    assert (result.accepted, result.refused) == ([], [])
    assert not quarantine.exists()


def test_unreadable_cursor_rescans_from_the_start(data, dirs):
    landing, quarantine = dirs
    write_landing_file(data, DAY, landing)
    result = lnd.scan_landing(landing, quarantine, "not json", first_day=FIRST, settle_seconds=0)
    assert len(result.accepted) == 1
    assert lnd.Watermark.decode(result.cursor) > lnd.Watermark()


def test_cursor_is_small_and_fixed_size():
    long_name = "claims_2025-01-02" + "x" * 200 + ".csv"
    mark = lnd.Watermark(2**63 - 1, lnd.tie_of(long_name))
    assert len(mark.encode()) < 80
    assert lnd.Watermark.decode(mark.encode()) == mark


def test_batches_group_a_ticks_files_by_table_and_day_and_key_them_by_version(tmp_path):
    """One run per table and day; the run key changes when the batch's file versions do, not otherwise."""
    landing = tmp_path / "landing"
    landing.mkdir()
    a = landing / f"claims_{DAY}_a.csv"
    b = landing / f"claims_{DAY}_b.csv"
    c = landing / f"claims_{DAY + timedelta(days=1)}.csv"
    for path in (a, b, c):
        path.write_text("x")
    accepted = [lnd.Accepted(p, lnd.parse_name(p.name), lnd.file_version(p)) for p in (a, b, c)]
    groups = lnd.batches(accepted)
    assert {k: [i.path.name for i in v] for k, v in groups.items()} == {
        ("claims", DAY.isoformat()): [a.name, b.name], ("claims", (DAY + timedelta(days=1)).isoformat()): [c.name]}
    items = groups[("claims", DAY.isoformat())]
    key = lnd.batch_key("claims", DAY.isoformat(), items)
    assert key.startswith(f"claims:{DAY}:") and key == lnd.batch_key("claims", DAY.isoformat(), items[::-1])
    entry = lnd.ledger_entry(a)
    os.utime(a, ns=(1, 1))  # rewritten (another version): another key and ledger entry
    again = [lnd.Accepted(p, lnd.parse_name(p.name), lnd.file_version(p)) for p in (a, b)]
    assert lnd.batch_key("claims", DAY.isoformat(), again) != key and lnd.ledger_entry(a) != entry
    assert lnd.ledger_entry(landing / "gone.csv") is None


# ---------------------------------------------------------------------------------------------- X12 findings


def test_x12_refused_sets_and_envelope_warnings_are_recorded_together(dirs):
    """bad_some_sets.x12: ST 0003 refused (SE02), GS 31's GE01 wrong around an intact set (a warning): one
    .rejected.json lists both; the file's days are accepted."""
    landing, quarantine = dirs
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "x12" / "bad_some_sets.x12"
    path = landing / "some_sets.x12"
    path.write_bytes(fixture.read_bytes())
    result = lnd.scan_landing(landing, quarantine, None, first_day=FIRST, last_day=LAST, settle_seconds=0)
    assert result.refused == [] and [a.landing.day for a in result.accepted] == [date(2025, 3, 10)]
    (partly,) = result.partial
    assert [p.segment for p in partly.problems] == ["SE"] and [w.segment for w in partly.warnings] == ["GE"]
    record = json.loads(partly.record.read_text())
    assert partly.record.name.endswith(".rejected.json") and record["file"] == "some_sets.x12"
    assert [(r["envelope"], r["segment"]) for r in record["rejected_transaction_sets"]] == [
        ("ISA 000000700 / GS 30 / ST 0003", "SE")]
    assert [(w["envelope"], w["segment_position"], w["segment"]) for w in record["envelope_warnings"]] == [
        ("ISA 000000700 / GS 31", 154, "GE")]
    assert "GE01 does not count" in record["envelope_warnings"][0]["problem"]
