"""The real BentoML HTTP server against a model trained on a small generated shop."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pandas as pd
import pytest

from flows.pipeline import pipeline
from flows.segment import segment
from infra.lake import write_shop
from infra.registry import promote
from infra.settings import Settings
from models.config import TrainConfig
from tests.conftest import MODEL_ALONE, TINY_SHOP
from tests.serving.server import API_KEY, FAST, KEY, running

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(home, tiny_shop, tmp_path_factory):
    shop = tmp_path_factory.mktemp("shop")
    write_shop(tiny_shop, shop)
    first = pipeline(str(shop), "contract", None, FAST)
    second = pipeline(
        str(shop),
        "contract",
        None,
        FAST.model_copy(
            update={  # barely trained and alone (no blend, no trend): near-random lists
                "train": TrainConfig(no_components=8, epochs=1, learning_rate=1e-4),
                "tune": MODEL_ALONE.model_copy(update={"mix_trend": (0.0,)}),
            }
        ),
    )
    assert first.decision.promote and not second.decision.promote
    return home, tiny_shop


@pytest.fixture(scope="module")
def server(trained):
    home, _ = trained
    with running(home, CARTLIFT_SERVING__WORKERS="2", CARTLIFT_API_KEY=API_KEY) as server:
        yield server.client


def post(client: httpx.Client, route: str, body: dict, **kw) -> httpx.Response:
    return client.post(route, json=body, **kw)


def test_health_and_metadata(server):
    assert server.get("/healthz").status_code == 200
    meta = post(server, "/metadata", {}).json()
    assert meta["model_version"] == "1" and meta["model_name"] == "cartlift-recommender"
    assert meta["catalogue_size"] == 240 and meta["data_window"]["cutoff"]
    assert meta["bento_model"].startswith("cartlift-recommender:")


def test_recommend_shapes_filters_and_cold_start(server, trained):
    _, shop = trained
    r = post(server, "/recommend", {"user_id": "u000003", "k": 5})
    body = r.json()
    assert r.status_code == 200 and len(body["items"]) == 5 and body["model_version"] == "1"
    assert {"item_id", "score", "reason"} == set(body["items"][0]) and body["request_id"]
    items = shop.items.set_index("item_id")
    cat = items["category"].iloc[0]
    r = post(
        server,
        "/recommend",
        {
            "user_id": "u000003",
            "k": 5,
            "filters": {"include_categories": [cat], "max_price": 10_000},
        },
    )
    assert all(items.loc[i["item_id"], "category"] == cat for i in r.json()["items"])
    cold = post(server, "/recommend", {"user_id": "brand-new", "attributes": {"age_band": "25-34"}})
    assert cold.status_code == 200 and cold.json()["cold_start"] and cold.json()["items"]
    anon = post(server, "/recommend", {})
    assert anon.status_code == 200 and anon.json()["items"]


def test_cross_sell_never_returns_cart_and_warns_on_unknown(server, trained):
    _, shop = trained
    cart = [*shop.items["item_id"].iloc[:2], "no-such-item"]
    body = post(server, "/cross_sell", {"cart": cart, "user_id": "u000003", "k": 10}).json()
    assert body["items"] and not {i["item_id"] for i in body["items"]} & set(cart)
    assert body["warnings"] == ["cart item 'no-such-item' unknown: skipped"]


def test_upsell_is_pricier_and_same_category(server, trained):
    _, shop = trained
    items = shop.items.set_index("item_id")
    anchor = items["price"].idxmin()
    body = post(server, "/upsell", {"item_id": anchor, "k": 10, "max_price_ratio": 50}).json()
    assert body["items"]
    for i in body["items"]:
        assert items.loc[i["item_id"], "price"] > items.loc[anchor, "price"]
        assert items.loc[i["item_id"], "category"] == items.loc[anchor, "category"]
    unknown = post(server, "/upsell", {"item_id": "no-such-item"})
    assert unknown.status_code == 200 and unknown.json()["warnings"]


def test_similar_and_popular(server, trained):
    _, shop = trained
    anchor = shop.items["item_id"].iloc[5]
    body = post(server, "/similar_items", {"item_id": anchor, "k": 4}).json()
    assert len(body["items"]) == 4 and anchor not in {i["item_id"] for i in body["items"]}
    cat = shop.items["category"].iloc[0]
    body = post(server, "/popular", {"k": 3, "category": cat}).json()
    items = shop.items.set_index("item_id")
    assert all(items.loc[i["item_id"], "category"] == cat for i in body["items"])


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("/recommend", {"k": 0}, "k"),
        ("/recommend", {"k": 101}, "k"),
        ("/recommend", {"filters": {"max_price": "cheap"}}, "max_price"),
        ("/recommend", {"filters": {"colour": "red"}}, "colour"),
        ("/cross_sell", {"cart": []}, "cart"),
        ("/cross_sell", {"cart": ["x"] * 51}, "cart"),
        ("/upsell", {"k": 3}, "item_id"),
        ("/upsell", {"item_id": "x", "max_price_ratio": 0.5}, "max_price_ratio"),
        (
            "/feedback",
            {"request_id": "r", "user_id": "u", "item_id": "i", "event": "like"},
            "event",
        ),
    ],
)
def test_malformed_requests_get_4xx_naming_the_field(server, route, body, field):
    r = post(server, route, body, headers={"x-api-key": API_KEY})
    assert 400 <= r.status_code < 500
    assert field in r.text


def test_request_bodies_are_limited_in_size(server):
    big = json.dumps({"user_id": "u000003", "k": 5, "attributes": {"x": "y" * 2_000_000}})
    r = server.post("/recommend", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit of 1,048,576 bytes" in r.json()["error"]

    def chunked():  # httpx sends a generator without Content-Length, in chunks
        yield b'{"user_id": "u000003", "k": 3}'

    r = server.post("/recommend", content=chunked(), headers={"content-type": "application/json"})
    assert r.status_code == 411
    assert post(server, "/recommend", {"user_id": "u000003", "k": 3}).status_code == 200


def test_feedback_needs_the_api_key(server):
    body = {"request_id": "r1", "user_id": "u000003", "item_id": "i000001", "event": "click"}
    assert post(server, "/feedback", body).status_code == 401
    assert post(server, "/feedback", body, headers={"x-api-key": "wrong"}).status_code == 401
    assert post(server, "/feedback", body, headers={"x-api-key": API_KEY}).status_code == 200


def test_refusals_are_json_bodies_naming_the_cause(server):
    """401 says whether the key is missing or wrong (a bearer token works too); a body
    that is not JSON gets 415, a malformed Content-Type 400, never 500."""
    body = {"request_id": "r2", "user_id": "u000003", "item_id": "i000001", "event": "click"}
    missing = post(server, "/feedback", body)
    assert missing.status_code == 401 and missing.json()["error"].startswith("no API key: send")
    wrong = post(server, "/feedback", body, headers={"x-api-key": "wrong"})
    assert wrong.json()["error"].startswith("the API key is not the service's")
    bearer = post(server, "/feedback", body, headers={"authorization": f"Bearer {API_KEY}"})
    assert bearer.status_code == 200
    asked = b'{"user_id": "u000003", "k": 3}'
    for content_type, status, says in (
        ("text/plain", 415, "unsupported Content-Type 'text/plain'"),
        ("application/x-www-form-urlencoded", 415, "this API takes application/json"),
        ("multipart/form-data", 400, "a multipart type needs a boundary"),
        ("json", 400, "malformed Content-Type 'json'"),
    ):
        r = server.post("/recommend", content=asked, headers={"content-type": content_type})
        assert r.status_code == status and says in r.json()["error"], (content_type, r.text)
    for content_type in ("application/json; charset=utf-8", None):  # None: no header at all
        headers = {"content-type": content_type} if content_type else {}
        assert server.post("/recommend", content=asked, headers=headers).status_code == 200


def test_the_spec_is_openapi_3_1_and_every_operation_has_an_example_that_works(server):
    """/docs.json declares the version it is written in; every operation has an example
    answer, and every request example, sent as is, gets that answer's shape."""
    assert server.get("/").status_code == 200  # Swagger UI
    spec = server.get("/docs.json").json()
    assert spec["openapi"] == "3.1.0"
    tried = []
    for route, item in spec["paths"].items():
        for method, operation in item.items():
            examples = [
                media["example"]
                for answer in operation["responses"].values()
                for media in answer.get("content", {}).values()
                if "example" in media
            ]
            assert examples, (route, method)
            if method != "post" or route == "/admin/items":  # that one changes the catalogue
                continue
            sent = operation["requestBody"]["content"]["application/json"]["example"]
            r = post(server, route, sent, headers=KEY)
            assert r.status_code == 200, (route, r.text)
            documented = operation["responses"]["200"]["content"]["application/json"]["example"]
            assert set(r.json()) == set(documented), route
            for status in ("400", "413", "415"):
                assert (
                    "error"
                    in operation["responses"][status]["content"]["application/json"]["example"]
                )
            tried.append(route)
    assert len(tried) == 11, tried


