"""Statistics learned point in time from first adjudications, for what no reference table gives.

A hospital knows its payers' denial habits only from its own remittances. The evidence is one row per
claim version: its *first* adjudication (the label rule of `lib/labels`), with the keys of the version as
it was submitted (payer, procedure code, 3-character diagnosis category, provider = rendering NPI else
billing NPI, days from service to submission, billed amount per unit) and the outcome (denied, CARC). A
row is known from its **known day**: the day its remittance arrived (the silver remittances partition it
landed in), or the UTC day its claim was submitted when that is later (it never is in sane data; the
guard keeps a charge submitted on or after D out of D).

For each day D the statistics use only the evidence known on [D - window_days, D - 1] (strictly before D):

- denial log-odds per payer, procedure, diagnosis, provider and payer x procedure: the m-estimate
  (k + m p) / (n + m) of a key with n adjudications and k denials, shrunk toward the window's global
  denial rate p (itself shrunk toward `default_denial_rate`, so an empty window gives that rate), as
  logit. An unseen or missing key gets logit(p): thousands of codes need no category list;
- procedure x diagnosis inconsistency rate: CARC 11 ("diagnosis inconsistent with the procedure")
  denials of the pair / (n + m), i.e. shrunk toward 0;
- typical charge per unit: the geometric mean of billed / units of the payer x procedure when it has at
  least `min_payer_charge_history` rows, else of the procedure, else NaN (no history);
- filing limit per payer from timely-filing denials (CARC 29): with at least `min_filing_denials` of them
  in the window, the smallest days-to-submit among them, nothing subtracted, else NaN (not learned). A
  claim submitted that late was refused, so the true limit L is below it: the estimate is an upper bound,
  L + 1 once a denial sits right past the limit, and `days_to_submit >= estimate` marks the delays the
  payer is known to have refused. One stray CARC 29 below the limit pulls it down: hence the minimum count.

Efficient over long windows: the evidence is aggregated once per (key, day) and summed through prefix
sums, so a day's window sum is two binary searches, not a recompute (`LearnedTables`): 605,000 evidence
rows (a year before 240 days of 1,000 claims) build in 1.5-2.6 s, the 240,000 rows' features take
1.1-2.6 s (a shared 2-core machine).
Pure: no Dagster; `defs/learned.py` reads the evidence from the lake.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from rcm_assets.lib import code_structure, settings
from rcm_assets.lib.columns import CARC_CATEGORIES

LEARNED_FEATURES: tuple[str, ...] = (
    "payer_denial_logit", "procedure_denial_logit", "diagnosis_denial_logit", "provider_denial_logit",
    "payer_procedure_denial_logit", "procedure_diagnosis_inconsistency_rate", "learned_typical_charge",
    "learned_filing_limit_days", "group_chapter_inconsistency_rate", "payer_group_chapter_inconsistency_rate",
    "payer_procedure_authorization_rate", "procedure_frequency_denial_rate", "payer_frequency_denial_rate",
    "payer_procedure_auth_number_share",
)
FEATURE_DESCRIPTIONS: dict[str, str] = {
    "payer_denial_logit": "Shrunken denial log-odds of the payer, from first adjudications known before the day",
    "procedure_denial_logit": "Shrunken denial log-odds of the procedure code, known before the day",
    "diagnosis_denial_logit": "Shrunken denial log-odds of the 3-character diagnosis category, known before the day",
    "provider_denial_logit": "Shrunken denial log-odds of the provider (rendering else billing NPI), known before the day",
    "payer_procedure_denial_logit": "Shrunken denial log-odds of the payer x procedure, known before the day",
    "procedure_diagnosis_inconsistency_rate": ("Share of the procedure x diagnosis pair's adjudications denied "
                                               "as inconsistent (CARC 11), shrunk toward 0, known before the day"),
    "learned_typical_charge": ("Geometric mean billed amount per unit of the payer x procedure (else the "
                               "procedure) before the day; NaN without history"),
    "learned_filing_limit_days": ("Payer filing limit learned from timely-filing denials (CARC 29) before the "
                                  "day: the smallest days-to-submit among them; NaN when not learned"),
    "group_chapter_inconsistency_rate": ("Share of the procedure subsection x diagnosis chapter's adjudications "
                                         "denied as inconsistent (CARC 11), all payers, shrunk toward 0, known "
                                         "before the day"),
    "payer_group_chapter_inconsistency_rate": ("The same share at the claim's payer, shrunk toward the all-payer "
                                               "share (payers flip edits), known before the day"),
    "payer_procedure_authorization_rate": ("Share of the payer x procedure's versions sent without an "
                                           "authorization number that were denied for authorization (CARC 197 "
                                           "group), shrunk toward the payer x procedure subsection's share "
                                           "(itself shrunk toward 0), known before the day"),
    "procedure_frequency_denial_rate": ("Share of the procedure code's adjudications denied for frequency or "
                                        "benefit maximum (CARC 119, 151), shrunk toward 0, known before the day"),
    "payer_frequency_denial_rate": ("Share of the payer's adjudications denied for frequency or benefit maximum "
                                    "(CARC 119, 151), shrunk toward 0, known before the day"),
    "payer_procedure_auth_number_share": ("Share of the payer x procedure's adjudicated versions the hospital sent "
                                          "with an authorization number (its billers obtain one where the payer "
                                          "requires it), shrunk toward the payer x subsection's share, known before "
                                          "the day"),
}

# The evidence table (silver/adjudication_evidence): dtype and meaning of each column.
EVIDENCE_COLUMNS: dict[str, tuple[str, str]] = {
    "claim_id": ("object", "Claim number assigned by the billing system (X12 CLM01)"),
    "claim_version": ("int64", "The claim version the first adjudication answers"),
    "submitted_at": ("datetime64[ns]", "When the version was submitted (UTC)"),
    "adjudicated_at": ("datetime64[ns]", "When the payer first adjudicated the version (UTC)"),
    "arrived_at": ("datetime64[ns]", "When that remittance row reached the source (its updated_at)"),
    "payer_id": ("object", "Payer of the version as submitted"),
    "cpt_code": ("object", "Procedure code (CPT/HCPCS) of the version as submitted"),
    "diagnosis_category": ("object", "First three characters of the primary diagnosis as submitted"),
    "provider": ("object", "Rendering NPI of the version, else its billing NPI"),
    "days_to_submit": ("float64", "Days from the service date to submission (facility time zone); NaN if unknown"),
    "billed_per_unit": ("float64", "Billed amount / units of the version as submitted"),
    "prior_auth_present": ("int64", "1 when the version was submitted with a prior-authorization number"),
    "denied": ("int64", "1 when the first adjudication denied the version"),
    "carc_code": ("object", "CARC of the first adjudication (bare, e.g. '29'); null when none"),
    "dt": ("object", "Arrival day of the remittance (the silver remittances partition it landed in)"),
}
INCONSISTENT_CARC = "11"
TIMELY_FILING_CARC = "29"
AUTHORIZATION_CARCS = tuple(sorted(c for c, kind in CARC_CATEGORIES.items() if kind == "authorization"))
FREQUENCY_CARCS = ("119", "151")  # benefit maximum for the period reached; frequency not supported
_SEP = "\x1f"  # joins two keys into one (never in a code or an id)


@dataclass(frozen=True)
class LearnedConfig:
    """Knobs of the learned statistics (part of `LearnedTables.version`).

    window_days: evidence known on [D - window_days, D - 1] decides day D.
    prior_strength: m of the m-estimate (pseudo-adjudications at the prior rate).
    default_denial_rate: the prior's own prior, what an empty window gives.
    min_filing_denials: CARC 29 denials of a payer in the window before a filing limit is learned.
    min_payer_charge_history: rows of a payer x procedure before its own typical charge replaces the code's.
    rule_prior_strength: m of the CARC shares that reflect a payer's rules (code x diagnosis edits,
        authorization lists): a rule holds for a whole cell, so a few denials of a cell say more than they
        would of a denial rate, and these shares are shrunk toward a coarser cell with this smaller m.
    """

    window_days: int = 365
    prior_strength: float = 20.0
    default_denial_rate: float = 0.1
    min_filing_denials: int = 3
    min_payer_charge_history: int = 10
    rule_prior_strength: float = 3.0

    def __post_init__(self) -> None:
        if self.window_days < 1:
            raise ValueError(f"window_days must be at least 1: {self.window_days}")
        if not self.prior_strength > 0 or not self.rule_prior_strength > 0:
            raise ValueError(f"prior_strength and rule_prior_strength must be positive: {self.prior_strength}, "
                             f"{self.rule_prior_strength}")
        if not 0 < self.default_denial_rate < 1:
            raise ValueError(f"default_denial_rate must be in (0, 1): {self.default_denial_rate}")
        if self.min_filing_denials < 1 or self.min_payer_charge_history < 1:
            raise ValueError("min_filing_denials and min_payer_charge_history must be at least 1")


DEFAULT_CONFIG = LearnedConfig()


# --------------------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------------------


def _normalized(values: pd.Series, *, upper: bool = True, length: int | None = None) -> np.ndarray:
    """Keys as text (stripped, upper case, dots removed from codes, cut to `length`); None when missing."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    text = pd.Series(uniques, dtype=object).astype(str).str.strip()
    if upper:
        text = text.str.upper().str.replace(".", "", regex=False)
    if length is not None:
        text = text.str[:length]
    mapped = np.append(text.where(text.ne("") & text.str.upper().ne("NAN") & text.ne("<NA>"), None)
                       .to_numpy(dtype=object), None)
    return mapped[codes]  # code -1 (missing) picks the appended None


