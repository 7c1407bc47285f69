"""Serving latency at fixed request rates, next to a bare uvicorn floor.

Builds a champion with a 100,000-item catalogue x 64 components (random representations:
latency does not depend on what the numbers mean), registers it in a temporary MLflow
store, starts the real Bento service, and drives /recommend, /cross_sell, /upsell,
/bundle and /audience with an open-loop generator (requests leave on a fixed schedule;
latency counts from the scheduled time, so queueing is not hidden). The floor is a bare
uvicorn endpoint doing the same numpy top-k, measured in the same run.

With ``--experiment SHARE`` it then registers a second version and measures the service
in alternating windows without and with an online experiment (that version answering
SHARE of customers; every worker loads it before a window starts), ``--repeats`` of
each: the ratio of the median p99 with the experiment to the median p99 without, in the
same run.

    uv run python benchmarks/serving.py [--items 100000] [--rates 200 400] [--seconds 15]
                                        [--experiment 0.5 [--repeats 3]]
                                        [--no-session-ranker]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this folder comes first on sys.path and its serving.py would shadow the
# serving package: put the repository root there instead.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(_ROOT)] + [
    p for p in sys.path if Path(p or ".").resolve() != _ROOT / "benchmarks"
]

# One BLAS thread per process, set before numpy loads: the floor is forked from this
# process, and idle OpenBLAS threads spinning in it would steal CPU from the servers.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from serving.launch import command

DIM = 64
# Helper processes start fresh: a forked child would inherit this process's large heap,
# and its first full garbage collection touching every inherited object stalls it ~1 s.
SPAWN = mp.get_context("spawn")
WARMUP_SECONDS = 2.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_bundle(n_items: int, n_users: int, seed: int = 0, session_ranker: bool = True):
    """A bundle of the real types with random representations; its session model with
    the second stage (``ranking.session_ranker``) unless told otherwise."""
    import pandas as pd
    import scipy.sparse as sp
    from lightfm import LightFM
    from lightfm.data import Dataset

    from models.config import FeatureConfig, RankingConfig, TrainConfig
    from models.evaluation.sessions import next_item_cases, prefixes
    from models.features.sessions import Sessions
    from models.ranking.bundle import Bundle
    from models.ranking.catalogue import Catalogue
    from models.recommenders.blend import Mix, Signals
    from models.recommenders.hybrid import HybridModel
    from models.recommenders.sessions import FEATURES, Ranker, SessionModel, Weights

    rng = np.random.default_rng(seed)
    item_ids = np.array([f"i{i:07d}" for i in range(n_items)], dtype=object)
    user_ids = np.array([f"u{i:07d}" for i in range(n_users)], dtype=object)
    dataset = Dataset()
    dataset.fit(
        users=user_ids, items=item_ids, user_features=["region=a"], item_features=["category=c0"]
    )
    lfm = LightFM(no_components=DIM)
    lfm._initialize(DIM, n_items + 1, n_users + 1)  # representations only; no training needed
    items = pd.DataFrame(
        {
            "item_id": item_ids,
            "title": "",
            "category": [f"c{c}" for c in rng.integers(0, 200, n_items)],
            "brand": "b",
            "price": rng.lognormal(3, 1, n_items).round(2),
            "in_stock": rng.random(n_items) > 0.05,
            "margin": rng.uniform(0.1, 0.4, n_items),
        }
    )
    model = HybridModel(
        config=TrainConfig(no_components=DIM),
        dataset=dataset,
        model=lfm,
        user_ids=user_ids,
        item_ids=item_ids,
        user_bias=np.zeros(n_users, np.float32),
        user_emb=rng.normal(size=(n_users, DIM)).astype(np.float32),
        item_bias=rng.normal(size=n_items).astype(np.float32),
        item_emb=rng.normal(size=(n_items, DIM)).astype(np.float32),
    )
    nnz = n_items * 20
    lift = sp.csr_matrix(
        (rng.uniform(1, 10, nnz), (rng.integers(0, n_items, nnz), rng.integers(0, n_items, nnz))),
        shape=(n_items, n_items),
    )
    purchased = sp.csr_matrix(
        (
            np.ones(n_users * 5, np.float32),
            (np.repeat(np.arange(n_users), 5), rng.integers(0, n_items, n_users * 5)),
        ),
        shape=(n_users, n_items),
    )
    signals = Signals(
        purchases=purchased,
        repeat_rate=np.full(n_items, 0.2, np.float32),
        interest=purchased.copy(),
        trend=rng.normal(size=n_items).astype(np.float32),
    )
    # Past sessions of 2-6 items within one of 200 categories: what a session model
    # learns from (its per-request cost is what matters here, not what it learnt).
    category = pd.factorize(items["category"])[0]
    members = [np.flatnonzero(category == c) for c in range(category.max() + 1)]
    lengths = rng.integers(2, 7, 50_000)
    picked = np.concatenate(
        [rng.choice(members[rng.integers(0, len(members))], n) for n in lengths]
    )
    sessions = Sessions(
        np.concatenate([[0], np.cumsum(lengths)]),
        picked.astype(np.int64),
        np.zeros(len(lengths), "datetime64[ns]"),
        n_items,
    )
    # Orders of 2-6 items (the same shape as the sessions): what a bundle counts
    # multi-item co-occurrence in.
    lines = rng.integers(2, 7, 200_000)
    orders = sp.csc_matrix(
        (
            np.ones(lines.sum(), np.float32),
            (np.repeat(np.arange(len(lines)), lines), rng.integers(0, n_items, lines.sum())),
        ),
        shape=(len(lines), n_items),
    )
    orders.data[:] = 1.0
    # The session model with a ranker taught on 500 of its own sessions' next steps (what
    # it learnt does not matter here; what it costs per request does).
    weights = Weights(ease=1.0, rules=1.0, knn=1.0, category=0.3)
    learnt = SessionModel.fit(sessions, category)
    some = sessions.take(np.arange(500))
    cases = next_item_cases(some)
    top, x = learnt.features(prefixes(some, cases, 1.0), weights)
    ranker = Ranker.fit(x.reshape(-1, len(FEATURES)), (top == cases.target[:, None]).ravel())
    return Bundle(
        orders=orders,
        sessions=dataclasses.replace(learnt, ranker=ranker if session_ranker else None),
        session_weights=weights,
        model=model,
        catalogue=Catalogue.from_items(items, item_ids),
        lift=lift,
        signals=signals,
        mixes={True: Mix(interest=1.0, trend=0.5), False: Mix(again=10.0, interest=1.0)},
        objective="discovery",
        popularity=rng.pareto(1.5, n_items),
        user_attributes=("region",),
        features=FeatureConfig(),
        ranking=RankingConfig(),
        metadata={"dataset": "benchmark"},
    )


def floor_app(emb_path: str, port: int) -> None:
    """A bare uvicorn endpoint: the same dot products and argpartition, nothing else."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    data = np.load(emb_path)
    item_emb, bias, users = data["item_emb"], data["bias"], data["users"]
    item_emb_t = np.ascontiguousarray(item_emb.T)  # the layout the engine scores with

    async def top(request: Request) -> JSONResponse:
        body = await request.json()
        u = users[int(body["user"]) % len(users)]
        scores = u @ item_emb_t + bias
        idx = np.argpartition(-scores, 10)[:10]
        idx = idx[np.argsort(-scores[idx])]
        return JSONResponse({"items": idx.tolist()})

    uvicorn.run(
        Starlette(routes=[Route("/top", top, methods=["POST"])]),
        host="127.0.0.1",
        port=port,
        log_level="error",
    )


