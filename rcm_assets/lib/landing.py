"""Landing files: validation, reading, quarantine and the sensor's incremental scan (no Dagster here).

A partner or an operator drops `claims_YYYY-MM-DD[suffix].csv|parquet` (or `remittances_…`) into the
landing folder. Each file describes the rows that reached the source during that UTC day, so it feeds
bronze partition D. A file that cannot be used is moved to the quarantine folder with a
`<name>.reason.json` beside it; nothing from it reaches bronze, and the other files are unaffected.

X12 files (`*.837`, `*.835`, `*.x12`, `*.edi`, `*.txt`, recognised by their ISA header) may have any
name: their claims (837) and remittances (835) feed the bronze partitions of the UTC days their rows
reached the source (`updated_at`, from GS04/GS05; see `lib.x12`). An X12 file is accepted per
transaction set: a bad set is listed in `<name>.<stamp>.rejected.json` in the quarantine folder while
the good sets of the same file flow on; damage to the interchange envelope quarantines the whole file.
A control number or count wrong in a GE/IEA trailer around intact sets refuses nothing: the file lands and
the warning (envelope, segment) is recorded the same way (`envelope_warnings` in the `.rejected.json`, or a
`<name>.<stamp>.warnings.json` when no set was refused).

Error messages name the file, and the column or row where that helps, but never a cell value: landing
files carry PHI.

The sensor's scan keeps an O(1) cursor, a watermark `(arrival_ns, name hash)`. A file's arrival time is
its inode change time (POSIX ctime), which every write, copy and rename-into-the-folder sets to "now" and
which copy tools cannot back-date (they can back-date mtime). A file is handled once it has been quiet for
`settle_seconds`, which also closes the race between listing the folder and a file landing during it.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from rcm_assets.lib import x12
from rcm_assets.lib.columns import source_column_names, source_columns
from rcm_assets.lib.source import SourceSchemaError, cast_to_registry

log = logging.getLogger("rcm.landing")

TABLES = ("claims", "remittances")
FORMATS = ("csv", "parquet")
REASONS = (
    "bad_name",
    "out_of_range_date",
    "future_date",
    "unreadable",
    "not_utf8",
    "empty",
    "wrong_columns",
    "bad_values",
    "path_traversal",
    "not_x12",
    "bad_x12",
)
X12_SUFFIXES = (".837", ".835", ".x12", ".edi", ".txt", ".837p", ".837i", ".era", ".rmt", ".dat")
# What an X12 file's extension promises: an 837 where an 835 is expected is refused.
X12_EXPECTED_TABLE = {".837": "claims", ".837p": "claims", ".837i": "claims",
                      ".835": "remittances", ".era": "remittances", ".rmt": "remittances"}
X12_FORMAT = "x12"
_X12_HEAD_BYTES = 512
NAME_RE = re.compile(
    r"(claims|remittances)_([0-9]{4}-[0-9]{2}-[0-9]{2})([A-Za-z0-9_.-]*)\.(csv|parquet)", re.ASCII
)
# Files still being uploaded or written by editors and sync tools: left alone, never quarantined.
IN_PROGRESS_SUFFIXES = (".tmp", ".part", ".partial", ".filepart", ".crdownload", ".swp", "~")
REASON_SUFFIX = ".reason.json"
_CHUNK = 1 << 20
_MAX_LISTED = 10


class LandingError(ValueError):
    """A landing file that cannot be used; `reason` is one of REASONS, the message is free of values."""

    def __init__(
        self, reason: str, message: str, *, file: str | None = None,
        column: str | None = None, row: int | None = None, detail: dict[str, object] | None = None,
    ) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown landing reason {reason!r}; expected one of {REASONS}")
        super().__init__(message)
        self.reason = reason
        self.file = file
        self.column = column
        self.row = row
        self.detail = detail or {}  # e.g. the X12 envelope and segment position (never a value)


@dataclass(frozen=True)
class LandingName:
    """What a landing file's name says: its table, the UTC day it describes, its format."""

    table: str
    day: date
    fmt: str
    suffix: str = ""

    @property
    def name(self) -> str:
        return f"{self.table}_{self.day.isoformat()}{self.suffix}.{self.fmt}"

    @property
    def partition_key(self) -> str:
        return self.day.isoformat()


