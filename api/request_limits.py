"""The request-body cap: a pure ASGI middleware that answers 413 without reading past the cap.

A declared `Content-Length` over the cap is refused before a byte of the body is read; a
chunked or lying body is counted as it streams and refused the moment it passes the cap (the
app's own answer to the broken body, if any, is replaced by the 413). A path given its own
cap (an upload route: `POST /api/v1/code`) is measured against that one instead.
"""

from __future__ import annotations

import json
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]


class BodyTooLarge(Exception):
    """Raised into the app's `receive` when the streamed body passes the cap."""


class RequestBodyLimit:
    def __init__(self, app: Any, max_bytes: int, paths: dict[str, tuple[int, str]] | None = None) -> None:
        """`paths`: {path: (cap in bytes, the setting that sets it)} for the routes with a cap of their own."""
        self.app = app
        self.max_bytes = max_bytes
        self.paths = paths or {}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes, setting = self.paths.get(scope.get("path", ""), (self.max_bytes, "BOSUN_MAX_REQUEST_BYTES"))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
            await self._refuse(send, declared.decode("latin-1"), max_bytes, setting)
            return
        seen = 0
        over = False
        started = False

        async def limited_receive() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    over = True
                    raise BodyTooLarge(f"request body passed {max_bytes} bytes")
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over:
                return  # the 413 below answers instead
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            pass
        if over and not started:
            await self._refuse(send, f"more than {max_bytes}", max_bytes, setting)

    @staticmethod
    async def _refuse(send: Any, size: str, max_bytes: int, setting: str) -> None:
        body = json.dumps({"detail": f"request body of {size} bytes is over the limit of {max_bytes} bytes "
                                     f"({setting})"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
