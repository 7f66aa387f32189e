"""The column registry: every source and derived column named once.

Each column states its type, nullability, allowed values, its *availability* (known when the claim is
submitted, or only after adjudication) and whether it is PHI. Contracts, the leakage guard and the
PHI guard are all derived from this one table, so adding a column means adding one line here.

Code columns name their validity rules (`rules=`) from `code_sets` (claim numbers, CPT/HCPCS, ICD-10-CM,
ZIP, NPI, place of service, CARC, RARC); the column's `regex` is then the grammar of its first rule, so
a format is written once. Numeric bounds are those of real claims, not of the synthetic data: up to
9,999 units (drug units), 25 diagnoses (an institutional 837I), $10,000,000 billed, 99 claim versions.

Usability rules and defect rules (issue 24): a claim with a defect is exactly the claim a payer denies, so
it must reach the model, not the rejects table. A column's checks (nullability, allowed values, range,
code rules) are *usability* rules by default: a failure makes the row unusable and it is rejected (no
claim id, payer, claim version, parsable service date / submitted_at, amounts, units). A column that
names a `defect` flag has *defect* rules instead: a failure sets `defect_<flag>` on the row and the row
lands in silver, its value kept as sent (`fill=KEEP`: kept when it has the code's grammar, else null,
as it may be any text) or replaced by `fill` (patient_sex "U"). A
`tolerated` column's failure neither rejects nor flags: the value becomes `fill` (a plan type outside
the known set is null). Rules that need two columns (the ICD code set against the service date, a
procedure code deleted before the service date) live in `code_sets` and are applied in `transforms`.
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


# Claim defect flags: each a silver int64 0/1 column `defect_<flag>` (see the module docstring).
DEFECT_FLAGS = ("npi", "diagnosis_code", "procedure_code", "place_of_service", "demographics")
DEFECT_COLUMNS = tuple(f"defect_{flag}" for flag in DEFECT_FLAGS)
CLAIM_DEFECTS_COLUMN = "claim_defects"
ICD_CODE_SET_COLUMN = "icd_code_set"
ICD_CODE_SETS = ("icd10", "icd9")
KEEP = "<keep as sent>"  # `fill` of a defect column whose failing value lands unchanged


@dataclass(frozen=True)
class Column:
    name: str
    table: str
    dtype: str  # string | int64 | float64 | bool | date | timestamp
    availability: Availability
    nullable: bool = False
    phi: bool = False  # a direct identifier silver drops or pseudonymizes (never past bronze)
    # a HIPAA identifier kept as a key (a claim number is the patient's account number, 45 CFR
    # 164.514(b)(2)(i)(J)): not dropped, because billers work by it, but PHI wherever it is stored or exported
    identifier: bool = False
    role: Role = Role.ATTRIBUTE
    isin: tuple[str, ...] | None = None
    ge: float | None = None
    le: float | None = None
    regex: str | None = None  # format of a free-form column; a code column's is its first rule's grammar
    description: str = ""
    layers: tuple[str, ...] = field(default=("bronze", "silver"))
    rules: tuple[str, ...] = ()  # names of code_sets rules, each a named check (reported in this order)
    defect: str | None = None  # flag (DEFECT_FLAGS) a failure of this column's checks sets; None: usability
    tolerated: bool = False  # a failure neither rejects nor flags; the value becomes `fill`
    fill: str | bool | None = KEEP  # what a failing value of a defect or tolerated column becomes in silver
    optional: bool = False  # a source (SQL table, landing file) may lack this column: it is read as null

    def __post_init__(self) -> None:
        if self.defect is not None and self.defect not in DEFECT_FLAGS:
            raise ValueError(f"{self.table}.{self.name}: unknown defect flag {self.defect!r}; known: {DEFECT_FLAGS}")
        if self.defect is not None and self.tolerated:
            raise ValueError(f"{self.table}.{self.name}: a column is a defect or tolerated, not both")
        if self.tolerated and self.fill == KEEP:
            raise ValueError(f"{self.table}.{self.name}: a tolerated column needs a fill value")
        if not self.rules:
            return
        grammar = [code_sets.rule(name).pattern for name in self.rules]  # KeyError names unknown rules
        if self.regex is not None:
            raise ValueError(f"{self.table}.{self.name}: give rules or regex, not both (one format)")
        object.__setattr__(self, "regex", f"^(?:{grammar[0]})$")

    @property
    def usability(self) -> bool:
        """A failure of this column's checks makes the row unusable (rejected)."""
        return self.defect is None and not self.tolerated

    @property
    def usability_rules(self) -> tuple[str, ...]:
        return self.rules if self.usability else ()

    @property
    def defect_rules(self) -> tuple[str, ...]:
        return self.rules if self.defect is not None else ()

    @property
    def silver_checked(self) -> bool:
        """Silver holds only values that pass every check (usability columns, and failing values filled).

        A defect column kept as sent holds values of its grammar (`regex`) or null (`transforms`)."""
        return self.usability or self.fill != KEEP

    @property
    def silver_nullable(self) -> bool:
        """Silver may hold a null: declared nullable, or a defect kept as sent / filled with null."""
        return self.nullable or (not self.usability and (self.fill is None or self.fill == KEEP))


