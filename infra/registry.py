"""The only module that talks to MLflow: runs, the model registry and the champion alias.

A version is logged as "models from code" (:mod:`infra.registered_model`) with a copy of
``models/`` as its code path, so it loads wherever its pinned requirements are installed.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib.metadata import version as installed
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import mlflow
import pandas as pd
from matplotlib.figure import Figure
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from infra.settings import Settings
from models.config import redacted
from models.ranking.batch import predict_frame
from models.ranking.bundle import Bundle
from models.recommenders.blend import PLAIN, Mix, Signals
from models.recommenders.hybrid import HybridModel

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
MODEL_CODE = ROOT / "infra" / "registered_model.py"
CODE_PATHS = [str(ROOT / "models")]
ARTIFACT = "bundle"  # the name infra.registered_model loads the bundle by
# What a registered version needs to load and predict: ``models/`` travels with it, these
# are installed (pinned to this environment's versions, which uv.lock resolved together).
REQUIRED = ("mlflow", "rectools-lightfm", "numpy", "pandas", "scipy", "pydantic")


def pip_requirements() -> list[str]:
    return [f"{name}=={installed(name)}" for name in REQUIRED]


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
    mixes: dict[bool, Mix]  # how the champion's model is served (plain, if an older bundle)
    signals: Signals  # what its blend adds, from its training window (older bundles: none)
    baseline: str | None  # the simple baseline it serves instead of its model, if it does


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


# Registered-model tags of a running experiment (the challenger alias names its version).
SHARE_TAG = "cartlift.experiment.share"
STARTED_TAG = "cartlift.experiment.started"
P_TAG = "cartlift.experiment.p"  # the always-valid p-value of the last look
PER_MILLE = 1000


@dataclass(frozen=True)
class Aliases:
    """Who answers: the champion's version and, while an experiment runs, the
    challenger's, its share (per mille of customers) and when it started."""

    champion: int | None
    challenger: int | None = None
    share_per_mille: int = 0
    started_at: str = ""
    last_p: float = 1.0  # the last look's always-valid p-value (it only goes down)

    @property
    def share(self) -> float:
        return self.share_per_mille / PER_MILLE


def aliases(
    tracking_uri: str, registry_uri: str | None, name: str, champion: str, challenger: str
) -> Aliases:
    """Both aliases and the experiment's share in one query of the registered model, with
    its own client: what the service's watcher process publishes. A challenger without
    a valid share (or holding the champion's version) is no experiment."""
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
    try:
        model = client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code in TRANSIENT:  # an outage, not an answer: the caller keeps its last
            raise
        return Aliases(None)  # nothing registered yet
    held = {alias: int(version) for alias, version in model.aliases.items()}
    first, second = held.get(champion), held.get(challenger)
    try:
        share = round(float(model.tags.get(SHARE_TAG, "")) * PER_MILLE)
    except ValueError:
        share = 0
    if second is None or second == first or not 0 < share < PER_MILLE:
        return Aliases(first)
    try:
        last_p = float(model.tags.get(P_TAG, "1"))
    except ValueError:
        last_p = 1.0
    return Aliases(first, second, share, model.tags.get(STARTED_TAG, ""), last_p)


def start_experiment(settings: Settings, version: str, share: float) -> Aliases:
    """Put ``version`` up against the champion for ``share`` of customers: the challenger
    alias and the share as tags of the registered model (the service picks both up)."""
    if not 1 / PER_MILLE <= share <= 1 - 1 / PER_MILLE:
        raise ValueError(
            f"the challenger's share must lie between {1 / PER_MILLE:g} and "
            f"{1 - 1 / PER_MILLE:g}, not {share:g}"
        )
    client = connect(settings)
    name = settings.registered_model
    try:
        mv = client.get_model_version(name, version)
    except MlflowException as exc:
        raise ValueError(f"{name} has no version {version}") from exc
    champion = experiment(settings).champion
    if champion is None:
        raise ValueError(f"{name} has no champion yet to test a challenger against")
    if str(champion) == str(mv.version):
        raise ValueError(f"version {mv.version} is the champion: a challenger must differ")
    started = datetime.now(UTC).isoformat(timespec="seconds")
    with suppress(MlflowException):  # a challenger replaced: its test starts afresh
        client.delete_registered_model_tag(name, P_TAG)
    client.set_registered_model_tag(name, SHARE_TAG, f"{round(share * PER_MILLE) / PER_MILLE:g}")
    client.set_registered_model_tag(name, STARTED_TAG, started)
    client.set_registered_model_alias(name, settings.challenger_alias, str(mv.version))
    return experiment(settings)


