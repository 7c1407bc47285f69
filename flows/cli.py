"""The ``cartlift`` command line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import numpy as np
import typer
import yaml

from infra.settings import Settings, config_problem, resolve_run_config
from models.config import DEFAULT_DATASET, RunConfig, ShopConfig, excludes_purchased, redacted
from models.evaluation.tasks import variant

if TYPE_CHECKING:  # the registry imports MLflow: only where a command needs it
    from infra.registry import Aliases

Format = Annotated[str, typer.Option("--format", help="contract | online-retail | csv")]
Mapping = Annotated[Path | None, typer.Option("--map", help="column mapping for --format csv")]
Segment = Annotated[
    str | None,
    typer.Option(help="only this segment's customers (a cluster or RFM segment's name)"),
]
SegmentDataset = Annotated[
    str | None, typer.Option(help="the segment table's dataset (default: the champion's)")
]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="cartlift: cross-sell and upsell recommendations for an online shop.",
)


def _version(shown: bool) -> None:
    if shown:
        from importlib.metadata import version

        typer.echo(f"cartlift {version('cartlift')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="show the version"),
    ] = False,
) -> None:
    """cartlift: cross-sell and upsell recommendations for an online shop."""


def _fail(message: str, code: int = 1) -> NoReturn:
    """A user's mistake: one line on stderr, no traceback, a non-zero exit."""
    typer.echo(message, err=True)
    raise typer.Exit(code)


def _settings() -> Settings:
    """Settings from the environment; state directories for Prefect and BentoML under home.

    Done here, at the entry point, before Prefect is imported: Prefect reads PREFECT_HOME
    when it starts its temporary local server.
    """
    settings = Settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(settings.prefect_home))
    os.environ.setdefault("BENTOML_HOME", str(settings.bentoml_home))
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # The temporary Prefect server migrates its database on first start: give it time.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    return settings


def _check_data(data: Path | None, fmt: str, mapping: Path | None = None) -> None:
    """Stop before any run starts when ``data`` cannot be read as a shop in ``fmt``,
    naming what is missing (exit 2)."""
    if data is None:
        return
    from infra.lake import check_source
    from models.data.contract import ContractError

    try:
        check_source(str(data), fmt, str(mapping) if mapping else None)
    except ContractError as exc:
        _fail(f"Cannot use the data: {exc}", 2)


def _run_config(
    settings: Settings, config: Path | None, dataset: str | None, fmt: str, data: Path | None
) -> RunConfig:
    """The run config (:func:`infra.settings.resolve_run_config`, the flows' own path),
    saying where it came from unless it is the defaults."""
    try:
        run, origin = resolve_run_config(settings, config, dataset, fmt, data)
    except (OSError, yaml.YAMLError, ValueError) as exc:
        _fail(f"Bad run config {config or '(the dataset tuned one)'}: {config_problem(exc)}", 2)
    if origin != "defaults":
        typer.echo(f"Run config for {run.dataset}: {origin}")
    return run