D, P, B = Availability.DECISION_TIME, Availability.POST_OUTCOME, Availability.BOOKKEEPING
PLAN_TYPES = ("commercial", "medicare", "medicaid", "self_pay")
CLAIM_STATUSES = ("paid", "denied", "partial", "reversed")  # reversed: X12 835 CLP02 22
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
    Column("claim_id", "claims", "string", D, role=Role.KEY, rules=("x12_claim_id",), identifier=True,
           description="Claim number assigned by the billing system (X12 CLM01; the patient account number: PHI)"),
    Column("claim_version", "claims", "int64", D, role=Role.KEY, ge=1, le=99,
           description="1 for the original submission, 2+ for corrected claims"),
    Column("member_id", "claims", "string", D, phi=True, layers=BRONZE_ONLY, defect="demographics", fill=None,
           description="Payer member id (PHI; becomes member_token in silver; missing: defect_demographics)"),
    Column("patient_name", "claims", "string", D, nullable=True, phi=True, layers=BRONZE_ONLY,
           description="Patient name (PHI; dropped in silver)"),
    Column("patient_dob", "claims", "date", D, phi=True, layers=BRONZE_ONLY, defect="demographics", fill=None,
           description="Date of birth (PHI; becomes patient_age in silver; missing: defect_demographics)"),
    Column("patient_address", "claims", "string", D, nullable=True, phi=True, layers=BRONZE_ONLY,
           description="Street address (PHI; dropped in silver)"),
    Column("patient_zip", "claims", "string", D, phi=True, rules=("zip_or_zip4",), layers=BRONZE_ONLY,
           tolerated=True, fill=None,
           description="ZIP or ZIP+4 (PHI; becomes patient_zip3 in silver, null when missing or malformed)"),
    Column("patient_sex", "claims", "string", D, isin=("F", "M", "U"), defect="demographics", fill="U",
           description="Administrative sex on the claim (U: unknown, also when missing or invalid: "
                       "defect_demographics)"),
    Column("payer_id", "claims", "string", D, description="Payer (insurer) the claim is sent to"),
    Column("plan_type", "claims", "string", D, isin=PLAN_TYPES, tolerated=True, fill=None,
           description="Coverage type of the member's plan (null when missing or not a known type)"),
    Column("billing_npi", "claims", "string", D, rules=("npi_format", "npi_check_digit"), defect="npi",
           description="NPI of the billing provider (organization); as sent (a failing NPI sets defect_npi)"),
    Column("rendering_npi", "claims", "string", D, rules=("npi_format", "npi_check_digit"), defect="npi",
           description="NPI of the clinician who rendered the service; as sent (a failing NPI sets defect_npi)"),
    Column("place_of_service", "claims", "string", D, rules=("cms_pos_code",), defect="place_of_service",
           description="CMS place-of-service code; as sent (missing or unassigned: defect_place_of_service)"),
    Column("cpt_code", "claims", "string", D, rules=("cpt_hcpcs_code",), defect="procedure_code",
           description="Procedure code: CPT (Category I/II/III, PLA, MAAA) or HCPCS Level II; as sent "
                       "(missing, malformed or deleted: defect_procedure_code)"),
    Column("modifiers", "claims", "string", D, nullable=True,
           description="Comma-separated CPT modifiers, e.g. '25,59'"),
    Column("icd10_primary", "claims", "string", D, rules=("icd_diagnosis_code",), defect="diagnosis_code",
           description="Principal diagnosis: ICD-10-CM, or ICD-9-CM on services before 2015-10-01 (icd_code_set); "
                       "as sent (missing, unparsable or the wrong set for the date: defect_diagnosis_code)"),
    Column("icd10_count", "claims", "int64", D, ge=1, le=25, defect="diagnosis_code",
           description="Diagnoses on the claim (837P carries up to 12, 837I up to 25); 0 when missing"),
    Column("units", "claims", "int64", D, ge=1, le=9999, description="Service units billed for the procedure"),
    Column("billed_amount", "claims", "float64", D, ge=0.01, le=10_000_000,
           description="Charge billed to the payer (USD)"),
    Column("service_date", "claims", "date", D,
           description="Local calendar date of service (facility time zone, RCM_FACILITY_TZ)"),
    Column("submitted_at", "claims", "timestamp", D, description="When the claim was submitted (UTC)"),
    Column("prior_auth_number", "claims", "string", D, nullable=True,
           description="Prior authorization number, when one was obtained"),
    Column("eligibility_verified", "claims", "bool", D, tolerated=True, fill=False,
           description="Member eligibility was verified with the payer before submission (False when unknown)"),
    Column("updated_at", "claims", "timestamp", B, role=Role.BOOKKEEPING,
           description="When this row reached the source"),
)

