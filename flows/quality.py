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
from flows.tasks import run_config
from flows.train import features_flow, fit
from infra import registry
from infra.reports import Report, write
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
from models.recommenders.hybrid import Hybrid

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
    fs: FeatureSet, scorers: dict[str, Scorer], protocol: Protocol, exclude: bool
) -> pd.DataFrame:
    return compare(fs, scorers, exclude, protocol)


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
    logger = get_run_logger()
    snapshot = ingest(data, fmt, mapping, run.dataset)
    features_step, partitions = features_flow(settings)
    fs = features_step(snapshot, run, partitions)
    baselines = fit_baselines(fs, run.train.seed)
    hybrid = fit(fs, run.train)
    cf = fit(fs, with_params(run, {"train.use_features": False}).train)
    scorers = {name: model.scores for name, model in baselines.items()}
    scorers |= {"lightfm-cf": Hybrid.of(cf, fs).scores, HYBRID: Hybrid.of(hybrid, fs).scores}
    protocol = Protocol(ks=(5, 10, 20), bootstrap=bootstrap, seed=run.train.seed)
    tables = {}
    for variant, exclude in VARIANTS.items():
        logger.info("Scoring %d models, %s", len(scorers), variant)
        # With repeats allowed the hybrid is scored as served: earlier purchases lifted.
        again = with_buy_again(fs, scorers[HYBRID], run.ranking.buy_again_weight)
        served = scorers if exclude else scorers | {HYBRID: again}
        tables[variant] = score_all(fs, served, protocol, exclude)

    k = run.evaluate.k
    engine = Engine(build_bundle(hybrid, fs, run.features, run.ranking, {}))
    logger.info("Cross-sell and upsell on the holdout (the serving engine, one case at a time)")
    related = {name: (lambda rows, carts, m=m: m.related(carts)) for name, m in baselines.items()}
    cross = cross_sell_table(fs, {PRODUCT: engine_cross_sell(engine, fs, k)} | related, k)
    upsell = upsell_table(
        fs,
        {PRODUCT: engine_upsell(engine, fs, k), "cheapest pricier": cheapest_pricier(fs)} | related,
        k,
    )
    verdicts = [v for name, t in tables.items() for v in personal(t, name, k)]
    verdicts += shopping(cross, upsell, k)

    s = fs.summary()
    report = Report(
        title=f"cartlift quality report: {run.dataset}",
        context={
            "data": f"{data} ({fmt})",
            "dataset": run.dataset,
            "training window": f"{s['interactions']:,} interactions before {s['cutoff']}",
            "holdout": f"the last {run.features.holdout_days} days",
            "customers x items": f"{s['users']:,} x {s['items']:,}",
            "run config": config_source,
            "hybrid": (
                f"{run.train.loss}, {run.train.no_components} components, lr "
                f"{run.train.learning_rate:.3g}, {run.train.epochs} epochs, feature weight "
                f"{run.features.user_feature_weight:.3g}, trend weight "
                f"{run.train.trend_weight:g} (cold-start {run.train.cold_trend_weight:g})"
            ),
            "protocol": f"k = 5/10/20, {bootstrap} bootstrap samples, seed {run.train.seed}",
        },
        verdicts=verdicts,
        personal=tables,
        cross=cross,
        upsell=upsell,
        k=k,
    )
    target = Path(out) if out else settings.reports_dir / "quality" / run.dataset
    files = write(report, target)
    for v in verdicts:
        logger.info("%s %s: %s", "PASS" if v.holds else "FAIL", v.claim, v.figure)

    metrics: dict[str, float] = {"claims_holding": float(sum(v.holds for v in verdicts))}
    for variant, table in tables.items():
        key = "excluded" if VARIANTS[variant] else "counted"
        for model, stats in ndcg_by_model(table, "all", k).items():
            metrics[f"{key}.ndcg_at_{k}.{model}"] = stats["mean"]
    run_id = registry.log_report(
        settings,
        f"{run.dataset}-quality",
        registry.RunRecord(
            params={"dataset": run.dataset, "bootstrap": str(bootstrap), "k": str(k)},
            metrics=metrics,
            tags={"cartlift.kind": "quality-report"},
            artifacts={},
        ),
        target,
        "quality",
    )
    logger.info("Quality report written to %s and logged to MLflow run %s", target, run_id)
    return QualityResult({k: str(v) for k, v in files.items()}, verdicts, run_id)
