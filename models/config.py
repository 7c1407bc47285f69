"""Every knob that decides a model or a service's behaviour, as plain validated data.

:class:`RunConfig` decides a model: it travels as a flow parameter and is logged to MLflow
exactly as used. The environment (paths, URIs, secrets) is read by
:class:`infra.settings.Settings` alone, never here.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_DATASET = "default-shop"


def redacted(uri: str) -> str:
    """``uri`` with any password replaced by ``***``: safe to print, log or store."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def has_password(uri: str | None) -> bool:
    return bool(uri) and urlsplit(uri or "").password is not None


class _Strict(BaseModel):
    """Unknown keys are errors: a typo in a config must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ShopConfig(_Strict):
    """Size and shape of the generated default shop (``cartlift generate``)."""

    seed: int = 7
    n_users: int = Field(5_000, ge=50)
    n_items: int = Field(2_400, ge=60)
    n_categories: int = Field(24, ge=3, le=48)
    days: int = Field(182, ge=30, description="length of the event history")
    end_date: dt.date = dt.date(2026, 6, 30)
    cold_days: int = Field(21, ge=1, description="new users/items appear only in these last days")
    sessions_per_user: float = Field(
        14.0, gt=0, description="mean sessions per user over the history"
    )


class FeatureConfig(_Strict):
    """How events become weighted interactions and user/item features."""

    holdout_days: int = Field(30, ge=1, description="last N days held out for evaluation")
    event_weights: dict[str, float] = {"view": 1.0, "add_to_cart": 3.0, "purchase": 6.0}
    half_life_days: float = Field(60.0, gt=0, description="time decay of interaction weights")
    trend_half_life_days: float = Field(
        3.0, gt=0, description="time decay of the trend (what sells now) the model leans on"
    )
    newcomer_half_life_days: float = Field(
        7.0, gt=0, description="time decay of what newcomers (first day) pick: cold start"
    )
    n_spend_bands: int = Field(4, ge=1)
    n_activity_bands: int = Field(4, ge=1)
    n_price_bands: int = Field(3, ge=1, description="price bands within a category")
    n_popularity_bands: int = Field(5, ge=1)
    n_preferred_categories: int = Field(3, ge=0)
    title_words: int = Field(
        2_000, ge=0, description="title words kept as item features (the most common; 0: none)"
    )
    user_feature_weight: float = Field(1.0, ge=0, description="metadata vs. identity weight")
    item_feature_weight: float = Field(1.0, ge=0, description="metadata vs. identity weight")

    @field_validator("event_weights")
    @classmethod
    def _known_events(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - {"view", "add_to_cart", "purchase"}
        if unknown:
            raise ValueError(f"unknown event types in event_weights: {sorted(unknown)}")
        return value


class TrainConfig(_Strict):
    """LightFM hyperparameters."""

    loss: Literal["warp", "bpr", "logistic", "warp-kos"] = "warp"
    no_components: int = Field(48, ge=1)
    learning_rate: float = Field(0.05, gt=0)
    item_alpha: float = Field(1e-6, ge=0)
    user_alpha: float = Field(1e-6, ge=0)
    max_sampled: int = Field(30, ge=1)
    epochs: int = Field(20, ge=1)
    use_features: bool = Field(True, description="False trains pure collaborative filtering")
    trend_weight: float = Field(
        0.0,
        ge=0,
        description="lean on what sells now: the trend's weight, in spreads of a customer's "
        "scores (tune chooses it per shop)",
    )
    cold_trend_weight: float = Field(
        0.0,
        ge=0,
        description="customers known by their attributes alone: the weight of what "
        "newcomers pick now",
    )
    seed: int = 42
    num_threads: int = Field(
        1, ge=1, description="1 is bit-for-bit reproducible; >1 trains lock-free (Hogwild)"
    )


Objective = Literal["discovery", "replenishment"]


class EvaluateConfig(_Strict):
    """Offline evaluation protocol on the temporal holdout, and the shop's objective."""

    k: int = Field(10, ge=1)
    objective: Literal["auto", "discovery", "replenishment"] = Field(
        "auto",
        description="discovery: items a customer bought before are neither recommended nor "
        "counted; replenishment: repeat purchases count and earlier purchases are offered "
        "again; auto: replenishment when at least `replenishment_share` of the training "
        "window's purchase lines buy again what the customer bought before",
    )
    replenishment_share: float = Field(
        0.25, ge=0, le=1, description="repeat share from which `auto` means replenishment"
    )
    target_events: tuple[str, ...] = ("purchase",)

    @model_validator(mode="before")
    @classmethod
    def _older_configs(cls, values: object) -> object:
        """Configs written before the objective setting said ``exclude_purchased``."""
        if isinstance(values, dict) and "exclude_purchased" in values:
            values = dict(values)
            excluded = values.pop("exclude_purchased")
            values.setdefault("objective", "discovery" if excluded else "replenishment")
        return values

    def resolve(self, repeat_share: float) -> Objective:
        """The objective for a shop whose repeat share is ``repeat_share``."""
        if self.objective != "auto":
            return self.objective
        return "replenishment" if repeat_share >= self.replenishment_share else "discovery"


