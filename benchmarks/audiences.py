"""Audiences (issue 20's offline protocol): who buys an item or a category in the holdout,
found from the training window alone by cartlift (item to users through the served
blend's terms), by RFM targeting (best customers first) and by the category's own best
customers. :mod:`models.evaluation.audiences` has the rules; cartlift scores as
``/audience`` does (``Engine.audience_scores``).

The holdout is the last ``features.holdout_days`` (30) days, as in the quality report. The
model is trained on the training window with the run config (``--config``: a tuned one;
default: the defaults); the blend's weights and how much a customer's buying at all and
buying in the target's categories weigh beside the affinity are chosen on a validation
window carved from the training window by the pipeline's own
:func:`models.evaluation.weighing.weigh` (its choices printed). Printed per
shop: precision@N and lift for N = 100 and 1% of customers, over items and categories,
and cartlift against each targeting rule with a paired 95% interval over targets.

    uv run python benchmarks/audiences.py [--shops default online-retail] [--config run.yaml]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(_ROOT)] + [
    p for p in sys.path if Path(p or ".").resolve() != _ROOT / "benchmarks"
]

import pandas as pd

from benchmarks.sessions import load, run_config, served_engine, versus
from models.config import RunConfig, excludes_purchased
from models.data.columns import Columns
from models.evaluation.audiences import baseline_rules, compare
from models.features.build import build

C = Columns


def run(shop: str, config: RunConfig, min_buyers: int) -> None:
    started = time.perf_counter()
    events, items = load(shop)
    users = pd.DataFrame({C.user: events[C.user].unique()})
    fs = build(events, items, users, config.features)
    print(f"\n{shop}: weighing the served answer on the validation window", flush=True)
    engine = served_engine(fs, config)
    bundle, ranking = engine.bundle, engine.bundle.ranking
    mix = bundle.mix(excludes_purchased(bundle.objective))
    rules = {
        "cartlift": lambda t: engine.audience_scores(t.items),
        **baseline_rules(fs),
    }
    got = compare(fs, rules, min_buyers=min_buyers)
    print(
        f"{shop}: {len(fs.user_ids):,} customers, {got.targets} targets "
        f"(items and categories with {min_buyers}+ holdout buyers); the blend: "
        f"{mix.described()} ({bundle.objective}); leaning: activity "
        f"{ranking.audience_activity:g}, category {ranking.audience_category:g}"
    )
    for row in got.table.itertuples():
        print(
            f"  {row.rule:22s} {row.targets:8s} ({row.count:3d}) precision@{row.n:<4d} "
            f"{row.precision:.4f}  lift {row.lift:6.2f}"
        )
    for row in got.differences.itertuples():
        target = 1.5 if row.rule == "RFM" else None
        name = f"cartlift vs {row.rule}, N={row.n}"
        print(versus(name, row.ratio, target, row.lower, row.difference, row.upper))
    print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shops", nargs="+", default=["default", "online-retail"])
    parser.add_argument("--config", type=Path, help="run config YAML (e.g. a tuned one)")
    parser.add_argument("--min-buyers", type=int, default=10)
    args = parser.parse_args()
    config = run_config(args.config)
    for shop in args.shops:
        run(shop, config, args.min_buyers)


if __name__ == "__main__":
    main()
