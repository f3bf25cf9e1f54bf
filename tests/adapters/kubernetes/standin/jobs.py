"""The Job controller of the stand-in: every ``batch/v1`` Job finishes as it says, after a short delay.

No pods are run. A Job's outcome is read from its annotation ``standin.ebbtide.dev/outcome``, else from
the first container's image of its pod template (``...:succeed``, ``...:fail``, ``...:hang``), else it
succeeds. Every ``tick`` seconds a background thread finishes each Job that is ``delay`` seconds old and
has no terminal condition yet:

- ``succeed``: ``status.succeeded: 1`` and the condition ``Complete`` (as the Job controller writes them);
- ``fail``: ``status.failed: 1`` and the condition ``Failed`` with reason ``BackoffLimitExceeded`` and the
  message ``Job has reached the specified backoff limit``;
- ``hang``: the Job stays active forever (``status.active: 1``), as one whose pod never ends.

``created`` counts the Jobs ever seen by name, so a test can tell that a retry created no second Job.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .store import ApiError, Obj, Store

JOB = ("batch", "v1", "jobs")
OUTCOME = "standin.ebbtide.dev/outcome"
OUTCOMES = ("succeed", "fail", "hang")


def outcome_of(job: Obj) -> str:
    """``succeed``, ``fail`` or ``hang``: the annotation, else the first container image's tag."""
    said = (job["metadata"].get("annotations") or {}).get(OUTCOME)
    if said in OUTCOMES:
        return str(said)
    containers = job.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [{}]
    tag = str(containers[0].get("image", "")).rpartition(":")[2]
    return tag if tag in OUTCOMES else "succeed"


def _finished(job: Obj) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions)


def _status(outcome: str) -> dict[str, Any]:
    if outcome == "succeed":
        return {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
    if outcome == "fail":
        failed = {
            "type": "Failed",
            "status": "True",
            "reason": "BackoffLimitExceeded",
            "message": "Job has reached the specified backoff limit",
        }
        return {"failed": 1, "conditions": [failed]}
    return {"active": 1}


@dataclass
class Jobs:
    store: Store
    delay: float = 0.1
    tick: float = 0.02
    created: Counter[str] = field(default_factory=Counter)
    _born: dict[str, float] = field(default_factory=dict)  # job uid -> monotonic time first seen
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="standin-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.tick):
            self.sync()

    def sync(self) -> None:
        """One pass over every Job (public so tests can step it by hand)."""
        job_type = self.store.resource(*JOB)
        assert job_type is not None
        for job in self.store.list(job_type, None)[0]:
            meta = job["metadata"]
            if meta["uid"] not in self._born:
                self._born[meta["uid"]] = time.monotonic()
                self.created[f"{meta['namespace']}/{meta['name']}"] += 1
            if _finished(job) or time.monotonic() - self._born[meta["uid"]] < self.delay:
                continue
            status = _status(outcome_of(job))
            if job.get("status") == status:
                continue
            try:
                self.store.replace(
                    job_type, meta["namespace"], meta["name"], {**job, "status": status}, "status"
                )
            except ApiError:  # deleted or changed meanwhile: the next tick sees the new state
                continue
