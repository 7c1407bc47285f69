"""The pipeline through the real Prefect engine and a real MLflow store (SQLite)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from flows.cli import app
from flows.ingest import ingest
from flows.pipeline import pipeline
from infra.lake import write_shop
from infra.settings import Settings
from models.config import FeatureConfig, GateConfig, RunConfig, TrainConfig
from models.data.contract import ContractError
from tests.conftest import MODEL_ALONE, prefect_artifacts

# The tiny shop's model is the served answer here: held against best sellers only, not
# the strongest baseline, which on 400 customers it does not beat by the gate's margin
# (the fallback to a baseline is tested in tests/serving/test_baseline.py).
FAST = RunConfig(
    features=FeatureConfig(holdout_days=14),
    train=TrainConfig(no_components=16, epochs=10),
    gate=GateConfig(against=("popularity",)),
)
pytestmark = pytest.mark.usefixtures("prefect_engine")
WORSE = FAST.model_copy(
    update={
        "train": TrainConfig(no_components=2, epochs=1, learning_rate=0.001),
        "tune": MODEL_ALONE,
    }
)


@pytest.fixture(scope="module")
def shop_dir(tiny_shop, tmp_path_factory):
    out = tmp_path_factory.mktemp("shop")
    write_shop(tiny_shop, out)
    return out


@pytest.fixture(scope="module")
def first(home, shop_dir):
    return pipeline(str(shop_dir), "contract", None, FAST)


def registry() -> tuple[MlflowClient, Settings]:
    settings = Settings()
    mlflow.set_tracking_uri(settings.tracking_uri)
    return MlflowClient(), settings


def test_first_run_registers_the_champion_with_everything_logged(first, home):
    client, settings = registry()
    assert settings.tracking_uri == f"sqlite:///{home / 'mlflow.db'}"
    champion = client.get_model_version_by_alias("cartlift-recommender", "champion")
    assert str(champion.version) == first.version == "1" and first.decision.promote
    run = client.get_run(first.run_id)
    assert (
        run.data.params["train.loss"] == "warp" and run.data.params["features.holdout_days"] == "14"
    )
    assert run.data.metrics["rows.events.read"] == run.data.metrics["rows.events.accepted"] > 0
    assert run.data.metrics["ndcg_at_10"] > run.data.metrics["popularity.ndcg_at_10"]
    assert {"cold_users.ndcg_at_10", "new_items.hit_rate_at_10", "coverage_at_10"} <= set(
        run.data.metrics
    )
    assert run.data.tags["dataset"] == "default-shop" and "window.cutoff" in run.data.tags
    names = {a.path for a in client.list_artifacts(first.run_id)}
    assert {
        "metric_comparison.png",
        "ndcg_by_slice.png",
        "config.json",
        "row_accounting.csv",
    } <= names
    model = mlflow.pyfunc.load_model("models:/cartlift-recommender@champion")
    assert model.metadata.signature is not None
    import pandas as pd

    out = model.predict(pd.DataFrame({"user_id": ["u000001", "never-seen"], "k": [5, 5]}))
    assert len(out) == 10 and out["item_id"].notna().all()


def test_the_run_shows_its_gate_in_prefect_and_an_html_page(first, home):
    """The flow run's page in Prefect carries the gate's table and a summary linking the
    MLflow run; the run's HTML page is under the reports directory and in MLflow."""
    found = prefect_artifacts("gate-default-shop", "pipeline-default-shop")
    gate, summary = found["gate-default-shop"], found["pipeline-default-shop"]
    assert gate.type == "table" and summary.type == "markdown" and gate.flow_run_id
    rows = {row["model"]: row for row in json.loads(gate.data)}
    assert {"cartlift (this run)", "popularity"} <= set(rows)
    assert rows["cartlift (this run)"]["ndcg_at_10"] == pytest.approx(
        first.metrics["ndcg_at_10"], abs=1e-4
    )
    assert first.decision.reason in summary.data and first.run_id in summary.data
    assert "mlflow ui --backend-store-uri" in summary.data
    pages = list((home / "reports" / "pipeline" / "default-shop").glob(f"*-v{first.version}.html"))
    assert len(pages) == 1
    page = pages[0].read_text()
    assert "<h2>The gate</h2>" in page and page.count("data:image/png;base64,") == 2
    client, _ = registry()
    assert "report.html" in {a.path for a in client.list_artifacts(first.run_id)}


def test_same_config_same_metrics_and_champion_stays(first, shop_dir):
    second = pipeline(str(shop_dir), "contract", None, FAST)
    assert second.metrics == first.metrics
    assert second.version == "2" and not second.decision.promote
    assert second.champion_version == "1"


