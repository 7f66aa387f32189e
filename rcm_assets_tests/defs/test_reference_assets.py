"""Reference tables as the hospital's inputs (issue 24): a day of a real hospital's claims (numeric payer ids,
a fifth of its procedure codes outside every supplied table) is scored, not blocked, with partial reference
files and with none; the reference assets record each table's rows and content version ("not supplied" when
absent) and gold records which versions computed the day.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from rcm_assets.definitions import defs
from rcm_assets.lib import reference_tables, settings
from rcm_assets.platform.resources import build_resources
from rcm_assets_tests.conftest import failure_text

DAY = "2025-03-04"
GOLD = dg.AssetKey(["gold", "claim_features"])
REFERENCE_KEYS = [dg.AssetKey(["reference", name]) for name in reference_tables.TABLE_NAMES]
# common CPT/HCPCS codes a hospital bills that the generator never draws
OTHER_CODES = ("36415", "99395", "90471", "G0444", "81003", "71045", "97035", "20610", "11721", "96372")
NUMERIC_PAYERS = ("60054", "62308", "00430", "87726", "39026", "61101", "23281", "94265")


def hospital_day(seed: int = 3) -> object:
    """1,000 claims of one day as a real hospital has them: numeric payer ids, 20% of codes outside the tables."""
    from rcm_assets.synthetic import generate

    data = generate(start=date.fromisoformat(DAY), days=1, claims_per_day=1_000, seed=seed)
    claims = data.claims.copy()
    rng = np.random.default_rng(seed)
    payers = sorted(claims["payer_id"].dropna().unique())
    claims["payer_id"] = claims["payer_id"].map(dict(zip(payers, NUMERIC_PAYERS, strict=False)))
    other = rng.random(len(claims)) < 0.2
    claims.loc[other, "cpt_code"] = rng.choice(np.array(OTHER_CODES, dtype=object), int(other.sum()))
    return dataclasses.replace(data, claims=claims)


def write_hospital_source(data_dir: Path) -> pd.DataFrame:
    from rcm_assets.synthetic import write_source

    data = hospital_day()
    write_source(data, settings.sqlite_url(data_dir / "source.db"))
    return data.claims


def materialize_day(selection: dg.AssetSelection, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return dg.materialize([*defs.assets, *defs.asset_checks], selection=selection, instance=instance,
                          resources=build_resources("dev"), partition_key=DAY, raise_on_error=False)


def gold_run(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    upstream = materialize_day(dg.AssetSelection.groups("bronze", "silver"), instance)
    assert upstream.success, failure_text(upstream)
    return materialize_day(dg.AssetSelection.assets(GOLD), instance)


def gold_of(data_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(data_dir / "lake" / "gold" / "claim_features" / f"dt={DAY}" / "part-0.parquet")


def gold_metadata(instance: dg.DagsterInstance) -> dict[str, object]:
    event = instance.get_latest_materialization_event(GOLD)
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_a_real_hospitals_day_without_reference_files_is_scored_not_blocked(isolated_env: Path):
    claims = write_hospital_source(isolated_env)
    assert not settings.reference_dir().exists()
    instance = dg.DagsterInstance.ephemeral()
    result = gold_run(instance)
    assert result.success, failure_text(result)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key == GOLD}
    assert all(e.passed for e in checks.values()), {n: e.description for n, e in checks.items() if not e.passed}
    assert checks["feature_null_rates_within_bounds"].passed and checks["train_serve_parity"].passed
    gold = gold_of(isolated_env)
    assert len(gold) >= 0.9 * claims["claim_id"].nunique()
    assert set(gold["payer_id"]) <= set(NUMERIC_PAYERS)  # never "unknown"
    # nothing guessed: no contract, no list price, no history yet
    assert gold["filing_limit_days"].isna().all() and gold["charge_ratio"].isna().all()
    assert gold["prior_auth_required"].eq(0).all()
    assert gold["procedure_section"].ne("unknown").mean() > 0.95
    metadata = gold_metadata(instance)
    assert {metadata[f"reference_{name}"] for name in reference_tables.TABLE_NAMES} == {"not supplied"}


def write_partial_reference(folder: Path) -> None:
    """What a hospital really has: two payers with contracts, one payer's prior-auth list, a chargemaster
    without the codes it bills from other departments; no code categories."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "payers.csv").write_text("payer_id,payer_name,plan_type,filing_limit_days,notes\n"
                                       "60054,Aetna,commercial,180,x\n62308,Cigna,commercial,90,\n")
    (folder / "prior_auth_list.csv").write_text("payer_id,procedure_code,effective_from\n"
                                                "60054,70551,2024-01-01\n60054,27447,\n")
    (folder / "chargemaster.csv").write_text(
        "procedure_code,description,list_price\n99213,Office visit,150\n99214,Office visit,220\n"
        "80053,Metabolic panel,45\n85025,CBC,30\n70551,MRI brain,1800\n93000,ECG,80\n")


