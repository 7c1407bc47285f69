"""Answers to the questions a shop asks, from a bundle: no server, no I/O.

The Bento service is a thin HTTP layer over :class:`Engine`. Every answer lists items with
a score and a short reason, plus warnings (e.g. unknown cart items that were skipped), and
says whether it was a cold-start answer. Unknown users and items never raise: a user with
attributes is scored through the hybrid model's features, a user without any gets
popularity in context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.config import excludes_purchased
from models.data.ids import IdMap
from models.ranking.audience import Affinity, Audiences, Leaning, leading, rank
from models.ranking.bundle import Bundle
from models.ranking.packs import Price, grow, price
from models.ranking.policies import (
    NEVER,
    Filters,
    allowed,
    anchors,
    best,
    cosine,
    cross_sell,
    popular,
    sparse_rows,
    upsell,
)
from models.recommenders.hybrid import Vectors
from models.recommenders.sessions import Weights, scaled

BLOCKED_CACHE = 256


@dataclass
class Scored:
    item_id: str
    score: float
    reason: str


@dataclass
class Answer:
    items: list[Scored]
    warnings: list[str] = field(default_factory=list)
    user_kind: str = "none"  # known | features | anonymous | none

    @property
    def cold_start(self) -> bool:
        return self.user_kind in ("features", "anonymous")


def widened(scores: np.ndarray, n_items: int) -> np.ndarray:
    """A served baseline's scores (float64) over a catalogue grown since it was fitted:
    items it never saw rank after every item it scored."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape[1] >= n_items:
        return scores
    out = np.empty((scores.shape[0], n_items))
    out[:, : scores.shape[1]] = scores
    out[:, scores.shape[1] :] = scores.min(axis=1, keepdims=True) - 1.0
    return out


def topped(scores: np.ndarray) -> np.ndarray:
    """``scores`` over their largest finite positive one (a top of 1, as the session's),
    so a few strongly penalised items (cross-sell's substitutes) do not flatten the rest."""
    finite = scores[np.isfinite(scores)]
    top = float(finite.max()) if finite.size else 0.0
    return scores / top if top > 0 else scores


@dataclass
class Customer:
    user_id: str
    score: float
    reason: str


@dataclass
class Audience:
    customers: list[Customer]
    warnings: list[str] = field(default_factory=list)


@dataclass
class Pack(Answer):
    """A bundle: the anchor's items, the items that complete it (``items``), what each
    costs (``prices``: the anchor's, then the items') and the pack's price."""

    anchor: list[str] = field(default_factory=list)
    prices: list[float] = field(default_factory=list)
    price: Price | None = None


