"""How the service process is started (CLI, tests and benchmarks share it)."""

from __future__ import annotations

import sys

SERVICE = "serving.service:Cartlift"


def command(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", host, "--port", str(port)]
