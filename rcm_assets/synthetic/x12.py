"""The synthetic source as X12 files: claims as 837P/837I, outcomes as 835, one pair of files per day.

`write_x12_files(data, days, x12_dir)` writes, for each UTC day D (by `updated_at`, like the landing
files), `claims_D.837` with the claim rows that reached the source on D and `remittances_D.835` with
the remittance rows of D (a day without rows of a table gets no file). Reading them back
(`rcm_assets.lib.x12.read_x12`) gives the same source rows, so the pipeline can run from X12 alone.
The names are for people: the landing reader recognises X12 by its ISA header.

Envelopes (5010): separators `*` element, `:` sub-element, `^` repetition, `~` segment terminator
followed by a newline. ISA (16 fixed-width elements, ISA13 control number) / GS (GS06 group control,
GS08 version) / ST ... SE (SE01 segments from ST to SE, SE02 = ST02) / GE / IEA, counts and control
numbers matching. 837P sets carry version 005010X222A1, 837I sets 005010X223A2 (the two never share a
functional group), 835 sets 005010X221A1. All times are the facility's local wall-clock time
(CCYYMMDD, HHMMSS), from `facility_tz` (default `data.facility_tz`).

How the columns travel (the reader does the inverse):

    837  GS04/GS05       updated_at (a functional group per updated_at and kind)
         BHT04/BHT05     submitted_at (a transaction set per submitted_at in its group)
         CLM01 / CLM02   claim_id / billed_amount (also SV102, SV203)
         CLM05           837P <place_of_service>:B:<freq>; 837I 11:A:<freq> (facility type 11 = POS 21)
                         freq 1 = version 1; freq 7 = a later version, REF*D9*<claim_version>
         SBR09           plan_type: CI commercial, MB medicare, MC medicaid, ZZ self_pay
         2010BA          the patient as subscriber (SBR02 18): NM1*IL last/first, MI member_id; N3
                         patient_address; N4 city/state of the ZIP3, patient_zip (ZIP+4 as 9 digits);
                         DMG*D8 patient_dob, patient_sex (no DMG when the date of birth is missing)
         2010BB / 2010AA NM1*PR ... PI payer_id / NM1*85 ... XX billing_npi
         2310B / 2310A   837P NM1*82 rendering, 837I NM1*71 attending: XX rendering_npi
         HI              ABK icd10_primary (no dot), then ABF codes up to icd10_count (at most 12 per HI);
                         BK / BF (ICD-9-CM) when the primary is an ICD-9 code (hospital B before 2015-10-01
                         and its code-set defects), the other codes then from an ICD-9 pool
         REF*G1 / K3     prior_auth_number (when present) / ELIG-VERIFIED:Y|N
         LX/SV1|SV2/DTP  one line: HC:<cpt_code>[:modifiers], units (UN), DTP*472 service_date
    835  GS04/GS05       updated_at; a transaction set per updated_at, payer and adjudication date
         BPR16           the adjudication date
         CLP             claim_id, 1 (processed) or 4 (denied), charge, paid_amount, allowed - paid
         DTM*009 / AMT*AU adjudicated_at / allowed_amount
         CAS             carc_code: CO (denial, the charge), PR (CARC 1/2, allowed - paid), else CO
         MOA03           rarc_code

The 835 takes the payer, filing indicator, patient and charge of each remittance from the claim rows
(the submitted state of the claim's latest version); claim_status comes back as the reader derives it:
4 is denied, else partial when paid < allowed, else paid.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from rcm_assets.synthetic import world as ref
from rcm_assets.synthetic.generator import (
    FEMALE_FIRST,
    LAST_NAMES,
    MALE_FIRST,
    ORG_MNEMONICS,
    SyntheticData,
    _as_date,
    _atomic_write,
    landing_rows,
)

log = logging.getLogger("rcm.synthetic")

ELEMENT, SUB_ELEMENT, REPETITION, TERMINATOR = "*", ":", "^", "~"
SEGMENT_END = TERMINATOR + "\n"
DELIMITERS = frozenset(ELEMENT + SUB_ELEMENT + REPETITION + TERMINATOR + "\r\n")
_SHOWN_DELIMITERS = " ".join((ELEMENT, SUB_ELEMENT, REPETITION, TERMINATOR))
VERSION_837P = "005010X222A1"
VERSION_837I = "005010X223A2"
VERSION_835 = "005010X221A1"
INSTITUTIONAL_POS = "21"  # inpatient hospital: billed on an 837I
FACILITY_TYPE = "11"  # hospital inpatient (type of bill 11x), the reader maps it back to POS 21
REVENUE_CODE = "0360"  # operating room services: the inpatient surgery line
FILING_INDICATOR = {"commercial": "CI", "medicare": "MB", "medicaid": "MC", "self_pay": "ZZ"}
MAX_DX_837P = 12
MAX_DX_PER_HI = 12
MAX_MODIFIERS = 4
SENDER_ID, RECEIVER_ID = "RCMSYNTH", "RCMASSETS"
ISA_LENGTH = 106  # ISA with its terminator (before the newline)
# city and state of the ZIP3 areas the generator draws (N4 needs them; the reader ignores them)
ZIP3_CITY = {"750": ("DALLAS", "TX"), "751": ("DALLAS", "TX"), "752": ("DALLAS", "TX"),
             "760": ("FORT WORTH", "TX"), "761": ("FORT WORTH", "TX"), "770": ("HOUSTON", "TX"),
             "773": ("HOUSTON", "TX"), "774": ("HOUSTON", "TX"), "775": ("HOUSTON", "TX"),
             "782": ("SAN ANTONIO", "TX"), "786": ("AUSTIN", "TX"), "787": ("AUSTIN", "TX"),
             "794": ("LUBBOCK", "TX"), "797": ("MIDLAND", "TX"), "799": ("EL PASO", "TX"),
             "730": ("OKLAHOMA CITY", "OK"), "708": ("BATON ROUGE", "LA"), "871": ("ALBUQUERQUE", "NM"),
             "850": ("PHOENIX", "AZ")}
DEFAULT_CITY = ("DALLAS", "TX")
# extra diagnoses (only their number is data): distinct valid codes, dots removed
_DX_POOL = tuple(dict.fromkeys(c.replace(".", "") for c in ref.ICD10_CODES))[:30]
_DX9_POOL = ("4019", "25000", "2724", "V700", "78650", "7242", "4280", "49390", "5990", "3051", "27800", "71536")
_ICD10_GRAMMAR = re.compile(r"[A-Z][0-9][0-9A-Z](?:\.?[0-9A-Z]{1,4})?")
ICD10_EFFECTIVE = np.datetime64("2015-10-01")
_FIRST_NAMES = tuple(FEMALE_FIRST) + tuple(MALE_FIRST)
PAYEE = ("SYNTHETIC HEALTH PARTNERS", "1234567893")  # a Luhn-valid NPI (80840 prefix)


# ---------------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------------


def days_with_rows(data: SyntheticData) -> list[date]:
    """Every UTC day on which rows of either table reached the source (outcomes after the last
    generated day included): the days that hold the whole source."""
    stamps = pd.concat([data.claims["updated_at"], data.remittances["updated_at"]])
    return sorted({d.date() for d in stamps.dt.normalize().unique()})


def write_x12_files(data: SyntheticData, days: Iterable[date] | None, x12_dir: Path,
                    facility_tz: str | None = None) -> list[Path]:
    """`claims_D.837` (837P/837I) and `remittances_D.835` for each day D of `days` (None: every day
    with rows, `days_with_rows`), written atomically into `x12_dir`; returns the paths written.

    Times are local to `facility_tz` (default `data.facility_tz`). Deterministic: the same data give
    the same bytes. Raises ValueError for rows X12 cannot carry as they are (sub-second times,
    delimiter characters in a value, more than 12 diagnoses on a professional claim, more than 4
    modifiers)."""
    tz = facility_tz or data.facility_tz
    folder = Path(x12_dir)
    day_list = days_with_rows(data) if days is None else sorted({_as_date(d) for d in days})
    claim_info: pd.DataFrame | None = None
    written: list[Path] = []
    for day in day_list:
        claims = landing_rows(data, day, "claims")
        if len(claims):
            text = render_837(claims, tz, control_number(day, "837"))
            written.append(_write(folder / f"claims_{day.isoformat()}.837", text, len(claims)))
        remits = landing_rows(data, day, "remittances")
        if len(remits):
            if claim_info is None:
                claim_info = _claim_info(data.claims)
            text = render_835(remits, tz, control_number(day, "835"), claim_info)
            written.append(_write(folder / f"remittances_{day.isoformat()}.835", text, len(remits)))
    return written


def control_number(day: date, kind: str) -> int:
    """ISA13 of a day's file: YYMMDD then 837 or 835 (unique per day and kind, 9 digits)."""
    return int(f"{day:%y%m%d}{kind}")


