"""Worklist logic: payer allowed ratios, expected loss, ranking, the PHI allow-list of the export, atomic
files, labels and the top-K evaluation against random and the naive prior-auth rule."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from rcm_assets.lib import worklist as W


def test_allowed_ratios_shrink_a_thin_payer_toward_the_overall_ratio():
    paid = pd.DataFrame({
        "payer_id": ["A"] * 100 + ["B"] * 2 + ["C"],
        "billed_amount": [100.0] * 100 + [100.0, 100.0] + [0.0],  # C billed nothing: left out
        "allowed_amount": [50.0] * 100 + [90.0, 90.0] + [10.0],
    })
    ratios = W.payer_allowed_ratios(paid, prior_claims=20).set_index("payer_id")
    overall = (5000 + 180) / 10200
    assert ratios.loc["*", "allowed_ratio"] == pytest.approx(overall)
    assert ratios.loc["A", "allowed_ratio"] == pytest.approx((5000 + overall * 2000) / (10000 + 2000))
    assert ratios.loc["B", "allowed_ratio"] == pytest.approx((180 + overall * 2000) / (200 + 2000))
    assert 0.5 < ratios.loc["B", "allowed_ratio"] < 0.9  # pulled from its own 0.9 toward ~0.51
    assert "C" not in ratios.index and ratios.loc["*", "paid_claims"] == 102


def test_ratio_lookup_falls_back_to_overall_then_to_billed():
    ratios = pd.DataFrame({"payer_id": ["A", "*"], "allowed_ratio": [0.4, 0.6], "paid_claims": [1, 2],
                           "billed_total": [1.0, 2.0], "allowed_total": [0.4, 1.2]})
    np.testing.assert_allclose(W.allowed_ratio_for(pd.Series(["A", "NEW"]), ratios), [0.4, 0.6])
    np.testing.assert_allclose(W.allowed_ratio_for(pd.Series(["A"]), ratios.iloc[0:0]), [1.0])
    payment, loss = W.expected_loss(np.array([0.5, 0.1]), np.array([1000.0, 200.0]), np.array([0.4, 0.6]))
    np.testing.assert_allclose(payment, [400.0, 120.0])
    np.testing.assert_allclose(loss, [200.0, 12.0])


def two_weeks_of_ratios() -> pd.DataFrame:
    """The stored model/payer_allowed_ratios of two weeks whose Medicare ratio moved (0.363 -> 0.412)."""
    def week(monday: str, medicare: float) -> pd.DataFrame:
        return pd.DataFrame({"payer_id": ["MEDICARE", "*"], "allowed_ratio": [medicare, 0.5], "paid_claims": [50, 90],
                             "billed_total": [1.0, 2.0], "allowed_total": [0.4, 1.0], "week": monday,
                             "cutoff": pd.Timestamp(monday)})
    return pd.concat([week("2025-02-17", 0.363), week("2025-03-17", 0.412)], ignore_index=True)


@pytest.mark.parametrize(("day", "expected"), [("2025-02-18", 0.363), ("2025-03-16", 0.363), ("2025-03-17", 0.412),
                                               ("2025-03-20", 0.412), ("2025-02-16", 1.0)])
def test_a_day_is_priced_with_its_own_model_weeks_ratios(day: str, expected: float):
    """A run over several weeks loads all their ratios; each day takes its own week's (else the latest
    earlier one), never a later week's. The worklist used every row, so the last week's ratio (0.412)
    priced days up to four weeks earlier."""
    ratios = W.ratios_of_day(two_weeks_of_ratios(), day)
    np.testing.assert_allclose(W.allowed_ratio_for(pd.Series(["MEDICARE"]), ratios), [expected])


def test_ratios_of_several_weeks_are_refused_by_the_lookup():
    with pytest.raises(ValueError, match="several weeks"):
        W.allowed_ratio_for(pd.Series(["MEDICARE"]), two_weeks_of_ratios())


def listed(n: int = 6, day: str = "2025-05-01") -> pd.DataFrame:
    return pd.DataFrame({
        "dt": day, "claim_id": [f"C{i}" for i in range(n)], "claim_version": 1,
        "payer_id": "UHC", "cpt_code": "70551", "billed_amount": np.linspace(100, 600, n),
        "expected_payment": np.linspace(50, 300, n), "denial_probability": np.linspace(0.9, 0.1, n),
        "expected_loss": [10.0, 30.0, 30.0, 5.0, 50.0, 1.0], "likely_reason": "timely filing",
        "reason_probability": 0.8, "driver_1_text": "eligibility not verified before submission",
        "driver_2_text": None, "driver_3_text": None, "member_token": "a" * 32, "patient_age": 40,
    })


def test_rank_by_expected_loss_per_day_with_ties_broken_by_probability():
    two_days = pd.concat([listed(), listed(day="2025-05-02")], ignore_index=True)
    ranked = W.rank_worklist(two_days)
    first = ranked[ranked["dt"] == "2025-05-01"]
    assert list(first["claim_id"]) == ["C4", "C1", "C2", "C0", "C3", "C5"]  # C1 beats C2 on probability
    assert list(first["rank"]) == [1, 2, 3, 4, 5, 6]
    assert list(ranked[ranked["dt"] == "2025-05-02"]["rank"]) == [1, 2, 3, 4, 5, 6]


def test_export_carries_only_the_allow_listed_columns():
    out = W.export_frame(W.rank_worklist(listed()))
    assert list(out.columns) == list(W.EXPORT_COLUMNS)
    assert not {"member_token", "patient_age"} & set(out.columns)
    with pytest.raises(W.ExportError, match="member_token"):
        W.check_export_columns([*W.EXPORT_COLUMNS, "member_token"])
    with pytest.raises(W.ExportError, match="patient_zip3"):
        W.check_export_columns([*W.EXPORT_COLUMNS, "patient_zip3"])
    with pytest.raises(W.ExportError, match="notes"):
        W.check_export_columns([*W.EXPORT_COLUMNS, "notes"])
    with pytest.raises(W.ExportError, match="missing \\['check_3'\\]"):
        W.check_export_columns(W.EXPORT_COLUMNS[:-1])


def test_export_files_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
    out = W.export_frame(W.rank_worklist(listed()))
    csv_path, parquet_path = W.write_export(out, tmp_path / "out", "2025-05-01")
    assert pd.read_csv(csv_path)["claim_id"].tolist() == out["claim_id"].tolist()
    pd.testing.assert_frame_equal(pd.read_parquet(parquet_path), out)
    before = csv_path.read_bytes()

    def broken(self, path, *args, **kwargs):  # writes half a file, then fails
        with open(path, "w") as f:
            f.write("rank,claim_id\n1,")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    with pytest.raises(OSError, match="disk full"):
        W.write_export(out.head(1), tmp_path / "out", "2025-05-01")
    assert csv_path.read_bytes() == before  # the previous file is intact
    assert not list((tmp_path / "out").glob(".*"))  # no temporary left behind
    with pytest.raises(W.ExportError):
        W.write_export(out.assign(member_token="x"), tmp_path / "out", "2025-05-02")
    assert not W.export_paths(tmp_path / "out", "2025-05-02")[0].exists()


def test_labels_are_first_adjudications_of_the_listed_versions():
    versions = pd.DataFrame({"claim_id": ["A", "A", "B"], "claim_version": [1, 2, 1],
                             "submitted_at": pd.to_datetime(["2025-01-01", "2025-01-05", "2025-01-02"])})
    outcomes = pd.DataFrame({"claim_id": ["A", "A", "B"], "denied": [True, False, False],
                             "adjudicated_at": pd.to_datetime(["2025-02-01", "2025-03-01", "2025-02-02"]),
                             "updated_at": pd.to_datetime(["2025-02-01", "2025-03-01", "2025-02-02"])})
    labels = W.outcome_labels(versions, outcomes, pd.Timestamp("2025-06-01")).set_index(["claim_id", "claim_version"])
    # the payer adjudicated A's latest version (the appeal on 2025-03-01 never relabels it); version 1 was
    # superseded by the corrected claim before any outcome, so it has no label
    assert bool(labels.loc[("A", 2), "denied"]) and not bool(labels.loc[("B", 1), "denied"])
    assert ("A", 1) not in labels.index and len(labels) == 2


def test_a_corrected_claims_original_keeps_its_own_denial():
    """Denied, then corrected and paid: both versions have their own label (the original used to get none:
    only the latest version was labelled)."""
    versions = pd.DataFrame({"claim_id": ["A", "A"], "claim_version": [1, 2],
                             "submitted_at": pd.to_datetime(["2025-01-01", "2025-02-10"])})
    outcomes = pd.DataFrame({"claim_id": ["A", "A"], "denied": [True, False], "claim_status": ["denied", "paid"],
                             "adjudicated_at": pd.to_datetime(["2025-02-01", "2025-03-01"]),
                             "updated_at": pd.to_datetime(["2025-02-02", "2025-03-02"])})
    labels = W.outcome_labels(versions, outcomes, pd.Timestamp("2025-06-01"))
    assert list(zip(labels["claim_version"], labels["denied"], strict=True)) == [(1, True), (2, False)]


def test_top_k_against_random_and_the_prior_auth_rule():
    wl = pd.DataFrame({
        "dt": "2025-05-01", "claim_id": [f"C{i}" for i in range(6)], "claim_version": 1,
        "expected_loss": [60.0, 50.0, 40.0, 3.0, 2.0, 1.0],
        "expected_payment": [100.0, 100.0, 100.0, 100.0, 100.0, 100.0],
        "billed_amount": [10.0, 20.0, 30.0, 900.0, 800.0, 5.0],
        "prior_auth_missing": [0, 0, 1, 1, 1, 0],
    })
    labels = pd.DataFrame({"claim_id": [f"C{i}" for i in range(6)], "claim_version": 1,
                           "denied": [True, True, False, False, True, False]})
    row = W.top_k_evaluation(wl, labels, k=2).iloc[0]
    assert row["model_share_denied"] == 1.0 and row["model_denied_dollars"] == 200.0
    assert row["random_share_denied"] == 0.5 and row["random_denied_dollars"] == pytest.approx(100.0)
    # rule: prior auth missing, largest billed first -> C3 (not denied), C4 (denied)
    assert row["rule_flagged"] == 2 and row["rule_share_denied"] == 0.5 and row["rule_denied_dollars"] == 100.0
    assert row["all_denied_dollars"] == 300.0
    summary = W.evaluation_summary(W.top_k_evaluation(wl, labels, k=10))  # K above the day's claims
    assert summary["k_total"] == 6 and summary["model_share_denied"] == 0.5
    assert summary["rule_share_denied"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        W.top_k_evaluation(wl, labels, k=0)


def test_evaluation_figure_plots_both_panels():
    per_day = pd.DataFrame({"dt": ["2025-05-01", "2025-05-02"], "k": 2, "model_share_denied": [1.0, 0.5],
                            "rule_share_denied": [0.5, np.nan], "random_share_denied": [0.5, 0.5],
                            "model_denied_dollars": [200.0, 100.0], "rule_denied_dollars": [100.0, 0.0],
                            "random_denied_dollars": [100.0, 100.0]})
    fig = W.evaluation_figure(per_day, k=2)
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 3
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"


def test_days_whose_outcomes_have_not_arrived_are_left_out():
    wl = pd.concat([listed(day="2025-05-01"), listed(day="2025-05-02")], ignore_index=True).assign(
        prior_auth_missing=0)
    labels = pd.DataFrame({"claim_id": ["C0", "C1", "C2", "C3"], "claim_version": 1, "denied": True})
    # day 2 gets its own claim ids, only one of its six labelled
    wl.loc[wl["dt"] == "2025-05-02", "claim_id"] = [f"D{i}" for i in range(6)]
    labels = pd.concat([labels, pd.DataFrame({"claim_id": ["D0"], "claim_version": [1], "denied": [True]})])
    per_day = W.top_k_evaluation(wl, labels, k=3)
    assert list(per_day["dt"]) == ["2025-05-01"]  # 4 of 6 labelled; day 2 has 1 of 6
    assert len(W.top_k_evaluation(wl, labels, k=3, min_labelled_share=0.0)) == 2
