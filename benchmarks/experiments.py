"""Does the experiment machinery decide right? A/A and A/B on simulated shoppers.

The default shop's own customers (``models.experiments.simulator``) arrive in batches,
are assigned by the service's salted hash, get an answer from the serving engine (in
process: the HTTP path is tested in tests/serving), click, cart and buy by their true
tastes; after every batch (an hourly look) the always-valid test
(``models.experiments.sequential.decide``) compares purchases per customer
(``ExperimentConfig.metric``). Printed:

- A/A (best sellers in both variants): how many seeds declare a winner (target <= 1 of 20);
- A/B (the hybrid, default config, against best sellers): the true lift the simulator
  knows, how many seeds promote it (target >= 18 of 20), and the answers it took.

    uv run python benchmarks/experiments.py [--seeds 20] [--per-look 2000] [--looks 336]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Run as a script, this folder comes first on sys.path and its serving.py would shadow the
# serving package: put the repository root there instead.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(_ROOT)] + [
    p for p in sys.path if Path(p or ".").resolve() != _ROOT / "benchmarks"
]

import numpy as np

from models.config import ExperimentConfig, RunConfig, ShopConfig
from models.data.shop import generate
from models.experiments.assignment import CHALLENGER, Experiment, assign
from models.experiments.sequential import decide
from models.experiments.simulator import Shoppers
from models.features.build import build
from models.ranking.bundle import build_bundle
from models.ranking.engine import Engine
from models.ranking.policies import Filters
from models.recommenders.blend import PLAIN
from models.recommenders.hybrid import HybridModel

K = 10
Answerer = Callable[[str], list[str]]


@dataclass(frozen=True)
class Arm:
    """What one answerer sells, per customer and rank: the odds of each shown item being
    bought, and its price."""

    odds: np.ndarray  # (n_customers, K)
    price: np.ndarray  # (n_customers, K)


def arm_of(shoppers: Shoppers, answer: Answerer, prices: dict[str, float]) -> Arm:
    lists = [answer(u) for u in shoppers.user_ids]
    return Arm(
        np.stack(
            [shoppers.buy_odds(u, items) for u, items in zip(shoppers.user_ids, lists, strict=True)]
        ),
        np.array([[prices.get(i, 0.0) for i in items] for items in lists]),
    )


def run_one(
    seed: int,
    arrival: np.ndarray,
    users: np.ndarray,
    champion: Arm,
    challenger: Arm,
    args: argparse.Namespace,
    rules: ExperimentConfig,
) -> tuple[str, bool, int]:
    """One experiment, hour by hour: (the decision, whether the test found a difference,
    answers served until then)."""
    rng = np.random.default_rng(seed)
    experiment = Experiment("challenger", args.share, f"benchmark:{seed}")
    on = np.array([assign(experiment, u) == CHALLENGER for u in users])
    outcome, seen = np.zeros(len(users)), np.zeros(len(users), bool)
    p, answers = 1.0, 0
    for look in range(1, args.looks + 1):
        who = rng.choice(len(users), size=args.per_look, p=arrival)
        side = on[who][:, None]
        odds = np.where(side, challenger.odds[who], champion.odds[who])
        bought = rng.random(odds.shape) < odds
        if rules.metric == "revenue":
            gain = (bought * np.where(side, challenger.price[who], champion.price[who])).sum(1)
        else:
            gain = bought.sum(axis=1)
        np.add.at(outcome, who, gain)
        seen[who] = True
        answers += args.per_look
        d = decide(
            outcome[seen & on],
            outcome[seen & ~on],
            alpha=rules.alpha,
            min_units=rules.min_units,
            days_run=look / 24,
            max_days=args.looks / 24,
            tau_ratio=rules.tau_ratio,
            previous_p=p,
        )
        p = d.test.p_value
        if d.action != "continue":
            return d.action, p <= rules.alpha, answers
    return "continue", False, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--per-look", type=int, default=2000, help="arrivals between looks")
    parser.add_argument("--looks", type=int, default=336, help="looks (hours) before giving up")
    parser.add_argument("--share", type=float, default=0.5)
    parser.add_argument("--tau-ratio", type=float, default=None, help="the test's mixing spread")
    parser.add_argument("--metric", choices=["purchases", "revenue"], default=None)
    args = parser.parse_args()
    run, rules = RunConfig(), ExperimentConfig()
    for knob in ("tau_ratio", "metric"):
        if getattr(args, knob) is not None:
            rules = rules.model_copy(update={knob: getattr(args, knob)})

    started = time.perf_counter()
    print("Generating the default shop and training the hybrid (default config)", flush=True)
    shop = generate(ShopConfig())
    fs = build(shop.events, shop.items, shop.users, run.features)
    model = HybridModel.fit(fs, run.train)
    engine = Engine(
        build_bundle(model, fs, run.features, run.ranking, {}, (PLAIN, None), "discovery")
    )
    prices = dict(zip(shop.items["item_id"], shop.items["price"].astype(float), strict=True))
    best_sellers = [s.item_id for s in engine.popular(K, None, Filters()).items]
    cache: dict[str, list[str]] = {}

    def popular(_: str) -> list[str]:
        return best_sellers

    def hybrid(user: str) -> list[str]:
        if user not in cache:
            cache[user] = [s.item_id for s in engine.recommend(user, K, Filters()).items]
        return cache[user]

    truth = Shoppers(ShopConfig(), seed=0)
    arms = {"best sellers": arm_of(truth, popular, prices), "hybrid": arm_of(truth, hybrid, prices)}
    weight = truth.arrival_odds
    worth = {name: float(weight @ arm.odds.sum(axis=1)) for name, arm in arms.items()}
    sales = {name: float(weight @ (arm.odds * arm.price).sum(axis=1)) for name, arm in arms.items()}
    print(
        "True worth per answer (the simulator's expectation over its customers, by how "
        f"often each arrives): purchases: best sellers {worth['best sellers']:.4f}, hybrid "
        f"{worth['hybrid']:.4f} (lift {worth['hybrid'] / worth['best sellers'] - 1:+.1%}); "
        f"revenue: best sellers {sales['best sellers']:.3f}, hybrid {sales['hybrid']:.3f} "
        f"(lift {sales['hybrid'] / sales['best sellers'] - 1:+.1%})"
    )
    print(
        f"Rules: {rules.metric} per customer, alpha {rules.alpha}, tau {rules.tau_ratio} "
        f"pooled SDs, at least {rules.min_units} "
        f"customers per variant, {args.per_look:,} arrivals per look (an hour), at most "
        f"{args.looks} looks, share {args.share}",
        flush=True,
    )
    for name, champion, challenger, target in (
        ("A/A, best sellers in both", "best sellers", "best sellers", "winners <= 1"),
        ("A/B, hybrid against best sellers", "best sellers", "hybrid", "promoted >= 18"),
    ):
        outcomes = [
            run_one(seed, weight, truth.user_ids, arms[champion], arms[challenger], args, rules)
            for seed in range(args.seeds)
        ]
        winners = sum(found for _, found, _ in outcomes)
        promoted = sum(action == "promote" for action, _, _ in outcomes)
        needed = [n for action, _, n in outcomes if action == "promote"]
        said = (
            f"; answers until promoted: median {int(np.median(needed)):,}, max {max(needed):,}"
            if needed
            else ""
        )
        print(
            f"{name}: a winner declared in {winners} of {args.seeds} seeds, promoted in "
            f"{promoted} ({target}){said}",
            flush=True,
        )
    print(f"Done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
