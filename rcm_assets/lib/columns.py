"""The column registry: every source and derived column named once.

Each column states its type, nullability, allowed values, its *availability* (known when the claim is
submitted, or only after adjudication) and whether it is PHI. Contracts, the leakage guard and the
PHI guard are all derived from this one table, so adding a column means adding one line here.

Code columns name their validity rules (`rules=`) from `code_sets` (claim numbers, CPT/HCPCS, ICD-10-CM,
ZIP, NPI, place of service, CARC, RARC); the column's `regex` is then the grammar of its first rule, so
a format is written once. Numeric bounds are those of real claims, not of the synthetic data: up to
9,999 units (drug units), 25 diagnoses (an institutional 837I), $10,000,000 billed, 99 claim versions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from rcm_assets.lib import code_sets


class Availability(StrEnum):
    """When a column's value is known, relative to the submission decision."""

    DECISION_TIME = "decision_time"  # known when the claim is ready to submit
    POST_OUTCOME = "post_outcome"  # known only after the payer adjudicates
    BOOKKEEPING = "bookkeeping"  # pipeline / source mechanics: never a feature


class Role(StrEnum):
    KEY = "key"
    ATTRIBUTE = "attribute"
    BOOKKEEPING = "bookkeeping"


@dataclass(frozen=True)
class Column:
    name: str
    table: str
    dtype: str  # string | int64 | float64 | bool | date | timestamp
    availability: Availability
    nullable: bool = False
    phi: bool = False
    role: Role = Role.ATTRIBUTE
    isin: tuple[str, ...] | None = None
    ge: float | None = None
    le: float | None = None
    regex: str | None = None  # format of a free-form column; a code column's is its first rule's grammar
    description: str = ""
    layers: tuple[str, ...] = field(default=("bronze", "silver"))
    rules: tuple[str, ...] = ()  # names of code_sets rules, each a named check (reported in this order)

    def __post_init__(self) -> None:
        if not self.rules:
            return
        grammar = [code_sets.rule(name).pattern for name in self.rules]  # KeyError names unknown rules
        if self.regex is not None:
            raise ValueError(f"{self.table}.{self.name}: give rules or regex, not both (one format)")
        object.__setattr__(self, "regex", f"^(?:{grammar[0]})$")


D, P, B = Availability.DECISION_TIME, Availability.POST_OUTCOME, Availability.BOOKKEEPING
PLAN_TYPES = ("commercial", "medicare", "medicaid", "self_pay")
CLAIM_STATUSES = ("paid", "denied", "partial")
# CARC (X12 835 claim adjustment reason code) -> reason group of a denial; unmapped codes are "other".
# Deactivated codes still arrive on older remittances (15 gave way to 284, 42 to 45).
CARC_CATEGORIES: dict[str, str] = {
    "197": "authorization", "198": "authorization", "284": "authorization", "15": "authorization",
    "27": "eligibility", "26": "eligibility", "31": "eligibility",
    "29": "timely_filing",
    "11": "coding", "167": "coding",
    "45": "pricing", "42": "pricing",
    "16": "administrative", "18": "administrative",
}
CARC_CATEGORY_VALUES = ("authorization", "eligibility", "timely_filing", "coding", "pricing",
                        "administrative", "other")
BRONZE_ONLY = ("bronze",)
SILVER_ONLY = ("silver",)

CLAIMS_COLUMNS: tuple[Column, ...] = (
    Column("claim_id", "claims", "string", D, role=Role.KEY, rules=("x12_claim_id",),
           description="Claim number assigned by the billing system (X12 CLM01)"),
    Column("claim_version", "claims", "int64", D, role=Role.KEY, ge=1, le=99,
           description="1 for the original submission, 2+ for corrected claims"),
    Column("member_id", "claims", "string", D, phi=True, layers=BRONZE_ONLY,
           description="Payer member id (PHI; becomes member_token in silver)"),
    Column("patient_name", "claims", "string", D, phi=True, layers=BRONZE_ONLY),
    Column("patient_dob", "claims", "date", D, phi=True, layers=BRONZE_ONLY),
    Column("patient_address", "claims", "string", D, phi=True, layers=BRONZE_ONLY,
           description="Street address (PHI; dropped in silver)"),
    Column("patient_zip", "claims", "string", D, phi=True, rules=("zip_or_zip4",), layers=BRONZE_ONLY,
           description="ZIP or ZIP+4 (PHI; becomes patient_zip3 in silver)"),
    Column("patient_sex", "claims", "string", D, isin=("F", "M", "U")),
    Column("payer_id", "claims", "string", D),
    Column("plan_type", "claims", "string", D, isin=PLAN_TYPES),
    Column("billing_npi", "claims", "string", D, rules=("npi_format", "npi_check_digit")),
    Column("rendering_npi", "claims", "string", D, rules=("npi_format", "npi_check_digit")),
    Column("place_of_service", "claims", "string", D, rules=("cms_pos_code",),
           description="CMS place-of-service code"),
    Column("cpt_code", "claims", "string", D, rules=("cpt_hcpcs_code",),
           description="Procedure code: CPT (Category I/II/III, PLA, MAAA) or HCPCS Level II"),
    Column("modifiers", "claims", "string", D, nullable=True,
           description="Comma-separated CPT modifiers, e.g. '25,59'"),
    Column("icd10_primary", "claims", "string", D, rules=("icd10cm_format",),
           description="Principal diagnosis (ICD-10-CM)"),
    Column("icd10_count", "claims", "int64", D, ge=1, le=25,
           description="Diagnoses on the claim (837P carries up to 12, 837I up to 25)"),
    Column("units", "claims", "int64", D, ge=1, le=9999),
    Column("billed_amount", "claims", "float64", D, ge=0.01, le=10_000_000),
    Column("service_date", "claims", "date", D,
           description="Local calendar date of service (facility time zone, RCM_FACILITY_TZ)"),
    Column("submitted_at", "claims", "timestamp", D, description="When the claim was submitted (UTC)"),
    Column("prior_auth_number", "claims", "string", D, nullable=True),
    Column("eligibility_verified", "claims", "bool", D),
    Column("updated_at", "claims", "timestamp", B, role=Role.BOOKKEEPING,
           description="When this row reached the source"),
)

