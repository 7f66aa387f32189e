"""Sensors: the landing folder watcher (more sensors join this module later).

`landing_file_sensor` groups the new or changed landing files of a tick by table and day (an X12 file
counts for each table and day it holds) into one run of that day's bronze partition, which reads only the
files the day has not ingested yet; a later tick with more files for the day makes one more run.
Declarative automation carries the change on to silver, gold and predictions. Bad files are quarantined
with a reason file. The logic lives in `rcm_assets.lib.landing.scan_landing`; this module
only maps its result onto Dagster run requests and logs.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from rcm_assets.defs import bronze
from rcm_assets.defs.partitions import daily_partitions
from rcm_assets.lib import landing as landing_lib
from rcm_assets.lib import settings
from rcm_assets.platform import catalog
from rcm_assets.platform.resources import LandingResource

# The bronze asset each landing table feeds.
LANDING_TARGETS: dict[str, dg.AssetKey] = {"claims": bronze.claims.key, "remittances": bronze.remittances.key}
BRONZE_CHECKS: dict[str, set[dg.AssetCheckKey]] = {"claims": set(bronze.claims.check_keys),
                                                   "remittances": set(bronze.remittances.check_keys)}
# Work per tick: a sensor evaluation times out after 60 s (DAGSTER_NOTES §13.7), so a large backlog is
# validated a page at a time, the cursor resuming after the last file handled.
MAX_FILES_PER_TICK = 500
TICK_BUDGET_SECONDS = 40.0
# A file is picked up once unchanged for this long: never half-uploaded, and no listing race.
SETTLE_SECONDS = 10.0
TRIGGER_TAG = "rcm/trigger"
FILE_TAG = "rcm/landing_file"
FILE_COUNT_TAG = "rcm/landing_files"


QUARANTINE_KEY = dg.AssetKey(["landing", "quarantine"])
# The quarantine folder as an asset the sensor observes: each refused file (or refused X12 transaction
# sets) is one observation carrying the file name, the reason code and the value-free message.
landing_quarantine = dg.AssetSpec(
    QUARANTINE_KEY,
    description=("Landing files refused by the landing sensor and moved to the quarantine folder, each with "
                 "a reason file. Every refusal is an observation of this asset: its file, reason code and "
                 "message (which names the file, row and column, never a value)."),
    group_name="landing",
    owners=catalog.OWNERS,
    tags=catalog.tags("landing", phi=True),  # the quarantined files themselves may hold PHI
    kinds={"csv", "parquet"},
    metadata=catalog.definition_metadata(dg.TableSchema(columns=[
        dg.TableColumn("file", "string", description="Name of the refused landing file"),
        dg.TableColumn("reason", "string", description="Reason code (lib/landing.REASONS)"),
        dg.TableColumn("message", "string", description="What is wrong, naming the row and column"),
        dg.TableColumn("quarantined_as", "string", description="Where the file is now, beside its reason file"),
    ])),
)


def quarantine_observations(scan: landing_lib.ScanResult) -> list[dg.AssetObservation]:
    """One observation of landing/quarantine per refused file or partly refused X12 file."""
    events = [dg.AssetObservation(asset_key=QUARANTINE_KEY, metadata={
        "file": refused.name, "reason": refused.error.reason, "message": str(refused.error),
        "row": refused.error.row if refused.error.row is not None else "n/a",
        "column": refused.error.column or "n/a",
        "quarantined_as": dg.MetadataValue.path(str(refused.quarantined_as)),
    }) for refused in scan.refused]
    events += [dg.AssetObservation(asset_key=QUARANTINE_KEY, metadata={
        "file": partly.name,
        "reason": "x12_transaction_sets_refused" if partly.problems else "x12_envelope_warnings",
        "message": (f"{len(partly.problems)} transaction set(s) refused, the others accepted"
                    if partly.problems else "every transaction set accepted")
        + "".join(f"; envelope warning: {w}" for w in partly.warnings[:3]),
        "quarantined_as": dg.MetadataValue.path(str(partly.record)),
    }) for partly in scan.partial]
    return events


def shown_files(names: list[str], limit: int = 180) -> str:
    """The batch's file names for a run tag (bounded: a burst can hold hundreds)."""
    text = ", ".join(names)
    if len(text) <= limit:
        return text
    shown = text[:limit].rsplit(", ", 1)[0]
    return f"{shown} (+{len(names) - shown.count(', ') - 1} more)"


# A run in these states has not listed the landing folder yet: files that arrive meanwhile are read by it.
NOT_YET_READING = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING]


