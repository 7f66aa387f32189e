"""The promotion gate and the champion history, against a real (temporary) MLflow SQLite registry.

The registry alias says who serves *now*; `champion_as_of` says who served on a given data day. These
tests pin the rules the scoring asset relies on: events are ordered by effective day, then by when they
happened; a rollback made today never rewrites the past; a backfilled old week never moves the alias.
"""

from __future__ import annotations

import re
import uuid
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from rcm_assets.lib import champion
from rcm_assets.lib.settings import sqlite_url

W1, W2, W3 = date(2025, 4, 28), date(2025, 5, 5), date(2025, 5, 12)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[MlflowClient, str]:
    """A real MLflow store and one tiny saved sklearn model that every registered version points at."""
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("champion_registry")
    client = MlflowClient(tracking_uri=sqlite_url(folder / "mlflow.db"))
    model_dir = folder / "tiny_model"
    tiny = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1]))
    mlflow.sklearn.save_model(tiny, str(model_dir), pip_requirements=["scikit-learn"],
                              serialization_format="cloudpickle")
    return client, model_dir.as_uri()


def new_model(registry: tuple[MlflowClient, str], versions: int) -> tuple[MlflowClient, str]:
    """A fresh registered model (unique name) with `versions` versions 1..n."""
    client, source = registry
    name = f"denial_{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    for _ in range(versions):
        client.create_model_version(name, source=source)
    return client, name


def sentences(text: str) -> list[str]:
    """Sentences of `text` (a full stop followed by a space or the end; decimals do not split)."""
    return [s for s in re.split(r"(?<=\.)\s+(?=[A-Z])", text.strip()) if s]


# --------------------------------------------------------------------------------------------------
# promote / history / champion_as_of
# --------------------------------------------------------------------------------------------------


def test_no_promotion_means_no_champion(registry):
    client, name = new_model(registry, 2)
    assert champion.history(client, name).empty
    assert champion.champion_as_of(client, name, date(2030, 1, 1)) is None
    assert champion.current_champion(client, name) is None


def test_history_of_an_unknown_model_is_empty_not_an_error(registry):
    client, _ = registry
    assert champion.history(client, "no_such_model").empty
    assert champion.champion_as_of(client, "no_such_model", W1) is None


def test_weekly_promotions_give_the_champion_of_each_day(registry):
    client, name = new_model(registry, 3)
    for version, week in (("1", W1), ("2", W2), ("3", W3)):
        champion.promote(client, name, version, week, reason=f"gate week {week}", by=f"run-{version}")

    hist = champion.history(client, name)
    assert list(hist.columns) == champion.EVENT_COLUMNS
    assert list(hist.columns)[:5] == ["version", "effective", "reason", "by", "at"]
    assert hist["version"].tolist() == ["1", "2", "3"]  # oldest first
    assert hist["effective"].tolist() == [W1.isoformat(), W2.isoformat(), W3.isoformat()]
    assert hist["by"].tolist() == ["run-1", "run-2", "run-3"]
    assert hist["at"].is_monotonic_increasing

    assert champion.champion_as_of(client, name, date(2025, 4, 27)) is None  # before the first week
    assert champion.champion_as_of(client, name, W1) == "1"
    assert champion.champion_as_of(client, name, date(2025, 5, 4)) == "1"  # last day of week 1
    assert champion.champion_as_of(client, name, W2) == "2"
    assert champion.champion_as_of(client, name, date(2025, 5, 11)) == "2"
    assert champion.champion_as_of(client, name, date(2026, 1, 1)) == "3"
    assert champion.current_champion(client, name) == "3"


def test_events_are_ordered_by_effective_day_then_by_time(registry):
    client, name = new_model(registry, 3)
    champion.promote(client, name, "2", W2, reason="gate", by="run-a")
    champion.promote(client, name, "1", W1, reason="backfill", by="run-b")  # newer event, older day
    champion.promote(client, name, "3", W2, reason="retrain", by="run-c")  # same day, later in time

    # history lists events in the order they happened ...
    assert champion.history(client, name)["version"].tolist() == ["2", "1", "3"]
    # ... but the champion of a day is the latest event among those effective on or before it
    assert champion.champion_as_of(client, name, W1) == "1"
    assert champion.champion_as_of(client, name, date(2025, 5, 4)) == "1"
    assert champion.champion_as_of(client, name, W2) == "3"  # same effective day: the later event wins
    assert champion.current_champion(client, name) == "3"


