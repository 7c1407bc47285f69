"""Faults the service must survive, on the real `bentoml serve` with production options on
(two workers, an API key, pseudonymised customer ids).

Each test names the promise it checks: a killed worker is replaced on its own; a corrupt
or missing champion leaves the previous model serving (not-ready only with none at all);
a full disk loses prediction log records counted and reported, never a request; raw
customer ids never reach MLflow, the prediction log or the monitoring reports.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import httpx
import mlflow
import psutil
import pytest
from mlflow import MlflowClient

from flows.monitor import monitor
from flows.pipeline import pipeline
from infra.lake import write_shop
from infra.registry import ARTIFACT, CODE_PATHS, MODEL_CODE, connect
from infra.settings import Settings
from models.config import FeatureConfig, GateConfig, RunConfig, TrainConfig
from models.data.contract import pseudonym
from tests.serving.server import Server, running, wait_ready

# The tiny shop's model is the served answer here: held against best sellers only, not
# the strongest baseline, which on 400 customers it does not beat by the gate's margin
# (the fallback to a baseline is tested in tests/serving/test_baseline.py).
FAST = RunConfig(
    features=FeatureConfig(holdout_days=14),
    train=TrainConfig(no_components=16, epochs=10),
    gate=GateConfig(against=("popularity",)),
)
SECRET = "pseudonym-test-key"
API_KEY = "fault-test-admin-key"
PRODUCTION = {
    "CARTLIFT_SERVING__WORKERS": "2",
    "CARTLIFT_API_KEY": API_KEY,
    "CARTLIFT_PSEUDONYMISE_KEY": SECRET,
}
RAW_ID = re.compile(rb"u\d{6}")  # the tiny shop's customer ids; pseudonyms are c_<hex>


@pytest.fixture(scope="module")
def shop(home, tiny_shop, tmp_path_factory):
    """A champion trained on pseudonymised ids."""
    source = tmp_path_factory.mktemp("shop")
    write_shop(tiny_shop, source)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CARTLIFT_PSEUDONYMISE_KEY", SECRET)
        assert pipeline(str(source), "contract", None, FAST).decision.promote
    return home, tiny_shop


@pytest.fixture(scope="module")
def service(shop) -> Server:
    home, _ = shop
    with running(home, **PRODUCTION) as server:
        yield server


def workers(server_pid: int) -> set[int]:
    """The service's request workers (not the arbiter, not the champion watchers)."""
    found = set()
    for child in psutil.Process(server_pid).children(recursive=True):
        try:
            if "_bentoml_impl.worker" in " ".join(child.cmdline()):
                found.add(child.pid)
        except psutil.NoSuchProcess:
            pass
    return found


def ask(client: httpx.Client, user: str = "u000003") -> httpx.Response:
    return client.post("/recommend", json={"user_id": user, "k": 5})


def log_counts(client: httpx.Client) -> dict[str, float]:
    """The prediction log counter from /metrics, summed over the workers."""
    counts = {"written": 0.0, "lost": 0.0}
    for line in client.get("/metrics").text.splitlines():
        match = re.match(r'cartlift_prediction_log_records_total\{outcome="(\w+)"\} (\S+)', line)
        if match:
            counts[match[1]] += float(match[2])
    return counts


