"""The only module that talks to MLflow: runs, the model registry and the champion alias."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from infra.pyfunc import ARTIFACT, CartliftModel
from infra.settings import Settings
from models.config import redacted
from models.ranking.bundle import Bundle
from models.recommenders.hybrid import HybridModel

log = logging.getLogger(__name__)
PIP_REQUIREMENTS = ["cartlift", "rectools-lightfm==1.17.3", "numpy", "pandas", "scipy"]
# MLflow's codes for a store that failed on its side or could not be reached (the client
# reports a refused connection or exhausted HTTP retries as INTERNAL_ERROR).
TRANSIENT = {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}


class RegistryUnavailableError(OSError):
    """MLflow could not be reached or failed on its side. An I/O error: the flows' tasks
    retry it, while a refused request (a bad name, a missing version) fails at once."""


@contextmanager
def unavailable_as_io(settings: Settings, action: str) -> Iterator[None]:
    """Turn MLflow's transient failures into :class:`RegistryUnavailableError` naming the
    store and what was being done."""
    try:
        yield
    except MlflowException as exc:
        if exc.error_code not in TRANSIENT:
            raise
        where = redacted(settings.tracking_uri)
        raise RegistryUnavailableError(
            f"MLflow at {where} failed while {action}: {exc.message[:500]}"
        ) from exc


@dataclass(frozen=True)
class Champion:
    version: str
    run_id: str
    dataset: str
    model: HybridModel


def connect(settings: Settings) -> MlflowClient:
    """Point MLflow at the configured store (SQLite under CARTLIFT_HOME by default)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.tracking_uri)
    if settings.mlflow_registry_uri:
        mlflow.set_registry_uri(settings.mlflow_registry_uri)
    if mlflow.get_experiment_by_name(settings.experiment_name) is None:
        location = None
        if settings.tracking_uri.startswith("sqlite:"):
            location = settings.mlflow_artifacts_dir.as_uri()
        mlflow.create_experiment(settings.experiment_name, artifact_location=location)
    mlflow.set_experiment(settings.experiment_name)
    return MlflowClient()


def load_champion_bundle(settings: Settings) -> tuple[str, Bundle]:
    """The champion's version and serving bundle; raises ValueError when there is none."""
    client = connect(settings)
    try:
        mv = client.get_model_version_by_alias(settings.registered_model, settings.champion_alias)
    except MlflowException as exc:
        raise ValueError("no champion yet: run `cartlift pipeline`") from exc
    pyfunc = mlflow.pyfunc.load_model(f"models:/{settings.registered_model}/{mv.version}")
    return str(mv.version), pyfunc.unwrap_python_model().bundle


def load_champion(client: MlflowClient, settings: Settings) -> Champion | None:
    """The current champion, or None when there is none yet."""
    try:
        mv = client.get_model_version_by_alias(settings.registered_model, settings.champion_alias)
    except MlflowException:
        return None
    pyfunc = mlflow.pyfunc.load_model(
        f"models:/{settings.registered_model}@{settings.champion_alias}"
    )
    model = pyfunc.unwrap_python_model().bundle.model
    return Champion(
        version=str(mv.version), run_id=mv.run_id, dataset=mv.tags.get("dataset", ""), model=model
    )


def log_run_data(
    params: dict[str, str],
    metrics: dict[str, float],
    tags: dict[str, str],
    artifacts: dict[str, Any],
) -> None:
    """Params, metrics, tags and small artifacts (dicts as JSON, frames as CSV, paths as files)."""
    mlflow.log_params(params)
    mlflow.log_metrics({k: v for k, v in metrics.items() if v == v})  # NaN: slice was empty
    mlflow.set_tags(tags)
    for name, value in artifacts.items():
        if isinstance(value, dict):
            mlflow.log_dict(value, name)
        elif isinstance(value, pd.DataFrame):
            mlflow.log_text(value.to_csv(index=False), name)
        else:
            mlflow.log_artifact(str(value))


def log_model(bundle: Bundle, settings: Settings, example_users: list[str]) -> str:
    """Log the pyfunc with a signature and register it; returns the new version number."""
    with tempfile.TemporaryDirectory() as tmp:
        path = bundle.save(Path(tmp) / "bundle.pkl")
        example = pd.DataFrame(
            {"user_id": example_users[:3], "k": [10] * min(3, len(example_users))}
        )
        wrapper = CartliftModel()
        wrapper.bundle = bundle
        signature = infer_signature(example, wrapper.predict(None, example))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=CartliftModel(),
            artifacts={ARTIFACT: str(path)},
            signature=signature,
            input_example=example,
            pip_requirements=PIP_REQUIREMENTS,
            registered_model_name=settings.registered_model,
        )
    return str(info.registered_model_version)


def tag_version(
    client: MlflowClient, settings: Settings, version: str, tags: dict[str, str]
) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(settings.registered_model, version, key, value)


def set_champion(client: MlflowClient, settings: Settings, version: str) -> None:
    client.set_registered_model_alias(settings.registered_model, settings.champion_alias, version)


def promote(settings: Settings, version: str) -> str:
    """Move the champion alias to an existing version (rollback or manual promotion)."""
    client = connect(settings)
    try:
        mv = client.get_model_version(settings.registered_model, version)
    except MlflowException as exc:
        raise ValueError(f"{settings.registered_model} has no version {version}") from exc
    set_champion(client, settings, str(mv.version))
    client.set_model_version_tag(
        settings.registered_model, str(mv.version), "promoted_by", "cartlift promote"
    )
    return str(mv.version)


def describe_champion(settings: Settings) -> dict[str, str] | None:
    client = connect(settings)
    try:
        mv = client.get_model_version_by_alias(settings.registered_model, settings.champion_alias)
    except MlflowException:
        return None
    created = datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=UTC).isoformat()
    return {"version": str(mv.version), "run_id": mv.run_id, "created_at": created, **mv.tags}


def describe_version(settings: Settings, version: str) -> dict[str, str]:
    client = connect(settings)
    mv = client.get_model_version(settings.registered_model, version)
    return {"version": str(mv.version), "run_id": mv.run_id, **mv.tags}


def run_metrics(settings: Settings, run_id: str, names: list[str]) -> dict[str, float]:
    """The named metrics of an MLflow run (those it logged)."""
    logged = connect(settings).get_run(run_id).data.metrics
    return {name: float(logged[name]) for name in names if name in logged}
