"""The catalogue a model serves, and its changes between retrains: new products, price
and stock updates.

A shop adds products every day and the model is retrained nightly at best. A new item with
known attributes (category, brand, price) gets a representation from the hybrid model's
item features alone, the same way a cold item at training time does, so it can be
recommended, upsold and found similar before anyone has bought it. Known items keep their
learned representation; only their price, stock, title or margin change.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from models.data.columns import Columns
from models.features.build import item_tokens
from models.recommenders.blend import padded

if TYPE_CHECKING:
    from models.ranking.bundle import Bundle

C = Columns
UPDATABLE = (C.title, C.price, C.in_stock, C.margin)


@dataclass
class Catalogue:
    """The items a model can recommend, as aligned arrays."""

    item_ids: np.ndarray  # (n_items,) object
    category: np.ndarray  # (n_items,) object
    price: np.ndarray  # (n_items,) float
    in_stock: np.ndarray  # (n_items,) bool
    margin: np.ndarray  # (n_items,) float, NaN where unknown
    title: np.ndarray  # (n_items,) object
    categories: np.ndarray  # (n_categories,) sorted names
    category_code: np.ndarray  # (n_items,) int, index into categories
    members: list[np.ndarray]  # positions of each category's items
    brand: np.ndarray | None = None  # (n_items,) object; None: served before brands were kept

    @classmethod
    def from_items(cls, items: pd.DataFrame, item_ids: np.ndarray) -> Catalogue:
        frame = items.set_index(C.item).reindex(item_ids)
        margin = frame[C.margin] if C.margin in frame else pd.Series(np.nan, index=frame.index)
        category = frame[C.category].fillna("unknown").to_numpy(dtype=object)
        categories, code = np.unique(category.astype(str), return_inverse=True)
        order = np.argsort(code, kind="stable")
        members = np.split(order, np.cumsum(np.bincount(code, minlength=len(categories)))[:-1])
        return cls(
            item_ids=np.asarray(item_ids, dtype=object),
            category=category,
            price=frame[C.price].to_numpy(dtype=float),
            in_stock=frame[C.in_stock].fillna(False).to_numpy(dtype=bool),
            margin=pd.to_numeric(margin, errors="coerce").to_numpy(dtype=float),
            title=frame[C.title].fillna("").to_numpy(dtype=object),
            categories=categories.astype(object),
            category_code=code.astype(np.int32),
            members=members,
            brand=(
                frame[C.brand].fillna("unknown").to_numpy(dtype=object)
                if C.brand in frame
                else np.full(len(frame), "unknown", dtype=object)
            ),
        )

    def in_categories(self, codes: np.ndarray) -> np.ndarray:
        """Mask of the items whose category is one of ``codes`` (a table lookup, O(n))."""
        table = np.zeros(len(self.categories), dtype=bool)
        table[codes] = True
        return table[self.category_code]

    def codes(self, names: tuple[str, ...] | list[str]) -> np.ndarray:
        """Codes of the named categories that exist (unknown names match nothing)."""
        pos = np.searchsorted(self.categories, np.asarray(names, dtype=object))
        pos = np.minimum(pos, len(self.categories) - 1)
        return pos[self.categories[pos] == np.asarray(names, dtype=object)]


@dataclass(frozen=True)
class Applied:
    """What a change did: ids added (with feature-based vectors) and ids updated."""

    added: tuple[str, ...]
    updated: tuple[str, ...]
    skipped: tuple[str, ...] = ()


def catalogue_frame(cat: Catalogue) -> pd.DataFrame:
    """The catalogue as an items table (the contract's columns; brand unknown where the
    catalogue was served before brands were kept)."""
    return pd.DataFrame(
        {
            C.item: cat.item_ids,
            C.title: cat.title,
            C.category: cat.category,
            C.brand: "unknown" if cat.brand is None else cat.brand,
            C.price: cat.price,
            C.in_stock: cat.in_stock,
            C.margin: cat.margin,
        }
    )


def apply_items(
    bundle: Bundle, changes: pd.DataFrame, strict: bool = True
) -> tuple[Bundle, Applied]:
    """A new bundle with ``changes`` (an items table, one row per item id) applied.

    Rows for ids the model knows update price, stock, title and margin (category and
    brand are what the model learned the item as, so they stay). Rows for new ids are
    appended, their vectors encoded from ``category``, ``brand``, the price band within
    their category and the other columns the model has features for; they need a
    category and a price: without, ``strict`` raises, else the row is skipped and listed
    in ``Applied.skipped`` (an update logged for an item a later model no longer has
    must not block that model).
    The input bundle is not modified.
    """
    changes = changes.drop_duplicates(C.item, keep="last").reset_index(drop=True)
    cat, model = bundle.catalogue, bundle.model
    frame = catalogue_frame(cat).set_index(C.item)
    known = changes[C.item].isin(frame.index).to_numpy()
    old, new = changes[known], changes[~known].copy()
    for col in UPDATABLE:
        if col in old:
            given = old[[C.item, col]].dropna()
            frame.loc[given[C.item].to_numpy(), col] = given[col].to_numpy()
    skipped: list[str] = []
    for col in (C.category, C.price):
        lacking = new[col].isna() if col in new else pd.Series(True, index=new.index)
        if lacking.any() and strict:
            raise ValueError(
                f"new item {new[C.item][lacking].iloc[0]!r}: field {col!r} is required"
            )
        skipped += new.loc[lacking, C.item].astype(str).tolist()
        new = new[~lacking]
    if len(new):
        defaults: dict[str, str | bool | float] = {
            C.brand: "unknown",
            C.title: "",
            C.in_stock: True,
            C.margin: np.nan,
        }
        new = new.reindex(columns=list(frame.reset_index().columns)).fillna(defaults)
        frame = pd.concat([frame, new.set_index(C.item)])
        # Price bands are quantiles within the category, so they are computed over old
        # and new items together; only the new items' tokens are encoded.
        tokens = item_tokens(frame.reset_index(), pd.Series(dtype=float), bundle.features)
        bias, emb = model.encode_new(new[C.item].to_numpy(dtype=object), tokens, users=False)
        model = replace(
            model,
            item_ids=frame.index.to_numpy(dtype=object),
            item_bias=np.concatenate([model.item_bias, bias]),
            item_emb=np.vstack([model.item_emb, emb]),
        )
    n = len(frame)
    updated = replace(
        bundle,
        model=model,
        catalogue=Catalogue.from_items(frame.reset_index(), frame.index.to_numpy(dtype=object)),
        lift=padded(bundle.lift, n, n),
        signals=bundle.signals.grown(n),
        popularity=np.concatenate([bundle.popularity, np.zeros(len(new))]),
        orders=None
        if bundle.orders is None
        else padded(bundle.orders.T.tocsr(), n, bundle.orders.shape[0]).T.tocsc(),
    )
    return updated, Applied(
        added=tuple(new[C.item].astype(str)),
        updated=tuple(old[C.item].astype(str)),
        skipped=tuple(skipped),
    )
