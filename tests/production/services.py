"""The production profile's services on loopback, started as the README's production
section says: PostgreSQL (Debian's packages), a Prefect server and an MLflow tracking
server on it, and a Prefect worker. For the integration test; each stops with its fixture."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent  # the project's environment: what `uv run` runs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without Prefect's or cartlift's settings (the test
    session's temporary Prefect server must not leak into the services), plus ``extra``."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CARTLIFT_"))}
    return {**keep, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **extra}


def postgres_bin() -> Path:
    """Debian's PostgreSQL server binaries (.ci/run installs the package when missing)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError(
            "PostgreSQL server binaries not found under /usr/lib/postgresql: "
            "apt-get install -y postgresql"
        )
    return Path(found[-1]).parent


def _runuser() -> str:
    """``runuser``'s path: on ``PATH``, else where Debian puts it (``/usr/sbin``, which a
    minimal ``PATH`` lacks)."""
    found = shutil.which("runuser") or next(
        (p for p in ("/usr/sbin/runuser", "/sbin/runuser") if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise RuntimeError("runuser not found (util-linux): needed to run PostgreSQL as root")
    return found


def _as_postgres(cmd: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the postgres user."""
    return [_runuser(), "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")


class Postgres:
    """A throwaway cluster in its own directory under /tmp (the postgres user must be able
    to reach it, which pytest's private temporary directories do not allow)."""

    def __init__(self) -> None:
        root = Path(tempfile.mkdtemp(prefix="cartlift-pg-"))
        self.root, self.port, self.data = root, free_port(), root / "data"
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
        self.bin = postgres_bin()
        _run(
            _as_postgres(
                [str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"]
            )
        )
        opts = f"-p {self.port} -k {root} -c listen_addresses=127.0.0.1"
        _run(
            _as_postgres(
                [
                    str(self.bin / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-o",
                    opts,
                    "-l",
                    str(root / "log"),
                    "-w",
                    "start",
                ]
            )
        )

    def create(self, *names: str) -> None:
        for name in names:
            self._psql("postgres", "-c", f"CREATE DATABASE {name}")

    def superuser(self, name: str) -> None:
        """A login role with every right, as the postgres image makes ``POSTGRES_USER``
        (the cluster trusts loopback: any password is accepted)."""
        self._psql("postgres", "-c", f"CREATE ROLE {name} LOGIN SUPERUSER")

    def script(self, path: Path, user: str) -> None:
        """Run an SQL file as ``user`` (the postgres image's /docker-entrypoint-initdb.d)."""
        self._psql(user, "-d", "postgres", "-f", str(path))

    def _psql(self, user: str, *args: str) -> None:
        _run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", user, "-q", *args])

    def url(self, name: str, driver: str = "") -> str:
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        stop = [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"]
        subprocess.run(_as_postgres(stop), capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


class Service:
    """A long-running command with its log, stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.log = name, log_dir / f"{name}.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_http(self, url: str, seconds: float = 180) -> None:
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.tail()}")
            try:
                if httpx.get(url, timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(1)
        raise RuntimeError(f"{self.name} not up after {seconds:.0f} s:\n{self.tail()}")

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=10)  # some services ignore SIGTERM for long
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
