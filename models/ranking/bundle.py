"""What a registered version carries: the model plus everything serving needs.

Built once at training time from the same training window the model saw, so what is
served is what was evaluated: catalogue, association rules, the blend's signals and
weights (:mod:`models.recommenders.blend`), the shop's objective, popularity and
metadata. Serving never touches the lake.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from models.artifacts import load_pickle, save_pickle
from models.config import FeatureConfig, Objective, RankingConfig
from models.data.columns import Columns
from models.features.build import FeatureSet
from models.ranking.catalogue import Catalogue
from models.ranking.topk import top_per_row
from models.recommenders.base import Recommender, customers_per_item
from models.recommenders.blend import Mix, Signals
from models.recommenders.hybrid import HybridModel
from models.recommenders.rules import incidence, mine, recent_orders
from models.recommenders.sessions import SessionModel, Weights

C = Columns
FORMAT_VERSION = (
    4  # 3: the served blend (signals, weights) and the objective; 4: the session ranker
)


class BundleFormatError(ValueError):
    """A bundle written by another version of cartlift than the one loading it."""


@dataclass
class Bundle:
    model: HybridModel
    catalogue: Catalogue
    lift: sp.csr_matrix  # (n_items, n_items), strongest ``ranking.rules_per_item`` per row
    signals: Signals  # the blend's per-customer signals (purchase counts, interest, trend)
    mixes: dict[bool, Mix]  # the blend's weights per variant (exclude_purchased -> weights)
    objective: Objective  # what the shop sells for: the service's default variant
    popularity: np.ndarray  # (n_items,) customers per item in the training window
    user_attributes: tuple[str, ...]  # users columns that become features (region, ...)
    features: FeatureConfig  # how item tokens were made: new items are encoded the same way
    ranking: RankingConfig  # how the engine mixes its signals
    metadata: dict[str, str] = field(default_factory=dict)
    # A simple baseline answering /recommend instead of the blend: what the gate registers
    # when no trained model beats the strongest one (the model still answers item-to-item).
    personal: Recommender | None = None
    # In-session answers: what past sessions teach, and the weights the validation window
    # chose (None: the window held no session; bundles written before had none either).
    sessions: SessionModel | None = None
    session_weights: Weights = field(default_factory=Weights)
    # Bundles: the training window's most recent orders (rows) by item (columns), 0/1,
    # for multi-item co-occurrence (None: written before bundles; pairs only).
    orders: sp.csc_matrix | None = None
    format_version: int = FORMAT_VERSION

    @property
    def served(self) -> str:
        """What answers /recommend: "cartlift" (the blend) or "baseline: <name>"."""
        return "cartlift" if self.personal is None else f"baseline: {self.personal.name}"

    @property
    def purchased(self) -> sp.csr_matrix:
        """(n_users, n_items) 0/1: who bought what in the training window."""
        return self.signals.bought

    def mix(self, exclude_purchased: bool) -> Mix:
        return self.mixes[exclude_purchased]

    def save(self, path: Path) -> Path:
        return save_pickle(self, path)

    @staticmethod
    def load(path: Path) -> Bundle:
        """Load and check the format: a bundle of another cartlift version fails here, with
        both versions named, not deep in serving."""
        try:
            obj = load_pickle(path, object)
        except (ModuleNotFoundError, AttributeError) as exc:
            raise BundleFormatError(
                f"{path} was written by an older cartlift (bundle format 1, before the "
                f"models/ layout); this cartlift reads format {FORMAT_VERSION}: retrain "
                f"with `cartlift pipeline` ({exc})"
            ) from exc
        if not isinstance(obj, Bundle):
            raise BundleFormatError(f"{path} does not hold a cartlift Bundle")
        found = getattr(obj, "format_version", 1)
        if found != FORMAT_VERSION:
            raise BundleFormatError(
                f"{path} holds a bundle of format {found}; this cartlift reads format "
                f"{FORMAT_VERSION}: retrain with `cartlift pipeline`, or serve it with the "
                "cartlift version that wrote it"
            )
        return obj


def build_bundle(
    model: HybridModel,
    fs: FeatureSet,
    features: FeatureConfig,
    ranking: RankingConfig,
    metadata: dict[str, str],
    blend: tuple[dict[bool, Mix], sp.csr_matrix | None],
    objective: Objective,
) -> Bundle:
    """Assemble the serving artefacts of a trained model from its feature set, with the
    blend chosen for it: its weights per variant and its item-to-item weights."""
    mixes, neighbours = blend
    train = fs.split.train
    buys = train[train[C.event] == "purchase"]
    rules = mine(buys[[C.order, C.item]], model.item_ids, ranking.rules_min_count)
    orders = incidence(recent_orders(buys, ranking.bundle_orders), model.item_ids).tocsc()
    attributes = tuple(c for c in fs.users.columns if c not in (C.user, C.signup_date))
    popularity = customers_per_item(fs.weights)  # in the feature set's item order
    return Bundle(
        model=model,
        catalogue=Catalogue.from_items(fs.items, model.item_ids),
        lift=top_per_row(rules.lift(), ranking.rules_per_item),
        signals=Signals.of(fs, neighbours),
        mixes=dict(mixes),
        objective=objective,
        popularity=popularity[fs.item_map.rows(model.item_ids)],
        user_attributes=attributes,
        features=features,
        ranking=ranking,
        metadata=metadata,
        orders=orders,
    )
