"""The data lake on disk: reading sources, writing Parquet tables atomically."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.data.columns import Columns
from models.data.contract import ContractError
from models.data.shop import Shop

log = logging.getLogger(__name__)
TABLES = ("items", "users", "events")
SUFFIXES = (".parquet", ".csv", ".csv.gz")


@dataclass(frozen=True)
class LakeSnapshot:
    """Where a dataset's accepted tables live, and a fingerprint of their content."""

    dataset: str
    path: str
    fingerprint: str

    def table(self, name: str) -> Path:
        return Path(self.path) / f"{name}.parquet"

    def read(self, name: str) -> pd.DataFrame:
        return pd.read_parquet(self.table(name))

    def report(self) -> dict[str, Any]:
        return json.loads((Path(self.path) / "ingest.json").read_text())


def read_raw(path: Path) -> pd.DataFrame:
    """A source file as text columns plus ``_row`` (1-based data row number).

    Every value is read as text so one bad value cannot fail a whole column; typing
    happens in validation, row by row. Non-UTF-8 files are read as Latin-1 (logged).
    """
    path = Path(path)
    if not path.exists():
        raise ContractError(str(path), "file not found")
    try:
        if path.name.endswith(".parquet"):
            frame = pd.read_parquet(path).astype("string")
        else:
            try:
                frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
            except UnicodeDecodeError:
                log.warning("%s is not UTF-8; reading it as Latin-1", path)
                frame = pd.read_csv(
                    path, dtype=str, keep_default_na=False, na_values=[""], encoding="latin-1"
                )
    except ContractError:
        raise
    except Exception as exc:  # any parser failure makes the file unusable: say which and why
        raise ContractError(str(path), f"cannot be read: {exc}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    frame[Columns.source_row] = np.arange(1, len(frame) + 1).astype(str)
    return frame


def find_table(directory: Path, name: str) -> Path | None:
    """``name.parquet``, ``name.csv`` or ``name.csv.gz`` in a directory."""
    for suffix in SUFFIXES:
        candidate = Path(directory) / f"{name}{suffix}"
        if candidate.exists():
            return candidate
    return None


def _atomic(path: Path, write: Callable[[Path], object]) -> Path:
    """Write to a temporary name, then rename: a reader never sees half a file, and a
    crash leaves the previous version in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    tmp.replace(path)
    return path


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    return _atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    return _atomic(path, lambda tmp: frame.to_csv(tmp, index=False))


def write_shop(shop: Shop, out_dir: Path) -> dict[str, str]:
    """Write a generated shop as the CSV files a shop would export; returns the paths."""
    paths = {}
    for name, frame in (("items", shop.items), ("users", shop.users), ("events", shop.events)):
        path = Path(out_dir) / f"{name}.csv"
        _atomic(
            path, lambda tmp, f=frame: f.to_csv(tmp, index=False, date_format="%Y-%m-%dT%H:%M:%S")
        )
        paths[name] = str(path)
    return paths


def fingerprint(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def write_json(data: dict[str, Any], path: Path) -> Path:
    return _atomic(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, default=str)))
