"""Flow ``quality``: every model on a shop's temporal split, as a report a shop can read.

The baselines a shop's analyst would try first (popularity, last week's best sellers,
popularity per category, each customer's own favourites, item-kNN, EASE, association
rules, implicit ALS), LightFM without features, the hybrid with the run config (the tuned
one when ``tune`` has written it) and ``cartlift``, what the engine serves (the hybrid in
its blend, :mod:`models.recommenders.blend`), are scored through the one protocol of
:mod:`models.evaluation.protocol`, twice: repeat purchases counted, and items bought
before the cutoff excluded; the report names the shop's objective, the variant the gate
judges. Every model is also compared with ``cartlift`` on the same customers (paired
bootstrap). The blend's weights, EASE's regularisation and ALS's factors,
regularisation and alpha are chosen on a validation window carved from the training
window, per variant. The product's own cross-sell and upsell (the serving engine over
the hybrid) are judged against the classic methods, its in-session answers against
session-kNN (:mod:`models.evaluation.sessions`). The report (Markdown, HTML, plots,
the full metric table and the paired differences) goes to
``$CARTLIFT_HOME/reports/quality/<dataset>`` and is logged to MLflow with its headline
figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.ingest import ingest
from flows.progress import progress
from flows.tasks import IO_RETRIES, run_config
from flows.train import choose_objective, features_flow, fit, weigh_blend
from infra import registry
from infra.reports import Report, run_context, write
from infra.settings import Settings
from models.config import RunConfig, excludes_purchased
from models.data.columns import Columns
from models.data.ids import IdMap
from models.evaluation import audiences, bundles, sessions
from models.evaluation.protocol import Protocol, Scorer
from models.evaluation.tasks import (
    TASKS,
    VARIANTS,
    cheapest_pricier,
    compare_paired,
    cross_sell_table,
    engine_cross_sell,
    engine_upsell,
    repeat_share,
    upsell_table,
    variant,
)
from models.evaluation.tuning import choose_on_validation, with_params
from models.evaluation.verdicts import (
    HYBRID,
    PRODUCT,
    Verdict,
    audience_table,
    in_session,
    ndcg_by_model,
    personal,
    promotions,
    shopping,
)
from models.features.build import FeatureSet, build, title_similarity
from models.ranking.bundle import build_bundle
from models.ranking.engine import Engine
from models.recommenders.base import Interactions, Recommender
from models.recommenders.baselines import (
    EASE,
    RECENT_DAYS,
    AssociationRules,
    CategoryPopularity,
    ImplicitALS,
    ItemKNN,
    PersonalFrequency,
    Popularity,
    RecentPopularity,
)
from models.recommenders.blend import Blended, Signals
from models.recommenders.hybrid import Hybrid

# Implicit ALS (factors, regularisation, alpha): 18 points, about the trials `tune` gives
# the hybrid, chosen on the same validation window.
ALS_GRID = tuple(
    (factors, reg, alpha)
    for factors in (32, 64, 128)
    for reg in (0.01, 0.1)
    for alpha in (1.0, 10.0, 40.0)
)


@dataclass
class QualityResult:
    files: dict[str, str]
    verdicts: list[Verdict]
    run_id: str


@dataclass
class Baselines:
    """The fitted baselines; EASE and implicit ALS per variant (``exclude_purchased`` ->
    model), each with the knobs the validation window chose for that variant."""

    common: dict[str, Recommender]
    ease: dict[bool, EASE]
    als: dict[bool, ImplicitALS]

    def for_variant(self, exclude: bool) -> dict[str, Recommender]:
        return self.common | {"EASE": self.ease[exclude], "implicit ALS": self.als[exclude]}

    def described(self) -> str:
        return "; ".join(
            f"{name}: EASE l2 {self.ease[ex].l2:g}, ALS {self.als[ex].factors} factors, "
            f"regularisation {self.als[ex].regularization:g}, alpha {self.als[ex].alpha:g}"
            for name, ex in VARIANTS.items()
        )


def _als(point: tuple[int, float, float], seed: int) -> ImplicitALS:
    factors, reg, alpha = point
    return ImplicitALS(factors=factors, regularization=reg, alpha=alpha, seed=seed)


@task(name="fit baselines", cache_policy=NO_CACHE)
def fit_baselines(fs: FeatureSet, run: RunConfig) -> Baselines:
    """Every baseline on the training window; EASE's and ALS's knobs first chosen on a
    validation window carved from it (the holdout stays unseen)."""
    logger = get_run_logger()
    k, seed = run.evaluate.k, run.train.seed
    validation = build(fs.split.train, fs.items, fs.users, run.features)
    ease_l2 = choose_on_validation(lambda l2: EASE(l2=l2), run.tune.neighbour_l2, validation, k)
    als_point = choose_on_validation(lambda p: _als(p, seed), ALS_GRID, validation, k)
    for name, exclude in VARIANTS.items():
        logger.info(
            "On the validation window, %s: EASE l2 %g (NDCG@%d %.4f), ALS %s (NDCG@%d %.4f)",
            name,
            ease_l2[exclude][0],
            k,
            max(ease_l2[exclude][1]),
            als_point[exclude][0],
            k,
            max(als_point[exclude][1]),
        )
    data = Interactions.from_features(fs, RECENT_DAYS)
    models: list[Recommender] = [
        Popularity(),
        RecentPopularity(name=f"popularity, last {RECENT_DAYS} days"),
        CategoryPopularity(),
        PersonalFrequency(),
        ItemKNN(),
        AssociationRules(),
    ]
    for model in models:
        model.fit(data)
        logger.info("Fitted %s", model.name)
    ease = {ex: EASE(l2=l2).fit(data) for ex, (l2, _) in ease_l2.items()}
    als = {ex: _als(point, seed).fit(data) for ex, (point, _) in als_point.items()}
    return Baselines({m.name: m for m in models}, ease, als)


@task(name="score every model", cache_policy=NO_CACHE)
def score_all(
    fs: FeatureSet,
    scorers: dict[bool, dict[str, Scorer]],
    run: RunConfig,
    bootstrap: int,
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Every model through the one protocol, in both variants of the truth, and each
    one's paired difference from ``cartlift`` (what the engine serves: the hybrid in its
    blend, :mod:`models.recommenders.blend`)."""
    protocol = Protocol(ks=(5, 10, 20), bootstrap=bootstrap, seed=run.train.seed)
    tables, differences = {}, {}
    steps = sum(len(models) for models in scorers.values()) * len(TASKS)
    with progress("scoring models", steps) as advance:
        for name, exclude in VARIANTS.items():
            models = scorers[exclude]
            get_run_logger().info("Scoring %d models, %s", len(models), name)
            tables[name], differences[name] = compare_paired(
                fs,
                models,
                exclude,
                protocol,
                PRODUCT,
                on_scored=lambda task, model: advance(note=f"{model} ({task})"),
            )
    return tables, differences