@app.command()
def generate(
    out: Annotated[Path | None, typer.Option(help="directory for the CSV files")] = None,
    users: Annotated[int | None, typer.Option(help="number of customers")] = None,
    items: Annotated[int | None, typer.Option(help="number of products")] = None,
    sessions: Annotated[float | None, typer.Option(help="mean sessions per customer")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Write the embedded default shop (seeded, deterministic) as contract CSV files."""
    from infra.lake import write_shop
    from models.data.shop import describe
    from models.data.shop import generate as make

    settings = _settings()
    updates = {
        k: v
        for k, v in {
            "n_users": users,
            "n_items": items,
            "sessions_per_user": sessions,
            "seed": seed,
        }.items()
        if v is not None
    }
    shop = make(ShopConfig.model_validate({**settings.shop.model_dump(), **updates}))
    paths = write_shop(shop, out or settings.default_shop_dir())
    figures = describe(shop)
    typer.echo(
        f"Generated {int(figures['events']):,} events, {int(figures['users']):,} active customers, "
        f"{int(figures['items']):,} items in {int(figures['categories'])} categories "
        f"({int(figures['orders']):,} orders) -> {Path(paths['events']).parent}"
    )


@app.command()
def ingest(
    data: Annotated[
        Path, typer.Argument(help="directory (contract, csv) or file (online-retail, csv)")
    ],
    fmt: Format = "contract",
    mapping: Mapping = None,
    dataset: Annotated[str | None, typer.Option(help="name of the dataset in the lake")] = None,
) -> None:
    """Validate a shop's files into the lake; bad rows are quarantined with reasons."""
    settings = _settings()
    from flows.ingest import ingest as ingest_flow
    from models.data.ingest import summary_lines

    _check_data(data, fmt, mapping)
    run = _run_config(settings, None, dataset, fmt, data)
    snapshot = ingest_flow(str(data), fmt, str(mapping) if mapping else None, run.dataset)
    for line in summary_lines(snapshot.report()):
        typer.echo(line)
    typer.echo(f"Lake: {snapshot.path}")


@app.command()
def pipeline(
    data: Annotated[
        Path | None, typer.Option(help="shop data; default: the generated default shop")
    ] = None,
    fmt: Format = "contract",
    mapping: Mapping = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML run config (features, train, evaluate, gate)")
    ] = None,
    dataset: Annotated[str | None, typer.Option(help="name of the dataset in the lake")] = None,
    live_events: Annotated[
        bool, typer.Option(help="add the events the service took at /events to the files'")
    ] = True,
) -> None:
    """Ingest, build features, train, evaluate and register; the gate decides the champion."""
    settings = _settings()
    from flows.pipeline import pipeline as pipeline_flow
    from models.data.ingest import summary_lines

    source = data or settings.default_shop_dir()
    if data is None and not source.exists():
        typer.echo(
            f"No data given and no default shop at {source}: run `cartlift generate` first.",
            err=True,
        )
        raise typer.Exit(2)
    _check_data(source, fmt, mapping)
    run = _run_config(settings, config, dataset, fmt, source)
    result = pipeline_flow(
        str(source), fmt, str(mapping) if mapping else None, run, live_events=live_events
    )
    report = settings.dataset_lake(run.dataset) / "ingest.json"
    typer.echo("\nRow accounting:")
    for line in summary_lines(json.loads(report.read_text())):
        typer.echo("  " + line)
    k = run.evaluate.k
    aim = variant(excludes_purchased(result.objective))
    typer.echo(f"\nHoldout metrics at k={k} ({run.dataset}, objective {result.objective}: {aim}):")
    label = "cartlift" if result.served == "cartlift" else "cartlift (trained, not served)"
    rows = [(f"{label}", result.metrics), *result.baselines.items()]
    if result.champion_metrics:
        rows.append(("previous champion", result.champion_metrics))
    typer.echo(f"  {'':32s}{'NDCG':>8s}{'P':>8s}{'R':>8s}{'MAP':>8s}{'HR':>8s}{'cover':>8s}")
    for name, m in rows:
        typer.echo(
            f"  {name:32s}"
            + "".join(
                f"{m.get(f'{x}_at_{k}', float('nan')):8.4f}"
                for x in ("ndcg", "precision", "recall", "map", "hit_rate", "coverage")
            )
        )
    ratio = result.metrics[f"ndcg_at_{k}"] / max(result.popularity[f"ndcg_at_{k}"], 1e-12)
    typer.echo(f"  NDCG@{k} model / popularity = {ratio:.2f}x")
    cold = (
        result.metrics.get(f"cold_users.ndcg_at_{k}"),
        result.popularity.get(f"cold_users.ndcg_at_{k}"),
    )
    typer.echo(f"  cold-start users: NDCG@{k} {cold[0]:.4f} vs popularity {cold[1]:.4f}")
    typer.echo(
        f"\nGate: version {result.version} ({result.served}) {result.outcome}: "
        f"{result.decision.reason}"
    )
    alias = f"{settings.registered_model}@{settings.champion_alias}"
    typer.echo(f"Champion: {alias} = version {result.champion_version}")
    typer.echo(
        f"MLflow store: {redacted(settings.tracking_uri)} "
        f"(artifacts in {settings.mlflow_artifacts_dir})"
    )
    typer.echo(f"Browse it: mlflow ui --backend-store-uri {redacted(settings.tracking_uri)}")
    pages = settings.reports_dir / "pipeline" / run.dataset
    typer.echo(f"This run's page: {pages}/*-v{result.version}.html (and in Prefect's flow run)")


@app.command()
def bootstrap(
    data: Annotated[Path, typer.Option(help="where the shop's data is (or will be generated)")],
    fmt: Format = "contract",
    mapping: Mapping = None,
    config: Annotated[Path | None, typer.Option(help="YAML run config")] = None,
    dataset: Annotated[str | None, typer.Option(help="name of the dataset in the lake")] = None,
    demo: Annotated[
        bool, typer.Option(help="generate the default shop into an empty --data directory")
    ] = True,
) -> None:
    """A deployment's first day, once: the shop's data (the mounted files; else, with
    --demo, the default shop generated there), then the first pipeline, so the service has
    a champion to serve. Does nothing when a champion exists (safe to run at every start)."""
    settings = _settings()
    from infra.lake import find_table
    from infra.registry import describe_champion

    champion = describe_champion(settings)
    if champion is not None:
        typer.echo(f"A champion exists (version {champion['version']}): nothing to bootstrap.")
        return
    empty = fmt == "contract" and (
        not data.exists() or (data.is_dir() and find_table(data, "events") is None)
    )
    if empty:
        if not demo:
            _fail(f"No shop at {data}: mount the shop's files there (or allow --demo)", 2)
        typer.echo(f"No shop at {data}: generating the default shop there (--demo)")
        generate(out=data)
    typer.echo(f"First pipeline on {data}")
    pipeline(data=data, fmt=fmt, mapping=mapping, config=config, dataset=dataset)


@app.command()
def monitor(
    data: Annotated[
        Path | None,
        typer.Option(help="shop data to retrain on when retraining is due (else: only report)"),
    ] = None,
    fmt: Format = "contract",
    mapping: Mapping = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML run config used if retraining runs")
    ] = None,
    dataset: Annotated[str | None, typer.Option(help="name of the dataset in the lake")] = None,
) -> None:
    """Compare recent data with the champion's training window; retrain when due."""
    settings = _settings()
    from flows.monitor import monitor as monitor_flow

    _check_data(data, fmt, mapping)
    run = _run_config(settings, config, dataset, fmt, data or settings.default_shop_dir())
    result = monitor_flow(str(data) if data else None, fmt, str(mapping) if mapping else None, run)
    if result.drift_share is not None:
        drifted = ", ".join(result.drifted) or "none"
        typer.echo(f"Data drift: {result.drift_share:.0%} of watched columns ({drifted})")
    verdict = "retraining due" if result.decision.retrain else "no retraining"
    typer.echo(f"Decision for champion {result.champion}: {verdict}")
    for line in result.decision.reasons + result.decision.notes:
        typer.echo("  " + line)
    if result.retrained_version:
        typer.echo(f"Retrained: version {result.retrained_version}")
    if result.report_dir:
        typer.echo(f"Reports: {result.report_dir}")
        typer.echo(f"Dashboard: evidently ui --workspace {settings.reports_dir / 'workspace'}")


