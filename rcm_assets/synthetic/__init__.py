"""Synthetic source data with known ground truth (see generator.py for the generating process)."""

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

__all__ = [
    "EFFECTS",
    "GROUND_TRUTH_COLUMNS",
    "REALISM_PRESETS",
    "Drift",
    "Realism",
    "SyntheticData",
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
]