# ---------------------------------------------------------------------------------------------------
# Names


def _shown(name: str) -> str:
    """A file name safe to put in a message or a log line (control characters escaped, bounded)."""
    text = name if name.isprintable() else repr(name)[1:-1]
    return text if len(text) <= 120 else text[:117] + "..."


def is_traversal(name: str) -> bool:
    """True when the name could address anything but a file directly inside the landing folder."""
    return (
        not name
        or name in (".", "..")
        or ".." in name
        or "/" in name
        or "\\" in name
        or "\x00" in name
        or (os.sep in name)
        or (os.altsep is not None and os.altsep in name)
    )


def is_in_progress(name: str) -> bool:
    """Hidden files and upload temporaries: someone is still writing them."""
    return name.startswith(".") or name.endswith(IN_PROGRESS_SUFFIXES)


def parse_name(name: str) -> LandingName:
    """Parse `claims_YYYY-MM-DD[suffix].csv|parquet`; raise LandingError (path_traversal, bad_name)."""
    if not isinstance(name, str) or is_traversal(name):
        raise LandingError(
            "path_traversal", f"{_shown(str(name))}: the name is not a plain file name (path traversal)",
            file=str(name),
        )
    match = NAME_RE.fullmatch(name)
    if match is None:
        raise LandingError(
            "bad_name",
            f"{_shown(name)}: expected claims_YYYY-MM-DD[suffix].csv|parquet, remittances_YYYY-MM-DD… "
            "or an X12 file (*.837, *.835, *.x12, *.edi, *.txt)",
            file=name,
        )
    table, day_text, suffix, fmt = match.groups()
    try:
        day = date.fromisoformat(day_text)
    except ValueError:
        raise LandingError("bad_name", f"{name}: {day_text} is not a calendar date", file=name) from None
    return LandingName(table=table, day=day, fmt=fmt, suffix=suffix)


# ---------------------------------------------------------------------------------------------------
# Validation and reading


def _check_plain_file(path: Path) -> os.stat_result:
    """lstat the path; symlinks are refused (they can point anywhere), so are FIFOs and devices."""
    name = path.name
    try:
        st = path.lstat()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise LandingError("unreadable", f"{_shown(name)}: cannot stat ({exc.strerror})", file=name) from None
    if stat.S_ISLNK(st.st_mode):
        raise LandingError(
            "path_traversal", f"{_shown(name)}: is a symbolic link; landing files must be regular files",
            file=name,
        )
    if not stat.S_ISREG(st.st_mode):
        raise LandingError("unreadable", f"{_shown(name)}: not a regular file", file=name)
    return st


def _check_days(name: str, earliest: date, latest: date, first_day: date, last_day: date) -> None:
    """The days a file feeds must have partitions: not before `first_day`, not after `last_day`."""
    if earliest < first_day:
        raise LandingError("out_of_range_date", f"{name}: day {earliest} is before the first partition {first_day}",
                           file=name)
    if latest > last_day:
        raise LandingError("future_date", f"{name}: day {latest} is after the last completed day {last_day}",
                           file=name)


def validate_file(path: Path | str, first_day: date, last_day: date) -> LandingName:
    """Check everything about one landing file; return its parsed name or raise LandingError.

    `last_day` is the last completed UTC day (yesterday): a file for today or later is `future_date`,
    because its bronze partition does not exist yet and its day is still filling up.
    """
    path = Path(path)
    parsed = parse_name(path.name)
    _check_plain_file(path)
    _check_days(path.name, parsed.day, parsed.day, first_day, last_day)
    read_landing_file(path, parsed.table)
    return parsed


