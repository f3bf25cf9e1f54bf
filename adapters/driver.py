"""The driver: pumps observe -> step -> apply -> wake. One loop for the simulator and the controller.

The driver owns the :class:`~ebbtide.core.state.RolloutState` and the adapter; the engine owns the decisions.
For every event it calls ``step(state, event, now)``, keeps the new state, applies the decision's effects
through the adapter (level-based, so applying them again after a crash converges), and remembers
``decision.wake_at``. Measurements requested by ``StartMeasurement`` come back through ``adapter.observe`` and
are fed to the engine like any other event (an asynchronous provider's answers come out of a later
``observe``: pump again when one is ready, e.g. from the dispatcher's ``on_result``).

Every event handed to ``step`` is appended to :attr:`Driver.log` as ``(now, event)``; replaying the log
through ``step`` from the same initial state reproduces every decision (:func:`replay`). For crash safety the
state is JSON (``driver.state_json()``); :meth:`Driver.restore` continues from it, re-applying the full
desired world (``desired_effects``) and asking the adapter to report every revision again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, get_args

from ebbtide.adapters.base import Adapter
from ebbtide.core.effects import Effect
from ebbtide.core.events import Event, Tick
from ebbtide.core.plan import Plan
from ebbtide.core.state import Decision, RolloutState

if TYPE_CHECKING:
    StepFn = Callable[[RolloutState, Event, float], Decision]

#: a pump that goes on longer than this at one instant is an engine that never settles: stop it loudly
MAX_EVENTS_PER_INSTANT = 10_000

_TICK = Tick()


class DriverError(RuntimeError):
    pass


def _engine() -> tuple[StepFn, Callable[[Plan], RolloutState], Callable[[RolloutState], tuple[Effect, ...]]]:
    from ebbtide.core import engine

    return engine.step, engine.initial_state, engine.desired_effects


#: the effect types the engine emits
EFFECT_TYPES: tuple[type, ...] = get_args(get_args(Effect)[0])


def _appliers(adapter: Adapter) -> dict[type, Callable[[Any, float], None]]:
    """Effect type -> the adapter's handler of it (its ``appliers()``), else its ``apply``."""
    table: dict[type, Callable[[Any, float], None]] = dict.fromkeys(EFFECT_TYPES, adapter.apply)
    own = getattr(adapter, "appliers", None)
    if own is not None:
        table.update(own())
    return table


