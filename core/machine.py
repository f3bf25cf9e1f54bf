"""The transition table: the single source of truth for which phase changes exist.

Built once, at import, with ``transitions`` (one class-level Machine with ``model=None``); the engine
fires a trigger on a throwaway cursor per phase change. The mermaid state diagram in the docs is
generated from this table (:func:`mermaid`) and pinned by a golden test.
"""

from __future__ import annotations

from typing import Any, Protocol

from transitions import Machine

from ebbtide.core.state import PHASES, Phase

#: (trigger, sources, destination, what it means)
TABLE: tuple[tuple[str, tuple[Phase, ...], Phase, str], ...] = (
    (
        "start",
        ("live", "failed"),
        "in-progress",
        "a new revision (deploy, retry, rollback through all phases)",
    ),
    (
        "supersede",
        ("in-progress", "verifying", "paused", "rolling-back"),
        "in-progress",
        "a newer revision cancels the running rollout",
    ),
    ("verify", ("in-progress",), "verifying", "a verification step starts"),
    ("verified", ("verifying",), "in-progress", "the phase verification passed (or was promoted)"),
    (
        "pause",
        ("in-progress", "verifying"),
        "paused",
        "pause step, manual pause, failure policy, inconclusive",
    ),
    ("resume", ("paused",), "in-progress", "resume: the running step restarts"),
    ("resume_verifying", ("paused",), "verifying", "resume: the running verification restarts"),
    ("promote", ("in-progress", "verifying", "paused"), "in-progress", "promote / promoteFull"),
    ("finish", ("in-progress",), "live", "all steps done: the canary is the new stable"),
    ("fail", ("in-progress", "verifying", "paused"), "failed", "verification failed or progress deadline"),
    (
        "roll_back",
        ("failed", "live", "in-progress", "verifying", "paused"),
        "rolling-back",
        "immediate rollback, abort, fast-tracked rollback",
    ),
    (
        "roll_back_new_rollout",
        ("failed",),
        "in-progress",
        "newRollout policy: a linked rollout of the last successful revision",
    ),
    ("rolled_back", ("rolling-back",), "live", "the target serves 100% with its replicas ready"),
    ("rollback_failed", ("rolling-back",), "failed", "the target never became ready"),
)

MACHINE = Machine(
    model=None,
    states=list(PHASES),
    transitions=[{"trigger": t, "source": list(src), "dest": dst} for t, src, dst, _ in TABLE],
    initial="live",
    auto_transitions=False,
    send_event=True,
)

_ALLOWED: dict[Phase, frozenset[str]] = {
    p: frozenset(t for t, src, _, _ in TABLE if p in src) for p in PHASES
}


class _HasPhase(Protocol):
    phase: Phase


class _Cursor:
    """Throwaway model the machine moves; it carries nothing but the phase label."""

    __slots__ = ("state",)

    def __init__(self, state: str) -> None:
        self.state = state


def allowed(phase: Phase, trigger: str) -> bool:
    return trigger in _ALLOWED[phase]


def fire(w: _HasPhase, trigger: str) -> None:
    """Move ``w.phase`` through the table; an illegal trigger is an engine bug and raises MachineError."""
    cursor = _Cursor(w.phase)
    MACHINE.events[trigger].trigger(cursor)
    w.phase = _as_phase(cursor.state)


def _as_phase(value: Any) -> Phase:
    for p in PHASES:
        if p == value:
            return p
    raise ValueError(f"unknown phase {value!r}")  # pragma: no cover


def mermaid() -> str:
    """The state diagram, generated from the machine's transitions."""
    lines = ["stateDiagram-v2", "    [*] --> live"]
    for name, event in MACHINE.events.items():
        for source, transitions in event.transitions.items():
            for tr in transitions:
                lines.append(f"    {_node(source)} --> {_node(str(tr.dest))}: {name}")
    return "\n".join(lines) + "\n"


def _node(phase: str) -> str:
    return phase.replace("-", "_")
