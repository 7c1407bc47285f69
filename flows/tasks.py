"""What every flow shares: retry only on I/O errors, settings from the environment."""

from __future__ import annotations

from typing import Any

from infra.settings import Settings
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


def settings_for(config: RunConfig | None) -> Settings:
    """Paths and URIs from the environment; the run config given, or the configured one."""
    settings = Settings()
    return settings if config is None else settings.model_copy(update={"run": config})
