"""Shared helpers for asset checks computed inside an asset step.

A failing blocking check does not stop the IO manager from writing (DAGSTER_NOTES §4.2), so assets
evaluate their blocking checks *before* returning the output: `publish` yields the check results and
raises instead of yielding the output when a blocking one failed, so bad data never lands.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import dagster as dg


def result(
    check_name: str,
    passed: bool,
    *,
    asset_key: dg.AssetKey | None = None,
    warn_only: bool = False,
    description: str | None = None,
    **metadata: Any,
) -> dg.AssetCheckResult:
    """An AssetCheckResult with its evidence; `warn_only` checks fail with WARN severity."""
    return dg.AssetCheckResult(
        check_name=check_name,
        asset_key=asset_key,
        passed=bool(passed),
        severity=dg.AssetCheckSeverity.WARN if warn_only else dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata=metadata,
    )


def publish(
    outputs: Iterable[dg.Output],
    checks: Iterable[dg.AssetCheckResult],
    *,
    what: str,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """Yield check results, then the outputs only if no ERROR-severity check failed."""
    checks = list(checks)
    failed = [c for c in checks if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR]
    if failed:
        yield from checks
        reasons = "; ".join(f"{c.check_name}: {c.description or 'failed'}" for c in failed)
        raise dg.Failure(
            description=f"{what} not written: blocking check(s) failed — {reasons}",
            metadata={"failed_checks": ", ".join(c.check_name or "" for c in failed)},
            allow_retries=False,  # bad data stays bad: retrying would only delay the failure
        )
    yield from outputs
    yield from checks
