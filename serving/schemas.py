"""Request and response bodies of the HTTP API (visible in the OpenAPI spec)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from models.experiments.assignment import Variant
from models.ranking.batch import MAX_K
from models.ranking.policies import Filters

MAX_LIST = 50
MAX_ITEMS = 1000
Id = Annotated[str, Field(min_length=1, max_length=128)]
K = Annotated[int, Field(ge=1, le=MAX_K, description=f"list length, 1..{MAX_K}")]
SessionId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        description="an anonymous visitor's session: assigns them to an experiment's variant "
        "(a customer is assigned by user_id)",
    ),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FiltersIn(_Body):
    include_categories: list[Id] = Field(default_factory=list, max_length=MAX_LIST)
    exclude_categories: list[Id] = Field(default_factory=list, max_length=MAX_LIST)
    min_price: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    max_price: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    in_stock_only: bool = True

    def policy(self) -> Filters:
        return Filters(
            include_categories=tuple(self.include_categories),
            exclude_categories=tuple(self.exclude_categories),
            min_price=self.min_price,
            max_price=self.max_price,
            in_stock_only=self.in_stock_only,
        )


Attributes = Annotated[
    dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=128)]],
    Field(max_length=20, description="customer attributes for cold start, e.g. region, age_band"),
]


class Item(BaseModel):
    item_id: str
    score: float
    reason: str


class Recommendations(BaseModel):
    request_id: str
    model_version: str
    variant: Variant = Field("champion", description="which side of a running experiment answered")
    items: list[Item]
    warnings: list[str] = Field(default_factory=list)
    cold_start: bool = False


class FeedbackAck(BaseModel):
    request_id: str
    accepted: bool = True


class RejectedEvent(BaseModel):
    position: int = Field(description="the event's place in the batch, from 0")
    event_id: str | None
    reason: str


class EventsAck(BaseModel):
    """What became of a batch of /events: stored (and synced) when this answer is sent."""

    received: int
    accepted: int = Field(description="events stored now")
    duplicates: int = Field(
        description="events already stored, or repeated in the batch: stored once, not again"
    )
    rejected: list[RejectedEvent] = Field(description="refused with their reason (quarantined)")


class ExperimentInfo(BaseModel):
    challenger_version: str
    share: float  # of customers (or sessions) the challenger answers
    salt: str  # names the experiment; the prediction log's ``experiment``


class Metadata(BaseModel):
    model_name: str
    model_version: str
    run_id: str
    bento_model: str
    trained_at: str
    dataset: str
    data_window: dict[str, str]
    served: str  # "cartlift" (the blend), or "baseline: <name>" while no trained model beats it
    served_because: str  # the gate's reason when a baseline is served
    objective: str  # discovery | replenishment: the default of /recommend's exclude_purchased
    blend: dict[str, str]  # the served blend's weights per variant
    catalogue_size: int
    known_users: int
    prediction_log: dict[str, int]
    experiment: ExperimentInfo | None = None  # the challenger, while an experiment runs


Price = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class ItemChange(_Body):
    """A new product (category and price required) or an update of a known one."""

    item_id: Id
    category: Id | None = None
    brand: Id | None = None
    title: Annotated[str, Field(max_length=256)] | None = None
    price: Price | None = None
    in_stock: bool | None = None
    margin: Annotated[float, Field(ge=-1, le=1, allow_inf_nan=False)] | None = None


class CatalogueAck(BaseModel):
    model_version: str
    added: list[str]
    updated: list[str]


MAX_AUDIENCE = 10_000


class BundleItem(BaseModel):
    item_id: str
    score: float
    reason: str
    price: float


class BundlePrice(BaseModel):
    full: float = Field(description="the pack's items' prices summed, the anchor's included")
    price: float = Field(description="what the pack costs the customer")
    discount: float = Field(description="1 - price / full")
    note: str = Field(description="why the discount is what it is (the margin floor)")


class BundleAnswer(BaseModel):
    request_id: str
    model_version: str
    variant: Variant = Field("champion", description="which side of a running experiment answered")
    anchor: list[str] = Field(description="the anchor's known items, with their prices below")
    anchor_prices: list[float]
    items: list[BundleItem] = Field(description="what the pack adds to the anchor, in order")
    price: BundlePrice | None = Field(None, description="none when no pack could be built")
    warnings: list[str] = Field(default_factory=list)
    cold_start: bool = False


class AudienceMember(BaseModel):
    user_id: str
    score: float
    reason: str


class AudienceAnswer(BaseModel):
    model_version: str
    target: str
    segment: str | None = None
    customers: list[AudienceMember]
    warnings: list[str] = Field(default_factory=list)
