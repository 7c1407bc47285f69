"""What the served answer weighs, chosen on a validation window: the one home of the
pipeline's choices (``weigh the blend on the validation window`` in ``flows/train.py``),
so the benchmarks that judge a served answer choose exactly as the pipeline does.

The validation window is the training window's last ``holdout_days``, the hybrid trained
on the rest: the holdout the gate judges stays unseen. In order: EASE's regularisation
(for the shop's objective), the blend per variant, cross-sell's weight of the item-to-item
weights, a bundle's weights, an audience's leaning. Each step logs what it chose through
``say`` (a logger's ``info``: Prefect's in a flow)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from models.config import Objective, RankingConfig, RunConfig, excludes_purchased
from models.evaluation.audiences import choose as choose_leaning
from models.evaluation.bundles import choose_pack
from models.evaluation.tasks import variant
from models.evaluation.tuning import choose_cross_sell, choose_mix, choose_on_validation
from models.features.build import FeatureSet, build
from models.ranking.bundle import Bundle, build_bundle
from models.ranking.engine import Engine
from models.recommenders.base import Interactions
from models.recommenders.baselines import EASE
from models.recommenders.blend import Mix
from models.recommenders.hybrid import Hybrid, HybridModel

Say = Callable[..., object]  # logger.info-like: a %-format and its arguments


def _quiet(*_: object) -> None:
    return None


@dataclass
class Weighed:
    """The served blend as the validation window chose it."""

    mixes: dict[bool, Mix]  # per variant (``exclude_purchased`` -> weights)
    neighbours: sp.csr_matrix  # EASE's item-to-item weights, fitted on the training window
    ease_l2: float  # EASE's regularisation for the shop's objective
    ranking: RankingConfig  # the configured ranking, the chosen weights in it


def weigh(fs: FeatureSet, config: RunConfig, aim: Objective, say: Say = _quiet) -> Weighed:
    """Every weight of the served answer, chosen on ``fs``'s validation window (module
    docstring); the item-to-item weights refitted on ``fs``'s whole training window."""
    k, per_item = config.evaluate.k, config.ranking.neighbours_per_item
    validation = build(fs.split.train, fs.items, fs.users, config.features)
    by_l2 = choose_on_validation(lambda l2: EASE(l2=l2), config.tune.neighbour_l2, validation, k)
    l2 = by_l2[excludes_purchased(aim)][0]
    say("Item-to-item weights: EASE, l2 %g (chosen on the validation window)", l2)
    say("Training LightFM on the validation window to weigh the blend")
    model = HybridModel.fit(validation, config.train)
    near = EASE(l2=l2).fit(Interactions.from_features(validation)).strongest(per_item)
    chosen = choose_mix(Hybrid.of(model, validation), validation, config, near)
    for exclude, (mix, value) in chosen.items():
        say("Blend, %s: %s (validation NDCG@%d %.4f)", variant(exclude), mix.described(), k, value)
    mixes = {exclude: mix for exclude, (mix, _) in chosen.items()}
    on_window = build_bundle(
        model, validation, config.features, config.ranking, {}, (mixes, near), aim
    )
    ranking = _cross_sell(on_window, validation, config, say)
    ranking = _packs(replace(on_window, ranking=ranking), validation, config, say)
    ranking = _audiences(replace(on_window, ranking=ranking), validation, say)
    neighbours = EASE(l2=l2).fit(Interactions.from_features(fs)).strongest(per_item)
    return Weighed(mixes, neighbours, l2, ranking)


def _cross_sell(
    bundle: Bundle, validation: FeatureSet, config: RunConfig, say: Say
) -> RankingConfig:
    """The configured ranking with cross-sell's weight of the item-to-item weights chosen
    on the validation window's baskets (:func:`choose_cross_sell`)."""
    grid, k = config.tune.cross_sell_neighbours, config.evaluate.k
    weight, rates = choose_cross_sell(
        bundle,
        validation,
        grid,
        k,
        config.tune.min_cross_sell_baskets,
        config.tune.max_cross_sell_baskets,
    )
    if not rates:
        say(
            "Cross-sell: fewer than %d baskets of two or more items in the validation "
            "window; the cart's neighbours weigh %g as configured",
            config.tune.min_cross_sell_baskets,
            weight,
        )
    else:
        say(
            "Cross-sell: the cart's neighbours weigh %g (validation hit rate@%d %s)",
            weight,
            k,
            ", ".join(f"{w:g}: {r:.4f}" for w, r in zip(grid, rates, strict=True)),
        )
    return config.ranking.model_copy(update={"cross_sell_neighbours": weight})


def _packs(bundle: Bundle, validation: FeatureSet, config: RunConfig, say: Say) -> RankingConfig:
    """``bundle``'s ranking with a bundle's weights of multi-item co-occurrence, the
    customer's affinity and own purchases chosen on the validation window's orders
    (:func:`choose_pack`)."""
    ranking = bundle.ranking
    weights, found = choose_pack(bundle, validation, config.tune)
    if not found:
        say(
            "Bundles: no order of two or more items in the validation window; "
            "the pack's weights stay as configured"
        )
        return ranking
    own = (
        "not used (bought items excluded)"
        if excludes_purchased(bundle.objective)
        else f"{weights['bundle_history']:g}"
    )
    say(
        "Bundles: together %g, affinity %g, own purchases %s (validation hits per order, "
        "together/affinity/own: %s)",
        weights["bundle_together"],
        weights["bundle_affinity"],
        own,
        ", ".join("/".join(f"{w:g}" for w in p) + f" {h:.4f}" for p, h in found.items()),
    )
    return ranking.model_copy(update=weights)


def _audiences(bundle: Bundle, validation: FeatureSet, say: Say) -> RankingConfig:
    """``bundle``'s ranking with an audience's leaning (how much buying at all and buying
    in the target's categories weigh beside the affinity) chosen on the validation
    window's targets (:func:`models.evaluation.audiences.choose`), each target scored
    over its best sellers as served."""
    ranking, engine = bundle.ranking, Engine(bundle)
    scorer = engine.audiences()
    mix = bundle.mix(excludes_purchased(bundle.objective))
    (activity, category), value = choose_leaning(
        validation,
        lambda t: scorer.affinity_of(engine.audience_items(t.items), mix),
        lambda t: scorer.terms(t.items),
    )
    if np.isnan(value):
        say(
            "Audiences: no item or category with 10+ buyers in the validation "
            "window; the leaning stays as configured"
        )
        return ranking
    say(
        "Audiences: leaning on activity %g, on the target's categories %g (validation "
        "precision %.4f)",
        activity,
        category,
        value,
    )
    return ranking.model_copy(update={"audience_activity": activity, "audience_category": category})
