"""Synthetic source data with known ground truth (see generator.py for the generating process) and the
same rows as X12 837/835 files (x12.py). Two worlds: the default one (its truth in world.py) and
"hospital B" (hospital_b.py: numeric payers, 2,700 codes, rules of its own). reference_files.py writes the
partial reference files a hospital would have. Nothing outside synthetic/ imports this package: the demo runs
`python -m rcm_assets.synthetic` in a subprocess (tests/test_layout.py)."""

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
from rcm_assets.synthetic.hospital_b import build_world, generate_hospital_b
from rcm_assets.synthetic.reference_files import reference_tables, write_reference_files
from rcm_assets.synthetic.x12 import days_with_rows, write_x12_files

__all__ = [
    "EFFECTS",
    "GROUND_TRUTH_COLUMNS",
    "REALISM_PRESETS",
    "Drift",
    "Realism",
    "SyntheticData",
    "build_world",
    "days_with_rows",
    "generate",
    "generate_hospital_b",
    "landing_rows",
    "reference_tables",
    "source_as_of",
    "source_metadata",
    "storage_columns",
    "write_ground_truth",
    "write_landing_file",
    "write_landing_files",
    "write_reference_files",
    "write_resent_landing_files",
    "write_source",
    "write_x12_files",
]
