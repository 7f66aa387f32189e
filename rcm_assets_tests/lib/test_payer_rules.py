"""Payer prior-auth rules learned from authorization denials (lib/payer_rules): which denial counts, for
which claim version, and from which day a rule is in force (never before its evidence arrived)."""

from __future__ import annotations

import pandas as pd
import pytest

from rcm_assets.lib import features as F
from rcm_assets.lib import payer_rules as R
from rcm_assets.lib.reference_tables import ReferenceTables, normalize
from rcm_assets_tests.conftest import silver_claims

LAB_CPT, IMAGING_CPT = "80053", "70551"
# the hospital's code categories and Aetna's published list (imaging only)
TABLES = ReferenceTables(
    code_categories=normalize("code_categories", pd.DataFrame(
        {"procedure_code": [LAB_CPT, IMAGING_CPT], "category": ["lab", "imaging"]})),
    prior_auth_list=normalize("prior_auth_list", pd.DataFrame({"payer_id": ["AETNA"], "procedure_code": [IMAGING_CPT]})),
)


def claims(n: int, payer: str = "AETNA", cpt: str = LAB_CPT, day: str = "2025-03-01", pa: str | None = None,
           prefix: str = "C") -> pd.DataFrame:
    frame = silver_claims(n, seed=1, day=day)
    return frame.assign(claim_id=[f"{prefix}{i:06d}" for i in range(n)], payer_id=payer, cpt_code=cpt,
                        prior_auth_number=pa)


def remittance(claim_id: str, adjudicated: str, arrived: str, status: str = "denied",
               category: str | None = "authorization") -> dict:
    return {"claim_id": claim_id, "adjudicated_at": pd.Timestamp(adjudicated), "updated_at": pd.Timestamp(arrived),
            "denied": status == "denied", "carc_category": category if status == "denied" else None,
            "dt": pd.Timestamp(arrived).date().isoformat()}


def test_a_denial_is_matched_to_the_version_it_answers_as_submitted() -> None:
    v1 = claims(2)
    # claim C000000 is corrected on 03-10 (version 2 adds the authorization); C000001 gets the authorization
    # written into version 1 in place after the denial: as submitted it had none
    v2 = v1.iloc[[0]].assign(claim_version=2, prior_auth_number="PA9", submitted_at=pd.Timestamp("2025-03-10 09:00"),
                             updated_at=pd.Timestamp("2025-03-10 09:00"), dt="2025-03-10")
    in_place = v1.iloc[[1]].assign(prior_auth_number="PA7", updated_at=pd.Timestamp("2025-03-20"), dt="2025-03-20")
    rows = pd.DataFrame([
        remittance("C000000", "2025-03-05", "2025-03-05 12:00"),   # answers version 1 (before the correction)
        remittance("C000000", "2025-03-25", "2025-03-26 08:00"),   # answers version 2 (has an authorization)
        remittance("C000001", "2025-03-16", "2025-03-16 10:00"),
        remittance("C000001", "2025-04-20", "2025-04-21 10:00"),   # the same version denied again
        remittance("C999999", "2025-03-16", "2025-03-16 10:00"),   # no such claim within the lookback
        remittance("C000001", "2025-03-16", "2025-03-16 11:00", category="eligibility"),
        remittance("C000000", "2025-03-06", "2025-03-06 11:00", status="paid"),
    ])
    out = R.authorization_denials(rows, pd.concat([v1, v2, in_place], ignore_index=True), reference=TABLES)
    got = sorted((r.claim_id, r.claim_version, r.prior_auth_present, r.dt) for r in out.itertuples())
    # one row per version and arrival day (a range run stores what day-by-day runs store)
    assert got == [("C000000", 1, 0, "2025-03-05"), ("C000000", 2, 1, "2025-03-26"),
                   ("C000001", 1, 0, "2025-03-16"), ("C000001", 1, 0, "2025-04-21")]
    # ... and the rules count a version once, however often it was denied
    twice = out[out["claim_id"] == "C000001"].assign(arrived_at=pd.to_datetime(["2025-03-16", "2025-04-21"]))
    rules = R.rules_in_force(twice, ["2025-05-01"], F.FeatureConfig(learned_rule_min_denials=2))
    assert rules.empty
    assert set(out["payer_id"]) == {"AETNA"} and set(out["cpt_family"]) == {"lab"}
    assert out["reference_requires"].eq(0).all()
    # without the hospital's categories the segment is the code's public CPT section
    plain = R.authorization_denials(rows, pd.concat([v1, v2, in_place], ignore_index=True))
    assert set(plain["cpt_family"]) == {"pathology_lab"}


