"""The offline protocol for bundles: on the holdout's baskets (orders) of three or more
distinct known items, one item (drawn with a seed) is revealed; each rule builds a pack
of ``size`` items to go with it; its hits are the basket's hidden items in the pack.

Rules: ``cartlift`` (:meth:`models.ranking.engine.Engine.pack`, as served, for the
basket's customer) against packs of the items a baseline relates most to the revealed
one (its ``related`` scores: pairwise association rules' confidence, item-kNN's
similarity), best sellers filling a pack the baseline leaves short. Each baseline is
scored twice: as it ranks (``association rules``) and held to a bundle's hard rule, never
two substitutes (``association rules (valid bundles)``, grown by
:func:`models.ranking.packs.grow` with the served lift, as cartlift's packs are). The
verdict compares valid bundles with valid bundles: a pack of three rungs of one price
ladder scores hits a shop may not sell as a bundle. Mean hits per basket and the share
of baskets with a hit; cartlift's difference from each baseline with a paired bootstrap
interval over baskets (both on the same resampled baskets).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from models.config import TuneConfig, excludes_purchased
from models.data.columns import Columns
from models.data.ids import IdMap
from models.evaluation.protocol import bootstrap_ci
from models.evaluation.shopping import indexed
from models.evaluation.tasks import EVERYTHING
from models.features.build import FeatureSet
from models.ranking.bundle import Bundle
from models.ranking.engine import Engine
from models.ranking.packs import grow
from models.ranking.topk import best_of
from models.recommenders.base import Recommender, customers_per_item

C = Columns
PACK_RIVALS = ("association rules", "item-kNN")  # the issue's: pairwise rules' and kNN's packs
VALID = " (valid bundles)"  # a baseline's packs held to the bundle's hard rule


@dataclass(frozen=True)
class Ladders:
    """What tells two substitutes apart from two complements (:func:`grow`'s): the
    served co-purchase lift and each item's category code."""

    lift: sp.csr_matrix
    category: np.ndarray


@dataclass(frozen=True)
class PackCases:
    users: np.ndarray  # (n,) customer rows
    revealed: np.ndarray  # (n,) the item shown
    hidden: list[np.ndarray]  # per case, the basket's other items


def pack_cases(
    test: pd.DataFrame, users: IdMap, items: IdMap, seed: int = 0, min_items: int = 3
) -> PackCases:
    """One case per holdout basket with at least ``min_items`` distinct known items."""
    bought = indexed(test[(test[C.event] == "purchase") & test[C.order].notna()], users, items)
    lines = bought.drop_duplicates([C.order, "col"])
    lines = lines[lines.groupby(C.order)["col"].transform("size") >= min_items]
    rng = np.random.default_rng(seed)
    lines = lines.assign(draw=rng.random(len(lines))).sort_values([C.order, "draw"])
    basket = pd.factorize(lines[C.order])[0]
    first = np.r_[True, basket[1:] != basket[:-1]][: len(basket)]  # revealed: first drawn
    cols, starts = lines["col"].to_numpy(), np.flatnonzero(first)
    ends = np.append(starts[1:], len(cols))[: len(starts)]
    return PackCases(
        users=lines["row"].to_numpy()[first],
        revealed=cols[first],
        hidden=[cols[s + 1 : e] for s, e in zip(starts, ends, strict=True)],
    )


def related_packs(
    related: Callable[[sp.csr_matrix], np.ndarray],
    cases: PackCases,
    popularity: np.ndarray,
    size: int = 3,
    ladders: Ladders | None = None,
) -> np.ndarray:
    """(n, size) packs of a baseline: the items its ``related`` scores rank highest for
    the revealed item, best sellers breaking ties (so they fill a short pack). With
    ``ladders``, never two substitutes: the pack grows down the ranking as a bundle
    does, skipping an item that is a substitute of one it holds (among the ``WIDTH``
    best related; -1 where none is left)."""
    n_items = len(popularity)
    tiebreak = 1e-9 * popularity / max(float(popularity.max(initial=0)), 1e-12)
    out = np.full((len(cases.revealed), size), -1, dtype=np.int64)
    for lo in range(0, len(cases.revealed), 1000):
        shown = cases.revealed[lo : lo + 1000]
        carts = sp.csr_matrix(
            (np.ones(len(shown)), (np.arange(len(shown)), shown)), shape=(len(shown), n_items)
        )
        scores = np.asarray(related(carts), dtype=np.float64) + tiebreak
        scores[np.arange(len(shown)), shown] = -np.inf
        if ladders is None:
            out[lo : lo + 1000] = best_of(scores, size)
            continue
        ranked = best_of(scores, min(WIDTH, n_items - 1))
        for at, (item, row) in enumerate(zip(shown, ranked, strict=True)):
            got, _ = grow(
                scores[at, row],
                row,
                np.array([item]),
                size,
                ladders.lift,
                ladders.category,
                None,
                0.0,
            )
            out[lo + at, : len(got)] = got
    return out


WIDTH = 200  # how far down a baseline's ranking a valid pack may reach


def hits(packs: np.ndarray, cases: PackCases) -> np.ndarray:
    """(n,) how many of each basket's hidden items its pack holds."""
    return np.array(
        [
            np.isin(hidden, pack[pack >= 0]).sum()
            for pack, hidden in zip(packs, cases.hidden, strict=True)
        ],
        dtype=np.float64,
    )


@dataclass(frozen=True)
class Comparison:
    table: pd.DataFrame  # rule, hits (mean per basket), hit_rate (a hit at all), baskets
    differences: pd.DataFrame  # rule (baseline), ratio, difference, lower, upper


def compare(
    cases: PackCases,
    packs: dict[str, np.ndarray],
    ours: str = "cartlift",
    resamples: int = 1000,
    seed: int = 42,
) -> Comparison:
    """Every rule's packs judged on the same baskets, and ``ours`` against each other."""
    found = {name: hits(p, cases) for name, p in packs.items()}
    table = pd.DataFrame(
        [
            {
                "rule": name,
                "hits": float(h.mean()),
                "hit_rate": float((h > 0).mean()),
                "baskets": len(h),
            }
            for name, h in found.items()
        ]
    )
    rows = []
    for name, theirs in found.items():
        if name == ours:
            continue
        rng = np.random.default_rng(seed)
        mean, lower, upper = bootstrap_ci(found[ours] - theirs, resamples, 0.95, rng)
        rows.append(
            {
                "rule": name,
                "ratio": found[ours].mean() / theirs.mean() if theirs.mean() > 0 else np.inf,
                "difference": mean,
                "lower": lower,
                "upper": upper,
            }
        )
    return Comparison(table, pd.DataFrame(rows))


def engine_packs(
    pack: Callable[[list[str], str | None, int], list[str]],
    cases: PackCases,
    item_ids: np.ndarray,
    user_ids: np.ndarray,
    size: int = 3,
) -> np.ndarray:
    """(n, size) packs as served: ``pack(cart ids, customer id, size)`` -> the pack's
    added item ids (e.g. :meth:`Engine.pack`'s), one case at a time."""
    items = IdMap(item_ids)
    out = np.full((len(cases.revealed), size), -1, dtype=np.int64)
    for at, (user, shown) in enumerate(zip(cases.users, cases.revealed, strict=True)):
        got = items.positions(pack([str(item_ids[shown])], str(user_ids[user]), size))
        out[at, : len(got)] = got[:size]
    return out


def cases_of(fs: FeatureSet) -> PackCases:
    """The holdout's baskets of 3+ items; a shop whose orders never hold 3 (the default
    shop's hold 1 or 2) is judged on its baskets of 2, one hidden item each."""
    cases = pack_cases(fs.split.test, fs.user_map, fs.item_map)
    if len(cases.revealed):
        return cases
    return pack_cases(fs.split.test, fs.user_map, fs.item_map, min_items=2)


def packs_of(
    engine: Engine, fs: FeatureSet, baselines: dict[str, Recommender], size: int = 3
) -> tuple[PackCases, dict[str, np.ndarray]]:
    """The holdout's cases of ``fs`` (:func:`cases_of`) and every rule's packs for them:
    ``cartlift`` (the engine's, nothing filtered out but what the engine never offers)
    and each baseline's (``related``), as it ranks and held to the hard rule (``VALID``)."""
    cases = cases_of(fs)
    popularity = customers_per_item(fs.weights)

    def served(cart: list[str], user: str | None, k: int) -> list[str]:
        return [s.item_id for s in engine.pack(cart, user, k, EVERYTHING).items]

    packs = {"cartlift": engine_packs(served, cases, fs.item_ids, fs.user_ids, size)}
    ladders = Ladders(engine.bundle.lift, engine.cat.category_code)
    for name, model in baselines.items():
        packs[name] = related_packs(model.related, cases, popularity, size)
        packs[name + VALID] = related_packs(model.related, cases, popularity, size, ladders)
    return cases, packs


WEIGHTS = ("bundle_together", "bundle_affinity", "bundle_history")


def choose_weights(
    bundle: Bundle,
    validation: FeatureSet,
    grid: tuple[tuple[float, ...], ...],
    size: int = 3,
    at_most: int = 1000,
) -> tuple[dict[str, float], dict[tuple[float, ...], float]]:
    """The pack's weights (``ranking.bundle_together``, ``bundle_affinity``,
    ``bundle_history``; ``grid``: the values to try of each) whose packs hold the most
    hidden items per basket on the validation window (``bundle``: trained on its training
    part; at most ``at_most`` baskets, a seeded sample); and the hits per basket of each
    point (ties: the configured point if it is one of them, else the first in grid
    order: a weight moves only for hits the window shows). No basket: as configured."""
    cases = cases_of(validation)
    configured = {name: float(getattr(bundle.ranking, name)) for name in WEIGHTS}
    if not len(cases.revealed):
        return configured, {}
    if len(cases.revealed) > at_most:
        keep = np.sort(np.random.default_rng(0).choice(len(cases.revealed), at_most, replace=False))
        cases = PackCases(cases.users[keep], cases.revealed[keep], [cases.hidden[i] for i in keep])
    found: dict[tuple[float, ...], float] = {}
    for point in itertools.product(*grid):
        update = dict(zip(WEIGHTS, point, strict=True))
        engine = Engine(replace(bundle, ranking=bundle.ranking.model_copy(update=update)))

        def served(cart: list[str], user: str | None, k: int, engine: Engine = engine) -> list[str]:
            return [s.item_id for s in engine.pack(cart, user, k, EVERYTHING).items]

        packs = engine_packs(served, cases, validation.item_ids, validation.user_ids, size)
        found[point] = float(hits(packs, cases).mean())
    order = list(found)
    mine = tuple(configured.values())
    best = max(order, key=lambda p: (found[p], p == mine, -order.index(p)))
    return dict(zip(WEIGHTS, best, strict=True)), found


def choose_pack(
    bundle: Bundle, validation: FeatureSet, tune: TuneConfig, size: int = 3, at_most: int = 2000
) -> tuple[dict[str, float], dict[tuple[float, ...], float]]:
    """The pack's weights the pipeline serves, chosen on the validation window in two
    steps (:func:`choose_weights` each): the multi-item weight (``tune.bundle_together``,
    the others as configured), then the customer's affinity by own purchases
    (``tune.bundle_affinity`` x ``tune.bundle_history``; own purchases only where the shop
    counts repeats). Two steps cost the sum of the grids, not their product. Returns the
    weights and the hits per basket of every point tried."""
    ranking = bundle.ranking
    configured = tuple(float(getattr(ranking, name)) for name in WEIGHTS)
    first, found = choose_weights(
        bundle,
        validation,
        (tune.bundle_together, (configured[1],), (configured[2],)),
        size,
        at_most,
    )
    if not found:
        return first, found
    history = (configured[2],) if excludes_purchased(bundle.objective) else tune.bundle_history
    grid = ((first["bundle_together"],), tune.bundle_affinity, history)
    chosen, more = choose_weights(bundle, validation, grid, size, at_most)
    return chosen, found | more