@app.command()
def segment(
    data: Annotated[
        Path | None, typer.Option(help="shop data to load first (else: the lake's dataset)")
    ] = None,
    fmt: Format = "contract",
    mapping: Mapping = None,
    config: Annotated[Path | None, typer.Option(help="YAML run config (its segments:)")] = None,
    dataset: Annotated[str | None, typer.Option(help="name of the dataset in the lake")] = None,
) -> None:
    """Customer segments: RFM scores and behavioural clusters, into the lake and a report."""
    settings = _settings()
    from flows.segment import segment as segment_flow

    _check_data(data, fmt, mapping)
    run = _run_config(settings, config, dataset, fmt, data or settings.default_shop_dir())
    try:
        result = segment_flow(
            str(data) if data else None, fmt, str(mapping) if mapping else None, run
        )
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(f"{sum(result.sizes.values()):,} customers in {result.k} clusters:")
    for name, n in result.sizes.items():
        typer.echo(f"  {n:>7,}  {name}")
    typer.echo("RFM segments: " + ", ".join(f"{name} {n:,}" for name, n in result.rfm.items()))
    typer.echo(f"Segment table: {result.table}")
    typer.echo(f"Report: {result.page} (MLflow run {result.run_id})")


@app.command()
def deploy(
    data: Annotated[Path, typer.Option(help="the shop's data, as the worker sees it")],
    fmt: Format = "contract",
    config: Annotated[Path | None, typer.Option(help="YAML run config")] = None,
    dataset: Annotated[str | None, typer.Option(help="name of the dataset in the lake")] = None,
    pool: Annotated[str, typer.Option(help="Prefect work pool (process type)")] = "cartlift",
) -> None:
    """Register the deployments on the Prefect server at PREFECT_API_URL (idempotent):
    pipeline nightly and on cartlift.drift.detected, monitor hourly."""
    settings = _settings()
    if not os.environ.get("PREFECT_API_URL"):
        typer.echo("PREFECT_API_URL is not set: deployments need a Prefect server", err=True)
        raise typer.Exit(2)
    from flows.deploy import deploy as register

    _check_data(data, fmt)
    run = _run_config(settings, config, dataset, fmt, data)
    created, registered = register(
        settings,
        run.dataset,
        str(data.resolve()),
        fmt,
        str(config.resolve()) if config else None,
        pool,
    )
    typer.echo(f"Work pool '{pool}': {'created' if created else 'exists'}")
    for r in registered:
        when = f"cron '{r.schedule}'" + (f", {r.trigger}" if r.trigger else "")
        typer.echo(f"  {r.name}  ({when})  id {r.id}")
    typer.echo(f"Start a worker: uv run prefect worker start --pool {pool}")