def read_landing_file(path: Path | str, table: str) -> pd.DataFrame:
    """The rows of one landing file: registry source columns, registry order, frame conventions.

    Raises LandingError for anything that makes the file unusable, including rows whose `updated_at`
    is not within the day the name gives.
    """
    path = Path(path)
    parsed = parse_name(path.name)
    if parsed.table != table:
        raise LandingError(
            "bad_name", f"{path.name}: holds {parsed.table} rows, not {table}", file=path.name
        )
    st = _check_plain_file(path)
    if st.st_size == 0:
        raise LandingError("empty", f"{path.name}: the file is empty (0 bytes)", file=path.name)
    raw = _read_csv(path, table) if parsed.fmt == "csv" else _read_parquet(path)
    _check_columns(raw, table, path.name)
    if raw.empty:
        raise LandingError("empty", f"{path.name}: no rows", file=path.name)
    frame = raw[source_column_names(table)]
    try:
        frame = cast_to_registry(frame, table, source=path.name)
    except SourceSchemaError as exc:
        # cast_to_registry names table, file, column, type and a count, never a value.
        raise LandingError("bad_values", str(exc), file=path.name, column=_column_of(exc, table)) from None
    _check_day(frame, parsed, path.name)
    return frame.reset_index(drop=True)


def _check_utf8(path: Path) -> None:
    """Stream the bytes through a strict UTF-8 decoder; report the line of the first bad byte."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    line = 1
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    line += chunk.count(b"\n", 0, max(exc.start, 0))
                    raise LandingError(
                        "not_utf8", f"{path.name}: not UTF-8 text (first bad byte on line {line})",
                        file=path.name, row=line,
                    ) from None
                line += chunk.count(b"\n")
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise LandingError(
            "not_utf8", f"{path.name}: not UTF-8 text (truncated character at the end)", file=path.name
        ) from None
    except OSError as exc:
        raise LandingError("unreadable", f"{path.name}: cannot read ({exc.strerror})", file=path.name) from None


def _read_csv(path: Path, table: str) -> pd.DataFrame:
    """Strict CSV: every row has exactly the header's number of fields (pandas would silently pad short
    rows or turn surplus fields into an index). Text columns stay text (leading zeros kept); only an
    empty field is null."""
    _check_utf8(path)
    text_columns = [c.name for c in source_columns(table) if c.dtype in ("string", "date", "timestamp")]
    ragged: list[pacsv.InvalidRow] = []

    def on_bad_row(row: pacsv.InvalidRow) -> str:
        ragged.append(row)
        return "error"

    try:
        table_ = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_bad_row),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in text_columns},
                null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        # Arrow's parse errors quote the offending row, which may hold PHI: report only its shape.
        if ragged:
            row = ragged[0]
            raise LandingError(
                "unreadable",
                f"{path.name}: malformed CSV: row {row.number} (header is row 1) has {row.actual_columns} "
                f"field(s), the header has {row.expected_columns}",
                file=path.name, row=row.number,
            ) from None
        if "Empty CSV" in str(exc):
            raise LandingError("empty", f"{path.name}: no header and no rows", file=path.name) from None
        raise LandingError(
            "unreadable", f"{path.name}: cannot parse as CSV ({type(exc).__name__})", file=path.name
        ) from None
    return table_.to_pandas()


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise LandingError(
            "unreadable", f"{path.name}: not a readable Parquet file ({type(exc).__name__})", file=path.name
        ) from None
    try:
        frame = table.to_pandas()
    except (pa.ArrowException, ValueError, UnicodeDecodeError) as exc:
        reason = "not_utf8" if isinstance(exc, UnicodeDecodeError) else "unreadable"
        raise LandingError(reason, f"{path.name}: cannot convert Parquet data ({type(exc).__name__})",
                           file=path.name) from None
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.DatetimeTZDtype):
            frame[name] = column.dt.tz_convert("UTC").dt.tz_localize(None)
        elif column.dtype == object and column.map(lambda v: isinstance(v, bytes)).any():
            frame[name] = _decode_bytes(column, path.name, str(name))
    return frame


def _decode_bytes(column: pd.Series, file: str, name: str) -> pd.Series:
    def decode(value: object) -> object:
        return value.decode("utf-8") if isinstance(value, bytes) else value

    try:
        return column.map(decode)
    except UnicodeDecodeError:
        raise LandingError(
            "not_utf8", f"{file}: column {name!r} holds bytes that are not UTF-8", file=file, column=name
        ) from None


def _listed(names: list[str]) -> str:
    shown = [_shown(n)[:64] for n in names[:_MAX_LISTED]]
    more = f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else ""
    return ", ".join(shown) + more


def _check_columns(frame: pd.DataFrame, table: str, file: str) -> None:
    """Columns must be exactly the registry's source columns of `table` (any order)."""
    expected = source_column_names(table)
    present = [str(c) for c in frame.columns]
    missing = [c for c in expected if c not in present]
    extra = [c for c in present if c not in expected]
    duplicated = sorted({c for c in present if present.count(c) > 1})
    if not (missing or extra or duplicated):
        return
    if len(missing) == len(expected):
        # No registry column at all: likely a file without a header, whose first row would be data.
        raise LandingError(
            "wrong_columns",
            f"{file}: none of the {table} columns is in the header (missing header row?); "
            f"{len(present)} column(s) found",
            file=file,
        )
    parts = []
    if missing:
        parts.append(f"missing {_listed(missing)}")
    if extra:
        parts.append(f"unexpected {_listed(extra)}")
    if duplicated:
        parts.append(f"duplicated {_listed(duplicated)}")
    raise LandingError(
        "wrong_columns", f"{file}: wrong columns for {table}: " + "; ".join(parts),
        file=file, column=(missing or extra or duplicated)[0],
    )


