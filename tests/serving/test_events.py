"""/events on the real BentoML server: live events checked one by one, stored once, and
nothing acknowledged lost when the service is killed mid-stream."""

from __future__ import annotations

import itertools
import json
import signal
import threading
import time

import httpx
import pandas as pd
import psutil
import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.ingest import ingest
from flows.monitor import read_lake
from flows.pipeline import pipeline
from infra import events as live_events
from infra.lake import write_shop
from infra.settings import Settings
from models.config import TrainConfig
from tests.serving.server import API_KEY, FAST, KEY, running

# Any champion will do: /events checks item ids against the served catalogue.
QUICK = FAST.model_copy(update={"train": TrainConfig(no_components=8, epochs=2)})
MOST = 50  # events per request in these tests (CARTLIFT_SERVING__MAX_EVENTS)


@pytest.fixture(scope="module")
def shop_home(home, tiny_shop, tmp_path_factory):
    path = tmp_path_factory.mktemp("shop")
    write_shop(tiny_shop, path)
    pipeline(str(path), "contract", None, QUICK)
    return home, tiny_shop, path


@pytest.fixture(scope="module")
def server(shop_home):
    home, _, _ = shop_home
    env = {"CARTLIFT_API_KEY": API_KEY, "CARTLIFT_SERVING__MAX_EVENTS": str(MOST)}
    with running(home, CARTLIFT_SERVING__WORKERS="2", **env) as server:
        yield server.client


def event(n: int, item: str, kind: str = "view", **more) -> dict:
    return {
        "event_id": f"e{n}",
        "user_id": f"visitor-{n % 7}",
        "item_id": item,
        "event_type": kind,
        "timestamp": "2026-11-30T10:00:00",
    } | more


