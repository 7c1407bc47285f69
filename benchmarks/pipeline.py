"""Wall time and peak memory per pipeline step, against LightFM's bare ``fit``.

Runs the real flows (ingest, build_features, train, evaluate_and_register) through
Prefect on generated shops of about 200k and 2M events, then times ``LightFM.fit`` on
the very same matrices in the same process. The training step should stay within
1.25x of the bare fit: the pipeline's overhead (Prefect task, progress logging,
representation precompute, finiteness check) must stay small.

    uv run python benchmarks/pipeline.py [--sizes 200000 2000000] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import psutil

# Users, items and sessions per user that give roughly the requested number of events.
PROFILES = {200_000: (3_000, 2_000, 14.0), 2_000_000: (30_000, 8_000, 14.0)}


class Peak:
    """Peak resident memory above the level at entry, sampled every 10 ms."""

    def __init__(self) -> None:
        self.proc = psutil.Process()

    def __enter__(self) -> Peak:
        self.base = self.peak = self.proc.memory_info().rss
        self.start = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.seconds = time.perf_counter() - self.start
        self.mb = (self.peak - self.base) / 2**20


def run(size: int, threads: int, workdir: Path) -> None:

    from flows.ingest import ingest
    from flows.train import build_features, evaluate_and_register, train
    from infra.lake import write_shop
    from models.config import RunConfig, ShopConfig
    from models.data.shop import generate
    from models.recommenders.hybrid import new_lightfm

    users, items, sessions = PROFILES.get(size, (max(100, size // 65), 2_000, 14.0))
    config = RunConfig(dataset=f"bench-{size}")
    config = config.model_copy(
        update={"train": config.train.model_copy(update={"num_threads": threads})}
    )
    rows = []
    with Peak() as p:
        shop = generate(ShopConfig(n_users=users, n_items=items, sessions_per_user=sessions))
        data = workdir / f"shop-{size}"
        write_shop(shop, data)
    rows.append(("generate", p))
    n_events = len(shop.events)
    del shop
    with Peak() as p:
        snapshot = ingest(str(data), "contract", None, config.dataset)
    rows.append(("ingest", p))
    with Peak() as p:
        fs = build_features(snapshot, config)
    rows.append(("build_features", p))
    with Peak() as p:
        model = train(fs, config)
    rows.append(("train", p))
    train_step = p.seconds
    with Peak() as p:
        evaluate_and_register(model, fs, snapshot, config)
    rows.append(("evaluate_and_register", p))

    cfg = config.train
    with Peak() as p:
        bare = new_lightfm(cfg)
        bare.fit(
            fs.interactions,
            user_features=fs.user_features,
            item_features=fs.item_features,
            sample_weight=fs.weights,
            epochs=cfg.epochs,
            num_threads=cfg.num_threads,
        )
    rows.append(("bare LightFM.fit (reference)", p))

    print(
        f"\n== {n_events:,} events ({users:,} users, {items:,} items), "
        f"{fs.interactions.nnz:,} interactions, {cfg.epochs} epochs, {cfg.num_threads} thread(s)"
    )
    print(f"{'step':32s}{'wall s':>10s}{'peak MB':>10s}")
    for name, peak in rows:
        print(f"{name:32s}{peak.seconds:10.1f}{peak.mb:10.0f}")
    print(f"training step / bare fit = {train_step / p.seconds:.3f}x (target <= 1.25x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200_000, 2_000_000])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        (home / "prefect").mkdir(parents=True)
        os.environ["CARTLIFT_HOME"] = str(home)
        os.environ["PREFECT_HOME"] = str(home / "prefect")
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        from prefect import flow

        @flow(name="benchmark")
        def bench() -> None:
            for size in args.sizes:
                run(size, args.threads, Path(tmp))

        bench()


if __name__ == "__main__":
    main()
