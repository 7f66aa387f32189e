"""Hive-layout Parquet lake IO manager (local folders or any fsspec URL).

Layout (a pure function of asset key and partition key, see `partition_path`):

    <base>/<key parts...>/dt=YYYY-MM-DD/part-0.parquet      daily (and any non-weekly partitions)
    <base>/<key parts...>/week=YYYY-MM-DD/part-0.parquet    weekly TimeWindowPartitionsDefinition
    <base>/<key parts...>/data.parquet                      unpartitioned

Why not the stock `UPathIOManager` behaviour (../shared/DAGSTER_NOTES.md §2, §13):
- it refuses outputs covering several partitions (single-run backfills), so `handle_output` is replaced;
- it hands downstream a bare object, a dict or `None` depending on how many keys map, so `load_input`
  is replaced and always returns ONE DataFrame;
- it writes in place (a crash leaves a truncated file), so writes go to a tmp file then `fs.mv`;
  on a local disk that is a rename, on S3 (s3fs) a server-side CopyObject of the complete tmp key, which
  S3 makes visible whole or not at all, then a delete of the tmp key (see `_write_files`);
- its `storage_options` property breaks on universal-pathlib 0.3 (dagster#32637).
The partition column is not stored in the file body (a Hive reader of the folder would see it twice,
§2.4); it is re-added on load as `str`.

Append-only assets (definition metadata `rcm/append_only_columns`, e.g. bronze): a write adds to each
partition only the rows whose content (those columns) it does not hold yet, and never drops a stored
row, so re-extracting a day after the source overwrote a row in place loses nothing, and a row delivered
twice is stored once.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem
from pydantic import Field
from upath import UPath

from rcm_assets.lib.dedupe import all_distinct, append_new_rows

log = logging.getLogger("rcm.io_manager")

PART_FILE = "part-0.parquet"
UNPARTITIONED_FILE = "data.parquet"
DAILY_COLUMN = "dt"
WEEKLY_COLUMN = "week"
_MAX_NAMED_VALUES = 20
_WEEKLY_CRON = re.compile(r"\d+ \d+ \* \* \d+")
APPEND_ONLY_METADATA = "rcm/append_only_columns"
# AssetIn metadata: load text columns as Arrow-backed pandas strings instead of one Python object per value
# (for large windows that only compare, join and re-store ids: ~10x cheaper to load, half the memory)
ARROW_STRINGS_METADATA = "rcm/arrow_strings"


# ---------------------------------------------------------------------------------------------------
# pure helpers


def partition_column(partitions_def: dg.PartitionsDefinition | None) -> str:
    """`week` for a weekly time-window definition (cron `M H * * D`), otherwise `dt`."""
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition) and _WEEKLY_CRON.fullmatch(
        partitions_def.cron_schedule.strip()
    ):
        return WEEKLY_COLUMN
    return DAILY_COLUMN


def _check_segment(value: str, what: str) -> str:
    if not value or "/" in value or "\\" in value or value in (".", ".."):
        raise ValueError(f"{what} {value!r} cannot be used as a path segment")
    return value


def asset_dir(base: UPath, asset_key_path: Sequence[str]) -> UPath:
    """`<base>/<key parts...>` (the folder holding every partition of the asset)."""
    parts = [_check_segment(p, "asset key part") for p in asset_key_path]
    return base.joinpath(*parts)


def partition_path(base: UPath, asset_key_path: Sequence[str], partition_key: str, column: str) -> UPath:
    """`<base>/<key parts...>/<column>=<partition_key>/part-0.parquet`."""
    _check_segment(column, "partition column")
    folder = f"{column}={_check_segment(partition_key, 'partition key')}"
    return asset_dir(base, asset_key_path) / folder / PART_FILE


def unpartitioned_path(base: UPath, asset_key_path: Sequence[str]) -> UPath:
    """`<base>/<key parts...>/data.parquet`."""
    return asset_dir(base, asset_key_path) / UNPARTITIONED_FILE


def table_schema(frame: pd.DataFrame) -> dg.TableSchema:
    """Column names and pandas dtypes only (never values) for `dagster/column_schema`."""
    return dg.TableSchema(
        columns=[dg.TableColumn(name=str(name), type=str(dtype)) for name, dtype in frame.dtypes.items()]
    )


def merge_schemas(declared: Any, observed: dg.TableSchema) -> dg.TableSchema:
    """The observed columns and types, with the descriptions and constraints the definition declares.

    The UI shows the latest materialization's schema over the definition's, so recording the bare
    observed schema would erase the registry's descriptions after the first run.
    """
    declared = getattr(declared, "value", declared)  # a TableSchemaMetadataValue or a TableSchema
    if not isinstance(declared, dg.TableSchema):
        return observed
    known = {c.name: c for c in declared.columns}
    return dg.TableSchema(
        columns=[column if column.name not in known else dg.TableColumn(
            column.name, column.type, description=known[column.name].description,
            constraints=known[column.name].constraints, tags=known[column.name].tags)
            for column in observed.columns],
        constraints=declared.constraints,
    )


def _name_values(values: Sequence[Any]) -> str:
    shown = sorted({repr(v) for v in values})
    more = f" (+{len(shown) - _MAX_NAMED_VALUES} more)" if len(shown) > _MAX_NAMED_VALUES else ""
    return ", ".join(shown[:_MAX_NAMED_VALUES]) + more


def arrow_string_dtype(arrow_type: pa.DataType) -> pd.StringDtype | None:
    """`to_pandas` types_mapper: text as pandas' Arrow-backed strings, everything else as usual."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return pd.StringDtype("pyarrow")
    return None


