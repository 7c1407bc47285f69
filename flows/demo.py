"""The drift demo: the monitoring loop closed end to end on a generated shop.

Two months ago the shop trained its champion and started serving it. Since then a new
product line launched and took a quarter of the traffic, and the busiest category's
prices rose 30% (:func:`models.data.shop.shift`). The nightly ingest brings the two months
in; the monitor sees the drift, emits ``cartlift.drift.detected``, retrains; the quality
gate compares the new model with the champion on the same recent holdout; the service
picks up the new champion on its own.
"""

from __future__ import annotations

import os
import socket
import subprocess  # starts `bentoml serve` (docs/security.md)  # nosec B404
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import numpy as np
import pandas as pd

from flows.ingest import ingest
from flows.monitor import monitor
from flows.pipeline import pipeline
from infra import registry
from infra.lake import write_shop
from infra.settings import Settings
from models.config import RunConfig, ShopConfig
from models.data.columns import Columns
from models.data.shop import LAUNCH, Shop, generate, shift
from serving.launch import command

C = Columns
ROUTES = ("/recommend", "/cross_sell", "/upsell")


@dataclass
class DemoResult:
    before: str  # champion version served before the shift
    after: str  # champion version after monitoring
    served_after: str  # the version the service answered with at the end
    reasons: list[str]  # why retraining ran
    report_dir: str | None
    launch_share_before: float  # share of recommended items from the new line
    launch_share_after: float


def as_of(shop: Shop, start: pd.Timestamp) -> Shop:
    """The shop as it was before ``start``: its events, and only the customers and
    products that had appeared by then (or never appear at all)."""
    events = shop.events[shop.events[C.timestamp] < start]
    later = shop.events[shop.events[C.timestamp] >= start]

    def known(table: pd.DataFrame, key: str) -> pd.DataFrame:
        first_later = ~later[key].isin(events[key])
        return table[~table[key].isin(later.loc[first_later, key])]

    return Shop(events=events, items=known(shop.items, C.item), users=known(shop.users, C.user))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Service:
    """``bentoml serve`` in its own session, checking the champion alias every 2 s."""

    def __init__(self, settings: Settings) -> None:
        port = _free_port()
        env = {
            **os.environ,
            "CARTLIFT_HOME": str(settings.home),
            "BENTOML_HOME": str(settings.bentoml_home),
            "CARTLIFT_SERVING__RELOAD_SECONDS": "2",
            "CARTLIFT_SERVING__LOG_FLUSH_SECONDS": "0.5",
            "OPENBLAS_NUM_THREADS": "1",
        }
        self.log = settings.serving_dir / "demo-service.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(  # fixed argv, no shell  # nosec B603
                command("127.0.0.1", port),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C and Prefect's signals stay with the demo
            )
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        self.port = port

    def wait_ready(self, seconds: float = 180) -> None:
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                if self.client.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"the service stopped while starting: see {self.log}")
            time.sleep(0.5)
        raise RuntimeError(f"the service was not ready after {seconds:.0f} s: see {self.log}")

    def version(self) -> str:
        return str(self.client.post("/metadata", json={}).json().get("model_version", ""))

    def wait_version(self, version: str, seconds: float = 60) -> str:
        deadline, served = time.time() + seconds, self.version()
        while served != version and time.time() < deadline:
            time.sleep(0.5)
            served = self.version()
        return served

    def wait_logged(self, records: int, seconds: float = 30) -> None:
        """Until the prediction log holds ``records`` (it is flushed off the request path,
        and the monitor must judge every answer the demo sent)."""
        deadline = time.time() + seconds
        while time.time() < deadline:
            log = self.client.post("/metadata", json={}).json().get("prediction_log", {})
            if log.get("written", 0) + log.get("lost", 0) >= records:
                return
            time.sleep(0.2)

    def close(self) -> None:
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def replay(
    client: httpx.Client, shop: Shop, future: pd.DataFrame, requests: int, seed: int
) -> tuple[int, float, int]:
    """Shop traffic from customers of ``shop``: recommendations, carts and product pages.

    A customer clicks a shown product that they do view or buy in ``future`` (their real
    next steps), so the feedback the monitor scores is the truth, not noise. Returns the
    answered requests, the share of shown products from the new line and the records the
    service logged for them (answers and feedback).
    """
    rng = np.random.default_rng(seed)
    recent = shop.events.nlargest(max(requests * 20, 1), C.timestamp)
    picks = recent.iloc[rng.integers(0, len(recent), requests)]
    wanted = future.groupby(C.user)[C.item].agg(set)
    launch = set(shop.items.loc[shop.items[C.category] == LAUNCH, C.item])
    answered = shown_total = shown_launch = clicks = 0
    for i, (user, item) in enumerate(zip(picks[C.user], picks[C.item], strict=True)):
        route = ROUTES[i % len(ROUTES)]
        body = {"user_id": str(user), "k": 10}
        body |= {"cart": [str(item)]} if route == "/cross_sell" else {}
        body |= {"item_id": str(item)} if route == "/upsell" else {}
        answer = client.post(route, json=body)
        if answer.status_code != 200:
            continue
        answered += 1
        shown = [x["item_id"] for x in answer.json()["items"]]
        shown_total += len(shown)
        shown_launch += sum(x in launch for x in shown)
        for clicked in wanted.get(user, set()) & set(shown):
            clicks += 1
            client.post(
                "/feedback",
                json={
                    "request_id": answer.json()["request_id"],
                    "user_id": str(user),
                    "item_id": clicked,
                    "event": "click",
                },
            )
    return answered, shown_launch / max(shown_total, 1), answered + clicks


