"""Sensors: the landing folder watcher (more sensors join this module later).

`landing_file_sensor` turns each new or changed landing file into one run of that day's bronze
partition (an X12 file: one run per table and day it holds); declarative automation carries the change on to silver, gold and predictions. Bad files are
quarantined with a reason file. The logic lives in `rcm_assets.lib.landing.scan_landing`; this module
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
from rcm_assets.platform.resources import LandingResource

# The bronze asset each landing table feeds.
LANDING_TARGETS: dict[str, dg.AssetKey] = {"claims": bronze.claims.key, "remittances": bronze.remittances.key}
# Work per tick: a sensor evaluation times out after 60 s (DAGSTER_NOTES §13.7), so a large backlog is
# validated a page at a time, the cursor resuming after the last file handled.
MAX_FILES_PER_TICK = 500
TICK_BUDGET_SECONDS = 40.0
# A file is picked up once unchanged for this long: never half-uploaded, and no listing race.
SETTLE_SECONDS = 10.0
TRIGGER_TAG = "rcm/trigger"
FILE_TAG = "rcm/landing_file"


def newest_partition_day(first_day: date) -> date:
    """The newest day whose bronze partition exists now (today, while `daily_partitions` has
    end_offset=1); a file for a later day is `future_date`."""
    key = daily_partitions.get_last_partition_key()
    return date.fromisoformat(key) if key else first_day - timedelta(days=1)


@dg.sensor(
    name="landing_file_sensor",
    description=(
        "Requests the bronze partition of the day a landing file (claims_/remittances_YYYY-MM-DD*.csv|"
        "parquet) describes, or of each day an X12 837/835 file holds, once per file version; quarantines "
        "files that cannot be used."
    ),
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    target=list(LANDING_TARGETS.values()),
)
def landing_file_sensor(context: dg.SensorEvaluationContext, landing: LandingResource) -> dg.SensorResult:
    landing_dir = Path(landing.landing_dir)
    if not landing_dir.is_dir():
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"landing folder {landing_dir} does not exist"), cursor=context.cursor
        )
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
            f"X12 file {partly.name}: {len(partly.problems)} transaction set(s) refused (listed in "
            f"{partly.record.name}), the others accepted"
        )
    for refused in scan.refused:
        context.log.warning(
            f"landing file quarantined as {refused.quarantined_as.name} [{refused.error.reason}]: "
            f"{refused.error}"
        )
    for problem in scan.failed:
        context.log.error(f"landing file left in place, retried next tick: {problem}")
    requests = [
        dg.RunRequest(
            run_key=item.version,
            partition_key=item.landing.partition_key,
            asset_selection=[LANDING_TARGETS[item.landing.table]],
            tags={FILE_TAG: item.path.name, TRIGGER_TAG: "landing_file_sensor"},
        )
        for item in scan.accepted
    ]
    context.log.info(f"landing scan: {scan.summary()}")
    if requests:
        return dg.SensorResult(run_requests=requests, cursor=scan.cursor)
    return dg.SensorResult(skip_reason=dg.SkipReason(f"no new landing files: {scan.summary()}"),
                           cursor=scan.cursor)

