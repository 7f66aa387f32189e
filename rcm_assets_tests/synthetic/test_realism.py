"""The realism layer of the synthetic generator: each part on by default, switchable, deterministic,
and the ground truth still that of the first submission."""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from rcm_assets.lib.columns import source_column_names, source_columns
from rcm_assets.synthetic import (
    GROUND_TRUTH_COLUMNS,
    REALISM_PRESETS,
    Realism,
    generate,
    landing_rows,
    source_as_of,
    write_landing_file,
    write_landing_files,
    write_resent_landing_files,
    write_source,
)
from rcm_assets.synthetic import generator as gen
from rcm_assets.synthetic import world as ref
from rcm_assets_tests.synthetic.test_synthetic import _assert_conforms

START = date(2025, 1, 1)
KEYS = ["claim_id", "claim_version"]
CLAIM_ID_RE = r"[A-Za-z0-9][A-Za-z0-9-]{0,37}"
ICD_GRAMMAR_RE = r"[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?"
# what each realism field switches on, as seen in the source (used by the switch-off tests)
ID_SHAPES = {
    "legacy": r"C\d{10}",
    "date_seq": r"\d{13}",
    "org_account": r"[A-Z]+-\d{10}-01",
    "clm": r"CLM\d{13}",
    "patient_encounter": r"PAT\d+-ENC\d+",
    "long": r"[A-Z]+-\d{8}-\d{10}-\d{7}",
}


@pytest.fixture(scope="module")
def real():
    return generate(START, days=60, claims_per_day=400, seed=21)


@pytest.fixture(scope="module")
def heavy():
    return generate(START, days=30, claims_per_day=300, seed=22, realism="heavy", facility_tz="America/Chicago")


def _first_states(d) -> pd.DataFrame:
    return d.claims.drop_duplicates(KEYS, keep="first")


def _shape(claim_id: str) -> str:
    return next(name for name, pattern in ID_SHAPES.items() if re.fullmatch(pattern, claim_id))


# --- presets, validation, determinism ----------------------------------------------------------------


