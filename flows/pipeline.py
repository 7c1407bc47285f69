"""Flow ``pipeline``: ingest -> build_features -> train -> evaluate_and_register."""

from __future__ import annotations

from prefect import flow

from flows.ingest import ingest
from flows.train import Registration, build_features, evaluate_and_register, train
from models.settings import RunConfig


@flow(name="pipeline")
def pipeline(
    data: str, fmt: str = "contract", mapping: str | None = None, config: RunConfig | None = None
) -> Registration:
    """The whole training loop on one dataset; the champion moves only through the gate."""
    snapshot = ingest(data, fmt, mapping, config)
    features = build_features(snapshot, config)
    model = train(features, config)
    return evaluate_and_register(model, features, snapshot, config)
