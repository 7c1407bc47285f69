"""From the MLflow registry's champion to a loaded Engine, through the BentoML model store."""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from typing import Any

import bentoml
import bentoml.exceptions

from infra import registry
from infra.settings import Settings
from models.ranking.bundle import Bundle
from models.ranking.engine import Engine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Loaded:
    """A model ready to answer, with where it came from."""

    engine: Engine
    base: Bundle  # as trained; catalogue changes are applied to it, never to each other
    version: str
    run_id: str
    bento_tag: str
    metadata: dict[str, str]


UNKNOWN, NONE = -2, -1


def _champion(tracking_uri: str, registry_uri: str | None, name: str, alias: str) -> int:
    found = registry.alias_version(tracking_uri, registry_uri, name, alias)
    return NONE if found is None else found


def _watch(
    tracking_uri: str,
    registry_uri: str | None,
    name: str,
    alias: str,
    interval: float,
    shared: Any,
    parent: int,
) -> None:
    """Child process: poll the alias and publish the version number in shared memory,
    until the worker that started it is gone."""
    while os.getppid() == parent:
        try:
            shared.value = _champion(tracking_uri, registry_uri, name, alias)
        except Exception:  # a registry outage: keep the last answer, try again later
            log.exception("champion poll failed")
        time.sleep(interval)


class ChampionWatch:
    """Which version holds the champion alias, watched from a child process.

    The registry query (with a local SQLite store, SQLAlchemy work holding the GIL) runs
    in its own process and publishes the version number in shared memory; a request
    worker only reads an integer. Nothing is shared under a lock: a child killed with
    the worker's process group (as a process manager's SIGTERM does) must not leave a
    lock held that the worker would then wait on forever at shutdown.
    """

    def __init__(self, settings: Settings, interval: float):
        self.settings = settings
        ctx = mp.get_context("spawn")
        self._shared = ctx.Value("i", UNKNOWN, lock=False)  # one aligned int: no torn reads
        self._proc = ctx.Process(
            target=_watch,
            args=(
                settings.tracking_uri,
                settings.mlflow_registry_uri,
                settings.registered_model,
                settings.champion_alias,
                interval,
                self._shared,
                os.getpid(),
            ),
            name="cartlift-champion-watch",
            daemon=True,
        )
        self._proc.start()

    def version(self) -> str | None:
        value = self._shared.value
        if value == UNKNOWN:  # the watcher has not answered yet: ask once, here
            value = _champion(
                self.settings.tracking_uri,
                self.settings.mlflow_registry_uri,
                self.settings.registered_model,
                self.settings.champion_alias,
            )
        return None if value == NONE else str(value)

    def close(self) -> None:
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc.join(timeout=5)


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
        base=bundle,
        version=version,
        run_id=info.get("run_id", ""),
        bento_tag=str(model.tag),
        metadata=dict(bundle.metadata),
    )
