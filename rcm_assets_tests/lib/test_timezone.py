"""Facility time zone: service dates are local dates, timestamps naive UTC.

The contract compares the local date of `submitted_at` with `service_date`, and `days_to_submit` (with the
filing margin) counts local days — across both US DST changes of 2025 (America/New_York, 2025-03-09 and
2025-11-02) and in a zone east of UTC (Asia/Tokyo). Every case also states what the old UTC comparison
concluded, which is what these tests exist to rule out.
"""

from __future__ import annotations

import pandas as pd
import pytest

from rcm_assets.lib import contracts, settings, transforms
from rcm_assets.lib import features as F
from rcm_assets.lib.reference_tables import ReferenceTables, normalize
from rcm_assets.lib.scoring import scoring_features
from rcm_assets.platform.resources import FeatureResource, build_resources
from rcm_assets_tests.conftest import PHI_TEST_KEY as KEY
from rcm_assets_tests.conftest import silver_claims

NY, TOKYO = "America/New_York", "Asia/Tokyo"
CROSS_CHECK = "submitted_at:greater_than_or_equal_to_column(service_date)"
T = pd.Timestamp


def bronze_claim(service_date: str, submitted_at_utc: str) -> pd.DataFrame:
    """One valid bronze claim row (registry source + ingest columns, dt) with the given dates."""
    row = silver_claims(1).drop(columns=["member_token", "patient_age", "patient_zip3"])
    submitted = T(submitted_at_utc)
    return row.assign(
        member_id="M123456789", patient_name="Test Patient", patient_dob=T("1960-05-17"),
        patient_address="1 Main St", patient_zip="02134-1705",
        service_date=T(service_date), submitted_at=submitted, updated_at=submitted + pd.Timedelta(minutes=5),
        _ingested_at=submitted + pd.Timedelta(hours=3), dt=(submitted + pd.Timedelta(minutes=5)).strftime("%Y-%m-%d"),
    )


def accepted(service_date: str, submitted_at_utc: str, tz: str) -> bool:
    result = transforms.build_silver_claims(bronze_claim(service_date, submitted_at_utc), KEY, facility_tz=tz)
    if len(result.rejects):
        assert result.rejects["reasons"].iloc[0] == CROSS_CHECK  # nothing else is wrong with the row
        return False
    contracts.schema_for("claims", "silver").validate(result.good, lazy=True)  # the stored contract agrees
    return True


# (zone, service date, submitted at UTC, valid in the zone, what the old UTC comparison said)
CASES = [
    # Tokyo, UTC+9: 08:00 local on the service date is 23:00 UTC the day before
    (TOKYO, "2025-03-10", "2025-03-09 23:00", True, False),
    (TOKYO, "2025-03-10", "2025-03-09 14:59", False, False),  # 23:59 local the day before
    # New York, spring forward 2025-03-09 02:00 EST -> 03:00 EDT (local midnight moves from 05:00 to 04:00 UTC)
    (NY, "2025-03-09", "2025-03-09 04:30", False, True),  # 23:30 EST on 03-08: before the service date
    (NY, "2025-03-09", "2025-03-09 05:30", True, True),  # 00:30 EST on 03-09
    (NY, "2025-03-10", "2025-03-10 03:30", False, True),  # 23:30 EDT on 03-09
    (NY, "2025-03-10", "2025-03-10 04:30", True, True),  # 00:30 EDT on 03-10 (a fixed EST offset says 03-09)
    # New York, fall back 2025-11-02 02:00 EDT -> 01:00 EST (01:30 happens twice)
    (NY, "2025-11-02", "2025-11-02 05:30", True, True),  # 01:30 EDT
    (NY, "2025-11-02", "2025-11-02 06:30", True, True),  # 01:30 EST, one hour later
    (NY, "2025-11-03", "2025-11-03 04:30", False, True),  # 23:30 EST on 11-02 (a fixed EDT offset says 11-03)
    (NY, "2025-11-03", "2025-11-03 05:00", True, True),  # 00:00 EST on 11-03
]


