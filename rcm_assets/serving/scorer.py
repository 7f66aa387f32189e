"""Scoring a request: the batch's path from a claim as sent to its score, reason and findings.

bronze-shaped rows -> `transforms.build_silver_claims` (the silver contract, pseudonymization and defect
flags, as the nightly silver does) -> `scoring.scoring_features` (the shared feature code, the day's
reference tables, learned rules and learned statistics, as gold has them) -> `scoring.score` (the serving
model and threshold) -> `defs/worklist.explain_day` (the reason champion and the drivers, as the worklist
explains the batch's scores). Nothing here is a copy of batch code; this module only shapes rows in and out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from rcm_assets.defs.worklist import explain_day
from rcm_assets.lib import contracts, drivers
from rcm_assets.lib.columns import DEFECT_FLAGS, source_columns
from rcm_assets.lib.scoring import score, scoring_features
from rcm_assets.lib.transforms import build_silver_claims
from rcm_assets.serving.bundle import ServingState
from rcm_assets.serving.schemas import claim_fields

_DTYPES = {c.name: c.dtype for c in source_columns("claims")}
# defect flag -> the driver group that names it in a biller's words (lib/drivers.DEFECT_SENTENCES)
DEFECT_GROUP = {flag: next(g.name for g in drivers.GROUPS if g.features == (f"defect_{flag}",))
                for flag in DEFECT_FLAGS}


class RejectedClaims(ValueError):
    """Claims the silver contract refuses (unusable rows): each with the fields and checks that failed."""

    def __init__(self, problems: list[dict[str, str]]):
        super().__init__("; ".join(f"{p['field']}: {p['problem']}" for p in problems))
        self.problems = problems


def bronze_frame(claims: list[dict[str, Any]], now: datetime) -> pd.DataFrame:
    """The request's claims shaped as bronze rows (registry dtypes; submitted_at defaults to now, UTC)."""
    frame = pd.DataFrame(claims, columns=claim_fields())
    for name in frame.columns:
        kind = _DTYPES[name]
        if kind in ("date", "timestamp"):
            values = pd.to_datetime(frame[name], utc=True, errors="coerce") if kind == "timestamp" else \
                pd.to_datetime(frame[name], errors="coerce")
            frame[name] = values.dt.tz_localize(None) if kind == "timestamp" else values
            frame[name] = frame[name].astype("datetime64[ns]")
        elif kind in ("int64", "float64") and frame[name].notna().all():
            frame[name] = frame[name].astype(kind)
        elif kind == "bool" and frame[name].notna().all():
            frame[name] = frame[name].astype(bool)
    stamp = pd.Timestamp(now.astimezone(UTC).replace(tzinfo=None)).as_unit("ns")
    frame["submitted_at"] = frame["submitted_at"].fillna(stamp).astype("datetime64[ns]")
    frame["updated_at"] = stamp
    return frame


def _problems(rejects: pd.DataFrame, claims: list[dict[str, Any]], batch: bool) -> list[dict[str, str]]:
    """Each failed check of each refused claim, as the request's field path ('claims[3].billed_amount')."""
    positions: dict[str, list[int]] = {}
    for i, claim in enumerate(claims):
        positions.setdefault(str(claim.get("claim_id")), []).append(i)
    out = []
    for _, reject in rejects.iterrows():
        found = positions.get(str(reject.get("claim_id")), [])
        where = f"claims[{found.pop(0)}]." if batch and found else ""
        for reason in str(reject.get("reasons", "")).split(contracts.REASON_SEPARATOR):
            column, _, check = reason.strip().partition(":")
            if column:
                out.append({"field": f"{where}{column}", "problem": f"fails {check or 'its contract'}"})
    return out


@dataclass
class Scored:
    scores: pd.DataFrame  # one row per claim (the lib/scoring columns)
    explained: pd.DataFrame  # reason and drivers (defs/worklist.explain_day columns)
    silver: pd.DataFrame  # the silver rows (defect flags)