def test_partial_reference_files_are_used_where_they_speak_and_versioned(isolated_env: Path):
    write_hospital_source(isolated_env)
    write_partial_reference(settings.reference_dir())
    instance = dg.DagsterInstance.ephemeral()
    refs = dg.materialize([*defs.assets], selection=dg.AssetSelection.assets(*REFERENCE_KEYS), instance=instance,
                          resources=build_resources("dev"), raise_on_error=False)
    assert refs.success, failure_text(refs)
    recorded = {key.path[-1]: {k: v.value for k, v in instance.get_latest_materialization_event(key)
                               .asset_materialization.metadata.items()} for key in REFERENCE_KEYS}
    assert recorded["payers"]["rows"] == 2 and recorded["payers"]["supplied"] is True
    assert recorded["code_categories"] == {"supplied": False, "rows": 0, "content_version": "not supplied",
                                           "file": "code_categories.csv"}
    result = gold_run(instance)
    assert result.success, failure_text(result)
    assert all(e.passed for e in result.get_asset_check_evaluations() if e.asset_key == GOLD)
    gold = gold_of(isolated_env)
    contracted = gold["payer_id"].isin(["60054", "62308"]).to_numpy()
    assert gold.loc[contracted, "filing_limit_days"].notna().all()
    assert gold.loc[~contracted, "filing_limit_days"].isna().all()
    assert 0 < gold["charge_ratio"].notna().mean() < 1
    metadata = gold_metadata(instance)
    for name in reference_tables.TABLE_NAMES:
        assert metadata[f"reference_{name}"] == recorded[name]["content_version"], name
    assert gold["feature_version"].nunique() == 1 and metadata["feature_version"] == gold["feature_version"].iloc[0]


def test_a_bad_reference_file_fails_its_asset_naming_file_line_and_column(isolated_env: Path):
    folder = settings.reference_dir()
    folder.mkdir(parents=True)
    (folder / "payers.csv").write_text("payer_id,filing_limit_days\n60054,180\n62308,ninety\n")
    result = dg.materialize([*defs.assets], selection=dg.AssetSelection.assets(REFERENCE_KEYS[0]),
                            instance=dg.DagsterInstance.ephemeral(), resources=build_resources("dev"),
                            raise_on_error=False)
    assert not result.success
    text = failure_text(result)
    assert "payers.csv: line 3, column filing_limit_days" in text and "'ninety' is not a number" in text


@pytest.mark.parametrize(("content", "named"), [
    ("procedure_code,description\n99213,Office visit\n", "line 1, column list_price: required column missing"),
    ("procedure_code,list_price\n99213,150\n99213,160\n", "line 3, column procedure_code"),
    ("procedure_code,list_price\n99213,0\n", "line 2, column list_price"),
])
def test_chargemaster_contract_errors_name_the_line_and_column(tmp_path: Path, content: str, named: str):
    (tmp_path / "chargemaster.csv").write_text(content)
    with pytest.raises(reference_tables.ReferenceFileError, match=named.replace("(", r"\(")):
        reference_tables.read_table(tmp_path, "chargemaster")
