"""Synthetic source data with known ground truth (see generator.py for the generating process) and the
same rows as X12 837/835 files (x12.py)."""

from rcm_assets.synthetic.generator import (
    EFFECTS,
    GROUND_TRUTH_COLUMNS,
    REALISM_PRESETS,
    Drift,
    Realism,
    SyntheticData,
    generate,
    landing_rows,
    source_as_of,
    source_metadata,
    storage_columns,
    write_ground_truth,
    write_landing_file,
    write_landing_files,
    write_resent_landing_files,
    write_source,
)
from rcm_assets.synthetic.x12 import days_with_rows, write_x12_files

__all__ = [
    "EFFECTS",
    "GROUND_TRUTH_COLUMNS",
    "REALISM_PRESETS",
    "Drift",
    "Realism",
    "SyntheticData",
    "days_with_rows",
    "generate",
    "landing_rows",
    "source_as_of",
    "source_metadata",
    "storage_columns",
    "write_ground_truth",
    "write_landing_file",
    "write_landing_files",
    "write_resent_landing_files",
    "write_source",
    "write_x12_files",
]
