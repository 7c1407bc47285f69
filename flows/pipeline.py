"""Flow ``pipeline``: ingest -> build_features -> train -> evaluate_and_register, then
what the run shows (Prefect artifacts, an HTML page)."""

from __future__ import annotations

from prefect import flow

from flows.ingest import ingest
from flows.publish import show_pipeline
from flows.tasks import run_config
from flows.train import Registration, evaluate_and_register, features_flow, train
from infra.settings import Settings
from models.config import RunConfig


@flow(name="pipeline")
def pipeline(
    data: str,
    fmt: str = "contract",
    mapping: str | None = None,
    config: RunConfig | None = None,
    config_file: str | None = None,
    dataset: str | None = None,
    live_events: bool = True,
) -> Registration:
    """The whole training loop on one dataset; the champion moves only through the gate.
    The run config is resolved once, here (or given), and passed down. The events the
    service took at /events join the files' unless ``live_events`` is off."""
    config = run_config(config, config_file, dataset, fmt, data)
    snapshot = ingest(data, fmt, mapping, config.dataset, live_events)
    features_step, partitions = features_flow(Settings())
    features = features_step(snapshot, config, partitions)
    model = train(features, config)
    registration = evaluate_and_register(model, features, snapshot, config)
    show_pipeline(registration, config)
    return registration
