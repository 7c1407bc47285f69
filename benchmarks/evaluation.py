"""Where ``evaluate_and_register`` spends its time, and how it grows with the shop.

The step's parts run without Prefect on generated shops of several sizes: the gate's
evaluation (candidate and popularity through the one protocol), building the serving
bundle (rules, purchases, catalogue) and logging and registering the version in a
temporary MLflow store. Each part is printed in seconds and in seconds per million
interactions: a part that grows linearly keeps the second figure flat across sizes.
``--profile`` adds the ten most expensive functions of each part (cProfile).

    uv run python benchmarks/evaluation.py [--sizes 500000 2000000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.pipeline import PROFILES


def timed(name: str, fn: Callable[[], object], profile: bool, out: dict[str, float]) -> object:
    prof = cProfile.Profile() if profile else None
    start = time.perf_counter()
    if prof:
        prof.enable()
    result = fn()
    if prof:
        prof.disable()
    out[name] = time.perf_counter() - start
    if prof:
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(12)
        print(f"-- {name}\n" + "\n".join(text.getvalue().splitlines()[4:24]))
    return result


def run(size: int, profile: bool) -> tuple[int, int, dict[str, float]]:
    from infra import registry
    from infra.settings import Settings
    from models.config import RunConfig, ShopConfig
    from models.data.shop import generate
    from models.evaluation.tasks import holdout_metrics
    from models.features.build import build
    from models.ranking.bundle import build_bundle
    from models.recommenders.base import Interactions
    from models.recommenders.baselines import Popularity
    from models.recommenders.blend import PLAIN
    from models.recommenders.hybrid import Hybrid, HybridModel

    users, items, sessions = PROFILES.get(size, (max(100, size // 65), 2_000, 14.0))
    config = RunConfig(dataset=f"bench-{size}")
    shop = generate(ShopConfig(n_users=users, n_items=items, sessions_per_user=sessions))
    fs = build(shop.events, shop.items, shop.users, config.features)
    model = HybridModel.fit(fs, config.train.model_copy(update={"epochs": 1}))
    seconds: dict[str, float] = {}

    def gate() -> object:
        scorers = {
            "candidate": Hybrid.of(model, fs).scores,
            "popularity": Popularity().fit(Interactions.from_features(fs)).scores,
        }
        return holdout_metrics(fs, scorers, config.evaluate.k, "discovery")

    timed("gate evaluation", gate, profile, seconds)
    bundle = timed(
        "build bundle",
        lambda: build_bundle(
            model, fs, config.features, config.ranking, {}, (PLAIN, None), "discovery"
        ),
        profile,
        seconds,
    )
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home))
        record = registry.RunRecord(params={}, metrics={}, tags={}, artifacts={})
        timed(
            "log and register",
            lambda: registry.log_and_register(
                settings, "bench", record, lambda _: bundle, list(fs.user_ids[:3]), {}
            ),
            profile,
            seconds,
        )
    return len(shop.events), int(fs.interactions.nnz), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500_000, 2_000_000])
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    results = [(size, *run(size, args.profile)) for size in args.sizes]
    parts = list(results[0][3])
    print(f"\n{'events':>12s}{'interactions':>14s}" + "".join(f"{p:>20s}" for p in parts))
    for _, events, nnz, seconds in results:
        print(f"{events:12,d}{nnz:14,d}" + "".join(f"{seconds[p]:19.1f}s" for p in parts))
    print("seconds per million interactions (flat = linear):")
    for _, events, nnz, seconds in results:
        rates = "".join(f"{seconds[p] / nnz * 1e6:20.2f}" for p in parts)
        print(f"{events:12,d}{nnz:14,d}" + rates)


if __name__ == "__main__":
    main()
