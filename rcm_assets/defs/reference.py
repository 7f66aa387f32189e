"""reference/*: the reference tables the hospital supplies as files (docs/REFERENCE_DATA.md), one asset each.

The files are the storage (RCM_REFERENCE_DIR, read by the feature resource); each materialization validates
its file against the table's contract and records its rows and content version, or "not supplied" when the
hospital has no such file (never an error: the features learn the value or mark it unknown). A file that is
present but invalid fails the materialization with the file, line and column. Gold depends on these assets
and records in its metadata the versions that computed each day, so the UI tells which reference content
scored which day; the content versions also enter `feature_version`.
"""

import dagster as dg

from rcm_assets.lib import reference_tables
from rcm_assets.platform import catalog
from rcm_assets.platform.resources import FeatureResource

GROUP = "reference"


def reference_metadata(name: str, tables: reference_tables.ReferenceTables) -> dict[str, object]:
    """What a materialization (and gold) records of one table: supplied or not, rows, content version."""
    frame = tables.table(name)
    version = reference_tables.content_version(name, frame)
    return {"supplied": frame is not None, "rows": 0 if frame is None else len(frame), "content_version": version,
            "file": reference_tables.SPECS[name].file}


def _reference_asset(name: str) -> dg.AssetsDefinition:
    spec = reference_tables.SPECS[name]

    @dg.asset(
        key_prefix=[GROUP],
        name=name,
        description=(f"{spec.description}. Optional file {spec.file} in RCM_REFERENCE_DIR (required columns "
                     f"{', '.join(spec.required)}; optional {', '.join(spec.optional) or 'none'})."),
        group_name=GROUP,
        kinds={"csv"},
        owners=catalog.OWNERS,
        tags=catalog.tags(GROUP, phi=False),
    )
    def _asset(context: dg.AssetExecutionContext, features: FeatureResource) -> dg.MaterializeResult:
        frame = reference_tables.read_table(features.reference_dir, name)
        tables = reference_tables.ReferenceTables(**{name: frame})
        metadata = reference_metadata(name, tables)
        context.log.info(f"reference/{name}: " + (f"{metadata['rows']} rows, content version "
                                                  f"{metadata['content_version']}" if frame is not None
                                                  else f"{spec.file} not supplied"))
        return dg.MaterializeResult(metadata=metadata,
                                    data_version=dg.DataVersion(str(metadata["content_version"])))

    return _asset


payers = _reference_asset("payers")
prior_auth_list = _reference_asset("prior_auth_list")
chargemaster = _reference_asset("chargemaster")
code_categories = _reference_asset("code_categories")
REFERENCE_ASSETS = [payers, prior_auth_list, chargemaster, code_categories]