REMITTANCES_COLUMNS: tuple[Column, ...] = (
    Column("claim_id", "remittances", "string", D, role=Role.KEY, rules=("x12_claim_id",), identifier=True,
           description="Claim the remittance answers (X12 835 CLP01; the patient account number: PHI)"),
    Column("adjudicated_at", "remittances", "timestamp", P, description="When the payer adjudicated the claim (UTC)"),
    Column("claim_status", "remittances", "string", P, isin=CLAIM_STATUSES,
           description="Outcome of this adjudication: paid, denied or partial; reversed takes back an earlier "
                       "payment (X12 CLP02 22, amounts stored as magnitudes)"),
    Column("paid_amount", "remittances", "float64", P, ge=0, description="Amount the payer paid (USD)"),
    Column("allowed_amount", "remittances", "float64", P, ge=0,
           description="Amount the payer allows for the service (USD)"),
    Column("carc_code", "remittances", "string", P, nullable=True, rules=("x12_carc_code",),
           description="Claim adjustment reason code, bare as X12 835 CAS02 carries it ('197', not 'CO-197')"),
    Column("rarc_code", "remittances", "string", P, nullable=True, rules=("x12_rarc_code",),
           description="Remittance advice remark code (M…, MA…, N…)"),
    Column("payer_claim_control_number", "remittances", "string", P, nullable=True, optional=True, identifier=True,
           description="The payer's own number for the claim (X12 835 CLP07): pairs a reversal with its payment"),
    Column("cas_group", "remittances", "string", P, nullable=True, optional=True, isin=("CO", "PI", "OA", "PR", "CR"),
           description="Adjustment group of carc_code (X12 CAS01: CO contractual, PI payer, OA other, PR patient)"),
    Column("updated_at", "remittances", "timestamp", B, role=Role.BOOKKEEPING,
           description="When this row reached the source"),
)

# Columns the pipeline adds on the way in (bronze) and derives (silver).
INGEST_COLUMNS: tuple[Column, ...] = tuple(
    Column(name, table, dtype, B, role=Role.BOOKKEEPING, layers=("bronze", "silver"), description=text)
    for table in ("claims", "remittances")
    for name, dtype, text in (
        ("_ingested_at", "timestamp", "When the pipeline extracted the row (UTC)"),
        ("_source", "string", "Where the row came from: source:<table> or landing:<file name>"),
        ("_run_id", "string", "Dagster run that extracted the row"),
    )
)

