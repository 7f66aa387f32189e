"""The billers' worklist: dollars at risk per claim, ranked, with the likely reason and what to check.

Expected loss = denial probability × expected payment, where the expected payment is the billed amount
times the payer's *allowed ratio* (allowed ÷ billed on the first adjudications the payer paid), learned
point in time: only remittances known before the model week's cutoff, the Monday of the day's own week
(`ratios_of_day`). A payer with few paid claims is pulled toward the overall ratio.

The export is the file a biller opens (CSV and Parquet per day): claim number, payer, CPT, amounts,
probability, likely reason and up to three sentences saying what to check. Nothing else leaves: no
member token, name, birth date, address or zip (`EXPORT_COLUMNS` is an allow-list, checked before
writing). The claim number is the patient's account number, so the export is PHI: files are written
atomically with the configured mode and group (`lib.exports`: default 0640, nothing for others).

The evaluation a revenue-cycle director reads: per day, the top K claims of the list against K claims
picked at random (the expectation, not a draw) and against the naive rule "flag claims without the prior
authorisation their payer requires" (largest billed amounts first): how many of them the payer denied,
and the dollars those denials carried.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rcm_assets.lib import labels
from rcm_assets.lib.columns import phi_column_names
from rcm_assets.lib.exports import ExportPermissions, write_atomic

OVERALL = "*"  # the ratios' row for every payer together (payers not seen before fall back to it)
RATIO_PRIOR_CLAIMS = 20.0  # pseudo-claims pulling a thin payer toward the overall ratio
DEFAULT_TOP_K = 200
RATIO_COLUMNS = ["payer_id", "allowed_ratio", "paid_claims", "billed_total", "allowed_total"]

# The file a biller opens: exactly these columns, in this order (an allow-list; no PHI but the claim
# number, itself PHI as the patient's account number: the file's mode and group keep it to the billers).
EXPORT_COLUMNS: tuple[str, ...] = (
    "rank", "claim_id", "claim_version", "payer_id", "cpt_code", "billed_amount", "expected_payment",
    "denial_probability", "expected_loss", "likely_reason", "reason_probability",
    "check_1", "check_2", "check_3",
)
# Columns that must never reach the export, whatever a future edit adds (registry PHI and its derivatives).
FORBIDDEN_EXPORT_COLUMNS: frozenset[str] = phi_column_names() | {
    "member_token", "patient_age", "patient_zip3", "patient_sex", "patient_name", "patient_dob",
    "patient_address", "patient_zip", "member_id",
}


class ExportError(ValueError):
    """The export would carry a column outside the allow-list (PHI) or miss one."""


# --------------------------------------------------------------------------------------------------
# Allowed ratios and expected loss
# --------------------------------------------------------------------------------------------------


def payer_allowed_ratios(paid: pd.DataFrame, prior_claims: float = RATIO_PRIOR_CLAIMS) -> pd.DataFrame:
    """Allowed ÷ billed per payer from first adjudications that paid (columns payer_id, billed_amount,
    allowed_amount), shrunk toward the overall ratio by `prior_claims` pseudo-claims; one row `*` for all."""
    paid = paid[paid["billed_amount"] > 0]
    billed, allowed = float(paid["billed_amount"].sum()), float(paid["allowed_amount"].sum())
    overall = allowed / billed if billed > 0 else 1.0
    grouped = paid.groupby(paid["payer_id"].astype(str), observed=True).agg(
        paid_claims=("billed_amount", "size"), billed_total=("billed_amount", "sum"),
        allowed_total=("allowed_amount", "sum"))
    mean_billed = billed / len(paid) if len(paid) else 0.0
    prior_billed = prior_claims * mean_billed
    ratio = (grouped["allowed_total"] + overall * prior_billed) / (grouped["billed_total"] + prior_billed)
    out = grouped.assign(allowed_ratio=ratio.clip(0.0, 1.0)).reset_index()
    total = pd.DataFrame([{"payer_id": OVERALL, "allowed_ratio": min(max(overall, 0.0), 1.0),
                           "paid_claims": len(paid), "billed_total": billed, "allowed_total": allowed}])
    out = pd.concat([out, total], ignore_index=True) if len(out) else total
    return out[RATIO_COLUMNS].astype({"paid_claims": "int64", "allowed_ratio": "float64",
                                      "billed_total": "float64", "allowed_total": "float64"})


def model_week(day: str) -> str:
    """The model week (Monday, ISO date) a day belongs to: the week whose cutoff is on or before it."""
    d = pd.Timestamp(day)
    return (d - pd.Timedelta(days=d.weekday())).date().isoformat()


def ratios_of_day(ratios: pd.DataFrame, day: str) -> pd.DataFrame:
    """The payer ratios day D uses: those of D's own model week (learned from outcomes known before that
    week's Monday), else of the latest earlier week loaded. A later week's ratios never reach D (a run over
    several weeks loads them all; taking every row let the last week's ratios, learned up to four weeks
    after D, price D's claims). Empty when no week on or before D's is loaded."""
    if ratios.empty or "week" not in ratios.columns:
        return ratios.iloc[0:0] if "week" in ratios.columns else ratios
    weeks = ratios["week"].astype(str)
    earlier = weeks[weeks <= model_week(day)]
    return ratios[(weeks == earlier.max()).to_numpy()] if len(earlier) else ratios.iloc[0:0]


def allowed_ratio_for(payer_id: pd.Series, ratios: pd.DataFrame) -> np.ndarray:
    """Each claim's payer ratio; the overall ratio for a payer without one, 1.0 when no ratios exist.
    `ratios` is one week's table (`ratios_of_day`): a payer listed twice is refused."""
    if ratios["payer_id"].astype(str).duplicated().any():
        weeks = sorted(ratios["week"].astype(str).unique()) if "week" in ratios.columns else []
        raise ValueError(f"allowed ratios of several weeks given ({', '.join(weeks) or 'a payer twice'}): "
                         "pick the day's week with ratios_of_day")
    table = dict(zip(ratios["payer_id"].astype(str), ratios["allowed_ratio"].astype(float), strict=True))
    fallback = table.get(OVERALL, 1.0)
    return payer_id.astype(str).map(table).fillna(fallback).to_numpy(dtype="float64")


def expected_loss(probability: np.ndarray, billed: np.ndarray, ratio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(expected payment, expected loss) per claim: billed × ratio, and probability × that."""
    payment = np.asarray(billed, dtype="float64") * np.asarray(ratio, dtype="float64")
    return payment, np.asarray(probability, dtype="float64") * payment


# --------------------------------------------------------------------------------------------------
# The ranked list
# --------------------------------------------------------------------------------------------------


def rank_worklist(frame: pd.DataFrame) -> pd.DataFrame:
    """Rank each day's claims by expected loss (largest first; ties by probability, then claim id)."""
    ordered = frame.sort_values(["dt", "expected_loss", "denial_probability", "claim_id"],
                                ascending=[True, False, False, True], kind="mergesort")
    ranked = ordered.assign(rank=ordered.groupby("dt").cumcount().astype("int64") + 1)
    return ranked.reset_index(drop=True)


def export_frame(worklist: pd.DataFrame) -> pd.DataFrame:
    """The biller's file of one day: the allow-listed columns, rounded for reading."""
    out = pd.DataFrame({
        "rank": worklist["rank"].astype("int64"),
        "claim_id": worklist["claim_id"], "claim_version": worklist["claim_version"].astype("int64"),
        "payer_id": worklist["payer_id"].astype(str), "cpt_code": worklist["cpt_code"],
        "billed_amount": worklist["billed_amount"].round(2), "expected_payment": worklist["expected_payment"].round(2),
        "denial_probability": worklist["denial_probability"].round(3),
        "expected_loss": worklist["expected_loss"].round(2),
        "likely_reason": worklist["likely_reason"], "reason_probability": worklist["reason_probability"].round(2),
        "check_1": worklist["driver_1_text"], "check_2": worklist["driver_2_text"],
        "check_3": worklist["driver_3_text"],
    })
    check_export_columns(out.columns)
    return out


def check_export_columns(columns: Iterable[str]) -> None:
    """Raise `ExportError` unless the columns are exactly the allow-list (so no PHI can leave)."""
    columns = list(columns)
    forbidden = sorted(set(columns) & FORBIDDEN_EXPORT_COLUMNS)
    extra = sorted(set(columns) - set(EXPORT_COLUMNS))
    missing = [c for c in EXPORT_COLUMNS if c not in columns]
    if forbidden or extra or missing:
        raise ExportError(f"worklist export refused: PHI column(s) {forbidden or 'none'}, columns outside the "
                          f"allow-list {extra or 'none'}, missing {missing or 'none'}")


def export_paths(folder: Path, day: str) -> tuple[Path, Path]:
    return folder / f"worklist_{day}.csv", folder / f"worklist_{day}.parquet"


def write_export(export: pd.DataFrame, folder: Path, day: str,
                 permissions: ExportPermissions | None = None) -> tuple[Path, Path]:
    """worklist_<day>.csv and .parquet in `folder`, each written whole or not at all, with the configured
    mode and group (`lib.exports`; None: 0640, the process's group): the files hold claim numbers (PHI)."""
    check_export_columns(export.columns)
    permissions = permissions or ExportPermissions()
    csv_path, parquet_path = export_paths(folder, day)
    write_atomic(csv_path, lambda tmp: export.to_csv(tmp, index=False), permissions)
    write_atomic(parquet_path, lambda tmp: export.to_parquet(tmp, index=False), permissions)
    return csv_path, parquet_path


# --------------------------------------------------------------------------------------------------
# Evaluation: top K against random and the naive prior-auth rule
# --------------------------------------------------------------------------------------------------


def outcome_labels(versions: pd.DataFrame, outcomes: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """claim_id, claim_version, denied: each version's own first adjudication known at `as_of`
    (`labels.first_adjudications`; `versions` has claim_id, claim_version, submitted_at and should hold
    every version of the listed claims, so a correction bounds its original's answers). A version
    superseded by a corrected claim keeps the answer the payer gave it before the correction."""
    versions = versions.drop_duplicates(["claim_id", "claim_version"]).reset_index(drop=True)
    first = labels.first_adjudications(outcomes, versions[["claim_id", "claim_version", "submitted_at"]], as_of)
    return first[["claim_id", "claim_version", "denied"]].reset_index(drop=True)


def top_k_evaluation(worklist: pd.DataFrame, labels: pd.DataFrame, k: int = DEFAULT_TOP_K,
                     min_labelled_share: float = 0.5) -> pd.DataFrame:
    """Per day: share denied and denied dollars (expected payment of the denied claims) among the top `k`
    of the list, K random claims (expectation) and the naive rule (prior authorisation missing, largest
    billed first; it may flag fewer than K). Only claims with a known first adjudication count, and only
    days where at least `min_labelled_share` of the listed claims have one (recent days' outcomes have
    not arrived yet: the few early ones would be an odd sample).

    `worklist` needs dt, claim_id, claim_version, expected_loss, expected_payment, billed_amount,
    prior_auth_missing; `labels` claim_id, claim_version, denied.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    joined = worklist.merge(labels[["claim_id", "claim_version", "denied"]], on=["claim_id", "claim_version"],
                            how="inner", validate="one_to_one")
    listed = worklist.groupby("dt").size()
    rows = []
    for day, claims in joined.groupby("dt", sort=True):
        if len(claims) < min_labelled_share * listed[day]:
            continue
        denied = claims["denied"].astype(bool).to_numpy()
        dollars = claims["expected_payment"].to_numpy(dtype="float64") * denied
        n, kk = len(claims), min(k, len(claims))
        model = claims.sort_values(["expected_loss", "claim_id"], ascending=[False, True], kind="mergesort").head(kk)
        rule = claims[claims["prior_auth_missing"].astype(int) == 1].sort_values(
            ["billed_amount", "claim_id"], ascending=[False, True], kind="mergesort").head(kk)
        m_denied = model["denied"].astype(bool)
        r_denied = rule["denied"].astype(bool)
        rows.append({
            "dt": day, "claims": n, "k": kk, "denial_rate": float(denied.mean()),
            "model_share_denied": float(m_denied.mean()),
            "model_denied_dollars": float((model["expected_payment"] * m_denied).sum()),
            "random_share_denied": float(denied.mean()),
            "random_denied_dollars": float(dollars.mean() * kk),
            "rule_flagged": int(len(rule)),
            "rule_share_denied": float(r_denied.mean()) if len(rule) else float("nan"),
            "rule_denied_dollars": float((rule["expected_payment"] * r_denied).sum()),
            "all_denied_dollars": float(dollars.sum()),
        })
    return pd.DataFrame(rows)


def evaluation_summary(per_day: pd.DataFrame) -> dict[str, float]:
    """Totals over the days: share denied (claims-weighted) and denied dollars per strategy."""
    if per_day.empty:
        return {}
    k = per_day["k"].sum()
    flagged = per_day["rule_flagged"].sum()
    return {
        "days": float(len(per_day)), "k_total": float(k),
        "model_share_denied": float((per_day["model_share_denied"] * per_day["k"]).sum() / k),
        "random_share_denied": float((per_day["random_share_denied"] * per_day["k"]).sum() / k),
        "rule_share_denied": float((per_day["rule_share_denied"].fillna(0) * per_day["rule_flagged"]).sum()
                                   / flagged) if flagged else float("nan"),
        "model_denied_dollars": float(per_day["model_denied_dollars"].sum()),
        "random_denied_dollars": float(per_day["random_denied_dollars"].sum()),
        "rule_denied_dollars": float(per_day["rule_denied_dollars"].sum()),
        "all_denied_dollars": float(per_day["all_denied_dollars"].sum()),
    }


def evaluation_figure(per_day: pd.DataFrame, k: int) -> Figure:
    """Two panels over time: share of the top K denied, and the denied dollars in the top K."""
    fig = Figure(figsize=(9, 6.5), layout="tight")
    share, money = fig.subplots(2, 1, sharex=True)
    x = pd.to_datetime(per_day["dt"])
    styles = (("model", "worklist (expected loss)", "#C44E52"), ("rule", "naive: prior auth missing", "#4C72B0"),
              ("random", "random claims", "grey"))
    for name, label, color in styles:
        share.plot(x, per_day[f"{name}_share_denied"], label=label, color=color, lw=1.5)
        money.plot(x, per_day[f"{name}_denied_dollars"] / 1000.0, label=label, color=color, lw=1.5)
    share.set_title(f"Top {k} claims a day: share the payer denied")
    share.set_ylabel("share denied")
    share.set_ylim(0, 1)
    money.set_title(f"Top {k} claims a day: dollars the denials carried (expected payment)")
    money.set_ylabel("thousand $")
    for ax in (share, money):
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    return fig
