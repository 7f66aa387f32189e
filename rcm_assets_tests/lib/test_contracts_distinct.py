"""The contracts' code-set checks judge each distinct value once (issue 16.2: silver's cost at a year of
claims), with the same verdict per row as judging every row."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from rcm_assets.lib import code_sets, contracts
from rcm_assets.lib.transforms import build_silver_claims
from rcm_assets.synthetic import generate
from rcm_assets_tests.conftest import PHI_TEST_KEY, to_bronze


def test_code_rules_see_each_distinct_value_once(monkeypatch):
    bronze = to_bronze(generate(start=date(2025, 3, 1), days=1, claims_per_day=300, seed=5).claims)
    assert bronze["payer_id"].nunique() < len(bronze)  # codes repeat across rows
    seen: list[pd.Series] = []
    valid = code_sets.CodeRule.valid

    def recording(rule, codes):
        seen.append(codes)
        return valid(rule, codes)

    monkeypatch.setattr(code_sets.CodeRule, "valid", recording)
    result = build_silver_claims(bronze, PHI_TEST_KEY)
    assert len(result.good) == len(bronze) and seen
    assert all(s.dropna().is_unique for s in seen)  # never a repeated value: one verdict per code


def test_distinct_verdicts_spread_to_every_row_as_row_by_row_ones():
    """Mixed values (valid, invalid, non-text, nulls, repeats) get exactly the row-wise verdicts, and a
    value reported under an earlier rule is not reported again."""
    checks = contracts.rule_checks(["x12_claim_id"])
    values = pd.Series(["C-1", "C-1", "-bad", None, 7, "C-1", "-bad", np.nan, "OK9"] * 3,
                       index=range(100, 127), dtype="object")
    got = checks[0]._check_fn(values)
    rule = code_sets.rule("x12_claim_id")
    want = [v is None or (isinstance(v, float) and np.isnan(v)) or rule.is_valid(v) for v in values]
    assert got.index.equals(values.index)
    assert got.tolist() == want and not all(want)
