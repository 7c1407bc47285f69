"""Hyperparameter search for the hybrid model: the search space, a validation window that
never sees the holdout, and training with early stopping.

The validation window is the last ``holdout_days`` of the *training* window: tuning
scores configurations on events the final model also trains on, and the holdout the gate
judges stays unseen until then.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache, partial
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from lightfm import LightFM

from models.config import RunConfig, excludes_purchased
from models.data.columns import Columns
from models.evaluation.protocol import slice_means
from models.evaluation.tasks import cross_sell_table, engine_cross_sell, objective, tasks
from models.features.build import FeatureSet, build, temporal_split, trends
from models.ranking.bundle import Bundle
from models.ranking.engine import Engine
from models.recommenders.base import Interactions, Recommender
from models.recommenders.blend import Mix, Signals, standardised
from models.recommenders.hybrid import Hybrid, HybridModel, fit_epoch, new_lightfm

C = Columns
V = TypeVar("V")


@dataclass
class TrialResult:
    params: dict[str, Any]
    score: float  # best validation score
    best_epoch: int
    curve: list[tuple[int, float]] = field(default_factory=list)  # (epoch, score)


def suggest(trial: Any) -> dict[str, Any]:
    """One point of the search space from an Optuna trial."""
    alpha = trial.suggest_float("alpha", 1e-7, 1e-3, log=True)
    weight = trial.suggest_float("feature_weight", 0.1, 1.0)
    return {
        "train.loss": trial.suggest_categorical("loss", ["warp", "bpr"]),
        "train.no_components": trial.suggest_int("no_components", 16, 128, log=True),
        "train.learning_rate": trial.suggest_float("learning_rate", 0.005, 0.1, log=True),
        "train.item_alpha": alpha,
        "train.user_alpha": alpha,
        "train.max_sampled": trial.suggest_int("max_sampled", 5, 50, log=True),
        "features.user_feature_weight": weight,
        "features.item_feature_weight": weight,
    }


def with_params(base: RunConfig, params: dict[str, Any]) -> RunConfig:
    """``base`` with dotted ``section.field`` values replaced (validated)."""
    values = base.model_dump()
    for key, value in params.items():
        section, name = key.split(".", 1)
        values[section][name] = value
    return RunConfig.model_validate(values)


def validation_features(
    events: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame, config: RunConfig
) -> FeatureSet:
    """Features whose holdout is the last ``holdout_days`` before the real cutoff."""
    train = temporal_split(events, config.features.holdout_days).train
    return build(train, items, users, config.features)


def _excludes(config: RunConfig, fs: FeatureSet) -> bool:
    """Whether the shop's objective (resolved on ``fs``'s training part) leaves out what
    customers bought before: tuning ranks on the objective the gate judges."""
    return excludes_purchased(objective(config.evaluate, fs))


def early_stopping(
    step: Callable[[], None],
    score: Callable[[], float],
    max_epochs: int,
    patience: int = 3,
    every: int = 2,
) -> TrialResult:
    """Run ``step`` (one epoch) up to ``max_epochs`` times, ``score`` every ``every`` epochs
    and after the last; stop after ``patience`` checks without improvement. The best
    epoch is the result (retrain to it: LightFM cannot roll back)."""
    curve: list[tuple[int, float]] = []
    best, best_epoch, waited = -1.0, 0, 0
    for epoch in range(1, max_epochs + 1):
        step()
        if epoch % every and epoch != max_epochs:
            continue
        value = float(score())
        curve.append((epoch, value))
        if value > best:
            best, best_epoch, waited = value, epoch, 0
        else:
            waited += 1
            if waited >= patience:
                break
    return TrialResult(params={}, score=best, best_epoch=best_epoch, curve=curve)


def lean_on_trend(
    model: LightFM, fs: FeatureSet, config: RunConfig
) -> tuple[RunConfig, dict[str, float]]:
    """``config`` with the trend half-life and weight that rank best on the validation
    window: everyone's trend for customers with a history, newcomers' trend for cold-start
    customers, each chosen on its own slice (the slices are disjoint) from the grids of
    ``config.tune``. Re-ranking only: the trained ``model`` is reused. With fewer than
    ``config.tune.min_cold_users`` cold-start customers in the window there is no
    evidence for theirs: the newcomers' half-life and weight stay as ``config`` has them
    (the newcomers' trend is another signal than everyone's, so the warm choice says
    nothing about it)."""
    grid, k = config.tune, config.evaluate.k
    customers = tasks(fs, _excludes(config, fs))["customers"]
    n_cold = int(customers.slices["cold_users"].sum())
    warm: dict[tuple[float, float], float] = {}
    cold: dict[tuple[float, float], float] = {}
    for half_life in grid.trend_half_lives:
        feats = config.features.model_copy(
            update={"trend_half_life_days": half_life, "newcomer_half_life_days": half_life}
        )
        item_trend, newcomer_trend = trends(fs.split.train, fs.item_ids, fs.split.cutoff, feats)
        at = replace(fs, item_trend=item_trend, newcomer_trend=newcomer_trend)
        for w in grid.trend_weights:
            cfg = config.train.model_copy(update={"trend_weight": w, "cold_trend_weight": w})
            means = slice_means(
                Hybrid.of(HybridModel.wrap(model, at, cfg), at).scores, customers, k
            )
            warm[(half_life, w)] = means["warm"]
            cold[(half_life, w)] = means["cold_users"] if n_cold else 0.0
    best_warm = max(warm, key=lambda key: warm[key])  # ties: the first, shorter and lighter
    configured = (config.features.newcomer_half_life_days, config.train.cold_trend_weight)
    few = n_cold < grid.min_cold_users
    best_cold = configured if few else max(cold, key=lambda key: cold[key])
    chosen = {
        "features.trend_half_life_days": best_warm[0],
        "train.trend_weight": best_warm[1],
        "features.newcomer_half_life_days": best_cold[0],
        "train.cold_trend_weight": best_cold[1],
    }
    scores = {
        f"val_warm_ndcg_at_{k}": warm[best_warm],
        f"val_cold_ndcg_at_{k}": cold.get(best_cold, 0.0),
        "val_cold_users": float(n_cold),
    }
    return with_params(config, chosen), scores


def fit_early_stopping(
    fs: FeatureSet, config: RunConfig, max_epochs: int, patience: int = 3, every: int = 2
) -> TrialResult:
    """Train the hybrid epoch by epoch, scoring NDCG@k on the validation window."""
    cfg, k = config.train, config.evaluate.k
    model = new_lightfm(cfg)
    customers = tasks(fs, _excludes(config, fs))["customers"]
    return early_stopping(
        lambda: fit_epoch(model, fs, cfg),
        lambda: slice_means(Hybrid.of(HybridModel.wrap(model, fs, cfg), fs).scores, customers, k)[
            "all"
        ],
        max_epochs,
        patience,
        every,
    )


def choose_on_validation(
    make: Callable[[V], Recommender],
    grid: Sequence[V],
    validation: FeatureSet,
    k: int,
) -> dict[bool, tuple[V, list[float]]]:
    """For each variant of the truth (``exclude_purchased`` True and False), the point of
    ``grid`` whose recommender ``make(point)`` ranks best (NDCG@``k``, all customers) on the
    validation window, and every point's score in grid order (ties: the first). How a
    baseline's knobs (EASE's regularisation, ALS's factors, ...) are set as an analyst
    would: never on the holdout."""
    data = Interactions.from_features(validation)
    customers = {ex: tasks(validation, ex)["customers"] for ex in (True, False)}
    scores: dict[bool, list[float]] = {True: [], False: []}
    for point in grid:
        model = make(point).fit(data)
        for exclude, t in customers.items():
            scores[exclude].append(slice_means(model.scores, t, k)["all"])
    return {ex: (grid[int(np.argmax(s))], s) for ex, s in scores.items()}


def _blended(
    base: np.ndarray, where: np.ndarray, signals: Signals, mix: Mix, rows: np.ndarray
) -> np.ndarray:
    """Precomputed standardised scores (``base``, rows at ``where[rows]``) plus signals."""
    return signals.add(base[where[rows]].copy(), rows, mix)


def choose_mix(
    model: Recommender,
    validation: FeatureSet,
    config: RunConfig,
    neighbours: sp.csr_matrix | None = None,
) -> dict[bool, tuple[Mix, float]]:
    """For each variant of the truth (``exclude_purchased`` True and False), the blend
    weights (:class:`~models.recommenders.blend.Mix`) that rank best on the validation
    window, NDCG@k over all customers, with ``model`` (and ``neighbours``) fitted on that
    window's training part; and the score they reached.

    A coordinate search from the model alone (with its new arrival,
    ``config.ranking.new_arrival_rank``): ``config.tune.mix_rounds`` passes over the
    weights, each trying every value of one weight's grid with the others held, keeping
    a change only when it ranks ``config.tune.mix_min_gain`` better (so ties and noise
    keep the lighter blend). The model's
    standardised scores are computed once per variant; each point only adds signals."""
    grid, k = config.tune, config.evaluate.k
    signals = Signals.of(validation, neighbours)
    axes = {
        "again": grid.mix_again,
        "interest": grid.mix_interest,
        "trend": grid.mix_trend,
        "neighbours": grid.mix_neighbours if neighbours is not None else (0.0,),
    }
    chosen: dict[bool, tuple[Mix, float]] = {}
    for exclude in (True, False):
        value = cache(_mix_value(model, validation, signals, exclude, k))
        mix = coordinate_search(
            value,
            axes,
            grid.mix_rounds,
            grid.mix_min_gain,
            Mix(arrival=config.ranking.new_arrival_rank),
        )
        chosen[exclude] = (mix, value(mix))
    return chosen


def _mix_value(
    model: Recommender, validation: FeatureSet, signals: Signals, exclude: bool, k: int
) -> Callable[[Mix], float]:
    """NDCG@k over the validation window's customers of the blend by a given mix."""
    customers = tasks(validation, exclude)["customers"]
    base = standardised(model.scores(customers.users))
    where = np.full(validation.weights.shape[0], -1)
    where[customers.users] = np.arange(len(customers.users))
    return lambda mix: slice_means(partial(_blended, base, where, signals, mix), customers, k)[
        "all"
    ]