@app.command()
def tune(
    data: Annotated[
        Path | None, typer.Option(help="shop data; default: the generated default shop")
    ] = None,
    fmt: Format = "contract",
    mapping: Mapping = None,
    config: Annotated[Path | None, typer.Option(help="YAML run config to start from")] = None,
    dataset: Annotated[str | None, typer.Option(help="name of the dataset in the lake")] = None,
    trials: Annotated[int, typer.Option(help="configurations to try")] = 20,
    parallel: Annotated[int, typer.Option(help="trials trained side by side")] = 2,
    max_epochs: Annotated[int, typer.Option(help="epochs before early stopping ends a trial")] = 60,
) -> None:
    """Search the hybrid model's hyperparameters on a validation window; the best config
    becomes the pipeline's default for the dataset."""
    settings = _settings()
    from flows.tune import tune as tune_flow

    source = data or settings.default_shop_dir()
    _check_data(source, fmt, mapping)
    run = _run_config(settings, config, dataset, fmt, source)
    result = tune_flow(
        str(source), fmt, str(mapping) if mapping else None, run, trials, parallel, max_epochs
    )
    k = run.evaluate.k
    typer.echo(f"\nBest of {len(result.trials)} trials: validation NDCG@{k} {result.score:.4f}")
    for key, value in sorted(result.best.train.model_dump().items()):
        typer.echo(f"  train.{key}: {value}")
    typer.echo(f"Written to {result.config_path}; MLflow run {result.run_id}")


benchmark = typer.Typer(no_args_is_help=True, help="Measure the product against baselines.")
app.add_typer(benchmark, name="benchmark")


