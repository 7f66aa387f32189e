"""The contracts' code-set checks judge each distinct value once (issue 16.2: silver's cost at a year of
claims), with the same verdict per row as judging every row."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.engines import pandas_engine

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


# --------------------------------------------------------------------------------------------------
# text dtype, regexes and dedupe without per-row Python work (issue 16: silver at 20,000 claims a day)


def _failures(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> list[tuple]:
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
        return sorted(zip(cases["column"].astype(str), cases["check"].astype(str), cases["index"].astype(str),
                          strict=True))
    return []


MIXED = pd.Series(["C-1", None, 7, np.nan, "C-2", b"x", "C-1", 3.5], dtype="object")


def test_text_dtype_reports_the_same_failing_rows_as_pandera_str():
    fast = pa.DataFrameSchema({"a": pa.Column(contracts.STR, nullable=True)})
    plain = pa.DataFrameSchema({"a": pa.Column(str, nullable=True)})
    frame = pd.DataFrame({"a": MIXED})
    assert _failures(fast, frame) == _failures(plain, frame) == [
        ("a", "dtype('str')", "2"), ("a", "dtype('str')", "5"), ("a", "dtype('str')", "7")]
    texts = pd.DataFrame({"a": pd.Series(["x", None, "y", np.nan], dtype="object")})
    assert _failures(fast, texts) == _failures(plain, texts) == []
    assert str(contracts.STR) == "str"  # reports and the UI schema still name it `str`


def test_text_dtype_judges_an_all_text_column_without_looking_at_each_element(monkeypatch):
    def element_wise(*_args, **_kwargs):
        raise AssertionError("element-wise str check ran on an all-text column")

    monkeypatch.setattr(pandas_engine.NpString, "check", element_wise)
    schema = pa.DataFrameSchema({"a": pa.Column(contracts.STR, nullable=True)})
    schema.validate(pd.DataFrame({"a": pd.Series(["x", None, "y"] * 50, dtype="object")}))


def test_distinct_regex_check_gives_pandera_str_matches_verdicts_per_row():
    pattern = r"^C-\d$"
    values = pd.concat([MIXED] * 4, ignore_index=True)  # repeats: the distinct path is taken
    fast = pa.DataFrameSchema({"a": pa.Column(object, nullable=True, checks=contracts.str_matches(pattern))})
    plain = pa.DataFrameSchema({"a": pa.Column(object, nullable=True, checks=pa.Check.str_matches(pattern))})
    frame = pd.DataFrame({"a": values})
    got = _failures(fast, frame)
    assert got == _failures(plain, frame) and len(got) == 4 * 3
    assert {c for _, c, _ in got} == {f"str_matches('{pattern}')"}
    distinct = pd.DataFrame({"a": pd.Series([f"C-{i}" for i in range(10)] + ["bad"], dtype="object")})
    assert _failures(fast, distinct) == _failures(plain, distinct) == [("a", f"str_matches('{pattern}')", "10")]


def test_dedupe_keeps_the_last_ingested_copy_of_each_state_in_row_order():
    bronze = to_bronze(generate(start=date(2025, 3, 1), days=1, claims_per_day=60, seed=9).claims)
    bronze = bronze.drop_duplicates(["claim_id", "claim_version", "updated_at"]).reset_index(drop=True)
    later = bronze.iloc[[5, 2]].assign(_ingested_at=bronze["_ingested_at"].iloc[0] + pd.Timedelta(hours=1),
                                       _run_id="later")
    tie = bronze.iloc[[7]].assign(_run_id="tie")  # same _ingested_at: the row delivered later wins
    earlier = bronze.iloc[[9]].assign(_ingested_at=bronze["_ingested_at"].iloc[0] - pd.Timedelta(hours=1),
                                      _run_id="earlier")
    frame = pd.concat([bronze, later, tie, earlier], ignore_index=True)
    good = build_silver_claims(frame, PHI_TEST_KEY).good
    assert len(good) == len(bronze)
    # the reference: rank by (state, _ingested_at) and keep the last, in the rows' order
    keys = ["dt", "claim_id", "claim_version", "updated_at"]
    ranked = frame.sort_values([*keys, "_ingested_at"], kind="stable").drop_duplicates(keys, keep="last")
    assert good["claim_id"].tolist() == frame.loc[ranked.index.sort_values(), "claim_id"].tolist()
    by_claim = good.set_index("claim_id")["_run_id"]
    assert by_claim[bronze.loc[5, "claim_id"]] == by_claim[bronze.loc[2, "claim_id"]] == "later"
    assert by_claim[bronze.loc[7, "claim_id"]] == "tie" and by_claim[bronze.loc[9, "claim_id"]] == "run-test"


def test_rule_checks_let_nulls_through_themselves_in_a_schema():
    """Rule and regex checks run on the whole column, nulls included (no pandera null-dropping copy per
    check): nulls pass, non-null values get the rule's verdict, as with pandera's own null handling."""
    rule = code_sets.rule("x12_claim_id")
    reference = pa.Check(lambda s: s.map(rule.is_valid).astype(bool), name=rule.name)  # pandera drops nulls
    fast = pa.DataFrameSchema({"a": pa.Column(object, nullable=True, checks=contracts.rule_checks([rule.name]))})
    plain = pa.DataFrameSchema({"a": pa.Column(object, nullable=True, checks=[reference])})
    frame = pd.DataFrame({"a": pd.concat([MIXED, pd.Series(["-bad", None, "OK9"], dtype="object")] * 3,
                                         ignore_index=True)})
    got = _failures(fast, frame)
    assert got == _failures(plain, frame) and got
    assert all(frame.loc[int(i), "a"] is not None for _, _, i in got)
