"""From the MLflow registry's champion to a loaded Engine, through the BentoML model store."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import bentoml
import bentoml.exceptions

from flows import registry
from models.engine import Engine
from models.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Loaded:
    """A model ready to answer, with where it came from."""

    engine: Engine
    version: str
    run_id: str
    bento_tag: str
    metadata: dict[str, str]


def champion_version(settings: Settings) -> str | None:
    """The registry's current champion version, or None."""
    info = registry.describe_champion(settings)
    return info["version"] if info else None


def _bento_model(settings: Settings, version: str) -> bentoml.Model:
    """The BentoML store's copy of registered version ``version``, imported once."""
    name = settings.registered_model
    try:
        stored = bentoml.models.list(name)
    except bentoml.exceptions.NotFound:
        stored = []
    for model in stored:
        if model.info.metadata.get("mlflow_version") == version:
            return model
    uri = f"models:/{settings.registered_model}/{version}"
    log.info("Importing %s into the BentoML model store", uri)
    return bentoml.mlflow.import_model(name, uri, metadata={"mlflow_version": version})


def load(settings: Settings, version: str) -> Loaded:
    """Import (if needed) and load one registered version."""
    registry.connect(settings)
    model = _bento_model(settings, version)
    pyfunc = bentoml.mlflow.load_model(model)
    bundle = pyfunc.unwrap_python_model().bundle
    info = registry.describe_version(settings, version)
    return Loaded(
        engine=Engine(bundle),
        version=version,
        run_id=info.get("run_id", ""),
        bento_tag=str(model.tag),
        metadata=dict(bundle.metadata),
    )