@benchmark.command("quality")
def benchmark_quality(
    data: Annotated[
        Path | None, typer.Option(help="shop data; default: the generated default shop")
    ] = None,
    fmt: Format = "contract",
    mapping: Mapping = None,
    config: Annotated[Path | None, typer.Option(help="YAML run config (default: tuned)")] = None,
    dataset: Annotated[str | None, typer.Option(help="name of the dataset in the lake")] = None,
    out: Annotated[Path | None, typer.Option(help="report directory")] = None,
    bootstrap: Annotated[int, typer.Option(help="bootstrap samples per interval")] = 1000,
) -> None:
    """Every baseline, LightFM without features and the hybrid on the shop's holdout:
    a Markdown + HTML report with intervals, logged to MLflow."""
    settings = _settings()
    from flows.quality import quality

    source = data or settings.default_shop_dir()
    _check_data(source, fmt, mapping)
    run = _run_config(settings, config, dataset, fmt, source)
    origin = resolve_run_config(settings, config, dataset, fmt, source)[1]
    result = quality(
        str(source),
        fmt,
        str(mapping) if mapping else None,
        run,
        str(out) if out else None,
        bootstrap,
        origin,
    )
    for v in result.verdicts:
        typer.echo(f"{'PASS' if v.holds else 'FAIL'}  {v.claim}: {v.figure}")
    typer.echo(f"Report: {result.files['markdown']} and {result.files['html']}")
    typer.echo(f"MLflow run {result.run_id}")


@app.command("demo-drift")
def demo_drift(
    days: Annotated[int, typer.Option(help="days between the first champion and today")] = 60,
) -> None:
    """The monitoring loop end to end: serve a champion, shift the shop, watch drift ->
    retrain -> quality gate -> new champion -> the service reloads.

    Runs in a workspace of its own, $CARTLIFT_HOME/demo-drift (emptied first), so it
    never touches the shop's real champion.
    """
    import shutil

    workspace = Settings().home / "demo-drift"
    shutil.rmtree(workspace, ignore_errors=True)
    os.environ["CARTLIFT_HOME"] = str(workspace)
    os.environ.pop("PREFECT_HOME", None)
    # Under a tracking server a separate model name keeps the demo apart as well.
    os.environ["CARTLIFT_REGISTERED_MODEL"] = "cartlift-demo-drift"
    settings = _settings()
    from flows.demo import drift_demo

    config = resolve_run_config(settings, dataset="demo-shop")[0]
    result = drift_demo(settings.shop, config, later_days=days, say=typer.echo)
    typer.echo("\nWhy retraining ran:" if result.reasons else "\nRetraining did not run")
    for reason in result.reasons:
        typer.echo("  " + reason)
    typer.echo(f"Reports: {result.report_dir}")
    typer.echo(f"Dashboard: evidently ui --workspace {settings.reports_dir / 'workspace'}")
    if result.after == result.before or result.served_after != result.after:
        typer.echo(
            f"The loop did not end with a new champion served (champion {result.after}, "
            f"served {result.served_after})",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(
        f"Done: drift -> retrain -> gate -> champion {result.before} -> {result.after}, "
        f"served by the running service"
    )


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="HTTP port")] = 3000,
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
) -> None:
    """Serve the champion over HTTP with BentoML (reloads when the champion moves)."""
    import subprocess  # starts `bentoml serve` (docs/security.md)  # nosec B404

    from serving.launch import command

    _settings()
    # One BLAS thread per worker: several workers on few cores must not oversubscribe.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    cmd = command(host, port)
    raise typer.Exit(subprocess.call(cmd))  # fixed argv, no shell  # nosec B603


def _segment(settings: Settings, segment: str, dataset: str | None) -> list[str]:
    """The customers of a segment of ``dataset``'s segment table (default: the champion's
    dataset), or a one-line failure naming the segments there are."""
    from flows.segment import members
    from infra.registry import describe_champion

    champion = describe_champion(settings) or {}
    try:
        return members(dataset or champion.get("dataset") or DEFAULT_DATASET, segment)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))


