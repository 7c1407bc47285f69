"""Flow ``quality``: every model on a shop's temporal split, as a report a shop can read.

The baselines a shop could build in an afternoon (popularity, popularity per category,
item-kNN, association rules, implicit ALS), LightFM without features and the hybrid with
the run config (the tuned one when ``tune`` has written it) are scored through the one
protocol of :mod:`models.evaluation.protocol`, twice: repeat purchases counted, and items bought
before the cutoff excluded. The product's own cross-sell and upsell (the serving engine
over the hybrid) are judged against the classic methods. The report (Markdown, HTML,
plots, the full metric table) goes to ``$CARTLIFT_HOME/reports/quality/<dataset>`` and is
logged to MLflow with its headline figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.ingest import ingest
from flows.tasks import IO_RETRIES, run_config
from flows.train import features_flow, fit
from infra import registry
from infra.reports import Report, run_context, write
from infra.settings import Settings
from models.config import RunConfig
from models.evaluation.protocol import Protocol, Scorer
from models.evaluation.tasks import (
    cheapest_pricier,
    compare,
    cross_sell_table,
    engine_cross_sell,
    engine_upsell,
    upsell_table,
    with_buy_again,
)
from models.evaluation.tuning import with_params
from models.evaluation.verdicts import HYBRID, PRODUCT, Verdict, ndcg_by_model, personal, shopping
from models.features.build import FeatureSet
from models.ranking.bundle import build_bundle
from models.ranking.engine import Engine
from models.recommenders.base import Interactions, Recommender
from models.recommenders.baselines import (
    AssociationRules,
    CategoryPopularity,
    ImplicitALS,
    ItemKNN,
    Popularity,
    RecentPopularity,
)
from models.recommenders.hybrid import Hybrid, HybridModel

RECENT_DAYS = 7  # "last week's best sellers": what a shop would try first
VARIANTS = {"bought items excluded": True, "repeat purchases counted": False}


@dataclass
class QualityResult:
    files: dict[str, str]
    verdicts: list[Verdict]
    run_id: str


@task(name="fit baselines", cache_policy=NO_CACHE)
def fit_baselines(fs: FeatureSet, seed: int) -> dict[str, Recommender]:
    data = Interactions.from_features(fs, RECENT_DAYS)
    models: list[Recommender] = [
        Popularity(),
        RecentPopularity(name=f"popularity, last {RECENT_DAYS} days"),
        CategoryPopularity(),
        ItemKNN(),
        AssociationRules(),
        ImplicitALS(seed=seed),
    ]
    logger = get_run_logger()
    for model in models:
        model.fit(data)
        logger.info("Fitted %s", model.name)
    return {m.name: m for m in models}


@task(name="score every model", cache_policy=NO_CACHE)
def score_all(
    fs: FeatureSet, scorers: dict[str, Scorer], run: RunConfig, bootstrap: int
) -> dict[str, pd.DataFrame]:
    """Every model through the one protocol, in both variants of the truth. With repeats
    allowed the hybrid is scored as served: earlier purchases lifted."""
    protocol = Protocol(ks=(5, 10, 20), bootstrap=bootstrap, seed=run.train.seed)
    again = with_buy_again(fs, scorers[HYBRID], run.ranking.buy_again_weight)
    tables = {}
    for variant, exclude in VARIANTS.items():
        get_run_logger().info("Scoring %d models, %s", len(scorers), variant)
        served = scorers if exclude else scorers | {HYBRID: again}
        tables[variant] = compare(fs, served, exclude, protocol)
    return tables


@task(name="cross-sell and upsell", cache_policy=NO_CACHE)
def shopping_tables(
    fs: FeatureSet, hybrid: HybridModel, baselines: dict[str, Recommender], run: RunConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The serving engine over the hybrid (one case at a time, as the endpoints answer)
    against every baseline's ``related`` and the naive upsell."""
    k = run.evaluate.k
    engine = Engine(build_bundle(hybrid, fs, run.features, run.ranking, {}))
    related = {name: (lambda rows, carts, m=m: m.related(carts)) for name, m in baselines.items()}
    cross = cross_sell_table(fs, {PRODUCT: engine_cross_sell(engine, fs, k)} | related, k)
    upsell = upsell_table(
        fs,
        {PRODUCT: engine_upsell(engine, fs, k), "cheapest pricier": cheapest_pricier(fs)} | related,
        k,
    )
    return cross, upsell


@task(name="write and log the report", cache_policy=NO_CACHE, **IO_RETRIES)
def publish(report: Report, target: Path, run: RunConfig, bootstrap: int) -> tuple[dict, str]:
    """The report's files under ``target``, and an MLflow run with its headline figures."""
    files = write(report, target)
    k = report.k
    metrics: dict[str, float] = {"claims_holding": float(sum(v.holds for v in report.verdicts))}
    for variant, table in report.personal.items():
        key = "excluded" if VARIANTS[variant] else "counted"
        for model, stats in ndcg_by_model(table, "all", k).items():
            metrics[f"{key}.ndcg_at_{k}.{model}"] = stats["mean"]
    record = registry.RunRecord(
        params={"dataset": run.dataset, "bootstrap": str(bootstrap), "k": str(k)},
        metrics=metrics,
        tags={"cartlift.kind": "quality-report"},
        artifacts={},
    )
    run_id = registry.log_report(Settings(), f"{run.dataset}-quality", record, target, "quality")
    return {name: str(path) for name, path in files.items()}, run_id


@flow(name="quality")
def quality(
    data: str,
    fmt: str = "contract",
    mapping: str | None = None,
    config: RunConfig | None = None,
    out: str | None = None,
    bootstrap: int = 1000,
    config_source: str = "given",
    dataset: str | None = None,
) -> QualityResult:
    """Score every model on the shop's holdout; write and log the report."""
    settings = Settings()
    run = run_config(config, None, dataset, fmt, data)
    snapshot = ingest(data, fmt, mapping, run.dataset)
    features_step, partitions = features_flow(settings)
    fs = features_step(snapshot, run, partitions)
    baselines = fit_baselines(fs, run.train.seed)
    hybrid = fit(fs, run.train)
    cf = fit(fs, with_params(run, {"train.use_features": False}).train)
    scorers = {name: model.scores for name, model in baselines.items()}
    scorers |= {"lightfm-cf": Hybrid.of(cf, fs).scores, HYBRID: Hybrid.of(hybrid, fs).scores}
    tables = score_all(fs, scorers, run, bootstrap)
    cross, upsell = shopping_tables(fs, hybrid, baselines, run)
    k = run.evaluate.k
    verdicts = [v for name, t in tables.items() for v in personal(t, name, k)]
    verdicts += shopping(cross, upsell, k)
    report = Report(
        title=f"cartlift quality report: {run.dataset}",
        context=run_context(f"{data} ({fmt})", run, fs.summary(), config_source, bootstrap),
        verdicts=verdicts,
        personal=tables,
        cross=cross,
        upsell=upsell,
        k=k,
    )
    logger = get_run_logger()
    for v in verdicts:
        logger.info("%s %s: %s", "PASS" if v.holds else "FAIL", v.claim, v.figure)
    target = Path(out) if out else settings.reports_dir / "quality" / run.dataset
    files, run_id = publish(report, target, run, bootstrap)
    logger.info("Quality report written to %s and logged to MLflow run %s", target, run_id)
    return QualityResult(files, verdicts, run_id)