DERIVED_COLUMNS: tuple[Column, ...] = (
    Column("member_token", "claims", "string", D, nullable=True, regex=r"^[0-9a-f]{32}$", layers=SILVER_ONLY,
           description="Keyed HMAC-SHA256 of member_id (pseudonym); null when the member id is missing"),
    Column("patient_age", "claims", "float64", D, nullable=True, ge=0, le=90, layers=SILVER_ONLY,
           description="Age in whole years at the service date, capped at 90; null when the date of birth is "
                       "missing or after the service date (defect_demographics)"),
    Column("patient_zip3", "claims", "string", D, nullable=True, regex=r"^\d{3}$", layers=SILVER_ONLY,
           description="First three digits of the patient ZIP (HIPAA safe-harbor generalization); null when "
                       "the ZIP is missing or malformed"),
    Column(ICD_CODE_SET_COLUMN, "claims", "string", D, nullable=True, isin=ICD_CODE_SETS, layers=SILVER_ONLY,
           description="Code set of the principal diagnosis: icd10 or icd9 (null when missing or unparsable)"),
    *(Column(f"defect_{flag}", "claims", "int64", D, ge=0, le=1, layers=SILVER_ONLY, description=text)
      for flag, text in (
          ("npi", "1 when the billing or rendering NPI is missing, malformed or fails its Luhn check digit"),
          ("diagnosis_code", "1 when the principal diagnosis is missing or unparsable, the diagnosis count is "
                             "missing or out of range, or the code set does not match the service date "
                             "(ICD-9-CM on/after 2015-10-01, ICD-10-CM before)"),
          ("procedure_code", "1 when the procedure code is missing, malformed, or deleted before the service "
                             "date (code_sets.DELETED_PROCEDURE_CODES)"),
          ("place_of_service", "1 when the place of service is missing or not a CMS place-of-service code"),
          ("demographics", "1 when the patient's date of birth (or a date after the service date), sex "
                           "(missing, invalid or U) or member id is missing"),
      )),
    Column(CLAIM_DEFECTS_COLUMN, "claims", "string", D, layers=SILVER_ONLY,
           regex=rf"^(?:(?:{'|'.join(DEFECT_FLAGS)})(?:,(?:{'|'.join(DEFECT_FLAGS)}))*)?$",
           description="Comma-joined names of the defect flags set, in DEFECT_FLAGS order "
                       "(e.g. 'npi,diagnosis_code'); '' when the claim is clean"),
    Column("denied", "remittances", "bool", P, layers=SILVER_ONLY,
           description="Outcome label: the payer denied the claim"),
    Column("carc_category", "remittances", "string", P, nullable=True, layers=SILVER_ONLY,
           isin=CARC_CATEGORY_VALUES,
           description="Reason group derived from the CARC code"),
)

REGISTRY: tuple[Column, ...] = CLAIMS_COLUMNS + REMITTANCES_COLUMNS + INGEST_COLUMNS + DERIVED_COLUMNS

