"""Synthetic source data with known ground truth (see generator.py for the generating process)."""

from rcm_assets.synthetic.generator import (
    EFFECTS,
    GROUND_TRUTH_COLUMNS,
    Drift,
    SyntheticData,
    generate,
    landing_rows,
    source_metadata,
    storage_columns,
    write_ground_truth,
    write_landing_file,
    write_source,
)

__all__ = [
    "EFFECTS",
    "GROUND_TRUTH_COLUMNS",
    "Drift",
    "SyntheticData",
    "generate",
    "landing_rows",
    "source_metadata",
    "storage_columns",
    "write_ground_truth",
    "write_landing_file",
    "write_source",
]
