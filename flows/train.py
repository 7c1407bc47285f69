"""Flows ``build_features``, ``train`` and ``evaluate_and_register``."""

from __future__ import annotations

import hashlib
import inspect
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from prefect import flow, get_run_logger, task
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE

from flows.progress import progress
from flows.tasks import IO_RETRIES
from infra import registry
from infra.lake import LakeSnapshot
from infra.reports import metric_comparison
from infra.settings import Settings
from models.config import (
    FeatureConfig,
    Objective,
    RunConfig,
    TrainConfig,
    excludes_purchased,
)
from models.data.columns import Columns
from models.data.ids import IdMap
from models.data.ingest import as_frame
from models.evaluation import sessions as session_protocol
from models.evaluation.gate import GateDecision, gate
from models.evaluation.sessions import Learnt
from models.evaluation.tasks import holdout_metrics, repeat_share, variant
from models.evaluation.weighing import Weighed, weigh
from models.features import build as features_module
from models.features.build import (
    FeatureSet,
    UserSide,
    build,
    combine,
    partition_by_user,
    temporal_split,
    title_similarity,
    user_side,
)
from models.ranking.bundle import Bundle, build_bundle
from models.recommenders.base import Interactions, Recommender
from models.recommenders.baselines import RECENT_DAYS, simple_baselines
from models.recommenders.blend import Blended, Mix, Signals
from models.recommenders.hybrid import Hybrid, HybridModel
from models.recommenders.sessions import Weights

CHART_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate")


@dataclass
class Trained:
    """What training hands to the gate: the model, the blend the validation window chose
    for it and the shop's objective."""

    model: HybridModel
    weighed: Weighed
    objective: Objective
    sessions: Learnt | None = None  # in-session answers (None: no session in the window)

    @property
    def mixes(self) -> dict[bool, Mix]:
        """The blend's weights per variant (``exclude_purchased`` -> weights)."""
        return self.weighed.mixes

    @property
    def ease_l2(self) -> float:
        """EASE's regularisation chosen on the validation window (blend and gate)."""
        return self.weighed.ease_l2

    @property
    def blend(self) -> tuple[dict[bool, Mix], sp.csr_matrix]:
        return self.weighed.mixes, self.weighed.neighbours


@dataclass
class Registration:
    version: str
    run_id: str
    decision: GateDecision
    champion_version: str | None
    metrics: dict[str, float]
    popularity: dict[str, float]
    champion_metrics: dict[str, float] | None
    objective: Objective  # the variant every figure above was scored on
    baselines: dict[str, dict[str, float]]  # the simple baselines' figures (the gate's bar)
    served: str  # what the version answers with: "cartlift", or "baseline: <name>"
    challenger_version: str | None = None  # set when the gate's pick went to an experiment

    @property
    def outcome(self) -> str:
        """What became of the version, in words."""
        if self.challenger_version:
            return "the challenger: the online experiment decides"
        return "promoted to champion" if self.decision.promote else "not promoted"


