"""The engine's transition map is the ``transitions`` Machine compiled: same destinations, same refusals."""

from __future__ import annotations

import pytest
from transitions.core import MachineError

from ebbtide.core.machine import MACHINE, TABLE, TRANSITIONS, allowed, fire, fire_machine
from ebbtide.core.state import PHASES, Phase

TRIGGERS = sorted(MACHINE.events)


class _W:
    def __init__(self, phase: Phase) -> None:
        self.phase = phase


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize("phase", PHASES)
def test_map_agrees_with_the_machine(phase: Phase, trigger: str) -> None:
    w = _W(phase)
    try:
        want: Phase | None = fire_machine(phase, trigger)
    except MachineError:
        want = None
    assert TRANSITIONS.get((phase, trigger)) == want
    assert allowed(phase, trigger) is (want is not None)
    if want is None:
        with pytest.raises(MachineError):
            fire(w, trigger)
        assert w.phase == phase
    else:
        fire(w, trigger)
        assert w.phase == want


def test_map_is_the_table() -> None:
    rows = {(src, trigger): dst for trigger, sources, dst, _ in TABLE for src in sources}
    assert rows == TRANSITIONS
    assert set(TRIGGERS) == {t for t, *_ in TABLE}
