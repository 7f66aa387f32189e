"""Loading what the service serves: the `serving/bundle` of the day, resolved again through the batch's
own functions (`defs/serving.resolve_serving`), the champion serving the day or the fallback, and the reason
champion; then, while it runs, noticing a promotion, a rollback or a new bundle and swapping in a new state
without a restart.

A state is immutable once built; the service swaps the whole state at once, so a request is scored by one
consistent set of versions. Every dependency (lake, MLflow) is touched here, never on a request, and each
load runs under a timeout: a load that hangs or fails leaves the previous state serving.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from rcm_assets.defs.gold import SILVER_CLAIMS, member_history
from rcm_assets.defs.predictions import FallbackServing, ServingModel
from rcm_assets.defs.serving import (
    BUNDLE_KEY,
    Resolved,
    bundle_differences,
    resolve_serving,
    serving_versions,
)
from rcm_assets.defs.worklist import Explainers
from rcm_assets.lib import features as feature_lib
from rcm_assets.lib import transforms

log = logging.getLogger("rcm.serve")


class NotReady(RuntimeError):
    """The service cannot score: no bundle, a bundle the batch's inputs disagree with, or no model."""


@dataclass(frozen=True)
class ServeConfig:
    env: str = "dev"
    token: str | None = None
    day: str | None = None  # a fixed serving day (replays, tests); None: today (UTC)
    reload_seconds: float = 30.0
    load_timeout_seconds: float = 120.0
    request_timeout_seconds: float = 10.0
    max_body_bytes: int = 4_000_000
    bundle_lookback_days: int = 7  # how far back an older bundle may serve when today's is missing
    spool_dir: str | None = None

    def serving_day(self) -> str:
        return self.day or datetime.now(UTC).date().isoformat()


@dataclass
class ServingState:
    """One consistent set of what scores a request."""

    resolved: Resolved
    bundle: dict[str, Any]
    model: ServingModel | FallbackServing
    scored_by: str
    scored_by_reason: str | None
    explainers: Explainers
    phi_key: bytes
    stale: bool  # the bundle is older than the serving day
    history: pd.DataFrame  # the members' earlier claims the member counts look in, as gold reads them
    loaded_at: float = field(default_factory=time.time)

    @property
    def day(self) -> str:
        return self.resolved.day

    @property
    def identity(self) -> tuple:
        """What a reload compares: a different bundle, champion, fallback or reason model means a new state."""
        return identity_of(self.bundle, self.resolved)


def identity_of(bundle: dict[str, Any], resolved: Resolved) -> tuple:
    return (str(bundle.get("published_at")), resolved.day, resolved.champion_version, resolved.fallback_version,
            resolved.reason_version)


def read_bundle(lake: Any, day: str, lookback_days: int) -> tuple[str, dict[str, Any]]:
    """The newest published bundle on or before `day` (at most `lookback_days` back): (its day, its row)."""
    first = date.fromisoformat(day)
    for back in range(lookback_days + 1):
        candidate = (first - timedelta(days=back)).isoformat()
        frame = lake.read_stored(BUNDLE_KEY.path, candidate)
        if frame is not None and len(frame):
            return candidate, frame.iloc[-1].to_dict()
    raise NotReady(f"no serving/bundle published for {day} or the {lookback_days} days before: materialize "
                   f"serving/bundle for {day} (rcm backfill --start {day} --end {day} --select serving/bundle)")


def serving_model(resolved: Resolved) -> tuple[ServingModel | FallbackServing, str, str | None]:
    """The champion serving the day, else the fallback (saying why), as the batch decides
    (`defs/predictions.serving_for_day`)."""
    why = None
    if resolved.champion_version is not None:
        try:
            return resolved.registry.model(resolved.champion_version), "champion", None
        except Exception as exc:  # a champion that cannot load must not stop the service: the fallback serves
            why = (f"champion v{resolved.champion_version} could not be loaded "
                   f"({type(exc).__name__}: {str(exc)[:200]})")
            log.warning("%s; serving the fallback model", why)
    else:
        why = f"no champion serves {resolved.day} for feature_version {resolved.versions['feature_version']}"
    fallback = resolved.registry.fallback_for(resolved.day) if resolved.fallback_version is not None else None
    if fallback is None:
        raise NotReady(f"{why} and no fallback model is registered for a week on or before {resolved.day}")
    return fallback, "fallback", why


