"""Hindsight Experience Replay (Andrychowicz et al. 2017): a replay of whole episodes whose sampling relabels goals.

Episodes are stored whole, one slot each, ``max_steps`` transitions at most (the env's time limit): the
observation part, the achieved goal and the desired goal of every step, and of the final observation. At sample
time a fraction ``future_p = 1 - 1 / (1 + k)`` of the batch has its desired goal replaced by an achieved goal of
the same episode (``future``: of a later step; ``final``: of the last; ``episode``: of any step), and the rewards of
those transitions are recomputed with the env's vectorized ``compute_reward``; the others keep their stored
reward. The networks see ``[observation, achieved_goal, goal]`` with the (possibly new) goal in both the observation
and the next observation. A goal env's episode ends by a time limit, so transitions bootstrap unless the env
itself terminated. Slots are reused oldest first, so whole episodes leave the buffer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ddpgx.goals import GoalLayout
from ddpgx.replay import Batch

STRATEGIES = ("future", "final", "episode")


def future_p(k: int) -> float:
    """The fraction of relabelled transitions for ``k`` relabelled goals per real one (HER's replay_k)."""
    return 1.0 - 1.0 / (1.0 + k)


class HerBuffer:
    def __init__(
        self,
        capacity: int,
        max_steps: int,
        layout: GoalLayout,
        action_dim: int,
        reward_fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
        her_k: int = 4,
        strategy: str = "future",
        seed: int = 0,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"HER strategy must be one of {STRATEGIES}, got {strategy}")
        self.layout, self.max_steps, self.reward_fn = layout, max_steps, reward_fn
        self.future_p, self.strategy = future_p(her_k), strategy
        self.episodes = max(2, capacity // max_steps)
        n, t, o, g = self.episodes, max_steps, layout.obs_dim, layout.goal_dim
        self.obs = np.zeros((n, t + 1, o), np.float32)
        self.achieved = np.zeros((n, t + 1, g), np.float32)
        self.desired = np.zeros((n, t, g), np.float32)
        self.action = np.zeros((n, t, action_dim), np.float32)
        self.reward = np.zeros((n, t), np.float32)
        self.terminated = np.zeros((n, t), np.float32)
        self.length = np.zeros((n,), np.int64)  # stored transitions of each slot (0: empty or being written)
        self.slot, self.t, self.used = 0, 0, 0  # slot being written, its next step, slots ever written
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return int(self.length.sum())

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.obs, self.achieved, self.desired, self.action, self.reward))

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: float,
        next_obs: np.ndarray,
        terminated: bool,
        episode_end: bool,
    ) -> None:
        """Store one transition of flat goal-env observations (see goals.FlattenGoal)."""
        s, t, lay = self.slot, self.t, self.layout
        if t == 0:
            self.length[s] = 0  # the oldest episode leaves as the new one starts
            self.obs[s, 0], self.achieved[s, 0] = obs[: lay.obs_dim], obs[lay.achieved]
        if t >= self.max_steps:
            raise ValueError(f"an episode ran past the {self.max_steps} steps HER's replay holds per episode")
        self.desired[s, t] = obs[lay.desired]
        self.action[s, t], self.reward[s, t], self.terminated[s, t] = action, reward, terminated
        self.obs[s, t + 1], self.achieved[s, t + 1] = next_obs[: lay.obs_dim], next_obs[lay.achieved]
        self.t = t + 1
        if episode_end:
            self.end_episode()

    def end_episode(self) -> None:
        """The episode in progress is complete (or cut, when a run stops mid-episode): it becomes sampleable."""
        if self.t:
            self.length[self.slot] = self.t
            self.used = max(self.used, self.slot + 1)
            self.slot, self.t = (self.slot + 1) % self.episodes, 0

    def sample_transitions(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(episode slot, step) of ``count`` transitions drawn uniformly from the stored complete episodes."""
        cum = np.cumsum(self.length[: self.used])
        if not len(cum) or cum[-1] == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        return self.locate(self.rng.integers(0, cum[-1], size=count))

    def relabel_goals(
        self, ep: np.ndarray, t: np.ndarray, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(goals, relabelled mask): an achieved goal of the same episode for a ``future_p`` fraction."""
        rng = self.rng if rng is None else rng
        n = len(ep)
        relabel = rng.random(n) < self.future_p
        length = self.length[ep]
        if self.strategy == "future":  # the achieved goal of a later step: t+1 .. length
            j = rng.integers(t + 1, length + 1)
        elif self.strategy == "final":
            j = length
        else:  # episode: any step's achieved goal, 1 .. length
            j = rng.integers(1, length + 1)
        goals = np.where(relabel[:, None], self.achieved[ep, j], self.desired[ep, t])
        return goals, relabel

    def last_episode_goals(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """The goals of ``count`` transitions drawn from the episode stored last, relabelled as training batches
        are (for the normalizer's goal statistics, as baselines' HER fits its g statistics to each new episode)."""
        slot = (self.slot - 1) % self.episodes
        length = int(self.length[slot])
        if not length:
            raise ValueError("no complete episode is stored yet")
        t = rng.integers(0, length, size=count)
        goals, _ = self.relabel_goals(np.full(count, slot), t, rng)
        return goals

    # the protocol PerEnvReplay samples several buffers through (see replay.py)
    def sample_space(self) -> int:
        return len(self)

    def valid_draw(self, i: np.ndarray) -> np.ndarray:
        return np.ones(len(i), bool)

    def locate(self, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(episode slot, step) of the ``i``-th stored transitions, counted over the complete episodes."""
        cum = np.cumsum(self.length[: self.used])
        ep = np.searchsorted(cum, i, side="right")
        return ep, i - (cum[ep] - self.length[ep])

    def gather_at(self, index: tuple[np.ndarray, np.ndarray], n_step: int, gamma: float, rng) -> Batch:
        if n_step != 1:
            raise ValueError("HER's replay takes one-step transitions only")
        return self.gather(*index, rng=rng)

    def gather(self, ep: np.ndarray, t: np.ndarray, rng: np.random.Generator | None = None) -> Batch:
        goals, relabel = self.relabel_goals(ep, t, rng)
        reward = self.reward[ep, t].copy()
        if relabel.any():
            reward[relabel] = self.reward_fn(self.achieved[ep[relabel], t[relabel] + 1], goals[relabel])
        obs = np.concatenate([self.obs[ep, t], self.achieved[ep, t], goals], axis=-1)
        next_obs = np.concatenate([self.obs[ep, t + 1], self.achieved[ep, t + 1], goals], axis=-1)
        return Batch(obs, self.action[ep, t], reward, next_obs, self.terminated[ep, t])

    def sample(self, batch_size: int, num_batches: int = 1, n_step: int = 1, gamma: float = 0.99) -> Batch:
        """``num_batches`` relabelled batches of ``batch_size`` at once, shaped (num_batches, batch_size, ...)."""
        if n_step != 1:
            raise ValueError("HER's replay takes one-step transitions only")
        ep, t = self.sample_transitions(num_batches * batch_size)
        b = self.gather(ep, t)
        return Batch(*(x.reshape(num_batches, batch_size, *x.shape[1:]) for x in b[:5]))

    # ------------------------------------------------------------------ checkpointing
    COLUMNS = ("obs", "achieved", "desired", "action", "reward", "terminated", "length")

    def state_dict(self) -> dict[str, np.ndarray]:
        """The slots ever written and the write position (numpy arrays only, for an npz file)."""
        u = max(self.used, self.slot + 1 if self.t else self.used)
        return {
            **{name: getattr(self, name)[:u] for name in self.COLUMNS},
            "position": np.array([self.slot, self.t, self.used, self.episodes, self.max_steps]),
        }

    def check_state(self, d: dict[str, np.ndarray]) -> str | None:
        """Why the arrays ``d`` (read from a checkpoint) cannot be this buffer's state, or None if they can."""
        want = self.state_dict()
        if set(d) != set(want):
            return f"replay.npz has arrays {sorted(d)}, expected HER's {sorted(want)}"
        for name, w in want.items():
            if d[name].dtype != w.dtype or d[name].shape[1:] != w.shape[1:]:
                return f"replay.npz's {name} is {d[name].dtype}{list(d[name].shape)}, this run's HER replay " \
                       f"implies {w.dtype}[slots, {', '.join(map(str, w.shape[1:]))}]"  # fmt: skip
        slot, t, used, episodes, max_steps = (int(x) for x in d["position"])
        if (episodes, max_steps) != (self.episodes, self.max_steps) or not 0 <= used <= episodes:
            return f"replay.npz holds {episodes} episodes of {max_steps} steps, this run's HER replay " \
                   f"{self.episodes} of {self.max_steps}"  # fmt: skip
        if any(len(d[n]) != len(d["length"]) for n in self.COLUMNS) or not 0 <= slot < episodes:
            return "replay.npz's columns do not all hold the same episodes"
        return None

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        u = len(d["length"])
        for name in self.COLUMNS:
            getattr(self, name)[:u] = d[name]
        self.slot, self.t, self.used = (int(x) for x in d["position"][:3])
