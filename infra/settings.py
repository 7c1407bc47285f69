"""The environment: where state lives, which services to use, and the secrets.

The only place cartlift reads ``CARTLIFT_*`` variables. Modelling knobs are plain data in
:mod:`models.config`; this object adds paths, URIs and secrets, which never travel as
task parameters nor reach logs or MLflow (a URI is shown only :func:`redacted`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.config import (
    DEFAULT_DATASET,
    ExperimentConfig,
    MonitorConfig,
    RunConfig,
    ServingConfig,
    ShopConfig,
)


class Settings(BaseSettings):
    """Paths, URIs and secrets from ``CARTLIFT_*`` variables; the service's and monitor's
    knobs. The run config is not here: :func:`resolve_run_config` makes it.

    All state lives under ``home``; each location can be moved by its own variable
    (e.g. ``CARTLIFT_MLFLOW_TRACKING_URI=http://mlflow:5000`` for a server).
    """

    model_config = SettingsConfigDict(
        env_prefix="CARTLIFT_", env_nested_delimiter="__", extra="forbid"
    )

    home: Path = Path(".cartlift")
    mlflow_tracking_uri: str | None = None
    mlflow_registry_uri: str | None = None
    events_uri: str | None = Field(
        None,
        description="the live event store (/events): a SQLAlchemy URL, e.g. "
        "postgresql+psycopg://... in production; default a SQLite file under home",
    )
    experiment_name: str = "cartlift"
    registered_model: str = "cartlift-recommender"
    champion_alias: str = "champion"
    challenger_alias: str = Field(
        "challenger",
        description="the registry alias of the version an online experiment tries against "
        "the champion (`cartlift experiment start`)",
    )
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
    code_dir: str | None = Field(
        None,
        description="where deployed flow runs find cartlift's code on the workers (the "
        "image's /app); default: the checkout that runs `cartlift deploy`",
    )
    shop: ShopConfig = ShopConfig()
    serving: ServingConfig = ServingConfig()
    monitor: MonitorConfig = MonitorConfig()
    experiments: ExperimentConfig = Field(
        ExperimentConfig(),
        description="online experiments, champion against challenger (MLflow's experiment "
        "is experiment_name)",
    )

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

    @property
    def events_url(self) -> str:
        return self.events_uri or f"sqlite:///{self.home / 'events' / 'events.db'}"

    def default_shop_dir(self) -> Path:
        return self.raw_dir / DEFAULT_DATASET

    def dataset_lake(self, dataset: str) -> Path:
        return self.lake_dir / dataset


RUN_ENV_PREFIX = "CARTLIFT_RUN__"


def run_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """``CARTLIFT_RUN__TRAIN__EPOCHS=5`` and the like as a nested dict (values read as YAML
    scalars, so numbers, booleans and lists keep their type)."""
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(RUN_ENV_PREFIX):
            continue
        *path, leaf = name[len(RUN_ENV_PREFIX) :].lower().split("__")
        node = out
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return out


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merge(out[key], value) if both else value
    return out


def dataset_name(data: str | Path | None, fmt: str) -> str:
    """The dataset a source is called in the lake when no name is given: ``online-retail``
    for that format, else the directory's or file's name (``orders.csv.gz`` -> ``orders``)."""
    if fmt == "online-retail":
        return "online-retail"
    if data is None:
        return DEFAULT_DATASET
    path = Path(data)
    stem = path.name.split(".")[0] if path.is_file() else path.name
    return re.sub(r"[^A-Za-z0-9_.-]", "-", stem) or DEFAULT_DATASET


def resolve_run_config(
    settings: Settings,
    config_file: str | Path | None = None,
    dataset: str | None = None,
    fmt: str = "contract",
    data: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[RunConfig, str]:
    """The run config of one run, and where it came from; the one path for the CLI, the
    flows and deployed runs (which resolve it when they run, so a later ``tune`` reaches
    them).

    An explicit ``config_file``, else the dataset's tuned config (written by ``tune``),
    else the defaults; ``CARTLIFT_RUN__*`` variables override on top. The dataset is
    ``dataset``, else the file's ``dataset``, else named after the data
    (:func:`dataset_name`)."""
    values: dict[str, Any] = {}
    origin = "defaults"
    if config_file is not None:
        values = yaml.safe_load(Path(config_file).read_text()) or {}
        if not isinstance(values, dict):
            raise ValueError("a mapping of settings (YAML keys and values) expected")
        origin = str(config_file)
    name = dataset or values.get("dataset") or dataset_name(data, fmt)
    tuned = settings.tuned_config(name)
    if config_file is None and tuned.exists():
        values, origin = yaml.safe_load(tuned.read_text()) or {}, f"tuned ({tuned})"
    overrides = run_overrides(os.environ if environ is None else environ)
    if overrides:
        origin += " with CARTLIFT_RUN__* overrides"
    merged = _merge(values, overrides) | {"dataset": name}
    return RunConfig.model_validate(merged), origin


def config_problem(exc: Exception) -> str:
    """What is wrong with a run config, in one line: the file that cannot be read, the YAML
    that does not parse, or each field that does not validate, by its dotted name."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'the file'}: {e['msg']}" for e in exc.errors()
        )
    if isinstance(exc, OSError):
        return f"cannot read it ({exc.strerror or exc})"
    if isinstance(exc, yaml.YAMLError):
        return "not YAML: " + " ".join(str(exc).split())
    return " ".join(str(exc).split())


def write_tuned_config(settings: Settings, config: RunConfig) -> Path:
    """Make ``config`` its dataset's default (what :func:`resolve_run_config` reads next)."""
    path = settings.tuned_config(config.dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    tmp.replace(path)
    return path