def stop_experiment(settings: Settings) -> Aliases:
    """End the running experiment (the champion answers everyone); what ran until now."""
    before = experiment(settings)
    if before.champion is None and before.challenger is None:
        return before  # nothing registered: nothing runs
    client = connect(settings)
    name = settings.registered_model
    if settings.challenger_alias in client.get_registered_model(name).aliases:
        client.delete_registered_model_alias(name, settings.challenger_alias)
    for tag in (SHARE_TAG, STARTED_TAG, P_TAG):
        with suppress(MlflowException):  # never set
            client.delete_registered_model_tag(name, tag)
    return before


def record_look(settings: Settings, p_value: float) -> None:
    """Keep the last look's p-value with the experiment: the next look starts from it."""
    connect(settings).set_registered_model_tag(settings.registered_model, P_TAG, f"{p_value:.6g}")


def promote_challenger(settings: Settings, reason: str) -> Aliases:
    """The experiment's verdict for the challenger: it becomes the champion (the old
    champion stays registered, named on the new one for a rollback with `cartlift
    promote`) and the experiment ends. Returns the experiment as it stood."""
    before = experiment(settings)
    if before.challenger is None:
        raise ValueError("no experiment running: no challenger to promote")
    client = connect(settings)
    version = str(before.challenger)
    tag_version(
        client,
        settings,
        version,
        {
            "promoted_by": "experiment",
            "experiment": reason,
            "previous_champion": str(before.champion),
        },
    )
    set_champion(client, settings, version)
    stop_experiment(settings)
    return before


def experiment(settings: Settings) -> Aliases:
    """The champion, and the running experiment if any."""
    connect(settings)
    return aliases(
        settings.tracking_uri,
        settings.mlflow_registry_uri,
        settings.registered_model,
        settings.champion_alias,
        settings.challenger_alias,
    )


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
    bundle = pyfunc.unwrap_python_model().bundle
    return Champion(
        version=str(mv.version),
        run_id=mv.run_id or "",
        dataset=mv.tags.get("dataset", ""),
        model=bundle.model,
        mixes=getattr(bundle, "mixes", PLAIN),
        signals=getattr(bundle, "signals", None)
        or Signals.empty(len(bundle.model.user_ids), len(bundle.model.item_ids)),
        baseline=None if getattr(bundle, "personal", None) is None else bundle.personal.name,
    )


@dataclass
class RunRecord:
    """What one run logs: params, metrics, tags and small artifacts (dicts as JSON, frames as
    CSV, matplotlib figures as images)."""

    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    artifacts: dict[str, Any]


def log_run_data(record: RunRecord, metrics: bool = True) -> None:
    """Log a record into the active run (its metrics too unless ``metrics`` is False)."""
    mlflow.log_params(record.params)
    if metrics:
        log_metrics(record.metrics)
    mlflow.set_tags(record.tags)
    for name, value in record.artifacts.items():
        if isinstance(value, dict):
            mlflow.log_dict(value, name)
        elif isinstance(value, pd.DataFrame):
            mlflow.log_text(value.to_csv(index=False), name)
        elif isinstance(value, Figure):
            mlflow.log_figure(value, name)
            plt.close(value)
        elif isinstance(value, str):
            mlflow.log_text(value, name)
        else:
            mlflow.log_artifact(str(value))


def run_link(settings: Settings, run_id: str) -> str:
    """Where a team sees a run: its page on the tracking server, else the command that
    opens the local store (its password, if any, hidden)."""
    uri = settings.tracking_uri
    if uri.startswith(("http://", "https://")):
        experiment = connect(settings).get_run(run_id).info.experiment_id
        return f"{redacted(uri).rstrip('/')}/#/experiments/{experiment}/runs/{run_id}"
    return f"`mlflow ui --backend-store-uri {redacted(uri)}`, run {run_id}"


def attach_figure(settings: Settings, run_id: str, figure: Figure, name: str) -> None:
    """An image added to a run (open or finished); the figure is closed."""
    connect(settings).log_figure(run_id, figure, name)
    plt.close(figure)


def attach_text(settings: Settings, run_id: str, text: str, name: str) -> None:
    """A text artifact (an HTML report) added to a finished run."""
    connect(settings).log_text(run_id, text, name)


def log_metrics(metrics: dict[str, float], model_id: str | None = None) -> None:
    """One batch of metrics into the active run, linked to a logged model if given; NaN
    (an empty slice) is left out."""
    mlflow.log_metrics({k: v for k, v in metrics.items() if v == v}, model_id=model_id)


