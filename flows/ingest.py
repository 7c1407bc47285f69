"""Flow ``ingest``: a shop's files -> validated Parquet tables in the lake + quarantine."""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.tasks import IO_RETRIES
from infra import events, lake
from infra.lake import LakeSnapshot
from infra.settings import Settings
from models.config import DEFAULT_DATASET
from models.data.adapters import RawTables
from models.data.ingest import IngestResult, summary_lines, validate_tables, with_live_events


@task(name="read source", **IO_RETRIES)
def read_source(data: str, fmt: str, mapping: str | None = None) -> RawTables:
    """Read a shop's files in one of the supported layouts into contract-named tables."""
    raw = lake.read_source(data, fmt, mapping)
    get_run_logger().info(
        "Read %s rows of events from %s", f"{len(raw.events):,}", raw.sources["events"]
    )
    return raw


@task(name="validate against the contract", cache_policy=NO_CACHE)
def validate(raw: RawTables) -> IngestResult:
    """The contract on every row; with CARTLIFT_PSEUDONYMISE_KEY set (read here, never a
    task parameter), customer ids become keyed hashes."""
    secret = Settings().pseudonymise_key
    key = secret.get_secret_value() if secret else None
    result = validate_tables(raw, pseudonymise_key=key)
    for line in summary_lines(result.report()):
        get_run_logger().info(line)
    return result


@task(name="add the live events", cache_policy=NO_CACHE, **IO_RETRIES)
def add_live_events(result: IngestResult) -> IngestResult:
    """The events the service took at /events (``infra.events``) beside the files',
    checked again against the files' catalogue and deduplicated."""
    settings, logger = Settings(), get_run_logger()
    if not events.exists(settings.events_url):
        logger.info("No live events stored yet (/events): the files alone")
        return result
    live = events.read(events.connect(settings.events_url))
    merged = with_live_events(result, live)
    kept = len(merged.events.accepted) - len(result.events.accepted)
    logger.info(
        "Live events: %s read from the event store, %s added to the files' %s (%s quarantined: "
        "unknown to the files' catalogue, or already in the files)",
        f"{len(live):,}",
        f"{kept:,}",
        f"{len(result.events.accepted):,}",
        f"{len(live) - kept:,}",
    )
    return merged


@task(name="write lake and quarantine", cache_policy=NO_CACHE, **IO_RETRIES)
def write_lake(result: IngestResult, dataset: str) -> LakeSnapshot:
    """Replace the dataset's tables atomically; quarantined rows go to CSV files people can open."""
    settings = Settings()
    snapshot = lake.write_dataset(
        result, settings.dataset_lake(dataset), settings.quarantine_dir / dataset
    )
    get_run_logger().info(
        "Lake tables written to %s; quarantined rows in %s",
        snapshot.path,
        settings.quarantine_dir / dataset,
    )
    return snapshot


@flow(name="ingest", log_prints=False)
def ingest(
    data: str,
    fmt: str = "contract",
    mapping: str | None = None,
    dataset: str = DEFAULT_DATASET,
    live_events: bool = True,
) -> LakeSnapshot:
    """Validate a shop's files, and the live events the service stored (unless
    ``live_events`` is off), into the lake; every row is accepted or quarantined with a
    reason."""
    result = validate(read_source(data, fmt, mapping))
    if live_events:
        result = add_live_events(result)
    return write_lake(result, dataset)