class Driver:
    """Drives one rollout: holds its state, feeds events to the engine and effects to the adapter."""

    def __init__(
        self,
        adapter: Adapter,
        state: RolloutState,
        *,
        record: bool = True,
        step: StepFn | None = None,
        on_decision: Callable[[float, Event, Decision], None] | None = None,
    ) -> None:
        self.adapter = adapter
        #: the adapter's methods the loop calls, bound once (not once per call)
        self._apply = adapter.apply
        #: the adapter's handler of each effect type (its ``appliers()``, else ``apply`` for every type)
        self._appliers = _appliers(adapter)
        #: the adapter promises that, observed at ``now``, it reports nothing more at ``now`` until an effect
        #: is applied (``observe_settles``): then a batch of events without effects ends the pump
        self._settles = bool(getattr(adapter, "observe_settles", False))
        self._observe = adapter.observe
        self._next_change = adapter.next_change
        self.state = state
        self.initial = state
        self.record = record
        self._step: StepFn = step if step is not None else _engine()[0]
        self.on_decision = on_decision
        self.wake_at: float | None = None
        self.log: list[tuple[float, Event]] = []
        self.rejections: list[tuple[float, Event, str]] = []
        #: events fed to the engine (``pump`` adds its events when it returns)
        self.events_handled = 0

    # ----- construction ----------------------------------------------------------------------------------
    @classmethod
    def for_plan(cls, adapter: Adapter, plan: Plan, **kwargs: object) -> Driver:
        initial_state = _engine()[1]
        return cls(adapter, initial_state(plan), **kwargs)  # type: ignore[arg-type]

    @classmethod
    def restore(
        cls,
        adapter: Adapter,
        state_json: str | bytes,
        now: float,
        *,
        desired_effects: Callable[[RolloutState], Iterable[Effect]] | None = None,
        **kwargs: object,
    ) -> Driver:
        """Continue from a persisted state: re-apply the desired world and re-observe every revision.

        The next wake is due at once (``now``): the engine decides from the restored state whatever a Tick
        at this time means (an expired pause, a due measurement).
        """
        state = RolloutState.from_json(state_json)
        drv = cls(adapter, state, **kwargs)  # type: ignore[arg-type]
        effects = desired_effects if desired_effects is not None else _engine()[2]
        for effect in effects(state):
            adapter.apply(effect, now)
        adapter.resync()
        drv.wake_at = now
        return drv

    def state_json(self) -> str:
        return self.state.to_json()

    # ----- the loop --------------------------------------------------------------------------------------
    @property
    def next_wake(self) -> float | None:
        """When the engine wants the next Tick (None: only when something happens)."""
        return self.wake_at

    def handle(self, event: Event, now: float) -> Decision:
        """Feed one event to the engine and apply its decision through the adapter."""
        self.events_handled += 1
        return self._handle(event, now)

    def _handle(self, event: Event, now: float) -> Decision:
        """:meth:`handle` without counting the event (:meth:`pump` counts its events at once)."""
        decision = self._step(self.state, event, now)
        if self.record:
            self.log.append((now, event))
        self.state = decision.state
        self.wake_at = decision.wake_at
        if decision.rejected is not None:
            self.rejections.append((now, event, decision.rejected))
        effects = decision.effects
        if effects:
            appliers = self._appliers
            apply = self._apply  # an effect of a type the table does not know (none the engine emits)
            for effect in effects:
                appliers.get(type(effect), apply)(effect, now)
        if self.on_decision is not None:
            self.on_decision(now, event, decision)
        return decision

    def pump(self, now: float) -> int:
        """Process everything due at ``now``: a due Tick, then observations and measurement results, until
        the world and the engine are quiet at this instant. Returns the number of events handled."""
        handled = 0
        try:
            observe = self._observe
            handle = self._handle
            settles = self._settles
            while True:
                wake = self.wake_at
                if wake is not None and wake <= now:
                    handle(_TICK, now)
                    handled += 1
                events = observe(now)
                if events:
                    applied = False
                    for event in events:
                        if handle(event, now).effects:
                            applied = True
                        handled += 1
                    if settles and not applied:
                        # the adapter would report nothing new: nothing was applied since it was observed
                        wake = self.wake_at
                        if wake is None or wake > now:
                            return handled
                else:
                    wake = self.wake_at
                    if wake is None or wake > now:
                        return handled
                if handled > MAX_EVENTS_PER_INSTANT:
                    raise DriverError(
                        f"more than {MAX_EVENTS_PER_INSTANT} events at t={now}: the engine does not settle"
                    )
        finally:
            self.events_handled += handled

    def send(self, event: Event, now: float) -> Decision:
        """Handle an outside event (deploy, command) and then everything it causes at this instant."""
        decision = self.handle(event, now)
        self.pump(now)
        return decision

    def next_time(self, now: float) -> float | None:
        """The earliest time something happens without outside input: a wake or a change in the world."""
        wake = self.wake_at
        change = self._next_change(now)
        if wake is None:
            return change
        if change is None:
            return wake
        return wake if wake < change else change


def replay(
    initial: RolloutState, log: Iterable[tuple[float, Event]], step: StepFn | None = None
) -> Iterator[Decision]:
    """Re-run an event log through ``step``: yields the decision of every event, in order."""
    step_fn = step if step is not None else _engine()[0]
    state = initial
    for now, event in log:
        decision = step_fn(state, event, now)
        state = decision.state
        yield decision
