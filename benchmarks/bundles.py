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
are chosen on a validation window carved from the training window, as the pipeline
chooses them (:func:`choose_pack`). Printed per shop: mean hits per basket, the share
of baskets with a hit, and cartlift against each baseline with a paired 95% interval
over baskets.

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

from benchmarks.sessions import load, run_config, versus
from models.config import RunConfig, excludes_purchased
from models.data.columns import Columns
from models.evaluation.bundles import VALID, choose_pack, compare, packs_of
from models.evaluation.tasks import repeat_share
from models.evaluation.tuning import choose_cross_sell, choose_mix
from models.features.build import build
from models.ranking.bundle import build_bundle
from models.ranking.engine import Engine
from models.recommenders.base import Interactions
from models.recommenders.baselines import EASE, AssociationRules, ItemKNN
from models.recommenders.hybrid import Hybrid, HybridModel

C = Columns
SIZE = 3


def run(shop: str, config: RunConfig) -> None:
    started = time.perf_counter()
    events, items = load(shop)
    users = pd.DataFrame({C.user: events[C.user].unique()})
    fs = build(events, items, users, config.features)
    validation = build(fs.split.train, fs.items, fs.users, config.features)
    aim = config.evaluate.resolve(repeat_share(fs.split.train))
    per_item = config.ranking.neighbours_per_item
    near = EASE(l2=1000.0).fit(Interactions.from_features(validation)).strongest(per_item)
    weighed = HybridModel.fit(validation, config.train)
    chosen = choose_mix(Hybrid.of(weighed, validation), validation, config, near)
    mixes = {exclude: mix for exclude, (mix, _) in chosen.items()}
    on_window = build_bundle(
        weighed, validation, config.features, config.ranking, {}, (mixes, near), aim
    )
    neighbours_weight, _ = choose_cross_sell(
        on_window, validation, config.tune.cross_sell_neighbours, config.evaluate.k, 50, 2000
    )
    ranking = config.ranking.model_copy(update={"cross_sell_neighbours": neighbours_weight})
    on_window = build_bundle(weighed, validation, config.features, ranking, {}, (mixes, near), aim)
    weights, by_weight = choose_pack(on_window, validation, config.tune, SIZE)
    ranking = ranking.model_copy(update=weights)
    model = HybridModel.fit(fs, config.train)
    neighbours = EASE(l2=1000.0).fit(Interactions.from_features(fs)).strongest(per_item)
    engine = Engine(build_bundle(model, fs, config.features, ranking, {}, (mixes, neighbours), aim))
    data = Interactions.from_features(fs)
    baselines = {"association rules": AssociationRules().fit(data), "item-kNN": ItemKNN().fit(data)}
    cases, packs = packs_of(engine, fs, baselines, SIZE)
    got = compare(cases, packs)
    print(
        f"\n{shop}: {len(cases.revealed):,} holdout baskets of "
        f"{min(len(h) for h in cases.hidden) + 1}+ items; a pack of "
        f"{SIZE} for one revealed item ({'discovery' if excludes_purchased(aim) else aim}); "
        f"cross-sell neighbours {neighbours_weight:g}; the pack's weights "
        + ", ".join(f"{k.removeprefix('bundle_')} {v:g}" for k, v in weights.items())
        + " (validation hits per basket, together/affinity/history: "
        + ", ".join("/".join(f"{w:g}" for w in p) + f" {h:.4f}" for p, h in by_weight.items())
        + ")"
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
