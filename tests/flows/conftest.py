"""The real Prefect engine (a temporary server for the session) and a fresh state home."""

from __future__ import annotations

import pytest
from prefect.testing.utilities import prefect_test_harness


@pytest.fixture(scope="session", autouse=True)
def prefect_engine():
    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """CARTLIFT_HOME for one test module: its own lake, MLflow store and reports."""
    path = tmp_path_factory.mktemp("cartlift-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("CARTLIFT_HOME", str(path))
    yield path
    mp.undo()
