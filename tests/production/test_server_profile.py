"""The production profile end to end, following the README's production section:
PostgreSQL from Debian's packages; a Prefect server and an MLflow tracking server on it;
`cartlift deploy`; a worker; `pipeline` run through the server's API; the champion in the
MLflow server's registry; the drift event starting `pipeline` through its trigger."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from mlflow import MlflowClient

from infra import events as live_events
from infra.settings import Settings, write_tuned_config
from models.config import RunConfig, TrainConfig
from tests.production.services import BIN, Postgres, Service, clean_env, free_port
from tests.serving.server import running

SHOP = ["--users", "400", "--items", "240", "--seed", "3"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("production")
    pg = Postgres()
    services: list[Service] = []
    try:
        pg.create("prefect", "mlflow", "events")
        prefect_port, mlflow_port = free_port(), free_port()
        prefect = Service(
            "prefect-server",
            [
                str(BIN / "prefect"),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(prefect_port),
            ],
            clean_env(
                PREFECT_HOME=str(root / "prefect-server"),
                PREFECT_API_DATABASE_CONNECTION_URL=pg.url("prefect", "asyncpg"),
                PREFECT_UI_ENABLED="false",
            ),
            root,
        )
        services.append(prefect)
        mlflow = Service(
            "mlflow-server",
            [
                str(BIN / "mlflow"),
                "server",
                "--backend-store-uri",
                pg.url("mlflow"),
                "--artifacts-destination",
                str(root / "mlartifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(mlflow_port),
                "--workers",
                "1",
            ],
            clean_env(),
            root,
        )
        services.append(mlflow)
        api = f"http://127.0.0.1:{prefect_port}/api"
        prefect.wait_http(f"{api}/health")
        mlflow.wait_http(f"http://127.0.0.1:{mlflow_port}/health")
        env = clean_env(
            PREFECT_API_URL=api,
            PREFECT_HOME=str(root / "prefect-client"),
            CARTLIFT_HOME=str(root / "cartlift"),
            CARTLIFT_MLFLOW_TRACKING_URI=f"http://127.0.0.1:{mlflow_port}",
            CARTLIFT_EVENTS_URI=pg.url("events", "psycopg"),
        )
        yield {
            "api": api,
            "env": env,
            "root": root,
            "services": services,
            "tracking": env["CARTLIFT_MLFLOW_TRACKING_URI"],
        }
    finally:
        for service in reversed(services):
            service.stop()
        pg.stop()


def sh(args: list[str], env: dict[str, str], timeout: float = 900) -> str:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def pipeline_runs(api: str) -> list[dict]:
    body = {"deployments": {"name": {"any_": ["nightly"]}}, "sort": "START_TIME_DESC", "limit": 50}
    response = httpx.post(f"{api}/flow_runs/filter", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def test_deploy_run_register_and_trigger_on_drift(stack):
    env, api, root = stack["env"], stack["api"], stack["root"]
    shop = root / "shop"
    sh([str(BIN / "cartlift"), "generate", "--out", str(shop), *SHOP], env)
    out = sh([str(BIN / "cartlift"), "deploy", "--data", str(shop)], env)
    assert "pipeline/nightly" in out and "on cartlift.drift.detected" in out
    assert "tune/weekly" in out and "monitor/hourly" in out and "experiment/hourly" in out
    again = sh([str(BIN / "cartlift"), "deploy", "--data", str(shop)], env)
    assert "exists" in again  # idempotent: same pool, same deployments, one automation
    automations = httpx.post(f"{api}/automations/filter", json={}, timeout=30).json()
    assert [a["name"] for a in automations] == ["retrain on drift"]

    worker = Service(
        "worker",
        [str(BIN / "prefect"), "worker", "start", "--pool", "cartlift"],
        {**env, "PREFECT_HOME": str(root / "prefect-worker")},
        root,
    )
    stack["services"].append(worker)
    # Through the server's API (the CLI posts a run of the deployment and watches it).
    sh(
        [
            str(BIN / "prefect"),
            "deployment",
            "run",
            "pipeline/nightly",
            "--watch",
            "--watch-timeout",
            "600",
        ],
        env,
    )
    (first,) = pipeline_runs(api)
    assert first["state_type"] == "COMPLETED", worker.tail()

    assert "version: 1" in sh([str(BIN / "cartlift"), "champion"], env)
    client = MlflowClient(tracking_uri=stack["tracking"])
    champion = client.get_model_version_by_alias("cartlift-recommender", "champion")
    assert champion.version in (1, "1") and champion.tags["dataset"] == "shop"

    # The shop streams events to the service; they land in PostgreSQL, and the next
    # pipeline run (the one the drift event starts below) reads them.
    streamed = live_events_sent(env, root / "cartlift", shop)

    # A config tuned after `cartlift deploy` reaches the next deployed run: runs resolve
    # their config when they start, nothing is frozen into the deployment.
    tuned = RunConfig(dataset="shop", train=TrainConfig(epochs=7))
    write_tuned_config(Settings(home=root / "cartlift"), tuned)

    sh(
        [
            str(BIN / "prefect"),
            "event",
            "emit",
            "cartlift.drift.detected",
            "--resource-id",
            "cartlift.model.cartlift-recommender",
            "--payload",
            json.dumps({"reasons": ["data drift (integration test)"]}),
        ],
        env,
    )
    deadline = time.time() + 600
    runs = pipeline_runs(api)
    while time.time() < deadline and not (
        len(runs) == 2 and runs[0]["state_type"] in ("COMPLETED", "FAILED", "CRASHED")
    ):
        time.sleep(3)
        runs = pipeline_runs(api)
    assert len(runs) == 2, f"no run triggered by the drift event:\n{worker.tail()}"
    triggered = runs[0]
    assert triggered["state_type"] == "COMPLETED", worker.tail()
    versions = client.search_model_versions("name='cartlift-recommender'")
    assert len(versions) == 2  # the triggered run registered a version; the gate decided
    epochs = [
        client.get_run(v.run_id).data.params["train.epochs"]
        for v in sorted(versions, key=lambda v: int(v.version))
    ]
    assert epochs == [str(RunConfig().train.epochs), "7"]
    lake = pd.read_parquet(root / "cartlift" / "lake" / "shop" / "events.parquet")
    live = lake[lake["user_id"].str.startswith("live-visitor")]
    assert len(live) == len(streamed)  # the triggered run took the streamed events


def live_events_sent(env: dict[str, str], home: Path, shop: Path) -> list[dict]:
    """Start the service on the production settings, send a batch to /events twice (a
    retry), and check that PostgreSQL holds each event once. Returns the events sent."""
    items = pd.read_csv(shop / "items.csv")["item_id"].astype(str).head(5)
    sent = [
        {
            "event_id": f"prod-{n}",
            "user_id": f"live-visitor-{n % 2}",
            "item_id": item,
            "event_type": "view",
            "timestamp": pd.Timestamp.now("UTC").strftime("%Y-%m-%dT%H:%M:%S"),
            "session_id": "prod-session",
        }
        for n, item in enumerate(items)
    ]
    keep = ("CARTLIFT_MLFLOW_TRACKING_URI", "CARTLIFT_EVENTS_URI")
    with running(home, **{k: env[k] for k in keep}) as server:
        for _ in range(2):
            ack = server.client.post("/events", json={"events": sent})
            assert ack.status_code == 200, ack.text
        assert ack.json()["duplicates"] == len(sent)
    stored = live_events.read(live_events.connect(env["CARTLIFT_EVENTS_URI"]))
    assert sorted(stored["event_id"]) == sorted(e["event_id"] for e in sent)
    return sent
