"""Bundles (issue 20's offline protocol): on the holdout's baskets of 3+ items, one item
revealed, a pack of 3 asked for; hits are the basket's hidden items in the pack.
cartlift's pack (``Engine.pack``, as served) against pairwise association rules and
item-kNN packs, each as it ranks and held to a bundle's hard rule, never two substitutes
("(valid bundles)"; the target is judged on these, as the quality report's verdict).
:mod:`models.evaluation.bundles` has the protocol.

The holdout is the last ``features.holdout_days`` (30) days, as in the quality report.
The model is trained on the training window with the run config (``--config``: a tuned
one; default: the defaults); the blend's weights, cross-sell's neighbours weight and the
pack's weights (``ranking.bundle_together``, ``bundle_affinity``, ``bundle_history``)
are chosen on a validation window carved from the training window by the pipeline's own
:func:`models.evaluation.weighing.weigh` (its choices printed). Printed per shop: mean
hits per basket, the share of baskets with a hit, and cartlift against each baseline
with a paired 95% interval over baskets.

    uv run python benchmarks/bundles.py [--shops default online-retail] [--config run.yaml]
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
from models.evaluation.bundles import VALID, compare, packs_of
from models.features.build import build
from models.recommenders.base import Interactions
from models.recommenders.baselines import AssociationRules, ItemKNN

C = Columns
SIZE = 3  # the pack the protocol asks for, as the pipeline's choice (choose_pack) does


def run(shop: str, config: RunConfig) -> None:
    started = time.perf_counter()
    events, items = load(shop)
    users = pd.DataFrame({C.user: events[C.user].unique()})
    fs = build(events, items, users, config.features)
    print(f"\n{shop}: weighing the served answer on the validation window", flush=True)
    engine = served_engine(fs, config)
    aim, ranking = engine.bundle.objective, engine.bundle.ranking
    data = Interactions.from_features(fs)
    baselines = {"association rules": AssociationRules().fit(data), "item-kNN": ItemKNN().fit(data)}
    cases, packs = packs_of(engine, fs, baselines, SIZE)
    got = compare(cases, packs)
    print(
        f"{shop}: {len(cases.revealed):,} holdout baskets of "
        f"{min(len(h) for h in cases.hidden) + 1}+ items; a pack of "
        f"{SIZE} for one revealed item ({'discovery' if excludes_purchased(aim) else aim}); "
        f"cross-sell neighbours {ranking.cross_sell_neighbours:g}; the pack's weights: "
        f"together {ranking.bundle_together:g}, affinity {ranking.bundle_affinity:g}, "
        f"own purchases {'-' if excludes_purchased(aim) else f'{ranking.bundle_history:g}'}"
    )
    for row in got.table.itertuples():
        print(f"  {row.rule:18s} hits per basket {row.hits:.4f}  a hit in {row.hit_rate:.1%}")
    judged = [r for r in got.differences.itertuples() if r.rule.endswith(VALID)]
    strongest = min(judged, key=lambda r: r.ratio, default=None)
    for row in got.differences.itertuples():
        target = 1.1 if row is strongest else None
        name = f"cartlift vs {row.rule}"
        print(versus(name, row.ratio, target, row.lower, row.difference, row.upper))
    print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shops", nargs="+", default=["default", "online-retail"])
    parser.add_argument("--config", type=Path, help="run config YAML (e.g. a tuned one)")
    args = parser.parse_args()
    config = run_config(args.config)
    for shop in args.shops:
        run(shop, config)


if __name__ == "__main__":
    main()
