"""When the learner updates, in env steps: one small object the loop asks and the tests check.

An update *unit* is ``gradient_steps`` gradient steps, due after every ``update_every`` env steps once
``start = max(learning_starts, batch_size)`` steps are stored: at env steps ``start + update_every - 1``,
``start + 2 * update_every - 1``, ... With N envs a loop iteration is N env steps, and the units due in it run as
one compiled call of ``units * gradient_steps`` gradient steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class UpdateSchedule:
    start: int
    update_every: int
    gradient_steps: int
    policy_delay: int = 1

    @classmethod
    def of(cls, cfg) -> UpdateSchedule:  # noqa: ANN001 - a Config (no import cycle)
        return cls(
            max(cfg.learning_starts, cfg.batch_size),
            cfg.update_every,
            cfg.gradient_steps or cfg.update_every,
            cfg.policy_delay,
        )

    @property
    def first(self) -> int:
        """The env step after which the first update runs."""
        return self.start + self.update_every - 1

    def units_by(self, step: Any, maximum: Callable[[Any, Any], Any] = max) -> Any:
        """Update units due at env steps 1..``step``: 0 before ``first``, then one more every ``update_every``
        (``maximum``: ``jnp.maximum`` for a traced step in the compiled loop)."""
        return maximum(0, (step - self.first) // self.update_every + 1)

    def units_between(self, before: int, step: int) -> int:
        """Update units due at env steps ``before + 1 .. step`` (one loop iteration)."""
        return self.units_by(step) - self.units_by(before)

    def gradient_steps_by(self, step: int) -> int:
        return self.units_by(step) * self.gradient_steps

    def actor_in_call(self, before: int, step: int) -> bool:
        """Whether the call made for env steps ``before + 1 .. step`` includes an actor step: the critic steps are
        numbered on from the earlier calls', and the actor steps on every ``policy_delay``-th."""
        a, b = self.gradient_steps_by(before), self.gradient_steps_by(step)
        return b // self.policy_delay > a // self.policy_delay

    def next_call_end(self, step: int, num_envs: int) -> int:
        """The last env step of the iteration (of ``num_envs`` steps, ending at ``step`` now) whose call runs the
        next update unit after the ones due by ``step``."""
        due = self.first + self.units_by(step) * self.update_every
        return step + max(1, -(-(due - step) // num_envs)) * num_envs

    def usual_units(self, num_envs: int) -> int:
        """The units most iterations run (the call shape to compile ahead)."""
        return max(1, num_envs // self.update_every)


def crossed(before: int, step: int, every: int) -> bool:
    """A multiple of ``every`` lies in ``before + 1 .. step``."""
    return step // every > before // every
