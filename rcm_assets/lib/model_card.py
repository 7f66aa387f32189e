"""A model card per registered model version: what the model is for, what it learned from, how well it
does overall and per payer, how calibrated it is, and what to do when it is not there.

Pure: markdown from plain inputs (the training window, the holdout metrics, a per-payer frame, the
reliability table, a list of limitations), so it is testable without MLflow or Dagster; the model asset
logs the text as the `model_card.md` artifact of the version's MLflow run. The card holds counts, rates
and payer ids only — never a claim or a patient.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

# Below this many holdout claims (or with a single outcome class) a payer's AUC is not shown: it is noise.
MIN_GROUP_ROWS = 100

INTENDED_USE = (
    "Estimate, at the moment a professional or institutional claim is ready to submit, the probability "
    "that the payer denies it on first adjudication, so a biller can review and fix the claim before it "
    "goes out. It ranks a work queue; it does not decide payment, coverage or medical necessity, and it "
    "is not meant for claims of payers, plan types or procedures absent from its training window."
)
LABEL_DEFINITION = (
    "1 = the first adjudication of the claim version (the first 835 answer known before the cutoff) was a "
    "denial; 0 = paid or partially paid. Later rows (appeals, payment corrections) never relabel a claim. "
    "Only outcomes that had reached the source and been adjudicated before the cutoff are used; claims "
    "still unadjudicated at the cutoff are left out of training."
)
FALLBACK = (
    "A version refused by the quality gate is never promoted: the champion recorded in the promotion "
    "history keeps serving, and the scores of day D always come from the model serving on D. When no "
    "champion serves a day, or it cannot be loaded, claims are scored by the fallback model (denial rates "
    "of payer × CPT family, fitted on the same training rows; score rows say `scored_by = fallback`). A "
    "bad champion is replaced with `rcm model rollback --version N`."
)
STANDARD_LIMITATIONS = (
    "Features are decision-time only: an in-place update after submission (eligibility verified later, a "
    "prior-auth number typed in) never reaches the score of the version it follows.",
    "Denials adjudicated after the cutoff are not yet labels: the most recent weeks of the window lean "
    "towards fast payers.",
    "Calibration is measured on a time-ordered holdout of the same window; payer policy changes after the "
    "cutoff (drift) are only seen by the score-drift check and the next week's model.",
    "A change of feature logic, reference data or feature configuration (a new feature_version) makes this "
    "version refuse gold built with other features.",
)


def _plain(value: Any) -> str:
    """A metric for a table: 4 decimals, counts as integers, missing as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        if not math.isfinite(float(value)):
            return "–"
        return f"{int(value):,}" if float(value).is_integer() and abs(value) >= 10 else f"{float(value):.4f}"
    if isinstance(value, datetime | pd.Timestamp):
        return pd.Timestamp(value).date().isoformat()
    return str(value)


