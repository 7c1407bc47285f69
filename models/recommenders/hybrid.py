"""The hybrid LightFM model, and its face behind the one recommender interface.

:class:`HybridModel` turns ids (plus feature tokens for ids it never saw) into vectors, and
:func:`models.ranking.topk.top_k` ranks them. It keeps LightFM's ``Dataset`` maps and
precomputed user and item representations, so scoring is a matrix product, never a
per-request ``predict`` over the catalogue. :class:`Hybrid` is the same model as a
:class:`~models.recommenders.base.Recommender` over a feature set's ids.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from lightfm import LightFM
from lightfm.data import Dataset

from models.artifacts import load_pickle, save_pickle
from models.config import TrainConfig
from models.data.ids import IdMap
from models.features.build import FeatureSet, encode
from models.recommenders.base import Interactions, fitted


class ModelDivergedError(RuntimeError):
    """Training produced non-finite parameters."""


def new_lightfm(cfg: TrainConfig) -> LightFM:
    """An untrained LightFM with the configured hyperparameters and seed."""
    return LightFM(
        no_components=cfg.no_components,
        loss=cfg.loss,
        learning_rate=cfg.learning_rate,
        item_alpha=cfg.item_alpha,
        user_alpha=cfg.user_alpha,
        max_sampled=cfg.max_sampled,
        random_state=np.random.RandomState(cfg.seed),
    )


def fit_epoch(model: LightFM, fs: FeatureSet, cfg: TrainConfig) -> None:
    """One more epoch over the feature set's interactions (features as configured).

    Only items someone interacted with in the window take part: an item nobody could
    have bought yet (launched after the cutoff) would otherwise be sampled as a negative
    every epoch and push its category, brand and words down, so a new arrival would rank
    last whatever its features say. Without features such items cannot be scored at all,
    so the whole catalogue takes part."""
    interactions, weights, item_features = (
        fs.on_seen_items if cfg.use_features else (fs.interactions, fs.weights, None)
    )
    model.fit_partial(
        interactions,
        user_features=fs.user_features if cfg.use_features else None,
        item_features=item_features,
        # k-OS does not take sample weights; the others learn more from heavier events.
        sample_weight=None if cfg.loss == "warp-kos" else weights,
        epochs=1,
        num_threads=cfg.num_threads,
    )


def check_finite(model: LightFM, cfg: TrainConfig) -> None:
    """Fail loudly on a diverged fit rather than serve NaN scores."""
    for part in ("user_embeddings", "item_embeddings", "item_biases", "user_biases"):
        if not np.isfinite(getattr(model, part)).all():
            raise ModelDivergedError(
                f"LightFM {part} are not finite after training: the model diverged; "
                f"try a lower learning_rate than {cfg.learning_rate}"
            )


TREND_DIMS = 2  # everyone's trend, newcomers' trend


def trend_scale(trend: np.ndarray) -> tuple[np.ndarray, float]:
    """The trend on one scale for any shop: log customers, standardised over the catalogue;
    and where an item nobody bought lies on that scale."""
    x = np.log1p(np.asarray(trend, dtype=np.float64))
    mean, spread = x.mean(), x.std()
    if spread == 0:
        return np.zeros_like(x, dtype=np.float32), 0.0
    return ((x - mean) / spread).astype(np.float32), float(-mean / spread)


def score_moments(item_emb: np.ndarray, item_bias: np.ndarray) -> np.ndarray:
    """Second moments of ``[item_emb, item_bias]`` over the catalogue: the spread of any
    user's scores follows from them in O(d^2), without scoring every item."""
    aug = np.hstack([item_emb, item_bias[:, None]]).astype(np.float64)
    return np.cov(aug, rowvar=False, bias=True).reshape(aug.shape[1], aug.shape[1])


def score_spreads(user_emb: np.ndarray, moments: np.ndarray) -> np.ndarray:
    """Standard deviation of each user's scores over the catalogue."""
    u = np.hstack([user_emb, np.ones((len(user_emb), 1))]).astype(np.float64)
    return np.sqrt(np.maximum(np.einsum("ud,de,ue->u", u, moments, u), 0.0))


@dataclass
class Vectors:
    """Scoring inputs: score(u, i) = users[u] @ items[i] + item_bias[i]."""

    users: np.ndarray  # (n_users, d)
    items: np.ndarray  # (n_items, d)
    item_bias: np.ndarray  # (n_items,)