def _column_of(exc: SourceSchemaError, table: str) -> str | None:
    """The registry column a SourceSchemaError names (`column 'units' expected int64; …`)."""
    match = re.search(r"column '([A-Za-z0-9_]+)'", str(exc))
    return match.group(1) if match and match.group(1) in source_column_names(table) else None


def _check_day(frame: pd.DataFrame, parsed: LandingName, file: str) -> None:
    """Every row's updated_at must fall within the day the file is named for."""
    start = pd.Timestamp(parsed.day)
    updated = frame["updated_at"]
    outside = updated.isna() | (updated < start) | (updated >= start + pd.Timedelta(days=1))
    if outside.any():
        first = int(outside.to_numpy().nonzero()[0][0]) + 1
        raise LandingError(
            "bad_values",
            f"{file}: {int(outside.sum())} row(s) have updated_at missing or outside {parsed.day} "
            f"(first at data row {first})",
            file=file, column="updated_at", row=first,
        )


def files_for_day(landing_dir: Path | str, table: str, day: date) -> list[Path]:
    """Regular files in the landing folder named for `table` and `day`, sorted by name.

    Names only: a file listed here may still fail `read_landing_file` (the sensor quarantines those).
    """
    landing_dir = Path(landing_dir)
    if not landing_dir.is_dir():
        return []
    found = []
    prefix = f"{table}_{day.isoformat()}"
    with os.scandir(landing_dir) as entries:
        for entry in entries:
            if not entry.name.startswith(prefix) or is_in_progress(entry.name):
                continue
            try:
                parsed = parse_name(entry.name)
            except LandingError:
                continue
            if parsed.table == table and parsed.day == day and entry.is_file(follow_symlinks=False):
                found.append(Path(entry.path))
    return sorted(found, key=lambda p: p.name)


# ---------------------------------------------------------------------------------------------------
# X12 files


def is_x12_name(name: str | Path) -> bool:
    """A file the X12 reader should look at: not a named CSV/Parquet, and an X12 extension (.837, .835,
    .837i, .era, .rmt, .dat, ...) or, given a path, any name (none, .out, ...) whose content starts with an
    ISA header: payers send remittances under names of their own. The ISA header decides in the reader."""
    base = Path(name).name
    if NAME_RE.fullmatch(base) is not None:
        return False
    if base.lower().endswith(X12_SUFFIXES):
        return True
    if not isinstance(name, Path) or is_in_progress(base):
        return False
    try:
        with name.open("rb") as handle:
            return x12.is_x12(handle.read(_X12_HEAD_BYTES))
    except OSError:  # vanished, unreadable or not a file: not ours to read
        return False


