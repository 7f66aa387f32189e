"""The Dagster UI, in a real headless Chromium (Debian's, driven by Playwright), tells the story (issue 15.3):
the gold asset page shows the registry's column descriptions and the owners, its checks tab the blocking
checks' descriptions, and the model's page the MLflow run link and its plots.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rcm_assets_tests.ui.conftest import CHROMIUM

pytestmark = pytest.mark.slow

PAGE_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: apt-get install -y chromium chromium-driver (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield launched
        finally:
            launched.close()


def open_page(browser, url: str, wait_for_text: str, screenshot=None):
    page = browser.new_page(viewport={"width": 1600, "height": 2400})
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    # Dagster's first-visit "join the community" dialog opens a moment after the page, whenever it likes
    # (it blocked a click once the page had been checked for it): Playwright dismisses it whenever it
    # shows up before an action
    page.add_locator_handler(page.get_by_role("button", name="Skip"), lambda skip: skip.click())
    page.goto(url)
    page.get_by_text(wait_for_text, exact=False).first.wait_for()
    if screenshot is not None:
        page.screenshot(path=str(screenshot), full_page=True)
    return page


def test_gold_page_shows_column_descriptions_and_owners(live_dagster, browser):
    page = open_page(browser, f"{live_dagster.base}/assets/gold/claim_features", "charge_ratio",
                     live_dagster.root / "gold.png")
    text = page.inner_text("body")
    assert "Billed amount / (list price of the code (chargemaster.csv), else its learned typical charge" in text  # registry
    assert "Hash of the feature code, reference data and configuration" in text
    assert "revenue-cycle-data" in text and "rcm-data-steward@revenue-cycle.example" in text  # owners
    assert "phi" in text and "layer" in text  # tags
    page.close()


def test_training_set_page_shows_its_label_columns_and_the_week(live_dagster, browser):
    """model/training_set (the rows a week's model was fitted on): its declared columns and its materialization."""
    page = open_page(browser, f"{live_dagster.base}/assets/model/training_set", "first_carc_category",
                     live_dagster.root / "training_set.png")
    text = page.inner_text("body")
    assert "Reason group of that first adjudication (the reason model's label)" in text
    assert "Label: 1 when the claim's first adjudication known before the model week denied it" in text
    assert "revenue-cycle-data" in text
    page.close()


def test_gold_checks_tab_shows_check_descriptions(live_dagster, browser):
    page = open_page(browser, f"{live_dagster.base}/assets/gold/claim_features?view=checks",
                     "train_serve_parity", live_dagster.root / "gold_checks.png")
    page.get_by_text("decision_time_columns_only").first.click()  # the check's own panel
    page.get_by_text("Leakage guard").first.wait_for()
    assert "Leakage guard: the table holds keys, decision-time features and feature_version only" in page.inner_text(
        "body")
    page.close()


def test_model_page_links_the_mlflow_run_and_its_plots(live_dagster, browser):
    page = open_page(browser, f"{live_dagster.base}/assets/model/denial_model", "mlflow_run",
                     live_dagster.root / "model.png")
    run_links = [a.get_attribute("href") for a in page.locator("a[href*='/#/experiments/']").all()]
    assert run_links and run_links[0].startswith("http://127.0.0.1:5000/#/experiments/"), run_links
    assert "/runs/" in run_links[0]
    text = page.inner_text("body")
    assert "registered_version" in text and "rcm_denial_model v" in text
    assert "holdout_roc_auc" in text
    plot_links = [a.get_attribute("href") for a in page.locator("a[href*='get-artifact']").all()]
    assert any("plots/roc.png" in (href or "") for href in plot_links), plot_links
    page.close()
