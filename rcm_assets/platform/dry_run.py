"""What `--dry-run` runs against: the real lake and registry, read-only.

- The lake IO manager reads the real lake and keeps every write in memory: downstream steps of the same
  run read what upstream steps "wrote", so a dry run validates the whole chain, and the real lake is
  never touched.
- MLflow: scoring reads the real registry through a client that refuses writes; training (which must
  log and register to run its gate) works on a snapshot of a SQLite registry whose new artifacts go to a
  scratch folder, and `registry_changes` says what it would have registered and promoted.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from pathlib import Path

import dagster as dg
import mlflow
import pyarrow as pa
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from upath import UPath

from rcm_assets.lib import champion as champion_lib
from rcm_assets.platform.io_manager import HiveParquetIOManager, ParquetLakeIOManager
from rcm_assets.platform.resources import MlflowResource


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


# --------------------------------------------------------------------------------------------------
# MLflow: the real registry, read-only
# --------------------------------------------------------------------------------------------------

# MlflowClient methods that only read; every other public method may write and is refused.
READ_PREFIXES = ("get_", "search_", "list_", "download_", "_")


class ReadOnlyMlflowClient:
    """The real registry's client with every write refused: a dry run reads who serves, never changes it."""

    def __init__(self, client: MlflowClient):
        self._client = client

    def __getattr__(self, name: str):
        attr = getattr(self._client, name)
        if callable(attr) and not name.startswith(READ_PREFIXES) and name not in ("tracking_uri",):
            def refused(*args, **kwargs):
                raise PermissionError(f"dry run: MlflowClient.{name} would write to the real MLflow registry")
            return refused
        return attr


class ReadOnlyMlflowResource(MlflowResource):
    """The real tracking server and registry, read-only (scoring in a dry run only reads them)."""

    def client(self) -> ReadOnlyMlflowClient:  # type: ignore[override]
        return ReadOnlyMlflowClient(super().client())

    def experiment_id(self) -> str:
        found = super().client().get_experiment_by_name(self.experiment)
        if found is None:
            raise PermissionError(f"dry run: experiment {self.experiment!r} does not exist and would be created")
        return found.experiment_id


@contextmanager
def restoring_tracking_uri() -> Iterator[None]:
    """Put MLflow's process-wide tracking URI back afterwards. `mlflow.set_tracking_uri` (which a resource
    calls) also exports MLFLOW_TRACKING_URI, so without this, every setting read after a dry run would
    name its registry snapshot instead of the real registry."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)  # None unsets the variable again
        if before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = before


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a `sqlite:///` tracking URI, None for any other store."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return Path(tracking_uri.removeprefix("sqlite:///").split("?", 1)[0])


def snapshot_registry(tracking_uri: str, scratch: Path) -> tuple[str, str]:
    """A private copy of a SQLite tracking store for a dry run that trains: (tracking URI, artifacts URI).

    The real database is opened read-only and copied (SQLite backup, a consistent snapshot). In the copy,
    the experiments' artifact location moves to the scratch folder, so the dry run's new runs and model
    versions write there while the champion's artifacts are still read from where the real runs stored
    them. The real database and artifact folder are never opened for writing.
    """
    source = sqlite_path(tracking_uri)
    if source is None:
        raise ValueError(f"not a SQLite tracking store: {tracking_uri}")
    copy = scratch / "mlflow-snapshot.db"
    artifacts = scratch / "mlflow-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    if source.is_file():
        with closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)) as real, \
                closing(sqlite3.connect(copy)) as mine:
            real.backup(mine)
            mine.execute("UPDATE experiments SET artifact_location = ? || '/' || experiment_id",
                         (artifacts.as_uri(),))
            mine.commit()
    return f"sqlite:///{copy}", artifacts.as_uri()


def registry_changes(real: MlflowClient | None, copy: MlflowClient, model_name: str) -> list[str]:
    """What a dry run did to its registry copy, in sentences: new versions of any registered model (with
    their gate decision) and champion events of `model_name`. `real` None means the registry was empty."""
    def versions(client: MlflowClient | None) -> dict[tuple[str, str], dict[str, str]]:
        if client is None:
            return {}
        try:
            return {(mv.name, mv.version): dict(mv.tags or {})
                    for model in client.search_registered_models()
                    for mv in client.search_model_versions(f"name='{model.name}'")}
        except MlflowException:
            return {}

    def events(client: MlflowClient | None) -> set[tuple]:
        if client is None:
            return set()
        try:
            frame = champion_lib.history(client, model_name)
        except MlflowException:
            return set()
        return {(str(r.version), str(r.effective), str(r.at), str(getattr(r, "action", "promote")))
                for r in frame.itertuples()}

    before, after = versions(real), versions(copy)
    lines = []
    for name, version in sorted(set(after) - set(before), key=lambda nv: (nv[0], int(nv[1]))):
        tags = after[(name, version)]
        week = f" (model week {tags['dagster_partition']})" if tags.get("dagster_partition") else ""
        lines.append(f"would register {name} v{version}{week}"
                     + (f": {tags['gate_decision']}" if tags.get("gate_decision") else ""))
    for version, effective, _at, action in sorted(events(copy) - events(real), key=lambda e: e[2]):
        lines.append(f"would record champion event: {action} v{version} serving from {effective}")
    return lines
