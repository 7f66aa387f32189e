"""The whole graph over the synthetic source: every run succeeds and every layer lands in the lake."""

from __future__ import annotations

import pandas as pd


def test_every_run_of_the_pipeline_succeeds(pipeline):
    for label, result in pipeline.results.items():
        failed = [e.check_name for e in result.get_asset_check_evaluations()
                  if not e.passed and e.severity.value == "ERROR"]
        assert result.success, f"{label} run failed (failed blocking checks: {failed})"


def test_each_layer_has_hive_partitions_in_the_lake(pipeline):
    lake = pipeline.data_dir / "lake"
    first = pipeline.source.start.isoformat()
    for parts in (("bronze", "claims"), ("bronze", "remittances"), ("silver", "claims"),
                  ("silver", "claims_rejects"), ("silver", "remittances"), ("gold", "claim_features")):
        assert (lake.joinpath(*parts) / f"dt={first}" / "part-0.parquet").is_file(), parts
    week = pipeline.weeks[0]
    assert (lake / "model" / "denial_model" / f"week={week}" / "part-0.parquet").is_file()
    scores = pd.read_parquet(lake / "predictions" / "claim_denial_scores" / f"dt={week}" / "part-0.parquet")
    assert len(scores) > 0 and scores["denial_probability"].between(0, 1).all()
