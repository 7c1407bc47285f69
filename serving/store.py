"""From the MLflow registry's champion (and challenger) to loaded Engines, through the
BentoML model store."""

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
from models.experiments.assignment import Experiment
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
    changes: int = 0  # size of the catalogue change log applied to ``engine``


@dataclass(frozen=True)
class Trial:
    """A running experiment with its challenger loaded: one reference, swapped whole."""

    experiment: Experiment
    loaded: Loaded


UNKNOWN, NONE = -2, -1  # a slot nobody published yet; an alias not set


def _publish(found: registry.Aliases, shared: Any) -> None:
    shared[1] = NONE if found.challenger is None else found.challenger
    shared[2] = found.share_per_mille
    shared[0] = NONE if found.champion is None else found.champion  # last: the ready signal


def _watch(
    tracking_uri: str,
    registry_uri: str | None,
    names: tuple[str, str, str],
    interval: float,
    shared: Any,
    parent: int,
) -> None:
    """Child process: poll the registry's aliases and publish the versions and the
    experiment's share in shared memory, until the worker that started it is gone."""
    while os.getppid() == parent:
        try:
            _publish(registry.aliases(tracking_uri, registry_uri, *names), shared)
        except Exception:  # a registry outage: keep the last answer, try again later
            log.exception("registry poll failed")
        time.sleep(interval)


class RegistryWatch:
    """Which versions hold the champion and challenger aliases, and the experiment's
    share, watched from a child process.

    The registry query (with a local SQLite store, SQLAlchemy work holding the GIL) runs
    in its own process and publishes three integers in shared memory; a request worker
    only reads them. Nothing is shared under a lock: a child killed with the worker's
    process group (as a process manager's SIGTERM does) must not leave a lock held that
    the worker would then wait on forever at shutdown. Each integer is read whole; the
    three together may mix two polls for one interval, which the service tolerates (a
    challenger is only served once loaded).
    """

    def __init__(self, settings: Settings, interval: float):
        self.settings = settings
        self._names = (
            settings.registered_model,
            settings.champion_alias,
            settings.challenger_alias,
        )
        ctx = mp.get_context("spawn")
        self._shared = ctx.Array("i", [UNKNOWN, NONE, 0], lock=False)  # aligned ints
        self._proc = ctx.Process(
            target=_watch,
            args=(
                settings.tracking_uri,
                settings.mlflow_registry_uri,
                self._names,
                interval,
                self._shared,
                os.getpid(),
            ),
            name="cartlift-registry-watch",
            daemon=True,
        )
        self._proc.start()

    def aliases(self) -> registry.Aliases:
        """The last published answer (the first time, before the watcher answered: asked
        here)."""
        if self._shared[0] == UNKNOWN:
            found = registry.aliases(
                self.settings.tracking_uri, self.settings.mlflow_registry_uri, *self._names
            )
            _publish(found, self._shared)
        champion, challenger, share = list(self._shared)
        return registry.Aliases(
            None if champion == NONE else champion,
            None if challenger == NONE else challenger,
            share,
        )

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