def _x12_problem_detail(problem: x12.X12Problem) -> dict[str, object]:
    return {"envelope": problem.envelope, "segment_position": problem.segment_position,
            "segment": problem.segment, "problem": problem.problem}


def read_x12_file(path: Path | str, facility_tz: str) -> x12.X12Batch:
    """One X12 landing file read and mapped to our columns; LandingError when no part of it is usable.

    The extension sets what is expected (`.837` claims, `.835` remittances); `.x12`, `.edi` and `.txt`
    may hold either. Messages name the envelope, segment position and problem, never a value.
    """
    path = Path(path)
    st = _check_plain_file(path)
    if st.st_size == 0:
        raise LandingError("empty", f"{path.name}: the file is empty (0 bytes)", file=path.name)
    with path.open("rb") as handle:
        head = handle.read(_X12_HEAD_BYTES)
    if not x12.is_x12(head):
        raise LandingError("not_x12", f"{_shown(path.name)}: not an X12 interchange (no ISA header)",
                           file=path.name)
    expect = X12_EXPECTED_TABLE.get(path.suffix.lower())
    try:
        return x12.read_x12(path, facility_tz=facility_tz, expect=expect)
    except x12.X12Error as exc:
        detail = _x12_problem_detail(exc.problem) if getattr(exc, "problem", None) else {}
        raise LandingError("bad_x12", f"{_shown(path.name)}: {exc}", file=path.name, detail=detail) from None


def x12_rows(batch: x12.X12Batch, table: str) -> pd.DataFrame:
    return batch.claims if table == "claims" else batch.remittances


def x12_days(batch: x12.X12Batch) -> dict[str, list[date]]:
    """Per table, the UTC days its rows reached the source (the bronze partitions they feed)."""
    days = {}
    for table in TABLES:
        rows = x12_rows(batch, table)
        if len(rows):
            days[table] = sorted({d.date() for d in rows["updated_at"].dt.normalize().unique()})
    return days


def validate_x12_file(
    path: Path | str, first_day: date, last_day: date, facility_tz: str
) -> tuple[list[LandingName], list[x12.X12Problem], list[x12.X12Problem]]:
    """The (table, day) partitions an X12 file feeds, the transaction sets it refused and its envelope
    warnings (a GE/IEA control number or count wrong around intact sets: nothing refused); LandingError
    when nothing in it is usable or a day lies outside [first_day, last_day]."""
    path = Path(path)
    batch = read_x12_file(path, facility_tz)
    days = x12_days(batch)
    if not days:
        detail = _x12_problem_detail(batch.rejected[0]) if batch.rejected else {}
        why = f"all {len(batch.rejected)} transaction set(s) refused" if batch.rejected else "no claims or remittances"
        raise LandingError("empty" if not batch.rejected else "bad_x12", f"{_shown(path.name)}: {why}",
                           file=path.name, detail=detail)
    every = [d for table_days in days.values() for d in table_days]
    _check_days(path.name, min(every), max(every), first_day, last_day)
    names = [LandingName(table, day, X12_FORMAT) for table, table_days in days.items() for day in table_days]
    return names, list(batch.rejected), list(batch.warnings)


def x12_files(landing_dir: Path | str, table: str | None = None) -> list[Path]:
    """Regular files in the landing folder that may hold X12 (rows of `table`, when given: an `.835` holds
    no claims and an `.837` no remittances), sorted by name."""
    landing_dir = Path(landing_dir)
    if not landing_dir.is_dir():
        return []
    with os.scandir(landing_dir) as entries:
        found = [Path(e.path) for e in entries
                 if not is_in_progress(e.name) and e.is_file(follow_symlinks=False) and is_x12_name(Path(e.path))
                 and (table is None or X12_EXPECTED_TABLE.get(Path(e.name).suffix.lower(), table) == table)]
    return sorted(found, key=lambda p: p.name)


# ---------------------------------------------------------------------------------------------------
# Versions and quarantine


