"""Bronze: the rows that reached the source (or the landing folder) during each UTC day, as extracted.

Partition D holds source rows with D <= updated_at < D+1 plus the rows of landing files named for D,
with `_ingested_at`, `_source` and `_run_id` added. A backfill of many days runs chunks of at most
RCM_BACKFILL_CHUNK_DAYS days (partitions.DAILY_BACKFILL_POLICY), each one run reading its days in one query.

Bronze is append-only by content (the IO manager's `rcm/append_only_columns`): re-running a day adds the
rows it did not hold yet — a row committed late, after the day was first extracted — and keeps every row
it holds, even one the source has since overwritten in place. The same row delivered twice (a re-sent or
overlapping landing file, a source row also sent as a file) is stored once.
"""


from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from rcm_assets.defs import checks
from rcm_assets.defs.partitions import DAILY_BACKFILL_POLICY, daily_partitions
from rcm_assets.lib import landing as landing_files
from rcm_assets.lib import settings
from rcm_assets.lib.columns import source_column_names
from rcm_assets.lib.dedupe import drop_content_duplicates
from rcm_assets.lib.source import SourceError, SourceSchemaError
from rcm_assets.platform import catalog
from rcm_assets.platform.io_manager import APPEND_ONLY_METADATA
from rcm_assets.platform.resources import LandingResource, SourceResource

# Transient source trouble that outlived the reader's own retries gets a few more tries, spaced out.
SOURCE_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
INGEST_COLUMNS = ["_ingested_at", "_source", "_run_id"]
# Materialization metadata of each bronze partition: the landing file versions it has read (a short hash of
# each `name@mtime_ns-size`), so the next run of the day reads only the files that arrived since.
LEDGER_METADATA = "rcm/landing_ingested"


def combine_rows(source_rows: pd.DataFrame, landing_rows: pd.DataFrame, table: str) -> tuple[pd.DataFrame, int, int]:
    """Source rows plus landing rows not delivered already: (rows, redelivered by the source, repeated).

    Landing rows repeated by content (an exact re-sent file, overlapping files) are kept once; a landing
    row the source also delivered (same claim_id and updated_at) is taken from the source. Two rows that
    share (claim_id, updated_at) but differ in content are both kept, so the blocking uniqueness check
    stops the day: which one is right is a question for a person.
    """
    if landing_rows.empty:
        return source_rows, 0, 0
    landing_rows, repeated = drop_content_duplicates(landing_rows, source_column_names(table))
    seen = pd.MultiIndex.from_frame(source_rows[["claim_id", "updated_at"]])
    again = pd.MultiIndex.from_frame(landing_rows[["claim_id", "updated_at"]]).isin(seen)
    frames = [f for f in (source_rows, landing_rows[~again]) if not f.empty]
    combined = pd.concat(frames, ignore_index=True) if frames else source_rows
    return combined, int(again.sum()), repeated


def day_labels(stamps: pd.Series) -> pd.Series:
    """`YYYY-MM-DD` of each timestamp, formatted once per distinct day (strftime per row cost a second
    per month of claims)."""
    values = stamps.to_numpy()
    if stamps.dtype != "datetime64[ns]" or pd.isna(values).any():
        return stamps.dt.strftime("%Y-%m-%d")
    days, inverse = np.unique(values.astype("datetime64[D]"), return_inverse=True)
    return pd.Series(days.astype(str).astype(object)[inverse.reshape(-1)], index=stamps.index)


SORT_KEYS = ["dt", "updated_at", "claim_id"]


