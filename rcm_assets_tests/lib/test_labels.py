"""The label rule: the first adjudication of each claim version (lib/labels.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from rcm_assets.lib import labels as L

T0 = pd.Timestamp("2025-03-01 09:00")


def day(n: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=n)


def remit(claim: str, adjudicated: float, arrived: float, status: str, carc: str | None = None) -> dict:
    return {"claim_id": claim, "adjudicated_at": day(adjudicated), "updated_at": day(arrived), "claim_status": status,
            "denied": status == "denied", "carc_code": carc}


def corrected_claims() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three claims denied on their original and paid on their corrected version (the issue's case)."""
    versions, rows = [], []
    for i in range(3):
        claim = f"C{i}"
        versions += [{"claim_id": claim, "claim_version": 1, "submitted_at": day(i)},
                     {"claim_id": claim, "claim_version": 2, "submitted_at": day(i + 30)}]
        rows += [remit(claim, i + 20, i + 21, "denied", "197"), remit(claim, i + 50, i + 51, "paid")]
    return pd.DataFrame(rows), pd.DataFrame(versions)


def test_a_corrected_claims_original_keeps_its_own_denial() -> None:
    remittances, versions = corrected_claims()
    first = L.first_adjudications(remittances, versions)
    assert list(zip(first["claim_id"], first["claim_version"], first["denied"], strict=True)) == [
        ("C0", 1, True), ("C0", 2, False), ("C1", 1, True), ("C1", 2, False), ("C2", 1, True), ("C2", 2, False)]
    assert (first["later_rows"] == 0).all()
    assert first["carc_code"].tolist() == ["197", None, "197", None, "197", None]


def test_the_first_to_arrive_is_the_label_and_later_rows_never_relabel() -> None:
    versions = pd.DataFrame({"claim_id": ["A"], "claim_version": [1], "submitted_at": [day(0)]})
    remittances = pd.DataFrame([
        remit("A", 25, 40, "paid"),  # appeal outcome, arrives after the denial
        remit("A", 10, 11, "denied", "16"),
        remit("A", 10, 30, "paid"),  # a restatement of the same adjudication, arriving later
    ])
    first = L.first_adjudications(remittances, versions)
    assert first["denied"].tolist() == [True] and first["carc_code"].tolist() == ["16"]
    assert first["later_rows"].tolist() == [2] and first["overturned"].tolist() == [True]
    # point in time: before the denial arrived there is no label; once it arrived, it never changes
    assert L.first_adjudications(remittances, versions, cutoff=day(11)).empty
    for cutoff in (day(12), day(31), day(50)):
        assert L.first_adjudications(remittances, versions, cutoff=cutoff)["denied"].tolist() == [True]


def test_ties_of_arrival_go_to_the_earlier_adjudication() -> None:
    versions = pd.DataFrame({"claim_id": ["A"], "submitted_at": [day(0)]})
    remittances = pd.DataFrame([remit("A", 12, 20, "paid"), remit("A", 10, 20, "denied")])
    assert L.first_adjudications(remittances, versions)["denied"].tolist() == [True]


def test_a_reversal_never_becomes_the_first_adjudication() -> None:
    """A reversal (CLP02 22) and its correction arriving together, before the payment they pair with is
    known: the correction is the first adjudication; the reversal is not even a later row."""
    versions = pd.DataFrame({"claim_id": ["A", "B"], "claim_version": [1, 1], "submitted_at": [day(0), day(0)]})
    remittances = pd.DataFrame([
        remit("A", 30, 31, "reversed"), remit("A", 30, 31, "denied", "4"),
        remit("B", 10, 11, "paid"), remit("B", 30, 31, "reversed"), remit("B", 30, 31, "denied", "4"),
    ])
    first = L.first_adjudications(remittances, versions)
    assert first["claim_status"].tolist() == ["denied", "paid"]
    assert first["later_rows"].tolist() == [0, 1]
    only_reversal = remittances[remittances["claim_status"] == "reversed"]
    assert L.first_adjudications(only_reversal, versions).empty
    # the status is recognised however it is spelled
    upper = only_reversal.assign(claim_status="REVERSED ")
    assert L.first_adjudications(upper, versions).empty


