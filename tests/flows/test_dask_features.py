"""Feature building on a real local Dask cluster, through Prefect's DaskTaskRunner, gives
exactly the features of the single-process path; and the partitioned combination is
exact on its own (no Dask)."""

from __future__ import annotations

import numpy as np
import pytest
from distributed import LocalCluster

from flows.ingest import ingest
from flows.train import features_flow
from infra.lake import write_shop
from infra.settings import Settings
from models.config import FeatureConfig, RunConfig
from models.features.build import (
    FeatureSet,
    build,
    combine,
    partition_by_user,
    temporal_split,
    user_side,
)

pytestmark = pytest.mark.usefixtures("prefect_engine")
CFG = FeatureConfig(holdout_days=14)


def assert_same(a: FeatureSet, b: FeatureSet) -> None:
    assert list(a.user_ids) == list(b.user_ids) and list(a.item_ids) == list(b.item_ids)
    for name in ("interactions", "weights", "user_features", "item_features"):
        x, y = getattr(a, name).tocsr(), getattr(b, name).tocsr()
        assert x.shape == y.shape and (x != y).nnz == 0, name
    assert np.array_equal(a.item_weight, b.item_weight)


def test_partitioned_user_side_is_exact(tiny_shop):
    events, items, users = tiny_shop.events, tiny_shop.items, tiny_shop.users
    split = temporal_split(events, CFG.holdout_days)
    parts = partition_by_user(split.train, 5)
    assert sum(map(len, parts)) == len(split.train)
    assert not set(parts[0]["user_id"]) & set(parts[1]["user_id"])  # users do not straddle
    side = combine([user_side(p, items, split.cutoff, CFG) for p in parts])
    assert_same(build(events, items, users, CFG, side), build(events, items, users, CFG))


def test_features_on_a_local_dask_cluster_match_the_single_process_path(
    home, tiny_shop, tmp_path, monkeypatch
):
    shop = tmp_path / "shop"
    write_shop(tiny_shop, shop)
    config = RunConfig(features=CFG)
    snapshot = ingest(str(shop), "contract", None, config.dataset)
    single_flow, one = features_flow(Settings())
    single = single_flow(snapshot, config, one)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        monkeypatch.setenv("CARTLIFT_DASK_ADDRESS", cluster.scheduler_address)
        monkeypatch.setenv("CARTLIFT_FEATURE_PARTITIONS", "4")
        on_dask, partitions = features_flow(Settings())
        assert partitions == 4
        distributed = on_dask(snapshot, config, partitions)
        # The tasks ran on the cluster's workers, not in this process.
        assert cluster.scheduler.task_prefixes, "no task reached the Dask scheduler"
    assert_same(distributed, single)
