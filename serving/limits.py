"""Request size limit, enforced before a body is read (BentoML has no setting for it).

The endpoints' own limits (k, list lengths, id lengths) bound what a valid request can
ask for; this bounds what any request can make the server read and parse. A body must
declare its length: chunked uploads of unknown size get 411, larger ones 413.
"""

from __future__ import annotations

import json
from typing import Any


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` without reading them."""

    def __init__(self, app: Any, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            declared = headers.get(b"content-length")
            if declared is None and b"chunked" in headers.get(b"transfer-encoding", b""):
                return await _refuse(send, 411, "send the body with a Content-Length")
            if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
                return await _refuse(
                    send, 413, f"request body over the limit of {self.max_bytes:,} bytes"
                )
        await self.app(scope, receive, send)


async def _refuse(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
