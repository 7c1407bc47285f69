"""Soak: the real Bento service at a fixed mixed rate for ten minutes.

Builds the serving benchmark's 100,000-item champion, starts `bentoml serve` with two
workers, and drives recommend / cross_sell / upsell / feedback (50/20/20/10%) open-loop
(requests leave on schedule; latency counts from the scheduled time). Prints:

- every response by status: 5xx must be zero;
- p99 latency per minute and over the run against the serving target (20 ms at 200/s),
  and the last minute's p99 as a ratio of the first minute's (measured in the same run);
- the workers' resident memory after warm-up and at the end: growth must stay under 10%;
- the prediction log: every 2xx response must have exactly one record.

    uv run python benchmarks/soak.py [--rate 200] [--seconds 600] [--warmup 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(_ROOT)] + [
    p for p in sys.path if Path(p or ".").resolve() != _ROOT / "benchmarks"
]
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from benchmarks.serving import SPAWN, free_port, make_bundle, service_env, wait_ready
from serving.launch import command

MIX = (("recommend", 0.5), ("cross_sell", 0.2), ("upsell", 0.2), ("feedback", 0.1))
TARGET_P99_MS = 20.0
MAX_RSS_GROWTH = 0.10


def requests_for(n: int, users: int, items: int, seed: int = 7) -> list[tuple[str, dict]]:
    """``n`` (endpoint, body) pairs in the mix; feedback ids are unique so each one's log
    record can be found."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(len(MIX), size=n, p=[w for _, w in MIX])
    u = rng.integers(0, users, n)
    a, b = rng.integers(0, items, n), rng.integers(0, items, n)
    out = []
    for i in range(n):
        name, user = MIX[kinds[i]][0], f"u{u[i]:07d}"
        if name == "recommend":
            body = {"user_id": user, "k": 10}
        elif name == "cross_sell":
            body = {"cart": [f"i{a[i]:07d}", f"i{b[i]:07d}"], "user_id": user, "k": 10}
        elif name == "upsell":
            body = {"item_id": f"i{a[i]:07d}", "user_id": user, "k": 10}
        else:
            body = {"request_id": f"soak-{i}", "user_id": user, "item_id": f"i{a[i]:07d}"}
            body["event"] = "click"
        out.append((name, body))
    return out


def drive(base: str, plan: list[tuple[str, dict]], rate: float, out) -> None:
    """Open loop over ``plan``; puts (seconds since start, endpoint, status, latency s,
    request id of the answer) for every request."""
    import aiohttp
    import uvloop

    async def main() -> list[tuple[float, str, int, float, str | None]]:
        connector = aiohttp.TCPConnector(limit=512)
        timeout = aiohttp.ClientTimeout(total=30)
        headers = {"content-type": "application/json"}
        results: list[tuple[float, str, int, float, str | None]] = []
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def one(name: str, body: bytes, due: float) -> None:
                rid = None
                try:
                    async with session.post(f"{base}/{name}", data=body, headers=headers) as r:
                        text = await r.read()
                        code = r.status
                        if code == 200:
                            rid = json.loads(text).get("request_id")
                except (TimeoutError, aiohttp.ClientError):
                    code = 599
                results.append((due - start, name, code, time.perf_counter() - due, rid))

            start = time.perf_counter() + 0.1
            tasks = []
            for i, (name, body) in enumerate(plan):
                due = start + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(name, json.dumps(body).encode(), due)))
            await asyncio.gather(*tasks)
        return results

    out.put(uvloop.run(main()))