def diagnosis_category(values: pd.Series) -> np.ndarray:
    """The 3-character category of each diagnosis code ('E11.9' -> 'E11'); None when missing."""
    return _normalized(values, length=3)


def provider_of(rendering: pd.Series | None, billing: pd.Series | None, n: int) -> np.ndarray:
    """The rendering NPI, else the billing NPI; None when neither is given."""
    out = np.full(n, None, dtype=object)
    for column in (billing, rendering):  # rendering last: it wins where present
        if column is not None:
            values = _normalized(column, upper=False)
            out = np.where(pd.notna(values), values, out)
    return out


def _day_numbers(days: Sequence[str] | np.ndarray | pd.Series) -> np.ndarray:
    """'YYYY-MM-DD' texts as int64 days since 1970-01-01 (parsed once per distinct day)."""
    codes, uniques = pd.factorize(days if isinstance(days, pd.Series) else pd.Series(days, dtype=object))
    parsed = pd.to_datetime(pd.Series([str(u) for u in uniques], dtype=object), format="%Y-%m-%d")
    return parsed.to_numpy(dtype="datetime64[D]").astype("int64")[codes]


def _iso(day_number: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=int(day_number))).isoformat()


# --------------------------------------------------------------------------------------------------
# Evidence
# --------------------------------------------------------------------------------------------------


