"""The layers of docs/architecture.md hold, and breaking one is caught (import-linter)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("flows", "serving", "monitoring", "infra", "models")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "lint-imports"),
            "--config",
            str(root / "pyproject.toml"),
        ],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def copy_tree(tmp: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp / name, ignore=shutil.ignore_patterns("*.yaml", "*.yml"))
    shutil.copy(ROOT / "pyproject.toml", tmp / "pyproject.toml")
    return tmp


def test_the_import_contracts_hold():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "5 kept, 0 broken" in done.stdout


def test_serving_importing_flows_breaks_the_layers(tmp_path):
    root = copy_tree(tmp_path)
    store = root / "serving" / "store.py"
    store.write_text(store.read_text() + "\nfrom flows.pipeline import pipeline  # noqa\n")
    done = lint_imports(root)
    assert done.returncode != 0
    assert "BROKEN" in done.stdout and "serving.store -> flows.pipeline" in done.stdout


def test_the_core_importing_mlflow_breaks_its_purity(tmp_path):
    root = copy_tree(tmp_path)
    features = root / "models" / "features" / "build.py"
    features.write_text(features.read_text() + "\nimport mlflow  # noqa\n")
    done = lint_imports(root)
    assert done.returncode != 0 and "models.features.build -> mlflow" in done.stdout
