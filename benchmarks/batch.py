"""Batch scoring throughput (``cartlift recommend-batch``) against bare numpy.

A 30,000-item x 64-component catalogue with random representations; top-10 for every
user with purchases excluded and out-of-stock items filtered, next to the bare floor:
one matrix product and one argpartition per block, nothing else, in the same run.

    uv run python benchmarks/batch.py [--items 30000] [--users 50000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# Run as a script, this folder comes first on sys.path and its serving.py would shadow the
# serving package: put the repository root there instead.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(_ROOT)] + [
    p for p in sys.path if Path(p or ".").resolve() != _ROOT / "benchmarks"
]

import numpy as np

from benchmarks.serving import make_bundle
from models.ranking.batch import recommend_all


def bare(user_emb: np.ndarray, item_emb: np.ndarray, k: int, block: int = 256) -> None:
    n = len(item_emb)
    for start in range(0, len(user_emb), block):
        scores = user_emb[start : start + block] @ item_emb.T
        np.argpartition(scores, n - k, axis=1)[:, n - k :]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=30_000)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    bundle = make_bundle(args.items, args.users)
    recommend_all(bundle, bundle.model.user_ids[:2048], args.k)  # warm-up
    started = time.perf_counter()
    table = recommend_all(bundle, None, args.k)
    ours = time.perf_counter() - started
    started = time.perf_counter()
    bare(bundle.model.user_emb, bundle.model.item_emb, args.k)
    floor = time.perf_counter() - started
    print(f"{args.users:,} users x {args.items:,} items x 64, top-{args.k}: {len(table):,} rows")
    print(f"recommend-batch: {ours:6.2f} s = {args.users / ours:9,.0f} users/s (target >= 10,000)")
    print(f"bare numpy:      {floor:6.2f} s = {args.users / floor:9,.0f} users/s")
    print(f"ratio: {ours / floor:.2f}x the floor's time")


if __name__ == "__main__":
    main()
