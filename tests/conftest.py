"""Shared fixtures: a tiny shop with known structure, isolated state directories."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings
from prefect.testing.utilities import prefect_test_harness

from models.config import ShopConfig, TuneConfig
from models.data.adapters import RawTables
from models.data.shop import Shop, generate

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# The blend's customer signals off: a weak model served alone, which the gate must refuse
# (the signals would carry even a barely trained one past a good champion).
MODEL_ALONE = TuneConfig(mix_again=(0.0,), mix_interest=(0.0,), mix_neighbours=(0.0,))
TINY_SHOP = ShopConfig(
    n_users=400, n_items=240, n_categories=9, days=120, cold_days=14, sessions_per_user=14
)


def as_raw(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame as ingestion reads a file: text columns, empty for missing, plus ``_row``."""
    raw = frame.astype(object).where(frame.notna(), None).astype("string")
    raw["_row"] = np.arange(1, len(raw) + 1).astype(str)
    return raw


@pytest.fixture(scope="session")
def tiny_shop() -> Shop:
    return generate(TINY_SHOP)


@pytest.fixture(scope="session")
def tiny_raw(tiny_shop: Shop) -> RawTables:
    return RawTables(
        events=as_raw(tiny_shop.events),
        items=as_raw(tiny_shop.items),
        users=as_raw(tiny_shop.users),
        sources={"events": "events.csv", "items": "items.csv", "users": "users.csv"},
    )


@pytest.fixture(scope="session")
def prefect_engine(tmp_path_factory):
    """The real Prefect engine with a temporary server, once per test session; cached task
    results go to a temporary directory, not the user's ~/.prefect."""
    storage = tmp_path_factory.mktemp("prefect-storage")
    with (
        prefect_test_harness(server_startup_timeout=180),
        temporary_settings({PREFECT_LOCAL_STORAGE_PATH: str(storage)}),
    ):
        yield


@pytest.fixture(scope="module")
def home(tmp_path_factory, prefect_engine):
    """CARTLIFT_HOME for one test module: its own lake, MLflow store and reports."""
    path = tmp_path_factory.mktemp("cartlift-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("CARTLIFT_HOME", str(path))
    yield path
    mp.undo()


def prefect_artifacts(*keys: str) -> dict:
    """The latest Prefect artifacts with these keys (what a flow run's page shows), by key."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as prefect:
        found = prefect.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=list(keys)))
        )
    return {a.key: a for a in found}
