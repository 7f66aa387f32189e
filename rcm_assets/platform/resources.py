"""Resources: configuration and clients, built per environment by `build_resources(env)`.

Secrets (a source URL with a password, the PHI key) come only from the environment through
`dg.EnvVar`, resolved when a run starts, so the definitions load with no secrets set. In `dev` and `demo`, an
unset variable falls back to the embedded default (SQLite source, local lake, SQLite MLflow), except the PHI
key, which only `demo` may leave unset; in `prod` every setting must come from the environment.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import dagster as dg
import mlflow
import pandas as pd
from mlflow import MlflowClient
from pydantic import PrivateAttr

from rcm_assets.lib import features as feature_lib
from rcm_assets.lib import settings
from rcm_assets.lib.reference_tables import ReferenceTables, load_reference_tables
from rcm_assets.lib.source import SourceReader
from rcm_assets.lib.transforms import load_phi_key
from rcm_assets.platform.io_manager import ParquetLakeIOManager


class SourceResource(dg.ConfigurableResource):
    """The claims source database (any SQLAlchemy URL); reads retry transient errors."""

    url: str
    max_attempts: int = 5
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 30.0

    def reader(self, logger: Any = None) -> SourceReader:
        return SourceReader(
            self.url,
            max_attempts=self.max_attempts,
            base_delay=self.base_delay_seconds,
            max_delay=self.max_delay_seconds,
            logger=logger,
        )


class PhiKeyResource(dg.ConfigurableResource):
    """The pseudonymization key; unset, a run stops with one sentence naming RCM_PHI_KEY, except in the
    explicit demo environment, which uses the published demo key (`transforms.load_phi_key`)."""

    key: str | None = None
    env: str = "dev"

    def key_bytes(self) -> bytes:
        if self.key:
            key = self.key.encode()
            if self.env == "prod" and len(key) < 16:
                raise ValueError("RCM_PHI_KEY must be at least 16 bytes in prod")
            return key
        return load_phi_key(self.env)


class LandingResource(dg.ConfigurableResource):
    """The landing folder watched by the file sensor, and where refused files go."""

    landing_dir: str
    quarantine_dir: str
    first_day: str = "2025-01-01"


class FeatureResource(dg.ConfigurableResource):
    """The one place features are computed: gold, training and scoring all call `compute`."""

    # None = the feature module's own defaults (kept in one place: lib/features.FeatureConfig).
    charge_ratio_cap: float | None = None
    age_band_edges: list[int] | None = None
    # The silver columns features may read; None = the feature module's defaults. A post-outcome or
    # bookkeeping column here is refused with a LeakageError naming it.
    source_columns: list[str] | None = None
    # IANA zone in which service dates are local dates (build_resources passes RCM_FACILITY_TZ); None = UTC.
    facility_tz: str | None = None
    # The hospital's reference files (RCM_REFERENCE_DIR; each optional, docs/REFERENCE_DATA.md); None = none.
    reference_dir: str | None = None

    def config(self) -> feature_lib.FeatureConfig:
        overrides = {
            "source_columns": tuple(self.source_columns) if self.source_columns is not None else None,
            "age_band_edges": tuple(self.age_band_edges) if self.age_band_edges is not None else None,
            "charge_ratio_cap": self.charge_ratio_cap,
            "facility_tz": self.facility_tz,
        }
        return feature_lib.FeatureConfig(**{k: v for k, v in overrides.items() if v is not None})

    def reference(self) -> ReferenceTables:
        """The reference tables supplied in `reference_dir` (read now: a file replaced between runs is seen);
        a present but invalid file raises `ReferenceFileError` naming file, line and column."""
        return load_reference_tables(self.reference_dir)

    @property
    def version(self) -> str:
        return feature_lib.feature_version(self.config(), self.reference())

    def compute(self, silver_claims: pd.DataFrame, learned_rules: pd.DataFrame | None = None,
                learned: Any = None, reference: ReferenceTables | None = None,
                history: pd.DataFrame | None = None) -> pd.DataFrame:
        """Features of the decision-time view of silver claims (post-outcome columns never get in), with
        the reference tables, the learned payer rules in force on each row's day (`lib/payer_rules`), the
        learned point-in-time statistics (`lib/learned.LearnedTables`, None: their defaults) and the earlier
        claims the member counts look in (`features.HISTORY_COLUMNS`, None: the input rows only)."""
        config = self.config()
        return feature_lib.compute_features(feature_lib.decision_time_view(silver_claims, config), config,
                                            learned_rules, reference if reference is not None else self.reference(),
                                            learned, history)


class MlflowResource(dg.ConfigurableResource):
    """A thin client around MLflow tracking and the model registry (no global run state)."""

    tracking_uri: str
    artifact_location: str | None = None
    experiment: str = "rcm-denials"
    model_name: str = "rcm_denial_model"
    _client: MlflowClient | None = PrivateAttr(default=None)

    def client(self) -> MlflowClient:
        if self._client is None:
            mlflow.set_tracking_uri(self.tracking_uri)
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def experiment_id(self) -> str:
        client = self.client()
        found = client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        return client.create_experiment(self.experiment, artifact_location=self.artifact_location)


def _setting(name: str, env: str, default: str | None) -> Any:
    """An EnvVar when the variable is set (or required in prod); else the configuration file's value
    (RCM_CONFIG; never a secret, `lib.config_file` refuses those); else the embedded dev default."""
    if os.environ.get(name):
        return dg.EnvVar(name)
    if (from_file := settings.from_config_file(name)) is not None:
        return from_file
    if env == "prod" or default is None:
        return dg.EnvVar(name)
    return default


def build_resources(env: str | None = None) -> dict[str, Any]:
    """All resources for `env` (`dev`, `demo` or `prod`; default from RCM_ENV)."""
    env = env or settings.environment()
    if env not in settings.ENVIRONMENTS:
        raise ValueError(f"unknown environment {env!r}; expected one of {settings.ENVIRONMENTS}")
    if env != "prod":
        logging.getLogger("rcm").debug(f"building {env} resources with embedded defaults")
    return {
        "lake": ParquetLakeIOManager(base_url=_setting("RCM_LAKE_URL", env, settings.lake_url())),
        "source": SourceResource(url=_setting("RCM_SOURCE_URL", env, settings.source_url())),
        # unset outside prod: the run reads it when it starts, and stops naming it if still unset
        "phi": PhiKeyResource(key=dg.EnvVar("RCM_PHI_KEY") if os.environ.get("RCM_PHI_KEY") or env == "prod" else None,
                              env=env),
        "landing": LandingResource(
            landing_dir=_setting("RCM_LANDING_DIR", env, str(settings.landing_dir())),
            quarantine_dir=_setting("RCM_QUARANTINE_DIR", env, str(settings.quarantine_dir())),
            first_day=settings.partitions_start().isoformat(),
        ),
        "features": FeatureResource(facility_tz=settings.facility_tz(), reference_dir=str(settings.reference_dir())),
        "mlflow_tracking": MlflowResource(
            tracking_uri=_setting("MLFLOW_TRACKING_URI", env, settings.mlflow_tracking_uri()),
            artifact_location=_setting("RCM_MLFLOW_ARTIFACTS", env, settings.mlflow_artifact_location()),
        ),
    }
