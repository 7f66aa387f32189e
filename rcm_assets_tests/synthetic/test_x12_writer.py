"""X12 files of the synthetic source (synthetic/x12.py): valid envelopes by construction, every row of
the day once, institutional claims in 837I sets, local times across DST, the 835 status and amount
rules, determinism, the CLI, and the round trip through the reader (lib/x12.py) when it is there.

The envelope checks use a tiny test-local splitter (not the package's reader), so they hold whatever
the reader accepts."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections import Counter
from datetime import UTC, date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from rcm_assets.lib.columns import source_column_names
from rcm_assets.synthetic import REALISM_PRESETS, days_with_rows, generate, landing_rows, write_x12_files
from rcm_assets.synthetic import x12 as writer

TZ = "America/New_York"
SPRING = date(2025, 3, 9)  # 02:00 EST -> 03:00 EDT
FALL = date(2025, 11, 2)  # 02:00 EDT -> 01:00 EST: 01:00-01:59 local happens twice
DAYS = [date(2025, 3, 8), SPRING, date(2025, 3, 10), date(2025, 3, 25)]
ISA_WIDTHS = [2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1]
VERSIONS = {"837P": writer.VERSION_837P, "837I": writer.VERSION_837I, "835": writer.VERSION_835}
CLAIM_KEY = ["claim_id", "claim_version", "updated_at"]
REMIT_KEY = ["claim_id", "updated_at", "adjudicated_at"]


@pytest.fixture(scope="module")
def data():
    return generate(date(2025, 2, 20), days=40, claims_per_day=150, seed=31, facility_tz=TZ)


@pytest.fixture(scope="module")
def fall():
    return generate(date(2025, 10, 1), days=35, claims_per_day=150, seed=32, facility_tz=TZ)


@pytest.fixture(scope="module")
def files(data, tmp_path_factory):
    return write_x12_files(data, DAYS, tmp_path_factory.mktemp("x12"))


# --- a tiny X12 splitter with the envelope checks ------------------------------------------------------


def parse(text: str) -> dict:
    """Split an interchange written with `*` `:` `^` and `~` + newline, checking the envelopes: ISA
    fixed widths, IEA count and control number, GS/GE count and control, ST/SE count and control."""
    assert text.endswith("~\n") and text[writer.ISA_LENGTH - 1: writer.ISA_LENGTH + 1] == "~\n"
    isa = text[: writer.ISA_LENGTH - 1].split("*")
    assert isa[0] == "ISA" and [len(e) for e in isa[1:]] == ISA_WIDTHS
    assert (isa[11], isa[12], isa[16]) == ("^", "00501", ":")
    segments = [s.split("*") for s in text[:-2].split("~\n")]
    assert all(s[0].isalnum() and s[0].isupper() for s in segments)
    groups: list[dict] = []
    group = current = None
    for seg in segments[1:-1]:
        tag = seg[0]
        if tag == "GS":
            assert group is None
            group = {"gs": seg, "sets": []}
        elif tag == "GE":
            assert current is None and group is not None
            assert (int(seg[1]), seg[2]) == (len(group["sets"]), group["gs"][6])
            groups.append(group)
            group = None
        elif tag == "ST":
            assert group is not None and current is None
            assert seg[3] == group["gs"][8]  # ST03 names the group's version
            current = {"st": seg, "body": []}
        elif tag == "SE":
            assert current is not None
            assert (int(seg[1]), seg[2]) == (len(current["body"]) + 2, current["st"][2])
            group["sets"].append(current)
            current = None
        else:
            assert current is not None, f"{tag} outside a transaction set"
            current["body"].append(seg)
    iea = segments[-1]
    assert group is None and iea[0] == "IEA" and (int(iea[1]), iea[2]) == (len(groups), isa[13])
    gs_numbers = [g["gs"][6] for g in groups]
    st_numbers = [s["st"][2] for g in groups for s in g["sets"]]
    assert len(set(gs_numbers)) == len(gs_numbers) and len(set(st_numbers)) == len(st_numbers)
    return {"isa": isa, "groups": groups}


def claim_loops(parsed: dict) -> list[dict]:
    """One record per CLM: its envelope times, version, kind and the segments of its billing-provider
    loop (HL 20 on: provider, subscriber, payer, claim, line)."""
    out = []
    for g in parsed["groups"]:
        assert g["gs"][1] == "HC"
        for s in g["sets"]:
            bht = s["body"][0]
            assert bht[0] == "BHT" and all(x[0] != "BHT" for x in s["body"][1:])
            loop: list[list[str]] = []
            for seg in s["body"]:
                if seg[0] == "HL" and seg[3] == "20":
                    loop = []
                loop.append(seg)
                if seg[0] == "CLM":
                    out.append({"claim_id": seg[1], "clm": seg, "claim_version": 1, "kind": g["gs"][8],
                                "updated": g["gs"][4] + g["gs"][5], "submitted": bht[4] + bht[5],
                                "segments": loop})
                if seg[:2] == ["REF", "D9"]:
                    out[-1]["claim_version"] = int(seg[2])
    return out


def clp_loops(parsed: dict) -> list[dict]:
    """One record per CLP: its group's time, BPR16 and the first segment of each kind in its loop."""
    out = []
    for g in parsed["groups"]:
        assert g["gs"][1] == "HP" and g["gs"][8] == writer.VERSION_835
        for s in g["sets"]:
            bpr = s["body"][0]
            assert bpr[0] == "BPR" and len(bpr) == 17
            paid = sum(float(seg[4]) for seg in s["body"] if seg[0] == "CLP")
            assert float(bpr[2]) == pytest.approx(paid)  # BPR02: the payment is the sum of CLP04
            assert (bpr[1] == "I") == (paid > 0)
            rec = None
            for seg in s["body"]:
                if seg[0] == "CLP":
                    rec = {"claim_id": seg[1], "clp": seg, "updated": g["gs"][4] + g["gs"][5], "bpr16": bpr[16]}
                    out.append(rec)
                elif rec is not None:
                    rec.setdefault(seg[0] if seg[0] != "DTM" else f"DTM{seg[1]}", seg)
    return out