def test_worse_config_does_not_move_champion(first, shop_dir):
    worse = pipeline(str(shop_dir), "contract", None, WORSE)
    assert worse.metrics["ndcg_at_10"] < first.metrics["ndcg_at_10"]
    assert not worse.decision.promote
    client, _ = registry()
    assert str(client.get_model_version_by_alias("cartlift-recommender", "champion").version) == "1"


def test_promote_rolls_back_and_forth(first):
    runner = CliRunner()
    result = runner.invoke(app, ["promote", "--version", "2"])
    assert result.exit_code == 0, result.output
    client, _ = registry()
    assert str(client.get_model_version_by_alias("cartlift-recommender", "champion").version) == "2"
    assert runner.invoke(app, ["promote", "--version", "99"]).exit_code == 1
    assert runner.invoke(app, ["promote", "--version", "1"]).exit_code == 0
    assert str(client.get_model_version_by_alias("cartlift-recommender", "champion").version) == "1"


def test_corrupt_events_are_quarantined_with_reasons(home, shop_dir, tmp_path):
    for name in ("items.csv", "users.csv"):
        (tmp_path / name).write_text((shop_dir / name).read_text())
    lines = (shop_dir / "events.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:200]
    bad = [
        "u000001,i000001,view,31/02/2026 25:00,1,10.0,",  # bad date
        "u000001,i000001,purchase,2026-03-01T10:00:00,1,-5.0,o1",  # negative price
        "u000001,NO-SUCH-ITEM,view,2026-03-01T10:00:00,1,10.0,",  # unknown item
    ]
    (tmp_path / "events.csv").write_text("\n".join([header, *rows, *bad]) + "\n")
    snapshot = ingest(str(tmp_path), "contract", None, "corrupt")
    report = snapshot.report()["events"]
    assert report["read"] == 202 and report["accepted"] == 199 and report["quarantined"] == 3
    assert report["reasons"] == {
        "timestamp not a date": 1,
        "price not a positive number": 1,
        "unknown item_id": 1,
    }
    import pandas as pd

    quarantine = pd.read_csv(home / "quarantine" / "corrupt" / "events.csv", dtype=str)
    assert quarantine["_row"].tolist() == ["200", "201", "202"]


def test_missing_column_stops_the_flow_naming_file_and_column(shop_dir, tmp_path):
    for name in ("items.csv", "users.csv"):
        (tmp_path / name).write_text((shop_dir / name).read_text())
    import pandas as pd

    events = pd.read_csv(shop_dir / "events.csv", dtype=str, nrows=50).drop(columns=["timestamp"])
    events.to_csv(tmp_path / "events.csv", index=False)
    with pytest.raises(
        ContractError, match=r"events\.csv: column 'timestamp': required column missing"
    ):
        pipeline(str(tmp_path), "contract", None, FAST.model_copy(update={"dataset": "broken"}))


def test_cli_pipeline_prints_metrics_and_store(home, shop_dir, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(json.dumps(FAST.model_dump(mode="json")))
    result = CliRunner().invoke(app, ["pipeline", "--data", str(shop_dir), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "events: read" in result.output and "model / popularity" in result.output
    assert "MLflow store: sqlite:///" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epoch: 3\n")
    assert (
        CliRunner()
        .invoke(app, ["pipeline", "--data", str(shop_dir), "--config", str(bad)])
        .exit_code
        != 0
    )


def test_pseudonymised_ids_never_reach_lake_quarantine_or_mlflow(shop_dir, tmp_path, monkeypatch):
    import pandas as pd

    monkeypatch.setenv("CARTLIFT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CARTLIFT_PSEUDONYMISE_KEY", "test-key")
    result = pipeline(str(shop_dir), "contract", None, FAST)
    raw_ids = set(pd.read_csv(shop_dir / "users.csv", dtype=str)["user_id"])
    lake = tmp_path / "home" / "lake" / "default-shop"
    for table in ("events", "users"):
        ids = set(pd.read_parquet(lake / f"{table}.parquet")["user_id"])
        assert ids and not ids & raw_ids and all(i.startswith("c_") for i in ids)
    registry()
    example = mlflow.artifacts.download_artifacts(
        run_id=result.run_id, artifact_path="model/input_example.json", dst_path=str(tmp_path)
    )
    text = Path(example).read_text()
    assert "c_" in text and not any(f'"{u}"' in text for u in list(raw_ids)[:500])