def drift_demo(
    shop_config: ShopConfig,
    config: RunConfig,
    later_days: int = 60,
    requests: int = 600,
    say: Callable[[str], None] = print,
) -> DemoResult:
    """The whole loop in ``$CARTLIFT_HOME`` (which should be a workspace of its own: the
    demo trains and promotes champions there)."""
    settings = Settings()
    raw = settings.raw_dir
    shop = generate(shop_config)
    start = shop.events[C.timestamp].max().normalize() - pd.Timedelta(days=later_days - 1)
    before = as_of(shop, start)
    write_shop(before, raw / "shop-before")
    say(f"1/5 The shop until {start:%Y-%m-%d}: training the first champion ...")
    first = pipeline(str(raw / "shop-before"), "contract", None, config)
    if not first.decision.promote:
        raise RuntimeError(f"the first model did not pass the gate: {first.decision.reason}")
    say(f"    champion: version {first.version} ({first.decision.reason})")

    service = _Service(settings)
    try:
        say(f"2/5 Serving it on http://127.0.0.1:{service.port} and replaying shop traffic ...")
        service.wait_ready()
        later = shop.events[shop.events[C.timestamp] >= start]
        answered, _, logged = replay(service.client, before, later, requests, shop_config.seed)
        say(f"    {answered} of {requests} requests answered; clicks sent as feedback")

        now = shift(shop, start, shop_config.seed)
        write_shop(now, raw / "shop-now")
        say(
            f"3/5 {later_days} days later: a new product line took a quarter of the traffic "
            "and the busiest category's prices rose 30%; the nightly ingest brings it in ..."
        )
        ingest(str(raw / "shop-now"), "contract", None, config.dataset)
        moved = now.events[now.events[C.timestamp] >= start]
        shifted_traffic = datetime.now(UTC)
        _, launch_before, more = replay(service.client, now, moved, requests // 4, shop_config.seed)
        service.wait_logged(logged + more)
        say(f"    the champion shows {launch_before:.0%} products of the new line today")
        say("4/5 Monitoring (drift -> event -> retrain -> quality gate) ...")
        # The answers to today's traffic are judged against those to the traffic before.
        result = monitor(
            str(raw / "shop-now"), "contract", None, config, served_since=shifted_traffic
        )
        champion = registry.describe_champion(settings)
        after = champion["version"] if champion else first.version
        say(f"    champion now: version {after} (was {first.version})")
        say("5/5 Waiting for the service to load it ...")
        served = service.wait_version(after)
        _, launch_after, _ = replay(service.client, now, moved, requests // 4, shop_config.seed)
        say(f"    version {served} answers; it shows {launch_after:.0%} products of the new line")
    finally:
        service.close()
    return DemoResult(
        before=first.version,
        after=after,
        served_after=served,
        reasons=result.decision.reasons,
        report_dir=result.report_dir,
        launch_share_before=launch_before,
        launch_share_after=launch_after,
    )