def score_claims(state: ServingState, claims: list[dict[str, Any]], batch: bool, run_id: str) -> Scored:
    """Score `claims` (dicts of the request schema) with `state`; RejectedClaims names unusable rows."""
    keys = [(str(c.get("claim_id")), c.get("claim_version")) for c in claims]
    if len(set(keys)) != len(keys):  # one answer per claim version: the same one twice is ambiguous
        raise RejectedClaims([{"field": "claims", "problem": "a claim_id and claim_version appear more than once"}])
    now = datetime.now(UTC)
    bronze = bronze_frame(claims, now).assign(_ingested_at=pd.Timestamp(now.replace(tzinfo=None)).as_unit("ns"),
                                              _source="service", _run_id=run_id)
    silver = build_silver_claims(bronze, state.phi_key, facility_tz=state.resolved.config.facility_tz)
    if len(silver.rejects):
        raise RejectedClaims(_problems(silver.rejects, claims, batch))
    rows = silver.good.reset_index(drop=True).assign(dt=state.day)
    scoring_input = [c for c in (*contracts.scoring_input_columns(), "dt") if c in rows.columns]
    resolved = state.resolved
    features = scoring_features(rows[scoring_input], resolved.config, resolved.rules, resolved.reference,
                                resolved.learned, state.history)
    model = state.model
    scores = score(model.model, features, model_feature_version=model.feature_version,
                   threshold=resolved.threshold, stamp={**model.stamp, "dagster_run_id": run_id},
                   scored_by=state.scored_by)
    explained = explain_day(scores, features, rows["cpt_code"], state.explainers, state.day)
    return Scored(scores, explained, rows)


def split(scored: Scored, sizes: list[int]) -> list[Scored]:
    """The rows of one scoring call cut back into the requests it served (rows keep request order)."""
    out, start = [], 0
    for size in sizes:
        part = slice(start, start + size)
        out.append(Scored(scored.scores.iloc[part], scored.explained.iloc[part], scored.silver.iloc[part]))
        start += size
    return out


def score_requests(state: ServingState, requests: list[tuple[list[dict[str, Any]], bool, str]]
                   ) -> list[Scored | Exception]:
    """Score the claims of several requests in one call (one feature computation, one predict: the fixed cost
    of the path is paid once); when one of them is refused or two repeat a claim, each is scored on its own
    so one bad request never fails another. Probabilities, decisions and reasons are row-wise; the drivers'
    context is the claims scored together (as the worklist's is the day's)."""
    if len(requests) > 1:
        claims = [c for r in requests for c in r[0]]
        try:
            return list(split(score_claims(state, claims, True, "coalesced"), [len(r[0]) for r in requests]))
        except RejectedClaims:
            pass
    out: list[Scored | Exception] = []
    for claims, batch, rid in requests:
        try:
            out.append(score_claims(state, claims, batch, rid))
        except RejectedClaims as exc:
            out.append(exc)
    return out


def findings(explained: dict[str, Any], silver: dict[str, Any]) -> list[dict[str, Any]]:
    """The claim's drivers (as the worklist words them) and its defects (each with what to fix)."""
    out = []
    for k in range(1, drivers.TOP_N + 1):
        text = explained.get(f"driver_{k}_text")
        if isinstance(text, str) and text:
            effect = explained.get(f"driver_{k}_effect")
            out.append({"kind": "driver", "code": str(explained.get(f"driver_{k}") or "fallback"), "text": text,
                        "effect": float(effect) if effect is not None and np.isfinite(effect) and
                        explained.get(f"driver_{k}") is not None else None})
    named = {f["code"] for f in out}
    for flag in DEFECT_FLAGS:
        group = DEFECT_GROUP[flag]
        if int(silver.get(f"defect_{flag}", 0) or 0) and group not in named:
            out.append({"kind": "defect", "code": flag, "text": drivers.DEFECT_SENTENCES[group], "effect": None})
    return out


def _optional_float(value: Any) -> float | None:
    return float(value) if value is not None and pd.notna(value) else None


def _optional_text(value: Any) -> str | None:
    return str(value) if value is not None and pd.notna(value) else None


def results(scored: Scored) -> list[dict[str, Any]]:
    """One answer per claim, in request order."""
    scores = scored.scores[["claim_id", "claim_version", "denial_probability", "decision", "threshold",
                            "model_name", "model_version", "feature_version", "scored_by"]].to_dict("records")
    explained = scored.explained.to_dict("records")
    defects = scored.silver[[f"defect_{f}" for f in DEFECT_FLAGS]].to_dict("records")
    out = []
    for s, e, silver in zip(scores, explained, defects, strict=True):
        out.append({
            "claim_id": str(s["claim_id"]), "claim_version": int(s["claim_version"]),
            "denial_probability": float(s["denial_probability"]), "decision": str(s["decision"]),
            "threshold": float(s["threshold"]),
            "likely_reason": _optional_text(e.get("likely_reason")),
            "reason_category": _optional_text(e.get("reason_category")),
            "reason_probability": _optional_float(e.get("reason_probability")),
            "findings": findings(e, silver),
            "model_name": str(s["model_name"]), "model_version": str(s["model_version"]),
            "feature_version": str(s["feature_version"]), "scored_by": str(s["scored_by"]),
        })
    return out
