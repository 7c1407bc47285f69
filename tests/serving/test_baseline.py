"""A shop with no structure beyond best sellers: no trained model can beat the simple
baselines there, so its first pipeline registers the strongest one as a servable version,
and the real service answers from it (never 503 for want of a champion)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from flows.pipeline import pipeline
from infra.lake import write_shop
from infra.settings import Settings
from models.config import FeatureConfig, GateConfig, RunConfig, TrainConfig
from models.data.shop import Shop
from tests.serving.server import running

CONFIG = RunConfig(
    dataset="shapeless",
    features=FeatureConfig(holdout_days=14),
    train=TrainConfig(no_components=8, epochs=5),
    # Noise alone moves a model a few percent either way on 300 customers.
    gate=GateConfig(min_relative_gain=0.05),
)


def shapeless(shop: Shop, seed: int = 11) -> Shop:
    """The tiny shop's customers and catalogue with every purchase drawn from one fixed
    popularity, whoever buys and whatever they bought before: nothing to personalise."""
    rng = np.random.default_rng(seed)
    items = shop.items.reset_index(drop=True)
    weight = 1.0 / np.arange(1, len(items) + 1) ** 1.1
    n = 6_000
    chosen = rng.choice(len(items), n, p=weight / weight.sum())
    start = pd.Timestamp("2026-02-01")
    events = pd.DataFrame(
        {
            "user_id": rng.choice(shop.users["user_id"].to_numpy(), n),
            "item_id": items["item_id"].to_numpy()[chosen],
            "event_type": "purchase",
            "timestamp": start + pd.to_timedelta(rng.uniform(0, 120 * 86_400, n), unit="s"),
            "quantity": 1,
            "price": items["price"].to_numpy()[chosen],
            "order_id": [f"o{i:06d}" for i in range(n)],
        }
    ).sort_values("timestamp", ignore_index=True)
    return replace(shop, events=events)


@pytest.mark.usefixtures("prefect_engine")
def test_a_shop_without_structure_is_served_its_strongest_baseline(home, tiny_shop, tmp_path):
    source = tmp_path / "shop"
    write_shop(shapeless(tiny_shop), source)
    result = pipeline(str(source), "contract", None, CONFIG)
    assert result.decision.promote and result.decision.baseline in result.baselines
    assert result.served == f"baseline: {result.decision.baseline}"
    assert "is served" in result.decision.reason
    settings = Settings()
    tags = (
        MlflowClient(settings.tracking_uri)
        .get_model_version(settings.registered_model, result.version)
        .tags
    )
    assert tags["served"] == result.served and tags["gate"] == result.decision.reason

    with running(home) as server:
        client = server.client
        meta = client.post("/metadata").json()
        assert meta["served"] == result.served and meta["model_version"] == result.version
        assert meta["served_because"] == result.decision.reason
        buyer = tiny_shop.users["user_id"].iloc[0]
        for user in (buyer, "someone-new"):
            answer = client.post("/recommend", json={"user_id": user, "k": 5})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert len(body["items"]) == 5 and body["model_version"] == result.version
        probe = client.get("/readyz")
        assert probe.status_code == 200
