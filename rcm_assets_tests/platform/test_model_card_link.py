"""The model asset links its week's model card (issue 15.6): a link to the `model_card.md` artifact of the
newest week's MLflow run, in the style of the plot links, and the card's text as markdown."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import dagster as dg
import pandas as pd
from mlflow import MlflowClient

from rcm_assets.lib import settings
from rcm_assets.platform.catalog import MODEL_CARD, model_card_text, model_run_metadata


def frame_for(run_id: str) -> pd.DataFrame:
    return pd.DataFrame([{"mlflow_run_id": run_id, "model_name": "rcm_denial_model", "model_version": "3",
                          "holdout_roc_auc": 0.7420376130019555}])


def test_the_card_is_linked_and_shown_when_the_run_has_one(tmp_path):
    uri = settings.sqlite_url(tmp_path / "mlflow.db")
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("cards", artifact_location=(tmp_path / "artifacts").as_uri())
    with_card = client.create_run(experiment).info.run_id
    client.log_text(with_card, "# Model card: rcm_denial_model, model week 2025-05-12\n", MODEL_CARD)
    without_card = client.create_run(experiment).info.run_id  # logged before cards existed

    shown = model_run_metadata(uri, experiment, frame_for(with_card), client=client)
    link = urlsplit(shown["model_card"].value)
    assert isinstance(shown["model_card"], dg.UrlMetadataValue) and link.path.endswith("/get-artifact")
    assert parse_qs(link.query) == {"path": [MODEL_CARD], "run_uuid": [with_card]}
    assert shown["roc_plot"].value.startswith(f"{link.scheme}://{link.netloc}/get-artifact?")  # same style
    assert isinstance(shown["model_card_text"], dg.MarkdownMetadataValue)
    assert shown["model_card_text"].value.startswith("# Model card: rcm_denial_model, model week 2025-05-12")

    old = model_run_metadata(uri, experiment, frame_for(without_card), client=client)
    assert model_card_text(client, without_card) is None and "model_card_text" not in old
    assert parse_qs(urlsplit(old["model_card"].value).query)["run_uuid"] == [without_card]


def test_the_model_asset_links_the_newest_weeks_card(pipeline):
    """The real weekly run on synthetic data: the link names the newest week's MLflow run, whose card it
    shows."""
    event = next(e for e in pipeline.results["model"].get_asset_materialization_events()
                 if e.asset_key == dg.AssetKey(["model", "denial_model"]))
    metadata = event.materialization.metadata
    run_id = parse_qs(urlsplit(metadata["model_card"].value).query)["run_uuid"][0]
    client = MlflowClient(tracking_uri=pipeline.resources["mlflow_tracking"].tracking_uri)
    assert client.get_run(run_id).data.tags["dagster_partition"] == pipeline.weeks[-1]
    with open(client.download_artifacts(run_id, MODEL_CARD)) as f:
        card = f.read()
    assert metadata["model_card_text"].value == card
    assert f"model week {pipeline.weeks[-1]}" in card and "## Metrics by payer" in card
