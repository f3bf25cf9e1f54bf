"""The transition table: the single source of truth for which phase changes exist.

Built once, at import, with ``transitions`` (one class-level Machine with ``model=None``). The Machine is
the single source of the phase changes: at import its transitions are compiled into a plain
``(phase, trigger) -> destination`` map (:data:`TRANSITIONS`), which the engine's hot path looks up instead of
running a trigger through the library's callback machinery (a dict lookup against a trigger that costs about
as much as a whole engine step). A test checks the map against the Machine for every (phase, trigger) pair,
accepted and refused. The mermaid state diagram in the docs is generated from the Machine (:func:`mermaid`)
and pinned by a golden test.
"""

from __future__ import annotations

from typing import Any, Protocol

from transitions import Machine
from transitions.core import MachineError

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


def _compile(machine: Machine) -> dict[tuple[Phase, str], Phase]:
    """The machine's transitions as a ``(source, trigger) -> destination`` map (no conditions: one each)."""
    out: dict[tuple[Phase, str], Phase] = {}
    for trigger, event in machine.events.items():
        for source, transitions in event.transitions.items():
            (only,) = transitions
            out[_as_phase(source), trigger] = _as_phase(only.dest)
    return out


class _HasPhase(Protocol):
    phase: Phase


class _Cursor:
    """Throwaway model the machine moves; it carries nothing but the phase label."""

    __slots__ = ("state",)

    def __init__(self, state: str) -> None:
        self.state = state


def allowed(phase: Phase, trigger: str) -> bool:
    return (phase, trigger) in TRANSITIONS


def fire(w: _HasPhase, trigger: str) -> None:
    """Move ``w.phase`` through the table; an illegal trigger is an engine bug and raises MachineError,
    as the Machine itself would."""
    dest = TRANSITIONS.get((w.phase, trigger))
    if dest is None:
        raise MachineError(f'"Can\'t trigger event {trigger} from state {w.phase}!"')
    w.phase = dest


def fire_machine(phase: Phase, trigger: str) -> Phase:
    """The destination the ``transitions`` Machine itself gives (the reference :data:`TRANSITIONS` is
    checked against); raises MachineError for a refused pair."""
    cursor = _Cursor(phase)
    MACHINE.events[trigger].trigger(cursor)
    return _as_phase(cursor.state)


def _as_phase(value: Any) -> Phase:
    for p in PHASES:
        if p == value:
            return p
    raise ValueError(f"unknown phase {value!r}")  # pragma: no cover


#: the hot path's transition map, compiled from :data:`MACHINE` at import
TRANSITIONS: dict[tuple[Phase, str], Phase] = _compile(MACHINE)


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
