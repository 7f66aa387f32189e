"""Plumbing every layer uses: the Hive Parquet IO manager, resources, Dagster types, the instance,
the dry-run lake and the JSON log format. Imports `rcm_assets.lib` only, never the layers."""