def test_backfilling_an_older_week_does_not_move_the_alias(registry):
    client, name = new_model(registry, 2)
    champion.promote(client, name, "2", W2, reason="gate week 2", by="run-2")
    assert champion.current_champion(client, name) == "2"

    champion.promote(client, name, "1", W1, reason="gate week 1 (backfill)", by="run-1")

    assert champion.current_champion(client, name) == "2"
    assert champion.champion_as_of(client, name, W1) == "1"  # but the old week is recorded
    assert champion.champion_as_of(client, name, W2) == "2"
    assert len(champion.history(client, name)) == 2


def test_alias_follows_the_newest_effective_event(registry):
    client, name = new_model(registry, 3)
    champion.promote(client, name, "1", W1, reason="gate", by="r1")
    assert champion.current_champion(client, name) == "1"
    champion.promote(client, name, "3", W3, reason="gate", by="r3")
    assert champion.current_champion(client, name) == "3"
    champion.promote(client, name, "2", W2, reason="gate (late)", by="r2")
    assert champion.current_champion(client, name) == "3"
    assert str(client.get_model_version_by_alias(name, champion.ALIAS).version) == "3"


def test_rollback_today_does_not_change_the_champion_of_past_days(registry):
    client, name = new_model(registry, 3)
    for version, week in (("1", W1), ("2", W2), ("3", W3)):
        champion.promote(client, name, version, week, reason="gate", by=f"run-{version}")
    before = {d: champion.champion_as_of(client, name, d)
              for d in (W1, date(2025, 5, 6), W3, date(2025, 5, 31))}

    today = date(2025, 6, 2)
    champion.rollback(client, name, "1", by="alice", today=today)

    assert champion.current_champion(client, name) == "1"
    assert champion.champion_as_of(client, name, today) == "1"
    assert champion.champion_as_of(client, name, date(2025, 7, 1)) == "1"
    assert {d: champion.champion_as_of(client, name, d) for d in before} == before  # the past is unchanged
    last = champion.history(client, name).iloc[-1]
    assert (last["version"], last["effective"], last["reason"], last["by"]) == (
        "1", today.isoformat(), "rollback", "alice")


def test_rollback_defaults_to_today_utc(registry):
    client, name = new_model(registry, 2)
    champion.promote(client, name, "2", W2, reason="gate", by="r2")
    champion.rollback(client, name, "1", by="bob")
    event = champion.history(client, name).iloc[-1]
    assert event["version"] == "1" and event["reason"] == "rollback"
    assert event["effective"] >= W2.isoformat()
    assert champion.current_champion(client, name) == "1"


def test_rollback_to_an_unknown_version_raises_and_changes_nothing(registry):
    client, name = new_model(registry, 2)
    champion.promote(client, name, "2", W2, reason="gate", by="r2")
    with pytest.raises(MlflowException, match="99"):
        champion.rollback(client, name, "99", by="alice", today=date(2025, 6, 2))
    assert champion.current_champion(client, name) == "2"
    assert len(champion.history(client, name)) == 1


def test_history_is_kept_as_one_tag_per_event(registry):
    """Events are never overwritten: two promotions of the same version are two events."""
    client, name = new_model(registry, 1)
    champion.promote(client, name, "1", W1, reason="gate", by="r1")
    champion.rollback(client, name, "1", by="alice", today=date(2025, 6, 2))
    tags = client.get_model_version(name, "1").tags
    assert len([k for k in tags if k.startswith(champion.EVENT_PREFIX)]) == 2
    assert champion.history(client, name)["reason"].tolist() == ["gate", "rollback"]


# --------------------------------------------------------------------------------------------------
# gate
# --------------------------------------------------------------------------------------------------


def test_gate_passes_without_a_champion_when_above_the_floor():
    d = champion.gate(0.78, floor=0.70, champion_auc=None, margin=0.01)
    assert (d.promote, d.severity) == (True, "pass")
    assert len(sentences(d.sentence)) == 1
    assert d.sentence.startswith("Promoted")
    assert "ROC AUC 0.7800" in d.sentence and "floor 0.7000" in d.sentence


