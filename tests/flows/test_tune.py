"""The tune flow through the real Prefect engine and MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from flows.cli import _run_config
from flows.tune import tune
from infra.lake import write_shop
from infra.settings import Settings
from models.config import FeatureConfig, RunConfig
from tests.conftest import prefect_artifacts

pytestmark = pytest.mark.usefixtures("prefect_engine")


def test_tune_searches_in_parallel_logs_nested_runs_and_sets_the_default(home, tiny_shop, tmp_path):
    shop = tmp_path / "shop"
    write_shop(tiny_shop, shop)
    base = RunConfig(dataset="shop", features=FeatureConfig(holdout_days=14))
    result = tune(str(shop), "contract", None, base, trials=4, parallel=2, max_epochs=6)

    assert len(result.trials) == 4
    assert result.score == max(r.score for r in result.trials) > 0
    assert {len(r.curve) for r in result.trials} <= {1, 2, 3}  # checked every 2 epochs
    settings = Settings()
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    experiment = client.get_experiment_by_name(settings.experiment_name)
    children = client.search_runs(
        [experiment.experiment_id], f"tags.mlflow.parentRunId = '{result.run_id}'"
    )
    assert len(children) == 4
    assert all("train.no_components" in run.data.params for run in children)

    saved = RunConfig.model_validate(yaml.safe_load(Path(result.config_path).read_text()))
    best = max(result.trials, key=lambda r: r.score)
    assert saved == result.best and saved.train.epochs == best.best_epoch
    assert saved.train.no_components == best.params["train.no_components"]
    # The trend weights were chosen on the validation window and logged on the study.
    assert {saved.train.trend_weight, saved.train.cold_trend_weight} <= set(
        RunConfig().tune.trend_weights
    )
    study = client.get_run(result.run_id).data.metrics
    assert 0 < study["val_warm_ndcg_at_10"] <= 1 and "val_cold_users" in study
    # What the search shows: the best trial and every trial in Prefect, Optuna's plots
    # beside the report and in the MLflow run.
    shown = prefect_artifacts("tune-shop", "trials-shop")
    assert f"validation NDCG {result.score:.4f}" in shown["tune-shop"].data
    assert len(json.loads(shown["trials-shop"].data)) == 4
    plots = {p.name.split("-")[-1] for p in (settings.reports_dir / "tune" / "shop").glob("*.png")}
    assert plots == {"history.png", "importance.png"}
    logged = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"history.png", "importance.png"} <= logged
    # The pipeline's default for this dataset from now on; --config still wins.
    assert _run_config(settings, None, None, "contract", shop) == saved
    explicit = tmp_path / "run.yaml"
    explicit.write_text("train: {epochs: 3}\n")
    assert _run_config(settings, explicit, None, "contract", shop).train.epochs == 3
