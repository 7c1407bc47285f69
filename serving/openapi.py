"""The OpenAPI spec the service serves at ``/docs.json`` (Swagger UI at ``/``), made true
and useful for a shop's developer.

BentoML writes the spec from the endpoints' signatures but labels it OpenAPI 3.0.2 while
its schemas are pydantic 2's JSON Schema (numeric ``exclusiveMinimum``, ``"null"``
types): OpenAPI 3.1's dialect, so the spec says 3.1.0. It has no examples and lists only
BentoML's own error bodies; :func:`improved` adds a request and response example to every
operation and the refusals this service actually gives (400, 401, 413, 415, 503), each a
JSON body naming the cause. :class:`SpecRewrite` applies it to the served spec.
"""

from __future__ import annotations

import json
from typing import Any

ITEM = "i000017"
USER = "u000042"
ANSWER = {
    "request_id": "7d0c9c51f0a14a5f9a3e2b1c0d4e5f6a",
    "model_version": "3",
    "variant": "champion",
    "items": [
        {"item_id": "i000231", "score": 1.84, "reason": "matches your interest in coffee beans"},
        {"item_id": "i000118", "score": 1.52, "reason": "bought together with i000017"},
    ],
    "warnings": [],
    "cold_start": False,
}
FILTERS = {"exclude_categories": ["gift cards"], "max_price": 80.0, "in_stock_only": True}

# Per route: an example request body, an example answer, and whether it needs the API key
# (when one is set) and a loaded model.
OPERATIONS: dict[str, dict[str, Any]] = {
    "/recommend": {
        "request": {"user_id": USER, "k": 10, "filters": FILTERS, "session_id": "s-9f2"},
        "response": ANSWER,
        "key": False,
        "model": True,
    },
    "/cross_sell": {
        "request": {"cart": [ITEM, "i000019"], "user_id": USER, "k": 5},
        "response": ANSWER,
        "key": False,
        "model": True,
    },
    "/upsell": {
        "request": {"item_id": ITEM, "user_id": USER, "k": 5, "max_price_ratio": 2.0},
        "response": ANSWER,
        "key": False,
        "model": True,
    },
    "/bundle": {
        "request": {"item_id": ITEM, "user_id": USER, "k_items": 3},
        "response": {
            "request_id": "5f0c4e7a9b2d4c1e8f3a6b7c9d0e1f2a",
            "model_version": "3",
            "variant": "champion",
            "anchor": [ITEM],
            "anchor_prices": [12.5],
            "items": [
                {
                    "item_id": "i000131",
                    "score": 2.41,
                    "reason": f"bought together with {ITEM}",
                    "price": 8.9,
                },
                {
                    "item_id": "i000212",
                    "score": 2.02,
                    "reason": f"bought together with {ITEM}",
                    "price": 4.2,
                },
                {
                    "item_id": "i000078",
                    "score": 1.64,
                    "reason": f"goes with {ITEM} (coffee filters)",
                    "price": 6.0,
                },
            ],
            "price": {"full": 31.6, "price": 28.44, "discount": 0.1, "note": "10% off"},
            "warnings": [],
            "cold_start": False,
        },
        "key": False,
        "model": True,
    },
    "/similar_items": {
        "request": {"item_id": ITEM, "k": 5},
        "response": ANSWER,
        "key": False,
        "model": True,
    },
    "/popular": {
        "request": {"k": 10, "category": "coffee beans"},
        "response": ANSWER | {"cold_start": True},
        "key": False,
        "model": True,
    },
    "/feedback": {
        "request": {
            "request_id": ANSWER["request_id"],
            "user_id": USER,
            "item_id": "i000231",
            "event": "purchase",
            "quantity": 1,
            "unit_price": 12.5,
        },
        "response": {"request_id": ANSWER["request_id"], "accepted": True},
        "key": True,
        "model": False,
    },
    "/events": {
        "request": {
            "events": [
                {
                    "event_id": "web-81723",
                    "user_id": USER,
                    "item_id": ITEM,
                    "event_type": "view",
                    "timestamp": "2026-11-30T10:04:11",
                    "session_id": "s-9f2",
                },
                {
                    "event_id": "web-81724",
                    "user_id": USER,
                    "item_id": "no-such-item",
                    "event_type": "view",
                    "timestamp": "2026-11-30T10:04:30",
                },
            ]
        },
        "response": {
            "received": 2,
            "accepted": 1,
            "duplicates": 0,
            "rejected": [{"position": 1, "event_id": "web-81724", "reason": "unknown item_id"}],
        },
        "key": True,
        "model": True,
    },
    "/audience": {
        "request": {"category": "coffee beans", "k": 100},
        "response": {
            "model_version": "3",
            "target": "coffee beans",
            "segment": None,
            "customers": [
                {"user_id": USER, "score": 4.12, "reason": "bought coffee beans before"},
                {"user_id": "u001377", "score": 3.87, "reason": "looked at coffee beans"},
            ],
            "warnings": [],
        },
        "key": True,
        "model": True,
    },
    "/metadata": {
        "request": {},
        "response": {
            "model_name": "cartlift",
            "model_version": "3",
            "run_id": "4f9a0c2e8b1d4c7a9e6f3b2a1d0c9e8f",
            "bento_model": "cartlift:v3",
            "trained_at": "2026-11-30T02:00:14",
            "dataset": "default-shop",
            "data_window": {"start": "2026-01-01", "cutoff": "2026-06-01"},
            "served": "cartlift",
            "served_because": "",
            "objective": "discovery",
            "blend": {"bought items excluded": "hybrid 1, trend 0.5"},
            "catalogue_size": 2400,
            "known_users": 5000,
            "prediction_log": {"written": 1200, "lost": 0},
            "experiment": None,
        },
        "key": False,
        "model": True,
    },
    "/admin/items": {
        "request": {
            "items": [
                {"item_id": "i009001", "category": "coffee beans", "price": 14.9},
                {"item_id": ITEM, "in_stock": False},
            ]
        },
        "response": {"model_version": "3", "added": ["i009001"], "updated": [ITEM]},
        "key": True,
        "model": True,
    },
    "/admin/reload": {
        "request": {},
        "response": {"model_version": "3"},
        "key": True,
        "model": False,
    },
}
INFRA = {  # BentoML's own GET endpoints: what they answer
    "/healthz": ("text/plain", ""),
    "/livez": ("text/plain", ""),
    "/readyz": ("text/plain", ""),
    "/metrics": ("text/plain", 'cartlift_prediction_log_records_total{outcome="written"} 1200.0'),
}
ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string", "description": "what went wrong, and what to do"}},
    "required": ["error"],
}