def coordinate_search(
    value: Callable[[Mix], float],
    axes: Mapping[str, Sequence[float]],
    rounds: int,
    min_gain: float = 0.0,
    start: Mix | None = None,
) -> Mix:
    """From ``start`` (default: no signal), ``rounds`` passes over ``axes`` (a Mix field
    -> its values), each trying every value of one field with the others held; a change
    is kept only when it scores more than ``min_gain`` (relative) higher: a validation
    window's noise should not move a weight."""
    mix = start or Mix()
    for _ in range(rounds):
        for axis, values in axes.items():
            for v in values:
                change: dict[str, Any] = {axis: v}
                trial = replace(mix, **change)
                if value(trial) > value(mix) * (1.0 + min_gain) + 1e-9:
                    mix = trial
    return mix


def choose_cross_sell(
    bundle: Bundle,
    validation: FeatureSet,
    grid: Sequence[float],
    k: int,
    min_cases: int,
    at_most: int | None = None,
) -> tuple[float, list[float]]:
    """The weight of the cart's items through the blend's item-to-item weights in
    cross-sell (``ranking.cross_sell_neighbours``) whose hit rate@``k`` is best on the
    validation window's baskets (one hidden item per basket, as the quality report
    judges the holdout's), asked of the engine ``bundle`` (trained on that window's
    training part) answers with; and each point's hit rate in grid order (ties: the
    first). Fewer than ``min_cases`` baskets say too little: the configured weight; more
    than ``at_most``: a seeded sample of them (each case is one engine call per point)."""
    configured = bundle.ranking.cross_sell_neighbours
    rates = []
    for weight in grid:
        ranking = bundle.ranking.model_copy(update={"cross_sell_neighbours": weight})
        engine = Engine(replace(bundle, ranking=ranking))
        table = cross_sell_table(
            validation, {"cartlift": engine_cross_sell(engine, validation, k)}, k
        )
        if int(table["cases"].iloc[0]) < min_cases:
            return configured, []
        rates.append(float(table[f"hit_rate_at_{k}"].iloc[0]))
    return (float(grid[int(np.argmax(rates))]) if rates else configured), rates