class Engine:
    """Ranking over one bundle; build once per loaded model, then answer many requests."""

    def __init__(self, bundle: Bundle):
        self.bundle = bundle
        model = bundle.model
        self.cat = bundle.catalogue
        self.weights = bundle.ranking
        self.users, self.items = IdMap(model.user_ids), IdMap(model.item_ids)
        self.item_emb = model.item_emb
        # Scoring one user against every item reads the whole matrix; laid out (d, n) the
        # product streams along items (BLAS gemv "N"): 3x faster than (n, d) @ (d,) here.
        self.item_emb_t = np.ascontiguousarray(model.item_emb.T)
        self.item_bias = model.item_bias
        self.taste = np.ascontiguousarray(model.taste_emb)  # item-to-item similarity
        self.taste_t = np.ascontiguousarray(self.taste.T)
        self.item_norms = np.linalg.norm(self.taste, axis=1)
        self.scale = Affinity(model.item_emb, model.item_bias)  # what affinity_z divides by
        self._filters: dict[Filters, tuple[np.ndarray, np.ndarray]] = {}
        self._audiences: Audiences | None = None  # laid out on the first audience asked

    def _filtered(self, filters: Filters) -> tuple[np.ndarray, np.ndarray]:
        """(allowed mask, blocked positions); cached, shops send the same few filters."""
        found = self._filters.get(filters)
        if found is None:
            mask = allowed(self.cat, filters)
            found = (mask, np.flatnonzero(~mask))
            if len(self._filters) >= BLOCKED_CACHE:
                self._filters.pop(next(iter(self._filters)))
            self._filters[filters] = found
        return found

    def blocked(self, filters: Filters) -> np.ndarray:
        """Positions the filters rule out."""
        return self._filtered(filters)[1]

    def affinity_z(self, user_vec: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """The user's affinity, standardised over the whole catalogue (zero mean, unit
        spread), for ``items`` (positions) or every item."""
        means, spreads = self.scale.standard(user_vec)
        mean, spread = float(means[0]), float(spreads[0])
        if items is None:
            aff = self._item_scores(user_vec)
        else:
            aff = self.item_emb[items] @ user_vec + self.item_bias[items]
        aff -= mean
        aff *= 1.0 / spread
        return aff

    # --- users ---------------------------------------------------------------------------

    def user_vector(
        self, user_id: str | None, attributes: dict[str, str] | None
    ) -> tuple[np.ndarray | None, str]:
        """The user's representation and how it was obtained."""
        row = None if user_id is None else self.users.get(user_id)
        if row is not None:
            return self.bundle.model.user_emb[row], "known"
        tokens = self._tokens(attributes or {})
        if tokens is not None:
            ids = np.array(["request"], dtype=object)
            vec = self.bundle.model.vectors(ids, tokens, np.empty(0, dtype=object), None).users[0]
            if np.abs(vec[: self.taste.shape[1]]).sum() > 0:  # some attribute was known
                return vec, "features"
        return None, "anonymous"

    def _tokens(self, attributes: dict[str, str]) -> pd.DataFrame | None:
        usable = {k: v for k, v in attributes.items() if k in self.bundle.user_attributes and v}
        if not usable:
            return None
        return pd.DataFrame(
            {"id": "request", "token": [f"{k}={v}" for k, v in usable.items()], "weight": 1.0}
        )

    def _cross_sell(
        self,
        cart: np.ndarray,
        aff_z: np.ndarray | None,
        candidates: np.ndarray | None = None,
        affinity_weight: float | None = None,
    ) -> np.ndarray:
        """Cross-sell's scores (:func:`cross_sell`) with the configured weights; a pack
        weighs the affinity by its own (``affinity_weight``)."""
        return cross_sell(
            self.bundle.lift,
            cart,
            self.cat,
            aff_z,
            candidates,
            affinity_weight=self.weights.cross_sell_affinity
            if affinity_weight is None
            else affinity_weight,
            substitute_penalty=self.weights.substitute_penalty,
            neighbours=self.bundle.signals.neighbours,
            neighbours_weight=self.weights.cross_sell_neighbours,
        )

    def _item_scores(self, user_vec: np.ndarray) -> np.ndarray:
        """Scores of every item for the user; in place, since this runs per request."""
        aff = user_vec @ self.item_emb_t
        aff += self.item_bias
        return aff

    def affinity(self, user_vec: np.ndarray | None) -> np.ndarray | None:
        return None if user_vec is None else self._item_scores(user_vec)

    def _purchased(self, user_id: str | None) -> np.ndarray:
        row = None if user_id is None else self.users.get(user_id)
        if row is None:
            return np.empty(0, dtype=np.int64)
        # The row of purchase counts, not ``bundle.purchased``: that builds a 0/1 copy of
        # the whole matrix, too much work per request; the non-zeros are the same.
        return self.bundle.signals.purchases[row].indices.astype(np.int64)

    def _answer(self, scores: np.ndarray, k: int, reason, kind: str, warnings: list[str]) -> Answer:
        idx, val = best(scores, k)
        items = [
            Scored(str(self.cat.item_ids[i]), float(s), reason(i))
            for i, s in zip(idx, val, strict=True)
        ]
        return Answer(items=items, warnings=warnings, user_kind=kind)

    # --- endpoints -------------------------------------------------------------------------

    def session(self, recent: list[str] | None) -> tuple[np.ndarray, np.ndarray] | None:
        """What this session says the visitor touches next: the session blend's scores
        (scaled to a top of 1) over the catalogue, and the session's known items (oldest
        first); None without a session model or a known item."""
        model = getattr(self.bundle, "sessions", None)
        if model is None or not recent:
            return None
        pos = self.items.positions(recent)
        pos = pos[(pos >= 0) & (pos < model.popularity.shape[0])]
        if pos.size == 0:
            return None
        weights = getattr(self.bundle, "session_weights", None) or Weights()
        scores = scaled(model.score_one(pos, weights)[None, :])
        return widened(scores, len(self.cat.item_ids))[0], pos

    def recommend(
        self,
        user_id: str | None,
        k: int,
        filters: Filters,
        attributes: dict[str, str] | None = None,
        exclude_purchased: bool | None = None,
        recent: list[str] | None = None,
    ) -> Answer:
        """Personalised top-k: the served blend (:mod:`models.recommenders.blend`) of the
        customer's affinity with their purchases, interests and what sells now; cold
        customers through features, else popularity in context. ``exclude_purchased``
        defaults to the shop's objective. With ``recent`` (the session's items, oldest
        first) the session blend leads: alone for a visitor the model does not know,
        added to a known customer's scaled scores otherwise."""
        if exclude_purchased is None:
            exclude_purchased = excludes_purchased(self.bundle.objective)
        found = None if user_id is None else self.users.get(user_id)
        row = -1 if found is None else found
        baseline = self.bundle.personal
        if baseline is not None:  # served while no trained model beats it
            vec, kind = None, "known" if row >= 0 else "anonymous"
            if row >= 0:
                scores = widened(baseline.scores(np.array([row])), len(self.cat.item_ids))[0]
        else:
            vec, kind = self.user_vector(user_id, attributes)
        arrivals = None
        if vec is not None:
            scores = self.affinity_z(vec)
            mix = self.bundle.mix(exclude_purchased)
            self.bundle.signals.add(scores[None, :], np.array([row]), mix)
            arrivals = self.bundle.signals.arrivals if mix.arrival else None
        elif kind == "anonymous":
            scores = popular(self.bundle.popularity, self.cat)
        in_session = self.session(recent)
        if in_session is not None:
            session_scores = in_session[0]
            if kind == "known" or vec is not None:
                scores = scaled(scores[None, :])[0] + session_scores
            else:
                scores = session_scores.copy()
        bought = self._purchased(user_id)
        if exclude_purchased:
            scores[bought] = NEVER
        scores[self.blocked(filters)] = NEVER
        why = {
            "known": "matches your interest in {}"
            if baseline is None
            else f"{baseline.name}: {{}}",
            "features": "popular with customers like you in {}",
            "anonymous": "popular in {}",
        }[kind]
        warnings = (
            [] if kind == "known" else [f"user {user_id!r} unknown to the model: {kind} answer"]
        )
        again = set(bought.tolist()) if not exclude_purchased else set()

        looked = self._looked_at(in_session)

        def reason(i: int) -> str:
            if looked is not None and (because := looked(i)):
                return because
            if i in again:
                return "you bought this before"
            if arrivals is not None and arrivals[i]:
                return f"new in {self.cat.category[i]}, close to what you like"
            return why.format(self.cat.category[i])

        return self._answer(scores, k, reason, kind, warnings)

    def _looked_at(
        self, in_session: tuple[np.ndarray, np.ndarray] | None
    ) -> Callable[[int], str] | None:
        """Why the session put an item forward (its session score above zero): the
        session's latest item of its category, else the latest item."""
        if in_session is None:
            return None
        scores, seen = in_session
        last = {int(self.cat.category_code[p]): int(p) for p in seen}  # the latest wins
        latest = int(seen[-1])

        def because(i: int) -> str:
            if scores[i] <= 0:
                return ""
            p = last.get(int(self.cat.category_code[i]), latest)
            title = self.cat.title[p]
            name = title if isinstance(title, str) and title else str(self.cat.item_ids[p])
            return f"because you looked at {name}"

        return because

    def cross_sell(
        self,
        cart: list[str],
        user_id: str | None,
        k: int,
        filters: Filters,
        attributes: dict[str, str] | None = None,
        recent: list[str] | None = None,
    ) -> Answer:
        """Items that complete the cart: co-purchase lift plus the user's affinity. With
        ``recent`` (the session's items, oldest first) the session blend's scores, by
        ``ranking.cross_sell_session``, are added to the scaled cart scores: what the
        visitor just looked at tips the cart's complements."""
        pos = self.items.positions(cart)
        warnings = [
            f"cart item {c!r} unknown: skipped" for c, p in zip(cart, pos, strict=True) if p < 0
        ]
        known = pos[pos >= 0]
        vec, kind = self.user_vector(user_id, attributes)
        mask = self._filtered(filters)[0]
        # Fast path: rank only the cart's complements (items with lift) when there are
        # enough of them; a non-complement could only outrank one by an affinity many
        # spreads above the mean. Otherwise score the whole catalogue.
        cand = np.unique(sparse_rows(self.bundle.lift, known)[1])
        near = self.bundle.signals.neighbours
        if near is not None and self.weights.cross_sell_neighbours:
            cand = np.union1d(cand, sparse_rows(near, known)[1])
        in_session, tip = self.session(recent), self.weights.cross_sell_session
        if in_session is not None:  # the session's own best items are candidates too
            cand = np.union1d(cand, best(in_session[0], 2 * k)[0])
        cand = cand[mask[cand] & ~np.isin(cand, known)]
        if known.size and cand.size >= k:
            aff_z = None if vec is None else self.affinity_z(vec, cand)
            cand_scores = self._cross_sell(known, aff_z, cand)
            if in_session is not None:
                cand_scores = topped(cand_scores) + tip * in_session[0][cand]
            top, val = best(cand_scores, k)
            idx = cand[top]
        else:
            if known.size == 0:
                aff = self.affinity(vec)
                scores = aff if aff is not None else self.bundle.popularity.astype(float)
            else:
                aff_z = None if vec is None else self.affinity_z(vec)
                scores = self._cross_sell(known, aff_z)
            if in_session is not None:
                scores = topped(scores) + tip * in_session[0]
            scores[self.blocked(filters)] = NEVER
            scores[known] = NEVER
            idx, val = best(scores, k)
        with_item = anchors(self.bundle.lift, known, idx)
        looked = self._looked_at(in_session)

        def reason(i: int, a: int) -> str:
            if a >= 0:
                return f"bought together with {self.cat.item_ids[a]}"
            if looked is not None and (because := looked(i)):
                return because
            return f"goes with your cart ({self.cat.category[i]})"

        items = [
            Scored(str(self.cat.item_ids[i]), float(s), reason(i, a))
            for i, s, a in zip(idx, val, with_item, strict=True)
        ]
        return Answer(items=items, warnings=warnings, user_kind=kind)

    def upsell(
        self,
        item_id: str,
        user_id: str | None,
        k: int,
        max_price_ratio: float | None,
        filters: Filters,
        attributes: dict[str, str] | None = None,
    ) -> Answer:
        """Pricier alternatives to an item in its category."""
        anchor = self.items.get(item_id)
        if anchor is None:
            return Answer([], [f"item {item_id!r} unknown: no upsell"], "none")
        vec, kind = self.user_vector(user_id, attributes)
        cand, cand_scores = upsell(
            anchor,
            self.item_emb,
            self.cat,
            vec,
            self.item_bias,
            max_price_ratio,
            affinity_weight=self.weights.upsell_affinity,
            margin_weight=self.weights.upsell_margin,
            norms=self.item_norms,
            taste=self.taste,
        )
        keep = self._filtered(filters)[0][cand]
        cand, cand_scores = cand[keep], cand_scores[keep]
        top, val = best(cand_scores, k)
        base = self.cat.price[anchor]
        items = [
            Scored(
                str(self.cat.item_ids[cand[i]]),
                float(v),
                f"premium alternative in {self.cat.category[cand[i]]}"
                f" (+{self.cat.price[cand[i]] / base - 1:.0%})",
            )
            for i, v in zip(top, val, strict=True)
        ]
        return Answer(items=items, warnings=[], user_kind=kind)

    def pack(
        self,
        cart: list[str],
        user_id: str | None,
        k_items: int,
        filters: Filters,
        attributes: dict[str, str] | None = None,
    ) -> Pack:
        """A bundle (/bundle): ``k_items`` items that complete ``cart`` (an item or a
        cart), with the pack's price (:mod:`models.ranking.packs`). Unknown cart items
        are skipped with a warning; with none known, no pack. Fewer complements than
        asked: a shorter pack, with a warning."""
        pos = self.items.positions(cart)
        warnings = [f"item {c!r} unknown: skipped" for c, p in zip(cart, pos, strict=True) if p < 0]
        known = pd.unique(pos[pos >= 0])
        vec, kind = self.user_vector(user_id, attributes)
        if not known.size:
            return Pack([], [*warnings, "no known item to build a bundle on"], kind)
        mask = self._filtered(filters)[0]
        lift, near = self.bundle.lift, self.bundle.signals.neighbours
        cand = np.unique(sparse_rows(lift, known)[1])
        if near is not None and self.weights.cross_sell_neighbours:
            cand = np.union1d(cand, sparse_rows(near, known)[1])
        cand = cand[mask[cand] & ~np.isin(cand, known)]
        row = None if user_id is None else self.users.get(user_id)
        own = None
        again = not excludes_purchased(self.bundle.objective)
        if row is not None and again and self.weights.bundle_history:
            own = self._own(row)  # what the customer buys again joins in
            cand = np.union1d(cand, own[0][mask[own[0]] & ~np.isin(own[0], known)])
        if cand.size < k_items:  # too few complements: any item the filters allow
            cand = np.flatnonzero(mask)
            cand = cand[~np.isin(cand, known)]
        aff_z = None if vec is None else self.affinity_z(vec, cand)
        scores = self._cross_sell(known, aff_z, cand, self.weights.bundle_affinity)
        if own is not None and len(own[0]):
            at = np.minimum(np.searchsorted(own[0], cand), len(own[0]) - 1)
            mine = own[0][at] == cand
            scores[mine] += self.weights.bundle_history * own[1][at[mine]]
        added, values = grow(
            scores,
            cand,
            known,
            k_items,
            lift,
            self.cat.category_code,
            self.bundle.orders,
            self.weights.bundle_together,
        )
        if len(added) < k_items:
            warnings.append(f"only {len(added)} of {k_items} items complete it")
        pack = np.concatenate([known, added])
        cost = price(
            self.cat.price[pack],
            self.cat.margin[pack],
            self.weights.bundle_discount,
            self.weights.bundle_margin_floor,
        )
        with_item = anchors(lift, known, added)
        usual = set() if own is None else set(own[0].tolist())

        def reason(i: int, a: int) -> str:
            if a >= 0:
                return f"bought together with {self.cat.item_ids[a]}"
            if i in usual:
                return "you bought this before"
            return f"goes with {self.cat.item_ids[known[0]]} ({self.cat.category[i]})"

        items = [
            Scored(str(self.cat.item_ids[i]), float(v), reason(i, a))
            for i, v, a in zip(added, values, with_item, strict=True)
        ]
        return Pack(
            items,
            warnings,
            kind,
            anchor=[str(self.cat.item_ids[i]) for i in known],
            prices=[float(p) for p in self.cat.price[pack]],
            price=cost,
        )

    def _own(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """The items a customer bought in the training window (sorted) and log(1 +
        purchase lines) of each: what they buy again, where the shop counts repeats."""
        _, cols, vals = sparse_rows(self.bundle.signals.purchases, np.array([row]))
        items, inverse = np.unique(cols, return_inverse=True)
        lines = np.bincount(inverse, weights=vals.astype(np.float64), minlength=len(items))
        return items, np.log1p(lines)

    def similar(self, item_id: str, k: int, filters: Filters) -> Answer:
        anchor = self.items.get(item_id)
        if anchor is None:
            return Answer([], [f"item {item_id!r} unknown: no similar items"], "none")
        scores = cosine(self.taste, anchor, self.item_norms, self.taste_t)
        scores[self.blocked(filters)] = NEVER
        return self._answer(scores, k, lambda i: f"similar to {item_id}", "none", [])

    def popular(self, k: int, category: str | None, filters: Filters) -> Answer:
        scores = popular(self.bundle.popularity, self.cat, category)
        scores[self.blocked(filters)] = NEVER
        warnings = (
            []
            if category is None or category in set(self.cat.category)
            else [f"category {category!r} unknown"]
        )
        return self._answer(
            scores, k, lambda i: f"popular in {self.cat.category[i]}", "none", warnings
        )

    # --- audiences ---------------------------------------------------------------------

    def audiences(self) -> Audiences:
        """Item-to-users scoring over this bundle, laid out on the first audience asked
        (a copy of the customers' vectors: campaigns only pay for it). A served baseline
        has no affinity."""
        if self._audiences is None:
            model = self.bundle.model
            vectors = (
                Vectors(model.user_emb, model.item_emb, model.item_bias)
                if self.bundle.personal is None
                else None
            )
            self._audiences = Audiences(vectors, self.bundle.signals, self.cat.category_code)
        return self._audiences

    def audience_items(self, members: np.ndarray) -> np.ndarray:
        """The items an audience for a target of item positions ``members`` is scored
        over: its ``ranking.audience_items`` best sellers."""
        return leading(members, self.bundle.popularity, self.weights.audience_items)

    def audience_scores(self, members: np.ndarray) -> np.ndarray:
        """Every customer's score for a target of item positions ``members``, as
        ``/audience`` ranks them: the target's best sellers (:meth:`audience_items`)
        through the served blend's terms, leaning as the pipeline chose. The one scoring
        the endpoint, the quality report and the benchmark share."""
        items = self.audience_items(members)
        leaning = Leaning(self.weights.audience_activity, self.weights.audience_category)
        mix = self.bundle.mix(excludes_purchased(self.bundle.objective))
        return self.audiences().scores(items, mix, leaning)

    def audience(
        self,
        k: int,
        item_id: str | None = None,
        category: str | None = None,
        among: np.ndarray | None = None,
        exclude_buyers: bool = False,
        brand: str | None = None,
    ) -> Audience:
        """The ``k`` customers most likely to buy ``item_id`` (or any item of
        ``category``, or of ``brand``) soon (:mod:`models.ranking.audience`), among
        customer positions ``among`` (a segment; None: everyone), leaving out who bought
        it in the training window when ``exclude_buyers``. An unknown target answers
        nobody, with a warning. A served baseline has no affinity: its audience is the
        leaning alone. A category or brand is scored over its best sellers
        (``ranking.audience_items``)."""
        if item_id is not None:
            found = self.items.get(item_id)
            if found is None:
                return Audience([], [f"item {item_id!r} unknown: no audience"])
            members = np.array([found])
            target = item_id
        elif category is not None:
            code = np.flatnonzero(self.cat.categories == category)
            if not len(code):
                return Audience([], [f"category {category!r} unknown: no audience"])
            members, target = self.cat.members[int(code[0])], str(category)
        else:
            brands = self.cat.brand
            members = np.empty(0, np.int64) if brands is None else np.flatnonzero(brands == brand)
            if not len(members):
                return Audience([], [f"brand {brand!r} unknown: no audience"])
            target = str(brand)
        audiences = self.audiences()
        scores = self.audience_scores(members)
        skip = np.zeros(len(scores), bool)
        if among is not None:
            skip[:] = True
            skip[among[among < len(scores)]] = False
        bought = audiences.bought(members)  # any of the target's items, scored or not
        if exclude_buyers:
            skip |= bought
        looked = audiences.looked(members)
        chosen = rank(scores, k, skip)

        def reason(u: int) -> str:
            if bought[u]:
                return f"bought {target} before"
            if looked[u]:
                return f"looked at {target}"
            return f"likes what goes with {target}"

        return Audience(
            [Customer(str(self.users.ids[u]), float(scores[u]), reason(u)) for u in chosen]
        )
