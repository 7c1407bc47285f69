"""From the MLflow registry's champion to a loaded Engine, through the BentoML model store."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import bentoml
import bentoml.exceptions
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

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


class ChampionWatch:
    """Asks the registry which version holds the champion alias: one query per call.

    Built once per worker, so a poll does not re-create clients or re-check experiments
    (that work, in the worker's process, showed up as p99 latency spikes under load).
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.client = MlflowClient(
            tracking_uri=settings.tracking_uri, registry_uri=settings.mlflow_registry_uri
        )

    def version(self) -> str | None:
        try:
            mv = self.client.get_model_version_by_alias(
                self.settings.registered_model, self.settings.champion_alias
            )
        except MlflowException:
            return None
        return str(mv.version)


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