def browsing(name: str, viewed: list[str]) -> list[dict]:
    """Views of ``viewed``, a second apart from now, in session ``s-<name>``."""
    now = pd.Timestamp.now("UTC")
    return [
        {
            "event_id": f"{name}-view-{n}",
            "user_id": f"visitor-{name}",
            "item_id": item,
            "event_type": "view",
            "timestamp": (now + pd.Timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%S"),
            "session_id": f"s-{name}",
        }
        for n, item in enumerate(viewed)
    ]


def stored() -> dict[str, int]:
    """Event id -> how many times the store holds it."""
    frame = live_events.read(live_events.connect(Settings().events_url))
    return frame["event_id"].value_counts().to_dict()


def test_events_are_checked_one_by_one_stored_once_and_quarantined(server, shop_home):
    _, shop, _ = shop_home
    a, b = (str(i) for i in shop.items["item_id"].iloc[:2])
    batch = [
        event(1, a),
        event(2, b, "purchase", quantity=2, price=12.5, order_id="o-1", session_id="s-1"),
        event(3, "no-such-item"),
        {"user_id": "visitor-1", "item_id": a, "event_type": "view", "timestamp": "2026-11-30"},
        event(4, a, colour="red"),
        event(5, a, "purchase"),  # a purchase carries its own price and order id
        event(6, a, timestamp="yesterday"),
        event(1, a),  # sent twice in the batch: one event
        "not an event",
    ]
    assert server.post("/events", json={"events": batch}).status_code == 401
    first = server.post("/events", json={"events": batch}, headers=KEY)
    assert first.status_code == 200, first.text
    ack = first.json()
    assert (ack["received"], ack["accepted"], ack["duplicates"]) == (9, 2, 1)
    reasons = {r["position"]: r["reason"] for r in ack["rejected"]}
    assert reasons == {
        2: "unknown item_id; price not a positive number",
        3: "missing event_id",
        4: "unknown field 'colour' (fields: event_id, user_id, item_id, event_type, "
        "timestamp, quantity, price, order_id, session_id)",
        5: "price not a positive number; purchase without order_id",
        6: "timestamp not a date",
        8: "not an object",
    }
    again = server.post("/events", json={"events": batch}, headers=KEY).json()  # a retry
    assert (again["accepted"], again["duplicates"], len(again["rejected"])) == (0, 3, 6)
    assert stored() == {"e1": 1, "e2": 1}
    engine = live_events.connect(Settings().events_url)
    assert live_events.counts(engine) == {"stored": 2, "rejected": 12}  # each refusal kept
    bought = live_events.read(engine).set_index("event_id").loc["e2"]
    assert (bought["quantity"], bought["price"], bought["session_id"]) == (2, 12.5, "s-1")

    too_many = [event(100 + n, a) for n in range(MOST + 1)]
    refused = server.post("/events", json={"events": too_many}, headers=KEY)
    assert refused.status_code == 413 and f"at most {MOST}" in refused.json()["error"]
    assert server.post("/events", json={"events": "x"}, headers=KEY).status_code in (400, 422)
    assert live_events.counts(engine)["stored"] == 2  # nothing of a refused request


def test_acknowledged_events_survive_a_sigkill_and_a_resent_batch_is_stored_once(shop_home):
    """A client streams batches; the service (both workers) is SIGKILLed mid-stream.
    After a restart every acknowledged event is stored exactly once, and the batch in
    flight, sent again, adds no duplicate."""
    home, shop, _ = shop_home
    item = str(shop.items["item_id"].iloc[0])
    ids = itertools.count(10_000)
    acked: list[list[str]] = []
    in_flight: list[list[dict]] = []
    env = {"CARTLIFT_API_KEY": API_KEY, "CARTLIFT_SERVING__MAX_EVENTS": str(MOST)}
    with running(home, CARTLIFT_SERVING__WORKERS="2", **env) as first:
        url = str(first.client.base_url)

        def stream() -> None:
            with httpx.Client(base_url=url, timeout=10) as client:
                while True:
                    batch = [event(next(ids), item) for _ in range(MOST)]
                    in_flight[:] = [batch]
                    try:
                        r = client.post("/events", json={"events": batch}, headers=KEY)
                    except httpx.TransportError:
                        return  # the service is gone: this batch was never acknowledged
                    assert r.status_code == 200, r.text
                    acked.append([e["event_id"] for e in batch])

        sender = threading.Thread(target=stream)
        sender.start()
        deadline = time.time() + 60
        while len(acked) < 20 and time.time() < deadline:
            time.sleep(0.05)
        tree = [psutil.Process(first.proc.pid), *psutil.Process(first.proc.pid).children(True)]
        for proc in tree:
            proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=30)
        sender.join(timeout=30)
    assert len(acked) >= 20
    held = stored()
    for batch_ids in acked:
        assert all(held.get(i) == 1 for i in batch_ids), batch_ids
    with running(home, CARTLIFT_SERVING__WORKERS="1", **env) as second:
        resent = second.client.post("/events", json={"events": in_flight[0]}, headers=KEY)
        assert resent.status_code == 200, resent.text
        ack = resent.json()
        assert ack["accepted"] + ack["duplicates"] == MOST and not ack["rejected"]
    held = stored()
    assert all(held[e["event_id"]] == 1 for e in in_flight[0])
    assert max(held.values()) == 1
    print(f"{len(acked)} batches acknowledged before the kill, all stored once")


def test_the_next_ingest_adds_the_live_events_to_the_lake(shop_home):
    """The lake grows without exports: the monitor and ingest read the store beside the
    lake and the files (the fixture's pipeline ran before any event was stored), and
    reading it again adds nothing twice."""
    _, _, path = shop_home
    settings = Settings()
    lake = settings.dataset_lake(QUICK.dataset) / "events.parquet"
    before = len(pd.read_parquet(lake))
    live = live_events.read(live_events.connect(settings.events_url))
    assert len(live) > 1000
    watched, _ = read_lake(QUICK.dataset)  # the monitor's current window takes them at once
    assert len(watched) == before + len(live)
    for _ in range(2):
        ingest(str(path), "contract", None, QUICK.dataset)
        after = pd.read_parquet(lake)
        assert len(after) == before + len(live)
    assert set(live["user_id"]) <= set(after["user_id"])
    report = json.loads((settings.dataset_lake(QUICK.dataset) / "ingest.json").read_text())
    assert report["events"]["source"].endswith("+ live events (/events)")
    assert ingest(str(path), "contract", None, QUICK.dataset, live_events=False)
    assert len(pd.read_parquet(lake)) == before


