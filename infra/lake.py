"""The data lake on disk: reading sources, writing Parquet tables atomically."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from models.data.adapters import FORMATS, RawTables, from_mapping, from_online_retail
from models.data.columns import Columns
from models.data.contract import ContractError
from models.data.ingest import IngestResult
from models.data.shop import Shop

log = logging.getLogger(__name__)
C = Columns
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


def _shop_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%S")


def write_shop(shop: Shop, out_dir: Path) -> dict[str, str]:
    """Write a generated shop as the CSV files a shop would export; returns the paths."""
    paths = {}
    for name, frame in (("items", shop.items), ("users", shop.users), ("events", shop.events)):
        path = Path(out_dir) / f"{name}.csv"
        _atomic(path, partial(_shop_csv, frame))
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


def check_source(data: str, fmt: str, mapping: str | None = None) -> None:
    """Raise :class:`ContractError` naming what is missing when ``data`` cannot be a shop
    in ``fmt``: checked before a run starts, without reading the files."""
    path = Path(data)
    if fmt not in FORMATS:
        raise ContractError(str(path), f"unknown format '{fmt}' (use one of {', '.join(FORMATS)})")
    if not path.exists():
        raise ContractError(str(path), "not found (as this machine sees it)")
    if not os.access(path, os.R_OK):
        raise ContractError(str(path), "not readable by this user")
    if fmt == "csv":
        if not mapping:
            raise ContractError(str(path), "format 'csv' needs --map mapping.yaml")
        if not Path(mapping).is_file():
            raise ContractError(mapping, "mapping file not found")
    elif fmt == "contract":
        if not path.is_dir():
            raise ContractError(str(path), "format 'contract' reads a directory of tables")
        for table in ("items", "events"):
            if find_table(path, table) is None:
                raise ContractError(
                    str(path),
                    f"no {table}.csv, {table}.csv.gz or {table}.parquet in this directory",
                )
    elif not path.is_file():
        raise ContractError(str(path), f"format '{fmt}' reads one file, not a directory")


def read_source(data: str, fmt: str, mapping: str | None = None) -> RawTables:
    """Read a shop's files in one of the supported layouts into contract-named tables."""
    path = Path(data)
    check_source(data, fmt, mapping)
    if fmt == "online-retail":
        return from_online_retail(read_raw(path), str(path))
    if fmt == "csv":
        mapping = str(mapping)  # check_source made sure of it
        spec = yaml.safe_load(Path(mapping).read_text()) or {}
        base = path if path.is_dir() else path.parent
        frames, sources = {}, {"mapping": mapping}
        for table in ("events", "items", "users"):
            file = (spec.get(table) or {}).get("file")
            if file or (table == "events" and path.is_file()):
                source = base / file if file else path
                frames[table], sources[table] = read_raw(source), str(source)
        if "events" not in frames:
            raise ContractError(
                mapping, "no events file: give PATH as the events file or set events.file"
            )
        return from_mapping(frames, spec, sources)
    # The contract layout: a directory with items, users (optional) and events tables.
    tables, sources = {}, {}
    for table in ("items", "users", "events"):
        found = find_table(path, table)
        if found is not None:
            tables[table], sources[table] = read_raw(found), str(found)
    if "users" not in tables:
        ids = tables["events"][C.user].dropna().drop_duplicates()
        tables["users"] = pd.DataFrame({C.user: ids, C.source_row: range(1, len(ids) + 1)}).astype(
            str
        )
        sources["users"] = f"{sources['events']} (derived)"
    return RawTables(
        events=tables["events"], items=tables["items"], users=tables["users"], sources=sources
    )


def write_dataset(result: IngestResult, lake: Path, quarantine: Path) -> LakeSnapshot:
    """Replace a dataset's tables atomically; quarantined rows go to CSV files people can
    open; the ingest report beside the tables."""
    paths = []
    for name, table in result.tables().items():
        paths.append(write_parquet(table.accepted, lake / f"{name}.parquet"))
        write_csv(table.quarantined, quarantine / f"{name}.csv")
    report = result.report()
    report["quarantine_dir"] = str(quarantine)
    write_json(report, lake / "ingest.json")
    return LakeSnapshot(dataset=lake.name, path=str(lake), fingerprint=fingerprint(paths))


SEGMENTS = "segments.parquet"  # a dataset's current segment table (flows/segment.py)


def segment_members(lake: Path, name: str) -> list[str]:
    """The customers of segment ``name`` (a cluster's name or an RFM segment) in the
    current segment table of the dataset at ``lake``; an error naming the known segments
    (or how to make the table) otherwise."""
    path = lake / SEGMENTS
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `cartlift segment` first")
    table = pd.read_parquet(path, columns=["user_id", "segment", "rfm_segment"])
    chosen = table[(table["segment"] == name) | (table["rfm_segment"] == name)]
    if chosen.empty:
        known = sorted(set(table["segment"]) | set(table["rfm_segment"]))
        raise ValueError(f"no segment {name!r} in {path}; known: {', '.join(known)}")
    return chosen["user_id"].astype(str).tolist()
