"""A lake IO manager for `--dry-run`: reads the real lake, keeps every write in memory.

Downstream steps of the same run read what upstream steps "wrote", so a dry run validates the whole
chain, and the real lake is never touched.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg
import pyarrow as pa
from upath import UPath

from rcm_assets.platform.io_manager import HiveParquetIOManager, ParquetLakeIOManager


class DryRunHiveIOManager(HiveParquetIOManager):
    def __init__(self, base_path: UPath):
        super().__init__(base_path)
        self.pending: dict[str, pa.Table] = {}

    def _write_files(self, tables: Mapping[UPath, pa.Table]) -> dict[UPath, int]:
        for path, table in tables.items():
            self.pending[str(path)] = table
        return {path: int(table.nbytes) for path, table in tables.items()}

    def _read_table(self, path: UPath, columns: list[str] | None) -> pa.Table:
        table = self.pending.get(str(path))
        if table is None:
            return super()._read_table(path, columns)
        if columns is not None:
            missing = [c for c in columns if c not in table.column_names]
            if missing:
                raise KeyError(f"columns {missing} not found in {path} (dry run)")
            return table.select(columns)
        return table


class DryRunLakeIOManager(ParquetLakeIOManager):
    """Same configuration as the lake IO manager; writes stay in memory for the run."""

    def create_io_manager(self, context: dg.InitResourceContext) -> DryRunHiveIOManager:
        return DryRunHiveIOManager(UPath(self.base_url, **self.storage_options))
