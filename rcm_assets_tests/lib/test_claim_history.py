"""Which claim state is the submission decision: in-place updates never count as new submissions."""

from __future__ import annotations

import pandas as pd
import pytest

from rcm_assets.lib import claim_history
from rcm_assets_tests.conftest import silver_claims


def states(day: str, n: int = 50, seed: int = 0) -> pd.DataFrame:
    frame = silver_claims(n, seed=seed, day=day)
    return frame.assign(claim_id=[f"CLM-{seed}-{i:05d}" for i in range(n)])


def update_of(rows: pd.DataFrame, day: str, hours: int = 10) -> pd.DataFrame:
    """The same versions, changed in place later: eligibility fixed after an eligibility denial."""
    when = pd.Series(pd.Timestamp(day) + pd.Timedelta(hours=hours), index=rows.index)
    when = when.where(when > rows["updated_at"], rows["updated_at"] + pd.Timedelta(seconds=1))
    return rows.assign(dt=day, updated_at=when, _ingested_at=when, eligibility_verified=True)


def test_first_state_of_a_version_is_its_submission_even_when_updated_the_same_day():
    day = states("2025-03-01")
    same_day = update_of(day, "2025-03-01", hours=23)  # later that day, e.g. a fixed eligibility flag
    decisions, stats = claim_history.decision_rows(pd.concat([same_day, day], ignore_index=True), None, 120)
    assert len(decisions) == len(day)
    merged = decisions.set_index("claim_id").loc[day["claim_id"]]
    assert merged["updated_at"].tolist() == day["updated_at"].tolist()
    assert merged["eligibility_verified"].tolist() == day["eligibility_verified"].tolist()
    assert stats["updates_same_day"] == len(day) and stats["in_place_updates"] == len(day)


def test_an_update_of_a_version_seen_on_an_earlier_day_is_not_a_new_submission():
    first = states("2025-03-01")
    later = update_of(first.iloc[:20], "2025-03-15")
    fresh = states("2025-03-15", n=30, seed=1)
    index = claim_history.version_index(first)
    decisions, stats = claim_history.decision_rows(pd.concat([later, fresh], ignore_index=True), index, 120)
    assert set(decisions["claim_id"]) == set(fresh["claim_id"])
    assert stats["in_place_updates"] == 20 and stats["decisions"] == 30


def test_a_range_run_and_day_by_day_runs_pick_the_same_decisions():
    first = states("2025-03-01")
    later = update_of(first.iloc[:20], "2025-03-02")
    both = pd.concat([first, later], ignore_index=True)
    ranged, _ = claim_history.decision_rows(both, None, 120)
    day1, _ = claim_history.decision_rows(first, None, 120)
    day2, _ = claim_history.decision_rows(later, claim_history.version_index(first), 120)
    assert len(day2) == 0
    pd.testing.assert_frame_equal(ranged, pd.concat([day1, day2], ignore_index=True))


def test_a_corrected_claim_is_a_new_decision_and_supersedes_its_version_the_same_day():
    first = states("2025-03-01")
    corrected = first.iloc[:10].assign(claim_version=2, updated_at=pd.Timestamp("2025-03-05 09:00"), dt="2025-03-05",
                                       submitted_at=pd.Timestamp("2025-03-05 09:00"))
    decisions, _ = claim_history.decision_rows(corrected, claim_history.version_index(first), 120)
    assert len(decisions) == 10 and (decisions["claim_version"] == 2).all()
    same_day = first.iloc[:10].assign(claim_version=2, updated_at=first["updated_at"].iloc[:10] + pd.Timedelta(minutes=5))
    decisions, stats = claim_history.decision_rows(pd.concat([first, same_day], ignore_index=True), None, 120)
    assert len(decisions) == len(first) and stats["superseded_same_day"] == 10
    assert (decisions.set_index("claim_id").loc[same_day["claim_id"], "claim_version"] == 2).all()


@pytest.mark.parametrize("lookback", [30, 10])
def test_an_update_past_the_lookback_is_still_an_update(lookback):
    """20 days later: found in the index with a 30-day lookback; past a 10-day lookback, recognised by its
    original submitted_at (it used to be scored again as a new claim)."""
    first = states("2025-03-01", n=5)
    later = update_of(first, "2025-03-21")
    decisions, stats = claim_history.decision_rows(later, claim_history.version_index(first), lookback)
    assert len(decisions) == 0 and stats["in_place_updates"] == 5
    assert stats["updates_past_lookback"] == (5 if lookback == 10 else 0)


