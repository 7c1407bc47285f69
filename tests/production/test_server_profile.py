"""The production profile end to end, as infra/docker-compose.yml runs it: PostgreSQL
from Debian's packages set up as the compose file's image does; the compose file's
services started in its order, each with its own command and environment, as processes
on loopback (tests/production/compose.py): Prefect and MLflow servers, `bootstrap` (the
first champion), `deploy`, a worker, the service, the Evidently UI; then the champion in
the MLflow server's registry, events streamed to the service into PostgreSQL, and the
drift event starting a run of `pipeline/nightly` through the server's trigger, on the
worker, with the config tuned after `deploy` and the streamed events."""

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
from tests.production import compose
from tests.production.services import BIN, Postgres, Service, clean_env

SHOP = ["--users", "400", "--items", "240", "--seed", "3"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """PostgreSQL as the compose file's image sets it up (its user, infra/postgres/init.sql
    on an empty cluster), then the compose file's Prefect and MLflow servers."""
    root = tmp_path_factory.mktemp("production")
    pg = Postgres()
    services: list[Service] = []
    try:
        pg.superuser("cartlift")
        pg.script(compose.COMPOSE.parent / "postgres" / "init.sql", "cartlift")
        local = compose.Local(compose.read(), pg.port, root)

        def start(name: str) -> Service:
            service = Service(name, local.command(name), local.env(name, clean_env()), root)
            services.append(service)
            return service

        start("prefect-server").wait_http(local.url("prefect-server", "4200", "/api/health"))
        start("mlflow").wait_http(local.url("mlflow", "5000", "/health"))
        env = local.env("bootstrap", clean_env())  # what every cartlift container has
        yield {
            "api": local.url("prefect-server", "4200", "/api"),
            "env": env,
            "root": root,
            "home": Path(local.volumes["/data/cartlift"]),
            "shop": Path(local.volumes["/data/shop"]),
            "local": local,
            "start": start,
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


def test_the_compose_stack_starts_in_order_and_serves_a_bootstrapped_champion(stack):
    """The compose file's services in its start order, each with its own command and
    environment: bootstrap trains the first champion on the mounted shop, deploy registers
    the deployments, the worker waits for runs, and the service answers /recommend with
    the bootstrapped champion; the Evidently UI is up."""
    local, env, start = stack["local"], stack["env"], stack["start"]
    order = compose.start_order(local.services)
    assert order.index("bootstrap") < min(order.index("deploy"), order.index("serving"))
    shop = stack["shop"]  # the shop-data volume, with the shop's files mounted in it
    sh([str(BIN / "cartlift"), "generate", "--out", str(shop), *SHOP], env)
    first = sh(local.command("bootstrap"), local.env("bootstrap", clean_env()))
    assert (
        f"First pipeline on {shop}" in first
        and "Champion: cartlift-recommender@champion = version 1" in first
    )
    again = sh(local.command("bootstrap"), local.env("bootstrap", clean_env()))
    assert "A champion exists (version 1): nothing to bootstrap." in again
    out = sh(local.command("deploy"), local.env("deploy", clean_env()))
    assert "pipeline/nightly" in out and "on cartlift.drift.detected" in out
    assert "tune/weekly" in out and "monitor/hourly" in out and "experiment/hourly" in out
    again = sh(local.command("deploy"), local.env("deploy", clean_env()))
    assert "exists" in again  # idempotent: same pool, same deployments, one automation
    automations = httpx.post(f"{stack['api']}/automations/filter", json={}, timeout=30).json()
    assert [a["name"] for a in automations] == ["retrain on drift"]
    # Deployed runs find the code where the image keeps it (CARTLIFT_CODE_DIR=/app, here
    # the checkout), not where `cartlift deploy` ran.
    nightly = httpx.get(f"{stack['api']}/deployments/name/pipeline/nightly", timeout=30).json()
    (step,) = nightly["pull_steps"]
    where = step["prefect.deployments.steps.set_working_directory"]["directory"]
    assert where == str(compose.CODE) == local.text("/app")
    stack["worker"] = start("prefect-worker")
    serving = start("serving")
    serving.wait_http(local.url("serving", "3000", "/readyz"), 300)
    answer = httpx.post(
        local.url("serving", "3000", "/recommend"), json={"user_id": "u000003", "k": 5}, timeout=30
    )
    assert answer.status_code == 200 and answer.json()["model_version"] == "1", answer.text
    assert len(answer.json()["items"]) == 5
    start("evidently-ui").wait_http(local.url("evidently-ui", "8000", "/"), 120)
    print(f"compose services started in order: {order}")


def test_deploy_run_register_and_trigger_on_drift(stack):
    env, api, home = stack["env"], stack["api"], stack["home"]
    worker = stack["worker"]
    # The bootstrapped champion, as the CLI shows it from the MLflow server's registry.
    client = MlflowClient(tracking_uri=stack["tracking"])
    champion = client.get_model_version_by_alias("cartlift-recommender", "champion")
    assert str(champion.version) == "1" and champion.tags["dataset"] == "shop"
    assert "version: 1" in sh([str(BIN / "cartlift"), "champion"], env)

    # The shop streams events to the service; they land in PostgreSQL, and the next
    # pipeline run (the one the drift event starts below) reads them.
    streamed = live_events_sent(env, stack["local"].url("serving", "3000"), stack["shop"])

    # A config tuned after `cartlift deploy` reaches the next deployed run: runs resolve
    # their config when they start, nothing is frozen into the deployment.
    tuned = RunConfig(dataset="shop", train=TrainConfig(epochs=7))
    write_tuned_config(Settings(home=home), tuned)

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
        len(runs) == 1 and runs[0]["state_type"] in ("COMPLETED", "FAILED", "CRASHED")
    ):
        time.sleep(3)
        runs = pipeline_runs(api)
    assert len(runs) == 1, f"no run triggered by the drift event:\n{worker.tail()}"
    (triggered,) = runs  # a run of pipeline/nightly, started by the server's automation
    assert triggered["state_type"] == "COMPLETED", worker.tail()
    versions = client.search_model_versions("name='cartlift-recommender'")
    assert len(versions) == 2  # the triggered run registered a version; the gate decided
    epochs = [
        client.get_run(v.run_id).data.params["train.epochs"]
        for v in sorted(versions, key=lambda v: int(v.version))
    ]
    assert epochs == [str(RunConfig().train.epochs), "7"]
    lake = pd.read_parquet(home / "lake" / "shop" / "events.parquet")
    live = lake[lake["user_id"].str.startswith("live-visitor")]
    assert len(live) == len(streamed)  # the triggered run took the streamed events


def live_events_sent(env: dict[str, str], service: str, shop: Path) -> list[dict]:
    """Send a batch to the compose file's service's /events twice (a retry), and check
    that PostgreSQL holds each event once. Returns the events sent."""
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
    for _ in range(2):
        ack = httpx.post(f"{service}/events", json={"events": sent}, timeout=30)
        assert ack.status_code == 200, ack.text
    assert ack.json()["duplicates"] == len(sent)
    stored = live_events.read(live_events.connect(env["CARTLIFT_EVENTS_URI"]))
    assert sorted(stored["event_id"]) == sorted(e["event_id"] for e in sent)
    return sent
