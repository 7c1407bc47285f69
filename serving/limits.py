"""What a request must be before its body is read: its size and its media type (BentoML
has no setting for either).

The endpoints' own limits (k, list lengths, id lengths) bound what a valid request can
ask for; :class:`BodyLimit` bounds what any request can make the server read and parse.
A body must declare its length: chunked uploads of unknown size get 411, larger ones 413.
:class:`JsonOnly`: every endpoint takes JSON; BentoML would parse a form or multipart body
(and answer a multipart one without a boundary with 500), so those get 400 or 415 naming
what to send.
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


class JsonOnly:
    """ASGI middleware: a request with a body (POST, PUT, PATCH) is JSON, or says nothing
    of its type (taken as JSON); a malformed ``Content-Type`` gets 400, another type 415."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("method") in ("POST", "PUT", "PATCH"):
            problem = media_type_problem(dict(scope.get("headers") or []).get(b"content-type"))
            if problem is not None:
                return await _refuse(send, *problem)
        await self.app(scope, receive, send)


def media_type_problem(header: bytes | None) -> tuple[int, str] | None:
    """(status, message) when a body of this ``Content-Type`` cannot be read as JSON."""
    if header is None or not header.strip():
        return None
    text = header.decode("latin-1").strip()
    media = text.split(";", 1)[0].strip().lower()
    if media == "application/json":
        return None
    if "/" not in media or media.startswith("/") or media.endswith("/"):
        return 400, f"malformed Content-Type {text!r}: send application/json"
    if media.startswith("multipart/") and "boundary=" not in text.lower():
        return 400, f"malformed Content-Type {text!r} (a multipart type needs a boundary): " + (
            "this API takes application/json"
        )
    return 415, f"unsupported Content-Type {media!r}: this API takes application/json"


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