@task(name="cross-sell and upsell", cache_policy=NO_CACHE)
def shopping_tables(
    fs: FeatureSet, engine: Engine, baselines: Baselines, run: RunConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The serving engine over the hybrid (one case at a time, as the endpoints answer)
    against every baseline's ``related`` and the naive upsell."""
    k = run.evaluate.k
    related = {
        name: (lambda rows, carts, m=m: m.related(carts))
        for name, m in baselines.for_variant(True).items()  # a cart excludes its items
    }
    cross = cross_sell_table(fs, {PRODUCT: engine_cross_sell(engine, fs, k)} | related, k)
    upsell = upsell_table(
        fs,
        {PRODUCT: engine_upsell(engine, fs, k), "cheapest pricier": cheapest_pricier(fs)} | related,
        k,
    )
    return cross, upsell


@task(name="audiences and bundles", cache_policy=NO_CACHE)
def promotion_tables(
    fs: FeatureSet, engine: Engine, baselines: Baselines, bootstrap: int
) -> tuple[audiences.Comparison | None, bundles.Comparison | None]:
    """The two promotion protocols on the shop's holdout: audiences (cartlift's item to
    users, as /audience scores them, against RFM and the category's own customers) and
    bundles (a pack of 3 for a revealed item, as /bundle builds it, against pairwise
    rules and item-kNN packs). None where the holdout holds no target or no basket."""
    logger = get_run_logger()
    rules = {PRODUCT: lambda t: engine.audience_scores(t.items)} | audiences.baseline_rules(fs)
    try:
        targeted = audiences.compare(fs, rules, resamples=max(bootstrap, 100))
    except ValueError as exc:  # no target with enough holdout buyers
        logger.info("Audiences: %s", exc)
        targeted = None
    packs = None
    if len(bundles.cases_of(fs).revealed):
        rivals = {name: baselines.common[name] for name in bundles.PACK_RIVALS}
        cases, found = bundles.packs_of(engine, fs, rivals)
        packs = bundles.compare(cases, found, PRODUCT, max(bootstrap, 100))
    else:
        logger.info("Bundles: no holdout basket of two or more items")
    return targeted, packs


@task(name="in-session answers", cache_policy=NO_CACHE)
def session_comparison(fs: FeatureSet, run: RunConfig) -> sessions.Comparison | None:
    """The session protocol (:func:`models.evaluation.sessions.compare`) on the shop's
    split: what a visitor touches next, cartlift's session blend against session-kNN."""
    items = IdMap(fs.items[Columns.item])
    category = fs.items[Columns.category].fillna("unknown")
    got = sessions.compare(
        fs.split.train,
        fs.split.test,
        items,
        pd.factorize(category)[0],
        run.features.holdout_days,
        k=run.evaluate.k,
        title=title_similarity(fs.items, items.ids, run.features.title_words),
        ranker=run.ranking.session_ranker,
    )
    if got is None:
        get_run_logger().info("In-session answers: too few sessions to score")
    return got


@task(name="write and log the report", cache_policy=NO_CACHE, **IO_RETRIES)
def publish(report: Report, target: Path, run: RunConfig, bootstrap: int) -> tuple[dict, str]:
    """The report's files under ``target``, and an MLflow run with its headline figures."""
    files = write(report, target)
    k = report.k
    metrics: dict[str, float] = {"claims_holding": float(sum(v.holds for v in report.verdicts))}
    for name, table in report.personal.items():
        key = "excluded" if VARIANTS[name] else "counted"
        for model, stats in ndcg_by_model(table, "all", k).items():
            metrics[f"{key}.ndcg_at_{k}.{model}"] = stats["mean"]
    if report.sessions is not None:
        for model, hit in report.sessions["hit_rate"].items():
            metrics[f"sessions.hit_rate_at_{k}.{model}"] = float(hit)
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
    baselines = fit_baselines(fs, run)
    aim = choose_objective(fs, run)
    weighed = weigh_blend(fs, run, aim)
    mixes = weighed.mixes
    hybrid = fit(fs, run.train)
    cf = fit(fs, with_params(run, {"train.use_features": False}).train)
    ours = {"lightfm-cf": Hybrid.of(cf, fs), HYBRID: Hybrid.of(hybrid, fs)}
    signals = Signals.of(fs, weighed.neighbours)
    scorers = {
        exclude: {PRODUCT: Blended(ours[HYBRID], mixes[exclude], signals).scores}
        | {name: m.scores for name, m in baselines.for_variant(exclude).items()}
        | {name: m.scores for name, m in ours.items()}
        for exclude in VARIANTS.values()
    }
    tables, differences = score_all(fs, scorers, run, bootstrap)
    # What the endpoints serve, built once for every protocol that asks the engine.
    engine = Engine(
        build_bundle(
            hybrid, fs, run.features, weighed.ranking, {}, (weighed.mixes, weighed.neighbours), aim
        )
    )
    cross, upsell = shopping_tables(fs, engine, baselines, run)
    k = run.evaluate.k
    verdicts = [v for name, t in tables.items() for v in personal(t, differences[name], name, k)]
    in_sessions = session_comparison(fs, run)
    targeted, packs = promotion_tables(fs, engine, baselines, bootstrap)
    verdicts += shopping(cross, upsell, k) + in_session(in_sessions)
    verdicts += promotions(targeted, packs)
    report = Report(
        title=f"cartlift quality report: {run.dataset}",
        context=run_context(f"{data} ({fmt})", run, fs.summary(), config_source, bootstrap)
        | {
            "repeat purchases": f"{repeat_share(fs.split.train):.1%} of the training window's "
            "purchase lines buy again what the customer bought before",
            "the shop's objective": f"{aim} (`evaluate.objective` {run.evaluate.objective}): "
            f"the gate scores the variant {variant(excludes_purchased(aim))!r}",
            "cartlift's blend (chosen on the validation window)": "; ".join(
                f"{name}: {mixes[ex].described()}" for name, ex in VARIANTS.items()
            )
            + f"; cross-sell: the cart's neighbours weigh "
            f"{weighed.ranking.cross_sell_neighbours:g}",
            "EASE and ALS (chosen on the validation window)": baselines.described(),
        },
        verdicts=verdicts,
        personal=tables,
        differences=differences,
        cross=cross,
        upsell=upsell,
        k=k,
        sessions=None if in_sessions is None else in_sessions.table.set_index("model"),
        sessions_note=""
        if in_sessions is None
        else f"{in_sessions.sessions:,} holdout sessions of two steps or more, visitors "
        f"treated as anonymous: each prefix of 1 to 5 steps asks for the next item "
        f"({in_sessions.cases:,} questions), hit rate@{k} and MRR@{k} averaged per session. "
        "The blend's weights and each session-kNN's variant are chosen on the training "
        "window's last days.",
        audiences=None if targeted is None else audience_table(targeted),
        audiences_note=""
        if targeted is None
        else f"{targeted.targets} targets: the holdout's most bought items and its "
        "categories (10+ buyers each). Each rule ranks every customer from the training "
        "window alone; precision@N is the share of its top N who bought the target in the "
        "holdout (N = 100 and 1% of customers), lift divides it by the share of all "
        "customers who did. cartlift scores as /audience does.",
        bundles=None if packs is None else packs.table.set_index("rule"),
        bundles_note=""
        if packs is None
        else f"{int(packs.table['baskets'].iloc[0]):,} holdout orders (of 3+ items; of 2 "
        "where the shop has none of 3): one item revealed (seeded), a pack of 3 asked for; "
        "hits are the order's hidden items in the pack. cartlift packs as /bundle does; "
        "each baseline packs as it ranks and, '(valid bundles)', held to the bundle's rule "
        "of never two substitutes, as cartlift's packs are (the verdict compares these).",
    )
    logger = get_run_logger()
    for v in verdicts:
        logger.info("%s %s: %s", "PASS" if v.holds else "FAIL", v.claim, v.figure)
    target = Path(out) if out else settings.reports_dir / "quality" / run.dataset
    files, run_id = publish(report, target, run, bootstrap)
    logger.info("Quality report written to %s and logged to MLflow run %s", target, run_id)
    return QualityResult(files, verdicts, run_id)
