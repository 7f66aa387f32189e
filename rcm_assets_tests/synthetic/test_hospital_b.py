"""World "hospital B": rules of its own drawn from generator parameters, the same source schema, defects.

`b` is one month of 1,000 claims a day (about 3 s); the checks that need another window build their own."""

from __future__ import annotations

import re
import sqlite3
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rcm_assets.lib import code_sets
from rcm_assets.synthetic import hospital_b as hb
from rcm_assets.synthetic import write_ground_truth, write_source
from rcm_assets.synthetic.hospital_b import build_world, generate_hospital_b
from rcm_assets_tests.synthetic.test_synthetic import _assert_conforms

PACKAGE = Path(hb.__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def b():
    return generate_hospital_b(date(2025, 1, 1), 30, 1000, seed=3)


def test_hospital_b_is_deterministic_per_seed():
    one = generate_hospital_b("2025-03-01", 6, 150, seed=11)
    two = generate_hospital_b("2025-03-01", 6, 150, seed=11)
    other = generate_hospital_b("2025-03-01", 6, 150, seed=12)
    for table in ("claims", "remittances", "ground_truth"):
        pd.testing.assert_frame_equal(getattr(one, table), getattr(two, table))
    assert not one.claims["billed_amount"].equals(other.claims["billed_amount"])
    # the world (payers, codes, rules) is fixed by world_seed, not by the data seed
    assert set(one.claims["payer_id"]) | set(other.claims["payer_id"]) <= set(build_world().payer_ids)
    assert build_world(5).payer_ids != build_world().payer_ids


def test_hospital_b_has_at_least_2000_valid_codes_and_bills_them(b):
    world = build_world()
    grammar = re.compile(code_sets.rule("cpt_hcpcs_code").pattern)
    assert len(set(world.codes)) == len(world.codes) >= 2000
    assert all(grammar.fullmatch(c) for c in world.codes)
    letters = {c[0] for c in world.codes if c[0].isalpha()}
    assert letters >= set("ABCEGHJKLQSTV")  # HCPCS Level II sections
    assert any(c.endswith("T") for c in world.codes)  # CPT Category III
    assert b.claims["cpt_code"].nunique() >= 2000  # a month of 1,000 claims a day uses most of them


def test_hospital_b_payers_are_numeric_ids(b):
    for seed in (hb.DEFAULT_WORLD_SEED, 1, 2, 3):
        ids = build_world(seed).payer_ids
        assert 15 <= len(ids) <= 40
        assert all(re.fullmatch(r"[1-9]\d{4}", p) for p in ids)
    assert b.claims["payer_id"].str.fullmatch(r"\d{5}").all()
    assert b.claims["payer_id"].nunique() >= 15


@pytest.mark.parametrize("seed", [3, 4])
def test_hospital_b_denial_rate_is_realistic(b, seed):
    data = b if seed == 3 else generate_hospital_b(date(2025, 6, 1), 15, 800, seed=seed)
    truth = data.ground_truth[data.ground_truth["adjudicated"]]
    assert 0.08 <= truth["denied"].mean() <= 0.20
    assert 0.08 <= truth["true_denial_probability"].mean() <= 0.20
    first = data.remittances.drop_duplicates("claim_id")  # the first adjudication of every claim
    assert 0.08 <= (first["claim_status"] == "denied").mean() <= 0.20


def test_hospital_b_source_follows_the_registry_without_defects():
    data = generate_hospital_b(date(2025, 1, 1), 8, 300, seed=5, defects=False)
    _assert_conforms(data.claims, "claims")
    _assert_conforms(data.remittances, "remittances")
    npi_ok = code_sets.npi_check_digit_ok
    assert data.claims["rendering_npi"].map(npi_ok).all() and data.claims["billing_npi"].map(npi_ok).all()
    assert not data.ground_truth["cause_defect"].any()


def test_every_hidden_rule_causes_denials(b):
    truth = b.ground_truth[b.ground_truth["adjudicated"]]
    base = truth["true_denial_probability"].mean()
    for cause in ("cause_missing_prior_auth", "cause_dx_inconsistent", "cause_modifier_rule",
                  "cause_frequency_limit", "cause_timely_filing", "cause_defect", "cause_high_charge",
                  "cause_eligibility_unverified"):
        hit = truth[truth[cause]]
        assert len(hit) >= 30, cause
        assert hit["true_denial_probability"].mean() > base + 0.12, cause
    carcs = set(truth["denial_carc"].dropna())
    assert {"197", "11", "4", "119", "29", "16", "27", "45"} <= carcs


def test_dx_edits_are_payer_specific_and_prior_auth_is_payer_by_code():
    w = build_world()
    # the same code group x diagnosis chapter is accepted by some payers and denied by others
    differs = w.consistent.any(axis=0) & ~w.consistent.all(axis=0)
    assert differs.sum() >= 20
    # prior auth differs between codes of one section at one payer (not a payer x family grid)
    surgery = np.array([s == "surgery" for s in w.code_section])
    payer = int(np.argmax(w.pa_required.sum(axis=1)))
    assert 0 < w.pa_required[payer, surgery].mean() < 1


def test_modifier_25_without_em_is_denied_only_at_payers_with_the_rule(b):
    w = build_world()
    claims = b.claims[b.claims["claim_version"] == 1].reset_index(drop=True)
    truth = b.ground_truth[b.ground_truth["claim_version"] == 1].reset_index(drop=True)
    assert (claims["claim_id"] == truth["claim_id"]).all()
    has25 = claims["modifiers"].fillna("").str.split(",").map(lambda m: "25" in m)
    em = truth["procedure_group"] == "em"
    denying = claims["payer_id"].map(dict(zip(w.payer_ids, w.deny_25_without_em, strict=True)))
    assert truth["cause_modifier_rule"].equals(has25 & ~em & denying)
    assert (has25 & ~em & ~denying).sum() > 0 and (has25 & ~em & denying).sum() > 0


def test_frequency_limit_counts_the_members_earlier_claims_of_the_code():
    data = generate_hospital_b(date(2025, 1, 1), 20, 400, seed=8, defects=False)
    w = build_world()
    c = data.claims[data.claims["claim_version"] == 1].drop_duplicates(["claim_id"]).reset_index(drop=True)
    t = data.ground_truth[data.ground_truth["claim_version"] == 1].set_index("claim_id")
    code_index = {code: k for k, code in enumerate(w.codes)}
    payer_index = {p: k for k, p in enumerate(w.payer_ids)}
    k = c["cpt_code"].map(code_index)
    c = c.assign(limit=w.freq_limit[k], window=w.freq_window[k],
                 applies=w.freq_payer[c["payer_id"].map(payer_index)], day=c["service_date"])
    limited = c[c["limit"] > 0]
    checked = 0
    for (_member, _code), rows in limited.groupby(["member_id", "cpt_code"]):
        if len(rows) < 2:
            continue
        rows = rows.sort_values("day", kind="stable")
        for i, row in enumerate(rows.itertuples()):
            prior = rows.iloc[:i]
            within = (prior["day"] >= row.day - pd.Timedelta(days=int(row.window))).sum()
            expected = bool(row.applies) and within >= row.limit
            same_day = (rows["day"] == row.day).sum() > 1
            if not same_day:  # same-day order is the generator's; skip the ties
                assert t.loc[row.claim_id, "cause_frequency_limit"] == expected, row.claim_id
                checked += 1
    assert checked >= 50
    assert 0.002 < t["cause_frequency_limit"].mean() < 0.05
    # series repeat earlier claims spread over the past, not one claim over and over
    assert c.groupby(["member_id", "cpt_code"]).size().max() < 0.005 * len(c)


def test_defects_are_rare_flagged_in_truth_and_raise_the_denial_probability(b):
    first = b.claims["claim_version"] == 1
    truth = b.ground_truth
    kinds = truth.loc[truth["claim_version"] == 1, "defect_kind"].value_counts()
    for kind in hb.DEFECT_KINDS:
        assert 0.001 <= kinds.get(kind, 0) / first.sum() <= 0.01, kind
    claims = b.claims.set_index(["claim_id", "claim_version"])
    kind = truth.set_index(["claim_id", "claim_version"])["defect_kind"]
    rows = claims.loc[kind.index]
    npi_ok = rows["rendering_npi"].map(code_sets.npi_check_digit_ok)
    assert (~npi_ok == (kind == "test_npi")).all()  # a test NPI: right shape, wrong check digit
    assert rows["rendering_npi"].str.fullmatch(r"\d{10}").all()
    icd10 = rows["icd10_primary"].str.fullmatch(code_sets.rule("icd10cm_format").pattern)
    assert (~icd10 == (kind == "icd9_after_cutoff")).all()  # the whole world is after 2015-10-01
    assert (rows["patient_dob"].isna() == (kind == "missing_dob")).all()
    p = truth.set_index(["claim_id", "claim_version"])["true_denial_probability"]
    assert p[kind.notna()].mean() > p[kind.isna()].mean() + 0.25
    # a correction fixes the defect
    v2 = truth[truth["claim_version"] == 2]
    assert v2["defect_kind"].isna().mean() > 0.85


def test_services_before_october_2015_carry_icd9():
    data = generate_hospital_b(date(2015, 9, 20), 30, 100, seed=2, defects=False)
    c = data.claims
    before = c["service_date"] < pd.Timestamp("2015-10-01")
    icd9 = c["icd10_primary"].str.fullmatch(r"\d{3}\.\d{2}|V\d{2}\.\d")
    assert before.sum() > 100 and (~before).sum() > 100
    assert icd9[before].all()
    assert not icd9[~before].any()


def test_default_world_has_no_defects_by_default():
    """Until silver flags defects instead of rejecting (the `defects` helper), only hospital B has them."""
    from rcm_assets.synthetic import generate

    data = generate(date(2025, 1, 1), 5, 200, seed=1)
    assert data.claims["patient_dob"].notna().all()
    assert data.claims["rendering_npi"].map(code_sets.npi_check_digit_ok).all()
    assert data.world == "default"


def test_hospital_b_writes_to_sqlite_with_its_null_birth_dates(b, tmp_path):
    url = f"sqlite:///{tmp_path / 'source.db'}"
    write_source(b, url)
    truth = write_ground_truth(b, tmp_path / "truth.parquet")
    with sqlite3.connect(tmp_path / "source.db") as conn:
        n, missing = conn.execute("SELECT count(*), sum(patient_dob IS NULL) FROM claims").fetchone()
    assert n == len(b.claims) and missing == b.claims["patient_dob"].isna().sum() > 0
    assert pd.read_parquet(truth)["world"].eq("hospital_b").all()


def test_hospital_b_truth_lives_only_in_synthetic():
    """Neither B's rules nor its payer ids appear in any module outside synthetic/ (the layout test
    forbids the imports)."""
    w = build_world()
    needles = ("build_world", "HospitalB", "generate_hospital_b", "EFFECTS_B", *w.payer_ids[:5])
    for path in PACKAGE.rglob("*.py"):
        if "synthetic" in path.relative_to(PACKAGE).parts:
            continue
        text = path.read_text()
        for needle in needles:
            assert needle not in text, f"{path}: {needle}"


def test_hospital_b_as_x12_omits_dmg_without_birth_date_and_marks_icd9(tmp_path):
    from rcm_assets.synthetic import write_x12_files

    data = generate_hospital_b(date(2015, 9, 28), 12, 150, seed=1)
    files = write_x12_files(data, None, tmp_path)
    text = "".join(p.read_text() for p in files if p.suffix == ".837")
    assert "NaT" not in text
    claims_sent = text.count("CLM*")
    missing = data.claims["patient_dob"].isna().sum()
    assert missing > 0 and text.count("DMG*D8*") == claims_sent - missing
    assert "HI*BK:" in text and "HI*ABK:" in text  # ICD-9 before 2015-10-01, ICD-10 after


def test_default_world_defects_are_opt_in_and_raise_the_denial_probability():
    from rcm_assets.synthetic import generate

    clean = generate(date(2015, 9, 1), 40, 300, seed=6)
    data = generate(date(2015, 9, 1), 40, 300, seed=6, defects=True)
    truth = data.ground_truth
    kind = truth.set_index(["claim_id", "claim_version"])["defect_kind"]
    first = truth["claim_version"] == 1
    for k in ("test_npi", "missing_dob"):
        assert 0.001 <= (truth.loc[first, "defect_kind"] == k).mean() <= 0.01, k
    assert (truth.loc[first, "defect_kind"] == "icd9_after_cutoff").sum() > 0  # services from 2015-10-01 only
    rows = data.claims.set_index(["claim_id", "claim_version"])
    kinds = kind.reindex(rows.index)
    assert (~rows["rendering_npi"].map(code_sets.npi_check_digit_ok) == (kinds == "test_npi")).all()
    assert (rows["patient_dob"].isna() == (kinds == "missing_dob")).all()
    before = rows["service_date"] < pd.Timestamp("2015-10-01")
    icd9 = rows["icd10_primary"].str.fullmatch(r"\d{3}\.\d{2}|V\d{2}\.\d")
    assert icd9[before].all() and (icd9[~before] == (kinds[~before] == "icd9_after_cutoff")).all()
    p = truth.set_index(["claim_id", "claim_version"])["true_denial_probability"]
    assert p[kind.notna()].mean() > p[kind.isna()].mean() + 0.25
    assert (truth.loc[truth["defect_kind"].notna() & truth["denied"], "denial_carc"] == "16").mean() > 0.5
    # a defect changes only its own claims: the other versions keep the clean world's probabilities
    same = clean.ground_truth.set_index(["claim_id", "claim_version"])["true_denial_probability"]
    assert np.allclose(same[kind.isna()], p[kind.isna()])