@pytest.mark.parametrize("tz,service_date,submitted_at,valid,valid_in_utc", CASES)
def test_contract_compares_the_local_date_of_submission(tz, service_date, submitted_at, valid, valid_in_utc):
    assert accepted(service_date, submitted_at, tz) is valid
    assert accepted(service_date, submitted_at, "UTC") is valid_in_utc  # the old comparison


def test_claim_submitted_in_tokyo_on_its_service_date_is_not_rejected():
    """The issue's case: 08:00 in Tokyo on the service date is 23:00 UTC the day before."""
    b = bronze_claim("2025-03-10", "2025-03-09 23:00")
    assert transforms.build_silver_claims(b, KEY, facility_tz=TOKYO).stats["rows_rejected"] == 0
    old = transforms.build_silver_claims(b, KEY, facility_tz="UTC")
    assert old.rejects["reasons"].tolist() == [CROSS_CHECK]


def test_as_of_bounds_service_dates_by_the_local_date():
    b = bronze_claim("2025-03-10", "2025-03-09 23:00")
    as_of = T("2025-03-09 23:30")  # 08:30 on 03-10 in Tokyo: the service date has begun there
    assert transforms.build_silver_claims(b, KEY, as_of=as_of, facility_tz=TOKYO).stats["rows_rejected"] == 0
    rejects = transforms.build_silver_claims(b, KEY, as_of=as_of, facility_tz="UTC").rejects
    assert rejects["reasons"].str.contains("service_date:less_than_or_equal_to").all()


def test_stored_contract_is_zone_independent():
    """schema_for never refuses a row row_schema accepted in some zone; it still refuses the impossible."""
    silver = transforms.build_silver_claims(bronze_claim("2025-03-10", "2025-03-09 23:00"), KEY,
                                            facility_tz=TOKYO).good
    contracts.schema_for("claims", "silver").validate(silver, lazy=True)
    too_early = silver.assign(submitted_at=T("2025-03-09 09:59"), updated_at=T("2025-03-09 10:00"))  # < UTC+14
    with pytest.raises(Exception, match="greater_than_or_equal_to_column"):
        contracts.schema_for("claims", "silver").validate(too_early, lazy=True)


# ---------------------------------------------------------------------------------------------- features


# The hospital's contract says how many days a payer allows (payers.csv); the features count against it.
CIGNA_CONTRACT = ReferenceTables(payers=normalize("payers", pd.DataFrame(
    {"payer_id": ["CIGNA"], "payer_name": ["Cigna"], "plan_type": ["commercial"], "filing_limit_days": ["90"]})))


def claim_features(service_date: str, submitted_at_utc: str, tz: str, payer: str = "MEDICARE") -> pd.Series:
    rows = silver_claims(1).assign(payer_id=payer, service_date=T(service_date), submitted_at=T(submitted_at_utc))
    config = F.FeatureConfig(facility_tz=tz)
    return F.compute_features(F.decision_time_view(rows, config), config, reference=CIGNA_CONTRACT).iloc[0]


# (zone, service date, submitted at UTC, local days, days the old UTC count gave)
DAY_CASES = [
    (TOKYO, "2025-03-10", "2025-03-09 23:00", 0, -1),
    (NY, "2025-03-08", "2025-03-10 03:30", 1, 2),  # 23:30 EDT on 03-09
    (NY, "2025-03-09", "2025-03-10 04:30", 1, 1),  # 00:30 EDT on 03-10 (a fixed EST offset says 0)
    (NY, "2025-11-02", "2025-11-03 04:30", 0, 1),  # 23:30 EST on 11-02 (a fixed EDT offset says 1)
    (NY, "2025-11-01", "2025-11-02 05:30", 1, 1),  # 01:30 EDT, first pass
    (NY, "2025-11-01", "2025-11-02 06:30", 1, 1),  # 01:30 EST, second pass
]