def test_a_late_remittance_answers_the_version_it_was_adjudicated_for() -> None:
    """Adjudicated before the correction was submitted but arriving after it: it answers the original;
    adjudicated after the correction was submitted: it answers the correction."""
    versions = pd.DataFrame({"claim_id": ["A", "A"], "claim_version": [1, 2], "submitted_at": [day(0), day(10)]})
    remittances = pd.DataFrame([remit("A", 9, 40, "denied", "16"), remit("A", 10, 12, "paid")])
    first = L.first_adjudications(remittances, versions)
    assert first[["claim_version", "denied"]].to_dict("records") == [
        {"claim_version": 1, "denied": True}, {"claim_version": 2, "denied": False}]
    # before the late row arrived, the original had no answer and the correction had its own
    early = L.first_adjudications(remittances, versions, cutoff=day(20))
    assert early["claim_version"].tolist() == [2]


def test_a_remittance_before_the_first_version_answers_nothing_and_versions_keep_their_order() -> None:
    versions = pd.DataFrame({"claim_id": ["B", "A"], "claim_version": [1, 1], "submitted_at": [day(0), day(5)]})
    remittances = pd.DataFrame([remit("A", 4, 5, "denied"), remit("B", 3, 4, "paid"), remit("Z", 3, 4, "paid")])
    first = L.first_adjudications(remittances, versions)
    assert first["claim_id"].tolist() == ["B"]


@pytest.mark.parametrize("arrow", [False, True])
def test_integer_codes_and_arrow_strings_give_the_same_answers(arrow: bool) -> None:
    remittances, versions = corrected_claims()
    if arrow:
        remittances = remittances.astype({"claim_id": pd.StringDtype("pyarrow")})
        versions = versions.astype({"claim_id": pd.StringDtype("pyarrow")})
    v_codes, r_codes = L.joint_codes(versions["claim_id"], remittances["claim_id"])
    plain = L.answer_positions(remittances, versions)
    coded = L.answer_positions(remittances.assign(claim_id=r_codes), versions.assign(claim_id=v_codes))
    assert plain.version.tolist() == coded.version.tolist() == list(range(6))
    assert plain.remittance.tolist() == coded.remittance.tolist()


def test_training_reasons_monitoring_and_the_worklist_agree_on_every_label():
    """On the generator's world (real silver and gold code) with reversals added: the training set, the
    reason model's label row, monitoring (and so the lifecycle review) and the worklist evaluation give
    each claim version the label `first_adjudications` gives it."""
    from rcm_assets.lib import modelling as M
    from rcm_assets.lib import monitoring as mon
    from rcm_assets.lib import worklist as W
    from rcm_assets_tests.lib.test_reasons import generator_world

    world = generator_world()
    paid = world.outcomes[~world.outcomes["denied"]].drop_duplicates("claim_id").head(300)
    # a reversal arriving with the payment it reverses (same instant, listed first): never the label
    reversals = paid.assign(claim_status="reversed", denied=False)
    outcomes = pd.concat([reversals, world.outcomes], ignore_index=True)
    gold, cutoff = world.gold, world.cutoff
    versions = gold.loc[gold["submitted_at"] < cutoff, ["claim_id", "claim_version", "submitted_at"]]
    expected = L.first_adjudications(outcomes, versions, cutoff).set_index(["claim_id", "claim_version"])
    assert (expected["claim_status"] != L.REVERSED).all() and len(expected) > 20_000

    window = (pd.Timestamp("2025-01-01"), pd.Timestamp("2025-04-15"))
    ts = M.training_frame(gold, outcomes, cutoff, *window)
    keys = pd.MultiIndex.from_frame(ts.claim_keys[["claim_id", "claim_version"]])
    assert (ts.y.to_numpy() == expected.loc[keys, "denied"].astype("int64").to_numpy()).all()
    in_window = versions[(versions["submitted_at"] >= window[0]) & (versions["submitted_at"] < window[1])]
    assert len(ts.y) == in_window.merge(expected.reset_index()[["claim_id", "claim_version"]]).shape[0]
    for column in ("adjudicated_at", "carc_category", "allowed_amount"):  # the reason model's and ratios' row
        pd.testing.assert_series_equal(ts.first_outcome[column].reset_index(drop=True),
                                       expected.loc[keys, column].reset_index(drop=True), check_names=False)

    scored = mon.label_scored_claims(in_window, outcomes, cutoff, versions=versions)
    labelled = scored[scored["denied"].notna()].set_index(["claim_id", "claim_version"])
    assert (labelled["denied"].astype(bool) == expected.loc[labelled.index, "denied"]).all()
    assert len(labelled) == len(ts.y)

    listed = W.outcome_labels(versions, outcomes, cutoff).set_index(["claim_id", "claim_version"])
    assert listed.index.equals(expected.index)
    assert (listed["denied"].astype(bool) == expected["denied"]).all()