def excludes_purchased(objective: Objective) -> bool:
    """Whether an objective leaves out what a customer bought before."""
    return objective == "discovery"


class GateConfig(_Strict):
    """When a newly trained version may take the ``champion`` alias."""

    metric: str = "ndcg_at_10"
    min_relative_gain: float = Field(
        0.01,
        ge=0,
        description="must beat the champion and the strongest baseline by this relative margin",
    )
    against: tuple[str, ...] = Field(
        ("popularity", "popularity, last 7 days", "personal frequency", "item-kNN", "EASE"),
        description="the simple baselines a candidate must beat (popularity always); the "
        "strongest is served when none does",
    )


class RankingConfig(_Strict):
    """How the engine mixes its signals into the lists it serves (and the report judges)."""

    @model_validator(mode="before")
    @classmethod
    def _older_configs(cls, values: object) -> object:
        """``buy_again_weight`` of older configs: the blend's weight chosen on the
        validation window replaced it (``tune.mix_again``)."""
        if isinstance(values, dict) and "buy_again_weight" in values:
            values = {k: v for k, v in values.items() if k != "buy_again_weight"}
        return values

    cross_sell_affinity: float = Field(
        1.0, ge=0, description="the customer's affinity against the cart's co-purchase lift"
    )
    cross_sell_neighbours: float = Field(
        1.5,
        ge=0,
        description="the cart's items through the blend's item-to-item weights (EASE's), "
        "in spreads of the co-purchase lift: bought by the same customers, not only in "
        "the same order; training replaces it by the value of tune.cross_sell_neighbours "
        "that sells best on the validation window's baskets (this one: too few baskets)",
    )
    cross_sell_session: float = Field(
        0.5,
        ge=0,
        description="the session's scores (what the visitor just looked at, top 1) against "
        "the cart's scaled scores (top 1): under 1, so the cart's complements lead and the "
        "session tips them",
    )
    session_ranker: bool = Field(
        True,
        description="re-order the session blend's best 50 with gradient-boosted trees "
        "learnt on the validation window's sessions (kept only where they beat the blend "
        "there): better next-item answers for about 1-2 ms more per request with a session",
    )
    substitute_penalty: float = Field(
        1.0,
        ge=0,
        description="items of a cart item's category never bought with the cart are "
        "substitutes, pushed down by this many tops of the lift",
    )
    upsell_affinity: float = Field(
        3.0,
        ge=0,
        description="the customer's affinity against closeness to the anchor (the pricier "
        "item bought follows taste more than the anchor, docs/quality.md)",
    )
    upsell_margin: float = Field(0.2, ge=0, description="weight of an item's margin in upsell")
    rules_per_item: int = Field(
        50, ge=1, description="strongest co-purchase rules kept per item (bounds memory)"
    )
    rules_min_count: int = Field(2, ge=1, description="baskets a pair needs to count as a rule")
    neighbours_per_item: int = Field(
        100, ge=1, description="item-to-item weights kept per item for the blend (bounds memory)"
    )
    new_arrival_rank: int = Field(
        10,
        ge=0,
        description="rank the best-matching new arrival (an item nobody interacted with in "
        "the training window) is lifted to in personal answers, so new items get shown and "
        "learnt; 0: never",
    )
    audience_items: int = Field(
        10,
        ge=1,
        description="a category's (or brand's) audience is scored over its this many "
        "best-selling items (bounded cost per request in a large catalogue; 10 against 50 "
        "moved precision@N by at most 0.003 on both shops, benchmarks/audiences.py)",
    )
    audience_activity: float = Field(
        2.0,
        ge=0,
        description="an audience's weight of how much a customer buys at all (log lines), "
        "beside the affinity (training chooses it on the validation window)",
    )
    audience_category: float = Field(
        2.0,
        ge=0,
        description="an audience's weight of the customer's purchase lines in the target's "
        "categories (log; training chooses it on the validation window)",
    )
    bundle_together: float = Field(
        2.0,
        ge=0,
        description="a bundle's weight of log(1 + orders that held the whole pack so far "
        "with a candidate) beside its cross-sell score: multi-item co-occurrence (chosen "
        "on the validation window by the pipeline)",
    )
    bundle_affinity: float = Field(
        5.0,
        ge=0,
        description="a bundle's weight of the customer's affinity against the anchor's "
        "co-purchase lift (cross-sell's, in spreads of the lift): with one item per "
        "category, which rung of a ladder the customer takes matters more than in a list "
        "(chosen on the validation window by the pipeline)",
    )
    bundle_history: float = Field(
        3.0,
        ge=0,
        description="where the shop counts repeats, a bundle's weight of log(1 + the "
        "customer's purchase lines of an item): their usual items join the pack (chosen "
        "on the validation window by the pipeline)",
    )
    bundle_discount: float = Field(
        0.1, ge=0, lt=1, description="a bundle's discount off its items' summed prices"
    )
    bundle_margin_floor: float = Field(
        0.15,
        ge=0,
        lt=1,
        description="a bundle's margin after the discount never goes under this share of "
        "its price (the discount shrinks; none where an item's margin is unknown)",
    )
    bundle_orders: int = Field(
        200_000,
        ge=1,
        description="the most recent training orders a bundle counts co-occurrence in "
        "(bounds memory)",
    )


