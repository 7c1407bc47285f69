"""The experiment flow on the real Prefect engine and a real MLflow store: it credits a
hand-made prediction log, continues while it knows too little, then promotes a
challenger that sells more and ends the experiment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from flows.cli import app
from flows.experiment import experiment
from flows.train import crown
from infra import registry
from infra.settings import Settings
from models.data.predictions import Feedback, Served, to_line
from models.experiments.assignment import Experiment, assign, experiment_name


@pytest.fixture(scope="module")
def registered(home, prefect_engine):
    """Two versions in a real MLflow registry, version 1 the champion. The flow moves
    aliases and reads tags; it never loads a model, so the versions carry none (the
    serving tests register real ones)."""
    settings = Settings()
    client = registry.connect(settings)
    name = settings.registered_model
    client.create_registered_model(name)
    for _ in range(2):
        mv = client.create_model_version(name, source=str(home / "no-model"))
        client.set_model_version_tag(name, mv.version, "dataset", "default-shop")
    registry.promote(settings, "1")
    return settings


def write_log(settings: Settings, units: range, started: pd.Timestamp, seed: int) -> None:
    """What the service would have logged: three answers per customer from their variant,
    and purchases sent to /feedback, five times likelier from the challenger's answers."""
    name = experiment_name(settings.registered_model, settings.challenger_alias, "2")
    trial = Experiment("2", 0.5, name)
    rng = np.random.default_rng(seed)
    lines = []
    for n in units:
        user = f"c{n:05d}"
        arm = assign(trial, user)
        for k in range(3):
            when = started + pd.Timedelta(minutes=10 * n + k)
            answer = Served(
                request_id=f"r{n}-{k}",
                endpoint="recommend",
                user_id=user,
                items=["i000001", "i000002", "i000003"],
                scores=[3.0, 2.0, 1.0],
                model_version="2" if arm == "challenger" else "1",
                variant=arm,
                experiment=name,
                timestamp=when,
            )
            lines.append(to_line(answer))
            if rng.random() < (0.5 if arm == "challenger" else 0.1):
                bought = Feedback(
                    request_id=answer.request_id,
                    user_id=user,
                    item_id="i000002",
                    event="purchase",
                    quantity=1,
                    unit_price=12.5,
                    timestamp=when + pd.Timedelta(minutes=1),
                )
                lines.append(to_line(bought))
    day = settings.predictions_dir / f"date={started:%Y-%m-%d}"
    day.mkdir(parents=True, exist_ok=True)
    with (day / f"part-{seed}.jsonl").open("a") as fh:
        fh.write("\n".join(lines) + "\n")


def test_the_flow_continues_then_promotes_the_challenger_that_sells_more(registered):
    settings = registered
    assert experiment().action == "none"
    registry.start_experiment(settings, "2", 0.5)
    started = pd.Timestamp(registry.experiment(settings).started_at)

    write_log(settings, range(0, 100), started, seed=1)  # about 50 per variant: too few
    early = experiment(now=started + pd.Timedelta(hours=2))
    assert early.action == "continue" and "fewer than 200" in early.reason
    running = registry.experiment(settings)
    assert running.challenger == 2  # still on
    early_p = MlflowClient(settings.tracking_uri).get_run(early.run_id).data.metrics["p_value"]
    assert running.last_p == pytest.approx(early_p, rel=1e-4)  # the next look starts from it

    write_log(settings, range(100, 1000), started, seed=2)
    look = experiment(now=started + pd.Timedelta(days=2))
    assert look.action == "promote", look.reason
    kpis = look.kpis.set_index(["variant", "endpoint", "kpi"])["value"]
    assert (
        kpis[("challenger", "recommend", "conversion")]
        > kpis[("champion", "recommend", "conversion")]
    )
    after = registry.experiment(settings)
    assert after.champion == 2 and after.challenger is None
    tags = (
        MlflowClient(settings.tracking_uri).get_model_version(settings.registered_model, "2").tags
    )
    assert tags["promoted_by"] == "experiment" and tags["previous_champion"] == "1"
    run = MlflowClient(settings.tracking_uri).get_run(look.run_id)
    assert run.data.tags["action"] == "promote" and run.data.metrics["p_value"] <= 0.05
    page = Path(look.report).read_text()  # the team's report: decision, KPIs, plot
    assert "promote: the challenger sells more" in page and "conversion" in page
    assert page.count("data:image/png;base64,") == 1
    logged = MlflowClient(settings.tracking_uri).list_artifacts(look.run_id, "report")
    assert {Path(a.path).name for a in logged} >= {"experiment.html", "experiment_trajectory.png"}
    said = CliRunner().invoke(app, ["experiment", "evaluate"])
    assert said.exit_code == 0 and "none: no experiment running" in said.output, said.output


def test_with_experiments_on_the_gate_s_pick_becomes_the_challenger(registered, monkeypatch):
    """The pipeline's last step (the `crown` task, on the real engine): with
    ``experiments.challenge`` on and a champion serving, a candidate that passed the gate
    starts an experiment instead of taking over."""
    settings = registered
    client = registry.connect(settings)
    mv = client.create_model_version(settings.registered_model, source="none")
    champion = registry.experiment(settings).champion
    assert crown(mv.version, champion_serves=True) is False  # experiments off: it takes over
    assert registry.experiment(settings).champion == int(mv.version)
    registry.promote(settings, str(champion))

    monkeypatch.setenv("CARTLIFT_EXPERIMENTS__CHALLENGE", "true")
    monkeypatch.setenv("CARTLIFT_EXPERIMENTS__SHARE", "0.3")
    assert crown(mv.version, champion_serves=True) is True
    running = registry.experiment(settings)
    assert (running.champion, running.challenger, running.share) == (champion, int(mv.version), 0.3)
    registry.record_look(settings, 0.2)
    assert crown(mv.version, champion_serves=True)  # a new candidate: its test starts afresh
    assert registry.experiment(settings).last_p == 1.0
    registry.stop_experiment(settings)
    # No champion to challenge (the pipeline's first run): the pick takes over.
    assert crown(mv.version, champion_serves=False) is False
    assert registry.experiment(settings) == registry.Aliases(int(mv.version))
