"""Generate a synthetic source: `python -m rcm_assets.synthetic --start 2025-01-01 --days 30 ...`.

Writes the source database (default: settings.source_url()), the ground truth Parquet (default:
settings.ground_truth_path()) and optionally landing files (on a share of the landing days, as the
realism preset says, also an exact and an overlapping re-sent copy) and X12 files (`--x12-dir`: per day
`claims_D.837` and `remittances_D.835`, times in the facility's local time; `--x12-only` leaves those
days' rows out of the source, so they arrive only as X12). `--realism none|default|heavy` chooses how
much real-world mess to generate, `--facility-tz` the facility's time zone. `--world hospital_b` draws the
data from the second world (synthetic.hospital_b: numeric payers, 2,700 codes, rules of its own); `--defects`
adds claim defects (on by default for hospital B, off for the default world). The reference files a hospital would have (payers, published
prior-auth lists, chargemaster, code categories: synthetic.reference_files) go to `--reference-dir`
(default: settings' reference folder, `<data dir>/reference`); `--no-reference-files` writes none.
`--summary-json` writes the generation summary (counts, denial rate, files written) as JSON. Exit code 2
on bad arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from rcm_assets.lib import settings
from rcm_assets.synthetic import world as reference
from rcm_assets.synthetic.generator import (
    REALISM_PRESETS,
    Drift,
    SyntheticData,
    generate,
    write_ground_truth,
    write_landing_files,
    write_source,
)
from rcm_assets.synthetic.hospital_b import DEFAULT_WORLD_SEED, generate_hospital_b
from rcm_assets.synthetic.reference_files import write_reference_files
from rcm_assets.synthetic.x12 import days_with_rows, write_x12_files

log = logging.getLogger("rcm.synthetic")


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m rcm_assets.synthetic", description=__doc__.splitlines()[0])
    p.add_argument("--start", type=_iso_date, required=True, help="first submission day (UTC), YYYY-MM-DD")
    p.add_argument("--days", type=_positive, required=True, help="number of submission days")
    p.add_argument("--claims-per-day", type=_positive, required=True, help="claims submitted per day")
    p.add_argument("--seed", type=int, default=7, help="random seed (same seed, same data)")
    p.add_argument("--source-url", default=None, help="SQLAlchemy URL (default: settings.source_url())")
    p.add_argument("--ground-truth", type=Path, default=None,
                   help="ground truth Parquet path (default: settings.ground_truth_path())")
    p.add_argument("--append", action="store_true", help="append to existing source tables instead of replacing")
    p.add_argument("--landing-dir", type=Path, default=None, help="also write landing files into this folder")
    p.add_argument("--landing-days", type=_iso_date, nargs="+", default=None,
                   help="days to write landing files for (default with --landing-dir: the last day)")
    p.add_argument("--landing-format", choices=("csv", "parquet"), default="csv")
    p.add_argument("--landing-tables", choices=("claims", "remittances"), nargs="+", default=["claims"])
    p.add_argument("--landing-only", action="store_true",
                   help="rows written to landing files are left out of the source (they arrive only by file)")
    p.add_argument("--x12-dir", type=Path, default=None,
                   help="also write X12 files (837P/837I claims, 835 remittances) into this folder")
    p.add_argument("--x12-days", type=_iso_date, nargs="+", default=None,
                   help="UTC days to write X12 files for (default with --x12-dir: every day with rows, "
                        "outcomes after the last generated day included)")
    p.add_argument("--x12-only", action="store_true",
                   help="rows written to X12 files are left out of the source (they arrive only as X12)")
    p.add_argument("--drift-start", type=_iso_date, default=None)
    p.add_argument("--drift-payer", choices=reference.PAYER_IDS, default=None)
    p.add_argument("--drift-cpt-family", choices=reference.CPT_FAMILIES, default=None)
    p.add_argument("--realism", choices=tuple(REALISM_PRESETS), default="default",
                   help="real-world mess: in-place updates, appeals, HCPCS, ZIP+4, ICD grammar, claim id "
                        "formats, institutional claims, late commits, re-sent files (default: default)")
    p.add_argument("--facility-tz", default="UTC",
                   help="IANA time zone of the facility: local service dates and business hours (default: UTC)")
    p.add_argument("--world", choices=("default", "hospital_b"), default="default",
                   help="which synthetic hospital: the default world or hospital B (rules the pipeline never saw)")
    p.add_argument("--world-seed", type=int, default=DEFAULT_WORLD_SEED,
                   help=f"seed of hospital B's payers, codes and rules (default {DEFAULT_WORLD_SEED})")
    p.add_argument("--defects", action=argparse.BooleanOptionalAction, default=None,
                   help="claim defects (test NPIs, ICD-9 after 2015-10-01, missing DOB) and ICD-9 before 2015-10-01: "
                        "on by default for hospital B, off for the default world")
    p.add_argument("--reference-dir", type=Path, default=None,
                   help="folder for the hospital's reference files (default: <data dir>/reference)")
    p.add_argument("--no-reference-files", action="store_true", help="write no reference files")
    p.add_argument("--summary-json", type=Path, default=None, help="also write the summary as JSON here")
    return p


def default_reference_dir() -> Path:
    """The folder the pipeline reads reference files from (RCM_REFERENCE_DIR, else <data dir>/reference)."""
    reader = getattr(settings, "reference_dir", None)
    if reader is not None:
        return Path(reader())
    return Path(settings.setting("RCM_REFERENCE_DIR") or settings.data_dir() / "reference")


def _without_landing_rows(data: SyntheticData, days: list[date], tables: list[str]) -> SyntheticData:
    """A copy of `data` whose source tables omit the rows of `days` (UTC, by updated_at) that go to
    landing or X12 files instead."""
    frames = {"claims": data.claims, "remittances": data.remittances}
    committed = dict(data.committed_at)
    for table in tables:
        frame = frames[table]
        day = frame["updated_at"].dt.normalize().dt.date
        keep = ~day.isin(set(days))
        frames[table] = frame[keep].reset_index(drop=True)
        if table in committed:
            committed[table] = committed[table][keep].reset_index(drop=True)
    return dataclasses.replace(data, claims=frames["claims"], remittances=frames["remittances"],
                               committed_at=committed)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad arguments
    drift_args = (args.drift_start, args.drift_payer, args.drift_cpt_family)
    if any(a is not None for a in drift_args) and not all(a is not None for a in drift_args):
        parser.error("--drift-start, --drift-payer and --drift-cpt-family go together")
    if (args.landing_days or args.landing_only) and args.landing_dir is None:
        parser.error("--landing-days/--landing-only need --landing-dir")
    if (args.x12_days or args.x12_only) and args.x12_dir is None:
        parser.error("--x12-days/--x12-only need --x12-dir")
    if args.claims_per_day > 99_999:
        parser.error("--claims-per-day must be at most 99999")
    if args.world == "hospital_b" and (args.drift_start is not None or args.realism != "default"):
        parser.error("--drift-* and --realism apply to the default world only")
    if args.no_reference_files and args.reference_dir is not None:
        parser.error("--reference-dir and --no-reference-files exclude each other")
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    try:
        drift = Drift(*drift_args) if args.drift_start is not None else None
        if args.world == "hospital_b":
            data = generate_hospital_b(args.start, args.days, args.claims_per_day, args.seed,
                                       world_seed=args.world_seed, defects=args.defects is not False,
                                       facility_tz=args.facility_tz)
        else:
            data = generate(args.start, args.days, args.claims_per_day, args.seed, drift=drift,
                            realism=args.realism, facility_tz=args.facility_tz, defects=bool(args.defects))
    except ValueError as exc:  # arguments argparse could not judge alone (e.g. a start before 2000)
        parser.error(str(exc))
    end = data.end
    landing_days = args.landing_days or ([date.fromordinal(end.toordinal() - 1)] if args.landing_dir else [])
    if landing_days:
        write_landing_files(data, landing_days, args.landing_dir, fmt=args.landing_format,
                            tables=tuple(args.landing_tables))
    x12_days = (args.x12_days or days_with_rows(data)) if args.x12_dir else []
    x12_files = write_x12_files(data, x12_days, args.x12_dir) if x12_days else []
    source = data
    if args.landing_only and landing_days:
        source = _without_landing_rows(source, landing_days, args.landing_tables)
    if args.x12_only and x12_days:
        source = _without_landing_rows(source, x12_days, ["claims", "remittances"])

    url = args.source_url or settings.source_url()
    if url.startswith("sqlite:///"):
        Path(sa.make_url(url).database or ".").parent.mkdir(parents=True, exist_ok=True)
    write_source(source, url, replace=not args.append)
    truth_path = write_ground_truth(data, args.ground_truth or settings.ground_truth_path())
    reference_files = [] if args.no_reference_files else write_reference_files(
        data, args.reference_dir or default_reference_dir())
    s = data.summary
    if args.summary_json is not None:
        args.summary_json.parent.mkdir(parents=True, exist_ok=True)
        args.summary_json.write_text(json.dumps({
            **{k: v for k, v in s.items() if isinstance(v, int | float | str)},
            "world": data.world, "end": end.isoformat(), "claim_rows": len(data.claims),
            "remittance_rows": len(data.remittances), "source_claim_rows": len(source.claims),
            "source_remittance_rows": len(source.remittances), "x12_files": [str(p) for p in x12_files],
            "reference_files": [str(p) for p in reference_files], "ground_truth": str(truth_path),
        }, indent=1))
    log.info(
        "synthetic source ready: %d claims (%d rows, %d corrected, %d late) %s..%s seed=%d, %d remittance rows, "
        "denial rate %.3f, drift=%s, realism=%s (%d in-place updates, %d appeals, %d late commits), "
        "facility_tz=%s, world=%s, %d X12 files, %d reference files, source=%s, ground_truth=%s",
        s["claims"], s["claim_rows"], s["corrected_claims"], s["late_claim_rows"], args.start.isoformat(),
        end.isoformat(), args.seed, s["remittance_rows"], s["denial_rate"],
        f"{drift.payer_id}/{drift.cpt_family}@{drift.start}" if drift else "none",
        args.realism if data.world == "default" else "none",
        s["in_place_updates"], s["appeals"], s["late_commit_claim_rows"] + s["late_commit_remittance_rows"],
        data.facility_tz, data.world, len(x12_files), len(reference_files),
        sa.make_url(url).render_as_string(hide_password=True), truth_path,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
