"""What every write (POST, PUT, PATCH, DELETE) goes through before a route: :class:`WriteGuard`.

1. **Body size**: more than ``max_body`` bytes is refused with 413 — at once when ``Content-Length`` says
   so, else as soon as the streamed body passes the limit (nothing is read past it).
2. **Rate limit per caller** (the user the bearer token belongs to; without a valid token, the client
   address): a moving window of ``limit`` (the ``limits`` library, in memory); over it, 429 with
   ``Retry-After`` (seconds until the window frees a request).
3. **Audit**: one JSON line per write on the logger ``ebbtide.audit`` — who, verb, object, action, result,
   status code and request id (``X-Request-Id`` from the caller, else a new one; echoed on the response) —
   refused writes included.

Reads pass untouched. A pure ASGI middleware: the body is buffered (at most ``max_body``) and replayed to
the route.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio.to_thread
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

audit_log = logging.getLogger("ebbtide.audit")
WRITES = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
MAX_BODY = 1 << 20
#: the response body kept to read the route's ``result`` from (larger answers are not parsed)
KEEP = 64 * 1024
_OBJECT = re.compile(r"^/(?:api/v1/namespaces|ocean/cd)/(?P<object>.+)$")
_RESULTS = {401: "unauthenticated", 403: "forbidden", 404: "not found", 409: "rejected", 413: "too large"}


class WriteGuard:
    def __init__(self, app: ASGIApp, *, limit: str = "60/minute", max_body: int = MAX_BODY) -> None:
        self.app = app
        self.limit = parse(limit)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITES:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        audit = Audit(scope, headers)
        audit.user = await anyio.to_thread.run_sync(self._user, scope, headers)
        try:
            declared = int(headers.get("content-length", "0"))
        except ValueError:
            declared = 0
        if declared > self.max_body:
            await self._refuse(send, audit, 413, f"the body is larger than {self.max_body} bytes")
            return
        key = audit.user or f"address:{(scope.get('client') or ('?',))[0]}"
        if not self.limiter.hit(self.limit, key):
            reset = self.limiter.get_window_stats(self.limit, key).reset_time
            wait = max(1, math.ceil(reset - time.time()))
            detail = f"too many writes by {key}: at most {self.limit}; retry in {wait}s"
            await self._refuse(send, audit, 429, detail, [(b"retry-after", str(wait).encode())])
            return
        body = await self._read(receive)
        if body is None:
            await self._refuse(send, audit, 413, f"the body is larger than {self.max_body} bytes")
            return
        audit.request_body(body)
        await self.app(scope, _replay(body, receive), audit.wrap(send))
        audit.write()

    @staticmethod
    def _user(scope: Scope, headers: dict[str, str]) -> str | None:
        header = headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        app = scope.get("app")
        authorizer = getattr(getattr(app, "state", None), "authorizer", None)
        if authorizer is None or not token:
            return None
        try:
            caller = authorizer.authenticate(token)
        except Exception:  # the route answers the caller; the guard only needs a name when there is one
            return None
        return None if caller is None else str(caller.user)

    async def _read(self, receive: Receive) -> bytes | None:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    @staticmethod
    async def _refuse(
        send: Send, audit: Audit, status: int, detail: str, extra: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        body = json.dumps({"detail": detail}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", audit.request_id.encode()),
            (b"connection", b"close"),
            *(extra or []),
        ]
        audit.status = status
        audit.write()  # before the answer: a client that saw it finds its line
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the disconnect, as the server would

    return replay


class Audit:
    """One write's audit line, filled in as the request goes through."""

    def __init__(self, scope: Scope, headers: dict[str, str]) -> None:
        self.method, self.path = str(scope["method"]), str(scope["path"])
        self.request_id = headers.get("x-request-id") or uuid.uuid4().hex
        self.user: str | None = None
        self.action: str | None = None
        self.status = 0
        self.result: str | None = None
        self._kept: list[bytes] = []
        self._size = 0
        self.written = False

    def request_body(self, body: bytes) -> None:
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            return
        if isinstance(parsed, dict) and isinstance(parsed.get("action"), str):
            self.action = parsed["action"]
        elif isinstance(parsed, dict) and isinstance(parsed.get("status"), str):
            self.action = f"externalVerification {parsed['status']}"

    def wrap(self, send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.status = int(message["status"])
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", self.request_id.encode()),
                ]
            elif message["type"] == "http.response.body":
                if self._size < KEEP:
                    chunk = message.get("body", b"")
                    self._kept.append(chunk)
                    self._size += len(chunk)
                if not message.get("more_body", False):
                    self.write()  # before the last of the answer: a client that saw it finds its line
            await send(message)

        return wrapped

    def _result(self) -> str:
        if self._size and self._size <= KEEP:
            try:
                answer = json.loads(b"".join(self._kept))
            except ValueError:
                answer = None
            if isinstance(answer, dict) and isinstance(answer.get("response"), dict):  # Ocean CD's envelope
                answer = (answer["response"].get("items") or [None])[0]
            if isinstance(answer, dict) and isinstance(answer.get("result"), str):
                return str(answer["result"])
        if 200 <= self.status < 300:
            return "ok"
        if self.status in (400, 422):
            return "invalid"
        return _RESULTS.get(self.status, "limited" if self.status == 429 else "error")

    def _object(self) -> str:
        m = _OBJECT.match(self.path)
        return self.path if m is None else m["object"]

    def write(self) -> None:
        """Log the line, once."""
        if self.written:
            return
        self.written = True
        line = {
            "requestId": self.request_id,
            "user": self.user,
            "verb": WRITES.get(self.method, self.method.lower()),
            "method": self.method,
            "path": self.path,
            "object": self._object(),
            "action": self.action,
            "result": self._result(),
            "status": self.status,
        }
        audit_log.info(json.dumps(line, sort_keys=True))
