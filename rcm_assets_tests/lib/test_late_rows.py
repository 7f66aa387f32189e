"""Late commits and in-place updates against nightly extraction: 0 missed, 0 duplicated (property style).

Each seed builds a small source from the heavy realistic generator whose rows are committed at random
times — most seconds after their `updated_at`, some hours later (replica lag, long transactions: after the 02:00 run that extracted their
day) — plus in-place updates of earlier rows. Commits and extraction runs interleave in time order: a
nightly run at 02:00 and random manual re-runs. Every run reads its days from a real SQLite source with
`SourceReader.read_changed` and stores them with `dedupe.append_new_rows`, exactly what bronze and its
append-only IO manager do. Controls show the tests have teeth: without the lookback late rows are
missed; with a replacing (not appending) store, rows the source overwrote are lost.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from rcm_assets.lib import settings
from rcm_assets.lib.columns import source_column_names
from rcm_assets.lib.dedupe import append_new_rows, row_hashes
from rcm_assets.lib.source import SourceReader
from rcm_assets.synthetic import generate
from rcm_assets.synthetic.generator import source_metadata, storage_columns

START, DAYS, PER_DAY = date(2025, 3, 1), 5, 40
COLUMNS = source_column_names("claims")
STATE = ["claim_id", "claim_version", "updated_at"]


def commits(seed: int) -> pd.DataFrame:
    """Claim states in commit order, with `committed_at` and `replaces` (the state an update overwrites)."""
    rng = np.random.default_rng(seed)
    # the heavy realistic world: billing-system claim ids, HCPCS, ZIP+4, and its own late commits
    data = generate(START, DAYS, PER_DAY, seed=seed, realism="heavy")
    claims = data.claims.assign(committed_at=data.committed_at["claims"].to_numpy())
    end = pd.Timestamp(START + timedelta(days=DAYS))
    rows = claims[claims["updated_at"] < end].drop_duplicates(["claim_id", "claim_version"]).reset_index(drop=True)
    late = rng.random(len(rows)) < 0.15  # more late commits on top of the generator's own
    lag_hours = np.where(late, rng.uniform(2, 40, len(rows)), 0.0)
    rows["committed_at"] = np.maximum(rows["committed_at"], rows["updated_at"] + pd.to_timedelta(lag_hours, unit="h"))
    rows["replaces"] = -1
    picked = rows.sample(frac=0.08, random_state=seed)
    updates = picked.assign(
        updated_at=(picked["committed_at"] + pd.to_timedelta(rng.uniform(0.5, 60, len(picked)), unit="h")).dt.floor("us"),
        eligibility_verified=~picked["eligibility_verified"].astype(bool),
        replaces=picked.index.to_numpy(),
    )
    updates["committed_at"] = updates["updated_at"] + pd.Timedelta(seconds=5)
    return pd.concat([rows, updates], ignore_index=True).sort_values("committed_at", kind="stable")


def run_times(seed: int) -> list[pd.Timestamp]:
    """A nightly run at 02:00 for every day until all lookback windows have passed, plus manual re-runs."""
    rng = np.random.default_rng(seed + 1000)
    nightly = [pd.Timestamp(START + timedelta(days=d)) + pd.Timedelta(hours=2) for d in range(1, DAYS + 5)]
    manual = [pd.Timestamp(START) + pd.Timedelta(hours=float(h)) for h in rng.uniform(0, 24 * (DAYS + 3), 4)]
    return sorted(nightly + manual)


class Source:
    """A SQLite source that applies commits in time order, overwriting rows in place or keeping history."""

    def __init__(self, path: Path, in_place: bool):
        self.url = settings.sqlite_url(path)
        engine = sa.create_engine(self.url)
        source_metadata().create_all(engine)
        engine.dispose()
        self.path, self.in_place = path, in_place

    def commit(self, rows: pd.DataFrame) -> None:
        stored = storage_columns(rows, "claims")
        with closing(sqlite3.connect(self.path)) as conn, conn:
            for i, (_, row) in enumerate(rows.iterrows()):
                if self.in_place and row["replaces"] >= 0:
                    conn.execute("DELETE FROM claims WHERE claim_id = ? AND claim_version = ?",
                                 (row["claim_id"], int(row["claim_version"])))
                values = [stored[c][i] for c in COLUMNS]
                values = [v.item() if isinstance(v, np.generic) else v for v in values]
                conn.execute(f"INSERT INTO claims ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                             values)


def simulate(seed: int, tmp_path: Path, lookback: int, in_place: bool, append: bool = True):
    """Interleave commits and extraction runs; returns (lake by day, every state the source ever held,
    the states visible to some run whose days covered them)."""
    states = commits(seed)
    source = Source(tmp_path / f"source-{seed}-{lookback}-{in_place}-{append}.db", in_place)
    reader = SourceReader(source.url)
    lake: dict[str, pd.DataFrame] = defaultdict(lambda: states.iloc[0:0][COLUMNS])
    seen: set[tuple] = set()
    applied = 0
    for t in run_times(seed):
        due = states.iloc[applied:][states["committed_at"].iloc[applied:] <= t]
        if len(due):
            source.commit(due)
            applied += len(due)
        yesterday = (t - pd.Timedelta(days=1)).date()
        first = max(START, yesterday - timedelta(days=lookback))
        for offset in range((yesterday - first).days + 1):
            day = first + timedelta(days=offset)
            rows = reader.read_changed("claims", day, day + timedelta(days=1))
            seen |= set(rows[STATE].itertuples(index=False, name=None))
            key = day.isoformat()
            lake[key] = append_new_rows(lake[key], rows, COLUMNS)[0] if append else rows
    return lake, states, seen


def stored_states(lake: dict[str, pd.DataFrame]) -> pd.DataFrame:
    frames = [frame.assign(dt=day) for day, frame in lake.items()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*COLUMNS, "dt"])


@pytest.mark.parametrize("seed", range(20))
def test_history_source_late_commits_are_picked_up_once(seed, tmp_path):
    lake, states, _ = simulate(seed, tmp_path, lookback=2, in_place=False)
    stored = stored_states(lake)
    assert not stored.duplicated(STATE).any(), "a row stored twice"
    assert (stored["dt"] == stored["updated_at"].dt.strftime("%Y-%m-%d")).all(), "a row in the wrong day"
    expected = set(states[STATE].itertuples(index=False, name=None))
    got = set(stored[STATE].itertuples(index=False, name=None))
    assert got == expected, f"missed {len(expected - got)} rows"
    assert (states["committed_at"] - states["updated_at"] > pd.Timedelta(hours=2)).any(), "the seed has late commits"


@pytest.mark.parametrize("seed", range(20))
def test_in_place_source_keeps_every_state_it_ever_extracted(seed, tmp_path):
    lake, states, seen = simulate(seed, tmp_path, lookback=2, in_place=True)
    stored = stored_states(lake)
    assert not stored.duplicated(STATE).any()
    got = set(stored[STATE].itertuples(index=False, name=None))
    assert got == seen, "a state extracted once was lost later"
    final = states[~states.index.isin(states.loc[states["replaces"] >= 0, "replaces"])]
    assert set(final[STATE].itertuples(index=False, name=None)) <= got, "a final state was missed"


def test_without_the_lookback_late_commits_are_missed(tmp_path):
    """Control (today's nightly run: yesterday only): the same interleavings lose rows."""
    missed = 0
    for seed in range(5):
        lake, states, _ = simulate(seed, tmp_path, lookback=0, in_place=False)
        got = set(stored_states(lake)[STATE].itertuples(index=False, name=None))
        missed += len(set(states[STATE].itertuples(index=False, name=None)) - got)
    assert missed > 0


def test_a_replacing_store_loses_rows_the_source_overwrote(tmp_path):
    """Control (today's bronze: a re-run replaces the day): overwritten states extracted before are lost."""
    lost = 0
    for seed in range(5):
        lake, _, seen = simulate(seed, tmp_path, lookback=2, in_place=True, append=False)
        lost += len(seen - set(stored_states(lake)[STATE].itertuples(index=False, name=None)))
    assert lost > 0


def test_row_hashes_tell_apart_an_update_from_its_original(tmp_path):
    states = commits(0)
    updates = states[states["replaces"] >= 0]
    originals = states.loc[updates["replaces"]]
    assert (row_hashes(updates, COLUMNS) != row_hashes(originals, COLUMNS)).all()
