"""Flow ``ingest``: a shop's files -> validated Parquet tables in the lake + quarantine."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml
from prefect import flow, get_run_logger, task

from flows.tasks import IO_RETRIES
from infra.lake import (
    LakeSnapshot,
    find_table,
    fingerprint,
    read_raw,
    write_csv,
    write_json,
    write_parquet,
)
from infra.settings import Settings
from models.config import DEFAULT_DATASET
from models.data.adapters import FORMATS, RawTables, from_mapping, from_online_retail
from models.data.columns import Columns
from models.data.contract import ContractError
from models.data.ingest import IngestResult, summary_lines, validate_tables

C = Columns


@task(name="read source", **IO_RETRIES)
def read_source(data: str, fmt: str, mapping: str | None = None) -> RawTables:
    """Read a shop's files in one of the supported layouts into contract-named tables."""
    logger = get_run_logger()
    path = Path(data)
    if fmt not in FORMATS:
        raise ContractError(str(path), f"unknown format '{fmt}' (use one of {', '.join(FORMATS)})")
    if fmt == "online-retail":
        logger.info("Reading UCI Online Retail invoice lines from %s", path)
        return from_online_retail(read_raw(path), str(path))
    if fmt == "csv":
        if not mapping:
            raise ContractError(str(path), "format 'csv' needs --map mapping.yaml")
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
        if found is None and table != "users":
            raise ContractError(
                str(path), f"no {table}.csv, {table}.csv.gz or {table}.parquet in this directory"
            )
        if found is not None:
            tables[table], sources[table] = read_raw(found), str(found)
    if "users" not in tables:
        ids = tables["events"][C.user].dropna().drop_duplicates()
        tables["users"] = pd.DataFrame({C.user: ids, C.source_row: range(1, len(ids) + 1)}).astype(
            str
        )
        sources["users"] = f"{sources['events']} (derived)"
    logger.info("Read %s rows of events from %s", f"{len(tables['events']):,}", sources["events"])
    return RawTables(
        events=tables["events"], items=tables["items"], users=tables["users"], sources=sources
    )


@task(name="validate against the contract")
def validate(raw: RawTables) -> IngestResult:
    """The contract on every row; with CARTLIFT_PSEUDONYMISE_KEY set (read here, never a
    task parameter), customer ids become keyed hashes."""
    secret = Settings().pseudonymise_key
    key = secret.get_secret_value() if secret else None
    result = validate_tables(raw, pseudonymise_key=key)
    for line in summary_lines(result.report()):
        get_run_logger().info(line)
    return result


@task(name="write lake and quarantine", **IO_RETRIES)
def write_lake(result: IngestResult, dataset: str) -> LakeSnapshot:
    """Replace the dataset's tables atomically; quarantined rows go to CSV files people can open."""
    settings = Settings()
    lake = settings.dataset_lake(dataset)
    quarantine = settings.quarantine_dir / dataset
    paths = []
    for name, table in result.tables().items():
        paths.append(write_parquet(table.accepted, lake / f"{name}.parquet"))
        write_csv(table.quarantined, quarantine / f"{name}.csv")
    report = result.report()
    report["quarantine_dir"] = str(quarantine)
    write_json(report, lake / "ingest.json")
    get_run_logger().info("Lake tables written to %s; quarantined rows in %s", lake, quarantine)
    return LakeSnapshot(dataset=dataset, path=str(lake), fingerprint=fingerprint(paths))


@flow(name="ingest", log_prints=False)
def ingest(
    data: str, fmt: str = "contract", mapping: str | None = None, dataset: str = DEFAULT_DATASET
) -> LakeSnapshot:
    """Validate a shop's files into the lake; every row is accepted or quarantined with a reason."""
    raw = read_source(data, fmt, mapping)
    return write_lake(validate(raw), dataset)
