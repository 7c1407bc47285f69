"""The environment: where state lives, which services to use, and the secrets.

The only place cartlift reads ``CARTLIFT_*`` variables. Modelling knobs are plain data in
:mod:`models.config`; this object adds paths, URIs and secrets, which never travel as
task parameters nor reach logs or MLflow (a URI is shown only :func:`redacted`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.config import (
    DEFAULT_DATASET,
    MonitorConfig,
    RunConfig,
    ServingConfig,
    ShopConfig,
)


class Settings(BaseSettings):
    """Paths, URIs and secrets from ``CARTLIFT_*`` variables, plus the run config.

    All state lives under ``home``; each location can be moved by its own variable
    (e.g. ``CARTLIFT_MLFLOW_TRACKING_URI=http://mlflow:5000`` for a server).
    """

    model_config = SettingsConfigDict(
        env_prefix="CARTLIFT_", env_nested_delimiter="__", extra="forbid"
    )

    home: Path = Path(".cartlift")
    mlflow_tracking_uri: str | None = None
    mlflow_registry_uri: str | None = None
    experiment_name: str = "cartlift"
    registered_model: str = "cartlift-recommender"
    champion_alias: str = "champion"
    pseudonymise_key: SecretStr | None = Field(
        None,
        description="HMAC key: when set, customer ids are replaced by keyed hashes at ingestion",
    )
    api_key: SecretStr | None = Field(
        None, description="when set, /feedback and /admin/* require it in the x-api-key header"
    )
    dask_address: str | None = Field(
        None,
        description="Dask scheduler (tcp://host:8786): per-user feature work runs there",
    )
    feature_partitions: int = Field(
        8, ge=1, description="partitions of users for feature building on Dask"
    )
    shop: ShopConfig = ShopConfig()
    serving: ServingConfig = ServingConfig()
    monitor: MonitorConfig = MonitorConfig()
    run: RunConfig = RunConfig()

    @field_validator("home")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    # Locations under home. Derived, so they cannot disagree with it.
    @property
    def raw_dir(self) -> Path:
        return self.home / "raw"

    @property
    def lake_dir(self) -> Path:
        return self.home / "lake"

    @property
    def quarantine_dir(self) -> Path:
        return self.home / "quarantine"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def predictions_dir(self) -> Path:
        return self.home / "predictions"

    @property
    def serving_dir(self) -> Path:
        return self.home / "serving"

    @property
    def prefect_home(self) -> Path:
        return self.home / "prefect"

    @property
    def bentoml_home(self) -> Path:
        return self.home / "bentoml"

    @property
    def mlflow_artifacts_dir(self) -> Path:
        return self.home / "mlartifacts"

    def tuned_config(self, dataset: str) -> Path:
        """Where ``tune`` writes a dataset's best run config (the pipeline's default)."""
        return self.home / "configs" / f"{dataset}.yaml"

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.home / 'mlflow.db'}"

    def default_shop_dir(self) -> Path:
        return self.raw_dir / DEFAULT_DATASET

    def dataset_lake(self, dataset: str) -> Path:
        return self.lake_dir / dataset