def test_an_update_arriving_200_days_after_submission_is_never_a_new_submission():
    """Gold reads the version index of the lookback's 120 days only: the version's own day is long out of
    it. The update keeps its submitted_at, so it is an update; a claim submitted that day is still new."""
    first = states("2025-01-02", n=20)
    late_day = (pd.Timestamp("2025-01-02") + pd.Timedelta(days=200)).date().isoformat()
    late = update_of(first, late_day)
    fresh = states(late_day, n=7, seed=3)
    window = pd.concat([claim_history.version_index(states(d, n=3, seed=9)) for d in ("2025-05-01", "2025-07-01")],
                       ignore_index=True)  # what gold reads: the 120 days before, none of them the first day
    decisions, stats = claim_history.decision_rows(pd.concat([late, fresh], ignore_index=True), window, 120)
    assert set(decisions["claim_id"]) == set(fresh["claim_id"])
    assert stats["in_place_updates"] == 20 == stats["updates_past_lookback"] and stats["decisions"] == 7
    # the same in a range run holding both days, and a corrected version submitted that day is new
    corrected = first.iloc[:2].assign(claim_version=2, dt=late_day, submitted_at=pd.Timestamp(late_day) + pd.Timedelta(hours=8),
                                      updated_at=pd.Timestamp(late_day) + pd.Timedelta(hours=9))
    ranged, _ = claim_history.decision_rows(pd.concat([first, late, corrected], ignore_index=True), None, 120)
    assert len(ranged) == len(first) + 2
    assert (ranged[ranged["dt"] == late_day]["claim_version"] == 2).all()


def test_the_version_index_holds_one_row_per_version_and_day():
    first = states("2025-03-01")
    index = claim_history.version_index(pd.concat([first, update_of(first, "2025-03-01", 23)], ignore_index=True))
    assert list(index.columns) == claim_history.INDEX_COLUMNS
    assert len(index) == len(first) and not index.duplicated(["claim_id", "claim_version", "dt"]).any()
    assert (index.set_index("claim_id").loc[first["claim_id"], "first_updated_at"].to_numpy()
            == first["updated_at"].to_numpy()).all()


def _reference_first_states(claims: pd.DataFrame) -> pd.DataFrame:
    """The ranking by the full key, as first_states was written before issue 16."""
    order = ["dt", *claim_history.VERSION_KEY, "updated_at", "_ingested_at"]
    return claims.sort_values(order, kind="stable").drop_duplicates(
        ["dt", *claim_history.VERSION_KEY], keep="first").sort_index()


def test_ranking_on_timestamps_only_picks_the_rows_the_full_key_ranking_picked():
    """Issue 16: first_states and the last version per claim sort on the timestamps / version alone (no
    sort on text keys); ties on updated_at go to the first ingested, then to the earlier row."""
    day = states("2025-03-01", n=40)
    later = update_of(day.iloc[:15], "2025-03-01", hours=20)
    earlier_ingest = later.iloc[:5].assign(_ingested_at=later["_ingested_at"].iloc[:5] - pd.Timedelta(hours=1),
                                           eligibility_verified=False)  # same updated_at, ingested first
    tie = day.iloc[20:25].assign(eligibility_verified=~day["eligibility_verified"].iloc[20:25])  # full tie
    corrected = day.iloc[30:35].assign(claim_version=day["claim_version"].iloc[30:35] + 1)
    next_day = update_of(day.iloc[10:20], "2025-03-02").assign(claim_version=day["claim_version"].iloc[10:20] + 1)
    frame = pd.concat([later, tie, next_day, day, earlier_ingest, corrected], ignore_index=True)
    frame = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)  # no help from the row order
    pd.testing.assert_frame_equal(claim_history.first_states(frame), _reference_first_states(frame))
    decisions, stats = claim_history.decision_rows(frame, None, 120)
    first = _reference_first_states(frame)
    ranked = first.sort_values(["dt", "claim_id", "claim_version"], kind="stable")
    expected = ranked.drop_duplicates(["dt", "claim_id"], keep="last").sort_index().reset_index(drop=True)
    pd.testing.assert_frame_equal(decisions, expected)
    assert stats["superseded_same_day"] == 5