def test_the_python_client_example_runs_against_the_service(server):
    """docs/examples/shop_client.py, as a shop's developer would run it."""
    env = os.environ | {"CARTLIFT_URL": str(server.base_url), "CARTLIFT_API_KEY": API_KEY}
    done = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "examples" / "shop_client.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "events: 3 stored, 0 refused" in done.stdout
    for page in ("home page: ", "product page, similar: ", "cart page: ", "feedback: purchase"):
        assert page in done.stdout, done.stdout
    print(done.stdout)


def test_prediction_log_has_one_record_per_response(server, trained):
    home, _ = trained
    ids = [
        post(server, "/recommend", {"user_id": "u000007", "k": 3}).json()["request_id"]
        for _ in range(5)
    ]
    time.sleep(1.0)
    records = [
        json.loads(line)
        for path in Path(home, "predictions").rglob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    logged = [r for r in records if r["request_id"] in ids]
    assert len(logged) == 5
    assert {
        "timestamp",
        "endpoint",
        "user_id",
        "items",
        "scores",
        "model_version",
        "latency_ms",
    } <= set(logged[0])
    assert all(API_KEY not in log.read_text() for log in Path(home).glob("server-*.log"))


def wait_for(server: httpx.Client, done, seconds: float = 30) -> dict:
    """/metadata once ``done(metadata)`` holds on the worker that answers (both workers
    poll the registry every second)."""
    deadline, metas = time.time() + seconds, []
    while time.time() < deadline:
        metas = [post(server, "/metadata", {}).json() for _ in range(4)]
        if all(done(m) for m in metas):
            return metas[-1]
        time.sleep(0.2)
    pytest.fail(f"not reached in {seconds} s: {metas}")


def test_an_experiment_splits_customers_between_champion_and_challenger(server, trained):
    from typer.testing import CliRunner

    from flows.cli import app
    from infra.registry import start_experiment, stop_experiment
    from models.experiments.assignment import Experiment, assign

    home, _ = trained
    settings = Settings()
    for version, share, why in (
        ("1", 0.5, "is the champion"),
        ("2", 1.0, "share"),
        ("9", 0.5, "no version"),
    ):
        with pytest.raises(ValueError, match=why):
            start_experiment(settings, version, share)
    cli = CliRunner().invoke(app, ["experiment", "start", "--version", "2", "--share", "0.3"])
    assert cli.exit_code == 0, cli.output
    assert "version 2, answering 30.0% of customers" in cli.output
    meta = wait_for(server, lambda m: m["experiment"] is not None)
    assert meta["model_version"] == "1" and meta["experiment"]["challenger_version"] == "2"
    trial = Experiment("2", meta["experiment"]["share"], meta["experiment"]["salt"])

    customers = [f"u{i:06d}" for i in range(120)]
    answers = {
        c: [post(server, "/recommend", {"user_id": c, "k": 3}).json() for _ in range(3)]
        for c in customers
    }
    for c, seen in answers.items():  # sticky across requests and both workers
        expected = assign(trial, c)
        assert {a["variant"] for a in seen} == {expected}, c
        assert {a["model_version"] for a in seen} == {"2" if expected == "challenger" else "1"}
    taken = sum(assign(trial, c) == "challenger" for c in customers)
    assert 0 < taken < len(customers)  # both sides answer
    visitor = post(server, "/popular", {"k": 3, "session_id": "s-42"}).json()
    assert visitor["variant"] == assign(trial, "s-42")
    assert post(server, "/popular", {"k": 3}).json()["variant"] == "champion"  # no id: control
    status = CliRunner().invoke(app, ["experiment", "status"])
    assert "version 2, answering 30.0%" in status.output

    time.sleep(1.0)  # the prediction log flushes every 0.2 s
    records = [
        json.loads(line)
        for path in Path(home, "predictions").rglob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    mine = {a["request_id"]: a for seen in answers.values() for a in seen}
    logged = [r for r in records if r["request_id"] in mine]
    assert len(logged) == len(mine)
    for r in logged:
        assert r["variant"] == mine[r["request_id"]]["variant"]
        assert r["experiment"] == trial.salt
        assert r["model_version"] == mine[r["request_id"]]["model_version"]
    assert any(r.get("session_id") == "s-42" for r in records)

    assert stop_experiment(settings).challenger == 2
    wait_for(server, lambda m: m["experiment"] is None)
    after = {
        post(server, "/recommend", {"user_id": c, "k": 3}).json()["variant"] for c in customers
    }
    assert after == {"champion"}
    assert "No experiment running" in CliRunner().invoke(app, ["experiment", "status"]).output


@contextmanager
def steady_load(server: httpx.Client) -> Iterator[tuple[list[int], set[str]]]:
    """Two clients asking /recommend without pause while the test changes what serves;
    yields the status codes of failed requests and the model versions that answered."""
    failures: list[int] = []
    versions: set[str] = set()
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=str(server.base_url), timeout=10) as c:
            while not stop.is_set():
                r = c.post("/recommend", json={"user_id": "u000003", "k": 5})
                if r.status_code != 200:
                    failures.append(r.status_code)
                else:
                    versions.add(r.json()["model_version"])

    workers = [threading.Thread(target=load) for _ in range(2)]
    for w in workers:
        w.start()
    try:
        time.sleep(1)
        yield failures, versions
        time.sleep(1)
    finally:
        stop.set()
        for w in workers:
            w.join()


def test_hot_reload_under_load_without_failures(server, trained):
    with steady_load(server) as (failures, versions):
        promote(Settings(), "2")
        wait_for(server, lambda m: m["model_version"] == "2")
    assert post(server, "/metadata", {}).json()["model_version"] == "2"
    assert versions == {"1", "2"} and failures == []


def test_new_product_is_served_through_its_features(server, trained):
    _, shop = trained
    items = shop.items
    category = str(items["category"].iloc[0])
    top = float(items.loc[items["category"] == category, "price"].max())
    cheapest = str(items.loc[items["category"] == category].sort_values("price")["item_id"].iloc[0])
    gone = str(items["item_id"].iloc[1])
    change = {
        "items": [
            {"item_id": "launch-77", "category": category, "brand": "acme", "price": top * 1.5},
            {"item_id": gone, "in_stock": False},
        ]
    }
    assert post(server, "/admin/items", change).status_code == 401  # admin needs the key
    bad = post(server, "/admin/items", {"items": [{"item_id": "x", "price": 2.0}]}, headers=KEY)
    assert bad.status_code == 422 and "category" in bad.text
    ack = post(server, "/admin/items", change, headers=KEY)
    assert ack.status_code == 200, ack.text
    assert ack.json()["added"] == ["launch-77"] and ack.json()["updated"] == [gone]
    # The worker that took the call serves it at once; the other one after its next poll.
    time.sleep(1.5)
    for _ in range(6):
        similar = post(server, "/similar_items", {"item_id": "launch-77", "k": 5}).json()
        assert len(similar["items"]) == 5 and not similar["warnings"]
        upsold = post(server, "/upsell", {"item_id": cheapest, "k": 100}).json()["items"]
        assert "launch-77" in {i["item_id"] for i in upsold}
        only = {"include_categories": [category], "min_price": top * 1.4}
        rec = post(server, "/recommend", {"user_id": "nobody", "k": 5, "filters": only}).json()
        assert [i["item_id"] for i in rec["items"]] == ["launch-77"]
        every = post(server, "/popular", {"k": 100, "category": str(items["category"].iloc[1])})
        assert gone not in {i["item_id"] for i in every.json()["items"]}


def test_the_experiment_flow_promotes_a_challenger_that_sells_more_under_live_traffic(
    server, trained, monkeypatch
):
    """The loop over real HTTP and the real Prefect engine: the weak version 2 serves,
    the good version 1 is put up as challenger for half the customers; simulated shoppers
    (the tiny shop's own customers, reacting by their true tastes) get answers and send
    their clicks, carts and purchases to /feedback; the hourly flow looks after each
    batch, promotes the challenger, and the service switches with no failed request."""
    from flows.experiment import experiment
    from infra.registry import start_experiment
    from models.experiments.simulator import Behaviour, Shoppers

    _, shop = trained
    settings = Settings()
    promote(settings, "2")
    wait_for(server, lambda m: m["model_version"] == "2" and m["experiment"] is None)
    start_experiment(settings, "1", 0.5)
    wait_for(server, lambda m: m["experiment"] is not None)
    monkeypatch.setenv("CARTLIFT_EXPERIMENTS__MIN_UNITS", "50")
    # Keen shoppers (a purchase per few answers, not per hundred): a test's few hundred
    # customers then tell a good list from a near-random one.
    shoppers = Shoppers(TINY_SHOP, 11, Behaviour(click=40, cart=25, stray=0.0, buy=0.9))
    price = dict(zip(shop.items["item_id"], shop.items["price"].astype(float), strict=True))
    looks, answered = [], 0
    with steady_load(server) as (failures, _):
        while len(looks) < 12 and (not looks or looks[-1].action == "continue"):
            for user in shoppers.arrivals(150):
                r = post(server, "/recommend", {"user_id": user, "k": 10})
                assert r.status_code == 200, r.text
                answer, answered = r.json(), answered + 1
                shown = [i["item_id"] for i in answer["items"]]
                did = shoppers.react(user, shown)
                for event, items in (
                    ("click", did.clicked),
                    ("add_to_cart", did.carted),
                    ("purchase", did.bought),
                ):
                    for item in items:
                        said = {"request_id": answer["request_id"], "user_id": user}
                        said |= {"item_id": item, "event": event}
                        if event == "purchase":
                            said |= {"quantity": 1, "unit_price": price.get(item, 1.0)}
                        assert post(server, "/feedback", said, headers=KEY).status_code == 200
            time.sleep(0.5)  # the prediction log flushes every 0.2 s
            looks.append(experiment())
        assert looks[-1].action == "promote", [look.reason for look in looks]
        wait_for(server, lambda m: m["model_version"] == "1" and m["experiment"] is None)
    assert failures == []
    print(f"promoted after {len(looks)} looks, {answered} answers: {looks[-1].reason}")
    kpis = looks[-1].kpis.set_index(["variant", "endpoint", "kpi"])["value"]
    assert (
        kpis[("challenger", "recommend", "conversion")]
        > kpis[("champion", "recommend", "conversion")]
    )
    assert Path(looks[-1].report).exists()


def test_schemathesis_run_finds_no_server_error_and_no_schema_error(server, tmp_path):
    """`schemathesis run` as a shop's developer would run it on the live service: its
    default phases (examples, coverage, fuzzing), the not_a_server_error check, bounded
    and derandomised; with the API key, and without it where the key matters."""
    cli = Path(sys.executable).parent / "schemathesis"
    keyed = ["--include-path-regex", "^/(feedback|events|audience|admin/.*)$"]  # key matters
    runs = (("with-key", ["-H", f"x-api-key: {API_KEY}"], 16), ("without-key", keyed, 5))
    for name, key, operations in runs:
        done = subprocess.run(
            [
                str(cli),
                "run",
                str(server.base_url.join("/docs.json")),
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "8",
                "--generation-deterministic",
                "--seed",
                "7",
                "--no-shrink",
                "--request-timeout",
                "30",
                "--report",
                "junit",
                "--report-dir",
                str(tmp_path / name),
                *key,
            ],
            capture_output=True,
            text=True,
            timeout=900,
            env=os.environ | {"NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""},
        )
        summary = done.stdout[done.stdout.rfind("SUMMARY") :]
        assert done.returncode == 0, done.stdout[-6000:]
        cases = re.search(r"(\d+) generated, (\d+) passed\s*\n", summary)
        assert cases and cases[1] == cases[2], summary  # none failed, none errored
        assert "Failures" not in summary and "Errors" not in summary, summary
        assert f"Tested: {operations}" in summary, summary
        print(f"schemathesis, {name}: {cases[1]} cases generated, {cases[2]} passed")


def test_an_audience_over_http_ranks_customers_and_filters_by_segment(server, trained):
    """/audience: the customers most likely to buy a category, best first, with reasons;
    a segment keeps its own customers only; unknown targets answer nobody with a warning;
    malformed asks are refused naming the field; the key is required."""
    _, shop = trained
    sent = {"category": "coffee beans", "k": 50}
    assert post(server, "/audience", sent).status_code == 401
    r = post(server, "/audience", sent, headers=KEY)
    assert r.status_code == 200, r.text
    got = r.json()
    customers = got["customers"]
    assert len(customers) == 50 and got["target"] == "coffee beans" and not got["warnings"]
    scores = [c["score"] for c in customers]
    assert scores == sorted(scores, reverse=True)
    # Those who bought coffee beans lead the audience; every reason says why.
    coffee = set(shop.items.loc[shop.items["category"] == "coffee beans", "item_id"])
    cutoff = pd.Timestamp(post(server, "/metadata", {}).json()["data_window"]["cutoff"])
    events = shop.events[shop.events["timestamp"] < cutoff]  # what the model learnt from
    bought = events[events["event_type"] == "purchase"]
    buyers = set(bought.loc[bought["item_id"].isin(coffee), "user_id"])
    top = [c["user_id"] for c in customers[:10]]
    assert len(set(top) & buyers) >= 8, top
    assert all(c["reason"] for c in customers)

    segmented = segment(config=FAST)  # the served dataset's segment table, in its lake
    table = pd.read_parquet(segmented.table)
    name = table["segment"].value_counts().index[-2]  # a smaller cluster
    members = set(table.loc[table["segment"] == name, "user_id"])
    r = post(server, "/audience", sent | {"segment": name, "k": 1000}, headers=KEY)
    assert r.status_code == 200, r.text
    inside = {c["user_id"] for c in r.json()["customers"]}
    assert inside and inside <= members and r.json()["segment"] == name
    without = post(
        server, "/audience", sent | {"segment": name, "exclude_buyers": True}, headers=KEY
    )
    assert not {c["user_id"] for c in without.json()["customers"]} & buyers

    unknown = post(server, "/audience", {"item_id": "no-such-item"}, headers=KEY)
    assert unknown.status_code == 200 and unknown.json()["customers"] == []
    assert "unknown" in unknown.json()["warnings"][0]
    brand = str(shop.items.loc[shop.items["category"] == "coffee beans", "brand"].iloc[0])
    by_brand = post(server, "/audience", {"brand": brand, "k": 20}, headers=KEY)
    assert by_brand.status_code == 200 and by_brand.json()["target"] == brand
    assert len(by_brand.json()["customers"]) == 20 and not by_brand.json()["warnings"]
    nobody = post(server, "/audience", {"brand": "no-such-brand"}, headers=KEY)
    assert nobody.status_code == 200 and "brand 'no-such-brand' unknown" in nobody.text
    for body, field in (
        ({"k": 10}, "item_id, category and brand"),
        ({"category": "coffee beans", "item_id": "i000001"}, "item_id, category and brand"),
        ({"category": "coffee beans", "brand": brand}, "item_id, category and brand"),
        ({"category": "coffee beans", "segment": "vip"}, "no segment 'vip'"),
        ({"category": "coffee beans", "k": 0}, "k"),
    ):
        r = post(server, "/audience", body, headers=KEY)
        assert r.status_code in (400, 422) and field in r.text, (body, r.text)


def test_a_bundle_over_http_completes_an_item_in_stock_and_within_the_margin_floor(server, trained):
    """/bundle: a pack of items bought with the anchor, each in stock and priced; the
    pack's price keeps the margin floor; a cart anchors it too; an unknown item answers
    200 with a warning and no pack; malformed asks are refused naming the field."""
    _, shop = trained
    cutoff = pd.Timestamp(post(server, "/metadata", {}).json()["data_window"]["cutoff"])
    events = shop.events[shop.events["timestamp"] < cutoff]
    lines = events[events["event_type"] == "purchase"].drop_duplicates(["order_id", "item_id"])
    paired = lines[lines.groupby("order_id")["item_id"].transform("size") >= 2]
    anchor = str(paired["item_id"].value_counts().index[0])  # the most bought with others
    items = shop.items.set_index("item_id")
    r = post(server, "/bundle", {"item_id": anchor, "k_items": 3})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["anchor"] == [anchor] and len(got["items"]) == 3, got
    ids = [i["item_id"] for i in got["items"]]
    assert anchor not in ids and len(set(ids)) == 3
    assert items.loc[ids, "in_stock"].all()
    assert any(i["reason"].startswith("bought together with") for i in got["items"])
    prices = got["anchor_prices"] + [i["price"] for i in got["items"]]
    assert prices == pytest.approx(items.loc[[anchor, *ids], "price"].tolist())
    price = got["price"]
    assert price["full"] == pytest.approx(sum(prices), abs=0.01)
    assert price["price"] <= price["full"] and price["discount"] <= 0.1 + 1e-9
    margin = items.loc[[anchor, *ids], "margin"].to_numpy()
    cost = float((items.loc[[anchor, *ids], "price"].to_numpy() * (1 - margin)).sum())
    assert price["discount"] == 0 or (price["price"] - cost) / price["price"] >= 0.15 - 1e-9
    assert price["note"]

    cart = post(server, "/bundle", {"cart": [anchor, ids[0]], "k_items": 2, "user_id": "u000042"})
    assert cart.status_code == 200 and cart.json()["anchor"] == [anchor, ids[0]]
    assert len(cart.json()["items"]) == 2

    unknown = post(server, "/bundle", {"item_id": "no-such-item"})
    assert unknown.status_code == 200, unknown.text
    assert unknown.json()["items"] == [] and unknown.json()["price"] is None
    assert "unknown" in unknown.json()["warnings"][0]
    for body, field in (
        ({"k_items": 3}, "item_id and cart"),
        ({"item_id": anchor, "cart": [anchor]}, "item_id and cart"),
        ({"item_id": anchor, "k_items": 5}, "k_items"),
        ({"item_id": anchor, "k_items": 1}, "k_items"),
        ({"cart": []}, "cart"),
    ):
        r = post(server, "/bundle", body)
        assert r.status_code in (400, 422) and field in r.text, (body, r.text)
