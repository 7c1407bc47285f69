"""Start the real service (`bentoml serve`) on a free port for a test, and stop it."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from models.config import FeatureConfig, GateConfig, RunConfig, TrainConfig
from serving.launch import command

# The tiny shop's model is the served answer in these tests: held against best sellers
# only, not the strongest baseline, which on 400 customers it does not beat by the gate's
# margin (the fallback to a baseline is tested in tests/serving/test_baseline.py).
FAST = RunConfig(
    features=FeatureConfig(holdout_days=14),
    train=TrainConfig(no_components=16, epochs=10),
    gate=GateConfig(against=("popularity",)),
)
API_KEY = "test-admin-key"
KEY = {"x-api-key": API_KEY}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(client: httpx.Client, proc: subprocess.Popen, log: Path, seconds: float) -> bool:
    """True once /readyz answers 200; False when ``seconds`` pass first."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if client.get("/readyz").status_code == 200:
                return True
        except httpx.TransportError:
            pass
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.5)
    return False


@dataclass
class Server:
    client: httpx.Client
    proc: subprocess.Popen
    log: Path


@contextmanager
def running(home: Path, ready: bool = True, **env: str) -> Iterator[Server]:
    """The service on ``home`` with extra environment ``env``.

    With ``ready`` it waits for /readyz, else only for the port to answer at all."""
    port = free_port()
    full = {
        **os.environ,
        "CARTLIFT_HOME": str(home),
        "BENTOML_HOME": str(home / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
        "CARTLIFT_SERVING__RELOAD_SECONDS": "1",
        "CARTLIFT_SERVING__LOG_FLUSH_SECONDS": "0.2",
        **env,
    }
    log = home / f"server-{port}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            command("127.0.0.1", port), env=full, stdout=out, stderr=subprocess.STDOUT
        )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        if ready and not wait_ready(client, proc, log, 120):
            pytest.fail("service not ready in 120 s:\n" + log.read_text()[-3000:])
        if not ready:
            deadline = time.time() + 120
            while time.time() < deadline:
                try:
                    client.get("/healthz")
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, log.read_text()[-3000:]
                    time.sleep(0.5)
        yield Server(client, proc, log)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        client.close()