def test_raw_ids_and_secrets_never_reach_mlflow_the_prediction_log_or_reports(shop, service):
    home, tiny = shop
    client = service.client
    raw = set(tiny.users["user_id"].astype(str))
    user = "u000003"
    answer = ask(client, user).json()
    assert not answer["cold_start"], "the raw id must find the pseudonymised customer"
    click = {
        "request_id": answer["request_id"],
        "user_id": user,
        "item_id": answer["items"][0]["item_id"],
        "event": "click",
    }
    assert client.post("/feedback", json=click, headers={"x-api-key": API_KEY}).status_code == 200
    time.sleep(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CARTLIFT_PSEUDONYMISE_KEY", SECRET)
        monitor(config=FAST)
    logged = b"".join(p.read_bytes() for p in (home / "predictions").rglob("*.jsonl"))
    assert pseudonym(user, SECRET).encode() in logged
    reports = list((home / "reports").rglob("*.*"))
    assert reports, "the monitor wrote no reports"
    stores = [home / "mlflow.db", *(home / "mlflow-artifacts").rglob("*")]
    for name, paths in {
        "prediction log": (home / "predictions").rglob("*.jsonl"),
        "reports": reports,
        "MLflow": stores,
    }.items():
        found = {
            m.decode()
            for path in paths
            if Path(path).is_file()
            for m in RAW_ID.findall(Path(path).read_bytes())
        }
        assert not found & raw, f"raw customer ids in the {name}: {sorted(found & raw)[:5]}"
    # Neither secret is written anywhere: stores, logs, reports, the lake.
    written = [p for p in home.rglob("*") if p.is_file()]
    for secret in (SECRET, API_KEY):
        leaks = [str(p) for p in written if secret.encode() in p.read_bytes()]
        assert not leaks, f"a secret was written to {leaks[:3]}"


def test_a_killed_worker_is_replaced_and_few_requests_fail(service):
    client, server_pid = service.client, service.proc.pid
    before = workers(server_pid)
    assert len(before) == 2, before
    outcomes: list[int] = []  # status codes; 0 for a dropped connection
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=10) as c:
            while not stop.is_set():
                try:
                    outcomes.append(ask(c).status_code)
                except httpx.TransportError:
                    outcomes.append(0)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(2)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    deadline = time.time() + 60
    while time.time() < deadline and len(workers(server_pid) - before) < 1:
        time.sleep(0.5)
    replaced = workers(server_pid)
    time.sleep(5)  # the new worker loads the champion; load keeps running meanwhile
    stop.set()
    for t in threads:
        t.join()
    failed = sum(code != 200 for code in outcomes)
    print(f"SIGKILL of worker {victim}: {failed} of {len(outcomes)} requests failed")
    assert victim not in replaced and len(replaced) == 2, (before, replaced)
    assert failed <= max(10, len(outcomes) // 50), f"{failed} of {len(outcomes)} failed"
    assert all(ask(client).status_code == 200 for _ in range(40))


def test_a_full_disk_loses_log_records_counted_and_no_request(shop, service):
    home, _ = shop
    client, server_pid = service.client, service.proc.pid
    day = home / "predictions" / f"date={time.strftime('%Y-%m-%d', time.gmtime())}"
    day.mkdir(parents=True, exist_ok=True)
    time.sleep(1)
    before = log_counts(client)
    parts = [day / f"part-{pid}.jsonl" for pid in workers(server_pid)]
    for part in parts:  # every write to /dev/full fails with ENOSPC: a full disk
        if part.exists():
            part.rename(part.with_suffix(".kept"))
        part.symlink_to("/dev/full")
    try:
        assert all(ask(client).status_code == 200 for _ in range(40))
        time.sleep(1.5)
        during = log_counts(client)
    finally:
        for part in parts:
            part.unlink()
            if part.with_suffix(".kept").exists():
                part.with_suffix(".kept").rename(part)
    assert during["lost"] - before["lost"] == 40
    assert all(ask(client).status_code == 200 for _ in range(10))
    time.sleep(1.5)
    after = log_counts(client)
    assert after["written"] - during["written"] == 10 and after["lost"] == during["lost"]
    logs = service.log.read_text()
    assert "records lost writing" in logs and "No space left on device" in logs


def corrupt_version(settings: Settings, tmp: Path) -> str:
    """Register a version whose model artifact is not a model (a damaged upload)."""
    garbage = tmp / "bundle.pkl"
    garbage.write_bytes(b"\x80\x05 not a pickle" * 10)
    connect(settings)
    with mlflow.start_run(run_name="corrupt-upload"):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(MODEL_CODE),
            code_paths=CODE_PATHS,
            artifacts={ARTIFACT: str(garbage)},
            registered_model_name=settings.registered_model,
        )
    return str(info.registered_model_version)


def test_a_corrupt_or_missing_champion_keeps_the_previous_model(shop, service, tmp_path):
    home, _ = shop
    client = service.client
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CARTLIFT_HOME", str(home))
        settings = Settings()
        registry = MlflowClient(tracking_uri=settings.tracking_uri)
        name, alias = settings.registered_model, settings.champion_alias
        corrupt = corrupt_version(settings, tmp_path)
        missing = registry.create_model_version(name, str(tmp_path / "deleted"), None).version
        for bad in (corrupt, str(missing)):
            registry.set_registered_model_alias(name, alias, bad)
            time.sleep(4)  # several polls of the alias
            assert client.post("/metadata", json={}).json()["model_version"] == "1"
            assert client.get("/readyz").status_code == 200 and ask(client).status_code == 200
        registry.set_registered_model_alias(name, alias, "1")
    logs = service.log.read_text()
    assert f"Loading champion version {corrupt} failed; still serving version 1" in logs


def test_with_no_loadable_model_the_service_is_not_ready_until_one_is(shop, tmp_path):
    home, _ = shop
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CARTLIFT_HOME", str(home))
        mp.setenv("CARTLIFT_REGISTERED_MODEL", "cartlift-damaged")
        settings = Settings()
        corrupt = corrupt_version(settings, tmp_path)
        registry = MlflowClient(tracking_uri=settings.tracking_uri)
        registry.set_registered_model_alias("cartlift-damaged", "champion", corrupt)
        env = {**PRODUCTION, "CARTLIFT_REGISTERED_MODEL": "cartlift-damaged"}
        with running(home, ready=False, **env) as damaged:
            client = damaged.client
            time.sleep(3)
            probe = client.get("/readyz")  # the probe names the cause too, in JSON
            assert probe.status_code == 503 and probe.headers["retry-after"] == "1"
            assert probe.json()["cause"].startswith(f"the champion (version {corrupt}) failed")
            refused = ask(client)  # a JSON body naming the cause, not "unexpected error"
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
            assert refused.json()["cause"].startswith(f"the champion (version {corrupt}) failed")
            assert client.post("/metadata").json()["error"] == "no model is being served"
            assert client.get("/healthz").status_code == 200  # alive, only not ready
            registry.delete_registered_model_alias("cartlift-damaged", "champion")
            deadline = time.time() + 30
            while "no champion yet" not in ask(client).json()["cause"] and time.time() < deadline:
                time.sleep(0.5)
            assert "run `cartlift pipeline`" in ask(client).json()["cause"]
            good = registry.copy_model_version(
                "models:/cartlift-recommender/1", "cartlift-damaged"
            ).version
            registry.set_registered_model_alias("cartlift-damaged", "champion", str(good))
            assert wait_ready(client, damaged.proc, damaged.log, 60)
            assert ask(client).json()["model_version"] == str(good)
