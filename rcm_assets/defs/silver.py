"""Silver: bronze rows typed, validated against the registry contract, deduplicated and pseudonymized.

Silver is the history: every state of a claim version (the submission and any in-place update after
it) and every adjudication row (first adjudication, appeals), each on the day it reached the source.
`silver/claim_versions` indexes which claim versions each day holds, so gold can tell a submission from
a later update of a version it has already seen.

Rows that cannot be used (a usability rule of the contract fails: no claim id, payer, version, parsable
dates, amounts or units) go to the `*_rejects` table of the same partition with the failing check and
column per row. Claim defects (an NPI failing its check digit, ICD-9 after 2015-10-01, unknown or deleted
codes, missing demographics) are what payers deny: those rows land in silver with `defect_*` flags and
never count as rejects. When the reject rate of a partition is above the threshold, the rejects are still
written (so they can be inspected) but the silver table is not, and the blocking check fails the run.
"""


from collections.abc import Callable, Iterator

import dagster as dg
import pandas as pd

from rcm_assets.defs import bronze, checks
from rcm_assets.defs.automation import follow_upstream
from rcm_assets.defs.partitions import DAILY_BACKFILL_POLICY, daily_partitions
from rcm_assets.lib import claim_history, contracts, quality, settings, transforms
from rcm_assets.platform import catalog
from rcm_assets.platform.resources import PhiKeyResource
from rcm_assets.platform.types import rejects_dagster_type, silver_dagster_type


class SilverConfig(dg.Config):
    """Default: environment > configuration file > 1 %, read when the code location loads (so runs the
    daemon, UI and sensors launch without run config use it too)."""

    # above this share of rejected rows, the partition fails
    max_reject_rate: float = settings.silver_overrides().get("max_reject_rate", 0.01)


def reject_rates_by_day(raw: pd.DataFrame, rejects: pd.DataFrame) -> dict[str, float]:
    """Share of each day's bronze rows that were rejected."""
    if raw.empty:
        return {}
    rows = raw.groupby("dt").size()
    rejected = rejects.groupby("dt").size().reindex(rows.index, fill_value=0) if not rejects.empty else 0 * rows
    return {str(day): float(rate) for day, rate in (rejected / rows).items()}


def reject_rate_check(
    stats: dict, raw: pd.DataFrame, rejects: pd.DataFrame, limit: float, key: dg.AssetKey
) -> dg.AssetCheckResult:
    """Reject rate (unusable rows only; claim defects land and do not count) per day against the limit;
    the evidence names columns and counts, never values."""
    per_day = reject_rates_by_day(raw, rejects)
    worst_day, worst = max(per_day.items(), key=lambda kv: kv[1], default=("-", stats["reject_rate"]))
    over = sorted(day for day, rate in per_day.items() if rate > limit)
    passed = not over and stats["reject_rate"] <= limit
    return checks.result(
        "reject_rate_within_threshold", passed, asset_key=key,
        description=(
            f"reject rate {worst:.2%} on {worst_day} is above the {limit:.2%} threshold "
            f"(days over: {', '.join(over)})" if not passed else
            f"reject rate {stats['reject_rate']:.2%} within the {limit:.2%} threshold"
        ),
        rows_in=stats["rows_in"], rows_rejected=stats["rows_rejected"],
        reject_rate=float(stats["reject_rate"]), threshold=limit,
        worst_day=worst_day, worst_day_reject_rate=float(worst),
        rejects_by_column=dg.MetadataValue.json(stats.get("rejects_by_column", {})),
        rejects_by_check=dg.MetadataValue.json(stats.get("rejects_by_check", {})),
    )


def phi_check(frames: dict[str, pd.DataFrame], raw: pd.DataFrame, key: dg.AssetKey) -> dg.AssetCheckResult:
    """No PHI column, and no raw PHI value of the bronze rows, in any silver output."""
    # `dt` is the partition key (a date the pipeline assigns), not data: a DOB equal to it is no leak.
    leaks = [f"{name}: {leak}" for name, frame in frames.items()
             for leak in transforms.phi_leaks(frame.drop(columns=["dt"], errors="ignore"), raw)]
    return checks.result(
        "no_phi_in_silver", not leaks, asset_key=key,
        description="; ".join(leaks) if leaks else "no PHI column or raw PHI value found",
        leaks=len(leaks), tables_checked=", ".join(frames),
    )


def unique_check(good: pd.DataFrame, table: str, key: dg.AssetKey) -> dg.AssetCheckResult:
    state_key = contracts.SILVER_KEY_COLUMNS[table]
    duplicated = quality.duplicate_claims(good, state_key)
    return checks.result(
        "one_row_per_state", duplicated == 0, asset_key=key,
        description=f"{duplicated} rows repeat a ({', '.join(state_key)}) state" if duplicated else None,
        duplicate_rows=duplicated,
    )