def test_presets_and_validation():
    assert Realism() == Realism.preset("none") == REALISM_PRESETS["none"]
    default, heavy = Realism.preset("default"), Realism.preset("heavy")
    for f in dataclasses.fields(Realism):
        assert getattr(default, f.name) > 0, f.name
        assert getattr(heavy, f.name) >= getattr(default, f.name), f.name
    with pytest.raises(ValueError, match="unknown realism preset"):
        Realism.preset("extreme")
    with pytest.raises(ValueError, match="rate in"):
        Realism(appeal_rate=1.5)
    with pytest.raises(ValueError, match="rate in"):
        Realism(zip4_rate=-0.1)
    with pytest.raises(ValueError, match="professional"):
        Realism(hcpcs_rate=0.4, institutional_rate=0.2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        default.appeal_rate = 0.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        generate(START, 2, 10, seed=1, realism="extreme")
    with pytest.raises(ValueError, match="time zone"):
        generate(START, 2, 10, seed=1, facility_tz="Mars/Olympus_Mons")


@pytest.mark.parametrize("kwargs", [{}, {"realism": "heavy", "facility_tz": "America/New_York"}])
def test_same_seed_same_world(kwargs):
    a = generate(START, 8, 250, seed=5, **kwargs)
    b = generate(START, 8, 250, seed=5, **kwargs)
    for name in ("claims", "remittances", "ground_truth"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    for table in ("claims", "remittances"):
        pd.testing.assert_series_equal(a.committed_at[table], b.committed_at[table])
    assert a.summary == b.summary
    c = generate(START, 8, 250, seed=6, **kwargs)
    assert not a.claims["claim_id"].equals(c.claims["claim_id"])


def test_realism_never_changes_the_clean_outcomes(real):
    """Realism parts drawn after the outcomes (updates, appeals, ids, commits, ZIP+4) leave the
    probabilities and labels of the clean world as they were."""
    layered = Realism.preset("default")
    only_late_parts = dataclasses.replace(layered, hcpcs_rate=0.0, icd_full_grammar_rate=0.0,
                                          institutional_rate=0.0)
    a = generate(START, 10, 300, seed=4, realism=only_late_parts)
    b = generate(START, 10, 300, seed=4, realism="none")
    cols = ["claim_version", "true_denial_probability", "denied", "adjudicated", "denial_carc"]
    pd.testing.assert_frame_equal(a.ground_truth[cols], b.ground_truth[cols])


def test_frames_follow_the_widened_registry(real, heavy):
    for d in (real, heavy):
        _assert_conforms(d.claims, "claims")
        _assert_conforms(d.remittances, "remittances")
        assert list(d.ground_truth.columns) == list(GROUND_TRUTH_COLUMNS)


def test_frames_pass_every_code_rule(heavy):
    code_sets = pytest.importorskip("rcm_assets.lib.code_sets")
    for table, frame in (("claims", heavy.claims), ("remittances", heavy.remittances)):
        for col in source_columns(table):
            for name in getattr(col, "rules", ()):
                ok = code_sets.rule(name).valid(frame[col.name])
                assert ok.all(), f"{table}.{col.name} breaks {name}: {frame.loc[~ok, col.name].head().tolist()}"


def test_summary_counts_every_part(real):
    s = real.summary
    for key in ("in_place_updates", "appeals", "appeals_overturned", "hcpcs_claims", "zip4_patients",
                "full_grammar_dx_versions", "non_legacy_claim_ids", "institutional_claims", "claims_over_1m",
                "late_commit_claim_rows", "late_commit_remittance_rows"):
        assert s[key] > 0, key
    assert s["facility_tz"] == "UTC"
    assert s["claim_rows"] == len(real.claims) == len(real.ground_truth) + s["in_place_updates"]


# --- switches: each part off gives none of it ----------------------------------------------------------


def _off(field_name: str):
    return generate(START, 12, 300, seed=8, realism=dataclasses.replace(Realism.preset("heavy"), **{field_name: 0.0}))


def _late(d, table: str) -> pd.Series:
    upd = d.claims["updated_at"] if table == "claims" else d.remittances["updated_at"]
    cutoff = upd.dt.normalize() + pd.Timedelta(days=1, hours=2)
    return d.committed_at[table] > cutoff


ABSENT = {
    "in_place_update_rate": lambda d: not d.claims.duplicated(KEYS).any() and d.summary["in_place_updates"] == 0,
    "appeal_rate": lambda d: d.ground_truth["appeal_status"].isna().all() and d.summary["appeals"] == 0,
    "hcpcs_rate": lambda d: d.claims["cpt_code"].str.fullmatch(r"\d{5}").all() and d.claims["units"].max() <= 99,
    "zip4_rate": lambda d: d.claims["patient_zip"].str.fullmatch(r"\d{5}").all(),
    "icd_full_grammar_rate": lambda d: not d.claims["icd10_primary"].isin(gen.FULL_GRAMMAR_ICD).any(),
    "claim_id_format_rate": lambda d: d.claims["claim_id"].str.fullmatch(r"C\d{10}").all(),
    "institutional_rate": lambda d: (d.claims["icd10_count"].max() <= 12
                                     and d.claims["billed_amount"].max() <= 1_000_000
                                     and not d.claims["cpt_code"].isin(gen.INPATIENT_WEIGHT).any()),
    "late_commit_rate": lambda d: not _late(d, "claims").any() and not _late(d, "remittances").any(),
}


@pytest.mark.parametrize("field_name", sorted(ABSENT))
def test_each_switch_off_gives_none_of_it(field_name, heavy):
    absent = ABSENT[field_name]
    assert not absent(heavy), f"{field_name} shows nothing even when on"
    assert absent(_off(field_name))


def test_none_has_no_part_at_all():
    d = generate(START, 12, 300, seed=8, realism="none")
    for field_name, absent in ABSENT.items():
        assert absent(d), field_name
    assert not gen.resends_day(d, START)


# --- 1. in-place updates ----------------------------------------------------------------------------------

CHANGEABLE = {"eligibility_verified", "prior_auth_number", "billed_amount", "patient_zip", "modifiers"}


def test_updates_keep_keys_and_change_only_non_key_fields_later(real):
    c = real.claims
    dup = c.duplicated(KEYS, keep=False)
    states = c[dup]
    assert states.groupby(KEYS).size().eq(2).all()  # one later state per updated version
    first = states.drop_duplicates(KEYS, keep="first").set_index(KEYS)
    later = states.drop_duplicates(KEYS, keep="last").set_index(KEYS).loc[first.index]
    assert len(first) == real.summary["in_place_updates"] > 0
    for key in ("submitted_at", "service_date"):
        assert (first[key] == later[key]).all()
    gap = later["updated_at"] - first["updated_at"]
    assert (gap >= pd.Timedelta(days=1)).all() and (gap <= pd.Timedelta(days=60)).all()
    same = lambda col: (first[col] == later[col]) | (first[col].isna() & later[col].isna())  # noqa: E731
    unchanged = [col for col in first.columns if col not in CHANGEABLE | {"updated_at"}]
    for col in unchanged:
        assert same(col).all(), col
    changed = pd.DataFrame({col: ~same(col) for col in CHANGEABLE})
    assert changed.sum(axis=1).eq(1).all()  # each update changes exactly one field
    assert changed.any().all()  # and every kind occurs
    elig = changed["eligibility_verified"]
    assert (~first.loc[elig, "eligibility_verified"] & later.loc[elig, "eligibility_verified"]).all()
    auth = changed["prior_auth_number"]
    assert first.loc[auth, "prior_auth_number"].isna().all() and later.loc[auth, "prior_auth_number"].notna().all()
    # rows are the commit history: the later state right after the first one
    pos = pd.Series(np.arange(len(c)), index=c.index)
    firsts, laters = pos[dup & ~c.duplicated(KEYS)], pos[dup & c.duplicated(KEYS)]
    assert (laters.to_numpy() == firsts.to_numpy() + 1).all()


def test_ground_truth_describes_the_first_state(real):
    gt = real.ground_truth.set_index(KEYS)
    first = _first_states(real).set_index(KEYS).loc[gt.index]
    assert (first["eligibility_verified"] == ~gt["cause_eligibility_unverified"]).all()
    missing_auth = first["prior_auth_number"].isna() & gt["prior_auth_required"]
    assert (missing_auth == gt["cause_missing_prior_auth"]).all()
    ratio = first["billed_amount"] / (first["cpt_code"].map(ref.CPT_TYPICAL_CHARGE) * first["units"])
    assert ((ratio > gen.HIGH_CHARGE_RATIO) == gt["cause_high_charge"]).all()
    counts = real.claims.groupby(KEYS).size().sub(1).loc[gt.index]
    assert (counts == gt["in_place_updates"]).all()


def test_fixes_follow_eligibility_and_auth_denials(real):
    gt = real.ground_truth
    fixed = gt[gt["in_place_updates"].gt(0) & gt["adjudicated"] & gt["denied"]
               & (gt["cause_eligibility_unverified"] | gt["cause_missing_prior_auth"])]
    assert len(fixed) > 10
    later = real.claims[real.claims.duplicated(KEYS)].merge(fixed[KEYS])
    first_adj = real.remittances.groupby("claim_id")["adjudicated_at"].min()
    assert (later["updated_at"] > later["claim_id"].map(first_adj)).mean() > 0.75


def test_updates_do_not_change_the_truth():
    with_updates = generate(START, 10, 300, seed=4, realism="heavy")
    without = generate(START, 10, 300, seed=4, realism=dataclasses.replace(Realism.preset("heavy"),
                                                                            in_place_update_rate=0.0))
    cols = [c for c in GROUND_TRUTH_COLUMNS if c != "in_place_updates"]
    pd.testing.assert_frame_equal(with_updates.ground_truth[cols], without.ground_truth[cols])
    assert with_updates.ground_truth["in_place_updates"].sum() > 0


# --- 2. appeals -------------------------------------------------------------------------------------------


def test_label_is_the_first_adjudication(real):
    r = real.remittances.sort_values("adjudicated_at", kind="stable")
    first = r.drop_duplicates("claim_id", keep="first").set_index("claim_id")["claim_status"]
    latest = real.ground_truth[real.ground_truth["adjudicated"]].set_index("claim_id")
    assert latest.index.is_unique and len(latest) == len(first)
    assert ((first.loc[latest.index] == "denied") == latest["denied"]).all()


def test_appeals_overturn_some_denials(real):
    gt = real.ground_truth
    appealed = gt[gt["appeal_status"].notna()]
    assert len(appealed) == real.summary["appeals"] > 50
    assert appealed["adjudicated"].all() and appealed["denied"].all()  # the label stays the denial
    overturned = appealed[appealed["appeal_status"] == "overturned"]
    assert 0.2 < len(overturned) / len(appealed) < 0.8
    r = real.remittances
    rows = r[r["claim_id"].isin(appealed["claim_id"])].sort_values(["claim_id", "adjudicated_at"])
    assert rows.groupby("claim_id").size().eq(2).all()
    first, second = rows.groupby("claim_id").nth(0).set_index("claim_id"), rows.groupby("claim_id").nth(1).set_index("claim_id")
    assert (first["claim_status"] == "denied").all()
    lag = (second["adjudicated_at"] - first["adjudicated_at"]).dt.total_seconds() / 86_400
    assert lag.between(15, 60).all()
    assert (second["updated_at"] > second["adjudicated_at"]).all()
    status = appealed.set_index("claim_id")["appeal_status"].loc[second.index]
    won = second[status == "overturned"]
    assert (won["claim_status"] == "paid").all() and (won["paid_amount"] > 0).all()
    assert (won["paid_amount"] <= won["allowed_amount"]).all()
    assert (second.loc[status == "upheld", "claim_status"] == "denied").all()
    # payment corrections and reviewed denials (the clean world's second rows) are still there
    assert (r["rarc_code"] == "MA67").any()


# --- 3. HCPCS Level II and drug units ----------------------------------------------------------------------


def test_hcpcs_codes_with_drug_units(real):
    c = _first_states(real)
    hcpcs = c[c["cpt_code"].str.fullmatch(r"[A-V]\d{4}")]
    assert 0.03 < len(hcpcs) / len(c) < 0.1
    assert {"J", "A", "E", "G", "Q"} <= set(hcpcs["cpt_code"].str[0])
    assert hcpcs["units"].max() > 99 and (hcpcs["units"] > 99).mean() > 0.05
    assert c["units"].between(1, 1500).all()
    fams = hcpcs["cpt_code"].map(ref.cpt_family)
    assert {"drugs", "biologics", "ambulance", "dme", "preventive"} <= set(fams)
    assert not hcpcs["cpt_code"].map(ref.typical_charge).isna().any()
    assert (hcpcs.loc[fams.eq("ambulance"), "place_of_service"] == "41").all()
    drugs = hcpcs[fams.isin(["drugs", "biologics"])]
    assert drugs["modifiers"].fillna("").str.contains("JZ").mean() > 0.3
    assert ref.requires_prior_auth("UHC", "biologics") and not ref.requires_prior_auth("UHC", "drugs")
    gt = real.ground_truth
    bio = gt[(gt["cpt_family"] == "biologics") & gt["payer_id"].isin(["UHC", "AETNA", "CIGNA"])]
    assert bio["prior_auth_required"].all() and bio["cause_missing_prior_auth"].any()


def test_reference_lookups_cover_every_generated_code(heavy):
    c = heavy.claims
    assert not c["cpt_code"].map(ref.cpt_family).eq(ref.UNKNOWN).any()
    assert not c["icd10_primary"].map(ref.icd_chapter).eq(ref.UNKNOWN).any()
    for code in gen.HCPCS_WEIGHT:
        assert ref.cpt_family(code) in ref.CONSISTENT_CHAPTERS
        assert ref.typical_charge(code) > 0
        assert gen.HCPCS_UNITS[code]  # every HCPCS code has its unit rule
    # the ground truth's dx cause is the reference's consistency edit, for old and new families alike
    first = _first_states(heavy).set_index(KEYS)
    gt = heavy.ground_truth.set_index(KEYS)
    fam = first["cpt_code"].map(ref.cpt_family).loc[gt.index]
    chapter = first["icd10_primary"].map(ref.icd_chapter).loc[gt.index]
    consistent = pd.Series([ref.is_consistent(f, ch) for f, ch in zip(fam, chapter, strict=True)], index=gt.index)
    assert (consistent == ~gt["cause_dx_inconsistent"]).all()
    assert (fam == gt["cpt_family"]).all()


# --- 4. ZIP+4 ------------------------------------------------------------------------------------------------


def test_zip_and_zip4(real):
    z = real.claims["patient_zip"]
    assert z.str.fullmatch(r"\d{5}(-\d{4})?").all()
    assert 0.25 < (z.str.len() == 10).mean() < 0.55
    assert z.str[:3].isin(list(gen.ZIP3)).all()


# --- 5. ICD-10-CM grammar -------------------------------------------------------------------------------------


def test_full_icd10cm_grammar(real):
    icd = _first_states(real)["icd10_primary"]
    assert icd.str.fullmatch(ICD_GRAMMAR_RE).all()
    used = set(icd) & set(gen.FULL_GRAMMAR_ICD)
    assert len(used) >= 8
    assert icd.str.fullmatch(r"[A-Z]\d[A-Z].*").any()  # letter in the third character (Z3A, M1A, O9A)
    assert icd.str.fullmatch(r".{3}\.[0-9A-Z]{4}").any()  # 7 characters
    assert icd.str.contains(r"\..*X").any()  # the placeholder X
    expected = {"Z3A.39": "factors", "S72.001A": "injury", "T36.0X5A": "injury", "O09.529": "pregnancy",
                "M1A.0710": "musculoskeletal", "C50.911": "neoplasm", "O9A.212": "pregnancy", "C4A.9": "neoplasm",
                "D3A.00": "neoplasm", "A41.9": "infectious", "D63.0": "blood", "L97.419": "skin"}
    for code, chapter in expected.items():
        assert ref.icd_chapter(code) == chapter, code
        assert ref.icd_chapter(code.replace(".", "")) == chapter, code  # by block, not by the table


def test_reference_chapters_agree_with_the_blocks():
    for code, chapter in ref.ICD10_CHAPTER.items():
        block = code[:3]
        assert [k for k, (lo, hi, _) in ref.ICD_CHAPTERS.items() if lo <= block <= hi] == [chapter], code
    assert set(gen.FULL_GRAMMAR_ICD) <= set(ref.ICD10_CODES)


# --- 6. claim ids ----------------------------------------------------------------------------------------------


def test_claim_ids_in_billing_system_formats(real):
    c = real.claims
    ids = c["claim_id"]
    assert ids.str.fullmatch(CLAIM_ID_RE).all() and ids.str.len().max() <= 38
    # the long form with the longest organisation mnemonic reaches the X12 limit, never beyond
    assert max(map(len, gen.ORG_MNEMONICS)) + len("-20250101-0001234567-0000042") == 38
    assert ids.nunique() == real.summary["claims"]  # unique per claim
    gt = real.ground_truth
    versions = gt.groupby("claim_id")["claim_version"].agg(["min", "max", "count"])
    assert (versions["min"] == 1).all() and (versions["max"] == versions["count"]).all()  # same id across versions
    shapes = ids.map(_shape)
    assert set(shapes) == set(ID_SHAPES)
    assert shapes.groupby(c["billing_npi"]).nunique().eq(1).all()  # one format per billing organisation
    assert 0.6 < (shapes != "legacy").mean() < 0.95
    v1 = c[(c["claim_version"] == 1) & (shapes == "date_seq")].drop_duplicates("claim_id")
    assert (v1["claim_id"].str[:8] == v1["submitted_at"].dt.strftime("%Y%m%d")).all()


# --- 7. institutional claims -------------------------------------------------------------------------------------


def test_institutional_claims(real):
    c = _first_states(real)
    inst = c[c["cpt_code"].isin(gen.INPATIENT_WEIGHT)]
    assert 0.008 < len(inst) / len(c) < 0.03
    assert (inst["place_of_service"] == "21").all()
    assert (inst["cpt_code"].map(ref.cpt_family) == "surgery").all()
    assert (inst["icd10_count"] > 12).mean() > 0.5 and inst["icd10_count"].max() <= 25
    assert (inst["billed_amount"] > 1_000_000).sum() >= 3
    assert c["billed_amount"].max() <= gen.MAX_BILLED
    assert real.summary["claims_over_1m"] == (c["billed_amount"] > 1_000_000).sum()
    assert (c.loc[~c.index.isin(inst.index), "icd10_count"] <= 12).all()


# --- 8. facility time zone and DST --------------------------------------------------------------------------------


def test_local_to_utc_across_dst():
    def utc(local: str) -> str:
        us = np.array([np.datetime64(local, "us").astype(np.int64)])
        return str(np.datetime64(int(gen._local_to_utc(us, "America/New_York")[0]), "us"))

    assert utc("2025-03-09T01:30") == "2025-03-09T06:30:00.000000"
    assert utc("2025-03-09T02:30") == "2025-03-09T07:00:00.000000"  # does not exist: shifted forward
    assert utc("2025-03-09T03:30") == "2025-03-09T07:30:00.000000"
    assert utc("2025-11-02T01:30") == "2025-11-02T05:30:00.000000"  # ambiguous: read as daylight time
    assert utc("2025-11-02T02:30") == "2025-11-02T07:30:00.000000"
    assert utc("2025-07-01T12:00") == "2025-07-01T16:00:00.000000"


@pytest.mark.parametrize("start", [date(2025, 3, 2), date(2025, 10, 26)])
def test_facility_time_zone_across_dst(start):
    tz = "America/New_York"
    per_day = 300
    d = generate(start, 14, per_day, seed=12, realism="none", facility_tz=tz)
    c, gt = _first_states(d), d.ground_truth
    local = c["submitted_at"].dt.tz_localize("UTC").dt.tz_convert(tz).dt.tz_localize(None)
    assert (c["service_date"] <= local.dt.normalize()).all()
    # the legacy claim number encodes the local day the claim was generated for: version 1 submits on it
    v1 = c["claim_version"] == 1
    encoded = pd.to_datetime("2000-01-01") + pd.to_timedelta(c.loc[v1, "claim_id"].str[1:6].astype(int), "D")
    assert (encoded == local[v1].dt.normalize()).all()
    assert local[v1].dt.normalize().value_counts().eq(per_day).all()
    # business hours are local on every day, DST days included
    hours = local[v1].dt.hour
    assert hours.between(7, 18).groupby(local[v1].dt.date).mean().min() > 0.75
    # timely filing counts local days from service to local submission
    days = (local.dt.normalize() - c["service_date"]).dt.days
    truth = gt.set_index(KEYS)
    idx = pd.MultiIndex.from_frame(c[KEYS])
    assert (truth.loc[idx, "days_to_submit"].to_numpy() == days.to_numpy()).all()
    limit = c["payer_id"].map(ref.PAYER_FILING_LIMIT_DAYS).to_numpy()
    assert (truth.loc[idx, "cause_timely_filing"].to_numpy() == (days.to_numpy() > limit)).all()
    utc_days = (c["submitted_at"].dt.normalize() - c["service_date"]).dt.days
    assert (utc_days != days).any()  # the UTC calendar would count some evening submissions a day late
    assert d.summary["facility_tz"] == tz


# --- 9. late commits ------------------------------------------------------------------------------------------------


def test_late_commits_and_source_as_of(real):
    for table, frame in (("claims", real.claims), ("remittances", real.remittances)):
        committed = real.committed_at[table]
        assert len(committed) == len(frame) and (committed.index == frame.index).all()
        lag = committed - frame["updated_at"]
        assert (lag > pd.Timedelta(0)).all()
        late = _late(real, table)
        assert 0.004 < late.mean() < 0.02
        assert (lag[~late] <= pd.Timedelta(seconds=5)).mean() > 0.999
    # the nightly extraction of day D at 02:00 UTC on D+1 misses the late rows of D
    day = pd.Timestamp("2025-02-10")
    at = day + pd.Timedelta(days=1, hours=2)
    claims, remits = source_as_of(real, at.to_pydatetime())
    for table, seen in (("claims", claims), ("remittances", remits)):
        frame = real.claims if table == "claims" else real.remittances
        on_day = frame[frame["updated_at"].between(day, at - pd.Timedelta(hours=2), inclusive="left")]
        late = _late(real, table).loc[on_day.index]
        seen_keys = set(map(tuple, seen[["claim_id", "updated_at"]].to_numpy()))
        got = pd.Series([key in seen_keys for key in zip(on_day["claim_id"], on_day["updated_at"], strict=True)],
                        index=on_day.index)
        assert (got == ~late).all()
        assert late.any() or table == "remittances"
        assert (seen["updated_at"] <= at).all()
    # aware timestamps are converted; everything is committed eventually
    everything, _ = source_as_of(real, datetime(2030, 1, 1, tzinfo=ZoneInfo("America/New_York")))
    pd.testing.assert_frame_equal(everything, real.claims)


def test_source_as_of_in_place_keeps_the_latest_committed_state(real):
    final, _ = source_as_of(real, "2030-01-01", in_place=True)
    assert not final.duplicated(KEYS).any()
    assert len(final) == len(real.ground_truth)
    later = real.claims[real.claims.duplicated(KEYS)]
    merged = final.merge(later[[*KEYS, "updated_at"]], on=KEYS, suffixes=("", "_later"))
    assert len(merged) == len(later) and (merged["updated_at"] == merged["updated_at_later"]).all()
    # between the first state's commit and the update's, the source shows the first state
    row = later.index[0]
    committed = real.committed_at["claims"]
    first_row = row - 1
    between = committed[first_row] + (committed[row] - committed[first_row]) / 2
    seen, _ = source_as_of(real, between, in_place=True)
    key = tuple(real.claims.loc[row, KEYS])
    state = seen[(seen["claim_id"] == key[0]) & (seen["claim_version"] == key[1])]
    assert len(state) == 1 and state["updated_at"].iloc[0] == real.claims.loc[first_row, "updated_at"]


def test_write_source_keeps_working_with_every_part(heavy, tmp_path):
    db = tmp_path / "source.db"
    write_source(heavy, f"sqlite:///{db}")
    con = sqlite3.connect(db)
    try:
        assert con.execute("select count(*) from claims").fetchone()[0] == len(heavy.claims)
        assert con.execute("select count(*) from remittances").fetchone()[0] == len(heavy.remittances)
        back = pd.read_sql("select claim_id, patient_zip, units from claims order by rowid", con)
    finally:
        con.close()
    assert back["claim_id"].tolist() == heavy.claims["claim_id"].tolist()
    assert back["patient_zip"].tolist() == heavy.claims["patient_zip"].tolist()
    assert back["units"].max() > 99


# --- 10. re-sent landing files -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_resent_and_overlapping_landing_files(real, tmp_path, fmt):
    day = date(2025, 2, 10)
    paths = write_resent_landing_files(real, day, tmp_path, fmt=fmt)
    assert [p.name for p in paths.values()] == [f"claims_2025-02-10.{fmt}", f"claims_2025-02-10_resent.{fmt}",
                                                 f"claims_2025-02-10_overlap.{fmt}"]
    assert paths["file"].read_bytes() == paths["resent"].read_bytes()
    read = (lambda p: pd.read_csv(p, dtype=str, keep_default_na=False)) if fmt == "csv" else pd.read_parquet
    main, overlap = read(paths["file"]), read(paths["overlap"])
    assert list(overlap.columns) == source_column_names("claims")
    rows = lambda f: set(map(tuple, f.astype(str).to_numpy()))  # noqa: E731
    assert rows(overlap) <= rows(main)  # only rows of that day
    assert 0.3 < len(rows(overlap)) / len(rows(main)) < 0.7  # part of them
    assert overlap.duplicated().sum() > 0  # some of them twice
    assert len(main) == len(landing_rows(real, day)) and not main.duplicated().any()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    again = write_resent_landing_files(real, day, tmp_path / "again", fmt=fmt)
    assert again["overlap"].read_bytes() == paths["overlap"].read_bytes()  # deterministic


def test_write_landing_files_resends_a_share_of_days(tmp_path):
    days = [date(2025, 1, 2) + timedelta(days=k) for k in range(10)]
    always = generate(START, 12, 100, seed=3, realism=dataclasses.replace(Realism.preset("default"),
                                                                           resent_file_rate=1.0))
    never = dataclasses.replace(always, realism=Realism())
    assert len(write_landing_files(always, days, tmp_path / "a")) == 30
    assert len(write_landing_files(never, days, tmp_path / "n")) == 10
    default = generate(START, 1, 5, seed=3)
    share = np.mean([gen.resends_day(default, START + timedelta(days=k)) for k in range(200)])
    assert share == pytest.approx(Realism.preset("default").resent_file_rate, abs=0.08)


def test_plain_landing_file_is_unchanged_by_realism(real, tmp_path):
    path = write_landing_file(real, date(2025, 2, 11), tmp_path)
    got = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert got["claim_id"].tolist() == landing_rows(real, date(2025, 2, 11))["claim_id"].tolist()


# --- CLI --------------------------------------------------------------------------------------------------------------


def test_cli_realism_and_facility_tz_in_another_process(tmp_path):
    from rcm_assets_tests.synthetic.test_synthetic import _cli

    landing = tmp_path / "landing"
    args = ["--start", "2025-03-05", "--days", "8", "--claims-per-day", "60", "--seed", "13",
            "--realism", "heavy", "--facility-tz", "America/New_York", "--landing-dir", str(landing),
            "--landing-days", *[f"2025-03-{d:02d}" for d in range(6, 13)]]
    res = _cli(*args, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "realism=heavy" in res.stderr and "facility_tz=America/New_York" in res.stderr
    expected = generate(date(2025, 3, 5), 8, 60, seed=13, realism="heavy", facility_tz="America/New_York")
    truth = pd.read_parquet(tmp_path / "data" / "ground_truth" / "claims_truth.parquet")
    pd.testing.assert_frame_equal(truth, expected.ground_truth)  # same world in another process
    con = sqlite3.connect(tmp_path / "data" / "source.db")
    try:
        assert con.execute("select count(*) from claims").fetchone()[0] == len(expected.claims)
    finally:
        con.close()
    names = sorted(p.name for p in landing.iterdir())
    assert any(n.endswith("_resent.csv") for n in names) and any(n.endswith("_overlap.csv") for n in names)
    assert len([n for n in names if "_" not in n.removeprefix("claims_")]) == 7