def metric_key(name: str) -> str:
    """A model's name as MLflow allows it in a metric key ("popularity, last 7 days" ->
    "popularity_last_7_days")."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _features_code() -> str:
    """Fingerprint of the feature code, so a changed implementation never reuses a cached result."""
    return hashlib.sha256(inspect.getsource(features_module).encode()).hexdigest()[:12]


@task(
    name="build features",
    cache_policy=INPUTS + TASK_SOURCE,
    cache_expiration=timedelta(days=7),
    persist_result=True,
)
def featurise(snapshot: LakeSnapshot, cfg: FeatureConfig, code: str) -> FeatureSet:
    """Cached by the lake's fingerprint, the feature config and the feature code: an
    unchanged lake is not rebuilt."""
    fs = build(snapshot.read("events"), snapshot.read("items"), snapshot.read("users"), cfg)
    s = fs.summary()
    get_run_logger().info(
        "Features: %s users x %s items, %s interactions before %s; %s user and %s item features",
        f"{s['users']:,}",
        f"{s['items']:,}",
        f"{s['interactions']:,}",
        s["cutoff"],
        f"{s['user_features']:,}",
        f"{s['item_features']:,}",
    )
    return fs


@task(name="per-user features of a partition", cache_policy=NO_CACHE)
def user_part(
    train: pd.DataFrame, items: pd.DataFrame, cutoff: pd.Timestamp, cfg: FeatureConfig
) -> UserSide:
    return user_side(train, items, cutoff, cfg)


@task(name="assemble features", cache_policy=NO_CACHE)
def assemble(snapshot: LakeSnapshot, cfg: FeatureConfig, side: UserSide) -> FeatureSet:
    return build(snapshot.read("events"), snapshot.read("items"), snapshot.read("users"), cfg, side)


@flow(name="build_features")
def build_features(snapshot: LakeSnapshot, config: RunConfig, partitions: int = 1) -> FeatureSet:
    """Temporal split, weighted interactions, user and item features.

    With ``partitions`` > 1 the per-user work (interaction weights, activity, spend,
    preferred categories) runs as one task per partition of users on the flow's task
    runner (Dask, when :func:`features_flow` chose it), and is combined into exactly the
    features of the single-process path."""
    cfg = config.features
    if partitions <= 1:
        return featurise(snapshot, cfg, _features_code())
    events, items = snapshot.read("events"), snapshot.read("items")
    split = temporal_split(events, cfg.holdout_days)
    parts = partition_by_user(split.train, partitions)
    get_run_logger().info(
        "Per-user features in %d partitions of %s to %s events",
        partitions,
        f"{min(map(len, parts)):,}",
        f"{max(map(len, parts)):,}",
    )
    futures = [user_part.submit(part, items, split.cutoff, cfg) for part in parts]
    return assemble(snapshot, cfg, combine([f.result() for f in futures]))


def features_flow(settings: Settings) -> tuple[Any, int]:
    """``build_features`` on Dask when a scheduler is configured, else in this process."""
    if not settings.dask_address:
        return build_features, 1
    from prefect_dask import DaskTaskRunner

    runner = DaskTaskRunner(address=settings.dask_address)
    return build_features.with_options(task_runner=runner), settings.feature_partitions


@task(name="fit LightFM", cache_policy=NO_CACHE)
def fit(fs: FeatureSet, cfg: TrainConfig) -> HybridModel:
    logger = get_run_logger()
    logger.info(
        "Training LightFM (%s loss, %d components, %d epochs, features %s)",
        cfg.loss,
        cfg.no_components,
        cfg.epochs,
        "on" if cfg.use_features else "off",
    )

    with progress("training epochs", cfg.epochs) as advance:

        def done(epoch: int, epochs: int, seconds: float) -> None:
            logger.info("epoch %d/%d done in %.1f s", epoch, epochs, seconds)
            advance(note=f"epoch {epoch}: {seconds:.1f} s")

        model = HybridModel.fit(fs, cfg, on_epoch=done)
    logger.info("Trained in %.1f s", model.fit_seconds)
    return model


@task(name="choose the shop's objective", cache_policy=NO_CACHE)
def choose_objective(fs: FeatureSet, config: RunConfig) -> Objective:
    share = repeat_share(fs.split.train)
    aim = config.evaluate.resolve(share)
    how = (
        "as configured"
        if config.evaluate.objective != "auto"
        else (
            f"chosen from the data (replenishment from {config.evaluate.replenishment_share:.0%})"
        )
    )
    get_run_logger().info(
        "Objective: %s, %s; %.1f%% of the training window's purchase lines buy again what "
        "the customer bought before",
        aim,
        how,
        100 * share,
    )
    return aim


@task(name="weigh the blend on the validation window", cache_policy=NO_CACHE)
def weigh_blend(fs: FeatureSet, config: RunConfig, aim: Objective) -> Weighed:
    """The served answer's weights (the blend per variant, EASE's item-to-item weights,
    cross-sell's, a bundle's and an audience's), chosen on a validation window carved
    from the training window (:func:`models.evaluation.weighing.weigh`), each logged."""
    return weigh(fs, config, aim, get_run_logger().info)


@task(name="learn from sessions", cache_policy=NO_CACHE)
def learn_sessions(fs: FeatureSet, config: RunConfig, item_ids: np.ndarray) -> Learnt | None:
    """What a visitor touches next, from the training window's sessions
    (:func:`models.evaluation.sessions.learn`), weights chosen on the validation window."""
    logger, items = get_run_logger(), IdMap(item_ids)
    category = fs.items.set_index(Columns.item)[Columns.category].reindex(item_ids)
    learnt = session_protocol.learn(
        fs.split.train,
        fs.split.cutoff,
        config.features.holdout_days,
        items,
        pd.factorize(category.fillna("unknown"))[0],
        title_similarity(fs.items, item_ids, config.features.title_words),
        ranker=config.ranking.session_ranker,
    )
    if learnt.model.sessions.shape[0] == 0:
        logger.info("No sessions in the training window: no in-session answers")
        return None
    if learnt.table is None:
        logger.info("In-session answers: too few validation sessions, default weights")
    else:
        best = learnt.table.sort_values("hit_rate", ascending=False).iloc[0]
        logger.info(
            "In-session answers: %s (validation next-item hit rate@10 %.4f, MRR@10 %.4f)",
            learnt.weights,
            best["hit_rate"],
            best["mrr"],
        )
    taught = learnt.taught
    if taught is not None and np.isfinite(taught.blend_hit_rate):
        logger.info(
            "In-session ranker %s: on validation sessions it did not learn from, hit "
            "rate@10 %.4f against the blend's %.4f",
            "kept" if taught.ranker else "dropped",
            taught.ranker_hit_rate,
            taught.blend_hit_rate,
        )
    return learnt


@flow(name="train")
def train(features: FeatureSet, config: RunConfig) -> Trained:
    """Fit the hybrid LightFM model on the training window, settle the shop's objective,
    weigh the served blend on a validation window and learn from its sessions."""
    aim = choose_objective(features, config)
    weighed = weigh_blend(features, config, aim)
    model = fit(features, config.train)
    return Trained(model, weighed, aim, learn_sessions(features, config, model.item_ids))


@task(name="fit the simple baselines", cache_policy=NO_CACHE)
def fit_simple_baselines(
    fs: FeatureSet, trained: Trained, against: tuple[str, ...]
) -> dict[str, Recommender]:
    """The baselines every candidate must beat (:func:`simple_baselines`, those named in
    ``gate.against``), fitted on the training window; the strongest is served when none
    beats it."""
    data = Interactions.from_features(fs, RECENT_DAYS)
    return {m.name: m.fit(data) for m in simple_baselines(trained.ease_l2, against)}


@task(name="evaluate on the holdout", cache_policy=NO_CACHE)
def score(
    served: dict[str, tuple[HybridModel, dict[bool, Mix], Signals] | None],
    baselines: dict[str, Recommender],
    fs: FeatureSet,
    config: RunConfig,
    aim: Objective,
) -> dict[str, dict[str, float]]:
    """The candidate and the champion as each is served (the model in its blend, with the
    signals of the window it was trained on, in this holdout's order), and the simple
    baselines, through the one protocol (:func:`models.evaluation.tasks.holdout_metrics`)
    on the shop's objective: the quality report's table, means."""
    exclude = excludes_purchased(aim)
    scorers = {name: m.scores for name, m in baselines.items()}
    for name, found in served.items():
        if found is not None:
            model, mixes, signals = found
            signals = signals.onto(model.user_ids, model.item_ids, fs.user_map, fs.item_map)
            scorers[name] = Blended(Hybrid.of(model, fs), mixes[exclude], signals).scores
    k, logger = config.evaluate.k, get_run_logger()
    out = holdout_metrics(fs, scorers, k, aim)
    for name, metrics in out.items():
        logger.info(
            "%s: NDCG@%d %.4f over %d customers (%s)",
            name,
            k,
            metrics[f"ndcg_at_{k}"],
            int(metrics["users"]),
            aim,
        )
    return out


@task(name="load champion", **IO_RETRIES)
def champion() -> registry.Champion | None:
    settings = Settings()
    with registry.unavailable_as_io(settings, "loading the champion"):
        return registry.load_champion(registry.connect(settings), settings)


@task(name="apply the quality gate", cache_policy=NO_CACHE)
def apply_gate(
    scores: dict[str, dict[str, float]],
    baselines: list[str],
    current: registry.Champion | None,
    config: RunConfig,
) -> GateDecision:
    decision = gate(
        scores,
        config.dataset,
        current.dataset if current else None,
        current.version if current else None,
        config.gate.min_relative_gain,
        config.gate.metric,
        tuple(baselines),
        current.baseline if current else None,
    )
    get_run_logger().info("Gate: %s", decision.reason)
    return decision


@task(name="log run and register model", cache_policy=NO_CACHE, **IO_RETRIES)
def register(
    trained: Trained,
    fs: FeatureSet,
    snapshot: LakeSnapshot,
    scores: dict[str, dict[str, float]],
    decision: GateDecision,
    config: RunConfig,
    fallback: Recommender | None = None,
) -> tuple[str, str]:
    """Log config, data window, row counts, metrics and charts; register the model, or
    with ``fallback`` the baseline the gate chose to serve instead (the version carries
    the trained model too, for the item-to-item answers).

    Returns (version, run id). An MLflow outage is retried; a version whose registration
    broke off half-way is left without its tags and never becomes the champion.
    """
    settings = Settings()
    with registry.unavailable_as_io(settings, "registering the model"):
        return _log_and_register(
            trained, fs, snapshot, scores, decision, config, settings, fallback
        )


def _log_and_register(
    trained: Trained,
    fs: FeatureSet,
    snapshot: LakeSnapshot,
    scores: dict[str, dict[str, float]],
    decision: GateDecision,
    config: RunConfig,
    settings: Settings,
    fallback: Recommender | None,
) -> tuple[str, str]:
    k, model = config.evaluate.k, trained.model
    served = "cartlift" if fallback is None else f"baseline: {fallback.name}"
    report = snapshot.report()
    window = {
        "train_start": str(fs.split.train["timestamp"].min()),
        "cutoff": str(fs.split.cutoff),
        "test_end": str(fs.split.test["timestamp"].max()),
    }
    metrics = {
        **scores["candidate"],
        **{
            f"{metric_key(name)}.{m}": v
            for name, values in scores.items()
            if name != "candidate"
            for m, v in values.items()
        },
        "train_seconds": model.fit_seconds,
    }
    for table in ("items", "users", "events"):
        for part in ("read", "accepted", "quarantined"):
            metrics[f"rows.{table}.{part}"] = report[table][part]
    for key, value in fs.summary().items():
        if isinstance(value, int):
            metrics[f"features.{key}"] = float(value)
    run = registry.RunRecord(
        params={**config.flat(), "lake.fingerprint": snapshot.fingerprint},
        metrics=metrics,
        tags={
            "dataset": config.dataset,
            **{f"window.{key}": value for key, value in window.items()},
            "objective": trained.objective,
            **{
                f"blend.{variant(exclude)}": mix.described()
                for exclude, mix in trained.mixes.items()
            },
            "gate.decision": "promote" if decision.promote else "keep",
            "gate.reason": decision.reason,
            "served": served,
        },
        artifacts={
            "config.json": config.model_dump(mode="json"),
            "ingest_report.json": report,
            "row_accounting.csv": as_frame(report),
            "metrics.csv": pd.DataFrame(scores).rename_axis("metric").reset_index(),
            "metric_comparison.png": metric_comparison(
                scores,
                [f"{m}_at_{k}" for m in CHART_METRICS],
                f"{config.dataset}: holdout metrics at k={k}",
            ),
            "ndcg_by_slice.png": metric_comparison(
                scores,
                [f"{p}ndcg_at_{k}" for p in ("", "cold_users.", "new_items.")],
                f"{config.dataset}: NDCG@{k} by slice",
            ),
        },
    )

    def bundle(run_id: str) -> Bundle:
        meta = {
            "dataset": config.dataset,
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "run_id": run_id,
            **window,
            "served": served,
            "served_because": decision.reason if fallback is not None else "",
        }
        out = build_bundle(
            model,
            fs,
            config.features,
            trained.weighed.ranking,
            meta,
            trained.blend,
            trained.objective,
        )
        learnt = trained.sessions
        return replace(
            out,
            personal=fallback,
            sessions=learnt.model if learnt else None,
            session_weights=learnt.weights if learnt else Weights(),
        )

    metric = config.gate.metric
    return registry.log_and_register(
        settings,
        f"{config.dataset}-pipeline",
        run,
        bundle,
        list(fs.split.test["user_id"].head(3)),
        {
            "dataset": config.dataset,
            "objective": trained.objective,
            metric: f"{scores['candidate'][metric]:.6f}",
            "train_start": window["train_start"],
            "cutoff": window["cutoff"],
            "gate": decision.reason,
            "served": served,
        },
    )


@task(name="move the champion alias", **IO_RETRIES)
def crown(version: str, champion_serves: bool) -> bool:
    """The gate's pick becomes the champion; or, with experiments on
    (``Settings.experiments.challenge``) and a champion serving, its challenger, and the
    online experiment decides. True when it went to an experiment."""
    settings, logger = Settings(), get_run_logger()
    rules = settings.experiments
    with registry.unavailable_as_io(settings, "moving the champion alias"):
        if champion_serves and rules.challenge:
            registry.start_experiment(settings, version, rules.share)
            logger.info(
                "Version %s is the challenger for %.1f%% of customers: the online experiment "
                "decides (cartlift experiment status)",
                version,
                100 * rules.share,
            )
            return True
        registry.set_champion(registry.connect(settings), settings, version)
    logger.info("Version %s is the new champion", version)
    return False


@flow(name="evaluate_and_register")
def evaluate_and_register(
    trained: Trained,
    features: FeatureSet,
    snapshot: LakeSnapshot,
    config: RunConfig,
) -> Registration:
    """Score the candidate, the simple baselines and the current champion on one holdout,
    each as it is served and on the shop's objective; log and register; move the
    champion alias only through the quality gate. When the candidate does not beat the
    strongest baseline and nothing better is served, that baseline is registered and
    served, so a shop always gets answers."""
    current = champion()
    comparable = (
        current is not None and current.dataset == config.dataset and current.baseline is None
    )
    served = {
        "candidate": (
            trained.model,
            trained.mixes,
            Signals.of(features, trained.weighed.neighbours),
        ),
        "champion": (current.model, current.mixes, current.signals)
        if current and comparable
        else None,
    }
    baselines = fit_simple_baselines(features, trained, config.gate.against)
    scores = score(served, baselines, features, config, trained.objective)
    decision = apply_gate(scores, list(baselines), current, config)
    fallback = baselines[decision.baseline] if decision.baseline else None
    version, run_id = register(trained, features, snapshot, scores, decision, config, fallback)
    challenged = crown(version, current is not None) if decision.promote else False
    crowned = decision.promote and not challenged
    return Registration(
        version=version,
        run_id=run_id,
        decision=decision,
        champion_version=version if crowned else (current.version if current else None),
        metrics=scores["candidate"],
        popularity=scores["popularity"],
        champion_metrics=scores.get("champion"),
        objective=trained.objective,
        baselines={name: scores[name] for name in baselines},
        served="cartlift" if fallback is None else f"baseline: {fallback.name}",
        challenger_version=version if challenged else None,
    )