def _table(frame: pd.DataFrame) -> str:
    """A markdown table of a small frame (headers are the column names)."""
    head = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_plain(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def metrics_by_group(y_true: Sequence | pd.Series | np.ndarray, p: Sequence | pd.Series | np.ndarray,
                     groups: Sequence | pd.Series | np.ndarray, min_rows: int = MIN_GROUP_ROWS) -> pd.DataFrame:
    """Per group (e.g. payer): holdout claims, observed denial rate, mean prediction, ROC AUC, PR AUC,
    Brier. AUCs are NaN where the group has fewer than `min_rows` claims or a single outcome class.
    Sorted by claims, largest first."""
    frame = pd.DataFrame({"y": np.asarray(y_true, dtype="int64"), "p": np.asarray(p, dtype="float64"),
                          "group": pd.Series(np.asarray(groups, dtype=object)).fillna("(missing)").astype(str)})
    rows = []
    for name, part in frame.groupby("group", sort=True):
        enough = len(part) >= min_rows and part["y"].nunique() == 2
        rows.append({
            "group": name, "claims": len(part), "denial_rate": float(part["y"].mean()),
            "mean_predicted": float(part["p"].mean()),
            "roc_auc": float(roc_auc_score(part["y"], part["p"])) if enough else math.nan,
            "pr_auc": float(average_precision_score(part["y"], part["p"])) if enough else math.nan,
            "brier": float(brier_score_loss(part["y"], part["p"])),
        })
    columns = ["group", "claims", "denial_rate", "mean_predicted", "roc_auc", "pr_auc", "brier"]
    out = pd.DataFrame(rows, columns=columns)
    return out.sort_values(["claims", "group"], ascending=[False, True], ignore_index=True)


def data_limitations(by_group: pd.DataFrame, min_rows: int = MIN_GROUP_ROWS, what: str = "payer") -> list[str]:
    """Limitations read off the holdout itself: groups too small to judge the model on."""
    small = by_group.loc[by_group["roc_auc"].isna(), "group"].tolist() if len(by_group) else []
    if not small:
        return []
    return [f"Too few holdout claims (under {min_rows}, or a single outcome) to judge the model for "
            f"{len(small)} {what}(s): {', '.join(map(str, small[:20]))}"
            f"{' …' if len(small) > 20 else ''}; their scores are less certain."]


def build_model_card(
    *,
    model_name: str,
    week: date | str,
    window_start: date | datetime | pd.Timestamp,
    window_end: date | datetime | pd.Timestamp,
    cutoff: date | datetime | pd.Timestamp,
    feature_version: str,
    metrics: Mapping[str, Any],
    by_payer: pd.DataFrame,
    reliability: pd.DataFrame,
    limitations: Sequence[str] = STANDARD_LIMITATIONS,
    counts: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    intended_use: str = INTENDED_USE,
    label_definition: str = LABEL_DEFINITION,
    fallback: str = FALLBACK,
) -> str:
    """The model card of one trained version, as markdown.

    `metrics` is a `modelling.evaluate` result (scalars are shown; the reliability list is not: pass the
    table as `reliability`); `by_payer` comes from `metrics_by_group`; `counts` are training-set counts
    such as train/holdout rows, labelled, unlabelled.
    """
    shown = {k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    order = ["roc_auc", "pr_auc", "brier", "log_loss", "ece", "positive_rate", "mean_predicted", "n"]
    overall = pd.DataFrame([(k, shown[k]) for k in [*order, *sorted(set(shown) - set(order))] if k in shown],
                           columns=["metric", "holdout"])
    reliability = reliability.loc[reliability["count"] > 0] if "count" in reliability.columns else reliability
    payers = by_payer.rename(columns={"group": "payer"})
    lines = [
        f"# Model card: {model_name}, model week {_plain(week)}",
        "",
        f"- **Trained on** gold claims submitted in [{_plain(window_start)}, {_plain(window_end)}), "
        f"labelled with outcomes known before the cutoff {_plain(cutoff)}",
        f"- **feature_version** `{feature_version}`",
    ]
    if run_id:
        lines.append(f"- **MLflow run** `{run_id}` (the registered version's source)")
    for name, value in (counts or {}).items():
        lines.append(f"- **{name.replace('_', ' ')}** {_plain(value)}")
    lines += [
        "", "## Intended use", "", intended_use,
        "", "## Label", "", label_definition,
        "", "## Metrics on the time-ordered holdout", "", _table(overall),
        "", "## Metrics by payer", "",
        _table(payers) if len(payers) else "No payer column in the holdout.",
        "", f"AUCs are left out (–) for payers with fewer than {MIN_GROUP_ROWS} holdout claims or one outcome.",
        "", "## Calibration (reliability on the holdout)", "",
        f"Expected calibration error {_plain(metrics.get('ece'))}. Bins with claims:",
        "", _table(reliability) if len(reliability) else "No holdout claims.",
        "", "## Known limitations", "",
        *[f"- {item}" for item in limitations],
        "", "## Fallback", "", fallback, "",
    ]
    return "\n".join(lines)


def fallback_text(fallback_auc: float | None) -> str:
    """The fallback section, with the fallback model's holdout AUC when it is known."""
    if fallback_auc is None or not math.isfinite(float(fallback_auc)):
        return FALLBACK
    return FALLBACK + f" On this holdout the fallback model's ROC AUC is {float(fallback_auc):.4f}."


def holdout_card(
    *, model_name: str, week: date | str, window: tuple[Any, Any, Any], feature_version: str,
    y: Sequence | pd.Series | np.ndarray, p: Sequence | pd.Series | np.ndarray, X: pd.DataFrame,
    metrics: Mapping[str, Any], reliability: pd.DataFrame, counts: Mapping[str, Any] | None = None,
    run_id: str | None = None, fallback_auc: float | None = None,
) -> str:
    """The card of a week's model from its holdout: per-payer metrics from X's `payer_id` when present,
    the standard limitations plus those the holdout shows (payers too small to judge)."""
    if "payer_id" in X.columns:
        by_payer = metrics_by_group(y, p, X["payer_id"])
    else:
        by_payer = metrics_by_group([], [], [])
    start, end, cutoff = window
    return build_model_card(
        model_name=model_name, week=week, window_start=start, window_end=end, cutoff=cutoff,
        feature_version=feature_version, metrics=metrics, by_payer=by_payer, reliability=reliability,
        limitations=[*STANDARD_LIMITATIONS, *data_limitations(by_payer)], counts=counts, run_id=run_id,
        fallback=fallback_text(fallback_auc),
    )
