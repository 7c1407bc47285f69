"""A registered version is self-contained: it loads in a process that has never seen the
repository, and its bundle says which format it is."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import pytest

from infra import registry
from infra.settings import Settings
from models.config import FeatureConfig, RankingConfig, TrainConfig
from models.features.build import build
from models.ranking.batch import predict_frame
from models.ranking.bundle import FORMAT_VERSION, Bundle, BundleFormatError, build_bundle
from models.recommenders.blend import Mix
from models.recommenders.hybrid import HybridModel

ROOT = Path(__file__).resolve().parents[2]

MIXES = {True: Mix(interest=1.0, trend=0.5), False: Mix(again=10.0, interest=1.0, trend=0.5)}


@pytest.fixture(scope="module")
def bundle(tiny_shop) -> Bundle:
    fs = build(tiny_shop.events, tiny_shop.items, tiny_shop.users, FeatureConfig(holdout_days=14))
    model = HybridModel.fit(fs, TrainConfig(no_components=8, epochs=2))
    return build_bundle(
        model, fs, FeatureConfig(holdout_days=14), RankingConfig(), {}, (MIXES, None), "discovery"
    )


@pytest.fixture(scope="module")
def registered(bundle, tmp_path_factory) -> tuple[Settings, str]:
    home = tmp_path_factory.mktemp("registry-home")
    settings = Settings(home=home)
    registry.connect(settings)
    version_, _ = registry.log_model(bundle, settings, list(bundle.model.user_ids[:3]))
    return settings, version_


def test_the_registered_model_loads_outside_the_repository(registered, bundle, tmp_path):
    settings, number = registered
    uri = f"models:/{settings.registered_model}/{number}"
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.path = [p for p in sys.path if p not in ("", ".", {str(ROOT)!r})]
        import mlflow, pandas as pd
        mlflow.set_tracking_uri({settings.tracking_uri!r})
        model = mlflow.pyfunc.load_model({uri!r})
        users = ["u-nobody", {bundle.model.user_ids[0]!r}]
        answer = model.predict(pd.DataFrame({{"user_id": users, "k": [5, 5]}}))
        loaded_from = sys.modules["models"].__file__
        print(json.dumps({{"rows": len(answer), "items": answer["item_id"].tolist(),
                           "models_from": loaded_from}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["rows"] == 10
    assert not out["models_from"].startswith(str(ROOT))  # the copy logged with the version
    frame = pd.DataFrame({"user_id": ["u-nobody", bundle.model.user_ids[0]], "k": [5, 5]})
    local = predict_frame(bundle, frame)
    assert out["items"] == local["item_id"].tolist()


def test_pip_requirements_are_pinned_to_the_locked_versions():
    lock = (ROOT / "uv.lock").read_text()
    for requirement in registry.pip_requirements():
        name, pinned = requirement.split("==")
        assert pinned == version(name)
        assert f'name = "{name}"\nversion = "{pinned}"' in lock, requirement
    assert not any(r.startswith("cartlift") for r in registry.pip_requirements())


def test_a_bundle_of_another_format_is_refused_naming_both_versions(bundle, tmp_path):
    from dataclasses import replace

    path = replace(bundle, format_version=1).save(tmp_path / "old.pkl")
    with pytest.raises(BundleFormatError, match=rf"format 1.*reads format {FORMAT_VERSION}"):
        Bundle.load(path)
    assert Bundle.load(bundle.save(tmp_path / "now.pkl")).format_version == FORMAT_VERSION


def test_a_version_carries_its_code_and_pins_not_the_platforms_lock(registered):
    import mlflow

    settings, number = registered
    mlflow.set_tracking_uri(settings.tracking_uri)
    local = Path(
        mlflow.artifacts.download_artifacts(f"models:/{settings.registered_model}/{number}")
    )
    assert not (local / "uv.lock").exists()
    assert (local / "code" / "models" / "ranking" / "bundle.py").exists()
    pins = (local / "requirements.txt").read_text().split()
    assert pins == registry.pip_requirements()
