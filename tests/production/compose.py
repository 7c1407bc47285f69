"""infra/docker-compose.yml's services as processes on loopback: each service's own command
and environment, read from the compose file, with what a container would have made
different translated: the service names and container ports become 127.0.0.1 and free
ports, the volumes directories of the test, and each service its own PREFECT_HOME (its
own filesystem). A wrong path, a missing step or a missing package in the compose file
fails the test that runs it."""

from __future__ import annotations

import re
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import yaml

from tests.production.services import BIN, free_port

CODE = Path(__file__).resolve().parents[2]  # what the image holds in /app
COMPOSE = CODE / "infra" / "docker-compose.yml"
PASSWORD = "compose-test"


def read(path: Path = COMPOSE) -> dict[str, dict[str, Any]]:
    """The compose file's services, anchors and merge keys resolved."""
    return yaml.safe_load(path.read_text())["services"]


def start_order(services: dict[str, dict[str, Any]]) -> list[str]:
    """The services in an order their ``depends_on`` allows (compose's start order)."""
    graph = {name: set(spec.get("depends_on") or {}) for name, spec in services.items()}
    return list(TopologicalSorter(graph).static_order())


class Local:
    """The translation of the compose file to this machine: ``postgres`` is the test's
    cluster (on ``pg_port``), every published port a free one, ``volumes`` maps each
    container directory to a local one."""

    def __init__(self, services: dict[str, dict[str, Any]], pg_port: int, root: Path):
        self.services, self.root = services, root
        self.hosts = {("postgres", "5432"): f"127.0.0.1:{pg_port}"}
        self.ports: dict[str, int] = {}
        for name, spec in services.items():
            for published in spec.get("ports") or []:
                inside = str(published).split(":")[-1]
                self.ports[inside] = free_port()
                self.hosts[(name, inside)] = f"127.0.0.1:{self.ports[inside]}"
        self.volumes: dict[str, str] = {}
        for spec in services.values():
            for volume in spec.get("volumes") or []:
                source, target = str(volume).split(":")[:2]
                if not source.startswith("."):  # named volumes; bind mounts of config stay
                    # The container path's own name kept (/data/shop -> .../shop): a
                    # dataset is named after its directory.
                    self.volumes[target] = str(root / "volumes" / source / Path(target).name)

    def url(self, service: str, port: str, path: str = "") -> str:
        return f"http://{self.hosts[(service, port)]}{path}"

    def text(self, value: str) -> str:
        """One command argument or environment value as this machine needs it."""
        out = value.replace("${POSTGRES_PASSWORD}", PASSWORD).replace("0.0.0.0", "127.0.0.1")
        for (host, port), local in self.hosts.items():
            out = re.sub(rf"\b{re.escape(host)}:{port}\b", local, out)
            out = re.sub(rf"\blocalhost:{port}\b", local.replace("127.0.0.1", "localhost"), out)
        for target, local in self.volumes.items():
            out = re.sub(rf"{re.escape(target)}(?=/|$)", local, out)
        return re.sub(r"^/app(?=/|$)", str(CODE), out)  # the image's copy of the code

    def command(self, name: str) -> list[str]:
        args = [self.text(str(a)) for a in self.services[name]["command"]]
        for i, arg in enumerate(args[:-1]):
            if arg == "--port" and args[i + 1] in self.ports:
                args[i + 1] = str(self.ports[args[i + 1]])
        if (BIN / args[0]).exists():  # the image's PATH is the project's environment
            args[0] = str(BIN / args[0])
        return args

    def env(self, name: str, base: dict[str, str]) -> dict[str, str]:
        given = self.services[name].get("environment") or {}
        env = {**base, **{k: self.text(str(v)) for k, v in given.items()}}
        env["PREFECT_HOME"] = str(self.root / "homes" / name / "prefect")
        return env