def by_name(files: list[Path]) -> dict[str, Path]:
    return {p.name: p for p in files}


def claims_file(files: list[Path], day: date) -> Path:
    return by_name(files)[f"claims_{day.isoformat()}.837"]


def local(stamps: pd.Series, tz: str = TZ) -> list[str]:
    """CCYYMMDDHHMMSS in the facility's local time, through zoneinfo (not the writer's pandas path)."""
    zone = ZoneInfo(tz)
    return [t.to_pydatetime().replace(tzinfo=UTC).astimezone(zone).strftime("%Y%m%d%H%M%S") for t in stamps]


def read_text(path: Path) -> str:
    raw = path.read_bytes()
    raw.decode("ascii")  # plain ASCII, no BOM
    return raw.decode()


# --- timestamps ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", sorted(REALISM_PRESETS))
def test_generator_times_are_whole_seconds(preset):
    d = generate(date(2025, 3, 1), 12, 200, seed=3, realism=preset, facility_tz=TZ)
    stamps = [d.claims["submitted_at"], d.claims["updated_at"], d.remittances["adjudicated_at"],
              d.remittances["updated_at"], d.committed_at["claims"], d.committed_at["remittances"]]
    for s in stamps:
        assert (s == s.dt.floor("s")).all()
    # a commit still follows its write; an update its first state; an outcome its adjudication
    assert (d.committed_at["claims"] > d.claims["updated_at"]).all()
    assert (d.remittances["updated_at"] > d.remittances["adjudicated_at"]).all()


# --- envelopes and contents --------------------------------------------------------------------------------


def test_files_are_named_per_day_and_valid_interchanges(data, files):
    expected = [name for d in DAYS for name in (f"claims_{d}.837", f"remittances_{d}.835")
                if len(landing_rows(data, d, "claims" if name.startswith("claims") else "remittances"))]
    assert [p.name for p in files] == expected and len(expected) == 2 * len(DAYS)
    controls = set()
    for path in files:
        parsed = parse(read_text(path))
        controls.add(parsed["isa"][13])
        kinds = {g["gs"][8] for g in parsed["groups"]}
        assert kinds <= ({writer.VERSION_835} if path.suffix == ".835" else {writer.VERSION_837P, writer.VERSION_837I})
        assert all(s["st"][1] == path.suffix[1:] for g in parsed["groups"] for s in g["sets"])
    assert len(controls) == len(files)
    assert not [p for p in files[0].parent.iterdir() if p.name.startswith(".")]  # no temp files left


