"""Which recomputed statuses are worth an API write: everything but ready counts climbing while pods start."""

from __future__ import annotations

from typing import Any

from ebbtide.adapters.kubernetes.statuswrite import worth_writing


def status(
    ready: dict[str, int], replicas: dict[str, int], phase: str = "in-progress", at: float = 1.0
) -> Any:
    revisions = sorted(set(ready) | set(replicas))
    return {
        "phase": phase,
        "engineState": {"phase": phase, "ready": ready, "replicas": replicas, "updated_at": at},
        "summary": {
            "revisions": [
                {"revision": r, "desired": replicas.get(r, 0), "ready": ready.get(r, 0)} for r in revisions
            ]
        },
    }


def test_the_same_status_is_not_written() -> None:
    assert not worth_writing(status({"a": 1}, {"a": 4}), status({"a": 1}, {"a": 4}))


def test_ready_counts_climbing_while_pods_start_are_not_written() -> None:
    old = status({"a": 4, "b": 0}, {"a": 3, "b": 2})
    assert not worth_writing(old, status({"a": 4, "b": 1}, {"a": 3, "b": 2}, at=2.0))
    assert not worth_writing(status({"a": 3}, {"a": 3, "b": 2}), status({"a": 3, "b": 0}, {"a": 3, "b": 2}))


def test_settled_ready_counts_are_written() -> None:
    assert worth_writing(
        status({"a": 3, "b": 1}, {"a": 3, "b": 2}), status({"a": 3, "b": 2}, {"a": 3, "b": 2})
    )


def test_a_drop_in_ready_pods_is_written() -> None:
    assert worth_writing(
        status({"a": 4, "b": 1}, {"a": 4, "b": 2}), status({"a": 3, "b": 1}, {"a": 4, "b": 2})
    )


def test_anything_else_is_written() -> None:
    old = status({"a": 4, "b": 0}, {"a": 4, "b": 2})
    assert worth_writing(old, status({"a": 4, "b": 0}, {"a": 4, "b": 2}, phase="verifying"))
    assert worth_writing(old, status({"a": 4, "b": 1}, {"a": 3, "b": 2}))  # a desired count changed
    assert worth_writing(old, {**status({"a": 4, "b": 1}, {"a": 4, "b": 2}), "conditions": [{"type": "X"}]})
    assert worth_writing({}, status({}, {}))