@pytest.mark.parametrize("tz,service_date,submitted_at,days,days_in_utc", DAY_CASES)
def test_days_to_submit_counts_local_days(tz, service_date, submitted_at, days, days_in_utc):
    assert claim_features(service_date, submitted_at, tz)["days_to_submit"] == days
    assert claim_features(service_date, submitted_at, "UTC")["days_to_submit"] == days_in_utc


def test_filing_margin_counts_local_days():
    limit = 90  # CIGNA_CONTRACT
    service = T("2025-01-01")
    # 20:00 EDT on the last day of the filing limit is already the next day in UTC
    submitted = (service + pd.Timedelta(days=limit, hours=20 + 4)).strftime("%Y-%m-%d %H:%M")
    local = claim_features("2025-01-01", submitted, NY, payer="CIGNA")
    assert (local["days_to_submit"], local["filing_margin_days"], local["past_filing_limit"]) == (limit, 0, 0)
    old = claim_features("2025-01-01", submitted, "UTC", payer="CIGNA")
    assert (old["days_to_submit"], old["filing_margin_days"], old["past_filing_limit"]) == (limit + 1, -1, 1)


def test_zone_is_part_of_the_feature_version_and_validated():
    assert F.FeatureConfig().facility_tz == "UTC"
    assert F.feature_version(F.FeatureConfig(facility_tz=NY)) != F.feature_version()
    assert F.feature_version(F.FeatureConfig(facility_tz="UTC")) == F.feature_version()
    with pytest.raises(ValueError, match="facility_tz='Mars/Olympus' is not an IANA time zone"):
        F.FeatureConfig(facility_tz="Mars/Olympus")


def test_scoring_and_gold_count_days_alike():
    claims = silver_claims(300, seed=4)
    config = FeatureResource(facility_tz=TOKYO).config()
    gold = F.compute_features(F.decision_time_view(claims, config), config)
    pd.testing.assert_frame_equal(scoring_features(F.decision_time_view(claims, config), config), gold)
    assert (gold["feature_version"] == F.feature_version(F.FeatureConfig(facility_tz=TOKYO))).all()


# ---------------------------------------------------------------------------------------------- setting


def test_facility_tz_setting(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("RCM_FACILITY_TZ", raising=False)
    assert settings.facility_tz() == "UTC"
    monkeypatch.setenv("RCM_FACILITY_TZ", NY)
    assert settings.facility_tz() == NY
    for bad in ("EST-ish", "America", "", "asia/tokyo", " UTC"):
        monkeypatch.setenv("RCM_FACILITY_TZ", bad)
        with pytest.raises(ValueError, match=r"RCM_FACILITY_TZ=.* is not an IANA time zone name"):
            settings.facility_tz()


def test_feature_resource_gets_the_facility_zone(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RCM_FACILITY_TZ", NY)
    resource = build_resources("dev")["features"]
    assert resource.facility_tz == NY and resource.config().facility_tz == NY
    assert resource.version == F.feature_version(F.FeatureConfig(facility_tz=NY))
    assert FeatureResource().config().facility_tz == "UTC"


def test_local_dates():
    utc = pd.Series(pd.to_datetime(["2025-03-09 04:30", "2025-03-10 04:30", None]), index=[7, 8, 9])
    assert settings.local_dates(utc, NY).tolist()[:2] == [T("2025-03-08"), T("2025-03-10")]
    assert settings.local_dates(utc, NY).index.tolist() == [7, 8, 9] and settings.local_dates(utc, NY).isna().iloc[2]
    assert settings.local_dates(utc, "UTC").tolist()[:2] == [T("2025-03-09"), T("2025-03-10")]
    assert settings.local_dates(utc, None).tolist()[:2] == [T("2025-03-09"), T("2025-03-10")]  # UTC+14