REMITTANCES_COLUMNS: tuple[Column, ...] = (
    Column("claim_id", "remittances", "string", D, role=Role.KEY, rules=("x12_claim_id",)),
    Column("adjudicated_at", "remittances", "timestamp", P),
    Column("claim_status", "remittances", "string", P, isin=CLAIM_STATUSES),
    Column("paid_amount", "remittances", "float64", P, ge=0),
    Column("allowed_amount", "remittances", "float64", P, ge=0),
    Column("carc_code", "remittances", "string", P, nullable=True, rules=("x12_carc_code",),
           description="Claim adjustment reason code, bare as X12 835 CAS02 carries it ('197', not 'CO-197')"),
    Column("rarc_code", "remittances", "string", P, nullable=True, rules=("x12_rarc_code",),
           description="Remittance advice remark code (M…, MA…, N…)"),
    Column("updated_at", "remittances", "timestamp", B, role=Role.BOOKKEEPING),
)

# Columns the pipeline adds on the way in (bronze) and derives (silver).
INGEST_COLUMNS: tuple[Column, ...] = tuple(
    Column(name, table, dtype, B, role=Role.BOOKKEEPING, layers=("bronze", "silver"))
    for table in ("claims", "remittances")
    for name, dtype in (("_ingested_at", "timestamp"), ("_source", "string"), ("_run_id", "string"))
)

DERIVED_COLUMNS: tuple[Column, ...] = (
    Column("member_token", "claims", "string", D, regex=r"^[0-9a-f]{32}$", layers=SILVER_ONLY,
           description="Keyed HMAC-SHA256 of member_id (pseudonym)"),
    Column("patient_age", "claims", "int64", D, ge=0, le=90, layers=SILVER_ONLY,
           description="Age in whole years at the service date, capped at 90"),
    Column("patient_zip3", "claims", "string", D, regex=r"^\d{3}$", layers=SILVER_ONLY),
    Column("denied", "remittances", "bool", P, layers=SILVER_ONLY,
           description="Outcome label: the payer denied the claim"),
    Column("carc_category", "remittances", "string", P, nullable=True, layers=SILVER_ONLY,
           isin=CARC_CATEGORY_VALUES,
           description="Reason group derived from the CARC code"),
)

REGISTRY: tuple[Column, ...] = CLAIMS_COLUMNS + REMITTANCES_COLUMNS + INGEST_COLUMNS + DERIVED_COLUMNS


def columns(table: str, layer: str | None = None) -> tuple[Column, ...]:
    """Columns of `table`, optionally only those present in `layer`."""
    return tuple(c for c in REGISTRY if c.table == table and (layer is None or layer in c.layers))


def source_columns(table: str) -> tuple[Column, ...]:
    """The columns of a source table, in source order (no ingest or derived columns)."""
    base = {"claims": CLAIMS_COLUMNS, "remittances": REMITTANCES_COLUMNS}
    if table not in base:
        raise KeyError(f"unknown source table {table!r}; known: {sorted(base)}")
    return base[table]


def source_column_names(table: str) -> list[str]:
    return [c.name for c in source_columns(table)]


def availability_of(name: str) -> Availability | None:
    """Strictest availability of a column name across tables; None when the registry doesn't know it."""
    found = {c.availability for c in REGISTRY if c.name == name}
    for level in (Availability.POST_OUTCOME, Availability.BOOKKEEPING, Availability.DECISION_TIME):
        if level in found:
            return level
    return None


def phi_column_names() -> frozenset[str]:
    return frozenset(c.name for c in REGISTRY if c.phi)


def decision_time_column_names(table: str = "claims") -> frozenset[str]:
    return frozenset(c.name for c in REGISTRY if c.table == table and c.availability is D)


def registry_regex(name: str) -> str | None:
    """The format (regex) registered for a column name in any table, None when it has none or is unknown.

    A code column's format is the grammar of its first rule (its code list, if any, is narrower)."""
    return next((c.regex for c in REGISTRY if c.name == name and c.regex is not None), None)
