"""One path to a run's config: an explicit file, else the dataset's tuned config, else the
defaults; CARTLIFT_RUN__* variables on top."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from infra.settings import Settings, dataset_name, resolve_run_config, write_tuned_config
from models.config import RunConfig


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path)


def test_defaults_named_after_the_data(settings, tmp_path):
    (tmp_path / "orders.csv.gz").write_bytes(b"")
    run, origin = resolve_run_config(settings, data=tmp_path / "orders.csv.gz", environ={})
    assert origin == "defaults" and run == RunConfig(dataset="orders")
    assert dataset_name(None, "online-retail") == "online-retail"


def test_the_tuned_config_is_the_datasets_default_and_a_file_overrides_it(settings, tmp_path):
    write_tuned_config(
        settings,
        RunConfig(dataset="shop").model_copy(
            update={"train": RunConfig().train.model_copy(update={"epochs": 7})}
        ),
    )
    run, origin = resolve_run_config(settings, dataset="shop", environ={})
    assert run.train.epochs == 7 and origin.startswith("tuned")
    given = tmp_path / "run.yaml"
    given.write_text(yaml.safe_dump({"train": {"epochs": 3}}))
    run, origin = resolve_run_config(settings, given, dataset="shop", environ={})
    assert run.train.epochs == 3 and origin == str(given)


def test_environment_overrides_land_on_top_of_any_source(settings):
    write_tuned_config(settings, RunConfig(dataset="shop"))
    env = {"CARTLIFT_RUN__TRAIN__EPOCHS": "4", "CARTLIFT_RUN__EVALUATE__OBJECTIVE": "replenishment"}
    run, origin = resolve_run_config(settings, dataset="shop", environ=env)
    assert run.train.epochs == 4 and run.evaluate.objective == "replenishment"
    assert origin.endswith("with CARTLIFT_RUN__* overrides")
    with pytest.raises(ValidationError, match="epoch"):
        resolve_run_config(settings, dataset="shop", environ={"CARTLIFT_RUN__TRAIN__EPOCH": "4"})


def test_secrets_never_enter_the_run_config(settings):
    run, _ = resolve_run_config(settings, environ={"CARTLIFT_PSEUDONYMISE_KEY": "s3cret"})
    assert "s3cret" not in str(run.flat())