def file_version(path: Path | str) -> str:
    """`name@mtime_ns-size`: a new version whenever the file is rewritten; used as the run key."""
    path = Path(path)
    st = path.lstat()
    return f"{path.name}@{st.st_mtime_ns}-{st.st_size}"


def ledger_entry(path: Path | str) -> str | None:
    """A short fixed-width stand-in for the file's current version, kept in bronze's ledger of the files
    each day has read (None when the file vanished)."""
    try:
        return tie_of(file_version(path))
    except FileNotFoundError:
        return None


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _safe_name(name: str) -> str:
    """A quarantine file name that stays inside the quarantine folder whatever the original was."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name, flags=re.ASCII)
    safe = re.sub(r"\.{2,}", "_", safe).lstrip(".")
    return (safe or "unnamed")[:180]


def _candidates(safe: str, stamp: str) -> Iterator[str]:
    yield safe
    stem, dot, ext = safe.rpartition(".")
    base, ext = (stem, f".{ext}") if dot and stem else (safe, "")
    yield f"{base}.{stamp}{ext}"
    for i in range(1, 1000):
        yield f"{base}.{stamp}-{i}{ext}"


def _move_no_clobber(src: Path, dest: Path) -> bool:
    """Move src to dest unless dest exists; False when it does. Atomic on one filesystem."""
    try:
        os.link(src, dest, follow_symlinks=False)
    except FileExistsError:
        return False
    except OSError:
        # No hard links here (another filesystem, or links unsupported): check, then move.
        if os.path.lexists(dest):
            return False
        shutil.move(os.fspath(src), os.fspath(dest))  # a rename on one filesystem
        return True
    os.unlink(src)
    return True


def _write_json(path: Path, record: dict) -> None:
    """A JSON record written through a hidden temp file, so a reader never sees half of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def quarantine(path: Path | str, reason: LandingError, quarantine_dir: Path | str) -> Path:
    """Move a refused file into quarantine (never overwriting) and write `<name>.reason.json` beside it."""
    path, quarantine_dir = Path(path), Path(quarantine_dir)
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    now = _utc_now()
    try:
        st = path.lstat()
        size, mtime_ns = st.st_size, st.st_mtime_ns
    except OSError:
        size, mtime_ns = None, None
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    for candidate in _candidates(_safe_name(path.name), stamp):
        dest = quarantine_dir / candidate
        if os.path.lexists(dest.with_name(dest.name + REASON_SUFFIX)):
            continue
        if _move_no_clobber(path, dest):
            break
    else:
        raise FileExistsError(f"no free quarantine name for {_shown(path.name)} in {quarantine_dir}")
    record = {
        "file": path.name,
        "quarantined_as": dest.name,
        "reason": reason.reason,
        "message": str(reason),
        "column": reason.column,
        "row": reason.row,
        **({"detail": reason.detail} if reason.detail else {}),
        "quarantined_at": now.isoformat(),
        "landing_dir": str(path.parent),
        "size_bytes": size,
        "mtime_ns": mtime_ns,
    }
    _write_json(dest.with_name(dest.name + REASON_SUFFIX), record)
    log.info("quarantined landing file %s: %s", _shown(path.name), reason.reason)
    return dest


def record_rejected_transactions(path: Path | str, problems: list[x12.X12Problem],
                                 quarantine_dir: Path | str, warnings: list[x12.X12Problem] | None = None) -> Path:
    """`<name>.<stamp>.rejected.json` in the quarantine folder: the X12 transaction sets of a file that
    were refused (envelope, segment position, problem) while the rest of the file was accepted, and its
    envelope warnings; `<name>.<stamp>.warnings.json` when only warnings (every set accepted)."""
    path, quarantine_dir = Path(path), Path(quarantine_dir)
    warnings = list(warnings or [])
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    now = _utc_now()
    kind = "rejected" if problems else "warnings"
    target = quarantine_dir / f"{_safe_name(path.name)}.{now.strftime('%Y%m%dT%H%M%S%fZ')}.{kind}.json"
    record = {"file": path.name,
              "accepted": "the other transaction sets of the file" if problems else "every transaction set",
              "rejected_transaction_sets": [_x12_problem_detail(p) for p in problems],
              "envelope_warnings": [_x12_problem_detail(p) for p in warnings],
              "recorded_at": now.isoformat(), "landing_dir": str(path.parent)}
    _write_json(target, record)
    log.info("X12 file %s: %d transaction set(s) refused, %d envelope warning(s), the rest accepted",
             _shown(path.name), len(problems), len(warnings))
    return target