def pending_batches(instance: dg.DagsterInstance) -> dict[tuple[str, str], str]:
    """(table, day) -> run id of the landing runs still waiting to start."""
    runs = instance.get_runs(dg.RunsFilter(statuses=NOT_YET_READING, tags={TRIGGER_TAG: "landing_file_sensor"}),
                             limit=1000)
    tables = {key: table for table, key in LANDING_TARGETS.items()}
    return {(tables[key], run.tags["dagster/partition"]): run.run_id for run in runs
            for key in (run.asset_selection or ()) if key in tables and "dagster/partition" in run.tags}


def batch_requests(scan: landing_lib.ScanResult, pending: dict[tuple[str, str], str] | None = None,
                   log: dg.DagsterLogManager | None = None) -> list[dg.RunRequest]:
    """One run per table and day of the tick's accepted files (not one per file): the run reads the files
    its day has not ingested yet, so a day whose landing run is still queued gets no second run (the
    queued one reads the new files too). Only the bronze asset's own checks run in it; the freshness
    checks run on their own schedule, not once per landing batch."""
    requests = []
    for (table, day), items in landing_lib.batches(scan.accepted).items():
        if (table, day) in (pending or {}):
            if log is not None:
                log.info(f"{len(items)} {table} file(s) of {day} join the queued run {pending[(table, day)][:8]}")
            continue
        target = LANDING_TARGETS[table]
        names = sorted({item.path.name for item in items})
        requests.append(dg.RunRequest(
            run_key=landing_lib.batch_key(table, day, items),
            partition_key=day,
            asset_selection=[target],
            asset_check_keys=list(BRONZE_CHECKS[table]),
            tags={FILE_TAG: shown_files(names), FILE_COUNT_TAG: str(len(names)), TRIGGER_TAG: "landing_file_sensor"},
        ))
    return requests


def newest_partition_day(first_day: date) -> date:
    """The newest day whose bronze partition exists now (today, while `daily_partitions` has
    end_offset=1); a file for a later day is `future_date`."""
    key = daily_partitions.get_last_partition_key()
    return date.fromisoformat(key) if key else first_day - timedelta(days=1)


@dg.sensor(
    name="landing_file_sensor",
    description=(
        "Requests the bronze partition of the days new landing files (claims_/remittances_YYYY-MM-DD*.csv|"
        "parquet, X12 837/835) describe: one run per table and day of a tick, whatever the number of files, "
        "each reading only the file versions its day has not ingested; quarantines "
        "files that cannot be used, each recorded as an observation of landing/quarantine with its reason. "
        "Creates the landing folder when it is missing."
    ),
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    target=list(LANDING_TARGETS.values()),
)
def landing_file_sensor(context: dg.SensorEvaluationContext, landing: LandingResource) -> dg.SensorResult:
    landing_dir = Path(landing.landing_dir)
    if not landing_dir.is_dir():
        try:
            landing_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return dg.SensorResult(cursor=context.cursor, skip_reason=dg.SkipReason(
                f"landing folder {landing_dir} does not exist and cannot be created ({exc.strerror}): "
                "create it or set RCM_LANDING_DIR"))
        return dg.SensorResult(cursor=context.cursor, skip_reason=dg.SkipReason(
            f"landing folder {landing_dir} did not exist: created it; drop claims_/remittances_YYYY-MM-DD "
            "files or X12 837/835 files there"))
    first_day = date.fromisoformat(landing.first_day)
    scan = landing_lib.scan_landing(
        landing_dir,
        Path(landing.quarantine_dir),
        context.cursor,
        first_day=first_day,
        last_day=newest_partition_day(first_day),
        max_files=MAX_FILES_PER_TICK,
        settle_seconds=SETTLE_SECONDS,
        time_budget_seconds=TICK_BUDGET_SECONDS,
        facility_tz=settings.facility_tz(),
    )
    for partly in scan.partial:
        context.log.warning(
            f"X12 file {partly.name}: {len(partly.problems)} transaction set(s) refused, "
            f"{len(partly.warnings)} envelope warning(s) (listed in {partly.record.name}), the others accepted"
        )
    for refused in scan.refused:
        context.log.warning(
            f"landing file quarantined as {refused.quarantined_as.name} [{refused.error.reason}]: "
            f"{refused.error}"
        )
    for problem in scan.failed:
        context.log.error(f"landing file left in place, retried next tick: {problem}")
    requests = batch_requests(scan, pending_batches(context.instance) if scan.accepted else {}, context.log)
    context.log.info(f"landing scan: {scan.summary()}")
    observations = quarantine_observations(scan)
    if requests:
        return dg.SensorResult(run_requests=requests, cursor=scan.cursor, asset_events=observations)
    return dg.SensorResult(skip_reason=dg.SkipReason(f"no new landing files: {scan.summary()}"),
                           cursor=scan.cursor, asset_events=observations)