def test_every_claim_state_of_the_day_once_with_its_times(data, files):
    for day in DAYS:
        rows = landing_rows(data, day, "claims")
        parsed = parse(read_text(claims_file(files, day)))
        got = Counter((r["claim_id"], r["claim_version"], r["updated"], r["submitted"]) for r in claim_loops(parsed))
        want = Counter(zip(rows["claim_id"], rows["claim_version"], local(rows["updated_at"]),
                           local(rows["submitted_at"]), strict=True))
        assert got == want and max(want.values()) == 1
        # a group holds one updated_at and a transaction set one submitted_at
        for g in parsed["groups"]:
            assert len({s["body"][0][4] + s["body"][0][5] for s in g["sets"]}) == len(g["sets"])


def test_claim_values_travel_as_the_spec_says(data, files):
    rows = pd.concat([landing_rows(data, d, "claims") for d in DAYS])
    loops = [r for d in DAYS for r in claim_loops(parse(read_text(claims_file(files, d))))]
    by_key = {(r["claim_id"], r["claim_version"], r["updated"]): r for r in loops}
    filing = {"commercial": "CI", "medicare": "MB", "medicaid": "MC", "self_pay": "ZZ"}
    for row, upd in zip(rows.itertuples(), local(rows["updated_at"]), strict=True):
        rec = by_key[(row.claim_id, row.claim_version, upd)]
        seg = {s[0] + (s[1] if s[0] in ("NM1", "REF", "DTP") else ""): s for s in rec["segments"]}
        inst = row.place_of_service == "21"
        assert rec["kind"] == (writer.VERSION_837I if inst else writer.VERSION_837P)
        clm05 = rec["clm"][5].split(":")
        assert clm05 == ["11" if inst else row.place_of_service, "A" if inst else "B",
                         "1" if row.claim_version == 1 else "7"]
        assert float(rec["clm"][2]) == row.billed_amount
        first, last = row.patient_name.split(" ", 1)
        assert seg["NM1IL"][3:5] == [last, first] and seg["NM1IL"][8:] == ["MI", row.member_id]
        assert seg["N3"][1] == row.patient_address  # the subscriber's, after the billing provider's
        assert seg["N4"][3] == row.patient_zip.replace("-", "")
        assert seg["DMG"] == ["DMG", "D8", row.patient_dob.strftime("%Y%m%d"), row.patient_sex]
        assert seg["NM1PR"][8:] == ["PI", row.payer_id] and seg["NM185"][8:] == ["XX", row.billing_npi]
        assert seg["SBR"][9] == filing[row.plan_type]
        assert seg["NM171" if inst else "NM182"][8:] == ["XX", row.rendering_npi]
        assert ("REFD9" in seg) == (row.claim_version > 1)
        assert seg.get("REFG1", [None, None, None])[2] == row.prior_auth_number
        assert seg["K3"] == ["K3", f"ELIG-VERIFIED:{'Y' if row.eligibility_verified else 'N'}"]
        his = [s for s in rec["segments"] if s[0] == "HI"]
        codes = [c for s in his for c in s[1:]]
        assert all(len(s) - 1 <= 12 for s in his) and len(codes) == row.icd10_count
        assert codes[0] == "ABK:" + row.icd10_primary.replace(".", "")
        assert all(c.startswith("ABF:") for c in codes[1:])
        line = seg["SV2" if inst else "SV1"]
        procedure = line[2 if inst else 1].split(":")
        assert procedure[:2] == ["HC", row.cpt_code]
        assert procedure[2:] == (row.modifiers.split(",") if row.modifiers else [])
        amount, units = (line[3], line[5]) if inst else (line[2], line[4])
        assert float(amount) == row.billed_amount and int(units) == row.units
        assert seg["DTP472"][2:] == ["D8", row.service_date.strftime("%Y%m%d")]