def drive(
    url: str, bodies: list[dict], rate: float, seconds: float, warmup: float, out: mp.Queue
) -> None:
    """Open loop: request i leaves at start + i / rate, whatever the answers before it did;
    latency counts from that scheduled time, so queueing is never hidden.

    Requests are launched one by one as they fall due (not created up front), on uvloop,
    so the generator's own cost stays small and flat. The first ``warmup`` seconds open
    the connections and are not counted.
    """
    import aiohttp
    import uvloop

    payloads = [json.dumps(b).encode() for b in bodies]
    headers = {"content-type": "application/json"}

    async def main() -> list[tuple[float, int, float]]:
        connector = aiohttp.TCPConnector(limit=512)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            results: list[tuple[float, int, float]] = []

            async def one(i: int, due: float) -> None:
                try:
                    async with session.post(
                        url, data=payloads[i % len(payloads)], headers=headers
                    ) as r:
                        await r.read()
                        code = r.status
                except (TimeoutError, aiohttp.ClientError):
                    code = 599
                if due >= measured_from:
                    results.append((time.perf_counter() - due, code, due - measured_from))

            start = time.perf_counter() + 0.1
            measured_from = start + warmup
            tasks = []
            for i in range(int(rate * (warmup + seconds))):
                due = start + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i, due)))
            await asyncio.gather(*tasks)
            return results

    out.put(uvloop.run(main()))