def _arrow_table(body: pd.DataFrame, columns: list[str] | None = None) -> pa.Table:
    """pandas -> arrow (only `columns` when given: no copy of the frame without them); all-null object
    columns become `string` so every file of a table agrees."""
    table = pa.Table.from_pandas(body, preserve_index=False, columns=columns)
    if any(pa.types.is_null(f.type) for f in table.schema):
        fields = [f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]
        table = table.cast(pa.schema(fields, metadata=table.schema.metadata))
    return table


def _default_index(frame: pd.DataFrame) -> bool:
    index = frame.index
    return isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1


def _rows_of(table: pa.Table, positions: np.ndarray) -> pa.Table:
    """The rows at `positions`: a zero-copy slice when they are consecutive (rows sorted by partition,
    as bronze's are), else a take."""
    n = len(positions)
    if n and positions[-1] - positions[0] == n - 1 and bool((np.diff(positions) == 1).all()):
        return table.slice(int(positions[0]), n)
    return table.take(pa.array(positions, type=pa.int64()))


LOCAL_PROTOCOLS = ("", "file", "local", "memory")


def lake_root(base_url: str, storage_options: Mapping[str, Any] | None = None) -> UPath:
    """The lake root as a UPath: a local folder, or an fsspec URL such as `s3://bucket/prefix`.

    S3 credentials and endpoint come from the usual AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    AWS_ENDPOINT_URL_S3 for an S3-compatible server) or from `storage_options`. Object stores get
    `use_listings_cache=False`: fsspec instances are shared per process, and a cached listing taken before
    another process (a Celery worker) wrote a partition would make that partition look missing.
    """
    options = dict(storage_options or {})
    root = UPath(base_url, **options)
    if root.protocol not in LOCAL_PROTOCOLS and "use_listings_cache" not in options:
        root = UPath(base_url, use_listings_cache=False, **options)
    return root


# ---------------------------------------------------------------------------------------------------
# IO manager


