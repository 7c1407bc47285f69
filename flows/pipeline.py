"""Flow ``pipeline``: ingest -> build_features -> train -> evaluate_and_register."""

from __future__ import annotations

from prefect import flow

from flows.ingest import ingest
from flows.tasks import settings_for
from flows.train import Registration, evaluate_and_register, features_flow, train
from models.config import RunConfig


@flow(name="pipeline")
def pipeline(
    data: str, fmt: str = "contract", mapping: str | None = None, config: RunConfig | None = None
) -> Registration:
    """The whole training loop on one dataset; the champion moves only through the gate."""
    snapshot = ingest(data, fmt, mapping, config)
    features_step, partitions = features_flow(settings_for(config))
    features = features_step(snapshot, config, partitions)
    model = train(features, config)
    return evaluate_and_register(model, features, snapshot, config)