def cpu_seconds(pid: int) -> float:
    """CPU time used so far by a process and all its children (the service's workers)."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def measure(
    url: str, bodies: list[dict], rate: float, seconds: float, pid: int
) -> dict[str, float]:
    q: mp.Queue = SPAWN.Queue()
    proc = SPAWN.Process(target=drive, args=(url, bodies, rate, seconds, WARMUP_SECONDS, q))
    proc.start()
    time.sleep(WARMUP_SECONDS)  # roughly: CPU per request is an average, not a bound
    cpu = cpu_seconds(pid)
    results = q.get()
    proc.join()
    cpu = cpu_seconds(pid) - cpu
    lat = np.array([r[0] for r in results]) * 1000
    if os.environ.get("BENCH_DUMP"):
        np.save(os.environ["BENCH_DUMP"], np.array([(r[2], r[0]) for r in results]))
    errors = sum(1 for r in results if r[1] >= 400)
    return {
        "p50": np.percentile(lat, 50),
        "p95": np.percentile(lat, 95),
        "p99": np.percentile(lat, 99),
        "throughput": len(results) / seconds,
        "errors": errors,
        "cpu_ms": cpu * 1000 / max(len(results), 1),
    }


def row(rate: float, name: str, m: dict[str, float]) -> str:
    latency = "  ".join(f"{p} {m[p]:7.1f} ms" for p in ("p50", "p95", "p99"))
    done = f"{m['throughput']:6.0f} req/s  errors {m['errors']}  CPU {m['cpu_ms']:4.2f} ms/req"
    return f"{rate:5.0f} req/s  {name:28s} {latency}  {done}"


def service_env(home: Path, workers: int) -> dict[str, str]:
    """The environment of a benchmarked service with its state under ``home``."""
    return {
        **os.environ,
        "CARTLIFT_HOME": str(home),
        "BENTOML_HOME": str(home / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
        "CARTLIFT_SERVING__WORKERS": str(workers),
        # One BLAS thread per worker: two workers on two cores must not oversubscribe.
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }


def wait_ready(url: str, proc: subprocess.Popen | mp.Process, timeout: float = 180) -> None:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code in (200, 405):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {timeout} s")


def serving_experiment(port: int, running: bool) -> None:
    """Wait until every worker serves an experiment (``running``) or none."""
    import httpx

    deadline = time.time() + 300
    while time.time() < deadline:  # both workers: a few answers in a row agree
        metas = [
            httpx.post(f"http://127.0.0.1:{port}/metadata", timeout=10).json() for _ in range(6)
        ]
        if all(bool(m.get("experiment")) == running for m in metas):
            return
        time.sleep(1)
    raise SystemExit(f"the service did not {'load' if running else 'drop'} the challenger in 300 s")


def stream_sessions(port: int, items: list[str]) -> None:
    """Three views for each of 2,000 visitor sessions, through /events (the event store the
    service reads a session from)."""
    import httpx

    now = time.time()
    events = [
        {
            "event_id": f"bench-{s}-{j}",
            "user_id": f"visitor-{s}",
            "item_id": items[(s * 3 + j) % len(items)],
            "event_type": "view",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now + j)),
            "session_id": f"s{s}",
        }
        for s in range(2000)
        for j in range(3)
    ]
    for lo in range(0, len(events), 1000):
        r = httpx.post(
            f"http://127.0.0.1:{port}/events", json={"events": events[lo : lo + 1000]}, timeout=60
        )
        r.raise_for_status()
    print(f"Streamed {len(events):,} session views through /events", flush=True)


def with_experiment(args, settings, bundle, port: int, suites: dict) -> None:
    """Register a second version; then ``--repeats`` times, measure the service's endpoints
    without an experiment and with one (started, and stopped after), alternating windows
    so the machine's drift between windows falls on both sides alike. Prints every
    window, and the ratio of the median p99 with to the median p99 without."""
    import mlflow

    from infra import registry

    with mlflow.start_run():
        challenger, _ = registry.log_model(bundle, settings, ["u0000001"])
    service = {n: v for n, v in suites.items() if not n.startswith("floor")}
    p99: dict[tuple[float, str, bool], list[float]] = {}
    print(
        f"\nAlternating windows, {args.repeats} of each: without an experiment, then with "
        f"version {challenger} answering {args.experiment:.0%} of customers",
        flush=True,
    )
    for repeat in range(args.repeats):
        for running in (False, True):
            if running:
                registry.start_experiment(settings, challenger, args.experiment)
            else:
                registry.stop_experiment(settings)
            serving_experiment(port, running)
            for pid, url, bodies in service.values():
                measure(url, bodies, 50, 2, pid)  # warm the variant's code paths
            for rate in args.rates:
                for name, (pid, url, bodies) in service.items():
                    m = measure(url, bodies, rate, args.seconds, pid)
                    p99.setdefault((rate, name, running), []).append(m["p99"])
                    label = f"{name} {'with' if running else 'without'} #{repeat + 1}"
                    print(row(rate, label, m), flush=True)
    registry.stop_experiment(settings)
    print("\nMedian p99 over the windows, with the experiment / without (same run):")
    for rate in args.rates:
        for name in service:
            off = float(np.median(p99[(rate, name, False)]))
            on = float(np.median(p99[(rate, name, True)]))
            print(
                f"{rate:5.0f} req/s  {name:14s} without {off:6.1f} ms  with {on:6.1f} ms  "
                f"{on / off:5.2f}x",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--rates", type=float, nargs="+", default=[200, 400])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument(
        "--no-session-ranker",
        action="store_true",
        help="sessions answered by the blend alone (ranking.session_ranker off)",
    )
    parser.add_argument(
        "--workers", type=int, default=int(os.environ.get("CARTLIFT_SERVING__WORKERS", "2"))
    )
    parser.add_argument(
        "--only", nargs="+", default=None, help="measure only these (e.g. floor /recommend)"
    )
    parser.add_argument(
        "--experiment",
        type=float,
        default=None,
        metavar="SHARE",
        help="then measure again with a challenger answering this share of customers",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="with --experiment: windows of each, alternating"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        env = service_env(home, args.workers)
        os.environ.update(env)
        from infra import registry
        from infra.settings import Settings

        print(
            f"Building a {args.items:,}-item x {DIM} catalogue and registering it ...", flush=True
        )
        bundle = make_bundle(args.items, args.users, session_ranker=not args.no_session_ranker)
        settings = Settings()
        client = registry.connect(settings)
        import mlflow

        with mlflow.start_run():
            version, _ = registry.log_model(bundle, settings, ["u0000001"])
        registry.set_champion(client, settings, version)
        emb = Path(tmp) / "emb.npz"
        np.savez(
            emb,
            item_emb=bundle.model.item_emb,
            bias=bundle.model.item_bias,
            users=bundle.model.user_emb[:1000],
        )

        port, floor_port = free_port(), free_port()
        server = subprocess.Popen(
            command("127.0.0.1", port),
            env=env,
            stdout=(Path(tmp) / "server.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        floor = SPAWN.Process(target=floor_app, args=(str(emb), floor_port), daemon=True)
        floor.start()
        try:
            wait_ready(f"http://127.0.0.1:{port}/readyz", server)
            wait_ready(f"http://127.0.0.1:{floor_port}/top", floor)
            rng = np.random.default_rng(1)
            users = [f"u{i:07d}" for i in rng.integers(0, args.users, 2000)]
            items = [f"i{i:07d}" for i in rng.integers(0, args.items, 2000)]
            suites = {
                "floor (bare uvicorn top-k)": (
                    floor.pid,
                    f"http://127.0.0.1:{floor_port}/top",
                    [{"user": i} for i in range(2000)],
                ),
                "/recommend": (
                    server.pid,
                    f"http://127.0.0.1:{port}/recommend",
                    [{"user_id": u, "k": 10} for u in users],
                ),
                # Visitors whose session /events took (three views each, just before).
                "/recommend (session)": (
                    server.pid,
                    f"http://127.0.0.1:{port}/recommend",
                    [{"session_id": f"s{i}", "k": 10} for i in range(2000)],
                ),
                "/cross_sell": (
                    server.pid,
                    f"http://127.0.0.1:{port}/cross_sell",
                    [
                        {"cart": [items[i], items[-i]], "user_id": users[i], "k": 10}
                        for i in range(2000)
                    ],
                ),
                "/upsell": (
                    server.pid,
                    f"http://127.0.0.1:{port}/upsell",
                    [{"item_id": items[i], "user_id": users[i], "k": 10} for i in range(2000)],
                ),
                # A campaign's audience: every customer scored for an item, or for a
                # category's best sellers (ranking.audience_items), the top 100 returned.
                "/audience (item)": (
                    server.pid,
                    f"http://127.0.0.1:{port}/audience",
                    [{"item_id": items[i], "k": 100} for i in range(2000)],
                ),
                # A pack of 3 that completes an item, priced (the orders below).
                "/bundle": (
                    server.pid,
                    f"http://127.0.0.1:{port}/bundle",
                    [{"item_id": items[i], "user_id": users[i], "k_items": 3} for i in range(2000)],
                ),
                "/audience (category)": (
                    server.pid,
                    f"http://127.0.0.1:{port}/audience",
                    [{"category": f"c{i % 200}", "k": 100} for i in range(2000)],
                ),
            }
            if args.only:
                suites = {n: v for n, v in suites.items() if n.split()[0] in args.only}
            if "/recommend (session)" in suites:
                stream_sessions(port, items)
            # Warm up every endpoint (first requests load code paths and fill caches).
            for pid, url, bodies in suites.values():
                measure(url, bodies, 50, 2, pid)
            rows = []
            for rate in args.rates:
                for name, (pid, url, bodies) in suites.items():
                    m = measure(url, bodies, rate, args.seconds, pid)
                    rows.append((rate, name, m))
                    print(row(rate, name, m), flush=True)
            print("\nRatio of p99 to the floor's p99 at the same rate:")
            for rate in args.rates:
                base = next(
                    (m["p99"] for r, n, m in rows if r == rate and n.startswith("floor")), None
                )
                if base is None:
                    continue
                for r, n, m in rows:
                    if r == rate and not n.startswith("floor"):
                        print(f"{rate:5.0f} req/s  {n:14s} {m['p99'] / base:5.2f}x")
            p99 = {(r, n): m["p99"] for r, n, m in rows}
            for rate in args.rates:
                if (rate, "/recommend (session)") in p99 and (rate, "/recommend") in p99:
                    ratio = p99[(rate, "/recommend (session)")] / p99[(rate, "/recommend")]
                    print(
                        f"{rate:5.0f} req/s  /recommend with a session (its events read from "
                        f"the store) / without: p99 {ratio:.2f}x",
                        flush=True,
                    )
            if args.experiment is not None:
                suites.pop("/recommend (session)", None)
                with_experiment(args, settings, bundle, port, suites)
            print(json.dumps({"items": args.items, "dim": DIM, "workers": args.workers}))
        finally:
            import psutil

            tree = [psutil.Process(server.pid), *psutil.Process(server.pid).children(True)]
            stopped = time.perf_counter()
            server.terminate()
            try:
                server.wait(timeout=30)
                print(f"Service stopped on SIGTERM in {time.perf_counter() - stopped:.1f} s")
            except subprocess.TimeoutExpired:
                print("Service still running 30 s after SIGTERM: killed")
            for proc in tree:  # workers run in sessions of their own: end each one
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.kill()
            floor.terminate()


if __name__ == "__main__":
    main()
