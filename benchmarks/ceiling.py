"""How far can any model go on the default shop? Its generator's own odds, ranked.

The default shop is drawn from hidden tastes (each customer's categories, price tier and
brand, and a favourite consumable). Ranking every customer's items by the generator's own
purchase odds (:class:`models.data.shop.PurchaseOdds`) on the quality report's holdout
scores the ceiling no model can pass: a model only sees the events those tastes made.
Two ceilings, both variants of the truth, next to the strongest simple baselines:

- *tastes known*: the hidden tastes, and a customer's favourite consumable once the
  window shows them buying it (before that, any consumable they like);
- *everything known*: the favourite too, before anyone could know it.

    uv run python benchmarks/ceiling.py [--users 5000] [--items 2400] [--seed 7]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Run as a script, this folder comes first on sys.path and its serving.py would shadow the
# serving package: put the repository root there instead.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(_ROOT)] + [
    p for p in sys.path if Path(p or ".").resolve() != _ROOT / "benchmarks"
]

import numpy as np

from models.config import RunConfig, ShopConfig
from models.data.columns import Columns
from models.data.ids import IdMap
from models.data.shop import generate, purchase_odds
from models.evaluation.protocol import slice_means
from models.evaluation.tasks import tasks, variant
from models.evaluation.tuning import choose_on_validation
from models.features.build import build
from models.recommenders.base import Interactions, counts
from models.recommenders.baselines import EASE, PersonalFrequency, Popularity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = ShopConfig()
    parser.add_argument("--users", type=int, default=defaults.n_users)
    parser.add_argument("--items", type=int, default=defaults.n_items)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    args = parser.parse_args()
    shop_cfg = ShopConfig(n_users=args.users, n_items=args.items, seed=args.seed)
    run = RunConfig()
    k = run.evaluate.k

    print(f"Generating the default shop ({args.users:,} customers, seed {args.seed})", flush=True)
    shop = generate(shop_cfg)
    fs = build(shop.events, shop.items, shop.users, run.features)
    truth = purchase_odds(shop_cfg)
    users = IdMap(truth.user_ids).positions(fs.user_ids)  # the window's rows -> generator's
    columns = IdMap(truth.item_ids).positions(fs.item_ids)
    train = fs.split.train
    bought = counts(train[train[Columns.event] == "purchase"], fs.user_map, fs.item_map)
    favourite = IdMap(fs.item_ids).positions(truth.item_ids[truth.world.fav_item[users]])
    seen = np.asarray(bought[np.arange(len(users)), np.maximum(favourite, 0)]).ravel() > 0
    seen &= favourite >= 0

    def ceiling(known: np.ndarray):
        return lambda rows: truth.odds(users[rows], known[rows])[:, columns]

    print("Fitting the baselines (EASE's l2 chosen on the validation window)", flush=True)
    data = Interactions.from_features(fs)
    validation = build(fs.split.train, fs.items, fs.users, run.features)
    l2 = choose_on_validation(lambda v: EASE(l2=v), run.tune.neighbour_l2, validation, k)
    models = {
        "popularity": Popularity().fit(data).scores,
        "personal frequency": PersonalFrequency().fit(data).scores,
    }
    ease = {ex: EASE(l2=point).fit(data).scores for ex, (point, _) in l2.items()}
    print(
        f"Customers whose favourite consumable the window shows them buying: "
        f"{seen.sum():,} of {len(seen):,}",
        flush=True,
    )
    for exclude in (True, False):
        scorers = {
            "ceiling, tastes known": ceiling(seen),
            "ceiling, everything known": ceiling(np.ones(len(users), bool)),
            **models,
            f"EASE (l2 {l2[exclude][0]:g})": ease[exclude],
        }
        t = tasks(fs, exclude)["customers"]
        scores = {name: slice_means(score, t, k)["all"] for name, score in scorers.items()}
        strongest = max(v for name, v in scores.items() if not name.startswith("ceiling"))
        print(f"\n{variant(exclude)}: NDCG@{k} over {len(t.users):,} customers")
        for name, value in scores.items():
            print(f"  {name:<28} {value:.4f}  {value / strongest:.2f}x the strongest baseline")


if __name__ == "__main__":
    main()