def empty_evidence() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series([], dtype=dtype) for name, (dtype, _) in EVIDENCE_COLUMNS.items()})


def adjudication_evidence(first: pd.DataFrame, versions: pd.DataFrame,
                          facility_tz: str = settings.DEFAULT_FACILITY_TZ) -> pd.DataFrame:
    """Evidence rows: each first adjudication in `first` (claim_id, claim_version, adjudicated_at,
    updated_at = arrival, denied, carc_code, dt = arrival day) with the decision-time keys of the version it
    answers as submitted (`versions`: one row per claim_id, claim_version with submitted_at, payer_id,
    cpt_code, icd10_primary, rendering_npi / billing_npi, units, billed_amount, service_date). A first
    adjudication whose version is not in `versions` is left out. Columns `EVIDENCE_COLUMNS`."""
    need_first = ["claim_id", "claim_version", "adjudicated_at", "updated_at", "denied", "carc_code", "dt"]
    need_versions = ["claim_id", "claim_version", "submitted_at", "payer_id", "cpt_code", "icd10_primary",
                     "units", "billed_amount", "service_date", "prior_auth_number"]
    for name, frame, need in (("first adjudications", first, need_first), ("claim versions", versions,
                                                                            need_versions)):
        missing = [c for c in need if c not in frame.columns]
        if missing:
            raise KeyError(f"{name} frame lacks column(s) {', '.join(missing)}")
    if first.empty or versions.empty:
        return empty_evidence()
    keep = [*need_versions, *[c for c in ("rendering_npi", "billing_npi") if c in versions.columns]]
    v = versions[keep].drop_duplicates(["claim_id", "claim_version"], keep="first")
    f = first[need_first].astype({"claim_id": object, "claim_version": "int64"})
    rows = f.merge(v.astype({"claim_id": object, "claim_version": "int64"}), on=["claim_id", "claim_version"],
                   how="inner", sort=False)
    n = len(rows)
    submitted_on = settings.local_dates(rows["submitted_at"], facility_tz)
    service = pd.to_datetime(rows["service_date"], errors="coerce")
    days_to_submit = (submitted_on - service).dt.days.astype("float64")
    units = pd.to_numeric(rows["units"], errors="coerce").astype("float64")
    billed = pd.to_numeric(rows["billed_amount"], errors="coerce").astype("float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        per_unit = np.where(units > 0, billed / units, np.nan)
    carc = _normalized(rows["carc_code"])
    out = pd.DataFrame({
        "claim_id": rows["claim_id"].astype(object).to_numpy(),
        "claim_version": rows["claim_version"].to_numpy(dtype="int64"),
        "submitted_at": rows["submitted_at"].to_numpy(dtype="datetime64[ns]"),
        "adjudicated_at": rows["adjudicated_at"].to_numpy(dtype="datetime64[ns]"),
        "arrived_at": rows["updated_at"].to_numpy(dtype="datetime64[ns]"),
        "payer_id": _normalized(rows["payer_id"], upper=False),
        "cpt_code": _normalized(rows["cpt_code"]),
        "diagnosis_category": diagnosis_category(rows["icd10_primary"]),
        "provider": provider_of(rows.get("rendering_npi"), rows.get("billing_npi"), n),
        "days_to_submit": days_to_submit.to_numpy(dtype="float64"),
        "billed_per_unit": per_unit.astype("float64"),
        "prior_auth_present": pd.notna(_normalized(rows["prior_auth_number"], upper=False)).astype("int64"),
        "denied": rows["denied"].astype(bool).to_numpy().astype("int64"),
        "carc_code": carc,
        "dt": rows["dt"].astype(str).to_numpy(dtype=object),
    })
    return out.sort_values(["arrived_at", "claim_id", "claim_version"], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------------------
# Window sums over daily aggregates
# --------------------------------------------------------------------------------------------------


class _Vocab:
    """The distinct values of one key in the evidence, as int codes (-1: missing or unseen)."""

    def __init__(self, values: pd.Series) -> None:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)  # object or categorical
        self.index = pd.Index(uniques, dtype=object)
        self.evidence_codes = codes.astype("int64")

    def __len__(self) -> int:
        return len(self.index)

    def codes(self, values: np.ndarray) -> np.ndarray:
        """Codes of other values (a view's): looked up once per distinct value."""
        codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
        found = np.append(self.index.get_indexer(pd.Index(uniques, dtype=object)), -1)
        return found[codes].astype("int64")


def _pair_codes(a: np.ndarray, b: np.ndarray, size_b: int) -> np.ndarray:
    """One code of two (-1 when either is -1)."""
    return np.where((a >= 0) & (b >= 0), a * max(size_b, 1) + b, -1)


def _mapped(values: np.ndarray, fn: object) -> np.ndarray:
    """fn(value) per distinct value, broadcast; None stays None."""
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    table = np.array([fn(u) for u in uniques] + [None], dtype=object)  # type: ignore[operator]
    return table[codes]


def _joined(*parts: np.ndarray) -> np.ndarray:
    """One text key of several (None when any part is None)."""
    frame = pd.DataFrame({str(k): pd.Series(p, dtype=object) for k, p in enumerate(parts)})
    missing = frame.isna().any(axis=1).to_numpy()
    key = frame.iloc[:, 0].astype(str)
    for k in range(1, frame.shape[1]):
        key = key + _SEP + frame.iloc[:, k].astype(str)
    return np.where(missing, None, key.to_numpy(dtype=object))


def coarse_keys(payer: np.ndarray, procedure: np.ndarray, diagnosis: np.ndarray) -> dict[str, np.ndarray]:
    """The coarse keys of rows from their normalized payer, procedure code and 3-character diagnosis category:
    the procedure's public subsection (`code_structure.procedure_subsection`) and the diagnosis chapter, alone
    and with the payer (payers deny code x diagnosis pairs by group and chapter, and authorization by code
    groups, so a code or pair never seen still has evidence)."""
    group = _mapped(procedure, lambda c: None if c is None else code_structure.procedure_subsection(c))
    chapter = _mapped(diagnosis, lambda d: None if d is None else code_structure.icd_chapter(d))
    group_chapter = _joined(group, chapter)
    return {"group_chapter": group_chapter, "payer_group_chapter": _joined(payer, group_chapter),
            "payer_group": _joined(payer, group)}


@dataclass(frozen=True, eq=False)
class _WindowSums:
    """Per-key daily sums of some values, queried as sums over a day range by prefix sums.

    Entries are sorted by `key code * span + day offset`, so the entries of one key on days [lo, hi] are
    one contiguous slice found by two binary searches; its sum is a difference of prefix sums."""

    composite: np.ndarray
    prefix: np.ndarray  # (entries + 1, values): prefix[i] = sum of the first i entries
    day0: int
    span: int

    @staticmethod
    def _layout(codes: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, int, int]:
        day0 = int(days.min()) if len(days) else 0
        span = int(days.max()) - day0 + 2 if len(days) else 2
        return codes * span + (days - day0), day0, span

    @classmethod
    def build(cls, codes: np.ndarray, days: np.ndarray, values: np.ndarray) -> _WindowSums:
        present = codes >= 0
        composite, day0, span = cls._layout(codes[present], days[present])
        # hash the (key, day) entries, then sort only the distinct ones (far fewer than the rows)
        inverse, distinct = pd.factorize(composite)
        order = np.argsort(distinct, kind="stable")
        rank = np.empty(len(order), dtype="int64")
        rank[order] = np.arange(len(order))
        entries, inverse = distinct[order], rank[inverse]
        sums = np.column_stack([np.bincount(inverse, weights=column, minlength=len(entries))
                                for column in values[present].T]) if len(entries) else np.zeros((0, values.shape[1]))
        prefix = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(sums, axis=0)])
        return cls(entries, prefix, day0, span)

    def bounds(self, codes: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Entry slices [left, right) of each key on days [lo, hi] (empty for code -1); the binary searches
        run once per distinct (key, day) query, in sorted order."""
        lo_off = np.clip(lo - self.day0, 0, self.span - 1)
        hi_off = np.clip(hi - self.day0, -1, self.span - 2)
        base = codes.astype("int64") * self.span
        first = int(lo.min()) if len(lo) else 0
        query = codes.astype("int64") * (int(lo.max()) - first + 1 if len(lo) else 1) + (lo - first)
        inverse, distinct = pd.factorize(query)
        at = np.empty(len(distinct), dtype="int64")
        at[inverse[::-1]] = np.arange(len(inverse))[::-1]  # the first row of each distinct (key, day) query
        left = np.searchsorted(self.composite, (base + lo_off)[at], side="left")[inverse]
        right = np.searchsorted(self.composite, (base + hi_off)[at], side="right")[inverse]
        right = np.where((codes >= 0) & (hi_off >= lo_off), np.maximum(right, left), left)
        return left, right

    def window(self, codes: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        left, right = self.bounds(codes, lo, hi)
        return self.prefix[right] - self.prefix[left]


@dataclass(frozen=True, eq=False)
class _WindowMin:
    """Per-key raw values (one entry per evidence row), queried as count and minimum over a day range."""

    index: _WindowSums  # the rows in composite order; its prefix counts rows
    values: np.ndarray  # the rows' values in that order

    @classmethod
    def build(cls, codes: np.ndarray, days: np.ndarray, values: np.ndarray) -> _WindowMin:
        present = (codes >= 0) & ~np.isnan(values)
        composite, day0, span = _WindowSums._layout(codes[present], days[present])
        order = np.argsort(composite, kind="stable")
        prefix = np.arange(len(order) + 1, dtype="float64")[:, None]
        return cls(_WindowSums(composite[order], prefix, day0, span), values[present][order])

    def window(self, codes: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        left, right = self.index.bounds(codes, lo, hi)
        count = right - left
        padded = np.append(self.values, np.inf)  # reduceat needs every index inside the array
        mins = (np.minimum.reduceat(padded, np.column_stack([left, right]).ravel())[::2] if len(left)
                else np.zeros(0))
        return count, np.where(count > 0, mins, np.nan)


# --------------------------------------------------------------------------------------------------
# The tables
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class _Codes:
    """The key codes of some rows (evidence or a view) in the tables' vocabularies."""

    payer: np.ndarray
    procedure: np.ndarray
    diagnosis: np.ndarray
    provider: np.ndarray
    payer_procedure: np.ndarray
    procedure_diagnosis: np.ndarray
    group_chapter: np.ndarray
    payer_group_chapter: np.ndarray
    payer_group: np.ndarray


@dataclass(frozen=True, eq=False)
class LearnedTables:
    """The learned statistics of each day of `days`, from the evidence known strictly before it.

    Built by `build_learned_tables`; `learned_features` reads them; `version(day)` names what decided a
    day (configuration and evidence of its window) for gold's metadata. `days_missing` counts window days
    whose evidence partition was never written (the reader counts them, it does not guess)."""

    config: LearnedConfig
    days: tuple[str, ...]
    vocab: dict[str, _Vocab] = field(repr=False)
    denials: dict[str, _WindowSums] = field(repr=False)
    charges: dict[str, _WindowSums] = field(repr=False)
    filing: _WindowMin = field(repr=False)
    evidence: pd.DataFrame = field(repr=False)  # the rows counted, with their `known` day
    days_missing: int = 0

    @functools.cached_property
    def day_digests(self) -> dict[int, int]:
        """Per known day, an order-free digest of its evidence rows (computed once, on first use)."""
        if self.evidence.empty:
            return {}
        hashed = pd.util.hash_pandas_object(self.evidence[DIGEST_COLUMNS], index=False).to_numpy(dtype="uint64")
        sums = pd.Series(hashed).groupby(self.evidence["known"].to_numpy()).sum()
        return {int(k): int(v) for k, v in sums.items()}

    def codes(self, payer: np.ndarray, procedure: np.ndarray, diagnosis: np.ndarray,
              provider: np.ndarray) -> _Codes:
        p, c, d = (self.vocab[k].codes(v) for k, v in
                   (("payer", payer), ("procedure", procedure), ("diagnosis", diagnosis)))
        coarse = {k: self.vocab[k].codes(v) for k, v in coarse_keys(payer, procedure, diagnosis).items()}
        return _Codes(p, c, d, self.vocab["provider"].codes(provider),
                      _pair_codes(p, c, len(self.vocab["procedure"])),
                      _pair_codes(c, d, len(self.vocab["diagnosis"])), **coarse)

    def window_of(self, day: str) -> tuple[int, int]:
        """The known days [lo, hi] (day numbers) whose evidence decides `day`."""
        d = int(_day_numbers([day])[0])
        return d - self.config.window_days, d - 1

    def evidence_rows(self, day: str) -> int:
        """Evidence rows known in the window of `day`."""
        lo, hi = self.window_of(day)
        return int(self.denials["all"].window(np.zeros(1, dtype="int64"), np.array([lo]), np.array([hi]))[0, 0])

    def version(self, day: str) -> str:
        """A short content version of `day`'s statistics: the configuration and the evidence of its window."""
        lo, hi = self.window_of(day)
        digest = hashlib.sha256(repr(self.config).encode())
        for d in sorted(k for k in self.day_digests if lo <= k <= hi):
            digest.update(f"{d}:{self.day_digests[d]};".encode())
        return f"{self.evidence_rows(day)}ev-{digest.hexdigest()[:12]}"


def _known_days(evidence: pd.DataFrame) -> np.ndarray:
    """The day each evidence row is known from: its arrival day, or its UTC submission day if later."""
    arrived = _day_numbers(evidence["dt"])
    submitted = pd.to_datetime(evidence["submitted_at"]).to_numpy(dtype="datetime64[D]")
    submitted = np.where(np.isnat(submitted), np.datetime64("1970-01-01"), submitted).astype("int64")
    return np.maximum(arrived, submitted)


# what decides the statistics (not the claim ids): a version digest of the rows counted
DIGEST_COLUMNS = ["payer_id", "cpt_code", "diagnosis_category", "provider", "known", "denied", "carc_code",
                  "days_to_submit", "billed_per_unit", "prior_auth_present"]


def build_learned_tables(evidence: pd.DataFrame, days: Sequence[str], config: LearnedConfig = DEFAULT_CONFIG,
                         days_missing: int = 0, *, distinct_versions: bool = False) -> LearnedTables:
    """The statistics of each of `days` from `evidence` (rows of `EVIDENCE_COLUMNS`, text columns object or
    categorical; pass at least the window before the days: evidence outside a day's window is ignored, so
    more is harmless).

    One version counts once: its earliest-arriving row (a range of evidence days read twice, or a version
    stored on two days, adds nothing). A caller that has checked the versions are distinct says so with
    `distinct_versions` and may leave out claim_id (the costliest column to read)."""
    needed = [c for c in EVIDENCE_COLUMNS if not (distinct_versions and c in ("claim_id", "claim_version"))]
    missing = [c for c in needed if c not in evidence.columns]
    if missing:
        raise KeyError(f"evidence frame lacks column(s) {', '.join(missing)} (expected EVIDENCE_COLUMNS)")
    ev = evidence if distinct_versions else evidence.sort_values("arrived_at", kind="stable").drop_duplicates(
        ["claim_id", "claim_version"], keep="first")
    known = _known_days(ev) if len(ev) else np.zeros(0, dtype="int64")
    denied = ev["denied"].to_numpy(dtype="float64")
    vocab = {"payer": _Vocab(ev["payer_id"]), "procedure": _Vocab(ev["cpt_code"]),
             "diagnosis": _Vocab(ev["diagnosis_category"]), "provider": _Vocab(ev["provider"])}
    payer, cpt, dx = (vocab[k].evidence_codes for k in ("payer", "procedure", "diagnosis"))
    payer_cpt = _pair_codes(payer, cpt, len(vocab["procedure"]))
    cpt_dx = _pair_codes(cpt, dx, len(vocab["diagnosis"]))
    coarse = coarse_keys(*(_normalized(ev[c], upper=c != "payer_id") for c in
                           ("payer_id", "cpt_code", "diagnosis_category")))
    vocab |= {k: _Vocab(pd.Series(v, dtype=object)) for k, v in coarse.items()}
    ones = np.ones(len(ev))
    outcome = np.column_stack([ones, denied])
    carc = ev["carc_code"]

    def denied_for(carcs: Sequence[str]) -> np.ndarray:
        return ((denied > 0) & carc.isin(list(carcs)).to_numpy(dtype=bool)).astype("float64")

    inconsistent = np.column_stack([ones, denied_for([INCONSISTENT_CARC])])
    # authorization denials among the versions sent without an authorization number (the others never get one)
    without_auth = (ev["prior_auth_present"].to_numpy(dtype="int64") == 0).astype("float64")
    authorization = np.column_stack([without_auth, denied_for(AUTHORIZATION_CARCS) * without_auth])
    frequency = denied_for(FREQUENCY_CARCS)
    denials = {
        "all": _WindowSums.build(np.zeros(len(ev), dtype="int64"), known, outcome),
        # columns: adjudications, denials, frequency denials
        "payer": _WindowSums.build(payer, known, np.column_stack([outcome, frequency])),
        "procedure": _WindowSums.build(cpt, known, np.column_stack([outcome, frequency])),
        "diagnosis": _WindowSums.build(dx, known, outcome),
        "provider": _WindowSums.build(vocab["provider"].evidence_codes, known, outcome),
        # columns: adjudications, denials, versions without authorization, their authorization denials
        "payer_procedure": _WindowSums.build(payer_cpt, known, np.column_stack([outcome, authorization])),
        "procedure_diagnosis": _WindowSums.build(cpt_dx, known, inconsistent),
        "group_chapter": _WindowSums.build(vocab["group_chapter"].evidence_codes, known, inconsistent),
        "payer_group_chapter": _WindowSums.build(vocab["payer_group_chapter"].evidence_codes, known, inconsistent),
        # columns: adjudications, versions without authorization, their authorization denials
        "payer_group": _WindowSums.build(vocab["payer_group"].evidence_codes, known,
                                         np.column_stack([ones, authorization])),
    }
    per_unit = ev["billed_per_unit"].to_numpy(dtype="float64")
    priced = np.isfinite(per_unit) & (per_unit > 0)
    charge_values = np.column_stack([ones, np.log(np.where(priced, per_unit, 1.0))])
    charges = {"procedure": _WindowSums.build(np.where(priced, cpt, -1), known, charge_values),
               "payer_procedure": _WindowSums.build(np.where(priced, payer_cpt, -1), known, charge_values)}
    timely = (denied > 0) & carc.eq(TIMELY_FILING_CARC).to_numpy(dtype=bool)
    filing = _WindowMin.build(np.where(timely, payer, -1), known, ev["days_to_submit"].to_numpy(dtype="float64"))
    # categorical and object text hash alike, so the version does not depend on how the rows were read
    counted = ev[[c for c in DIGEST_COLUMNS if c != "known"]].assign(known=known)[DIGEST_COLUMNS]
    return LearnedTables(config, tuple(sorted(set(map(str, days)))), vocab, denials, charges, filing, counted,
                         days_missing)


# --------------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------------


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def _view_days(view: pd.DataFrame) -> np.ndarray:
    if "dt" in view.columns:
        return view["dt"].astype(str).to_numpy(dtype=object)
    return pd.to_datetime(view["submitted_at"]).dt.strftime("%Y-%m-%d").to_numpy(dtype=object)


def learned_features(view: pd.DataFrame, tables: LearnedTables) -> pd.DataFrame:
    """The `LEARNED_FEATURES` of each row of `view` (a decision-time view with dt, payer_id, cpt_code,
    icd10_primary, rendering_npi and/or billing_npi), each from the statistics of its own `dt` (without
    `dt`: the UTC submission day, as the scoring path has it). One row per input row, input order,
    RangeIndex; float64; NaN only in learned_typical_charge (no history of the code; a per-unit charge)
    and learned_filing_limit_days (not learned for the payer)."""
    need = ["payer_id", "cpt_code", "icd10_primary"]
    missing = [c for c in need if c not in view.columns]
    if "dt" not in view.columns and "submitted_at" not in view.columns:
        missing.append("dt (or submitted_at)")
    if "rendering_npi" not in view.columns and "billing_npi" not in view.columns:
        missing.append("rendering_npi or billing_npi")
    if missing:
        raise KeyError(f"decision-time view lacks column(s) {', '.join(missing)} that the learned features read")
    n = len(view)
    dt = _view_days(view)
    outside = sorted(set(dt) - set(tables.days))
    if outside:
        held = f"{tables.days[0]}..{tables.days[-1]}" if tables.days else "no days"
        raise ValueError(f"learned tables hold {held}; rows of {', '.join(outside[:5])} ({len(outside)} day(s)) "
                         "need tables read for their own days")
    day = _day_numbers(dt) if n else np.zeros(0, dtype="int64")
    lo, hi = day - tables.config.window_days, day - 1
    m, p0 = tables.config.prior_strength, tables.config.default_denial_rate
    codes = tables.codes(_normalized(view["payer_id"], upper=False), _normalized(view["cpt_code"]),
                         diagnosis_category(view["icd10_primary"]),
                         provider_of(view.get("rendering_npi"), view.get("billing_npi"), n))

    total = tables.denials["all"].window(np.zeros(n, dtype="int64"), lo, hi)
    prior = (total[:, 1] + m * p0) / (total[:, 0] + m)

    def logit_of(kind: str) -> np.ndarray:
        sums = tables.denials[kind].window(getattr(codes, kind), lo, hi)
        return _logit((sums[:, 1] + m * prior) / (sums[:, 0] + m))

    pair = tables.denials["procedure_diagnosis"].window(codes.procedure_diagnosis, lo, hi)
    by_procedure = tables.denials["procedure"].window(codes.procedure, lo, hi)
    by_payer = tables.denials["payer"].window(codes.payer, lo, hi)
    group_chapter = tables.denials["group_chapter"].window(codes.group_chapter, lo, hi)
    group_rate = group_chapter[:, 1] / (group_chapter[:, 0] + m)
    payer_group_chapter = tables.denials["payer_group_chapter"].window(codes.payer_group_chapter, lo, hi)
    payer_group = tables.denials["payer_group"].window(codes.payer_group, lo, hi)
    payer_group_auth = payer_group[:, 2] / (payer_group[:, 1] + m)
    payer_group_numbers = (payer_group[:, 0] - payer_group[:, 1]) / (payer_group[:, 0] + m)
    r = tables.config.rule_prior_strength
    payer_procedure = tables.denials["payer_procedure"].window(codes.payer_procedure, lo, hi)
    by_code = tables.charges["procedure"].window(codes.procedure, lo, hi)
    by_payer_code = tables.charges["payer_procedure"].window(codes.payer_procedure, lo, hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        code_charge = np.where(by_code[:, 0] > 0, np.exp(by_code[:, 1] / by_code[:, 0]), np.nan)
        payer_charge = np.exp(by_payer_code[:, 1] / by_payer_code[:, 0])
    typical = np.where(by_payer_code[:, 0] >= tables.config.min_payer_charge_history, payer_charge, code_charge)
    count, smallest = tables.filing.window(codes.payer, lo, hi)
    out = pd.DataFrame({
        "payer_denial_logit": logit_of("payer"),
        "procedure_denial_logit": logit_of("procedure"),
        "diagnosis_denial_logit": logit_of("diagnosis"),
        "provider_denial_logit": logit_of("provider"),
        "payer_procedure_denial_logit": logit_of("payer_procedure"),
        "procedure_diagnosis_inconsistency_rate": pair[:, 1] / (pair[:, 0] + m),
        "learned_typical_charge": typical,
        "learned_filing_limit_days": np.where(count >= tables.config.min_filing_denials, smallest, np.nan),
        "group_chapter_inconsistency_rate": group_rate,
        "payer_group_chapter_inconsistency_rate": (payer_group_chapter[:, 1] + r * group_rate)
        / (payer_group_chapter[:, 0] + r),
        "payer_procedure_authorization_rate": (payer_procedure[:, 3] + r * payer_group_auth)
        / (payer_procedure[:, 2] + r),
        "procedure_frequency_denial_rate": by_procedure[:, 2] / (by_procedure[:, 0] + m),
        "payer_frequency_denial_rate": by_payer[:, 2] / (by_payer[:, 0] + m),
        "payer_procedure_auth_number_share": (payer_procedure[:, 0] - payer_procedure[:, 2] + r * payer_group_numbers)
        / (payer_procedure[:, 0] + r),
    }, index=pd.RangeIndex(n))
    return out.astype("float64")[list(LEARNED_FEATURES)]


def evidence_days_for(days: Sequence[str], config: LearnedConfig = DEFAULT_CONFIG) -> list[str]:
    """The evidence (arrival) days whose rows can decide `days`: [first - window, last - 1]."""
    first, last = date.fromisoformat(min(days)), date.fromisoformat(max(days))
    start = first - timedelta(days=config.window_days)
    return [(start + timedelta(days=k)).isoformat() for k in range((last - start).days)]
