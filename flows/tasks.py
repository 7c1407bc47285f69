"""What every flow shares: retry only on I/O errors, and the run config resolved once.

Tasks that take the shop's data (raw tables, feature sets, models) say
``cache_policy=NO_CACHE``: Prefect's default policy hashes every input to make a cache key
(about a second per 600k events for a feature set), and nothing reuses those results."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger

from infra.settings import Settings, resolve_run_config
from models.config import RunConfig


def retry_on_io(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a task only when it failed on I/O (a file system or network hiccup).

    A contract violation or a bug fails at once: retrying cannot fix it.
    """
    try:
        state.result()
    except OSError:
        return True
    except Exception:
        return False
    return False


IO_RETRIES: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": 2,
    "retry_condition_fn": retry_on_io,
}


def run_config(
    config: RunConfig | None,
    config_file: str | None = None,
    dataset: str | None = None,
    fmt: str = "contract",
    data: str | None = None,
) -> RunConfig:
    """The config a flow runs with: the one given (the CLI resolved it), else resolved now
    by :func:`infra.settings.resolve_run_config` (a deployed run: so the dataset's tuned
    config written after ``cartlift deploy`` is the one used)."""
    if config is not None:
        return config
    resolved, origin = resolve_run_config(Settings(), config_file, dataset, fmt, data)
    get_run_logger().info("Run config for %s: %s", resolved.dataset, origin)
    return resolved