def worker_rss(server_pid: int) -> float:
    """Resident memory (MB) of the service's request workers, which hold the model."""
    import psutil

    total = 0
    for p in psutil.Process(server_pid).children(recursive=True):
        try:
            if "_bentoml_impl.worker" in " ".join(p.cmdline()):
                total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def log_records(predictions: Path) -> Counter:
    """How many log records each (endpoint kind, request id) has."""
    seen: Counter = Counter()
    for path in predictions.rglob("*.jsonl"):
        for line in path.read_text().splitlines():
            r = json.loads(line)
            seen[("feedback" if r["endpoint"] == "feedback" else "answer", r["request_id"])] += 1
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--warmup", type=float, default=60)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        env = service_env(home, args.workers)
        os.environ.update(env)
        import mlflow

        from infra import registry
        from infra.settings import Settings

        print(f"Registering a {args.items:,}-item champion ...", flush=True)
        settings = Settings()
        client = registry.connect(settings)
        with mlflow.start_run():
            version, _ = registry.log_model(
                make_bundle(args.items, args.users), settings, ["u0000001"]
            )
        registry.set_champion(client, settings, version)

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = (Path(tmp) / "server.log").open("w")
        server = subprocess.Popen(
            command("127.0.0.1", port), env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_ready(f"{base}/readyz", server)
            plan = requests_for(
                int(args.rate * (args.warmup + args.seconds)), args.users, args.items
            )
            mix = ", ".join(f"{name} {share:.0%}" for name, share in MIX)
            total = args.warmup + args.seconds
            print(
                f"Soak: {total:.0f} s at {args.rate:.0f} req/s ({mix}), {args.workers} workers; "
                f"the first {args.warmup:.0f} s are warm-up",
                flush=True,
            )
            queue = SPAWN.Queue()
            driver = SPAWN.Process(target=drive, args=(base, plan, args.rate, queue))
            driver.start()
            started = time.time()
            rss: list[tuple[float, float]] = []
            while driver.is_alive() and queue.empty():
                rss.append((time.time() - started, worker_rss(server.pid)))
                if len(rss) % 12 == 0:
                    print(f"  {rss[-1][0]:4.0f} s: workers' RSS {rss[-1][1]:.0f} MB", flush=True)
                time.sleep(5)
            results = queue.get()
            driver.join()
            time.sleep(3)  # the prediction log flushes every second
            report(results, rss, log_records(home / "predictions"), args)
        finally:
            server.terminate()
            server.wait(timeout=60)


def report(results, rss, records: Counter, args) -> None:
    codes = Counter(r[2] // 100 * 100 if r[2] != 599 else 599 for r in results)
    print(
        f"\nRequests: {len(results):,}; 2xx {codes[200]:,}, 4xx {codes[400]:,}, "
        f"5xx {codes[500]:,}, failed connections {codes[599]:,}"
    )
    measured = [r for r in results if r[0] >= args.warmup]
    lat = np.array([r[3] for r in measured]) * 1000
    minute = np.array([int((r[0] - args.warmup) // 60) for r in measured])
    by_minute = [np.percentile(lat[minute == m], 99) for m in range(int(minute.max()) + 1)]
    print("p99 by minute (ms): " + " ".join(f"{v:.1f}" for v in by_minute))
    for name, _ in MIX:
        mine = np.array([r[3] for r in measured if r[1] == name]) * 1000
        print(
            f"  {name:11s} p50 {np.percentile(mine, 50):5.1f} ms  p99 "
            f"{np.percentile(mine, 99):5.1f} ms  ({len(mine):,} requests)"
        )
    p99 = float(np.percentile(lat, 99))
    print(
        f"p99 over the run: {p99:.1f} ms (target {TARGET_P99_MS:.0f} ms at 200/s); "
        f"last minute / first minute: {by_minute[-1] / by_minute[0]:.2f}x"
    )
    after_warmup = next(m for t, m in rss if t >= args.warmup)
    end = float(np.mean([m for t, m in rss if t >= rss[-1][0] - 60]))
    growth = end / after_warmup - 1
    print(
        f"Workers' RSS: {after_warmup:.0f} MB after warm-up, {end:.0f} MB in the last minute: "
        f"growth {growth:+.1%} (target < {MAX_RSS_GROWTH:.0%})"
    )
    ok = [r for r in results if r[2] == 200]
    counts = [records[("feedback" if r[1] == "feedback" else "answer", r[4])] for r in ok]
    missing, doubled = counts.count(0), sum(1 for n in counts if n > 1)
    feedback = sum(1 for r in ok if r[1] == "feedback")
    print(
        f"Prediction log: {len(ok):,} 2xx responses ({feedback:,} feedback), "
        f"{counts.count(1):,} with exactly one record, {missing} missing, {doubled} duplicated"
    )
    verdict = (
        codes[500] == 0
        and codes[599] == 0
        and p99 <= TARGET_P99_MS
        and growth < MAX_RSS_GROWTH
        and missing == doubled == 0
    )
    print("PASS" if verdict else "FAIL")


if __name__ == "__main__":
    main()
