"""Flow ``tune``: search the hybrid model's hyperparameters and make the best the default.

Optuna's TPE sampler (seeded) proposes configurations in batches of ``parallel``; each
batch runs as Prefect tasks submitted side by side on the flow's task runner (Prefect's
thread pool: LightFM releases the GIL while it trains), each trial with early stopping on
the validation window and logged as a nested MLflow run under the study's run. The best
configuration, with its best epoch count and the trend weights that rank best on the
validation window (:func:`models.evaluation.tuning.lean_on_trend`), is written to
``$CARTLIFT_HOME/configs/<dataset>.yaml``: the pipeline uses it when no ``--config`` is
given.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import optuna
from prefect import flow, get_run_logger, task

from flows.ingest import ingest
from flows.progress import progress
from flows.publish import short, show_tune
from flows.tasks import run_config
from infra import registry
from infra.lake import LakeSnapshot
from infra.settings import Settings, write_tuned_config
from models.config import RunConfig
from models.evaluation.tuning import (
    TrialResult,
    fit_early_stopping,
    lean_on_trend,
    suggest,
    validation_features,
    with_params,
)
from models.recommenders.hybrid import HybridModel


@dataclass
class TuneResult:
    best: RunConfig
    score: float
    trials: list[TrialResult]
    config_path: str
    run_id: str


@task(name="trial")
def trial(
    number: int,
    params: dict[str, Any],
    snapshot: LakeSnapshot,
    base: RunConfig,
    max_epochs: int,
    parent: str,
) -> TrialResult:
    """Train one configuration with early stopping on the validation window; log it as a
    child run of the study.

    Features are built per trial (the feature weights are searched too). Logged through
    an explicit client, not MLflow's thread-local active run: trials run side by side."""
    config = with_params(base, params)
    fs = validation_features(
        snapshot.read("events"), snapshot.read("items"), snapshot.read("users"), config
    )
    result = fit_early_stopping(fs, config, max_epochs)
    result.params = params
    registry.log_trial(
        Settings(),
        parent,
        f"trial-{number}",
        params,
        f"val_ndcg_at_{config.evaluate.k}",
        result.curve,
        result.best_epoch,
    )
    get_run_logger().info(
        "Trial %d: validation NDCG@%d %.4f at epoch %d (%s)",
        number,
        config.evaluate.k,
        result.score,
        result.best_epoch,
        ", ".join(f"{key.split('.')[-1]}={short(v)}" for key, v in params.items()),
    )
    return result


@task(name="lean on the trend")
def lean(snapshot: LakeSnapshot, config: RunConfig) -> tuple[RunConfig, dict[str, float]]:
    """The best configuration retrained on the validation window, then its trend weights
    chosen there (re-ranking only), with their validation scores."""
    fs = validation_features(
        snapshot.read("events"), snapshot.read("items"), snapshot.read("users"), config
    )
    tuned, scores = lean_on_trend(HybridModel.fit(fs, config.train).model, fs, config)
    get_run_logger().info(
        "Trends chosen on the validation window: customers with a history lean %.1f on "
        "everyone's (half-life %g days; NDCG@%d %.4f), cold-start customers %.1f on "
        "newcomers' (half-life %g days; %.4f, %d customers)",
        tuned.train.trend_weight,
        tuned.features.trend_half_life_days,
        config.evaluate.k,
        scores[f"val_warm_ndcg_at_{config.evaluate.k}"],
        tuned.train.cold_trend_weight,
        tuned.features.newcomer_half_life_days,
        scores[f"val_cold_ndcg_at_{config.evaluate.k}"],
        scores["val_cold_users"],
    )
    return tuned, scores


@flow(name="tune")
def tune(
    data: str,
    fmt: str = "contract",
    mapping: str | None = None,
    config: RunConfig | None = None,
    trials: int = 20,
    parallel: int = 2,
    max_epochs: int = 60,
    dataset: str | None = None,
    config_file: str | None = None,
) -> TuneResult:
    """Search LightFM's loss, size, learning rate, regularisation, sampling and feature
    weights; epochs by early stopping. The best becomes the dataset's default config."""
    settings = Settings()
    base = run_config(config, config_file, dataset, fmt, data)
    snapshot = ingest(data, fmt, mapping, base.dataset)
    sampler = optuna.samplers.TPESampler(seed=base.train.seed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    results: list[TrialResult] = []
    parent = registry.start_run(
        settings,
        f"{base.dataset}-tune",
        {"trials": trials, "parallel": parallel, "max_epochs": max_epochs},
    )
    with progress("tuning trials", trials) as advance:
        while len(results) < trials:
            batch = [study.ask() for _ in range(min(parallel, trials - len(results)))]
            futures = [
                trial.submit(t.number, suggest(t), snapshot, base, max_epochs, parent)
                for t in batch
            ]
            for t, future in zip(batch, futures, strict=True):
                result = future.result()
                study.tell(t, result.score)
                results.append(result)
                best_yet = max(r.score for r in results)
                advance(note=f"best validation NDCG {best_yet:.4f}")
    best = max(results, key=lambda r: r.score)
    tuned, trend_scores = lean(
        snapshot, with_params(base, {**best.params, "train.epochs": max(best.best_epoch, 1)})
    )
    path = write_tuned_config(settings, tuned)
    show_tune(study, results, str(path), base.dataset, parent)
    registry.finish_run(
        settings,
        parent,
        trend_scores | {f"best_val_ndcg_at_{base.evaluate.k}": best.score},
        {
            "best_config.json": tuned.model_dump(mode="json"),
            "trials.json": {"trials": [asdict(r) for r in results]},
        },
    )
    get_run_logger().info(
        "Best of %d trials: validation NDCG@%d %.4f; written to %s (the pipeline's default "
        "for %s from now on)",
        len(results),
        base.evaluate.k,
        best.score,
        path,
        base.dataset,
    )
    return TuneResult(tuned, best.score, results, str(path), parent)
