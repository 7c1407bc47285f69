"""Audiences (issue 20's offline protocol): who buys an item or a category in the holdout,
found from the training window alone by cartlift (item to users through the served
blend's terms), by RFM targeting (best customers first) and by the category's own best
customers. :mod:`models.evaluation.audiences` has the rules. How much a customer's
buying at all and buying in the target's categories weigh beside the affinity is chosen
on the validation window (:func:`models.evaluation.audiences.choose`).

The holdout is the last ``features.holdout_days`` (30) days, as in the quality report. The
model is trained on the training window with the run config (``--config``: a tuned one;
default: the defaults); the blend's weights are chosen on a validation window carved from
the training window, as the pipeline chooses them (for the shop's objective). Printed per
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

from benchmarks.sessions import load, run_config, versus
from models.config import RunConfig, excludes_purchased
from models.data.columns import Columns
from models.evaluation.audiences import baseline_rules, choose, compare
from models.evaluation.tasks import repeat_share
from models.evaluation.tuning import choose_mix
from models.features.build import build
from models.ranking.audience import Audiences, Leaning, leading
from models.recommenders.base import Interactions, customers_per_item
from models.recommenders.baselines import EASE
from models.recommenders.blend import Signals
from models.recommenders.hybrid import Hybrid, HybridModel

C = Columns


def run(shop: str, config: RunConfig, min_buyers: int) -> None:
    started = time.perf_counter()
    events, items = load(shop)
    users = pd.DataFrame({C.user: events[C.user].unique()})
    fs = build(events, items, users, config.features)
    validation = build(fs.split.train, fs.items, fs.users, config.features)
    aim = config.evaluate.resolve(repeat_share(fs.split.train))
    exclude = excludes_purchased(aim)
    near = EASE(l2=1000.0).fit(Interactions.from_features(validation)).strongest(100)
    weighed = HybridModel.fit(validation, config.train)
    on_validation = Hybrid.of(weighed, validation)
    mix = choose_mix(on_validation, validation, config, near)[exclude][0]
    on_window = Audiences(on_validation.vectors, Signals.of(validation), validation.item_categories)
    (activity, category), value = choose(
        validation,
        lambda t: on_window.affinity_of(t.items, mix),
        lambda t: on_window.terms(t.items),
    )
    leaning = Leaning(activity, category)
    model = Hybrid.of(HybridModel.fit(fs, config.train), fs)
    audiences = Audiences(model.vectors, Signals.of(fs), fs.item_categories)
    sold = customers_per_item(fs.weights)  # the bundle's popularity, as served
    cap = config.ranking.audience_items
    rules = {
        "cartlift": lambda t: audiences.scores(leading(t.items, sold, cap), mix, leaning),
        **baseline_rules(fs),
    }
    got = compare(fs, rules, min_buyers=min_buyers)
    print(
        f"\n{shop}: {len(fs.user_ids):,} customers, {got.targets} targets "
        f"(items and categories with {min_buyers}+ holdout buyers); the blend: "
        f"{mix.described()} ({aim}); leaning: activity {activity:g}, category {category:g} "
        f"(validation precision {value:.4f})"
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