@dataclass
class HybridModel:
    """A fitted LightFM with its maps and precomputed representations."""

    config: TrainConfig
    dataset: Dataset
    model: LightFM
    user_ids: np.ndarray
    item_ids: np.ndarray
    user_bias: np.ndarray  # (n_users,)
    user_emb: np.ndarray  # (n_users, d)
    item_bias: np.ndarray  # (n_items,)
    item_emb: np.ndarray  # (n_items, d)
    fit_seconds: float = 0.0
    # The trends ride as TREND_DIMS more dimensions of the representations: an item's
    # standardised trend among everyone and among newcomers; a customer's weight on one of
    # them (a warm customer on everyone's, a cold one on newcomers') in spreads of their
    # own scores. So every consumer of the vectors (gate, batch, serving) ranks with them.
    trend_moments: np.ndarray | None = None  # score_moments before the trend dimensions
    trend_of_new_item: np.ndarray | None = None  # (TREND_DIMS,) an item nobody bought yet

    @property
    def name(self) -> str:
        return "lightfm-hybrid" if self.config.use_features else "lightfm-cf"

    @property
    def taste_emb(self) -> np.ndarray:
        """Item embeddings without the trend dimensions: what items are like, for item-to-item
        similarity (two best sellers are not alike for selling well)."""
        return self.item_emb if self.trend_moments is None else self.item_emb[:, :-TREND_DIMS]

    @classmethod
    def fit(
        cls,
        fs: FeatureSet,
        cfg: TrainConfig,
        on_epoch: Callable[[int, int, float], None] | None = None,
    ) -> HybridModel:
        """Train on the feature set's weighted interactions; ``on_epoch(epoch, epochs, seconds)``
        reports progress."""
        model = new_lightfm(cfg)
        started = time.perf_counter()
        for epoch in range(cfg.epochs):
            tick = time.perf_counter()
            fit_epoch(model, fs, cfg)
            if on_epoch:
                on_epoch(epoch + 1, cfg.epochs, time.perf_counter() - tick)
        return cls.wrap(model, fs, cfg, time.perf_counter() - started)

    @classmethod
    def wrap(
        cls, model: LightFM, fs: FeatureSet, cfg: TrainConfig, seconds: float = 0.0
    ) -> HybridModel:
        """A trained LightFM with the feature set's maps and precomputed representations
        (also mid-training, to score a validation window between epochs)."""
        check_finite(model, cfg)
        uf = fs.user_features if cfg.use_features else None
        itf = fs.item_features if cfg.use_features else None
        user_bias, user_emb = model.get_user_representations(uf)
        item_bias, item_emb = model.get_item_representations(itf)
        moments = score_moments(item_emb, item_bias)
        (everyone, new_e), (newcomers, new_n) = map(trend_scale, (fs.item_trend, fs.newcomer_trend))
        # Users with no training interaction have no identity: known by attributes alone.
        warm = np.diff(fs.interactions.tocsr().indptr) > 0
        lean = (
            np.column_stack(
                [np.where(warm, cfg.trend_weight, 0.0), np.where(warm, 0.0, cfg.cold_trend_weight)]
            )
            * score_spreads(user_emb, moments)[:, None]
        )
        return cls(
            config=cfg,
            dataset=fs.dataset,
            model=model,
            user_ids=fs.user_ids,
            item_ids=fs.item_ids,
            user_bias=user_bias,
            user_emb=np.hstack([user_emb, lean]).astype(np.float32),
            item_bias=item_bias,
            item_emb=np.column_stack([item_emb, everyone, newcomers]).astype(np.float32),
            fit_seconds=seconds,
            trend_moments=moments,
            trend_of_new_item=np.array([new_e, new_n]),
        )

    def encode_new(
        self, ids: np.ndarray, tokens: pd.DataFrame | None, users: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Representations of ids the model never saw, from their feature tokens alone."""
        bias = np.zeros(len(ids), np.float32)
        emb = np.zeros((len(ids), self.model.no_components), np.float32)
        if tokens is not None and self.config.use_features and len(ids):
            fmap = self.dataset.mapping()[1 if users else 3]
            rows = tokens[tokens["id"].isin(set(ids))] if len(tokens) else tokens
            mat = encode(rows, ids, fmap, None, len(fmap))
            weights = self.model.user_embeddings if users else self.model.item_embeddings
            biases = self.model.user_biases if users else self.model.item_biases
            bias, emb = (mat @ biases).astype(np.float32), (mat @ weights).astype(np.float32)
        if self.trend_moments is None or self.trend_of_new_item is None:
            return bias, emb
        if users:  # a customer the model never saw leans on what newcomers pick
            spread = score_spreads(emb, self.trend_moments)
            lean = np.column_stack([np.zeros(len(ids)), self.config.cold_trend_weight * spread])
        else:
            lean = np.tile(self.trend_of_new_item, (len(ids), 1))
        return bias, np.hstack([emb, lean]).astype(np.float32)

    def _lookup(
        self, ids: np.ndarray, tokens: pd.DataFrame | None, users: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        bias = self.user_bias if users else self.item_bias
        emb = self.user_emb if users else self.item_emb
        pos = IdMap(self.user_ids if users else self.item_ids).positions(ids)
        known = pos >= 0
        out_bias = np.zeros(len(ids), np.float32)
        out_emb = np.zeros((len(ids), emb.shape[1]), np.float32)
        out_bias[known] = bias[pos[known]]
        out_emb[known] = emb[pos[known]]
        if (~known).any():
            cold = ids[~known]
            cold_tokens = tokens[tokens["id"].isin(set(cold))] if tokens is not None else None
            out_bias[~known], out_emb[~known] = self.encode_new(cold, cold_tokens, users)
        return out_bias, out_emb

    def vectors(self, user_ids, user_tokens, item_ids, item_tokens) -> Vectors:
        """Known ids use the stored representations; unknown ids are encoded from tokens."""
        _, u = self._lookup(np.asarray(user_ids, dtype=object), user_tokens, users=True)
        ib, i = self._lookup(np.asarray(item_ids, dtype=object), item_tokens, users=False)
        return Vectors(u, i, ib)

    def save(self, path: Path) -> Path:
        return save_pickle(self, path)

    @staticmethod
    def load(path: Path) -> HybridModel:
        return load_pickle(path, HybridModel)


@dataclass
class Hybrid:
    """LightFM (with features, or pure collaborative filtering when the config turns them
    off) as a :class:`~models.recommenders.base.Recommender`: scores over the feature set
    it was fitted on (or wrapped for, :meth:`of`), in that set's user and item order."""

    config: TrainConfig
    model: HybridModel | None = None
    vectors: Vectors | None = None
    taste: np.ndarray | None = None  # (n_items, d) unit item embeddings without trends

    @property
    def name(self) -> str:
        return "lightfm-hybrid" if self.config.use_features else "lightfm-cf"

    def fit(
        self, data: Interactions, on_epoch: Callable[[int, int, float], None] | None = None
    ) -> Hybrid:
        if data.features is None:
            raise ValueError("LightFM learns from a feature set: Interactions.from_features")
        model = HybridModel.fit(data.features, self.config, on_epoch)
        return self._index(model, data.features)

    @classmethod
    def of(cls, model: HybridModel, fs: FeatureSet) -> Hybrid:
        """An already trained model (e.g. the champion, from an older window) scoring this
        feature set's customers and items: ids it never saw through their features."""
        return cls(config=model.config)._index(model, fs)

    def _index(self, model: HybridModel, fs: FeatureSet) -> Hybrid:
        self.model = model
        self.vectors = model.vectors(fs.user_ids, fs.user_tokens, fs.item_ids, fs.item_tokens)
        taste = self.vectors.items
        if model.trend_moments is not None:
            taste = taste[:, :-TREND_DIMS]
        norms = np.linalg.norm(taste, axis=1, keepdims=True)
        self.taste = np.divide(taste, norms, out=np.zeros_like(taste), where=norms > 0)
        return self

    def scores(self, rows: np.ndarray) -> np.ndarray:
        vec = fitted(self.vectors, self.name)
        return vec.users[rows] @ vec.items.T + vec.item_bias

    def related(self, carts: sp.csr_matrix) -> np.ndarray:
        """Summed cosine similarity to the cart's items, in the taste space (trends left out:
        two best sellers are not alike for selling well)."""
        taste = fitted(self.taste, self.name)
        return np.asarray(sp.csr_matrix(carts) @ taste) @ taste.T
