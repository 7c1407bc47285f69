"""`cartlift benchmark quality` on a small shop: the command behind docs/quality.md, end to
end through the real Prefect engine and MLflow store."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from flows.cli import app
from infra.lake import write_shop
from infra.settings import Settings
from tests.browser import browser

pytestmark = pytest.mark.usefixtures("prefect_engine")

MODELS = {
    "popularity",
    "popularity, last 7 days",
    "popularity per category",
    "personal frequency",
    "item-kNN",
    "EASE",
    "association rules",
    "implicit ALS",
    "lightfm-cf",
    "lightfm-hybrid",
    "cartlift",
}


@pytest.fixture(scope="module")
def report(home, tiny_shop, tmp_path_factory):
    """`cartlift benchmark quality` on the tiny shop: (shop, config, report dir, output)."""
    tmp = tmp_path_factory.mktemp("quality")
    shop = tmp / "shop"
    write_shop(tiny_shop, shop)
    config = tmp / "run.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "dataset": "small-shop",
                "features": {"holdout_days": 14},
                "train": {"no_components": 8, "epochs": 5},
            }
        )
    )
    out = tmp / "report"
    args = ["benchmark", "quality", "--data", str(shop), "--config", str(config)]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--bootstrap", "100"])
    assert result.exit_code == 0, result.output
    return shop, config, out, result.output


def test_the_quality_report_scores_every_model_and_is_logged(report):
    _, _, out, output = report
    # Every verdict printed, each with its figure.
    verdicts = [line for line in output.splitlines() if line[:4] in ("PASS", "FAIL")]
    assert len(verdicts) == 2 * 4 + 3 + 1 + 2
    assert any("new items, cartlift NDCG@10 above 0" in v for v in verdicts)
    assert any("cartlift NDCG@10 >= 1.15x the strongest baseline" in v for v in verdicts)
    assert any("paired 95% interval of cartlift minus" in v for v in verdicts)
    assert any("the best of association rules, item-kNN, popularity" in v for v in verdicts)
    assert any(
        "in-session: next-item hit rate@10 >= 1.2x the strongest of popularity, SKNN, V-SKNN" in v
        for v in verdicts
    )
    assert any("audiences: precision@N >= 1.5x RFM targeting (N = " in v for v in verdicts)
    assert any(
        "bundles: hits per basket >= 1.1x the best of association rules (valid bundles), "
        "item-kNN (valid bundles)"
        in v
        and "two substitutes allowed" in v
        for v in verdicts
    )

    metrics = pd.read_csv(out / "metrics.csv")
    assert set(metrics["model"]) == MODELS
    assert set(metrics["variant"]) == {"bought items excluded", "repeat purchases counted"}
    assert set(metrics["slice"]) == {"all", "warm", "cold_users"}
    ndcg = metrics.query("metric == 'ndcg' and k == 10 and slice == 'all'")
    assert len(ndcg) == len(MODELS) * 2 * 2  # models x variants x tasks
    assert (ndcg["lower"] <= ndcg["mean"]).all() and (ndcg["mean"] <= ndcg["upper"]).all()

    markdown = (out / "report.md").read_text()
    for heading in ("## Verdicts", "## Against cartlift", "## Cross-sell", "## Upsell"):
        assert heading in markdown
    assert "## In-session answers" in markdown and "| cartlift session blend |" in markdown
    assert "## Audiences" in markdown and "| RFM |" in markdown and "precision@100" in markdown
    assert "## Bundles" in markdown and "| association rules |" in markdown
    assert "| association rules (valid bundles) |" in markdown
    differences = pd.read_csv(out / "differences.csv")
    assert set(differences["model"]) == MODELS - {"cartlift"}
    assert (differences["lower"] <= differences["difference"]).all()
    assert (differences["difference"] <= differences["upper"]).all()
    assert "| cartlift |" in markdown and "| lightfm-hybrid |" in markdown
    assert (
        "| EASE and ALS (chosen on the validation window) | bought items " in markdown
        and "![ndcg_by_model](ndcg_by_model.png)" in markdown
    )
    assert "| repeat purchases | " in markdown and "% of the training window's" in markdown
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "<table" in page
    for name in ("ndcg_by_model", "ndcg_by_slice", "cross_sell_upsell"):
        assert (out / f"{name}.png").stat().st_size > 10_000

    settings = Settings()
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    run_id = output.strip().splitlines()[-1].split()[-1]
    run = client.get_run(run_id)
    assert run.data.tags["cartlift.kind"] == "quality-report"
    assert "excluded.ndcg_at_10.cartlift" in run.data.metrics
    assert 0 < run.data.metrics["sessions.hit_rate_at_10.cartlift_session_blend"] <= 1
    logged = {f.path for f in client.list_artifacts(run_id, "quality")}
    assert {"quality/report.md", "quality/metrics.csv", "quality/differences.csv"} <= logged


def test_the_pipelines_popularity_is_the_reports(report):
    """One popularity, one protocol: the gate's figure for popularity (logged with the
    pipeline's run) is the quality report's, for the gate's variant (bought items
    excluded by default)."""
    shop, config, out, _ = report
    done = CliRunner().invoke(app, ["pipeline", "--data", str(shop), "--config", str(config)])
    assert done.exit_code == 0, done.output
    settings = Settings()
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    (run,) = client.search_runs(
        [client.get_experiment_by_name(settings.experiment_name).experiment_id],
        "tags.dataset = 'small-shop'",
    )
    metrics = pd.read_csv(out / "metrics.csv")
    row = metrics.query(
        "model == 'popularity' and variant == 'bought items excluded' and task == 'customers'"
        " and slice == 'all' and metric == 'ndcg' and k == 10"
    )
    assert row["mean"].item() == pytest.approx(run.data.metrics["popularity.ndcg_at_10"], abs=1e-6)


def test_the_quality_report_renders_in_a_browser(report, tmp_path):
    """The page a team opens (or finds in MLflow), in a real headless chromium: every
    section's heading, its tables, and the three plots decoded and drawn."""
    _, _, out, _ = report
    with browser() as page:
        page.open((out / "report.html").resolve().as_uri())
        page.wait_for("document.readyState === 'complete'")
        headings = page.evaluate("[...document.querySelectorAll('h2')].map(h => h.innerText)")
        markdown = (out / "report.md").read_text()
        assert headings == [line[3:] for line in markdown.splitlines() if line.startswith("## ")]
        assert "Verdicts" in headings and "In-session answers" in headings
        assert page.evaluate("document.querySelectorAll('table').length") >= 5
        drawn = "[...document.images].map(i => i.complete && i.naturalWidth > 400)"
        assert page.wait_for(f"{drawn}.length === 3 && {drawn}.every(Boolean)")
        assert "cartlift" in page.text()
        top = page.screenshot("quality-report", tmp_path)
        page.evaluate("document.images[0].scrollIntoView()")
        plots = page.screenshot("quality-report-plots", tmp_path)
        assert min(top.stat().st_size, plots.stat().st_size) > 20_000  # drawn, not blank
