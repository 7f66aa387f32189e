"""Claim ids are patient account numbers (a HIPAA identifier, 45 CFR 164.514(b)(2)(i)(J)): every table that
stores them is classified PHI in its tags, as the registry classifies the column (issue 26.5)."""

from __future__ import annotations

import pyarrow.parquet as pq

from rcm_assets.definitions import defs
from rcm_assets.lib.columns import identifier_column_names, phi_tag_column_names


def test_claim_ids_are_classified_as_identifiers():
    assert "claim_id" in identifier_column_names() and "claim_id" in phi_tag_column_names()
    assert "member_id" in phi_tag_column_names()


def test_every_stored_table_holding_claim_ids_is_tagged_phi(pipeline):
    """Read the lake the whole graph wrote: a table whose files hold a claim id is tagged phi=yes."""
    tags = {tuple(n.key.path): n.tags.get("phi") for n in defs.resolve_asset_graph().asset_nodes}
    lake = pipeline.data_dir / "lake"
    holding = {}
    for part in lake.rglob("part-0.parquet"):
        key = tuple(part.relative_to(lake).parent.parent.parts)
        if key in tags:
            holding[key] = holding.get(key, False) or bool(
                set(pq.read_schema(part).names) & phi_tag_column_names())
    assert sum(holding.values()) >= 6  # bronze, silver, gold, predictions, worklist at least
    untagged = sorted("/".join(k) for k, holds in holding.items() if holds and tags[k] != "yes")
    assert not untagged, f"tables holding claim ids tagged phi=no: {untagged}"
