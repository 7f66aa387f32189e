"""The service's request and response models, generated from the column registry (`lib/columns.py`).

A claim is sent as the billing system holds it before submission: the decision-time source columns of
`claims` (PHI included: silver pseudonymizes it exactly as the batch does, and nothing of it is kept or
logged). Usability columns without which no row lands (claim id and version, payer, units, amount, service
date) are required; a defect or tolerated column may be missing or wrong, because a defect is a finding,
not a refusal. Any other field (a post-outcome column such as `claim_status`, a typo) is refused by name.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, create_model

from rcm_assets.lib.columns import Availability, source_columns

MAX_BATCH = 1_000
_TYPES: dict[str, Any] = {"string": str, "int64": int, "float64": float, "bool": bool, "date": dt.date,
                          "timestamp": dt.datetime}
# Not asked of a claim that is about to be sent: when it was submitted defaults to the request time.
DEFAULTED = {"submitted_at"}


def claim_fields() -> list[str]:
    """The request's claim columns: the decision-time source columns of `claims`, in registry order."""
    return [c.name for c in source_columns("claims") if c.availability is Availability.DECISION_TIME]


def claims_as_sent(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Bronze claim rows (a DataFrame) as a billing system sends them to the service: the request's claim
    columns as JSON values (dates as ISO text, missing as null). The load bench and the tests use it."""
    out = []
    for row in rows[claim_fields()].to_dict("records"):
        claim = {}
        for k, v in row.items():
            if isinstance(v, pd.Timestamp):
                v = v.date().isoformat() if k in ("service_date", "patient_dob") else v.isoformat()
            elif v is None or (isinstance(v, float) and np.isnan(v)):
                v = None
            elif isinstance(v, np.generic):
                v = v.item()
            claim[k] = v
        out.append(claim)
    return out


def _field(column) -> tuple[Any, Any]:
    kind = _TYPES[column.dtype]
    required = column.usability and not column.nullable and column.name not in DEFAULTED
    extra = {"description": column.description + (" (PHI: used to score, never kept or logged)" if column.phi else "")}
    if column.regex and column.usability:
        extra["pattern"] = column.regex
    if required:
        return kind, Field(..., **extra)
    return kind | None, Field(None, **extra)


ClaimIn = create_model(
    "ClaimIn",
    __config__=ConfigDict(extra="forbid", str_strip_whitespace=True),
    __doc__="One claim as it is about to be sent (decision-time columns of the claims registry).",
    **{c.name: _field(c) for c in source_columns("claims") if c.availability is Availability.DECISION_TIME},
)


class ClaimBatch(BaseModel):
    """Up to 1,000 claims scored in one request."""

    model_config = ConfigDict(extra="forbid")
    claims: list[ClaimIn] = Field(..., min_length=1, max_length=MAX_BATCH)  # type: ignore[valid-type]


def _shape(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "claims" in value else "claim"


ScoreRequest = Annotated[
    Annotated[ClaimIn, Tag("claim")] | Annotated[ClaimBatch, Tag("batch")],  # type: ignore[valid-type]
    Discriminator(_shape),
]


class Finding(BaseModel):
    """One thing about the claim in a biller's words, with what to fix."""

    kind: Literal["driver", "defect"]
    code: str = Field(description="Driver group (lib/drivers.GROUPS) or defect flag (lib/columns.DEFECT_FLAGS)")
    text: str
    effect: float | None = Field(None, description="Probability points the driver adds (drivers only)")


class ClaimScore(BaseModel):
    claim_id: str
    claim_version: int
    denial_probability: float
    decision: Literal["review", "submit"]
    threshold: float
    likely_reason: str | None = Field(None, description="Most likely denial reason (the reason champion)")
    reason_category: str | None = None
    reason_probability: float | None = None
    findings: list[Finding]
    model_name: str
    model_version: str
    feature_version: str
    scored_by: str = Field(description="champion, or fallback when the champion cannot serve")


class ScoreResponse(BaseModel):
    request_id: str
    serving_day: str = Field(description="The day whose champion, reference tables and learned rules scored")
    scored_by: str
    scored_by_reason: str | None = Field(None, description="Why the fallback serves, when it does")
    model_name: str
    model_version: str
    feature_version: str
    results: list[ClaimScore]


class Problem(BaseModel):
    request_id: str
    error: str
    fields: list[dict[str, str]] = []