def test_a_denial_of_a_code_on_the_published_list_is_not_evidence_of_a_new_policy() -> None:
    imaging = claims(3, cpt=IMAGING_CPT)
    rows = pd.DataFrame([remittance(f"C00000{i}", "2025-03-05", f"2025-03-0{5 + i} 12:00") for i in range(3)])
    out = R.authorization_denials(rows, imaging, reference=TABLES)
    assert out["reference_requires"].eq(1).all() and set(out["cpt_family"]) == {"imaging"}
    assert R.rules_in_force(out, ["2025-04-01"]).empty


def denials(arrivals: list[str], payer: str = "AETNA", family: str = "lab", pa: int = 0, reference: int = 0
            ) -> pd.DataFrame:
    return pd.DataFrame({
        "claim_id": [f"D{i}" for i in range(len(arrivals))], "claim_version": 1,
        "adjudicated_at": pd.to_datetime(arrivals), "arrived_at": pd.to_datetime(arrivals),
        "payer_id": payer, "cpt_family": family, "prior_auth_present": pa, "reference_requires": reference,
        "dt": [a[:10] for a in arrivals]})


def test_a_rule_is_in_force_from_the_day_after_its_third_denial_arrived_until_they_leave_the_window() -> None:
    d = denials(["2025-04-19 17:00", "2025-04-22 15:00", "2025-04-22 23:00", "2025-04-25 01:00"])
    days = [day.date().isoformat() for day in pd.date_range("2025-04-20", "2025-10-25")]
    rules = R.rules_in_force(d, days)
    in_force = sorted(rules["dt"])
    assert in_force[0] == "2025-04-23"  # the third arrived on 04-22: not known on 04-22 itself
    # the window is the 180 days before: the third-latest denial (04-22) leaves it after 10-18
    assert in_force[-1] == "2025-10-19" and len(in_force) == (pd.Timestamp("2025-10-19") - pd.Timestamp("2025-04-23")).days + 1
    first = rules.iloc[0]
    assert first["denials"] == 3 and first["first_arrival"] == pd.Timestamp("2025-04-19 17:00")
    assert list(R.new_rules(rules, "2025-04-23")["payer_id"]) == ["AETNA"]
    assert R.new_rules(rules, "2025-04-24").empty
    sentence = R.describe(first)
    assert sentence.startswith("AETNA denied 3 lab claims without prior authorization") and "D0" not in sentence


@pytest.mark.parametrize("kind", ["with prior auth", "reference already requires", "two denials"])
def test_no_rule_from_denials_that_are_not_evidence_of_a_new_policy(kind: str) -> None:
    arrivals = ["2025-04-10 10:00", "2025-04-11 10:00", "2025-04-12 10:00"]
    d = {"with prior auth": denials(arrivals, pa=1),  # denied although authorized: not a missing-auth policy
         "reference already requires": denials(arrivals, family="imaging", reference=1),
         "two denials": denials(arrivals[:2])}[kind]
    assert R.rules_in_force(d, ["2025-04-20"]).empty


def test_the_features_treat_a_learned_segment_as_requiring_prior_auth_on_the_rule_days_only() -> None:
    lab = pd.concat([claims(20, day="2025-04-22"), claims(20, day="2025-04-23", prefix="E"),
                     claims(20, day="2025-04-23", prefix="P", pa="PA1"),
                     claims(20, day="2025-04-23", payer="CIGNA", prefix="G"),
                     claims(20, day="2025-04-23", cpt=IMAGING_CPT, prefix="I")], ignore_index=True)
    view = F.decision_time_view(lab)
    rules = R.rules_in_force(denials(["2025-04-19 17:00", "2025-04-22 15:00", "2025-04-22 23:00"]),
                             ["2025-04-22", "2025-04-23"])
    learned = F.compute_features(view, learned_rules=rules, reference=TABLES)
    plain = F.compute_features(view, reference=TABLES)
    changed = ((learned != plain) & ~(learned.isna() & plain.isna())).any(axis=1)  # unknown equals unknown
    # exactly the AETNA lab claims of 04-23: required, and missing where they carry no authorization (the
    # imaging claims were required already: Aetna's published list)
    assert set(lab.loc[changed, "claim_id"].str[0]) == {"E", "P"}
    assert plain.loc[lab["claim_id"].str[0].eq("I").to_numpy(), "prior_auth_required"].eq(1).all()
    on_rule_day = lab["claim_id"].str[0].isin(["E", "P"]).to_numpy()
    assert learned.loc[on_rule_day, "prior_auth_required"].eq(1).all()
    assert list(learned.loc[on_rule_day, "prior_auth_missing"].unique()) in ([1, 0], [0, 1])
    assert learned.loc[lab["claim_id"].str[0].eq("P").to_numpy(), "prior_auth_missing"].eq(0).all()
    assert (learned["feature_version"] == plain["feature_version"]).all()  # rules are data, not a new version


def test_no_new_rule_on_a_day_without_rules() -> None:
    fresh = R.new_rules(R.empty_rules(), "2025-04-23")
    assert fresh.empty and list(fresh.columns) == R.RULE_COLUMNS
