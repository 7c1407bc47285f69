"""What a registered version carries: the model plus everything serving needs.

Built once at training time from the same training window the model saw, so what is
served is what was evaluated: catalogue, association rules, purchases to exclude,
popularity and metadata. Serving never touches the lake.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from models.artifacts import load_pickle, save_pickle
from models.config import FeatureConfig
from models.data.columns import Columns
from models.features.build import FeatureSet
from models.ranking.policies import Catalogue
from models.recommenders.hybrid import HybridModel
from models.recommenders.rules import mine

C = Columns
RULES_PER_ITEM = 50


@dataclass
class Bundle:
    model: HybridModel
    catalogue: Catalogue
    lift: sp.csr_matrix  # (n_items, n_items), strongest RULES_PER_ITEM per row
    purchased: sp.csr_matrix  # (n_users, n_items), 1 where bought in the training window
    popularity: np.ndarray  # (n_items,)
    user_attributes: tuple[str, ...]  # users columns that become features (region, ...)
    features: FeatureConfig  # how item tokens were made: new items are encoded the same way
    metadata: dict[str, str] = field(default_factory=dict)

    def save(self, path: Path) -> Path:
        return save_pickle(self, path)

    @staticmethod
    def load(path: Path) -> Bundle:
        return load_pickle(path, Bundle)


def _strongest(mat: sp.csr_matrix, per_row: int) -> sp.csr_matrix:
    """Keep the ``per_row`` largest entries of each row (bounds memory on big catalogues)."""
    mat = mat.tocsr()
    counts = np.diff(mat.indptr)
    if counts.max(initial=0) <= per_row:
        return mat
    rows = np.repeat(np.arange(mat.shape[0]), counts)
    order = np.lexsort((-mat.data, rows))
    rank = np.arange(len(order)) - np.repeat(mat.indptr[:-1], counts)
    keep = order[rank < per_row]
    return sp.csr_matrix((mat.data[keep], (rows[keep], mat.indices[keep])), shape=mat.shape)


def build_bundle(
    model: HybridModel, fs: FeatureSet, features: FeatureConfig, metadata: dict[str, str]
) -> Bundle:
    """Assemble the serving artefacts of a trained model from its feature set."""
    train = fs.split.train
    buys = train[train[C.event] == "purchase"]
    rules = mine(buys[[C.order, C.item]], model.item_ids)
    user_pos = pd.Series(np.arange(len(model.user_ids)), index=pd.Index(model.user_ids))
    item_pos = pd.Series(np.arange(len(model.item_ids)), index=pd.Index(model.item_ids))
    pairs = buys[[C.user, C.item]].drop_duplicates()
    rows = pairs[C.user].map(user_pos).to_numpy(dtype=np.int64)
    cols = pairs[C.item].map(item_pos).to_numpy(dtype=np.int64)
    purchased = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)),
        shape=(len(model.user_ids), len(model.item_ids)),
    )
    attributes = tuple(c for c in fs.users.columns if c not in (C.user, C.signup_date))
    return Bundle(
        model=model,
        catalogue=Catalogue.from_items(fs.items, model.item_ids),
        lift=_strongest(rules.lift(), RULES_PER_ITEM),
        purchased=purchased,
        popularity=pd.Series(fs.item_popularity, index=fs.item_ids)
        .reindex(model.item_ids)
        .to_numpy(),
        user_attributes=attributes,
        features=features,
        metadata=metadata,
    )
