"""The Bento's requirements agree with the lock file."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_bento_requirements_match_uv_lock():
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    locked = {p["name"].lower(): p["version"] for p in lock["package"] if "version" in p}
    pins = re.findall(
        r"^([A-Za-z0-9_.-]+)==([^\s;]+)", (ROOT / "serving/requirements.txt").read_text(), re.M
    )
    assert len(pins) > 100
    stale = {
        name: (v, locked.get(name.lower())) for name, v in pins if locked.get(name.lower()) != v
    }
    assert not stale, f"run `make requirements`: {stale}"


def test_bentofile_points_at_the_service():
    spec = yaml.safe_load((ROOT / "serving/bentofile.yaml").read_text())
    module, cls = spec["service"].split(":")
    assert (ROOT / (module.replace(".", "/") + ".py")).read_text().count(f"class {cls}") == 1


def test_the_serving_image_carries_no_orchestration():
    pins = re.findall(
        r"^([A-Za-z0-9_.-]+)==", (ROOT / "serving/requirements.txt").read_text(), re.M
    )
    names = {p.lower() for p in pins}
    assert not names & {"prefect", "prefect-dask", "optuna", "dask", "distributed", "evidently"}
    assert {"bentoml", "mlflow", "rectools-lightfm", "numpy", "scipy", "pandas"} <= names
    spec = yaml.safe_load((ROOT / "serving/bentofile.yaml").read_text())
    assert not any(p.startswith(("flows", "monitoring")) for p in spec["include"])