def render_837(claims: pd.DataFrame, facility_tz: str, control: int) -> str:
    """One interchange of 837 transaction sets for claim rows (registry source columns): a functional
    group per (kind, updated_at), a transaction set per submitted_at within it, a CLM loop per row."""
    if not len(claims):
        raise ValueError("no claim rows to write")
    rows = _claim_fields(claims, facility_tz)
    inst = rows["institutional"]
    order = np.lexsort((np.arange(len(claims)), rows["submitted"], inst, rows["updated"]))
    groups = []
    for run in _nested_runs(order, (rows["updated"], inst), (rows["submitted"],)):
        first = run[0][0]
        sets = [_837_set(rows, idx, bool(inst[first])) for idx in run]
        version = VERSION_837I if inst[first] else VERSION_837P
        groups.append(("HC", rows["upd_date"][first], rows["upd_time"][first], version, "837", sets))
    last = int(np.argmax(rows["updated"]))  # the interchange is dated by its latest row
    return _interchange(groups, control, rows["upd_date"][last], rows["upd_time"][last])


def render_835(remits: pd.DataFrame, facility_tz: str, control: int,
               claim_info: pd.DataFrame | None = None) -> str:
    """One interchange of 835 transaction sets for remittance rows: a functional group per updated_at,
    a transaction set per (payer, adjudication date) within it, a CLP loop per row. `claim_info`
    (`_claim_info` of the claim rows, indexed by claim_id) supplies payer, patient and charge."""
    if not len(remits):
        raise ValueError("no remittance rows to write")
    rows = _remit_fields(remits, facility_tz, claim_info)
    payer = pd.factorize(rows["payer_key"], sort=True)[0]
    adj_day = pd.factorize(rows["adj_date"], sort=True)[0]
    order = np.lexsort((np.arange(len(remits)), adj_day, payer, rows["updated"]))
    groups = []
    for run in _nested_runs(order, (rows["updated"],), (payer, adj_day)):
        first = run[0][0]
        sets = [_835_set(rows, idx) for idx in run]
        groups.append(("HP", rows["upd_date"][first], rows["upd_time"][first], VERSION_835, "835", sets))
    last = int(np.argmax(rows["updated"]))  # the interchange is dated by its latest row
    return _interchange(groups, control, rows["upd_date"][last], rows["upd_time"][last])


