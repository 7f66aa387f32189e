"""Dagster's beta/preview notices for the APIs this code location uses on purpose.

Dagster warns each time a labelled API is used: at every definitions load (the code server, each run's
process, each step process) and so thousands of times in a day of `dagster dev`. No stable API replaces
these uses, so the code location's entry (`definitions.py`) and the CLI hide exactly these notices, by
class and message start; any other warning still shows.
"""

from __future__ import annotations

import re
import warnings

# (warning class, start of Dagster's message, our use)
DELIBERATE_DAGSTER_USES = (
    ("BetaWarning", "Parameter `backfill_policy` of function `asset`",
     "range runs (chunked backfills) of the partitioned assets"),
    ("BetaWarning", "Parameter `allow_nonexistent_upstream_partitions`",
     "gold's look-back mapping reaches days before the first partition"),
    ("PreviewWarning", "Specifying a partitions_def on an AssetCheckSpec",
     "checks recorded per partition"),
    ("BetaWarning", "Handling yaml-defined logging configuration",
     "the instance's python_logs handlers write the JSON run logs (platform/instance.py)"),
)


def quiet_dagster_labels() -> None:
    """Hide Dagster's beta/preview notices for our deliberate uses (DELIBERATE_DAGSTER_USES) only."""
    import dagster as dg

    for name, message, _use in DELIBERATE_DAGSTER_USES:
        warnings.filterwarnings("ignore", message=re.escape(message), category=getattr(dg, name))