def sort_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows by day, updated_at, claim_id (stable): the order of every bronze file.

    Arrow's stable sort gives pandas' order (nulls last, strings by code point) in a tenth of the time,
    which was mostly spent sorting claim_id strings; anything Arrow cannot take falls back to pandas.
    """
    try:
        keys = pa.table({c: pa.array(frame[c].to_numpy(), type=pa.string() if c != "updated_at" else None,
                                     from_pandas=True)
                         for c in SORT_KEYS})
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return frame.sort_values(SORT_KEYS, kind="stable", ignore_index=True)
    order = pc.sort_indices(keys, sort_keys=[(c, "ascending", "at_end") for c in SORT_KEYS])
    out = frame.take(order.to_numpy())
    out.index = pd.RangeIndex(len(out))  # reset_index(drop=True) would copy every column once more
    return out


def listed(names: list[str], limit: int = 20) -> str:
    """Names for metadata, the first `limit` of them (a range run can read hundreds of files)."""
    shown = ", ".join(names[:limit]) or "none"
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def bronze_checks(frame: pd.DataFrame, table: str, keys: list[str]) -> list[dg.AssetCheckResult]:
    """Evidence for the three bronze checks (required columns and key uniqueness are blocking)."""
    missing = [c for c in source_column_names(table) if c not in frame.columns]
    duplicated = int(frame.duplicated(["claim_id", "updated_at"]).sum()) if not missing else 0
    per_day = frame.groupby("dt").size() if "dt" in frame.columns else pd.Series(dtype=int)
    return _bronze_results(missing, duplicated, len(frame), keys, per_day)


def bronze_checks_by_day(frame: pd.DataFrame, table: str, keys: list[str],
                         conflicts: Mapping[str, int] | None = None,
                         held: set[str] | None = None) -> dict[str, list[dg.AssetCheckResult]]:
    """`bronze_checks` of each day's rows, counted in one pass over the run's rows (splitting a month
    into per-day frames first cost more than the checks); `conflicts` adds, per day, the run's landing rows
    that share (claim_id, updated_at) with a different stored landing row; a day in `held` already holds
    the rows of earlier runs, so a run that adds none to it is no empty day."""
    if "dt" not in frame.columns:
        return checks.per_partition(keys, frame, lambda rows, day: bronze_checks(rows, table, [day]))
    missing = [c for c in source_column_names(table) if c not in frame.columns]
    per_day = frame.groupby("dt").size()
    if missing:
        duplicated = pd.Series(dtype=int)
    else:  # a row repeating an earlier (claim_id, updated_at) of the same day
        repeats = frame.duplicated(["dt", "claim_id", "updated_at"])
        duplicated = repeats.groupby(frame["dt"]).sum()
    conflicts, held = conflicts or {}, held or set()
    return {day: _bronze_results(missing, int(duplicated.get(day, 0)) + int(conflicts.get(day, 0)),
                                 int(per_day.get(day, 0)), [day], per_day, held)
            for day in keys}


def stored_landing_conflicts(context: dg.AssetExecutionContext, key: dg.AssetKey, table: str,
                             landed: pd.DataFrame, days: list[str]) -> dict[str, int]:
    """Per day, the new landing rows whose (claim_id, updated_at) a stored landing row of that day holds
    with other content: what the uniqueness check saw when every run re-read every file of its day."""
    lake = getattr(context.resources, "lake", None)
    if lake is None or landed.empty or not days:
        return {}
    columns = source_column_names(table)
    out = {}
    for day in days:
        new = landed[landed["dt"] == day]
        stored = lake.read_stored(key.path, day, columns=[*columns, "_source"]) if len(new) else None
        if stored is None or stored.empty:
            continue
        stored = stored[stored["_source"].str.startswith("landing:")]
        both = pd.concat([stored[columns], new[columns]], ignore_index=True).drop_duplicates(columns)
        out[day] = int(both.duplicated(["claim_id", "updated_at"]).sum())
    return out


def _bronze_results(missing: list[str], duplicated: int, row_count: int, keys: list[str],
                    per_day: pd.Series, held: set[str] | None = None) -> list[dg.AssetCheckResult]:
    empty_days = [k for k in keys if per_day.get(k, 0) == 0 and k not in (held or set())]
    return [
        checks.result(
            "required_columns_present", not missing,
            description=f"missing: {', '.join(missing)}" if missing else None,
            missing_columns=", ".join(missing) or "none",
        ),
        checks.result(
            "claim_id_updated_at_unique", duplicated == 0,
            description=f"{duplicated} duplicate (claim_id, updated_at) rows" if duplicated else None,
            duplicate_rows=duplicated,
        ),
        checks.result(
            "row_count_recorded", not empty_days, warn_only=True,
            description=f"no rows for {len(empty_days)} day(s)" if empty_days else None,
            row_count=row_count, days=len(keys), empty_days=len(empty_days),
            min_rows_per_day=int(min((per_day.get(k, 0) for k in keys), default=0)),
        ),
    ]


def build_bronze_asset(table: str) -> dg.AssetsDefinition:
    key = dg.AssetKey(["bronze", table])

    @dg.asset(
        key=key,
        description=(f"Source `{table}` rows that reached the source during the UTC day (by updated_at), plus "
                     "the rows of landing files for that day; append-only, as extracted (PHI included)."),
        group_name="bronze",
        partitions_def=daily_partitions,
        io_manager_key="lake",
        backfill_policy=DAILY_BACKFILL_POLICY,
        retry_policy=SOURCE_RETRY_POLICY,
        kinds={"sql", "parquet"},
        owners=catalog.OWNERS,
        tags=catalog.registry_tags(table, "bronze"),
        metadata=catalog.definition_metadata(catalog.bronze_schema(table),
                                             **{APPEND_ONLY_METADATA: source_column_names(table)}),
        check_specs=[
            checks.spec("required_columns_present", key, "Every registry source column is present",
                        blocking=True, partitions_def=daily_partitions),
            checks.spec("claim_id_updated_at_unique", key, "No two rows share (claim_id, updated_at)",
                        blocking=True, partitions_def=daily_partitions),
            checks.spec("row_count_recorded", key, "Rows per day recorded; warns on days with no rows",
                        partitions_def=daily_partitions),
        ],
    )
    def _bronze(context: dg.AssetExecutionContext, source: SourceResource, landing: LandingResource):
        window = context.partition_time_window
        keys = context.partition_keys
        reader = source.reader(logger=context.log)
        try:
            rows = reader.read_changed(table, window.start, window.end)
        except SourceError as err:
            # Only transient trouble that outlived the reader's own attempts is worth the RetryPolicy;
            # a missing column, bad SQL or refused login fails at once instead of minutes later.
            if isinstance(err, SourceSchemaError) or reader.last_attempts < reader.max_attempts:
                raise dg.Failure(description=f"bronze/{table}: {err}", allow_retries=False) from err
            raise
        if reader.last_unknown_columns:
            context.log.warning(
                f"{table}: ignoring unknown source column(s): {', '.join(reader.last_unknown_columns)}"
            )
        rows["dt"] = day_labels(rows["updated_at"])
        rows["_source"] = f"source:{table}"
        ledger = ingested_ledger(context, key)
        landed, read = read_new_landing_rows(Path(landing.landing_dir), table, keys, ledger, context.log)
        for day in keys:  # the ledger is cumulative: a run that read nothing new carries it forward
            context.add_asset_metadata(
                {LEDGER_METADATA: dg.MetadataValue.json(sorted(ledger.get(day, set()) | read[day]))},
                partition_key=day)
        frame, redelivered, repeated = combine_rows(rows, landed, table)
        frame["_ingested_at"] = pd.Timestamp(datetime.now(UTC).replace(tzinfo=None)).as_unit("ns")
        frame["_run_id"] = context.run.run_id
        frame = frame[source_column_names(table) + INGEST_COLUMNS + ["dt"]]
        frame = sort_rows(frame)
        context.log.info(
            f"{table}: {len(rows)} source rows, {len(landed)} landing rows "
            f"({redelivered} already in the source, {repeated} repeated in other files; "
            f"{sum(len(v) for v in ledger.values())} file version(s) already ingested, not read again) "
            f"for {len(keys)} day(s)"
        )
        metadata = {
            "source_rows": len(rows),
            "landing_rows": len(landed),
            "landing_rows_redelivered": redelivered,
            "landing_rows_repeated": repeated,
            "landing_files": listed(sorted(landed["_source"].str.removeprefix("landing:").unique())),
            "unknown_source_columns": ", ".join(reader.last_unknown_columns) or "none",
        }
        # publish raises a non-retryable Failure when a blocking check fails: nothing is written
        conflicts = stored_landing_conflicts(context, key, table, landed, [d for d in keys if ledger.get(d)])
        by_day = bronze_checks_by_day(frame, table, keys, conflicts, held={d for d in keys if ledger.get(d)})
        yield from checks.publish(
            [dg.Output(frame, metadata=metadata)], by_day,
            what=f"bronze/{table} {keys[0]}..{keys[-1]}", context=context,
        )

    return _bronze


def read_landing_rows(
    landing_dir: Path, table: str, keys: list[str], log: dg.DagsterLogManager | None = None
) -> pd.DataFrame:
    """Rows of every usable landing file for the given days (`read_new_landing_rows` with nothing read yet)."""
    return read_new_landing_rows(landing_dir, table, keys, {}, log)[0]


def read_new_landing_rows(
    landing_dir: Path, table: str, keys: list[str], ingested: Mapping[str, set[str]],
    log: dg.DagsterLogManager | None = None,
) -> tuple[pd.DataFrame, dict[str, set[str]]]:
    """Rows of the usable landing files for the given days that those days have not ingested yet, tagged
    with their file and day; and, per day, the ledger entries of the files read for it.

    `ingested` holds, per day, the ledger entries (`landing.ledger_entry`) of file versions already read
    into that day: a burst of files for one day costs one read per file, not one per file and run. Named
    files (`claims_YYYY-MM-DD*.csv|parquet`) feed the day of their name; X12 files feed the days their
    rows reached the source (each file read once for the whole range, and only when one of the days has
    not read that version). A bad file the sensor has not quarantined yet is skipped (named in a warning)
    and not recorded, so it neither reaches bronze nor fails the other files' day.
    """
    frames = []
    read: dict[str, set[str]] = {key: set() for key in keys}

    def skip(path: Path, exc: landing_files.LandingError) -> None:
        if log is not None:
            log.warning(f"skipping landing file {path.name} [{exc.reason}]: {exc}")

    for key in keys:
        for path in landing_files.files_for_day(landing_dir, table, date.fromisoformat(key)):
            entry = landing_files.ledger_entry(path)
            if entry is None or entry in ingested.get(key, ()):
                continue
            try:
                rows = landing_files.read_landing_file(path, table)
            except landing_files.LandingError as exc:
                skip(path, exc)
                continue
            frames.append(rows.assign(dt=key, _source=f"landing:{path.name}"))
            read[key].add(entry)
    for path in landing_files.x12_files(landing_dir, table):
        entry = landing_files.ledger_entry(path)
        wanted = {key for key in keys if entry not in ingested.get(key, ())}
        if entry is None or not wanted:
            continue
        try:
            rows = landing_files.x12_rows(landing_files.read_x12_file(path, settings.facility_tz()), table)
        except landing_files.LandingError as exc:
            skip(path, exc)
            continue
        for key in wanted:  # examined for these days, whether or not it holds rows of them
            read[key].add(entry)
        day = rows["updated_at"].dt.strftime("%Y-%m-%d")
        if day.isin(wanted).any():
            frames.append(rows[day.isin(wanted)].assign(dt=day[day.isin(wanted)], _source=f"landing:{path.name}"))
    if not frames:
        return pd.DataFrame(columns=source_column_names(table) + ["dt", "_source"]), read
    return pd.concat(frames, ignore_index=True), read


def ingested_ledger(context: dg.AssetExecutionContext, key: dg.AssetKey) -> dict[str, set[str]]:
    """Per day of the run, the landing file versions its latest materialization says it holds.

    A day whose bronze file is gone (a wiped lake under a kept Dagster instance) holds nothing, whatever
    the metadata says, so its files are read again.
    """
    lake = getattr(context.resources, "lake", None)
    ledger: dict[str, set[str]] = {}
    for day in context.partition_keys:
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day]), limit=1).records
        if not records or records[0].asset_materialization is None:
            continue
        entry = records[0].asset_materialization.metadata.get(LEDGER_METADATA)
        entries = getattr(entry, "value", None)
        if not isinstance(entries, list):
            continue
        if lake is not None and lake.read_stored_table(key.path, day, columns=["_run_id"]) is None:
            continue
        ledger[day] = {str(e) for e in entries}
    return ledger


claims = build_bronze_asset("claims")
remittances = build_bronze_asset("remittances")
