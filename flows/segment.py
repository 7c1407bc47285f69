"""`segment`: each customer's RFM scores and behavioural cluster, written to the lake
beside the shop's tables and shown as a report (an HTML page, an MLflow run, Prefect
artifacts). The rules are in :mod:`models.segments`; this flow reads, writes and shows.

The lake keeps the current table (``segments.parquet``) and every run's
(``segments/<time>.parquet``), so a run shows how customers moved since the last. The
ids are the lake's: pseudonymised when ``CARTLIFT_PSEUDONYMISE_KEY`` is set, so no raw
id leaves the lake; the report holds aggregates only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.ingest import ingest
from flows.publish import artifact_key, facts_markdown, table_rows
from flows.tasks import IO_RETRIES, run_config
from infra import registry
from infra.lake import SEGMENTS, segment_members, write_parquet
from infra.reports import figure_image, run_page, segment_charts
from infra.settings import Settings
from models.config import RunConfig, SegmentConfig
from models.segments import Segmentation, leanings, migration
from models.segments import segment as segment_customers

HISTORY = "segments"


@dataclass(frozen=True)
class SegmentResult:
    table: str  # the current segment table in the lake
    page: str  # this run's HTML report
    run_id: str  # its MLflow run
    k: int  # clusters chosen
    sizes: dict[str, int]  # segment -> customers (browsers included)
    rfm: dict[str, int]  # RFM segment -> customers


def lake_tables(dataset: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The dataset's events and items from the lake, or an error saying how to fill it."""
    lake = Settings().dataset_lake(dataset)
    paths = [lake / "events.parquet", lake / "items.parquet"]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"{missing[0]} not found: run `cartlift pipeline --data ...` (or pass --data) "
            f"to load dataset {dataset!r} into the lake first"
        )
    return pd.read_parquet(paths[0]), pd.read_parquet(paths[1])


def members(dataset: str, name: str) -> list[str]:
    """The customers of segment ``name`` in the dataset's current segment table."""
    return segment_members(Settings().dataset_lake(dataset), name)


@task(name="segment the customers", cache_policy=NO_CACHE)
def compute(events: pd.DataFrame, items: pd.DataFrame, config: SegmentConfig) -> Segmentation:
    logger = get_run_logger()
    result = segment_customers(
        events,
        items,
        window_days=config.window_days,
        candidates=config.clusters,
        sample=config.sample,
        top_categories=config.top_categories,
        seed=config.seed,
    )
    tried = ", ".join(f"{k}: {s:.3f}" for k, s in result.silhouettes.items())
    logger.info("%d clusters (silhouette by number of clusters: %s)", result.k, tried or "none")
    for name, n in result.table["segment"].value_counts().items():
        logger.info("Segment %r: %d customers", name, n)
    return result


@task(name="write the segment table", cache_policy=NO_CACHE, **IO_RETRIES)
def store(result: Segmentation, dataset: str, stamp: str) -> tuple[Path, pd.DataFrame | None]:
    """The table into the lake (current and this run's copy); the previous run's table."""
    lake = Settings().dataset_lake(dataset)
    earlier = sorted((lake / HISTORY).glob("*.parquet"))
    previous = pd.read_parquet(earlier[-1]) if earlier else None
    write_parquet(result.table, lake / HISTORY / f"{stamp}.parquet")
    return write_parquet(result.table, lake / SEGMENTS), previous


@task(name="show the segments", cache_policy=NO_CACHE, **IO_RETRIES)
def show(
    result: Segmentation,
    previous: pd.DataFrame | None,
    table: Path,
    config: RunConfig,
    stamp: str,
) -> tuple[Path, str]:
    """The report: an HTML page (sizes, revenue, profiles, migration), an MLflow run
    holding it, and Prefect artifacts (a summary and the segments' table)."""
    settings = Settings()
    moved = migration(previous, result.table) if previous is not None else None
    buyers = int((result.table["cluster"] >= 0).sum())
    tried = ", ".join(f"{k}: {s:.3f}" for k, s in result.silhouettes.items())
    facts = {
        "dataset": config.dataset,
        "customers": f"{len(result.table):,} ({buyers:,} with a purchase in the window)",
        "window": f"the last {config.segments.window_days:g} days of the lake's events",
        "clusters": f"{result.k}, the highest silhouette (by number of clusters: {tried})",
        "segment table": str(table),
        "previous run": "none" if previous is None else f"{len(previous):,} customers",
    }
    profiles = result.profiles.copy()
    if not profiles.empty:
        profiles["revenue share"] = profiles["revenue"] / profiles["revenue"].sum()
        profiles["leaning to (lift)"] = leanings(profiles)
    summary = profiles.drop(columns=[c for c in profiles if c.startswith("share: ")])
    rfm = (
        result.table.groupby("rfm_segment")
        .agg(customers=("user_id", "size"), spend=("spend", "sum"))
        .sort_values("customers", ascending=False)
    )
    tables = [
        ("Segments", "Each cluster's size, revenue, mean behaviour and leanings.", summary),
        ("RFM segments", "Recency and frequency quintiles (models/segments.py).", rfm),
    ]
    if moved is not None:
        tables.append(("Migration", "Customers per previous and current segment.", moved))
    images = (
        [figure_image(f, f"segments {i}") for i, f in enumerate(segment_charts(profiles, moved))]
        if not profiles.empty
        else []
    )
    title = f"cartlift segments: {config.dataset}"
    page = run_page(title, facts, tables, images)
    out = settings.reports_dir / "segments" / config.dataset / f"{stamp}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    params = {k: v for k, v in config.flat().items() if k.startswith("segments.")}
    record = registry.RunRecord(
        params=params | {"dataset": config.dataset},
        metrics={"clusters": result.k, "customers": len(result.table), "buyers": buyers}
        | {f"silhouette_k{k}": s for k, s in result.silhouettes.items()},
        tags={"cartlift.kind": "segments", "dataset": config.dataset},
        artifacts={"segments.csv": profiles.reset_index(), "rfm.csv": rfm.reset_index()},
    )
    run_id = registry.log_report(settings, f"{config.dataset}-segments", record)
    registry.attach_text(settings, run_id, page, "report.html")
    create_table_artifact(
        table_rows(summary),
        key=artifact_key("segments", config.dataset),
        description=f"Customer segments of {config.dataset}",
    )
    summary = facts_markdown(title, facts, f"`{out}` (also in MLflow run {run_id})")
    create_markdown_artifact(summary, key=artifact_key("segments-run", config.dataset))
    return out, run_id


@flow(name="segment")
def segment(
    data: str | None = None,
    fmt: str = "contract",
    mapping: str | None = None,
    config: RunConfig | None = None,
    dataset: str | None = None,
) -> SegmentResult:
    """Segment the dataset's customers (after loading ``data`` into the lake, if given)."""
    run = run_config(config, None, dataset, fmt, data)
    if data is not None:
        ingest(data, fmt, mapping, run.dataset)
    events, items = lake_tables(run.dataset)
    result = compute(events, items, run.segments)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    table, previous = store(result, run.dataset, stamp)
    page, run_id = show(result, previous, table, run, stamp)
    return SegmentResult(
        str(table),
        str(page),
        run_id,
        result.k,
        result.table["segment"].value_counts().to_dict(),
        result.table["rfm_segment"].value_counts().to_dict(),
    )