def _error(description: str, example: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": ERROR, "example": example}},
    }


def refusals(route: str, needs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The error answers one operation can give, by status."""
    out = {
        "400": _error(
            "The body is not valid: the fields at fault are named in detail",
            {
                "error": "1 validation error for recommend__Input",
                "detail": [
                    {
                        "type": "less_than_equal",
                        "loc": ["k"],
                        "msg": "Input should be less than or equal to 100",
                    }
                ],
            },
        ),
        "413": _error(
            "The body is over the size limit (CARTLIFT_SERVING__MAX_REQUEST_BYTES)"
            + ("; or more events than serving.max_events" if route == "/events" else ""),
            {"error": "request body over the limit of 1,048,576 bytes"},
        ),
        "415": _error(
            "The body is not JSON: send Content-Type application/json",
            {"error": "unsupported Content-Type 'text/plain': this API takes application/json"},
        ),
    }
    if needs["key"]:
        out["401"] = _error(
            "CARTLIFT_API_KEY is set and the request's key (x-api-key header, or "
            "Authorization: Bearer) is missing or wrong",
            {
                "error": "no API key: send it as the x-api-key header (or Authorization: "
                "Bearer <key>)"
            },
        )
    if needs["model"]:
        out["503"] = _error(
            "No model is served yet (or the champion failed to load); retry after Retry-After",
            {
                "error": "no model is being served",
                "cause": "no champion yet: run `cartlift pipeline`",
                "retry_after_seconds": 30,
            },
        )
    if route == "/audience":
        out["422"] = _error(
            "Not exactly one of item_id, category and brand, or a segment the table does not have",
            {"error": "segment: no segment 'vip' in .../segments.parquet; known: champions, ..."},
        )
    if route == "/bundle":
        out["422"] = _error(
            "Neither or both of item_id and cart, or k_items outside 2..4",
            {"error": "give exactly one of item_id and cart"},
        )
    if route == "/admin/items":
        out["422"] = _error(
            "A change the catalogue cannot take (a new product without category or price)",
            {"error": "new item 'i009002': field 'category' is required"},
        )
    return out


def improved(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` (BentoML's) with the OpenAPI version it is written in, an example for every
    operation and the error answers the service gives."""
    spec = json.loads(json.dumps(spec))  # a copy, never BentoML's own
    spec["openapi"] = "3.1.0"
    spec.setdefault("info", {})["description"] = (
        "cartlift: personalised, cross-sell, upsell, similar and popular items for a shop, "
        "live events and feedback. Every body is JSON; refusals are JSON bodies with an "
        "`error` naming the cause."
    )
    for route, item in spec.get("paths", {}).items():
        for operation in item.values():
            if route in OPERATIONS:
                needs = OPERATIONS[route]
                body = operation.setdefault("requestBody", {}).setdefault("content", {})
                body.setdefault("application/json", {})["example"] = needs["request"]
                ok = operation.setdefault("responses", {}).setdefault("200", {})
                ok.setdefault("content", {}).setdefault("application/json", {})["example"] = needs[
                    "response"
                ]
                operation["responses"] |= refusals(route, needs)
            elif route in INFRA:
                media, example = INFRA[route]
                ok = operation.setdefault("responses", {}).setdefault("200", {})
                ok["content"] = {media: {"schema": {"type": "string"}, "example": example}}
    return spec


class SpecRewrite:
    """ASGI middleware: ``GET /docs.json`` answers :func:`improved` of BentoML's spec."""

    def __init__(self, app: Any, path: str = "/docs.json"):
        self.app, self.path = app, path

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") != self.path:
            return await self.app(scope, receive, send)
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        status = int(start.get("status", 500))
        if status == 200:
            body = json.dumps(improved(json.loads(body))).encode()
        headers = [
            (k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"
        ] + [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
