"""The command line meets user mistakes with one line that names the problem and a
non-zero exit, never a traceback; and says which version it is."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from typer.testing import CliRunner

from flows.cli import app
from infra.lake import write_shop


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("CARTLIFT_HOME", str(tmp_path / "home"))

    def run(*args: str):
        return CliRunner().invoke(app, list(args))

    return run


def one_line(result) -> str:
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0 and result.output.strip() == f"cartlift {version('cartlift')}"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("train:\n  epochs: 0\n  colour: red\n", "train.epochs: Input should be greater than"),
        ("train: [\n", "not YAML"),
        ("- 1\n", "a mapping of settings"),
        (None, "cannot read it"),
    ],
)
def test_a_bad_config_is_one_line_and_exit_2(cli, tmp_path, tiny_shop, text, says):
    shop = tmp_path / "shop"
    write_shop(tiny_shop, shop)
    config = tmp_path / "run.yaml"
    if text is not None:
        config.write_text(text)
    result = cli("pipeline", "--data", str(shop), "--config", str(config))
    assert result.exit_code == 2
    line = one_line(result)
    assert line.startswith(f"Bad run config {config}: ") and says in line
    if "epochs" in says:
        assert "train.colour: Extra inputs are not permitted" in line


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["pipeline", "--data", "{tmp}/nowhere"], "{tmp}/nowhere: not found"),
        (["ingest", "{tmp}", "--format", "online-retail"], "reads one file, not a directory"),
        (["tune", "--data", "{tmp}", "--format", "csv"], "format 'csv' needs --map"),
        (["pipeline", "--data", "{tmp}", "--format", "parquet"], "unknown format 'parquet'"),
        (["benchmark", "quality", "--data", "{tmp}"], "no items.csv, items.csv.gz or items"),
    ],
)
def test_data_that_cannot_be_a_shop_is_refused_before_any_run(cli, tmp_path, args, says):
    result = cli(*(a.format(tmp=tmp_path) for a in args))
    assert result.exit_code == 2
    line = one_line(result)
    assert line.startswith(f"Cannot use the data: {tmp_path}") and says.format(tmp=tmp_path) in line


def test_no_champion_is_one_line(cli, tmp_path):
    result = cli("recommend-batch", "--out", str(tmp_path / "recs.parquet"))
    assert result.exit_code == 1
    assert "No answer to give: no champion yet: run `cartlift pipeline`" in result.output
    assert "Traceback" not in result.output


def test_bootstrap_without_a_shop_and_without_the_demo_names_the_directory(cli, tmp_path):
    empty = tmp_path / "shop"
    empty.mkdir()
    result = cli("bootstrap", "--data", str(empty), "--no-demo")
    assert result.exit_code == 2
    assert f"No shop at {empty}: mount the shop's files there (or allow --demo)" in result.output
