"""Monitoring: feature and score drift per day, realized performance on matured labels, label arrival.

Pure functions on frames (no Dagster, no MLflow); `defs/monitoring.py` wires them to the lake and turns
their `status` columns into WARN/ERROR checks. Every function returns rows for *every* day and segment,
not only the ones past a threshold, so the history can be queried and plotted.

Statuses: "ok", "warn", "error", or "insufficient" (too few claims for the statistic to mean anything;
never an alert). Rows hold counts, codes and statistics only: no claim ids, no patient data.

Label definition: a scored claim version's label is its first adjudication known at the cutoff
(`labels.first_adjudications`), the rule training uses; an adjudication after the claim's next version was
submitted belongs to that version, not this one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.stats import ks_2samp

from rcm_assets.lib import labels, modelling, quality
from rcm_assets.lib.features import FEATURE_COLUMNS, NUMERIC_FEATURES

OTHER = "other"
STATUS_ORDER = ("insufficient", "ok", "warn", "error")


@dataclass(frozen=True)
class Band:
    """A warn and an error threshold on a statistic that is bad when high (or low, with `low_is_bad`)."""

    warn: float
    error: float
    low_is_bad: bool = False

    def status(self, value: float) -> str:
        if value is None or not math.isfinite(value):
            return "insufficient"
        if self.low_is_bad:
            return "error" if value < self.error else "warn" if value < self.warn else "ok"
        return "error" if value >= self.error else "warn" if value >= self.warn else "ok"


def worst(statuses: Iterable[str]) -> str:
    """The most severe status of several ("insufficient" when there is none)."""
    return max(statuses, key=STATUS_ORDER.index, default="insufficient")


# --------------------------------------------------------------------------------------------------
# Feature drift
# --------------------------------------------------------------------------------------------------


def reference_sample(frame: pd.DataFrame, rows: int = 20_000, seed: int = 0,
                     columns: Sequence[str] = FEATURE_COLUMNS) -> pd.DataFrame:
    """The features of a training window, sampled to at most `rows` (PSI and KS need no more)."""
    present = [c for c in columns if c in frame.columns]
    sample = frame[present] if len(frame) <= rows else frame[present].sample(rows, random_state=seed)
    return sample.reset_index(drop=True)


def categorical_psi(reference: pd.Series, current: pd.Series, min_share: float = 0.05) -> float:
    """PSI with the reference's categories as bins; a value the reference never had, or had in less than
    `min_share` of its rows, counts as "other": rare bins make a day's PSI noise (a 2% category absent
    from 150 claims, which happens 3% of days, adds 0.12 through the empty-bin floor)."""
    ref = reference.astype(object).where(reference.notna(), "<NA>")
    shares = ref.value_counts(normalize=True)
    kept = set(shares[shares >= min_share].index)
    cur = current.astype(object).where(current.notna(), "<NA>")
    return modelling.psi(ref.where(ref.isin(kept), OTHER), cur.where(cur.isin(kept), OTHER))


def feature_drift(reference: pd.DataFrame, current: pd.DataFrame, psi_band: Band, ks_band: Band,
                  min_rows: int = 50) -> pd.DataFrame:
    """One row per feature: PSI against the reference (numeric: bins on reference deciles plus a bin for
    missing values, via `modelling.psi`; categorical: reference categories plus "other"), two-sample KS
    for numerics, the share of missing values on each side, status.

    Some numeric features are unknown (NaN) by design (`features.UNKNOWN_ALLOWED`: a learned typical
    charge or filing limit before history taught one, all of them when the hospital's files give the
    value). KS compares the values that exist, and only when each side has at least `min_rows` of them;
    otherwise `ks_statistic` is NaN (not measurable) and the feature's status rests on PSI, whose
    missing-value bin carries a change of the null share (`reference_null_share`, `current_null_share`).
    """
    rows = []
    for name in [c for c in FEATURE_COLUMNS if c in reference.columns and c in current.columns]:
        numeric = name in NUMERIC_FEATURES
        ref, cur = reference[name], current[name]
        enough = len(cur) >= min_rows and len(ref) >= min_rows
        ks_stat = ks_p = math.nan
        if numeric:
            value = modelling.psi(ref.astype("float64"), cur.astype("float64")) if enough else math.nan
            r, c = ref.dropna().to_numpy("float64"), cur.dropna().to_numpy("float64")
            if enough and len(r) >= min_rows and len(c) >= min_rows:
                ks = ks_2samp(r, c)
                ks_stat, ks_p = float(ks.statistic), float(ks.pvalue)
        else:
            value = categorical_psi(ref, cur) if enough else math.nan
        status = worst([psi_band.status(value)] + ([ks_band.status(ks_stat)] if numeric else []))
        rows.append({"feature": name, "kind": "numeric" if numeric else "categorical", "psi": value,
                     "ks_statistic": ks_stat, "ks_pvalue": ks_p, "reference_rows": int(len(ref)),
                     "current_rows": int(len(cur)), "reference_null_share": _null_share(ref),
                     "current_null_share": _null_share(cur), "status": status if enough else "insufficient"})
    return pd.DataFrame(rows)


def _null_share(values: pd.Series) -> float:
    return float(values.isna().mean()) if len(values) else math.nan


# --------------------------------------------------------------------------------------------------
# Score drift
# --------------------------------------------------------------------------------------------------


def score_drift(scores: pd.DataFrame, payers: pd.Series, reference_hist: Sequence[float],
                baseline: pd.DataFrame | None, psi_band: Band, flagged_band: Band,
                min_claims: int = 50, min_payer_claims: int = 200) -> pd.DataFrame:
    """Score PSI and flagged share of one day, overall and per payer.

    Overall PSI is against the serving model's holdout histogram (`quality.score_psi`); a payer's PSI is
    against its own scores over the baseline days, on the baseline's decile bins (`modelling.psi`; payers
    differ too much for one overall reference), and needs `min_payer_claims` on the day and in the
    baseline: on fifty claims a PSI or a flagged share is noise (measured: most payer-days "drift").
    `flagged_share_change` is the flagged share minus the baseline's (absolute, in share points).
    `scores` carries denial_probability and decision; `payers` is aligned to it; `baseline` (may be
    empty) has denial_probability, decision and payer_id.
    """
    frame = scores.assign(payer_id=np.asarray(payers, dtype=object))
    base = baseline if baseline is not None else pd.DataFrame(columns=["denial_probability", "decision", "payer_id"])
    rows = []
    for segment, part in [("all", frame), *sorted(frame.groupby("payer_id", sort=True))]:
        if segment == "all":
            base_part = base
            enough = len(part) >= min_claims and len(reference_hist) > 0
            value = quality.score_psi(list(reference_hist), part["denial_probability"]) if enough else math.nan
        else:
            base_part = base[base["payer_id"] == segment]
            enough = len(part) >= min_payer_claims and len(base_part) >= min_payer_claims
            value = (modelling.psi(base_part["denial_probability"].to_numpy("float64"),
                                   part["denial_probability"].to_numpy("float64")) if enough else math.nan)
        flagged = float((part["decision"] == "review").mean()) if len(part) else math.nan
        base_flagged = float((base_part["decision"] == "review").mean()) if len(base_part) else math.nan
        change = flagged - base_flagged if enough and math.isfinite(base_flagged) else math.nan
        status = worst([psi_band.status(value), flagged_band.status(abs(change))]) if enough else "insufficient"
        rows.append({"segment": segment, "claims": int(len(part)), "mean_score": float(part["denial_probability"].mean()),
                     "psi": value, "flagged_share": flagged, "baseline_flagged_share": base_flagged,
                     "flagged_share_change": change, "baseline_claims": int(len(base_part)), "status": status})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
# Labels of scored claims
# --------------------------------------------------------------------------------------------------


def label_scored_claims(scored: pd.DataFrame, outcomes: pd.DataFrame, cutoff: pd.Timestamp,
                        versions: pd.DataFrame | None = None) -> pd.DataFrame:
    """`scored` (claim_id, claim_version, submitted_at, ...) with its first adjudication known at `cutoff`
    (`labels.first_adjudications`): adds adjudicated_at, outcome_updated_at (when the label reached the
    source) and denied (NaN when none yet). `versions` (claim_id, claim_version, submitted_at) are all the
    versions known at the cutoff, the scored ones by default: an adjudication at or after a claim's next
    version was submitted belongs to that version, so pass the later versions when they were not scored.
    """
    keys = ["claim_id", "claim_version", "submitted_at"]
    known = scored[keys] if versions is None or versions.empty else pd.concat([scored[keys], versions[keys]],
                                                                               ignore_index=True)
    known = known.drop_duplicates(["claim_id", "claim_version"])
    known = known[(known["submitted_at"] < pd.Timestamp(cutoff)).to_numpy()]
    first = labels.first_adjudications(outcomes, known.reset_index(drop=True), cutoff)
    first = first[["claim_id", "claim_version", "adjudicated_at", "updated_at", "denied"]].rename(
        columns={"updated_at": "outcome_updated_at"})
    out = scored.merge(first, on=["claim_id", "claim_version"], how="left", validate="many_to_one")
    out["denied"] = out["denied"].astype("float64")
    return out


# --------------------------------------------------------------------------------------------------
# Realized performance
# --------------------------------------------------------------------------------------------------


def performance_row(y: np.ndarray, p: np.ndarray, flagged: np.ndarray) -> dict[str, float]:
    """AUC, PR AUC, Brier, precision and recall at the decision threshold, on labelled claims."""
    m = modelling.evaluate(y, p) if len(y) else {"roc_auc": math.nan, "pr_auc": math.nan, "brier": math.nan,
                                                  "positive_rate": math.nan, "mean_predicted": math.nan, "ece": math.nan}
    tp = float(np.sum(flagged & (y == 1)))
    return {"labelled": int(len(y)), "denied": int(np.sum(y)), "roc_auc": m["roc_auc"], "pr_auc": m["pr_auc"],
            "brier": m["brier"], "ece": m["ece"], "denial_rate": m["positive_rate"],
            "mean_predicted": m["mean_predicted"],
            "precision_at_threshold": tp / flagged.sum() if flagged.sum() else math.nan,
            "recall_at_threshold": tp / np.sum(y == 1) if np.sum(y == 1) else math.nan,
            "flagged_share": float(flagged.mean()) if len(flagged) else math.nan}


def realized_performance(labelled: pd.DataFrame, auc_band: Band, min_labelled: int = 200,
                         min_positives: int = 20) -> pd.DataFrame:
    """Per role (champion, fallback, challenger, previous_champion) and model version, overall and per
    payer: `performance_row` on claims with a label, plus label coverage and an AUC status.

    `labelled`: role, model_version, payer_id, denial_probability, decision, denied (NaN = no label).
    """
    rows = []
    for (role, version), part in labelled.groupby(["role", "model_version"], sort=True, dropna=False):
        for segment, seg in [("all", part), *sorted(part.groupby("payer_id", sort=True))]:
            known = seg[seg["denied"].notna()]
            y = known["denied"].to_numpy("int64")
            row = performance_row(y, known["denial_probability"].to_numpy("float64"),
                                  (known["decision"] == "review").to_numpy())
            enough = row["labelled"] >= min_labelled and row["denied"] >= min_positives \
                and row["labelled"] - row["denied"] >= min_positives
            rows.append({"role": role, "model_version": str(version), "segment": segment,
                         "scored": int(len(seg)), "label_coverage": row["labelled"] / len(seg) if len(seg) else math.nan,
                         **row, "status": auc_band.status(row["roc_auc"]) if enough else "insufficient"})
    return pd.DataFrame(rows)


def calibration_by_decile(labelled: pd.DataFrame) -> pd.DataFrame:
    """Expected (mean score) vs observed denial rate per score decile, per role and model version."""
    rows = []
    known = labelled[labelled["denied"].notna()]
    for (role, version), part in known.groupby(["role", "model_version"], sort=True):
        p = part["denial_probability"].to_numpy("float64")
        ranks = pd.Series(p).rank(method="first").to_numpy()
        decile = np.minimum((ranks - 1) * 10 // len(p), 9).astype("int64") + 1
        t = pd.DataFrame({"decile": decile, "p": p, "y": part["denied"].to_numpy("float64")})
        g = t.groupby("decile").agg(claims=("y", "size"), expected_rate=("p", "mean"), observed_rate=("y", "mean"))
        rows.append(g.reset_index().assign(role=role, model_version=str(version)))
    cols = ["role", "model_version", "decile", "claims", "expected_rate", "observed_rate"]
    return pd.concat(rows, ignore_index=True)[cols] if rows else pd.DataFrame(columns=cols)


# --------------------------------------------------------------------------------------------------
# Label arrival and early outcomes
# --------------------------------------------------------------------------------------------------


def label_freshness(labelled: pd.DataFrame, as_of: pd.Timestamp, sla_days: int, sla_band: Band,
                    min_claims: int = 30) -> pd.DataFrame:
    """Per submission cohort (day) and segment: share whose first adjudication had reached the source by
    the end of `as_of`, the cohort's age, and early outcomes — among the adjudicated claims that were
    scored (denial_probability not null), observed denials and the scores' expectation (labels known now,
    not only after the maturity horizon).

    Segments: all, each payer, each payer/CPT family (where payer rules change: a new prior-auth
    requirement hits one CPT family of one payer).
    Status: the cohort exactly `sla_days` old is held to the SLA band (a stopped remittance feed shows
    here first); other cohorts are "ok" (their share is history).
    `labelled` is `label_scored_claims(..., cutoff=as_of + 1 day)` with a submitted_day and payer_id.
    """
    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    arrived = labelled["denied"].notna() & (labelled["outcome_updated_at"] < end)
    scored = arrived & labelled["denial_probability"].notna()  # early outcomes compare scored claims only
    p = labelled["denial_probability"].where(scored, 0.0)
    frame = pd.DataFrame({"cohort_day": labelled["submitted_day"].astype(str), "payer_id": labelled["payer_id"],
                          "claims": 1, "adjudicated": arrived.astype("int64"), "scored_adjudicated": scored.astype("int64"),
                          "denied": labelled["denied"].where(scored, 0.0), "expected_denied": p,
                          "expected_variance": p * (1 - p)})
    if "cpt_family" in labelled.columns:
        frame["family"] = labelled["payer_id"].astype(str) + "/" + labelled["cpt_family"].astype(str)
    sums = ["claims", "adjudicated", "scored_adjudicated", "denied", "expected_denied", "expected_variance"]
    parts = [frame.groupby("cohort_day")[sums].sum().reset_index().assign(segment="all")]
    for column in ("payer_id", "family") if "family" in frame.columns else ("payer_id",):
        parts.append(frame.groupby(["cohort_day", column])[sums].sum().reset_index().rename(columns={column: "segment"}))
    rows = pd.concat(parts, ignore_index=True)
    rows["age_days"] = (pd.Timestamp(as_of) - pd.to_datetime(rows["cohort_day"])).dt.days.astype("int64")
    rows["adjudicated_share"] = rows["adjudicated"] / rows["claims"]
    counts = ["claims", "adjudicated", "scored_adjudicated", "denied"]
    rows[counts] = rows[counts].astype("int64")
    sla = np.array([sla_band.status(v) for v in rows["adjudicated_share"]], dtype=object)
    rows["status"] = np.where(rows["claims"] < min_claims, "insufficient",
                              np.where(rows["age_days"] == sla_days, sla, "ok"))
    order = ["cohort_day", "age_days", "segment", "claims", "adjudicated", "adjudicated_share", "scored_adjudicated", "denied",
             "expected_denied", "expected_variance", "status"]
    return rows[order].sort_values(["cohort_day", "segment"], kind="mergesort").reset_index(drop=True)


def early_outcome_drift(freshness: pd.DataFrame, window_days: int, z_band: Band,
                        min_adjudicated: int = 30) -> pd.DataFrame:
    """Per segment, over the cohorts of the last `window_days`: observed minus expected denials of the
    claims adjudicated so far, as a z-score (sum of Bernoulli variances). A payer that starts denying what
    the model expects it to pay shows here as soon as its first adjudications arrive, weeks before the
    labels mature. Positive z = more denials than predicted."""
    recent = freshness[freshness["age_days"] < window_days]
    g = recent.groupby("segment").agg(adjudicated=("scored_adjudicated", "sum"), denied=("denied", "sum"),
                                      expected_denied=("expected_denied", "sum"),
                                      expected_variance=("expected_variance", "sum")).reset_index()
    g["observed_rate"] = g["denied"] / g["adjudicated"].where(g["adjudicated"] > 0)
    g["expected_rate"] = g["expected_denied"] / g["adjudicated"].where(g["adjudicated"] > 0)
    g["z"] = (g["denied"] - g["expected_denied"]) / np.sqrt(g["expected_variance"].where(g["expected_variance"] > 0))
    g["status"] = [z_band.status(abs(z)) if n >= min_adjudicated else "insufficient"
                   for z, n in zip(g["z"], g["adjudicated"], strict=True)]
    return g.drop(columns=["expected_variance"])


# --------------------------------------------------------------------------------------------------
# Plots (Figure objects, no pyplot state)
# --------------------------------------------------------------------------------------------------


def _axes(title: str, size: tuple[float, float] = (7.0, 4.0)) -> tuple[Figure, object]:
    fig = Figure(figsize=size, layout="tight")
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return fig, ax


def drift_over_time_figure(history: pd.DataFrame, value: str, title: str, series: str,
                           warn: float | None = None, error: float | None = None, top: int = 8) -> Figure:
    """A line per `series` (feature or payer) of `value` by day; the `top` series with the highest peak."""
    fig, ax = _axes(title)
    peaks = history.groupby(series)[value].max().sort_values(ascending=False).head(top)
    for name in peaks.index:
        part = history[history[series] == name].sort_values("dt")
        ax.plot(pd.to_datetime(part["dt"]), part[value], marker=".", label=str(name))
    for level, colour in ((warn, "orange"), (error, "red")):
        if level is not None:
            ax.axhline(level, ls="--", color=colour, lw=1)
    ax.set_ylabel(value)
    if len(peaks):
        ax.legend(fontsize=7, loc="upper left")
    fig.autofmt_xdate()
    return fig


def calibration_deciles_figure(calibration: pd.DataFrame) -> Figure:
    """Observed vs expected denial rate per score decile, a line per role/version."""
    fig, ax = _axes("Calibration by score decile (matured labels)", (5.5, 4.5))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    for (role, version), part in calibration.groupby(["role", "model_version"]):
        ax.plot(part["expected_rate"], part["observed_rate"], marker="o", label=f"{role} v{version}")
    ax.set_xlabel("expected denial rate (mean score)")
    ax.set_ylabel("observed denial rate")
    if len(calibration):
        ax.legend(fontsize=7, loc="upper left")
    return fig


def performance_by_payer_figure(performance: pd.DataFrame, floor: float) -> Figure:
    """Realized AUC per payer for each role/version, with the floor."""
    fig, ax = _axes("Realized AUC by payer (matured labels)")
    per = performance[performance["segment"] != "all"]
    payers = sorted(per["segment"].unique())
    groups = list(per.groupby(["role", "model_version"]))
    width = 0.8 / max(len(groups), 1)
    for i, ((role, version), part) in enumerate(groups):
        values = part.set_index("segment")["roc_auc"].reindex(payers)
        ax.bar(np.arange(len(payers)) + i * width, values.to_numpy(), width, label=f"{role} v{version}")
    ax.axhline(floor, ls="--", color="red", lw=1, label=f"floor {floor}")
    ax.set_xticks(np.arange(len(payers)) + 0.4 - width / 2, payers, rotation=45, fontsize=7)
    ax.set_ylim(0.4, 1.0)
    ax.legend(fontsize=7)
    return fig


def figure_png(fig: Figure) -> bytes:
    """PNG bytes of a figure (for MLflow artifacts and markdown embedding)."""
    from io import BytesIO

    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return buf.getvalue()


def days_to_detection(statuses: Mapping[str, str], onset: str) -> int | None:
    """Days from `onset` to the first day (on or after it) whose status is warn or error; None if none."""
    hits = sorted(d for d, s in statuses.items() if d >= onset and s in ("warn", "error"))
    return (pd.Timestamp(hits[0]) - pd.Timestamp(onset)).days if hits else None