def test_gate_passes_within_the_margin_of_the_champion():
    d = champion.gate(0.7286, floor=0.70, champion_auc=0.7343, margin=0.01, champion_version="1")
    assert (d.promote, d.severity) == (True, "pass")
    assert len(sentences(d.sentence)) == 1
    for part in ("Promoted", "0.7286", "floor 0.7000", "v1", "0.7343", "0.0100"):
        assert part in d.sentence


def test_gate_warns_and_keeps_the_champion_when_worse_by_more_than_the_margin():
    d = champion.gate(0.72, floor=0.70, champion_auc=0.75, margin=0.01, champion_version="4")
    assert (d.promote, d.severity) == (False, "warn")
    assert len(sentences(d.sentence)) == 1
    for part in ("Not promoted", "ROC AUC 0.7200", "v4", "0.7500", "margin 0.0100", "v4 stays champion"):
        assert part in d.sentence


def test_gate_errors_below_the_floor_even_when_better_than_the_champion():
    d = champion.gate(0.65, floor=0.70, champion_auc=0.60, margin=0.01, champion_version="2")
    assert (d.promote, d.severity) == (False, "error")
    assert len(sentences(d.sentence)) == 1
    for part in ("Not promoted", "ROC AUC 0.6500", "below the floor 0.7000", "v2 stays champion"):
        assert part in d.sentence
    first = champion.gate(0.65, floor=0.70, champion_auc=None, margin=0.01)
    assert not first.promote and "no version is champion yet" in first.sentence


def test_gate_boundaries():
    # exactly at the floor, and exactly `margin` worse than the champion, are not failures
    assert champion.gate(0.70, floor=0.70, champion_auc=None, margin=0.01).promote
    assert champion.gate(0.74, floor=0.70, champion_auc=0.75, margin=0.01, champion_version="1").promote
    assert not champion.gate(0.7399, floor=0.70, champion_auc=0.75, margin=0.01, champion_version="1").promote
    # a negative margin demands that the candidate beat the champion by that much
    d = champion.gate(0.80, floor=0.70, champion_auc=0.75, margin=-0.1, champion_version="1")
    assert (d.promote, d.severity) == (False, "warn")


def test_gate_fails_closed_on_an_undefined_auc():
    """A holdout with a single class gives AUC NaN: that must never promote."""
    d = champion.gate(float("nan"), floor=0.70, champion_auc=None, margin=0.01)
    assert (d.promote, d.severity) == (False, "error")
    assert len(sentences(d.sentence)) == 1
    d = champion.gate(float("nan"), floor=0.70, champion_auc=0.75, margin=0.01, champion_version="1")
    assert not d.promote and d.severity == "error"


def test_registry_fixture_model_is_loadable(registry):
    """Sanity: the versions are real sklearn models, so `rollback` targets something servable."""
    import mlflow.sklearn

    client, name = new_model(registry, 1)
    source = client.get_model_version(name, "1").source
    model = mlflow.sklearn.load_model(source)
    assert model.predict_proba(np.array([[3.0]]))[0, 1] > 0.5
    assert Path(source.removeprefix("file://")).is_dir()


def test_gate_says_when_it_had_too_few_comparable_claims_for_the_champion():
    """Too few holdout claims unseen by the champion: the gate compares with the floor only and its one
    sentence says so and why (before, it silently read as "no comparable champion")."""
    needed = champion.min_comparable_denials(0.70, 19)
    assert needed == 36  # the review's power minimum (lib.lifecycle.min_denials)
    why = f"only 400 holdout claims (20 denied) are unseen by it, fewer than the {needed} denials a comparison needs (power)"
    d = champion.gate(0.78, floor=0.70, champion_auc=None, margin=0.01, champion_version="3", no_comparison=why)
    assert d.promote and d.severity == "pass"
    assert "compared with the floor only, not with champion v3: only 400 holdout claims (20 denied)" in d.sentence
    assert "fewer than the 36 denials a comparison needs" in d.sentence
    assert d.sentence.count(". ") == 0 and d.sentence.endswith(".")
