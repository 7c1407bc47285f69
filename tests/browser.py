"""A real headless browser for tests: Debian's chromium, driven over the DevTools protocol.

The pages teams read (Evidently's UI, the quality report) are rendered by JavaScript or
carry inline images; only a browser shows whether their panels are there. The protocol's
four calls used here (open, evaluate, click, screenshot) need no driver package: one
websocket to the browser, one session per page. Screenshots go to ``$CARTLIFT_SCREENSHOTS``
when set (``make screenshots`` points it at ``docs/images``), else next to the test's files.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import socket as sockets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

NAMES = ("chromium", "chromium-browser", "google-chrome")


def executable() -> str:
    found = next((path for name in NAMES if (path := shutil.which(name))), None)
    if found is None:
        raise RuntimeError(
            "No chromium on PATH: `make test` installs Debian's package "
            "(apt-get install chromium); the browser tests need it"
        )
    return found


class Page:
    """One tab: navigate, evaluate JavaScript, wait for a condition, take a screenshot."""

    def __init__(self, socket: Any, session: str) -> None:
        self._socket = socket
        self._session = session
        self._ids = itertools.count(10)  # 1 and 2 were the browser's

    def call(self, method: str, **params: Any) -> dict:
        ident = next(self._ids)
        message = {"id": ident, "method": method, "params": params, "sessionId": self._session}
        self._socket.send(json.dumps(message))
        while True:
            reply = json.loads(self._socket.recv(timeout=60))
            if reply.get("id") == ident:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def open(self, url: str, width: int = 1280, height: int = 1600) -> None:
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.evaluate("window.__left = true")  # the old document's mark; a new one lacks it
        self.call("Page.navigate", url=url)
        # Navigation commits asynchronously: until the new document has loaded, scripts
        # may still see the old one, or none.
        self.wait_for("!window.__left && document.readyState === 'complete' && !!document.body")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, seconds: float = 30) -> Any:
        """The expression's value once truthy (a script error counts as not yet: the page
        may be between documents); the page's text in the error otherwise."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except RuntimeError:  # the page is between documents: ask again
                value = None
            if value:
                return value
            time.sleep(0.2)
        text = self.evaluate("document.body ? document.body.innerText : ''") or ""
        raise AssertionError(f"not true after {seconds} s: {expression}\npage: {text[:2000]}")

    def text(self) -> str:
        return self.evaluate("document.body.innerText")

    def click_text(self, selector: str, text: str) -> None:
        """Click the first ``selector`` element whose text is ``text`` (a tab, a button)."""
        found = self.evaluate(
            f"(() => {{ const e = [...document.querySelectorAll({json.dumps(selector)})]"
            f".find(e => e.innerText.trim() === {json.dumps(text)});"
            " if (!e) return false; e.click(); return true; })()"
        )
        assert found, f"no {selector} reading {text!r} on the page"

    def screenshot(self, name: str, fallback: Path) -> Path:
        """The page as a PNG: ``$CARTLIFT_SCREENSHOTS/name.png``, else ``fallback/name.png``."""
        folder = Path(os.environ.get("CARTLIFT_SCREENSHOTS") or fallback)
        folder.mkdir(parents=True, exist_ok=True)
        time.sleep(0.5)  # let the page's transitions (tabs fading in) finish
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)
        out = folder / f"{name}.png"
        out.write_bytes(base64.b64decode(shot["data"]))
        return out


@contextmanager
def browser() -> Iterator[Page]:
    """A headless chromium with one blank page; the process and its profile go at exit."""
    profile = tempfile.mkdtemp(prefix="cartlift-chromium-")
    args = [
        executable(),
        "--headless",
        "--no-sandbox",  # the suite runs as root in CI
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "about:blank",
    ]
    log = Path(profile) / "chromium.log"  # a file, not a pipe: chromium writes on and on
    with log.open("w") as sink:
        proc = subprocess.Popen(args, stderr=sink, stdout=subprocess.DEVNULL)
    try:
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"chromium exited ({proc.returncode}): {log.read_text()[-2000:]}"
                )
            match = re.search(r"DevTools listening on (ws://\S+)", log.read_text())
            url = match.group(1) if match else None
            time.sleep(0.1)
        if url is None:
            raise RuntimeError("chromium did not open its DevTools port within 30 s")
        with connect(url, max_size=2**26) as socket:
            # The browser's own channel: create a tab and attach to it.
            socket.send(
                json.dumps(
                    {"id": 1, "method": "Target.createTarget", "params": {"url": "about:blank"}}
                )
            )
            target = _reply(socket, 1)["targetId"]
            socket.send(
                json.dumps(
                    {
                        "id": 2,
                        "method": "Target.attachToTarget",
                        "params": {"targetId": target, "flatten": True},
                    }
                )
            )
            page = Page(socket, _reply(socket, 2)["sessionId"])
            page.call("Page.enable")
            yield page
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


def _reply(socket: Any, ident: int) -> dict:
    while True:
        reply = json.loads(socket.recv(timeout=30))
        if reply.get("id") == ident:
            return reply["result"]


@contextmanager
def evidently_ui(workspace: Path, log: Path) -> Iterator[str]:
    """`evidently ui` on ``workspace`` (the command a team runs), on a free loopback port:
    its base URL once the API answers."""
    with sockets.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [
        str(Path(sys.executable).parent / "evidently"),
        *("ui", "--workspace", str(workspace), "--host", "127.0.0.1", "--port", str(port)),
    ]
    with log.open("w") as sink:
        env = {**os.environ, "DO_NOT_TRACK": "1"}
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{base}/api/projects").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
