"""ebbtide.core: the pure rollout/rollback engine (no I/O, no clock, no randomness).

decision = step(state, event, now)
"""

from ebbtide.core.engine import desired_effects, initial_state, step, wake_at
from ebbtide.core.state import Decision, RolloutState

__all__ = ["Decision", "RolloutState", "desired_effects", "initial_state", "step", "wake_at"]