@app.command("recommend-batch")
def recommend_batch(
    out: Annotated[Path, typer.Option(help="Parquet file for (user_id, rank, item_id, score)")],
    k: Annotated[int, typer.Option(min=1, max=1000)] = 10,
    users: Annotated[Path | None, typer.Option(help="text file of user ids; default all")] = None,
    segment: Segment = None,
    dataset: SegmentDataset = None,
) -> None:
    """Top-k for many customers at once with the champion (campaigns, caches)."""
    import time

    settings = _settings()
    from infra.registry import load_champion_bundle
    from models.ranking.batch import recommend_all

    try:
        version, bundle = load_champion_bundle(settings)
    except ValueError as exc:
        _fail(f"No answer to give: {exc}")
    ids = None
    if users is not None:
        ids = [line.strip() for line in users.read_text().splitlines() if line.strip()]
    if segment is not None:
        chosen = _segment(settings, segment, dataset)
        among = set(chosen)
        ids = chosen if ids is None else [i for i in ids if i in among]
    started = time.perf_counter()
    table = recommend_all(bundle, None if ids is None else np.asarray(ids, dtype=object), k)
    seconds = time.perf_counter() - started
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out, index=False)
    n_users = table["user_id"].nunique()
    typer.echo(
        f"{n_users:,} users x top-{k} from version {version} in {seconds:.2f} s "
        f"({n_users / max(seconds, 1e-9):,.0f} users/s) -> {out}"
    )


