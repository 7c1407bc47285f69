"""Deployments on a Prefect server: what runs when, on which work pool.

- ``pipeline/nightly``: the whole training loop every night (cron), and whenever the
  monitor emits ``cartlift.drift.detected`` (a deployment trigger, i.e. a Prefect
  automation); one run at a time.
- ``monitor/hourly``: the drift and quality checks every hour. Deployed without data,
  it reports and emits the event; the trigger above starts the retraining.
- ``experiment/hourly``: one look at the running online experiment every hour (half
  past): promote the challenger, stop it or continue; nothing when none runs.

Registering is idempotent: deployments are upserted by name, the work pool is created
only when missing. Flows run from this project's directory on a ``process`` work pool;
the worker must run in the project's environment (``uv run prefect worker start``). With
``CARTLIFT_CODE_DIR`` (the image's ``/app``), runs look for the code there instead, so
they do not depend on where ``cartlift deploy`` ran (a laptop's checkout, a Job's image).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.events import DeploymentEventTrigger
from prefect.exceptions import ObjectNotFound
from prefect.runner.storage import LocalStorage

from flows.experiment import experiment
from flows.monitor import EVENT, monitor
from flows.pipeline import pipeline
from flows.tune import tune
from infra.settings import Settings
from models.config import has_password

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
NIGHTLY = "0 2 * * *"
HOURLY = "0 * * * *"
WEEKLY = "0 3 * * 0"  # Sundays 03:00, after the nightly run
HALF_PAST = "30 * * * *"  # experiment looks, away from the monitor's hour


@dataclass(frozen=True)
class Registered:
    name: str  # flow/deployment
    id: UUID
    schedule: str
    trigger: str | None


async def _ensure_pool(name: str) -> bool:
    """Create the process work pool unless it exists; True when it was created."""
    async with get_client() as client:
        try:
            await client.read_work_pool(name)
            return False
        except ObjectNotFound:
            await client.create_work_pool(WorkPoolCreate(name=name, type="process"))
            return True


def _env(settings: Settings) -> dict[str, str]:
    """Where the flow runs keep their state: the deploying side's settings, so a worker
    started elsewhere uses the same lake, registry and reports.

    A URI carrying a password is left out (the Prefect server would store it in clear):
    the worker's own environment must then provide it."""
    env = {"CARTLIFT_HOME": str(settings.home)}
    for name, uri in (
        ("CARTLIFT_MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri),
        ("CARTLIFT_MLFLOW_REGISTRY_URI", settings.mlflow_registry_uri),
    ):
        if uri and has_password(uri):
            log.warning(
                "%s carries a password: not stored in the deployments; set it in the "
                "worker's environment instead",
                name,
            )
        elif uri:
            env[name] = uri
    return env


def deploy(
    settings: Settings,
    dataset: str,
    data: str,
    fmt: str = "contract",
    config_file: str | None = None,
    pool: str = "cartlift",
) -> tuple[bool, list[Registered]]:
    """Register (or update) the deployments of one dataset; returns whether the pool was
    created and what was registered.

    No run config is frozen into them: each run resolves its own when it starts
    (``config_file`` if given, else the dataset's tuned config, else the defaults), so the
    config ``tune/weekly`` writes reaches the next ``pipeline/nightly``."""
    created = asyncio.run(_ensure_pool(pool))
    # Built and applied directly (not Flow.deploy, which is about building and pushing
    # images): a process pool runs the code from this directory, in place.
    common = {"work_pool_name": pool, "job_variables": {"env": _env(settings)}}
    source = {"data": data, "fmt": fmt, "dataset": dataset, "config_file": config_file}
    retrain = DeploymentEventTrigger(
        name="retrain on drift",
        expect={EVENT},
        match={"prefect.resource.id": f"cartlift.model.{settings.registered_model}"},
    )
    planned = [
        pipeline.from_source(str(ROOT), "flows/pipeline.py:pipeline").to_deployment(
            name="nightly",
            cron=NIGHTLY,
            parameters=source,
            triggers=[retrain],
            concurrency_limit=1,
            description="Ingest, features, train, evaluate; the quality gate moves the champion.",
            **common,
        ),
        monitor.from_source(str(ROOT), "flows/monitor.py:monitor").to_deployment(
            name="hourly",
            cron=HOURLY,
            parameters={"fmt": fmt, "dataset": dataset, "config_file": config_file},
            description="Drift and quality reports; emits cartlift.drift.detected when due.",
            **common,
        ),
        experiment.from_source(str(ROOT), "flows/experiment.py:experiment").to_deployment(
            name="hourly",
            cron=HALF_PAST,
            parameters={"dataset": dataset},
            concurrency_limit=1,
            description="One look at the running online experiment: promote, stop or continue.",
            **common,
        ),
        tune.from_source(str(ROOT), "flows/tune.py:tune").to_deployment(
            name="weekly",
            cron=WEEKLY,
            parameters=source,
            concurrency_limit=1,
            description="Hyperparameter search; the best config becomes the dataset's default "
            "(the next pipeline run resolves it).",
            **common,
        ),
    ]
    if settings.code_dir:  # the workers' copy of the code (an image), not this checkout
        for deployment in planned:
            deployment.storage = LocalStorage(settings.code_dir)
    ids = [deployment.apply(work_pool_name=pool) for deployment in planned]
    return created, [
        Registered("pipeline/nightly", ids[0], NIGHTLY, f"on {EVENT}"),
        Registered("monitor/hourly", ids[1], HOURLY, None),
        Registered("experiment/hourly", ids[2], HALF_PAST, None),
        Registered("tune/weekly", ids[3], WEEKLY, None),
    ]