def test_institutional_claims_are_in_837i_sets_with_up_to_25_diagnoses(data, tmp_path):
    heavy = generate(date(2025, 2, 1), 10, 300, seed=5, realism="heavy", facility_tz=TZ)
    day = date(2025, 2, 6)
    [path] = write_x12_files(heavy, [day], tmp_path)
    loops = claim_loops(parse(read_text(path)))
    rows = landing_rows(heavy, day, "claims")
    inst = [r for r in loops if r["kind"] == writer.VERSION_837I]
    assert len(inst) == (rows["place_of_service"] == "21").sum() > 5
    big = [r for r in inst if sum(len(s) - 1 for s in r["segments"] if s[0] == "HI") > 12]
    assert big, "no institutional claim with more than 12 diagnoses in the sample"
    for r in big:
        his = [s for s in r["segments"] if s[0] == "HI"]
        n = sum(len(s) - 1 for s in his)
        assert len(his) == 1 + -(-(n - 1) // 12) and len(his[0]) == 2  # the principal code alone first
        assert all(len(s) - 1 <= 12 for s in his)
    assert all(any(s[0] == "SV2" and s[1] == writer.REVENUE_CODE for s in r["segments"]) for r in inst)
    assert not any(any(s[0] == "SV2" for s in r["segments"]) for r in loops if r["kind"] == writer.VERSION_837P)


@pytest.mark.parametrize("day", [SPRING, FALL])
def test_times_are_local_across_dst(day, tmp_path):
    d = generate(day - timedelta(days=30), 31, 150, seed=17, facility_tz=TZ)
    claims_path, remits_path = write_x12_files(d, [day], tmp_path)
    rows = landing_rows(d, day, "claims")
    loops = claim_loops(parse(read_text(claims_path)))
    assert sorted((r["claim_id"], r["claim_version"], r["updated"], r["submitted"]) for r in loops) == sorted(
        zip(rows["claim_id"], rows["claim_version"], local(rows["updated_at"]), local(rows["submitted_at"]),
            strict=True))
    # both UTC offsets of the day occur, so the test really crosses the change
    zone = ZoneInfo(TZ)
    offsets = {t.to_pydatetime().replace(tzinfo=UTC).astimezone(zone).utcoffset() for t in rows["updated_at"]}
    assert offsets == {timedelta(hours=-5), timedelta(hours=-4)}
    rem = landing_rows(d, day, "remittances")
    clps = clp_loops(parse(read_text(remits_path)))
    got = sorted((r["claim_id"], r["updated"], r["DTM009"][2] + r["DTM009"][3], r["bpr16"]) for r in clps)
    adjudicated = local(rem["adjudicated_at"])
    want = sorted(zip(rem["claim_id"], local(rem["updated_at"]), adjudicated, [a[:8] for a in adjudicated],
                      strict=True))
    assert got == want


def _status_by_x12_rule(clp: list[str], allowed: float) -> str:
    """The reader's rule: CLP02 4 is denied; else partial when paid < allowed; else paid."""
    if clp[2] == "4":
        return "denied"
    return "partial" if float(clp[4]) < allowed else "paid"


def test_835_status_and_amounts(data, tmp_path):
    days = [date(2025, 3, 20) + timedelta(days=k) for k in range(25)]
    paths = [p for p in write_x12_files(data, days, tmp_path) if p.suffix == ".835"]
    rem = pd.concat([landing_rows(data, d, "remittances") for d in days]).reset_index(drop=True)
    clps = [r for p in paths for r in clp_loops(parse(read_text(p)))]
    assert len(clps) == len(rem) > 1000
    by_key = {(r["claim_id"], r["updated"]): r for r in clps}
    for row, upd in zip(rem.itertuples(), local(rem["updated_at"]), strict=True):
        r = by_key[(row.claim_id, upd)]
        clp = r["clp"]
        charge, paid, share = float(clp[3]), float(clp[4]), float(clp[5])
        allowed = float(r["AMT"][2])
        assert r["AMT"][1] == "AU" and allowed == row.allowed_amount and paid == row.paid_amount
        assert charge > 0 and share == pytest.approx(row.allowed_amount - row.paid_amount, abs=0.005)
        assert (clp[2] == "4") == (row.claim_status == "denied")
        assert _status_by_x12_rule(clp, allowed) == row.claim_status
        cas = r.get("CAS")
        if row.carc_code is None:
            assert cas is None
        elif row.claim_status == "denied":
            assert cas[1:3] == ["CO", row.carc_code] and float(cas[3]) == charge
        elif row.carc_code in ("1", "2"):
            assert cas[1:3] == ["PR", row.carc_code] and float(cas[3]) == pytest.approx(share)
        else:
            assert cas[1:3] == ["CO", row.carc_code]
        assert r.get("MOA", [None] * 4)[3] == row.rarc_code
    # the generator's own rows: partial always pays less than allowed, paid pays what was allowed
    partial, paid = rem[rem["claim_status"] == "partial"], rem[rem["claim_status"] == "paid"]
    assert (partial["paid_amount"] < partial["allowed_amount"]).all()
    assert (paid["paid_amount"] == paid["allowed_amount"]).all()


def test_writing_is_deterministic(data, files, tmp_path):
    again = write_x12_files(data, reversed(DAYS), tmp_path, facility_tz=TZ)
    assert [p.name for p in again] == [p.name for p in files]
    for a, b in zip(files, again, strict=True):
        assert a.read_bytes() == b.read_bytes()
    other_tz = write_x12_files(data, [SPRING], tmp_path / "utc", facility_tz="UTC")
    assert other_tz[0].read_bytes() != claims_file(files, SPRING).read_bytes()  # local times are written


def test_days_default_to_every_day_with_rows(tmp_path):
    d = generate(date(2025, 1, 1), 3, 20, seed=2, realism="none")
    paths = write_x12_files(d, None, tmp_path)
    days = days_with_rows(d)
    assert days[0] == date(2025, 1, 1) and days[-1] > d.end  # outcomes after the last day included
    claims = sum(len(claim_loops(parse(read_text(p)))) for p in paths if p.suffix == ".837")
    remits = sum(len(clp_loops(parse(read_text(p)))) for p in paths if p.suffix == ".835")
    assert (claims, remits) == (len(d.claims), len(d.remittances))


@pytest.mark.parametrize("change, message", [
    (lambda c: c.assign(updated_at=c["updated_at"] + pd.Timedelta(milliseconds=5)), "whole seconds"),
    (lambda c: c.assign(patient_address=c["patient_address"] + "*"), "patient_address"),
    (lambda c: c.assign(icd10_count=13, place_of_service="11"), "at most 12"),
    (lambda c: c.assign(modifiers="25,59,LT,RT,GT"), "at most 4"),
])
def test_rows_x12_cannot_carry_are_refused(change, message, tmp_path):
    d = generate(date(2025, 1, 1), 2, 20, seed=2, realism="none")
    bad = dataclasses.replace(d, claims=change(d.claims))
    with pytest.raises(ValueError, match=message):
        write_x12_files(bad, [date(2025, 1, 1)], tmp_path / "x12")
    assert not (tmp_path / "x12").exists()


# --- CLI ------------------------------------------------------------------------------------------------------


def test_cli_writes_x12_files_and_x12_only_leaves_them_out_of_the_source(tmp_path):
    from rcm_assets_tests.synthetic.test_synthetic import _cli

    x12_dir = tmp_path / "x12"
    res = _cli("--start", "2025-01-01", "--days", "4", "--claims-per-day", "50", "--seed", "9",
               "--facility-tz", TZ, "--x12-dir", str(x12_dir), "--x12-days", "2025-01-02", "2025-01-03",
               "--x12-only", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "2 X12 files" in res.stderr
    assert sorted(p.name for p in x12_dir.iterdir()) == ["claims_2025-01-02.837", "claims_2025-01-03.837"]
    expected = generate(date(2025, 1, 1), 4, 50, seed=9, facility_tz=TZ)
    in_files = sum(len(claim_loops(parse(read_text(p)))) for p in x12_dir.iterdir())
    con = sqlite3.connect(tmp_path / "data" / "source.db")
    try:
        n_source = con.execute("select count(*) from claims").fetchone()[0]
        on_days = con.execute("select count(*) from claims where updated_at >= '2025-01-02' "
                              "and updated_at < '2025-01-04'").fetchone()[0]
        n_remits = con.execute("select count(*) from remittances").fetchone()[0]
    finally:
        con.close()
    assert on_days == 0 and n_source + in_files == len(expected.claims)
    assert n_remits == len(expected.remittances)  # no outcome reached the source on those days


def test_cli_default_days_hold_the_whole_source(tmp_path):
    from rcm_assets.synthetic.__main__ import main

    x12_dir, db = tmp_path / "x12", tmp_path / "source.db"
    assert main(["--start", "2025-01-01", "--days", "2", "--claims-per-day", "20", "--seed", "4",
                 "--realism", "none", "--x12-dir", str(x12_dir), "--x12-only",
                 "--source-url", f"sqlite:///{db}", "--ground-truth", str(tmp_path / "truth.parquet")]) == 0
    con = sqlite3.connect(db)
    try:
        assert con.execute("select count(*) from claims").fetchone()[0] == 0
        assert con.execute("select count(*) from remittances").fetchone()[0] == 0
    finally:
        con.close()
    names = {p.name for p in x12_dir.iterdir()}
    assert "claims_2025-01-01.837" in names and any(n.endswith(".835") for n in names)
    with pytest.raises(SystemExit) as exc:
        main(["--start", "2025-01-01", "--days", "1", "--claims-per-day", "5", "--x12-only"])
    assert exc.value.code == 2


# --- round trip through the reader ---------------------------------------------------------------------------


def _read_back(paths: list[Path], history: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    reader = pytest.importorskip("rcm_assets.lib.x12")
    claims, remits = [], []
    # X12 carries no version number: versions count by arrival, from what is already stored (the claims that
    # arrived before each file's day, as silver knows them) and the files read before
    versions = reader.ClaimVersions()
    for path in paths:
        if history is not None:
            day = pd.Timestamp(path.stem.split("_")[-1])
            versions.remember(history[history["updated_at"] < day])
        batch = reader.read_x12(path, facility_tz=TZ, versions=versions)
        assert not getattr(batch, "rejected", None), f"{path.name}: {batch.rejected}"
        claims.append(batch.claims)
        remits.append(batch.remittances)
    frames = [pd.concat([f for f in fs if len(f)] or fs[:1], ignore_index=True) for fs in (claims, remits)]
    frames[1][["payer_claim_control_number", "cas_group"]] = None  # X12 carries them, the generator does not
    return (frames[0].sort_values(CLAIM_KEY, kind="stable").reset_index(drop=True),
            frames[1].sort_values(REMIT_KEY, kind="stable").reset_index(drop=True))


def _source_rows(data, days: list[date]) -> tuple[pd.DataFrame, pd.DataFrame]:
    claims = pd.concat([landing_rows(data, d, "claims") for d in days], ignore_index=True)
    remits = pd.concat([landing_rows(data, d, "remittances") for d in days], ignore_index=True)
    return (claims.sort_values(CLAIM_KEY, kind="stable").reset_index(drop=True),
            remits.sort_values(REMIT_KEY, kind="stable").reset_index(drop=True))


def test_round_trip_through_the_reader(data, files):
    got_claims, got_remits = _read_back(files, data.claims)
    want_claims, want_remits = _source_rows(data, DAYS)
    assert list(got_claims.columns) == source_column_names("claims")
    assert list(got_remits.columns) == source_column_names("remittances")
    assert len(want_remits) and (want_claims["place_of_service"] == "21").any()
    pd.testing.assert_frame_equal(got_claims, want_claims)
    pd.testing.assert_frame_equal(got_remits, want_remits)


def test_round_trip_on_the_fall_back_night(fall, tmp_path):
    """01:00-01:59 happens twice on 2025-11-02 and X12 times carry no offset: a time in that hour names
    two instants. Everything else comes back exactly; those times come back as the same local time."""
    days = [FALL - timedelta(days=1), FALL, FALL + timedelta(days=1)]
    got_claims, got_remits = _read_back(write_x12_files(fall, days, tmp_path), fall.claims)
    want_claims, want_remits = _source_rows(fall, days)
    repeated = (pd.Timestamp("2025-11-02 05:00"), pd.Timestamp("2025-11-02 07:00"))  # UTC
    for got, want, times in ((got_claims, want_claims, ["submitted_at", "updated_at"]),
                             (got_remits, want_remits, ["adjudicated_at", "updated_at"])):
        assert len(got) == len(want)
        in_hour = pd.concat([want[t].between(*repeated, inclusive="left") for t in times], axis=1).any(axis=1)
        assert in_hour.any()  # the sample really has rows in the repeated hour
        pd.testing.assert_frame_equal(got[~in_hour], want[~in_hour])
        for t in times:
            assert local(got.loc[in_hour, t]) == local(want.loc[in_hour, t])