@app.command()
def audience(
    out: Annotated[Path, typer.Option(help="CSV (.csv) or Parquet file of the audience")],
    item: Annotated[str | None, typer.Option(help="the item to find buyers for")] = None,
    category: Annotated[str | None, typer.Option(help="or: any item of this category")] = None,
    brand: Annotated[str | None, typer.Option(help="or: any item of this brand")] = None,
    k: Annotated[int, typer.Option(min=1, help="how many customers, best first")] = 1000,
    segment: Segment = None,
    dataset: SegmentDataset = None,
    exclude_buyers: Annotated[
        bool, typer.Option(help="leave out who bought it in the training window")
    ] = False,
) -> None:
    """The customers most likely to buy an item (or a category) soon, with the champion:
    a campaign's list of (rank, user_id, score, reason), as /audience answers it."""
    settings = _settings()
    if sum(t is not None for t in (item, category, brand)) != 1:
        _fail("Give exactly one of --item, --category and --brand", 2)
    import pandas as pd

    from infra.registry import load_champion_bundle
    from models.ranking.engine import Engine

    try:
        version, bundle = load_champion_bundle(settings)
    except ValueError as exc:
        _fail(f"No answer to give: {exc}")
    engine = Engine(bundle)
    among = None
    if segment is not None:
        found = engine.users.positions(_segment(settings, segment, dataset))
        among = found[found >= 0]
    answer = engine.audience(k, item, category, among, exclude_buyers, brand)
    table = pd.DataFrame(
        {
            "rank": np.arange(1, len(answer.customers) + 1),
            "user_id": [c.user_id for c in answer.customers],
            "score": [round(c.score, 6) for c in answer.customers],
            "reason": [c.reason for c in answer.customers],
        }
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        table.to_csv(out, index=False)
    else:
        table.to_parquet(out, index=False)
    for warning in answer.warnings:
        typer.echo(f"Warning: {warning}")
    within = f" in segment {segment!r}" if segment else ""
    typer.echo(
        f"{len(table):,} customers for {item or category or brand}{within} from version "
        f"{version} -> {out}"
    )


@app.command()
def promote(
    version: Annotated[str, typer.Option("--version", help="registered version to make champion")],
) -> None:
    """Move the champion alias to a version (rollback or manual promotion)."""
    settings = _settings()
    from infra.registry import promote as move

    try:
        moved = move(settings, version)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{settings.registered_model}@{settings.champion_alias} -> version {moved}")


@app.command()
def champion() -> None:
    """Show the current champion version and its tags."""
    settings = _settings()
    from infra.registry import describe_champion

    info = describe_champion(settings)
    if info is None:
        typer.echo("No champion yet: run `cartlift pipeline`.")
        raise typer.Exit(1)
    for key, value in info.items():
        typer.echo(f"{key}: {value}")


@app.command()
def events(
    out: Annotated[
        Path | None, typer.Option(help="write the rejected events (the quarantine) to this CSV")
    ] = None,
) -> None:
    """What /events took: events stored, events rejected and why."""
    settings = _settings()
    from infra import events as live

    if not live.exists(settings.events_url):
        typer.echo("No live events yet: the service's /events has taken none.")
        return
    store = live.connect(settings.events_url)
    counted, rejected = live.counts(store), live.quarantine(store)
    typer.echo(
        f"{counted['stored']:,} live events stored, {counted['rejected']:,} rejected "
        f"(store: {redacted(settings.events_url)})"
    )
    if len(rejected):
        typer.echo("Rejected, by reason:")
        for reason, n in rejected["reason"].value_counts().items():
            typer.echo(f"  {n:>8,}  {reason}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        rejected.to_csv(out, index=False)
        typer.echo(f"The {len(rejected):,} rejected events, as sent, written to {out}")


experiment = typer.Typer(
    no_args_is_help=True,
    help="Online experiments: a challenger version against the champion, on live traffic.",
)
app.add_typer(experiment, name="experiment")


def _say_experiment(found: Aliases, settings: Settings) -> None:
    name = settings.registered_model
    typer.echo(f"{name}@{settings.champion_alias} -> version {found.champion}")
    if found.challenger is None:
        typer.echo("No experiment running: the champion answers everyone.")
        return
    typer.echo(
        f"{name}@{settings.challenger_alias} -> version {found.challenger}, answering "
        f"{found.share:.1%} of customers (and anonymous sessions) since {found.started_at}"
    )


@experiment.command("start")
def experiment_start(
    version: Annotated[str, typer.Option("--version", help="registered version to try")],
    share: Annotated[
        float, typer.Option(help="share of customers the challenger answers, 0.001..0.999")
    ] = 0.5,
) -> None:
    """Put a registered version up against the champion for a share of customers (each
    one always gets the same side); a running service picks it up on its next poll."""
    settings = _settings()
    from infra.registry import start_experiment

    try:
        found = start_experiment(settings, version, share)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    _say_experiment(found, settings)


@experiment.command("status")
def experiment_status() -> None:
    """The champion, and the challenger with its share while an experiment runs."""
    settings = _settings()
    from infra.registry import experiment as current

    _say_experiment(current(settings), settings)


@experiment.command("evaluate")
def experiment_evaluate(
    dataset: Annotated[
        str | None, typer.Option(help="the lake's dataset for orders (default: the champion's)")
    ] = None,
) -> None:
    """One look at the running experiment now: credit purchases, compute the KPIs, and
    promote the challenger, stop it or continue (the hourly deployment does the same)."""
    _settings()
    from flows.experiment import experiment as look_at

    look = look_at(dataset)
    typer.echo(f"{look.action}: {look.reason}")
    if look.kpis is not None and len(look.kpis):
        shown = look.kpis[look.kpis["kpi"].isin(["conversion", "revenue_per_1000"])]
        for row in shown.itertuples():
            typer.echo(
                f"  {row.variant:<10} {row.endpoint:<13} {row.kpi:<17} {row.value:.4g} "
                f"[{row.low:.4g}, {row.high:.4g}] ({row.units} customers)"
            )


@experiment.command("stop")
def experiment_stop() -> None:
    """End the running experiment: the champion answers everyone again."""
    settings = _settings()
    from infra.registry import stop_experiment

    before = stop_experiment(settings)
    if before.challenger is None:
        typer.echo("No experiment was running.")
        return
    typer.echo(
        f"Stopped: version {before.challenger} no longer answers; version "
        f"{before.champion} answers everyone."
    )


if __name__ == "__main__":
    app()
