"""The partial reference files a hospital really has, written for a synthetic world (INTERFACES A).

A hospital knows its payer contracts (names, plan types, timely-filing limits), the prior-authorization lists
that some payers publish, its own chargemaster (list prices it bills, not the payers' fee schedules) and a
code -> category map (the public CPT sections / families). It does not know the payers' denial rates, their
diagnosis edits or which codes a payer silently reviews. So these files carry:

    payers.csv            every payer: payer_id, payer_name, plan_type, filing_limit_days (the contract)
    prior_auth_list.csv   payer_id, procedure_code: only the commercial payers' published lists, expanded
                          to codes (Medicare Advantage and Medicaid lists are missing: published lists
                          are incomplete)
    chargemaster.csv      procedure_code, description, list_price: the code's typical charge times the
                          hospital's markup with per-code noise (seeded), never the generator's fee schedule
    code_categories.csv   procedure_code, category (CPT section or family: public code structure)

and never the base denial rates, the consistency grid, modifier or frequency rules.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rcm_assets.synthetic import hospital_b, world
from rcm_assets.synthetic.generator import SyntheticData, _atomic_write

REFERENCE_FILES = ("payers.csv", "prior_auth_list.csv", "chargemaster.csv", "code_categories.csv")
MARKUP = (1.15, 0.12)  # median and log-sd of the hospital's list price over the typical charge


def _chargemaster(codes: list[str], descriptions: list[str], typical: np.ndarray, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng([seed, 0xC4A7])
    price = np.round(typical * rng.lognormal(np.log(MARKUP[0]), MARKUP[1], len(codes)), 2)
    return pd.DataFrame({"procedure_code": codes, "description": descriptions, "list_price": np.maximum(price, 0.01)})


def default_world_tables(seed: int) -> dict[str, pd.DataFrame]:
    """The default world's reference files (world.py), with the chargemaster's noise drawn from `seed`."""
    payers = pd.DataFrame({
        "payer_id": [p.payer_id for p in world.PAYER_LIST], "payer_name": [p.name for p in world.PAYER_LIST],
        "plan_type": [p.plan_type for p in world.PAYER_LIST],
        "filing_limit_days": [p.filing_limit_days for p in world.PAYER_LIST],
    })
    published = [p.payer_id for p in world.PAYER_LIST if p.plan_type == "commercial"]
    prior_auth = pd.DataFrame(
        [(payer, c.code) for payer in published for c in world.CPT_LIST if world.requires_prior_auth(payer, c.family)],
        columns=["payer_id", "procedure_code"])
    codes = list(world.CPT_CODES)
    charges = _chargemaster(codes, [world.CPT_DESCRIPTION[c] for c in codes],
                            np.array([world.CPT_TYPICAL_CHARGE[c] for c in codes]), seed)
    categories = pd.DataFrame({"procedure_code": codes, "category": [world.CPT_FAMILY[c] for c in codes]})
    return {"payers.csv": payers, "prior_auth_list.csv": prior_auth, "chargemaster.csv": charges,
            "code_categories.csv": categories}


def hospital_b_tables(w: hospital_b.HospitalB, seed: int) -> dict[str, pd.DataFrame]:
    """Hospital B's reference files: its payers, the commercial payers' prior-auth lists, its chargemaster
    and the CPT section of every code."""
    payers = pd.DataFrame({"payer_id": list(w.payer_ids), "payer_name": list(w.payer_names),
                           "plan_type": list(w.plan_types), "filing_limit_days": w.filing_limit})
    p_idx, c_idx = np.nonzero(w.pa_required & w.published_pa_payers[:, None])
    prior_auth = pd.DataFrame({"payer_id": np.array(w.payer_ids, dtype=object)[p_idx],
                               "procedure_code": np.array(w.codes, dtype=object)[c_idx]})
    codes = list(w.codes)
    descriptions = [f"{w.code_section[k].replace('_', ' ')} service {code}" for k, code in enumerate(codes)]
    charges = _chargemaster(codes, descriptions, w.typical_charge, seed)
    categories = pd.DataFrame({"procedure_code": codes, "category": list(w.code_section)})
    return {"payers.csv": payers, "prior_auth_list.csv": prior_auth, "chargemaster.csv": charges,
            "code_categories.csv": categories}


def reference_tables(data: SyntheticData) -> dict[str, pd.DataFrame]:
    """The reference files of the world that generated `data` (file name -> table)."""
    if data.world == hospital_b.WORLD:
        return hospital_b_tables(hospital_b.build_world(data.summary.get("world_seed", hospital_b.DEFAULT_WORLD_SEED)),
                                 data.seed)
    return default_world_tables(data.seed)


def write_reference_files(data: SyntheticData, folder: Path) -> list[Path]:
    """Write the world's reference files (CSV, UTF-8, header row) into `folder`, atomically; returns paths."""
    folder = Path(folder)
    written = []
    for name, table in reference_tables(data).items():
        written.append(_atomic_write(folder / name, lambda tmp, t=table: t.to_csv(tmp, index=False)))
    return written