# ---------------------------------------------------------------------------------------------------
# The sensor's incremental scan


@dataclass(frozen=True, order=True)
class Watermark:
    """Everything at or below (arrival_ns, tie) has been handled. `tie` orders equal arrival times."""

    arrival_ns: int = -1
    tie: str = ""

    def encode(self) -> str:
        return json.dumps({"v": 1, "t": self.arrival_ns, "h": self.tie}, separators=(",", ":"))

    @classmethod
    def decode(cls, cursor: str | None) -> Watermark:
        """The watermark in a cursor; an empty or unreadable cursor starts from the beginning."""
        if not cursor:
            return cls()
        try:
            data = json.loads(cursor)
            return cls(int(data["t"]), str(data["h"]))
        except (ValueError, TypeError, KeyError):
            log.warning("unreadable landing sensor cursor; rescanning the landing folder")
            return cls()


def tie_of(name: str) -> str:
    """A fixed-width stand-in for the name in the cursor, so the cursor never grows with long names."""
    return hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def arrival_ns(st: os.stat_result) -> int:
    """When the file last arrived or changed: ctime on POSIX (copy tools cannot back-date it)."""
    if os.name == "posix":
        return st.st_ctime_ns
    return max(st.st_ctime_ns, st.st_mtime_ns)


@dataclass(frozen=True)
class Accepted:
    path: Path
    landing: LandingName
    version: str


@dataclass(frozen=True)
class Refused:
    name: str
    error: LandingError
    quarantined_as: Path


@dataclass(frozen=True)
class PartlyRefused:
    """An X12 file accepted with findings: some transaction sets refused, or envelope warnings, or both."""

    name: str
    problems: list[x12.X12Problem]  # refused transaction sets
    record: Path  # the .rejected.json (or .warnings.json) in the quarantine folder
    warnings: list[x12.X12Problem] = field(default_factory=list)  # envelope warnings (nothing refused)


@dataclass
class ScanResult:
    accepted: list[Accepted] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    partial: list[PartlyRefused] = field(default_factory=list)
    cursor: str = ""
    backlog: int = 0  # new files left for the next tick (page size or time budget reached)
    settling: int = 0  # new files changed less than settle_seconds ago
    failed: list[str] = field(default_factory=list)  # could not be quarantined; retried next tick

    def summary(self) -> str:
        return (
            f"{len(self.accepted)} accepted, {len(self.refused)} quarantined, "
            f"{len(self.partial)} X12 file(s) with refused transaction sets or envelope warnings, "
            f"{self.backlog} left for the "
            f"next tick, {self.settling} still settling, {len(self.failed)} failed"
        )


def batches(accepted: list[Accepted]) -> dict[tuple[str, str], list[Accepted]]:
    """The accepted files of a tick grouped by (table, partition key): one bronze run reads each group."""
    groups: dict[tuple[str, str], list[Accepted]] = {}
    for item in accepted:
        groups.setdefault((item.landing.table, item.landing.partition_key), []).append(item)
    return groups


def batch_key(table: str, partition_key: str, items: list[Accepted]) -> str:
    """A run key naming the table, the day and the exact file versions of the batch: a later tick with
    more files for the same day gets a new key (one more run), a re-evaluated tick the same one."""
    digest = hashlib.sha256("\n".join(sorted(i.version for i in items)).encode("utf-8", "surrogateescape"))
    return f"{table}:{partition_key}:{digest.hexdigest()[:16]}"


