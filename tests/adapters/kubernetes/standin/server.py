"""The HTTP face of the stand-in: the Kubernetes REST paths on 127.0.0.1, served by a thread per connection.

Paths: ``/api/v1/...`` and ``/apis/{group}/{version}/...``, then
``[namespaces/{ns}/]{plural}[/{name}[/status]]``; discovery (``/api``, ``/apis``, ``/api/v1``,
``/apis/{group}/{version}``, ``/version``) for the types the store serves. Watches (``?watch=true``) are
chunked JSON lines that honour ``resourceVersion``, ``allowWatchBookmarks`` and ``timeoutSeconds``.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import selectors
from .faults import Call, FaultInjector
from .resources import ResourceType
from .reviews import Reviews
from .store import ApiError, Obj, Store


class _Route:
    def __init__(self, rt: ResourceType, namespace: str | None, name: str | None, subresource: str) -> None:
        self.rt, self.namespace, self.name, self.subresource = rt, namespace, name, subresource


class StandInServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, store: Store, faults: FaultInjector, bookmark_every: float) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.store, self.faults, self.bookmark_every = store, faults, bookmark_every
        #: a watch from a compacted resourceVersion is answered ``410 Gone`` as the HTTP status (as the
        #: API server's watch cache does) rather than a 200 stream whose first event is an ERROR (etcd's way)
        self.gone_as_status = False
        self.reviews = Reviews()  # TokenReview / SubjectAccessReview answers (.reviews)
        self.requests: list[tuple[str, str, str]] = []  # (method, path?query, content type), in order
        self.agents: list[str] = []  # the User-Agent of each request, in the same order
        self._lock = threading.Lock()

    def log(self, method: str, path: str, content_type: str, agent: str = "") -> None:
        with self._lock:
            self.requests.append((method, path, content_type))
            self.agents.append(agent)


def _resolve(store: Store, parts: list[str]) -> _Route | None:
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        rt = store.resource(group, version, rest[2])
        if rt is not None and rt.namespaced:
            namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        return None
    rt = store.resource(group, version, rest[0])
    if rt is None:
        return None
    name = rest[1] if len(rest) > 1 else None
    return _Route(rt, namespace, name, rest[2] if len(rest) > 2 else "")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no delayed-ACK stall
    server: StandInServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # -- plumbing ---------------------------------------------------------------------------------
    def _send(self, code: int, body: Obj) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        raw = self._raw
        try:
            return json.loads(raw) if raw else {}
        except json.JSONDecodeError as exc:
            raise ApiError(400, "BadRequest", f"the body is not JSON: {exc}") from exc

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._raw = self.rfile.read(length) if length else b""  # read first: a refusal must not leave it
        url = urlsplit(self.path)
        self.server.log(
            method, self.path, self.headers.get("Content-Type", ""), self.headers.get("User-Agent", "")
        )
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = [p for p in url.path.split("/") if p]
        try:
            if method == "POST" and self.server.reviews.serves(parts):
                self._send(*self.server.reviews.answer(parts, self._body()))
                return
            if method == "GET" and (discovery := self._discovery(parts)) is not None:
                self._send(200, discovery)
                return
            route = _resolve(self.server.store, parts)
            if route is None:
                raise ApiError(
                    404, "NotFound", f"the server could not find the requested resource ({url.path})"
                )
            verb = self._verb(method, route, query)
            call = Call(verb, route.rt.plural, route.subresource)
            if delay := self.server.faults.delay_for(call):
                time.sleep(delay)
            self.server.faults.check(call)
            if verb == "watch":
                self._watch(route, query)
            else:
                code, body = self._serve(verb, route, query)
                self._send(code, body)
        except ApiError as exc:
            self._send(exc.code, exc.status())
        except selectors.SelectorError as exc:
            self._send(400, ApiError(400, "BadRequest", str(exc)).status())
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout): nothing to answer
            self.close_connection = True

    @staticmethod
    def _verb(method: str, route: _Route, query: dict[str, str]) -> str:
        if method == "GET":
            if route.name is not None:
                return "get"
            return "watch" if query.get("watch") in ("true", "1") else "list"
        verbs = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
        if method not in verbs or (route.name is None) != (method == "POST"):
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on this path")
        return verbs[method]

    # -- the verbs -------------------------------------------------------------------------------
    def _serve(self, verb: str, route: _Route, query: dict[str, str]) -> tuple[int, Obj]:
        store, rt, ns = self.server.store, route.rt, route.namespace or ""
        if route.subresource not in ("", "status") or (route.subresource and not rt.status_subresource):
            raise ApiError(404, "NotFound", f"{rt.plural}/{route.subresource}: not served by the stand-in")
        if verb == "get":
            return 200, store.get(rt, ns, route.name or "")
        if verb == "list":
            items, rv = store.list(rt, route.namespace, _matcher(query))
            return 200, {
                "kind": f"{rt.kind}List",
                "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(rv)},
                "items": items,
            }
        body = self._body()
        if verb == "create":
            if rt.namespaced and route.namespace is None:
                raise ApiError(405, "MethodNotAllowed", "create needs a namespace in the path")
            return 201, store.create(rt, ns, body)
        assert route.name is not None
        if verb == "update":
            if body.get("metadata", {}).get("name") not in (None, route.name):
                raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
            return 200, store.replace(rt, ns, route.name, body, route.subresource)
        if verb == "patch":
            content_type = self.headers.get("Content-Type", "")
            return 200, store.patch(rt, ns, route.name, content_type, body, route.subresource)
        precondition = (body.get("preconditions") or {}).get("resourceVersion")
        gone = store.delete(rt, ns, route.name, precondition)
        meta = gone["metadata"]
        return 200, {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": meta["name"], "kind": rt.plural, "group": rt.group, "uid": meta["uid"]},
        }

    def _watch(self, route: _Route, query: dict[str, str]) -> None:
        faults = self.server.faults
        drops_at_start = faults.drops
        timeout = float(query.get("timeoutSeconds") or 3600)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        since = query.get("resourceVersion")
        if self.server.gone_as_status and since not in (None, "", "0"):
            events_kept = self.server.store.events_since(int(since))[1]
            if not events_kept:
                raise ApiError(410, "Expired", f"too old resource version: {since}")
        events = self.server.store.watch(
            route.rt,
            route.namespace,
            _matcher(query),
            since,
            self.server.bookmark_every if bookmarks else None,
            time.monotonic() + timeout,
            lambda: faults.drops != drops_at_start,
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        sent = 0
        try:
            for event in events:
                if faults.drops != drops_at_start:  # cut: what happened since is not sent
                    break
                line = json.dumps(event).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
                sent += 1
                if faults.watch_event_limit is not None and sent >= faults.watch_event_limit:
                    break
            else:
                if faults.drops == drops_at_start:  # a clean end (timeout): the final chunk
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    # -- discovery -------------------------------------------------------------------------------
    def _discovery(self, parts: list[str]) -> Obj | None:
        types = self.server.store.types()
        if parts == ["version"]:
            return {
                "major": "1",
                "minor": "30",
                "gitVersion": "v1.30.0-ebbtide-standin",
                "platform": "linux/amd64",
            }
        if parts == ["api"]:
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if parts == ["apis"]:
            groups: dict[str, list[str]] = {}
            for rt in types:
                if rt.group and rt.version not in groups.setdefault(rt.group, []):
                    groups[rt.group].append(rt.version)
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    {
                        "name": g,
                        "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                        "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
                    }
                    for g, vs in sorted(groups.items())
                ],
            }
        if parts == ["api", "v1"]:
            group, version = "", "v1"
        elif len(parts) == 3 and parts[0] == "apis":
            group, version = parts[1], parts[2]
        else:
            return None
        served = [rt for rt in types if (rt.group, rt.version) == (group, version)]
        if not served:
            return None
        resources = []
        for rt in served:
            verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
            resources.append(
                {
                    "name": rt.plural,
                    "singularName": rt.kind.lower(),
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": verbs,
                }
            )
            if rt.status_subresource:
                resources.append(
                    {
                        "name": f"{rt.plural}/status",
                        "singularName": "",
                        "namespaced": rt.namespaced,
                        "kind": rt.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": served[0].api_version,
            "resources": resources,
        }

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")


def _matcher(query: dict[str, str]) -> Any:
    labels = selectors.parse(query.get("labelSelector"))
    fields = selectors.parse_fields(query.get("fieldSelector"))
    return lambda obj: labels(obj["metadata"].get("labels") or {}) and fields(obj)