# ---------------------------------------------------------------------------------------------------
# envelopes
# ---------------------------------------------------------------------------------------------------


def _changes(order: np.ndarray, keys: tuple[np.ndarray, ...]) -> np.ndarray:
    """Along `order` (row indexes), where a new run of equal keys starts."""
    change = np.zeros(len(order), dtype=bool)
    change[:1] = True
    for key in keys:
        k = key[order]
        change[1:] |= k[1:] != k[:-1]
    return change


def _nested_runs(order: np.ndarray, group_keys: tuple[np.ndarray, ...],
                 set_keys: tuple[np.ndarray, ...]) -> list[list[np.ndarray]]:
    """Functional groups of transaction sets: runs of equal `group_keys` along `order`, split into
    runs of equal `set_keys`; each set is the array of its row indexes, in order."""
    new_group = _changes(order, group_keys)
    new_set = new_group | _changes(order, set_keys)
    starts = np.flatnonzero(new_set)
    groups: list[list[np.ndarray]] = []
    for first, rows in zip(new_group[starts].tolist(), np.split(order, starts[1:]), strict=True):
        if first:
            groups.append([])
        groups[-1].append(rows)
    return groups


def _interchange(groups: list[tuple[str, str, str, str, str, list[list[str]]]], control: int,
                 isa_date: str, isa_time: str) -> str:
    """ISA ... IEA around functional groups (id code, GS04, GS05, version, set id, transaction sets),
    each set a list of segments without ST/SE. ST02 runs through the interchange."""
    isa = (f"ISA*00*{'':10}*00*{'':10}*ZZ*{SENDER_ID:<15}*ZZ*{RECEIVER_ID:<15}*{isa_date[2:]}*{isa_time[:4]}"
           f"*{REPETITION}*00501*{control:09d}*0*P*{SUB_ELEMENT}")
    if len(isa) + 1 != ISA_LENGTH:  # fixed widths: a reader finds the delimiters by position
        raise ValueError(f"ISA of {len(isa) + 1} characters (control number {control} longer than 9 digits?)")
    out = [isa]
    st_no = 0
    for gs_no, (code, gs_date, gs_time, version, set_id, sets) in enumerate(groups, start=1):
        out.append(f"GS*{code}*{SENDER_ID}*{RECEIVER_ID}*{gs_date}*{gs_time}*{gs_no}*X*{version}")
        for body in sets:
            st_no += 1
            out.append(f"ST*{set_id}*{st_no:04d}*{version}")
            out.extend(body)
            out.append(f"SE*{len(body) + 2}*{st_no:04d}")
        out.append(f"GE*{len(sets)}*{gs_no}")
    out.append(f"IEA*{len(groups)}*{control:09d}")
    return SEGMENT_END.join(out) + SEGMENT_END