def silver_check_specs(table: str, key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    state_key = ", ".join(contracts.SILVER_KEY_COLUMNS[table])
    return [
        checks.spec("reject_rate_within_threshold", key,
                    "Share of the day's bronze rows that cannot be used (no claim id, payer, version, parsable "
                    "dates, amounts or units) at most max_reject_rate (default 1%); above it the rejects are "
                    "written and silver is not. Claim defects land flagged and do not count",
                    blocking=True, partitions_def=daily_partitions),
        checks.spec("no_phi_in_silver", key, "No PHI column and no raw PHI value of bronze in silver or rejects",
                    blocking=True, partitions_def=daily_partitions),
        checks.spec("one_row_per_state", key, f"One row per state after deduplication: ({state_key})",
                    blocking=True, partitions_def=daily_partitions),
    ]


def rows_by_day(frame: pd.DataFrame, days: list[str], columns: list[str]) -> dict[str, pd.DataFrame]:
    """`columns` of each day's rows (one grouping pass; a frame without `dt` counts for every day)."""
    narrow = frame[[c for c in dict.fromkeys(columns) if c in frame.columns]]
    if "dt" not in frame.columns:
        return dict.fromkeys(days, narrow)
    groups = narrow.groupby("dt", sort=False).indices if len(narrow) else {}
    return {day: narrow.iloc[groups[day]] if day in groups else narrow.iloc[0:0] for day in days}


def day_checks(
    stats: dict, raw: pd.DataFrame, rejects: pd.DataFrame, good: pd.DataFrame, limit: float, table: str,
    key: dg.AssetKey, phi_ok: dg.AssetCheckResult, day: str,
) -> list[dg.AssetCheckResult]:
    """The day's reject rate and uniqueness, and the run's PHI result (one scan of the whole run).

    `raw`, `rejects` and `good` may hold the whole run or only `day`'s rows (`rows_by_day`)."""
    raw_day = raw[raw["dt"] == day] if "dt" in raw.columns else raw
    rejects_day = rejects[rejects["dt"] == day] if "dt" in rejects.columns else rejects
    rejected = len(rejects_day)
    day_stats = {"rows_in": len(raw_day), "rows_rejected": rejected,
                 "reject_rate": rejected / len(raw_day) if len(raw_day) else 0.0,
                 "rejects_by_column": stats.get("rejects_by_column", {}),
                 "rejects_by_check": stats.get("rejects_by_check", {})}
    good_day = good[good["dt"] == day] if "dt" in good.columns else good
    return [reject_rate_check(day_stats, raw_day, rejects_day, limit, key), phi_ok,
            unique_check(good_day, table, key)]


def build_silver_asset(
    table: str, upstream: dg.AssetsDefinition, build: Callable[..., transforms.SilverResult], needs_key: bool
) -> dg.AssetsDefinition:
    good_key, rejects_key = dg.AssetKey(["silver", table]), dg.AssetKey(["silver", f"{table}_rejects"])

    @dg.multi_asset(
        name=f"silver_{table}",
        outs={
            "good": dg.AssetOut(
                key=good_key, io_manager_key="lake", is_required=False, dagster_type=silver_dagster_type(table),
                description=(f"Validated, pseudonymized {table}: their history, one row per state "
                             "(claims: every version and in-place update; remittances: every adjudication)."),
                automation_condition=follow_upstream(), kinds={"pandas", "parquet"},
                owners=catalog.OWNERS, tags=catalog.registry_tags(table, "silver"),
                metadata=catalog.definition_metadata(catalog.silver_schema(table)),
            ),
            "rejects": dg.AssetOut(
                key=rejects_key, io_manager_key="lake", is_required=False, dagster_type=rejects_dagster_type(table),
                description=(f"Bronze {table} rows that cannot be used, with failing checks and columns. "
                             f"Always written with silver/{table}, even when only silver/{table} is selected."),
                automation_condition=follow_upstream(), kinds={"pandas", "parquet"},
                owners=catalog.OWNERS, tags=catalog.registry_tags(table, "silver"),
                metadata=catalog.definition_metadata(catalog.rejects_schema(table)),
            ),
        },
        ins={"raw": dg.AssetIn(key=upstream.key)},
        group_name="silver",
        partitions_def=daily_partitions,
        backfill_policy=DAILY_BACKFILL_POLICY,
        # Subsettable, so `*gold/claim_features`, a single layer or any chain selects what it names. The
        # rejects are still written whenever silver is: as an output when selected, else by `write_rejects`.
        can_subset=True,
        required_resource_keys={"lake", "phi"},  # lake: see write_rejects
        check_specs=silver_check_specs(table, good_key),
    )
    def _silver(context: dg.AssetExecutionContext, config: SilverConfig, raw: pd.DataFrame) -> Iterator:
        phi: PhiKeyResource = context.resources.phi
        tz = settings.facility_tz()  # RCM_FACILITY_TZ: service dates are local dates there
        result = build(raw, phi.key_bytes(), facility_tz=tz) if needs_key else build(raw, facility_tz=tz)
        stats = result.stats
        context.log.info(
            f"silver/{table}: {stats['rows_in']} rows in, {stats['rows_good']} good, "
            f"{stats['rows_rejected']} rejected ({stats['reject_rate']:.2%}), "
            f"{stats.get('duplicates_removed', 0)} repeated states removed"
            + (f", {stats['rows_with_defects']} with claim defects" if "rows_with_defects" in stats else "")
        )
        if stats.get("unknown_columns"):
            context.log.warning(f"silver/{table}: dropped unknown column(s) {', '.join(stats['unknown_columns'])}")
        phi_ok = phi_check({f"silver/{table}": result.good, f"silver/{table}_rejects": result.rejects}, raw, good_key)
        # each day's rows split once (only the columns the checks read), not filtered once per day
        days = list(context.partition_keys)
        raw_of = rows_by_day(raw, days, ["dt"])
        rejects_of = rows_by_day(result.rejects, days, ["dt"])
        good_of = rows_by_day(result.good, days, list(contracts.SILVER_KEY_COLUMNS[table]))
        by_day = {day: day_checks(stats, raw_of[day], rejects_of[day], good_of[day], config.max_reject_rate,
                                  table, good_key, phi_ok, day)
                  for day in days}
        if not phi_ok.passed:  # nothing may be written when PHI would leak, not even the rejects
            yield from checks.publish([], by_day, what=f"silver/{table}", context=context)
        selected = context.selected_asset_keys
        rejects_meta = {"rejected_rows": len(result.rejects)}
        if rejects_key in selected:
            yield dg.Output(result.rejects, output_name="rejects", metadata=rejects_meta)
        elif good_key in selected:  # never silver without its rejects: nothing refused may go unrecorded
            yield from write_rejects(context, rejects_key, result.rejects, table, rejects_meta)
        if good_key not in selected:
            return
        summary = {
            "rows_in": stats["rows_in"], "rows_rejected": stats["rows_rejected"],
            "reject_rate": round(float(stats["reject_rate"]), 4),
            "duplicates_removed": int(stats.get("duplicates_removed", 0)),
            "unknown_columns": ", ".join(stats.get("unknown_columns", [])) or "none",
        }
        if "defects_by_flag" in stats:  # claims: rows that landed with defects (counts per flag, no values)
            summary["rows_with_defects"] = int(stats["rows_with_defects"])
            summary["defects_by_flag"] = dg.MetadataValue.json(stats["defects_by_flag"])
        yield from checks.publish(
            [dg.Output(result.good, output_name="good", metadata=summary)], by_day,
            what=f"silver/{table}", context=context,
        )

    return _silver


def write_rejects(
    context: dg.AssetExecutionContext, key: dg.AssetKey, rejects: pd.DataFrame, table: str, metadata: dict
) -> Iterator[dg.AssetMaterialization]:
    """Store the rejects through the lake IO manager when only silver was selected, and record one
    materialization per partition (the same files and events as the `rejects` output would give)."""
    check = rejects_dagster_type(table).type_check(None, rejects)  # the output's own contract
    if not check.success:
        raise dg.Failure(description=f"silver/{table}_rejects not written: {check.description}",
                         allow_retries=False)
    written = context.resources.lake.write_partitions(list(key.path), rejects, context.partition_keys)
    for day, (path, rows) in written.items():
        yield dg.AssetMaterialization(asset_key=key, partition=day, metadata={
            **metadata, "path": dg.MetadataValue.path(path), "dagster/row_count": rows,
            "written_with": f"silver/{table} (rejects not selected)"})


claims = build_silver_asset("claims", bronze.claims, transforms.build_silver_claims, needs_key=True)
remittances = build_silver_asset("remittances", bronze.remittances, transforms.build_silver_remittances,
                                 needs_key=False)


@dg.asset(
    key=["silver", "claim_versions"],
    group_name="silver",
    owners=catalog.OWNERS,
    tags=catalog.registry_tags("claims", "silver"),
    metadata=catalog.definition_metadata(catalog.claim_versions_schema()),
    partitions_def=daily_partitions,
    io_manager_key="lake",
    ins={"silver_claims": dg.AssetIn(
        key=claims.keys_by_output_name["good"],
        metadata={"columns": ["claim_id", "claim_version", "updated_at", "_ingested_at", "dt"]})},
    backfill_policy=DAILY_BACKFILL_POLICY,
    automation_condition=follow_upstream(),
    kinds={"pandas", "parquet"},
)
def claim_versions(silver_claims: pd.DataFrame) -> pd.DataFrame:
    """The claim versions each day of silver holds (first updated_at that day): the index gold reads to
    tell a new submission from an in-place update of a version it has already seen."""
    return claim_history.version_index(silver_claims)