def build_state(resources: dict[str, Any], config: ServeConfig) -> ServingState:
    """Read the bundle, resolve the day's inputs as the batch does, check they agree, load the models."""
    lake = resources["lake"].process_config_and_initialize()
    mlf = resources["mlflow_tracking"].process_config_and_initialize()
    features = resources["features"]
    today = config.serving_day()
    day, bundle = read_bundle(lake, today, config.bundle_lookback_days)
    resolved = resolve_serving(lake, mlf, features, day, bundle.get("decision_threshold"))
    differences = bundle_differences(bundle, resolved.versions)
    if differences:
        raise NotReady(f"the serving/bundle of {day} and the batch's inputs differ ({'; '.join(differences)}): "
                       f"re-materialize serving/bundle for {day}")
    model, scored_by, why = serving_model(resolved)
    explainers = Explainers(mlf, resolved.reference)
    explainers.reason_champion(day)  # loaded now, not on the first request
    if scored_by == "champion":
        explainers.denial_model(mlf.model_name, model.version, model.stamp["mlflow_run_id"])
    state = ServingState(resolved, bundle, model, scored_by, why, explainers,
                         transforms.load_phi_key(config.env), stale=day != today,
                         history=serving_history(lake, day))
    log.info("serving %s v%s (%s) for %s, feature_version %s%s", state.model.stamp["model_name"], model.version,
             scored_by, day, resolved.versions["feature_version"], " (stale bundle)" if state.stale else "")
    return state


def serving_history(lake: Any, day: str) -> pd.DataFrame:
    """The claims the member counts of day D look in, read as gold reads them (`gold.member_history`): the
    silver days before D and D's own stored claims. A count includes only claims first submitted before the
    scored one, so D's later claims in it change nothing; claims sent after the last reload are not in it."""
    wanted = [*feature_lib.HISTORY_COLUMNS, "claim_version", "updated_at"]
    own = lake.read_stored(SILVER_CLAIMS.path, day, columns=wanted)
    return member_history(lake, day, own if own is not None else _empty(wanted))


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c in ("service_date", "submitted_at", "updated_at")
                                      else "int64" if c == "claim_version" else "object") for c in columns})


def probe_identity(resources: dict[str, Any], config: ServeConfig) -> tuple:
    """The identity a state built now would have (reads the bundle and the registry, loads no model)."""
    lake = resources["lake"].process_config_and_initialize()
    mlf = resources["mlflow_tracking"].process_config_and_initialize()
    day, bundle = read_bundle(lake, config.serving_day(), config.bundle_lookback_days)
    _, champion, fallback, reason = serving_versions(mlf, day, str(bundle.get("feature_version")))
    return (str(bundle.get("published_at")), day, champion, fallback, reason)


class StateHolder:
    """The current state and its reloads: `refresh` builds a new state when the bundle, the champion
    history or the reason champion changed, under a timeout; a failed or hung load keeps the old state."""

    def __init__(self, resources: dict[str, Any], config: ServeConfig, on_reload=None):
        self.resources, self.config = resources, config
        self.state: ServingState | None = None
        self.error: str | None = None
        self.on_reload = on_reload
        self._lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="rcm-reload")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self, fn):
        future = self._pool.submit(fn, self.resources, self.config)
        return future.result(timeout=self.config.load_timeout_seconds)

    def refresh(self, force: bool = False) -> bool:
        """Reload when something changed (or `force`); True when a new state was swapped in."""
        with self._lock:
            try:
                if not force and self.state is not None and self._run(probe_identity) == self.state.identity:
                    return False
                new = self._run(build_state)
            except concurrent.futures.TimeoutError:
                self.error = f"loading timed out after {self.config.load_timeout_seconds:.0f} s"
                log.error("reload: %s; the previous state keeps serving", self.error)
                return False
            except Exception as exc:
                self.error = f"{type(exc).__name__}: {exc}"
                log.error("reload failed: %s; %s", self.error,
                          "the previous state keeps serving" if self.state else "not ready")
                return False
            before = self.state
            self.state, self.error = new, None
            if self.on_reload is not None:
                self.on_reload(new)
            if before is not None:
                log.info("reloaded: %s v%s -> %s v%s", before.scored_by, before.model.version, new.scored_by,
                         new.model.version)
            return True

    def start(self) -> None:
        """Reload in the background every `reload_seconds` (0: never)."""
        if self.config.reload_seconds <= 0 or self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.wait(self.config.reload_seconds):
                self.refresh()

        self._thread = threading.Thread(target=loop, name="rcm-reload-loop", daemon=True)
        self._thread.start()

    def stop(self, wait_seconds: float = 10.0) -> None:
        """End the reload loop and wait (bounded) for it: no reload outlives the app that started it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=wait_seconds)
        self._pool.shutdown(wait=False, cancel_futures=True)
