"""`cartlift segment` on a small shop through the real Prefect engine and MLflow store:
the segment table in the lake, the report (HTML in a real browser, MLflow, Prefect), the
migration between two runs, and a segment as a batch export's filter."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from flows.cli import app
from infra.lake import write_shop
from infra.settings import Settings
from tests.browser import browser
from tests.conftest import prefect_artifacts

pytestmark = pytest.mark.usefixtures("prefect_engine")


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def shop(home, tiny_shop, tmp_path_factory):
    folder = tmp_path_factory.mktemp("shop")
    write_shop(tiny_shop, folder)
    return folder


@pytest.fixture(scope="module")
def first(shop):
    return cli("segment", "--data", str(shop))


def lake(shop):
    return Settings().dataset_lake(shop.name)  # a dataset is named after its folder


def test_segments_reach_the_lake_mlflow_and_prefect(first, shop, tiny_shop):
    lines = first.splitlines()
    assert any(" customers in " in line and "clusters:" in line for line in lines)
    assert any(line.startswith("RFM segments: ") for line in lines)
    table = pd.read_parquet(lake(shop) / "segments.parquet")
    assert set(table["user_id"]) == set(tiny_shop.events["user_id"].astype(str))
    assert {"r", "f", "m", "rfm", "rfm_segment", "cluster", "segment"} <= set(table.columns)
    (report,) = [line for line in first.splitlines() if line.startswith("Report: ")]
    run_id = report.split("MLflow run ")[-1].rstrip(")")
    client = MlflowClient(tracking_uri=Settings().tracking_uri)
    run = client.get_run(run_id)
    assert run.data.tags["cartlift.kind"] == "segments" and run.data.metrics["clusters"] >= 2
    logged = {f.path for f in client.list_artifacts(run_id)}
    assert {"report.html", "segments.csv", "rfm.csv"} <= logged
    key = f"segments-{shop.name}"
    shown = prefect_artifacts(key, f"segments-run-{shop.name}")
    assert "customers" in shown[key].data and "revenue share" in shown[key].data
    assert "segment table" in shown[f"segments-run-{shop.name}"].data


def test_a_second_run_shows_the_migration_and_renders_in_a_browser(first, shop, tmp_path):
    again = cli("segment", "--dataset", shop.name)  # from the lake, as a schedule runs it
    (report,) = [line for line in again.splitlines() if line.startswith("Report: ")]
    page_path = Path(report.removeprefix("Report: ").split(" (MLflow")[0])
    page = page_path.read_text()
    assert "<h2>Migration</h2>" in page
    history = sorted((lake(shop) / "segments").glob("*.parquet"))
    assert len(history) == 2
    # The same data and seed: every customer stays where they were.
    before, now = (pd.read_parquet(p) for p in history)
    pd.testing.assert_frame_equal(before, now)
    with browser() as tab:
        tab.open(page_path.as_uri())
        headings = tab.evaluate("[...document.querySelectorAll('h2')].map(h => h.innerText)")
        assert headings == ["What happened", "Segments", "RFM segments", "Migration", "Charts"]
        drawn = "[...document.images].map(i => i.complete && i.naturalWidth > 400)"
        assert tab.wait_for(f"{drawn}.length === 3 && {drawn}.every(Boolean)")
        shot = tab.screenshot("segments-report", tmp_path)
        assert shot.stat().st_size > 20_000


def test_a_segment_filters_a_batch_export_and_an_audience(first, shop, tiny_shop, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump(
            {"features": {"holdout_days": 14}, "train": {"no_components": 8, "epochs": 3}}
        )
    )
    cli("pipeline", "--data", str(shop), "--config", str(config))
    table = pd.read_parquet(lake(shop) / "segments.parquet")
    name = table["segment"].value_counts().index[0]
    out = tmp_path / "recs.parquet"
    said = cli("recommend-batch", "--out", str(out), "--segment", name)
    answers = pd.read_parquet(out)
    members = set(table.loc[table["segment"] == name, "user_id"])
    assert set(answers["user_id"]) == members and f"{len(members):,} users" in said
    unknown = CliRunner().invoke(app, ["recommend-batch", "--out", str(out), "--segment", "x"])
    assert unknown.exit_code != 0 and "no segment 'x'" in unknown.output
    assert "known: " in unknown.output and "Traceback" not in unknown.output

    # The same champion's audience for a category, as a campaign's file: the segment's
    # customers only, best first, each with a reason.
    category = str(tiny_shop.items["category"].value_counts().index[0])
    listed = tmp_path / "audience.csv"
    said = cli("audience", "--out", str(listed), "--category", category, "--segment", name)
    got = pd.read_csv(listed, dtype={"user_id": str})
    assert list(got.columns) == ["rank", "user_id", "score", "reason"]
    assert len(got) == min(1000, len(members)) and set(got["user_id"]) <= members
    assert got["score"].is_monotonic_decreasing and got["reason"].str.len().gt(0).all()
    assert f"{len(got):,} customers for {category} in segment {name!r}" in said
    nobody = cli("audience", "--out", str(listed), "--item", "no-such-item")
    assert "Warning: item 'no-such-item' unknown" in nobody and pd.read_csv(listed).empty
    both = CliRunner().invoke(
        app, ["audience", "--out", str(listed), "--item", "x", "--category", "y"]
    )
    assert both.exit_code == 2 and "exactly one of --item, --category and --brand" in both.output