def test_a_visitor_s_views_shape_the_next_answer_within_one_request(server, shop_home):
    """Over real HTTP: an unknown visitor gets best sellers; after /events with their
    views of one category, their next /recommend (by session_id, on whichever worker)
    leans to that category, and says why."""
    _, shop, _ = shop_home
    items = shop.items.set_index("item_id")
    before = server.post("/recommend", json={"session_id": "s-browse", "k": 10}).json()
    shares = items["category"].value_counts()
    category = str(shares.index[len(shares) // 2])  # neither the biggest nor the smallest
    viewed = [str(i) for i in items.index[items["category"] == category][:3]]
    views = browsing("browse", viewed)
    assert server.post("/events", json={"events": views}, headers=KEY).json()["accepted"] == 3
    for _ in range(4):  # both workers read the same store
        after = server.post("/recommend", json={"session_id": "s-browse", "k": 10}).json()
        shown = [i["item_id"] for i in after["items"]]
        assert shown != [i["item_id"] for i in before["items"]]
        in_category = sum(items.loc[i, "category"] == category for i in shown)
        assert in_category >= 5, (category, shown)
        assert any(i["reason"].startswith("because you looked at") for i in after["items"])
    inline = server.post("/recommend", json={"recent_items": viewed, "k": 10}).json()
    assert sum(items.loc[i["item_id"], "category"] == category for i in inline["items"]) >= 5
    print(
        f"{category}: {in_category} of 10 after 3 views (before: "
        f"{sum(items.loc[i['item_id'], 'category'] == category for i in before['items'])})"
    )


def test_a_visitor_s_views_tip_the_cart_s_complements(server, shop_home):
    """Over real HTTP: /cross_sell for the same cart, with and without a session whose
    views sit in one category: with it, the answer leans to that category and its
    complements and says why, the cart's complements still among it; the cart's own
    items are never offered back."""
    _, shop, _ = shop_home
    items = shop.items.set_index("item_id")
    shares = items["category"].value_counts()
    category = str(shares.index[len(shares) // 3])
    cart = [str(items.index[items["category"] != category][0])]
    viewed = [str(i) for i in items.index[items["category"] == category][:3]]
    views = browsing("cart", viewed)
    assert server.post("/events", json={"events": views}, headers=KEY).json()["accepted"] == 3

    def in_category(answer: dict) -> int:
        return sum(items.loc[i["item_id"], "category"] == category for i in answer["items"])

    plain = server.post("/cross_sell", json={"cart": cart, "k": 10}).json()
    for _ in range(4):  # both workers read the same store
        tipped = server.post(
            "/cross_sell", json={"cart": cart, "k": 10, "session_id": "s-cart"}
        ).json()
        shown = [i["item_id"] for i in tipped["items"]]
        assert len(shown) == 10 and not set(shown) & set(cart)
        assert in_category(tipped) > in_category(plain), (category, shown)
        reasons = [i["reason"] for i in tipped["items"]]
        assert any(r.startswith("because you looked at") for r in reasons)
        assert any(not r.startswith("because") for r in reasons)  # the cart still leads
    print(f"{category}: {in_category(tipped)} of 10 with the session, {in_category(plain)} without")


def test_cartlift_events_counts_the_store_and_exports_the_quarantine(server, shop_home, tmp_path):
    """`cartlift events`: how many events are stored and rejected, by reason, and the
    rejected ones as sent, in a CSV (nothing refused is lost from sight)."""
    _, shop, _ = shop_home
    a = str(shop.items["item_id"].iloc[0])
    sent = [event(900, a), event(901, "no-such-item"), event(902, a, timestamp="never")]
    assert server.post("/events", json={"events": sent}, headers=KEY).json()["accepted"] == 1
    counted = live_events.counts(live_events.connect(Settings().events_url))
    out = tmp_path / "quarantine.csv"
    result = CliRunner().invoke(app, ["events", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"{counted['stored']:,} live events stored, {counted['rejected']:,} rejected" in (
        result.output
    )
    assert "timestamp not a date" in result.output and "unknown item_id" in result.output
    quarantined = pd.read_csv(out)
    assert len(quarantined) == counted["rejected"]
    assert {"e901", "e902"} <= set(quarantined["event_id"])
    assert json.loads(quarantined.set_index("event_id").loc["e902", "event"])["timestamp"] == (
        "never"
    )