# What the columns of the tables the pipeline computes mean (gold features, model rows, scores, the version
# index): shown in the Dagster UI beside the registry columns. A column a table gains must be described here.
COMPUTED_COLUMN_DESCRIPTIONS: dict[str, str] = {
    "dt": "Partition key (YYYY-MM-DD, UTC day the row reached the source)",
    "claim_id": "Claim number assigned by the billing system (X12 CLM01; the patient account number: PHI)",
    "claim_version": "1 for the original submission, 2+ for corrected claims",
    "submitted_at": "When the claim was submitted (UTC): the moment of the prediction",
    "updated_at": "When this claim state reached the source",
    "_ingested_at": "When the pipeline extracted the row (UTC)",
    "first_updated_at": "First updated_at of the claim version on that day (its submission state)",
    # rejects
    "failed_checks": "Names of the contract checks the row failed",
    "failed_columns": "Columns whose values failed a check",
    "reasons": "column:check of every failure",
    # gold features (lib/features.py)
    "payer_id": "Payer the claim is sent to, as the claim carries it (context: the model reads the learned encodings)",
    "plan_type": "Coverage type: the claim's, else the payer's in payers.csv, else unknown",
    "cpt_family": ("Procedure category: the hospital's (code_categories.csv), else the public CPT/HCPCS section "
                   "(the segment of learned payer rules and of the fallback)"),
    "procedure_section": "Public CPT/HCPCS section of the procedure code (code ranges, HCPCS Level II letter)",
    "place_of_service": "CMS place-of-service code",
    "icd_chapter": "ICD-10-CM (or ICD-9-CM) chapter of the principal diagnosis",
    "patient_sex": "Administrative sex on the claim (U when unknown)",
    "patient_age_band": "Patient age band at the service date",
    "prior_auth_required": ("1 when the payer requires prior auth for this code: its published list "
                            "(prior_auth_list.csv), or a rule learned from authorization denials that arrived "
                            "before the day (lib/payer_rules)"),
    "prior_auth_present": "1 when the claim carries a prior authorization number",
    "prior_auth_missing": "1 when prior auth is required but absent",
    "eligibility_verified": "1 when eligibility was verified before submission",
    "days_to_submit": "Days from the service date to submission (facility time zone)",
    "filing_limit_days": ("The payer's timely-filing limit in days: its contract (payers.csv), else learned from "
                          "timely-filing denials, else unknown (NaN)"),
    "filing_margin_days": "Filing limit minus days to submit (negative: past the limit; NaN when the limit is unknown)",
    "past_filing_limit": "1 when the claim is submitted after the payer's known timely-filing limit",
    "icd10_count": "Diagnoses on the claim",
    "units": "Service units billed",
    "n_modifiers": "Number of CPT modifiers",
    "has_modifier_25": "1 when modifier 25 (separate E/M service) is present",
    "has_modifier_59": "1 when modifier 59 (distinct procedural service) is present",
    "charge_ratio": ("Billed amount / (list price of the code (chargemaster.csv), else its learned typical charge, "
                     "x units), capped; NaN when neither is known"),
    "log_billed_amount": "log(1 + billed amount in USD)",
    "payer_denial_logit": "Shrunken log-odds of denial of the payer, from first adjudications known before the day",
    "procedure_denial_logit": "Shrunken log-odds of denial of the procedure code, known before the day",
    "diagnosis_denial_logit": "Shrunken log-odds of denial of the principal diagnosis, known before the day",
    "provider_denial_logit": "Shrunken log-odds of denial of the rendering/billing provider, known before the day",
    "payer_procedure_denial_logit": "Shrunken log-odds of denial of the payer x procedure code, known before the day",
    "procedure_diagnosis_inconsistency_rate": ("Share of the code x diagnosis pair's claims denied as inconsistent "
                                               "(CARC 11), known before the day"),
    "learned_typical_charge": "Typical charge per unit of the code (and payer) from history before the day (NaN: none)",
    "learned_filing_limit_days": "Filing limit learned from timely-filing denials (CARC 29) before the day (NaN: none)",
    "group_chapter_inconsistency_rate": ("Share of the procedure subsection x diagnosis chapter's claims denied as "
                                         "inconsistent (CARC 11), all payers, known before the day"),
    "payer_group_chapter_inconsistency_rate": ("That share at the claim's payer, shrunk toward the all-payer share, "
                                               "known before the day"),
    "payer_procedure_authorization_rate": ("Share of the payer x code's claims sent without an authorization number "
                                           "denied for authorization, shrunk toward the payer x subsection's, known "
                                           "before the day"),
    "procedure_frequency_denial_rate": "Share of the code's claims denied for frequency (CARC 119, 151), known before the day",
    "payer_frequency_denial_rate": "Share of the payer's claims denied for frequency (CARC 119, 151), known before the day",
    "payer_procedure_auth_number_share": ("Share of the payer x code's adjudicated claims sent with an authorization "
                                          "number, shrunk toward the payer x subsection's, known before the day"),
    "member_code_claims_14d": ("The member's earlier claims of the same code with a service date within 14 days "
                               "before (submitted before this claim)"),
    "member_code_claims_30d": "The same count within 30 days",
    "member_code_claims_60d": "The same count within 60 days",
    "defect_npi": "1 when the billing or rendering NPI is missing, malformed or fails its check digit",
    "defect_diagnosis_code": "1 when the principal diagnosis is missing, unparsable or of the wrong code set for the service date",
    "defect_procedure_code": "1 when the procedure code is missing, malformed or deleted",
    "defect_place_of_service": "1 when the place of service is missing or not a CMS code",
    "defect_demographics": "1 when the patient's date of birth or sex is missing",
    "feature_version": "Hash of the feature code, reference data and configuration that computed the row",
    # authorization denials and learned payer rules (lib/payer_rules.py)
    "adjudicated_at": "When the payer adjudicated the claim (UTC)",
    "arrived_at": "When the denial reached the source (its remittance row's updated_at)",
    "reference_requires": "1 when a published prior-auth list (prior_auth_list.csv) already requires prior auth",
    "denials": "Distinct claim versions without prior auth denied for an authorization reason in the window",
    "first_arrival": "Arrival of the earliest of those denials",
    "last_arrival": "Arrival of the latest of those denials",
    # the week's training set (model/training_set)
    "denied": "Label: 1 when the claim's first adjudication known before the model week denied it",
    "first_adjudicated_at": "When the payer first adjudicated the claim version (the label's remittance)",
    "first_carc_category": "Reason group of that first adjudication (the reason model's label)",
    "first_allowed_amount": "Allowed amount of that first adjudication (paid claims: expected payment)",
    # model rows (one per trained week)
    "week": "Model week (Monday, UTC) the model serves from",
    "model_name": "Registered model name in MLflow",
    "model_version": "Registered model version in MLflow",
    "mlflow_run_id": "MLflow run that trained (or produced) the row",
    "window_start": "First submission time of the training window",
    "window_end": "End of the training window (exclusive): cutoff minus the label horizon",
    "cutoff": "Outcomes known before this instant label the training claims",
    "train_rows": "Labelled claims used to fit",
    "holdout_rows": "Labelled claims held out (latest by submission time)",
    "labelled": "Claims of the window with a known first adjudication",
    "unlabelled": "Claims of the window without an outcome by the cutoff",
    "holdout_roc_auc": "ROC AUC on the holdout",
    "holdout_pr_auc": "Precision-recall AUC on the holdout",
    "holdout_brier": "Brier score on the holdout",
    "champion_version_before": "Version serving before this week's gate",
    "champion_auc_on_holdout": "The previous champion's AUC on the holdout claims it did not train on",
    "candidate_auc_vs_champion": "The candidate's AUC on those same claims",
    "promoted": "True when the gate promoted the candidate",
    "gate": "Gate outcome: pass, warn or error",
    "gate_sentence": "The gate's decision in words",
    "serving_version": "Version that serves from this week on",
    "data_fingerprint": "Hash of the training rows and parameters (a re-run on the same data reuses its version)",
    "reused_registered_version": "True when the run reused the version registered for the same data",
    "fallback_version": "Registered version of the week's fallback (payer x procedure-category denial rates)",
    "fallback_holdout_roc_auc": "The fallback's ROC AUC on the same holdout",
    # scores
    "denial_probability": "Calibrated probability that the payer denies the claim",
    "decision": "review (send to a biller first) or submit, at the decision threshold",
    "threshold": "Decision threshold on the probability",
    "scored_by": "champion, a challenger name, or the fallback rules",
    "training_window_start": "Training window start of the model that scored",
    "training_window_end": "Training window end of the model that scored",
    "dagster_run_id": "Dagster run that scored the claim",
    "scored_at": "When the claim was scored (UTC)",
}


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
    """Direct identifiers silver drops or pseudonymizes (the PHI guards refuse them past bronze)."""
    return frozenset(c.name for c in REGISTRY if c.phi)


def identifier_column_names() -> frozenset[str]:
    """Identifiers kept as keys (claim and account numbers): PHI by classification, not dropped."""
    return frozenset(c.name for c in REGISTRY if c.identifier)


def phi_tag_column_names() -> frozenset[str]:
    """The columns that make a stored table or an exported file PHI (`phi=yes`)."""
    return phi_column_names() | identifier_column_names()


def decision_time_column_names(table: str = "claims") -> frozenset[str]:
    return frozenset(c.name for c in REGISTRY if c.table == table and c.availability is D)


def registry_regex(name: str) -> str | None:
    """The format (regex) registered for a column name in any table, None when it has none or is unknown.

    A code column's format is the grammar of its first rule (its code list, if any, is narrower)."""
    return next((c.regex for c in REGISTRY if c.name == name and c.regex is not None), None)