def log_and_register(
    settings: Settings,
    run_name: str,
    record: RunRecord,
    bundle_for: Callable[[str], Bundle],
    example_users: list[str],
    version_tags: dict[str, str],
) -> tuple[str, str]:
    """One run with ``record``, and the bundle (made for the run's id) registered as a new
    version carrying ``version_tags``; returns (version, run id)."""
    client = connect(settings)
    with mlflow.start_run(run_name=run_name) as run:
        # Metrics after the model, in one batch linked to it: logged before, MLflow links
        # them by asking the store for each metric's history, one request per metric.
        log_run_data(record, metrics=False)
        version, model_id = log_model(bundle_for(run.info.run_id), settings, example_users)
        log_metrics(record.metrics, model_id)
    tag_version(client, settings, version, version_tags)
    return version, run.info.run_id


def start_run(settings: Settings, run_name: str, params: dict[str, Any]) -> str:
    """A run opened through an explicit client (not MLflow's thread-local active run), so
    tasks running side by side can log children to it; returns its id."""
    client = connect(settings)
    experiment = client.get_experiment_by_name(settings.experiment_name)
    if experiment is None:  # connect() creates it: only a store that lost it gets here
        raise RuntimeError(f"MLflow experiment {settings.experiment_name!r} not found")
    run = client.create_run(experiment.experiment_id, run_name=run_name)
    client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
    return str(run.info.run_id)


def log_trial(
    settings: Settings,
    parent: str,
    run_name: str,
    params: dict[str, Any],
    metric: str,
    curve: list[tuple[int, float]],
    best_epoch: int,
) -> None:
    """One trial of a search as a finished child run of ``parent``: its parameters and its
    validation curve (``metric`` by epoch)."""
    client = MlflowClient(settings.tracking_uri, settings.mlflow_registry_uri)
    experiment_id = client.get_run(parent).info.experiment_id
    run = client.create_run(experiment_id, run_name=run_name, tags={"mlflow.parentRunId": parent})
    client.log_batch(
        run.info.run_id,
        params=[Param(k, str(v)) for k, v in params.items()],
        metrics=[Metric(metric, s, 0, epoch) for epoch, s in curve]
        + [Metric("best_epoch", best_epoch, 0, 0)],
    )
    client.set_terminated(run.info.run_id)


def finish_run(
    settings: Settings, run_id: str, metrics: dict[str, float], dicts: dict[str, dict]
) -> None:
    """Log final metrics and JSON documents to a run opened by :func:`start_run`; close it."""
    client = MlflowClient(settings.tracking_uri, settings.mlflow_registry_uri)
    client.log_batch(run_id, metrics=[Metric(k, float(v), 0, 0) for k, v in metrics.items()])
    for name, value in dicts.items():
        client.log_dict(run_id, value, name)
    client.set_terminated(run_id)


def metric_name(name: str) -> str:
    """``name`` with what MLflow refuses in a metric name replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def log_report(
    settings: Settings,
    run_name: str,
    record: RunRecord,
    directory: Path | None = None,
    artifact_path: str | None = None,
) -> str:
    """A run holding ``record`` and a report's files (``directory``, if any); returns the
    run id."""
    connect(settings)
    metrics = {metric_name(k): v for k, v in record.metrics.items()}
    with mlflow.start_run(run_name=run_name) as run:
        log_run_data(replace(record, metrics=metrics))
        if directory is not None:
            mlflow.log_artifacts(str(directory), artifact_path=artifact_path)
    return str(run.info.run_id)


def log_model(bundle: Bundle, settings: Settings, example_users: list[str]) -> tuple[str, str]:
    """Log the pyfunc with a signature and register it; returns the new version number and
    the logged model's id."""
    with tempfile.TemporaryDirectory() as tmp:
        path = bundle.save(Path(tmp) / "bundle.pkl")
        example = pd.DataFrame(
            {"user_id": example_users[:3], "k": [10] * min(3, len(example_users))}
        )
        signature = infer_signature(example, predict_frame(bundle, example))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(MODEL_CODE),
            code_paths=CODE_PATHS,
            artifacts={ARTIFACT: str(path)},
            signature=signature,
            input_example=example,
            pip_requirements=pip_requirements(),
            # A directory without uv.lock: MLflow would otherwise copy the platform's whole
            # lock file (Prefect, Evidently, ...) into the version, beside its own pins.
            uv_project_path=tmp,
            registered_model_name=settings.registered_model,
        )
    return str(info.registered_model_version), str(info.model_id)


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
    return {"version": str(mv.version), "run_id": mv.run_id or "", "created_at": created, **mv.tags}


def describe_version(settings: Settings, version: str) -> dict[str, str]:
    client = connect(settings)
    mv = client.get_model_version(settings.registered_model, version)
    return {"version": str(mv.version), "run_id": mv.run_id or "", **mv.tags}


def run_metrics(settings: Settings, run_id: str, names: list[str]) -> dict[str, float]:
    """The named metrics of an MLflow run (those it logged)."""
    logged = connect(settings).get_run(run_id).data.metrics
    return {name: float(logged[name]) for name in names if name in logged}