class TuneConfig(_Strict):
    """What is chosen on the validation window beside the hyperparameters: how much the
    model leans on the trends (``tune``), and the weights of the served blend (every
    training, :mod:`models.recommenders.blend`)."""

    bundle_together: tuple[float, ...] = Field(
        (0.0, 2.0, 4.0),
        description="a bundle's weights of multi-item co-occurrence to try (first, the others "
        "as configured)",
    )
    bundle_affinity: tuple[float, ...] = Field(
        (3.0, 5.0, 8.0, 12.0),
        description="a bundle's weights of the customer's affinity to try (with the chosen "
        "multi-item weight)",
    )
    bundle_history: tuple[float, ...] = Field(
        (0.0, 1.0, 3.0, 6.0),
        description="a bundle's weights of the customer's own purchases to try (shops that "
        "count repeats)",
    )
    trend_weights: tuple[float, ...] = Field(
        (0.0, 0.5, 1.0, 2.0, 4.0), description="in spreads of a customer's scores"
    )
    trend_half_lives: tuple[float, ...] = Field((3.0, 7.0, 14.0), description="days")
    min_cold_users: int = Field(
        50,
        ge=1,
        description="fewer cold-start customers in the validation window: their trend "
        "weight and half-life stay as configured",
    )
    mix_again: tuple[float, ...] = Field(
        (0.0, 3.0, 10.0, 30.0, 100.0, 300.0),
        description="the blend's buy-again weights tried on the validation window",
    )
    mix_interest: tuple[float, ...] = Field(
        (0.0, 1.0, 3.0), description="the blend's weights of what a customer looked at"
    )
    mix_trend: tuple[float, ...] = Field(
        (0.0, 0.5, 1.0, 2.0, 4.0, 8.0), description="the blend's weights of what sells now"
    )
    mix_neighbours: tuple[float, ...] = Field(
        (0.0, 0.25, 0.5, 1.0, 2.0, 4.0),
        description="the blend's weights of the items like a customer's (EASE's item weights)",
    )
    cross_sell_neighbours: tuple[float, ...] = Field(
        (0.0, 0.5, 1.0, 1.5, 3.0),
        description="weights of the cart's items through EASE's item weights in cross-sell "
        "(ranking.cross_sell_neighbours) tried on the validation window's baskets",
    )
    min_cross_sell_baskets: int = Field(
        30,
        ge=1,
        description="fewer baskets of two or more items in the validation window: "
        "ranking.cross_sell_neighbours stays as configured",
    )
    max_cross_sell_baskets: int = Field(
        1000,
        ge=1,
        description="validation baskets the cross-sell weight is chosen on, at most (a seeded "
        "sample): each costs one engine call per weight tried",
    )
    neighbour_l2: tuple[float, ...] = Field(
        (10.0, 50.0, 200.0, 1000.0, 5000.0),
        description="EASE's regularisation for the blend's item weights, chosen on validation",
    )
    mix_rounds: int = Field(
        2, ge=1, description="passes of the blend's coordinate search over its weights"
    )
    mix_min_gain: float = Field(
        0.0,
        ge=0,
        description="a blend weight moves only for this relative gain on the validation "
        "window (raise it for a small shop, whose window is noisy)",
    )


class ServingConfig(_Strict):
    """Limits and behaviour of the HTTP service."""

    workers: int = Field(1, ge=1, description="service worker processes (each loads the model)")
    access_log: bool = Field(
        False,
        description="BentoML's per-request access log (the prediction log records every answer)",
    )
    metrics: bool = Field(True, description="Prometheus metrics at /metrics")
    tracing: bool = Field(
        False, description="OpenTelemetry spans per request (configure an exporter in BentoML)"
    )
    reload_seconds: float = Field(30.0, gt=0, description="how often the champion alias is checked")
    log_flush_seconds: float = Field(1.0, gt=0, description="prediction log flush interval")
    max_request_bytes: int = Field(
        1_048_576, ge=1024, description="larger request bodies are refused (413) unread"
    )
    max_events: int = Field(
        1000, ge=1, description="events per /events request; a larger batch is refused (413)"
    )
    session_minutes: float = Field(
        30.0,
        gt=0,
        description="a session_id's events taken in by /recommend: those received this recently",
    )


