"""The model lifecycle run week by week on the generator's drift scenario, through Dagster and MLflow.

Run by `test_lifecycle_assets.py` in a fresh process (`python -m rcm_assets_tests.defs.drift_lifecycle_world
OUT.json`), because partitions and mappings are fixed when the code location loads and this world uses
short windows (the test sets RCM_LABEL_HORIZON_DAYS and friends). Each week: train and gate the week's
model, review the champion on matured labels, then score the week's days (champion and shadows), as the
nightly and weekly schedules would. The drift makes a champion fail on matured labels and the review
retires it; the next day is scored by the version the review chose, and the seconds from that decision to
the scored day are the rollback time. Should no review retire a champion on its own, the first review
where an earlier champion (or the fallback) beats the champion on matured labels runs again with a floor
between the two (the last week's review, should none). Without the generator's answer key this small
world's models are noisy (weekly holdout AUC 0.61-0.69 on ~650 claims): its drifted champion fell from
0.69 to 0.58 on matured labels after the onset, not below this world's floor (0.58).

The daily layers are the pipeline's: the hospital's reference files (`write_reference_files`, as the demo
writes them into RCM_REFERENCE_DIR's default), the evidence of the learned statistics and the authorization
denials of the learned payer rules, then gold.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path

START = date(2025, 1, 1)
DAYS = 100
CLAIMS_PER_DAY = 200
SEED = 23
DRIFT = (date(2025, 2, 17), "MEDICARE", "em")  # the busiest payer x family: ~17 claims a day
REVIEW = {"min_labels": 300, "min_denied": 30}


def main(out: Path) -> None:
    import dagster as dg
    import pandas as pd

    from rcm_assets.defs import (
        bronze,
        gold,
        learned,
        lifecycle,
        model,
        partitions,
        payer_rules,
        predictions,
        silver,
        training_set,
    )
    from rcm_assets.lib import champion as champion_lib
    from rcm_assets.lib import settings
    from rcm_assets.platform.resources import build_resources
    from rcm_assets.synthetic import generate, write_reference_files, write_source
    from rcm_assets.synthetic.generator import Drift
    from rcm_assets_tests.conftest import materialize_range

    data_dir = Path(os.environ["RCM_DATA_DIR"])
    data = generate(START, DAYS, CLAIMS_PER_DAY, SEED, drift=Drift(*DRIFT))
    write_source(data, settings.sqlite_url(data_dir / "source.db"))
    write_reference_files(data, data_dir / "reference")  # the partial files the world's hospital has
    resources = build_resources("dev")
    instance = dg.DagsterInstance.ephemeral()
    last = START + timedelta(days=DAYS - 1)
    lake = data_dir / "lake"

    def run(assets, first: str, end: str, **config):
        ops = {f"{'__'.join(a.key.path)}": {"config": c} for a, c in config.get("ops", {}).items()}
        result = materialize_range(assets, first, end, instance, resources,
                                   run_config={"ops": ops} if ops else None)
        return result

    ingest = run([bronze.claims, bronze.remittances, silver.claims, silver.remittances, silver.claim_versions,
                  learned.adjudication_evidence, payer_rules.authorization_denials, gold.claim_features], START.isoformat(), last.isoformat())
    assert ingest.success
    weeks = [k for k in partitions.weekly_partitions.get_partition_keys() if k <= last.isoformat()]
    log = {"weeks": weeks, "model": {}, "review": {}, "scoring": {}, "actions": {}, "rollback": None}

    def forced_floor(week: str) -> float | None:
        """Midway between the champion's matured AUC and the best earlier champion's or fallback's above it."""
        probe = pd.read_parquet(lake / "model" / "lifecycle_review" / f"week={week}")
        results = json.loads(probe["results"].iloc[0]) if probe["results"].iloc[0] else []
        better = sorted(r["roc_auc"] for r in results[1:] if r["role"] in ("previous_champion", "fallback")
                        and r["roc_auc"] > results[0]["roc_auc"])
        return (results[0]["roc_auc"] + better[-1]) / 2 if better else None

    for week in weeks[:-1]:
        trained = run([training_set.training_set, model.denial_model], week, week)
        log["model"][week] = trained.success
        reviewed = run([lifecycle.lifecycle_review], week, week, ops={lifecycle.lifecycle_review: REVIEW})
        decided_at = time.monotonic()
        log["review"][week] = reviewed.success
        action = pd.read_parquet(lake / "model" / "lifecycle_review" / f"week={week}")["action"].iloc[0]
        forced = None
        if action == "keep" and log["rollback"] is None and (floor := forced_floor(week)):
            # the first week an earlier champion (or the fallback) beats the champion on matured labels: a
            # floor between them retires it, before the week's days are scored
            run([lifecycle.lifecycle_review], week, week,
                ops={lifecycle.lifecycle_review: {**REVIEW, "auc_floor": floor, "rollback_confidence": 0.5}})
            decided_at = time.monotonic()
            action = pd.read_parquet(lake / "model" / "lifecycle_review" / f"week={week}")["action"].iloc[0]
            forced = floor
        log["actions"][week] = action
        end = min(date.fromisoformat(week) + timedelta(days=6), last).isoformat()
        first_day = run([predictions.claim_denial_scores, predictions.shadow_scores], week, week)
        seconds = time.monotonic() - decided_at
        rest = (run([predictions.claim_denial_scores, predictions.shadow_scores],
                    (date.fromisoformat(week) + timedelta(days=1)).isoformat(), end) if end > week else first_day)
        log["scoring"][week] = first_day.success and rest.success
        if action in ("rollback", "fallback") and log["rollback"] is None:
            log["rollback"] = ({"week": week, "mode": "natural", "seconds": seconds} if forced is None else
                               {"week": week, "mode": "forced", "floor": forced, "seconds": seconds})

    # the last week: its review first (a gate promotion of the same week would replace the champion anyway)
    final = weeks[-1]
    run([lifecycle.lifecycle_review], final, final, ops={lifecycle.lifecycle_review: REVIEW})
    if log["rollback"] is None:  # a floor between the champion and a better earlier model (or the fallback)
        probe = pd.read_parquet(lake / "model" / "lifecycle_review" / f"week={final}")
        floor = forced_floor(final) or json.loads(probe["results"].iloc[0])[0]["roc_auc"] + 0.01
        run([lifecycle.lifecycle_review], final, final,
            ops={lifecycle.lifecycle_review: {**REVIEW, "auc_floor": floor, "rollback_confidence": 0.5}})
        decided_at = time.monotonic()
        scored = run([predictions.claim_denial_scores, predictions.shadow_scores], final, final)
        log["rollback"] = {"week": final, "mode": "forced", "floor": floor, "seconds": time.monotonic() - decided_at,
                           "scoring_success": scored.success}
    log["model"][final] = run([training_set.training_set, model.denial_model], final, final).success
    log["events"] = champion_lib.history(resources["mlflow_tracking"].client(),
                                         resources["mlflow_tracking"].model_name).to_dict("records")
    log["truth_drift_claims"] = int(data.ground_truth["drift_active"].sum())
    out.write_text(json.dumps(log, default=str))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
