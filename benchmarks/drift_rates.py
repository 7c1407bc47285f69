"""How often the monitor asks for retraining: on stable traffic (false alarms) and after a
market shift (detections), over 20 generated shops.

For each seed a shop is generated; the champion's training window is its first months and
the current window the following week, either as generated (stable) or after
:func:`models.data.shop.shift` (a new category takes a quarter of the traffic, one category's
prices rise 30%). The monitor's own windows, Evidently drift report and policy decide.

    uv run python benchmarks/drift_rates.py [--seeds 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd

from models.config import MonitorConfig, ShopConfig
from models.data.shop import generate, shift
from monitoring.drift import drift
from monitoring.policy import decide
from monitoring.windows import windows


def verdict(events: pd.DataFrame, items: pd.DataFrame, cutoff: pd.Timestamp, cfg: MonitorConfig):
    w = windows(events, items, events["timestamp"].min(), cutoff, cfg.window_days, cfg.min_events)
    d = drift(w.reference, w.current, cfg)
    return decide(cfg, d.share, d.drifted, None, None, None, None), d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--users", type=int, default=1500)
    parser.add_argument("--items", type=int, default=600)
    args = parser.parse_args()
    cfg = MonitorConfig()
    alarms, detections = 0, 0
    started = time.perf_counter()
    for seed in range(args.seeds):
        shop = generate(
            ShopConfig(seed=seed, n_users=args.users, n_items=args.items, days=120, cold_days=14)
        )
        # Before the generator's cold-start launches: a stationary stretch of the shop.
        cutoff = shop.events["timestamp"].max() - pd.Timedelta(days=35)
        window_end = cutoff + pd.Timedelta(days=cfg.window_days)
        stable = shop.events[shop.events["timestamp"] < window_end]
        calm, d0 = verdict(stable, shop.items, cutoff, cfg)
        shifted = shift(shop, cutoff, seed)
        moved = shifted.events[shifted.events["timestamp"] < window_end]
        alarm, d1 = verdict(moved, shifted.items, cutoff, cfg)
        alarms += calm.retrain
        detections += alarm.retrain
        print(
            f"seed {seed:2d}: stable drift {d0.share:4.0%} -> "
            f"{'RETRAIN' if calm.retrain else 'ok':7s} | shifted drift {d1.share:4.0%} "
            f"({', '.join(d1.drifted)}) -> "
            f"{'RETRAIN' if alarm.retrain else 'missed'}",
            flush=True,
        )
    n = args.seeds
    print(f"\nFalse alarm rate on stable traffic: {alarms}/{n} = {alarms / n:.0%} (target <= 5%)")
    print(
        f"Detection rate after the shift:     {detections}/{n} = {detections / n:.0%}"
        " (target >= 95%)"
    )
    print(
        f"({time.perf_counter() - started:.0f} s; thresholds: {cfg.num_method} {cfg.num_threshold},"
        f" {cfg.cat_method} {cfg.cat_threshold}, retrain at drift share {cfg.drift_share:.0%})"
    )


if __name__ == "__main__":
    main()
