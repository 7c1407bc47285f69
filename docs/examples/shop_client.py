r"""A shop's pages asking cartlift, through BentoML's Python client (``bentoml.SyncHTTPClient``).

A visitor browses (their views streamed to /events), opens the home page (/recommend, led
by the session), a product page (/similar_items, /upsell), puts the product in the cart
(/cross_sell) and buys one of the suggestions (/feedback, which credits the answer).
Run against a running service (`cartlift serve`):

    CARTLIFT_URL=http://localhost:3000 CARTLIFT_API_KEY=... \
        uv run python docs/examples/shop_client.py

The API key (needed by /events and /feedback when the service has one) goes as a bearer
token; `tests/serving/test_service.py` runs this file against the real service.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

import bentoml

URL = os.environ.get("CARTLIFT_URL", "http://localhost:3000")
KEY = os.environ.get("CARTLIFT_API_KEY")
CUSTOMER = os.environ.get("CARTLIFT_EXAMPLE_CUSTOMER", "u000042")


def show(page: str, answer: dict) -> None:
    items = ", ".join(f"{i['item_id']} ({i['reason']})" for i in answer["items"])
    print(f"{page}: {items}")


with bentoml.SyncHTTPClient(URL, token=KEY, timeout=10) as cartlift:
    best = cartlift.popular(k=3)["items"]
    product = best[0]["item_id"]
    session = f"s-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    views = [
        {
            "event_id": f"{session}-{n}",
            "user_id": CUSTOMER,
            "item_id": item["item_id"],
            "event_type": "view",
            "timestamp": now,
            "session_id": session,
        }
        for n, item in enumerate(best)
    ]
    ack = cartlift.events(events=views)
    print(f"events: {ack['accepted']} stored, {len(ack['rejected'])} refused")

    home = cartlift.recommend(user_id=CUSTOMER, k=4, session_id=session)
    show("home page", home)
    show("product page, similar", cartlift.similar_items(item_id=product, k=4))
    show("product page, better", cartlift.upsell(item_id=product, user_id=CUSTOMER, k=4))
    cart = cartlift.cross_sell(cart=[product], user_id=CUSTOMER, k=4, session_id=session)
    show("cart page", cart)

    bought = cart["items"][0]["item_id"]
    credited = cartlift.feedback(
        request_id=cart["request_id"],
        user_id=CUSTOMER,
        item_id=bought,
        event="purchase",
        quantity=1,
        unit_price=9.99,
    )
    print(f"feedback: purchase of {bought} credited to answer {credited['request_id']}")