def last_completed_day(now: datetime) -> date:
    """Yesterday in UTC: the newest day whose partition exists and is complete."""
    now = now if now.tzinfo else now.replace(tzinfo=UTC)  # naive means UTC, as everywhere here
    return now.astimezone(UTC).date() - timedelta(days=1)


def _new_entries(landing_dir: Path, mark: Watermark) -> list[tuple[int, str, str]]:
    """(arrival_ns, tie, name) of entries past the watermark; directories and temporaries skipped."""
    found = []
    with os.scandir(landing_dir) as entries:
        for entry in entries:
            name = entry.name
            if is_in_progress(name) and not is_traversal(name):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode):
                continue
            key = (arrival_ns(st), tie_of(name))
            if key > (mark.arrival_ns, mark.tie):
                found.append((*key, name))
    found.sort()
    return found


def scan_landing(
    landing_dir: Path | str,
    quarantine_dir: Path | str,
    cursor: str | None,
    *,
    first_day: date,
    last_day: date | None = None,
    now: datetime | None = None,
    max_files: int = 500,
    settle_seconds: float = 10.0,
    time_budget_seconds: float = 40.0,
    facility_tz: str = "UTC",
) -> ScanResult:
    """One sensor tick: validate the files that arrived after the cursor, oldest first.

    Good files are returned (the caller requests their bronze partition); bad files are quarantined.
    Days must lie in [first_day, last_day]; `last_day` defaults to yesterday (UTC), the newest complete
    day; pass the newest existing partition instead when today's partition exists too.
    At most `max_files` files, and about `time_budget_seconds` of work, per call; the returned cursor
    resumes after the last file handled, so a large backlog is covered over several ticks.
    """
    landing_dir = Path(landing_dir)
    now = now or _utc_now()
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    last_day = last_day or last_completed_day(now)
    quiet_before = int(now.timestamp() * 1e9) - int(settle_seconds * 1e9)
    mark = Watermark.decode(cursor)
    result = ScanResult(cursor=mark.encode())
    entries = _new_entries(landing_dir, mark)
    ready = [e for e in entries if e[0] <= quiet_before]
    result.settling = len(entries) - len(ready)
    started = time.monotonic()
    for index, (arrived, tie, name) in enumerate(ready):
        if index >= max_files or time.monotonic() - started > time_budget_seconds:
            result.backlog = len(ready) - index
            break
        if not _handle(landing_dir / name, Path(quarantine_dir), first_day, last_day, result, facility_tz):
            result.backlog = len(ready) - index  # retried next tick: the watermark stays before it
            break
        mark = Watermark(arrived, tie)
    result.cursor = mark.encode()
    return result


def _handle(path: Path, quarantine_dir: Path, first_day: date, last_day: date, result: ScanResult,
            facility_tz: str) -> bool:
    """Accept or quarantine one file; False when a bad file could not be moved out of landing."""
    try:
        if is_x12_name(path):
            version = file_version(path)
            names, rejected, warnings = validate_x12_file(path, first_day, last_day, facility_tz)
            result.accepted += [Accepted(path, name, f"{version}:{name.table}:{name.partition_key}") for name in names]
            if rejected or warnings:
                record = record_rejected_transactions(path, rejected, quarantine_dir, warnings)
                result.partial.append(PartlyRefused(path.name, rejected, record, warnings))
            return True
        parsed = validate_file(path, first_day, last_day)
        result.accepted.append(Accepted(path, parsed, file_version(path)))
        return True
    except FileNotFoundError:
        return True  # removed while we looked: nothing left to do
    except LandingError as exc:
        error = exc
    except Exception as exc:  # noqa: BLE001 - a poison file must not stall the sensor forever
        error = LandingError(
            "unreadable", f"{_shown(path.name)}: cannot be read ({type(exc).__name__})", file=path.name
        )
    try:
        dest = quarantine(path, error, quarantine_dir)
    except FileNotFoundError:
        return True
    except OSError as exc:
        result.failed.append(f"{_shown(path.name)}: cannot quarantine ({exc.strerror or exc})")
        return False
    result.refused.append(Refused(path.name, error, dest))
    return True