class HiveParquetIOManager(dg.UPathIOManager):
    """Parquet per partition in Hive folders; loads always return one pandas DataFrame."""

    extension = ".parquet"

    def __init__(self, base_path: UPath):
        super().__init__(base_path=base_path)

    # -- paths ---------------------------------------------------------------------------------------

    @property
    def storage_options(self) -> dict[str, Any]:
        """upath 0.3 removed `_kwargs`, which the base property reads (dagster#32637)."""
        return dict(getattr(self._base_path, "storage_options", None) or {})

    def get_path_for_partition(
        self, context: dg.InputContext | dg.OutputContext, path: UPath, partition: str
    ) -> UPath:
        # Only used by base-class helpers; the extension ".parquet" is appended by the base class.
        column = partition_column(context.asset_partitions_def)
        return path / f"{column}={_check_segment(partition, 'partition key')}" / "part-0"

    def _get_path(self, context: dg.InputContext | dg.OutputContext) -> UPath:
        """Unpartitioned location (`data.parquet`), also used by the base `has_output`."""
        return self._get_path_without_extension(context) / UNPARTITIONED_FILE

    def _key_parts(self, context: dg.InputContext | dg.OutputContext) -> list[str]:
        return list(context.asset_key.path)

    def _partition_paths(self, context: dg.InputContext | dg.OutputContext, column: str) -> dict[str, UPath]:
        parts = self._key_parts(context)
        return {
            str(key): partition_path(self._base_path, parts, str(key), column)
            for key in context.asset_partition_keys
        }

    # -- writing -------------------------------------------------------------------------------------

    def dump_to_path(self, context: dg.OutputContext, obj: pd.DataFrame, path: UPath) -> None:
        self._write_files({path: _arrow_table(obj)})

    def _write_files(self, tables: Mapping[UPath, pa.Table]) -> dict[UPath, int]:
        """Write every table to a tmp file next to its target, then rename them all.

        Nothing is renamed until every tmp file is complete, so a failure leaves all previous files
        intact (and removes the tmp files). Returns the bytes written per path.

        On S3 the "rename" is s3fs's `mv`: a server-side CopyObject of the finished tmp key onto the
        target, then a delete of the tmp key. S3 publishes an object only once its PUT, multipart upload
        or copy completes, so a reader sees the old partition or the whole new one, never part of a file;
        going through tmp keys (rather than relying on the single PUT alone) keeps the local guarantee that
        a range write publishes nothing until every partition of it has been written.
        """
        fs = self.fs
        tmps: dict[UPath, UPath] = {}
        sizes: dict[UPath, int] = {}
        try:
            for path, table in tables.items():
                self.make_directory(path.parent)
                tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
                tmps[path] = tmp
                with fs.open(tmp.path, "wb") as f:
                    pq.write_table(table, f)
                    sizes[path] = int(f.tell())
            for path, tmp in list(tmps.items()):
                fs.mv(tmp.path, path.path)
                del tmps[path]
        except BaseException:
            for tmp in tmps.values():
                try:
                    if fs.exists(tmp.path):
                        fs.rm(tmp.path)
                except Exception:  # cleanup must not hide the original error
                    log.warning("could not remove tmp file %s", tmp, exc_info=True)
            raise
        return sizes

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            context.log.info(f"{type(self).__name__}: output is None, nothing written")
            return
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(f"{type(self).__name__} stores pandas DataFrames, got {type(obj).__name__}")

        if not context.has_asset_key or not context.has_asset_partitions:
            path = self._get_path(context)
            sizes = self._write_files({path: _arrow_table(obj)})
            self._add_metadata(context, obj, path, sum(sizes.values()), 1)
            return

        column = partition_column(context.asset_partitions_def)
        paths = self._partition_paths(context, column)
        content = (context.definition_metadata or {}).get(APPEND_ONLY_METADATA)
        if content:
            obj = self._append_to_stored(context, obj, column, paths, list(content))
        tables = self._split(obj, column, list(paths))
        sizes = self._write_files({paths[key]: table for key, table in tables.items()})
        if len(paths) == 1:
            where = next(iter(paths.values()))
        else:
            where = asset_dir(self._base_path, self._key_parts(context))
            self._add_partition_metadata(context, tables, paths, sizes)
        context.log.debug(
            f"wrote {len(paths)} partition(s) of {context.asset_key.to_user_string()} at {where}"
        )
        self._add_metadata(context, obj, where, sum(sizes.values()), len(paths))

    def _append_to_stored(
        self, context: dg.OutputContext, obj: pd.DataFrame, column: str, paths: Mapping[str, UPath],
        content: list[str],
    ) -> pd.DataFrame:
        """Each partition's stored rows plus the new rows not stored yet (see the module docstring)."""
        if column not in obj.columns and len(paths) == 1:
            obj = obj.assign(**{column: next(iter(paths))})
        stored: dict[str, pd.DataFrame | None] = {}
        for key, path in paths.items():
            try:
                stored[key] = self._read_table(path, None).to_pandas()
            except FileNotFoundError:
                stored[key] = None
        # each key's rows by position, found in one pass (not one comparison of the whole column per key)
        positions = obj.groupby(obj[column].to_numpy(), sort=False).indices
        empty = np.empty(0, dtype=np.int64)
        if self._first_write_as_is(obj, column, stored, positions, content):
            added, already, merged_obj = len(obj), 0, obj
        else:
            frames, added, already = [], 0, 0
            for key in paths:
                existing = stored[key]
                if existing is None:
                    existing = obj.iloc[0:0].drop(columns=[column])
                incoming = obj.take(positions.get(key, empty)).drop(columns=[column])
                merged, n_added, n_already = append_new_rows(existing, incoming, content)
                frames.append(merged.assign(**{column: key}))
                added, already = added + n_added, already + n_already
            merged_obj = pd.concat(frames, ignore_index=True) if frames else obj
        context.add_output_metadata({"rows_added": dg.MetadataValue.int(added),
                                     "rows_already_stored": dg.MetadataValue.int(already)})
        return merged_obj

    @staticmethod
    def _first_write_as_is(obj: pd.DataFrame, column: str, stored: Mapping[str, pd.DataFrame | None],
                           positions: Mapping[Any, np.ndarray], content: list[str]) -> bool:
        """True when appending would return `obj` itself: no partition stored yet, no row repeating another
        of its partition, rows already grouped by partition in key order, partition column last (as the
        per-partition concatenation puts it). A first backfill of bronze then skips a copy per partition."""
        if any(frame is not None for frame in stored.values()) or obj.empty:
            return False
        if obj.columns[-1] != column or obj[column].dtype != object or not _default_index(obj):
            return False
        bounds = [positions.get(key) for key in stored]
        present = [rows for rows in bounds if rows is not None]
        if sum(len(rows) for rows in present) != len(obj):
            return False
        start = 0
        for rows in present:
            if rows[0] != start or rows[-1] != start + len(rows) - 1:
                return False
            start += len(rows)
        return all_distinct(obj, [*content, column])

    @staticmethod
    def _split(obj: pd.DataFrame, column: str, keys: list[str]) -> dict[str, pa.Table]:
        """One arrow table per run key (empty with the same schema for keys without rows)."""
        if column not in obj.columns:
            if len(keys) != 1:
                raise ValueError(
                    f"the output covers {len(keys)} partitions ({keys[0]}..{keys[-1]}) but has no "
                    f"partition column {column!r} to split it by"
                )
            return {keys[0]: _arrow_table(obj)}

        values = obj[column]
        known = values.isin(keys)
        if not bool(known.all()):
            bad = pd.unique(values[~known])
            raise ValueError(
                f"partition column {column!r} holds values outside this run's partitions "
                f"({keys[0]}..{keys[-1]}): {_name_values(list(bad))}"
            )
        table = _arrow_table(obj, [c for c in obj.columns if c != column])
        if len(keys) == 1:
            return {keys[0]: table}
        positions = obj.groupby(values.to_numpy(), sort=False).indices
        empty = np.empty(0, dtype=np.int64)
        return {key: _rows_of(table, positions.get(key, empty)) for key in keys}

    @staticmethod
    def _add_partition_metadata(
        context: dg.OutputContext,
        tables: Mapping[str, pa.Table],
        paths: Mapping[str, UPath],
        sizes: Mapping[UPath, int],
    ) -> None:
        """Range runs: give each partition's materialization its own row count and bytes.

        Output metadata is copied onto every partition's event, so without this each day of a
        backfill would show the whole range's row count. Partition-scoped asset metadata (set on the
        step context) overrides it per event. Skipped when there is no step context (unit contexts).
        """
        try:
            step_context = context.step_context
        except dg.DagsterInvariantViolationError:
            return
        for key, table in tables.items():
            step_context.add_asset_metadata(
                {
                    "dagster/row_count": dg.MetadataValue.int(table.num_rows),
                    "bytes": dg.MetadataValue.int(sizes[paths[key]]),
                },
                asset_key=context.asset_key,
                partition_key=key,
            )

    @staticmethod
    def _add_metadata(
        context: dg.OutputContext, obj: pd.DataFrame, path: UPath, nbytes: int, written: int
    ) -> None:
        context.add_output_metadata(
            {
                "path": dg.MetadataValue.path(str(path)),
                "dagster/row_count": dg.MetadataValue.int(len(obj)),
                "bytes": dg.MetadataValue.int(int(nbytes)),
                "dagster/column_schema": dg.MetadataValue.table_schema(merge_schemas(
                    (context.definition_metadata or {}).get("dagster/column_schema"), table_schema(obj))),
                "partitions_written": dg.MetadataValue.int(written),
            }
        )

    def write_partitions(
        self, asset_key_path: Sequence[str], frame: pd.DataFrame, partition_keys: Sequence[str],
        column: str = DAILY_COLUMN,
    ) -> dict[str, tuple[str, int]]:
        """Write a frame's partitions of an asset the step produces without an output (silver's rejects
        when only silver is selected), atomically as `handle_output` does: {key: (path, rows)}."""
        keys = [str(k) for k in partition_keys]
        paths = {key: partition_path(self._base_path, list(asset_key_path), key, column) for key in keys}
        tables = self._split(frame, column, keys)
        self._write_files({paths[key]: table for key, table in tables.items()})
        return {key: (str(paths[key]), tables[key].num_rows) for key in keys}

    def write_table(self, asset_key_path: Sequence[str], table: pa.Table, partition_key: str,
                    column: str = DAILY_COLUMN) -> tuple[str, int]:
        """Write one partition of an asset from an Arrow table already in its stored form (no pandas round
        trip; the Hive folder holds the partition column), atomically as `handle_output` does: (path, rows)."""
        path = partition_path(self._base_path, list(asset_key_path), str(partition_key), column)
        self._write_files({path: table})
        return str(path), table.num_rows

    # -- reading -------------------------------------------------------------------------------------

    def _read_table(self, path: UPath, columns: list[str] | None) -> pa.Table:
        """One footer parse + one read per file; names missing columns (pyarrow ignores them)."""
        fs = self.fs
        if isinstance(fs, LocalFileSystem):
            return self._read_parquet(pq.ParquetFile(path.path), path, columns)
        with fs.open(path.path, "rb") as f:
            return self._read_parquet(pq.ParquetFile(f), path, columns)

    @staticmethod
    def _read_parquet(pf: pq.ParquetFile, path: UPath, columns: list[str] | None) -> pa.Table:
        if columns is not None:
            missing = [c for c in columns if c not in pf.schema_arrow.names]
            if missing:
                raise KeyError(f"columns {missing} not found in {path} (has {pf.schema_arrow.names})")
        return pf.read(columns=columns, use_pandas_metadata=False)

    def read_stored(self, asset_key_path: Sequence[str], partition_key: str, column: str = "dt",
                    columns: Sequence[str] | None = None) -> pd.DataFrame | None:
        """The stored rows of one partition (None when it was never written), for an asset that must keep
        what it wrote before (predictions keep a day's written scores unless told to re-score) or reads a
        lookback; `columns` prunes the read to those columns."""
        path = partition_path(self._base_path, list(asset_key_path), partition_key, column)
        try:
            stored = self._read_table(path, [c for c in columns if c != column] if columns else None).to_pandas()
        except FileNotFoundError:
            return None
        return stored.assign(**{column: partition_key})  # the Hive folder holds the partition column

    def read_stored_table(self, asset_key_path: Sequence[str], partition_key: str, column: str = "dt",
                          columns: Sequence[str] | None = None) -> pa.Table | None:
        """`read_stored` as an Arrow table, without the partition column (None when never written): for a
        reader that takes a few rows of many partitions before converting to pandas once."""
        path = partition_path(self._base_path, list(asset_key_path), partition_key, column)
        try:
            return self._read_table(path, [c for c in columns if c != column] if columns else None)
        except FileNotFoundError:
            return None

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pd.DataFrame:
        columns = (context.definition_metadata or {}).get("columns")
        return self._read_table(path, list(columns) if columns is not None else None).to_pandas()

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        meta = context.definition_metadata or {}
        columns = list(meta["columns"]) if meta.get("columns") is not None else None

        if not context.has_asset_key or not context.has_asset_partitions:
            path = self._get_path(context)
            try:
                return self._read_table(path, columns).to_pandas()
            except FileNotFoundError as e:
                raise FileNotFoundError(f"no Parquet file at {path}") from e

        column = partition_column(context.asset_partitions_def)
        file_cols = [c for c in columns if c != column] if columns is not None else None
        add_column = columns is None or column in columns
        allow_missing = bool(meta.get("allow_missing_partitions", False))

        keys, tables = [], []
        for key, path in self._partition_paths(context, column).items():
            try:
                table = self._read_table(path, file_cols)
            except FileNotFoundError as e:
                if not allow_missing:
                    raise FileNotFoundError(
                        f"partition {key} of {context.asset_key.to_user_string()} is missing: no file "
                        f"at {path} (set AssetIn(metadata={{'allow_missing_partitions': True}}) to skip)"
                    ) from e
                context.log.warning(f"partition {key} missing at {path}; skipped (allow_missing_partitions)")
                continue
            keys.append(key)
            tables.append(table)

        if not tables:
            return self._empty_frame(context, column, file_cols, add_column, columns)

        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")
        frame = table.to_pandas(types_mapper=arrow_string_dtype if meta.get(ARROW_STRINGS_METADATA) else None)
        if add_column:
            counts = [t.num_rows for t in tables]
            frame[column] = np.repeat(np.array(keys, dtype=object), counts)
        if columns is not None:
            frame = frame[columns]
        context.log.debug(
            f"loaded {len(keys)} partition(s), {len(frame)} rows of {context.asset_key.to_user_string()}"
        )
        return frame

    def _empty_frame(
        self,
        context: dg.InputContext,
        column: str,
        file_cols: list[str] | None,
        add_column: bool,
        columns: list[str] | None,
    ) -> pd.DataFrame:
        """Zero rows, with the columns (and dtypes) of any existing partition file when there is one."""
        schema = self._any_schema(asset_dir(self._base_path, self._key_parts(context)), column)
        if schema is not None and (file_cols is None or all(c in schema.names for c in file_cols)):
            frame = schema.empty_table().to_pandas()
            if file_cols is not None:
                frame = frame[file_cols]
        else:
            frame = pd.DataFrame({c: pd.Series([], dtype=object) for c in (file_cols or [])})
        if add_column:
            frame[column] = pd.Series([], dtype=object)
        if columns is not None:
            frame = frame[columns]
        context.log.info(f"no partitions of {context.asset_key.to_user_string()} to load; empty frame")
        return frame

    def _any_schema(self, folder: UPath, column: str) -> pa.Schema | None:
        """Schema of the newest existing partition file (footer read only), or None."""
        fs = self.fs
        try:
            entries = fs.ls(folder.path, detail=False)
        except FileNotFoundError:
            return None
        prefix = f"{column}="
        names = sorted((e.rstrip("/").rsplit("/", 1)[-1] for e in entries), reverse=True)
        for name in names:
            if not name.startswith(prefix):
                continue
            path = folder / name / PART_FILE
            try:
                with fs.open(path.path, "rb") as f:
                    return pq.read_schema(f)
            except FileNotFoundError:
                continue
        return None


class ParquetLakeIOManager(dg.ConfigurableIOManagerFactory):
    """The lake IO manager resource: `base_url` is a local folder or any fsspec URL (memory://, s3://)."""

    base_url: str = Field(description="local folder or fsspec URL of the lake root, e.g. memory://lake")
    storage_options: dict[str, Any] = Field(
        default={}, description="fsspec storage options passed to UPath (credentials, endpoint, ...)"
    )

    def create_io_manager(self, context: dg.InitResourceContext) -> HiveParquetIOManager:
        return HiveParquetIOManager(lake_root(self.base_url, self.storage_options))
