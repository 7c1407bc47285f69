"""Column names of the data contract, named once."""

from __future__ import annotations


class Columns:
    """Names shared by the contract, features, model and evaluation."""

    user = "user_id"
    item = "item_id"
    event = "event_type"
    timestamp = "timestamp"
    quantity = "quantity"
    price = "price"
    order = "order_id"

    title = "title"
    category = "category"
    brand = "brand"
    in_stock = "in_stock"
    margin = "margin"

    region = "region"
    age_band = "age_band"
    signup_date = "signup_date"

    weight = "weight"
    # Bookkeeping added at ingestion, kept in quarantine files.
    source_row = "_row"
    reason = "_reason"


EVENT_TYPES = ("view", "add_to_cart", "purchase")

EVENT_COLUMNS = (
    Columns.user,
    Columns.item,
    Columns.event,
    Columns.timestamp,
    Columns.quantity,
    Columns.price,
    Columns.order,
)
ITEM_COLUMNS = (
    Columns.item,
    Columns.title,
    Columns.category,
    Columns.brand,
    Columns.price,
    Columns.in_stock,
)
ITEM_OPTIONAL = (Columns.margin,)
USER_COLUMNS = (Columns.user,)
# Any other column of the users table is kept as a categorical attribute; these are
# the ones the default shop writes and the features know how to band.
USER_OPTIONAL = (Columns.region, Columns.age_band, Columns.signup_date)