def _write(path: Path, text: str, n_rows: int) -> Path:
    data = text.encode("ascii")
    _atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    log.info("wrote X12 file %s (%d rows, %d bytes)", path.name, n_rows, len(data))
    return path


# ---------------------------------------------------------------------------------------------------
# values
# ---------------------------------------------------------------------------------------------------


def _local(stamps: pd.Series, tz: str, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Naive UTC timestamps -> (int64 seconds for grouping, local CCYYMMDD, local HHMMSS)."""
    utc = stamps.to_numpy().astype("datetime64[ns]")
    if np.isnat(utc).any():
        raise ValueError(f"{name}: X12 needs a time on every row")
    ns = utc.astype(np.int64)
    if (ns % 1_000_000_000).any():
        raise ValueError(f"{name}: X12 carries whole seconds (HHMMSS); the rows have fractions of a second")
    local = pd.DatetimeIndex(utc).tz_localize("UTC").tz_convert(tz).tz_localize(None)
    text = np.datetime_as_string(local.to_numpy().astype("datetime64[s]"), unit="s").astype("S19")
    mat = text.view(np.uint8).reshape(-1, 19)
    return ns // 1_000_000_000, _ascii(mat[:, [0, 1, 2, 3, 5, 6, 8, 9]]), _ascii(mat[:, [11, 12, 14, 15, 17, 18]])


def _ymd(days: pd.Series) -> np.ndarray:
    text = np.datetime_as_string(days.to_numpy().astype("datetime64[D]"), unit="D").astype("S10")
    return _ascii(text.view(np.uint8).reshape(-1, 10)[:, [0, 1, 2, 3, 5, 6, 8, 9]])


def _ascii(mat: np.ndarray) -> np.ndarray:
    mat = np.ascontiguousarray(mat)
    return mat.view(f"S{mat.shape[1]}").ravel().astype(f"U{mat.shape[1]}").astype(object)


def _amount(value: float) -> str:
    """X12 decimal (R): cents at most, no trailing zeros ("120.5", "120"); parses back to the same
    float as the source's two-decimal amount."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _check_text(frame: pd.DataFrame, names: Iterable[str]) -> None:
    """Values must not contain a delimiter (the message names the column, never the value: PHI)."""
    pattern = "[" + "".join(sorted(DELIMITERS)).replace("^", r"\^") + "]"
    for name in names:
        s = frame[name].dropna().astype(str)
        if s.str.contains(pattern, regex=True).any():
            raise ValueError(f"{name}: a value contains an X12 delimiter ({_SHOWN_DELIMITERS} or a line break)")


def _npi_name(npi: str) -> tuple[str, str]:
    """A clinician's (last, first) name, a pure function of the NPI (the source has no provider names)."""
    k = int(npi)
    return LAST_NAMES[k % len(LAST_NAMES)].upper(), _FIRST_NAMES[(k // 7) % len(_FIRST_NAMES)].upper()


def _org(npi: str) -> tuple[str, str]:
    """A billing organisation's name and tax id, a pure function of its NPI."""
    k = int(npi)
    return f"{ORG_MNEMONICS[k % len(ORG_MNEMONICS)]} MEDICAL GROUP", f"{(k * 7919) % 900_000_000 + 100_000_000}"


def _city(zips: np.ndarray) -> list[tuple[str, str]]:
    return [ZIP3_CITY.get(z[:3], DEFAULT_CITY) for z in zips]


# ---------------------------------------------------------------------------------------------------
# 837
# ---------------------------------------------------------------------------------------------------

_837_TEXT = ("claim_id", "member_id", "patient_name", "patient_address", "patient_zip", "patient_sex",
             "payer_id", "billing_npi", "rendering_npi", "place_of_service", "cpt_code", "modifiers",
             "icd10_primary", "prior_auth_number")


def _claim_fields(c: pd.DataFrame, tz: str) -> dict[str, np.ndarray]:
    _check_text(c, _837_TEXT)
    updated, upd_date, upd_time = _local(c["updated_at"], tz, "updated_at")
    submitted, sub_date, sub_time = _local(c["submitted_at"], tz, "submitted_at")
    inst = (c["place_of_service"] == INSTITUTIONAL_POS).to_numpy()
    count = c["icd10_count"].to_numpy()
    if (count[~inst] > MAX_DX_837P).any():
        raise ValueError(f"icd10_count: an 837P carries at most {MAX_DX_837P} diagnoses")
    if (count > 1 + 2 * MAX_DX_PER_HI).any() or (count < 1).any():
        raise ValueError("icd10_count: between 1 and 25 diagnoses")
    mods = c["modifiers"].to_numpy(dtype=object)
    lines = [None if m is None or m != m else m.replace(",", SUB_ELEMENT) for m in mods]
    if any(m is not None and m.count(SUB_ELEMENT) >= MAX_MODIFIERS for m in lines):
        raise ValueError(f"modifiers: an X12 service line carries at most {MAX_MODIFIERS}")
    zips = c["patient_zip"].to_numpy(dtype=object)
    plan = c["plan_type"].map(FILING_INDICATOR)
    if plan.isna().any():
        raise ValueError(f"plan_type: X12 knows {sorted(FILING_INDICATOR)}")
    payer_names = c["payer_id"].map(lambda p: ref.PAYERS[p].name.upper() if p in ref.PAYERS else p)
    return {
        "institutional": inst, "updated": updated, "upd_date": upd_date, "upd_time": upd_time,
        "submitted": submitted, "sub_date": sub_date, "sub_time": sub_time,
        "claim_id": c["claim_id"].to_numpy(dtype=object),
        "version": c["claim_version"].to_numpy(),
        "member_id": c["member_id"].to_numpy(dtype=object),
        "name": [n.split(" ", 1) if " " in n else [n, n] for n in c["patient_name"]],
        "dob": _ymd(c["patient_dob"]),
        "address": c["patient_address"].to_numpy(dtype=object),
        "zip": [z.replace("-", "") for z in zips], "city": _city(zips),
        "sex": c["patient_sex"].to_numpy(dtype=object),
        "payer_id": c["payer_id"].to_numpy(dtype=object), "payer_name": payer_names.to_numpy(dtype=object),
        "filing": plan.to_numpy(dtype=object),
        "billing_npi": c["billing_npi"].to_numpy(dtype=object),
        "rendering_npi": c["rendering_npi"].to_numpy(dtype=object),
        "pos": c["place_of_service"].to_numpy(dtype=object),
        "cpt": c["cpt_code"].to_numpy(dtype=object), "mods": lines,
        "icd": [x.replace(".", "") for x in c["icd10_primary"]], "icd_count": count,
        "icd9": ((c["service_date"].to_numpy() < ICD10_EFFECTIVE)
                 | ~c["icd10_primary"].map(lambda x: bool(_ICD10_GRAMMAR.fullmatch(x))).to_numpy()),
        "units": c["units"].to_numpy(),
        "billed": [_amount(x) for x in c["billed_amount"].to_numpy(dtype=float)],
        "service": _ymd(c["service_date"]),
        "prior_auth": c["prior_auth_number"].to_numpy(dtype=object),
        "elig": c["eligibility_verified"].to_numpy(dtype=bool),
    }


def _diagnoses(primary: str, count: int, institutional: bool, icd9: bool = False) -> list[str]:
    """HI segments: ABK the principal code, then ABF codes up to `count`, at most 12 per segment (an
    837I keeps the principal diagnosis in its own segment); BK / BF and ICD-9 codes when `icd9`."""
    pool, qualifier = (_DX9_POOL, "B") if icd9 else (_DX_POOL, "AB")
    extra = [f"{qualifier}F{SUB_ELEMENT}{code}" for code in pool if code != primary][: count - 1]
    principal = f"{qualifier}K{SUB_ELEMENT}{primary}"
    if institutional:
        chunks = [[principal]] + [extra[k:k + MAX_DX_PER_HI] for k in range(0, len(extra), MAX_DX_PER_HI)]
    else:
        chunks = [[principal, *extra]]
    return ["HI*" + "*".join(chunk) for chunk in chunks]


def _837_set(r: dict[str, np.ndarray], idx: np.ndarray, institutional: bool) -> list[str]:
    """One 837 transaction set body (BHT to the last claim), the claims of `idx` in order."""
    first = idx[0]
    body = [f"BHT*0019*00*{r['sub_date'][first]}{int(first):06d}*{r['sub_date'][first]}*{r['sub_time'][first]}*CH",
            f"NM1*41*2*SYNTHETIC RCM SUBMITTER*****46*{SENDER_ID}",
            "PER*IC*EDI DESK*TE*8005550199",
            f"NM1*40*2*RCM ASSETS CLEARINGHOUSE*****46*{RECEIVER_ID}"]
    hl = 0
    for i in idx:
        hl += 2
        body.extend(_claim_segments(r, int(i), hl - 1, institutional))
    return body


def _claim_segments(r: dict[str, np.ndarray], i: int, hl: int, institutional: bool) -> list[str]:
    org, tin = _org(r["billing_npi"][i])
    first_name, last_name = r["name"][i]
    city, state = r["city"][i]
    version = int(r["version"][i])
    freq = "1" if version == 1 else "7"
    billed = r["billed"][i]
    procedure = f"HC{SUB_ELEMENT}{r['cpt'][i]}" + (f"{SUB_ELEMENT}{r['mods'][i]}" if r["mods"][i] else "")
    prov_last, prov_first = _npi_name(r["rendering_npi"][i])
    segs = [
        f"HL*{hl}**20*1",
        f"NM1*85*2*{org}*****XX*{r['billing_npi'][i]}",
        "N3*100 MEDICAL PARKWAY",
        "N4*DALLAS*TX*752011000",
        f"REF*EI*{tin}",
        f"HL*{hl + 1}*{hl}*22*0",
        f"SBR*P*18*******{r['filing'][i]}",
        f"NM1*IL*1*{last_name}*{first_name}****MI*{r['member_id'][i]}",
        f"N3*{r['address'][i]}",
        f"N4*{city}*{state}*{r['zip'][i]}",
        *([f"DMG*D8*{r['dob'][i]}*{r['sex'][i]}"] if r["dob"][i] != "NaT" else []),
        f"NM1*PR*2*{r['payer_name'][i]}*****PI*{r['payer_id'][i]}",
    ]
    if institutional:
        segs += [f"CLM*{r['claim_id'][i]}*{billed}***{FACILITY_TYPE}:A:{freq}**A*Y*Y",
                 f"DTP*434*RD8*{r['service'][i]}-{r['service'][i]}",
                 "CL1*1*1*01"]
    else:
        segs.append(f"CLM*{r['claim_id'][i]}*{billed}***{r['pos'][i]}:B:{freq}*Y*A*Y*Y")
    if r["prior_auth"][i] is not None:
        segs.append(f"REF*G1*{r['prior_auth'][i]}")
    if version > 1:
        segs.append(f"REF*D9*{version}")
    segs.append(f"K3*ELIG-VERIFIED{SUB_ELEMENT}{'Y' if r['elig'][i] else 'N'}")
    segs.extend(_diagnoses(r["icd"][i], int(r["icd_count"][i]), institutional, bool(r["icd9"][i])))
    units = int(r["units"][i])
    if institutional:
        segs += [f"NM1*71*1*{prov_last}*{prov_first}****XX*{r['rendering_npi'][i]}",
                 "LX*1",
                 f"SV2*{REVENUE_CODE}*{procedure}*{billed}*UN*{units}"]
    else:
        segs += [f"NM1*82*1*{prov_last}*{prov_first}****XX*{r['rendering_npi'][i]}",
                 "LX*1",
                 f"SV1*{procedure}*{billed}*UN*{units}***1"]
    segs.append(f"DTP*472*D8*{r['service'][i]}")
    return segs


# ---------------------------------------------------------------------------------------------------
# 835
# ---------------------------------------------------------------------------------------------------


def _claim_info(claims: pd.DataFrame) -> pd.DataFrame:
    """Per claim_id, what an 835 says about the claim besides the outcome: payer, filing indicator,
    patient and the charge, from the submitted (first) state of the claim's latest version."""
    cols = ["claim_id", "claim_version", "updated_at", "payer_id", "plan_type", "patient_name", "member_id",
            "billed_amount"]
    c = claims[cols].sort_values(["claim_id", "claim_version", "updated_at"], kind="stable")
    latest = c.drop_duplicates(["claim_id", "claim_version"], keep="first").drop_duplicates("claim_id", keep="last")
    return latest.set_index("claim_id")


def _remit_fields(rem: pd.DataFrame, tz: str, info: pd.DataFrame | None) -> dict[str, np.ndarray]:
    _check_text(rem, ("claim_id", "carc_code", "rarc_code"))
    updated, upd_date, upd_time = _local(rem["updated_at"], tz, "updated_at")
    _, adj_date, adj_time = _local(rem["adjudicated_at"], tz, "adjudicated_at")
    if info is None:
        info = pd.DataFrame(columns=["payer_id", "plan_type", "patient_name", "member_id", "billed_amount"])
    known = info.reindex(rem["claim_id"])
    _check_text(known, ("payer_id", "patient_name", "member_id"))
    paid = rem["paid_amount"].to_numpy(dtype=float)
    allowed = rem["allowed_amount"].to_numpy(dtype=float)
    denied = (rem["claim_status"] == "denied").to_numpy()
    billed = known["billed_amount"].to_numpy(dtype=float)
    # the charge: what was billed for a denial (the whole charge is adjusted), else the allowed amount
    # (charge - paid = the patient's share, so the claim balances); never zero
    fallback = np.maximum(allowed, paid) + 1.0
    charge = np.where(denied, np.where(np.isnan(billed), fallback, billed), np.maximum(allowed, paid))
    charge = np.where(charge > 0, charge, fallback)
    payer = known["payer_id"].to_numpy(dtype=object)
    payer_key = np.array([p if isinstance(p, str) else "" for p in payer], dtype=object)
    return {
        "updated": updated, "upd_date": upd_date, "upd_time": upd_time, "adj_date": adj_date,
        "adj_time": adj_time, "payer_key": payer_key,
        "claim_id": rem["claim_id"].to_numpy(dtype=object),
        "denied": denied, "paid": paid, "allowed": allowed, "charge": charge,
        "carc": rem["carc_code"].to_numpy(dtype=object), "rarc": rem["rarc_code"].to_numpy(dtype=object),
        "filing": known["plan_type"].map(FILING_INDICATOR).fillna("12").to_numpy(dtype=object),
        "patient": known["patient_name"].to_numpy(dtype=object),
        "member_id": known["member_id"].to_numpy(dtype=object),
    }


def _835_set(r: dict[str, np.ndarray], idx: np.ndarray) -> list[str]:
    """One 835 transaction set body: one payment (BPR) of one payer on one date, a CLP loop per row."""
    first = int(idx[0])
    payer_id = r["payer_key"][first]
    payer_name = ref.PAYERS[payer_id].name.upper() if payer_id in ref.PAYERS else (payer_id or "UNKNOWN PAYER")
    payer_tin = 100_000_000 + (ref.PAYER_IDS.index(payer_id) if payer_id in ref.PAYERS else 99) * 1_111_111
    total = float(np.round(r["paid"][idx].sum(), 2))
    adj_date = r["adj_date"][first]
    method = f"I*{_amount(total)}*C*CHK" if total > 0 else "H*0*C*NON"
    body = [f"BPR*{method}************{adj_date}",
            f"TRN*1*{adj_date}{first:06d}*1{payer_tin}",
            f"DTM*405*{adj_date}",
            f"N1*PR*{payer_name}",
            "N3*PO BOX 1000",
            "N4*DALLAS*TX*75201",
            "PER*BL*EDI SUPPORT*TE*8005550100",
            f"N1*PE*{PAYEE[0]}*XX*{PAYEE[1]}",
            "LX*1"]
    for i in idx:
        body.extend(_clp_segments(r, int(i)))
    return body


def _clp_segments(r: dict[str, np.ndarray], i: int) -> list[str]:
    paid, allowed, charge = r["paid"][i], r["allowed"][i], r["charge"][i]
    patient_share = max(round(allowed - paid, 2), 0.0)
    segs = [f"CLP*{r['claim_id'][i]}*{'4' if r['denied'][i] else '1'}*{_amount(charge)}*{_amount(paid)}"
            f"*{_amount(patient_share)}*{r['filing'][i]}*{r['adj_date'][i]}{i:07d}"]
    carc = r["carc"][i]
    if carc is not None and carc == carc:
        if r["denied"][i]:
            group, amount = "CO", charge
        elif carc in ("1", "2"):  # deductible, coinsurance: the patient's share
            group, amount = "PR", patient_share
        else:
            group, amount = "CO", max(round(charge - paid, 2), 0.0)
        segs.append(f"CAS*{group}*{carc}*{_amount(amount)}")
    patient = r["patient"][i]
    if isinstance(patient, str):
        first_name, last_name = patient.split(" ", 1) if " " in patient else (patient, patient)
        segs.append(f"NM1*QC*1*{last_name}*{first_name}****MI*{r['member_id'][i]}")
    rarc = r["rarc"][i]
    if rarc is not None and rarc == rarc:
        segs.append(f"MOA***{rarc}")
    segs += [f"DTM*009*{r['adj_date'][i]}*{r['adj_time'][i]}", f"AMT*AU*{_amount(allowed)}"]
    return segs
