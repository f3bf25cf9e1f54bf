"""An informer: list, then watch, one kind of object; keep a cache of them; survive what watches do.

A watch resumes from the last resourceVersion it saw (an object's, or a bookmark's, which the API server
sends with ``allowWatchBookmarks`` so that a quiet kind does not fall behind the compaction window). When
the server answers ``410 Gone`` (that version is compacted away) the informer lists again and reports the
difference between its cache and the list (ADDED, MODIFIED, DELETED), so the cache and the handler never
miss an object whatever happened while it was not watching. A dropped connection or an error resumes the
watch after a backoff. Objects are plain dicts (``_preload_content=False``), typed and custom kinds alike.

The cache is what the controller reads instead of the API server (:mod:`.cache`), so it must never go
backwards: :meth:`Informer.record` stores the object a write of ours returned at once (the watch brings
the same version later), and an object is replaced only by one with a newer ``resourceVersion`` (compared
as integers, which every etcd-backed server serves; an opaque version always replaces), nor brought
back by the answer to a write that comes after the watch reported its deletion. ``indexes`` name
functions giving an object's index values (its namespace, a label, its owner), kept up to date with the
cache, so a read costs its matches rather than the whole kind (:meth:`Informer.by_index`).

    informer = Informer(partial(apps.list_namespaced_replica_set, "shop"), on_event=handle)
    thread = threading.Thread(target=informer.run, daemon=True); thread.start()
    informer.synced.wait(); ...; informer.stop()
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines
from urllib3.exceptions import HTTPError

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace or "", name)
Handler = Callable[[str, Obj], None]
#: how many deletions an informer remembers (see :meth:`Informer._pop`)
TOMBSTONES = 10_000
IndexFn = Callable[[Obj], list[str]]

log = logging.getLogger(__name__)


def key_of(obj: Obj) -> Key:
    meta = obj["metadata"]
    return meta.get("namespace") or "", meta["name"]


def newer(new: Obj, old: Obj | None) -> bool:
    """Whether ``new`` may replace ``old`` in a cache (a version that is not an integer always may)."""
    if old is None:
        return True
    a, b = new["metadata"].get("resourceVersion") or "", old["metadata"].get("resourceVersion") or ""
    if a.isdigit() and b.isdigit():
        return int(a) >= int(b)
    return True


class Gone(Exception):
    """The resourceVersion the watch resumed from is compacted away: list again."""


class Informer:
    def __init__(
        self,
        list_fn: Callable[..., Any],
        *,
        on_event: Handler | None = None,
        label_selector: str | None = None,
        watch_timeout: int = 300,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        indexes: Mapping[str, IndexFn] | None = None,
        namespace: str | None = None,
    ) -> None:
        self._list_fn = list_fn
        #: the namespace ``list_fn`` lists (None: every namespace), for :meth:`covers`
        self.namespace = namespace
        self._label_selector = label_selector
        self._on_event = on_event
        self._selector = {"label_selector": label_selector} if label_selector else {}
        self._watch_timeout = watch_timeout
        self._backoff, self._max_backoff = backoff, max_backoff
        self._cache: dict[Key, Obj] = {}
        self._index_fns: dict[str, IndexFn] = dict(indexes or {})
        self._indexes: dict[str, dict[str, set[Key]]] = {name: {} for name in self._index_fns}
        self._deleted: dict[Key, Obj] = {}  # the last deletions seen, oldest first
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._response: Any = None
        self._answered = False  # the current watch was accepted (a cut after this backs off from the start)
        self.resource_version: str | None = None
        self.synced = threading.Event()
        self.lists = 0  # how many times it listed (1 + one per 410 Gone)

    # -- what callers read ------------------------------------------------------------------------
    def get(self, namespace: str, name: str) -> Obj | None:
        with self._lock:
            return self._cache.get((namespace, name))

    def snapshot(self) -> dict[Key, Obj]:
        with self._lock:
            return dict(self._cache)

    def by_index(self, index: str, value: str) -> list[Obj]:
        """The cached objects whose ``index`` function gives ``value``, by key."""
        with self._lock:
            keys = sorted(self._indexes[index].get(value, ()))
            return [self._cache[k] for k in keys]

    def covers(self, obj: Obj) -> bool:
        """Whether ``obj`` belongs in this cache: in its namespace, and either cached already or (for a
        new object) carrying the label a bare-key selector asks for. A new object under any other
        selector is left to the watch (it may belong to another shard)."""
        key = key_of(obj)
        if self.namespace is not None and key[0] != self.namespace:
            return False
        if self.get(*key) is not None or not self._label_selector:
            return True
        bare = not any(c in self._label_selector for c in "=!,() ")
        return bare and self._label_selector in (obj["metadata"].get("labels") or {})

    def record(self, obj: Obj) -> None:
        """Store what one of our writes returned (unless the cache already holds a newer version), so
        a read right after the write does not act on the object as it was before it."""
        with self._lock:
            self._put(obj)

    # -- the cache (called with the lock held) ----------------------------------------------------
    def _put(self, obj: Obj) -> bool:
        key = key_of(obj)
        old = self._cache.get(key)
        if not newer(obj, old if old is not None else self._deleted.get(key)):
            return False
        if old is not None:
            self._unindex(key, old)
        self._cache[key] = obj
        for name, fn in self._index_fns.items():
            for value in fn(obj):
                self._indexes[name].setdefault(value, set()).add(key)
        return True

    def _pop(self, key: Key, deletion: Obj) -> None:
        """Forget ``key``; its deletion stays known (bounded), so the answer to a write of ours that
        arrives after the watch reported the delete does not bring the object back."""
        old = self._cache.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        self._deleted.pop(key, None)
        self._deleted[key] = deletion
        if len(self._deleted) > TOMBSTONES:
            del self._deleted[next(iter(self._deleted))]

    def _unindex(self, key: Key, obj: Obj) -> None:
        for name, fn in self._index_fns.items():
            for value in fn(obj):
                keys = self._indexes[name].get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._indexes[name][value]

    # -- the loop ---------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):  # already closed by the reading thread
                response.close()  # unblocks a read waiting on a quiet watch

    def run(self) -> None:
        delay = self._backoff
        while not self._stop.is_set():
            self._answered = False
            listed = self.resource_version is None
            try:
                if listed:
                    self._relist()
                self._watch()
                delay = self._backoff
            except Gone:
                log.info("watch resourceVersion %s is gone: listing again", self.resource_version)
                self.resource_version = None
                if listed and not self._answered:  # gone at once after a fresh list: not a tight loop
                    self._stop.wait(delay)
                    delay = min(delay * 2, self._max_backoff)
            except Exception as exc:  # an informer outlives whatever the connection does
                if self._stop.is_set():  # stop() closed the response under the reading thread
                    break
                if self._answered:  # a watch the server had accepted was cut: not a failing server
                    delay = self._backoff
                expected = isinstance(exc, ApiException | HTTPError | OSError | ValueError)
                log.warning("list/watch failed (%s); retrying in %.1fs", exc, delay, exc_info=not expected)
                self._stop.wait(delay)
                delay = min(delay * 2, self._max_backoff)

    def _call(self, **kwargs: Any) -> Any:
        try:
            response = self._list_fn(**self._selector, **kwargs, _preload_content=False)
        except ApiException as exc:  # kubernetes client 37 raises a non-2xx answer before returning it
            if exc.status == 410:
                raise Gone() from None
            raise
        if not 200 <= response.status < 300:  # unread content: the client has not checked the status
            body = response.data
            response.release_conn()
            if response.status == 410:
                raise Gone()
            raise ApiException(status=response.status, reason=response.reason, body=body)
        return response

    def _relist(self) -> None:
        response = self._call()
        listed = json.loads(response.data)
        fresh = {key_of(o): o for o in listed.get("items") or []}
        with self._lock:
            old = dict(self._cache)
            self._cache = {}
            self._indexes = {name: {} for name in self._index_fns}
            self._deleted = {}
            for obj in fresh.values():
                self._put(obj)
        self.lists += 1
        self.resource_version = listed["metadata"]["resourceVersion"]
        for key, obj in fresh.items():
            before = old.get(key)
            if before is None:
                self._emit("ADDED", obj)
            elif before["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"):
                self._emit("MODIFIED", obj)
        for key, obj in old.items():
            if key not in fresh:
                self._emit("DELETED", obj)
        self.synced.set()

    def _events(self) -> Iterator[Obj]:
        response = self._call(
            watch=True,
            resource_version=self.resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=self._watch_timeout,
            _request_timeout=self._watch_timeout + 30,
        )
        self._response = response
        self._answered = True
        try:
            for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
                if line.strip():
                    yield json.loads(line)
                if self._stop.is_set():
                    return
        finally:
            self._response = None
            response.release_conn()

    def _watch(self) -> None:
        for event in self._events():
            kind, obj = event["type"], event["object"]
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise Gone()
                raise ApiException(status=obj.get("code"), reason=obj.get("message"))
            self.resource_version = obj["metadata"]["resourceVersion"]
            if kind == "BOOKMARK":
                continue
            with self._lock:
                if kind == "DELETED":
                    self._pop(key_of(obj), obj)
                elif not self._put(obj):
                    continue  # older than what a write of ours already recorded
            self._emit(kind, obj)

    def _emit(self, kind: str, obj: Obj) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(kind, obj)
        except Exception:  # a handler's bug must not stop the watch
            log.exception("informer handler failed on %s %s", kind, key_of(obj))