class MonitorConfig(_Strict):
    """What the monitor compares, how drift is tested, and when it asks for retraining.

    Drift tests are distances, not p-values: with tens of thousands of events any tiny
    difference is "significant", while a distance says how far the shop moved. Numerical
    columns use the Wasserstein distance normed by the reference's spread, categorical
    ones the Jensen-Shannon distance; a column drifts above its threshold.
    """

    window_days: int = Field(7, ge=1, description="the current window: last N days of events")
    min_events: int = Field(200, ge=1, description="fewer events in the window: no verdict")
    num_method: str = "wasserstein"
    num_threshold: float = Field(0.1, gt=0)
    cat_method: str = "jensenshannon"
    cat_threshold: float = Field(0.1, gt=0)
    drift_share: float = Field(
        0.3, gt=0, le=1, description="retrain when this share of watched columns drifts"
    )
    quality_drop: float = Field(
        0.2, gt=0, le=1, description="retrain when precision@k on feedback falls this much"
    )
    min_feedback_lists: int = Field(50, ge=1, description="fewer served lists: no quality verdict")
    max_age_days: float = Field(30.0, gt=0, description="retrain a champion older than this")
    cooldown_hours: float = Field(12.0, ge=0, description="no new retrain within this time")
    k: int = Field(10, ge=1)


class ExperimentConfig(_Strict):
    """How an online experiment credits purchases and decides (docs/experiments.md)."""

    challenge: bool = Field(
        False,
        description="a pipeline's candidate that passes the offline gate becomes the "
        "challenger of the serving champion, and the experiment decides, instead of it "
        "becoming the champion at once",
    )
    share: float = Field(
        0.5, ge=0.001, le=0.999, description="the challenger's share of customers then"
    )

    alpha: float = Field(0.05, gt=0, lt=1, description="the always-valid test's level")
    min_units: int = Field(
        200, ge=2, description="customers (or sessions) per variant before any decision"
    )
    max_days: float = Field(28.0, gt=0, description="stop the challenger after this long")
    tau_ratio: float = Field(
        0.1,
        gt=0,
        description="the mSPRT's mixing spread, in pooled standard deviations of the "
        "per-customer outcome: the size of difference it is most sensitive to (a list "
        "moves what a customer buys by about a tenth of its spread; benchmarks/experiments.py)",
    )
    attribution_hours: float = Field(
        24.0, gt=0, description="a purchase is credited to an answer shown this long before"
    )
    metric: Literal["purchases", "revenue"] = Field(
        "purchases",
        description="what the decision compares per customer: credited purchases, or their "
        "revenue (what a shop cares for, but far noisier: it needs more customers)",
    )


class SegmentConfig(_Strict):
    """How customers are segmented (`cartlift segment`; the rules in models/segments.py)."""

    window_days: float = Field(365.0, gt=0, description="purchases this far back count")
    clusters: tuple[int, ...] = Field(
        (2, 3, 4, 5, 6, 7, 8),
        min_length=1,
        description="numbers of clusters tried; the highest silhouette wins",
    )
    sample: int = Field(5000, ge=100, description="buyers the silhouette is computed on")
    top_categories: int = Field(
        20, ge=1, description="categories with a share column of their own; the rest pooled"
    )
    seed: int = 42

    @field_validator("clusters")
    @classmethod
    def _at_least_two(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if min(value) < 2:
            raise ValueError("every number of clusters tried must be 2 or more")
        return tuple(sorted(set(value)))


class RunConfig(_Strict):
    """Everything that decides a model: logged to MLflow with each run."""

    dataset: str = Field(DEFAULT_DATASET, pattern=r"^[A-Za-z0-9_.-]+$")
    features: FeatureConfig = FeatureConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    gate: GateConfig = GateConfig()
    ranking: RankingConfig = RankingConfig()
    tune: TuneConfig = TuneConfig()
    segments: SegmentConfig = SegmentConfig()

    def flat(self) -> dict[str, str]:
        """Dotted key -> value, as MLflow params."""
        out: dict[str, str] = {}

        def walk(prefix: str, value: object) -> None:
            if isinstance(value, dict):
                for key, sub in value.items():
                    walk(f"{prefix}.{key}" if prefix else str(key), sub)
            else:
                out[prefix] = str(value)

        walk("", self.model_dump(mode="json"))
        return out
