"""Preallocated numpy ring buffer of transitions, storing each observation once.

Row i holds obs[i], action[i] (in [-1, 1]), reward[i] and terminated[i]; its next observation is obs[i + 1].
When an episode ends, its last next-observation takes a row of its own that is never sampled as a start, and the
next episode begins one row later. So memory is about one observation per transition (plus one row per episode),
not two. Truncation (time limit) is not stored as an end of the MDP: only ``terminated`` stops bootstrapping.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ddpgx.memory import HOST, Need


class Batch(NamedTuple):
    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    next_obs: np.ndarray
    terminated: np.ndarray
    discount: np.ndarray | None = None  # n-step batches: gamma^m, m the steps summed


class ReplayBuffer:
    def __init__(self, capacity: int, obs_dim: int, action_dim: int, seed: int = 0) -> None:
        if capacity < 2:
            raise ValueError("replay capacity must be at least 2")
        # one spare row so that `capacity` transitions fit when episodes never end
        n = capacity + 1
        self.capacity = capacity
        self.rows = n
        self.obs = np.zeros((n, obs_dim), np.float32)
        self.action = np.zeros((n, action_dim), np.float32)
        self.reward = np.zeros((n,), np.float32)
        self.terminated = np.zeros((n,), np.float32)
        self.valid = np.zeros((n,), bool)  # row starts a stored transition
        self.pos = 0  # row the next transition starts at
        self.filled = 0  # rows ever written, capped at n
        self.rng = np.random.default_rng(seed)

    @staticmethod
    def need(rows: int, obs_dim: int, action_dim: int) -> Need:
        """Memory of ``rows`` transitions (obs, action, reward, next obs, terminated, done) on the host."""
        return Need(f"a replay of {rows} rows", rows * ((obs_dim + action_dim + 2) * 4 + 1), HOST,
                    "a smaller --buffer-size")  # fmt: skip

    def __len__(self) -> int:
        return int(self.valid.sum())

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.obs, self.action, self.reward, self.terminated, self.valid))

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: float,
        next_obs: np.ndarray,
        terminated: bool,
        episode_end: bool,
    ) -> None:
        """Store one transition. ``episode_end`` (terminated or truncated) means the next add starts a new
        episode, so ``next_obs`` keeps its own row."""
        p, n = self.pos, self.rows
        q = (p + 1) % n
        self.obs[p] = obs
        self.action[p] = action
        self.reward[p] = reward
        self.terminated[p] = terminated
        self.valid[p] = True
        self.obs[q] = next_obs  # overwrites whatever transition started at q
        self.valid[q] = False
        self.filled = min(n, max(self.filled, p + 2))
        self.pos = (q + 1) % n if episode_end else q

    def end_episode(self) -> None:
        """Close the episode in progress without a terminal transition (a run that stops mid-episode): its last
        next-observation keeps its row, and the next add starts a new episode."""
        if self.filled and self.valid[(self.pos - 1) % self.rows]:
            self.pos = (self.pos + 1) % self.rows

    def sample_indices(self, count: int) -> np.ndarray:
        """``count`` row indices drawn uniformly from stored transitions (rejection on the few invalid rows)."""
        if self.filled == 0:  # not len(self): that sums the whole valid column, far too slow per step
            raise ValueError("cannot sample from an empty replay buffer")
        idx = self.rng.integers(0, self.filled, size=count)
        bad = ~self.valid[idx]
        while bad.any():
            idx[bad] = self.rng.integers(0, self.filled, size=int(bad.sum()))
            bad = ~self.valid[idx]
        return idx

    # the protocol PerEnvReplay samples several buffers through (see there)
    def sample_space(self) -> int:
        return self.filled

    def valid_draw(self, rows: np.ndarray) -> np.ndarray:
        return self.valid[rows]

    def locate(self, rows: np.ndarray) -> np.ndarray:
        return rows

    def gather_at(self, idx: np.ndarray, n_step: int, gamma: float, rng: np.random.Generator) -> Batch:
        return self.gather(idx) if n_step == 1 else self.gather_n_step(idx, n_step, gamma)

    def gather(self, idx: np.ndarray) -> Batch:
        nxt = idx + 1
        nxt[nxt == self.rows] = 0
        take = np.take
        return Batch(
            take(self.obs, idx, axis=0),
            take(self.action, idx, axis=0),
            take(self.reward, idx),
            take(self.obs, nxt, axis=0),
            take(self.terminated, idx),
        )

    def gather_n_step(self, idx: np.ndarray, n: int, gamma: float) -> Batch:
        """n-step transitions starting at rows ``idx``: the discounted sum of up to ``n`` rewards, the
        observation m <= n steps later, and gamma^m. The window stops early after a terminated step (terminated
        = 1: no bootstrap) or at its episode's last stored step (a time limit, or the episode still being
        collected: it bootstraps from that episode's last observation), so it never crosses an episode."""
        rows = self.rows
        ret = np.zeros(idx.shape, np.float64)
        disc = np.ones(idx.shape, np.float64)
        term = np.zeros(idx.shape, np.float32)
        last = idx.copy()
        alive = np.ones(idx.shape, bool)
        for j in range(n):
            row = (idx + j) % rows
            ret += np.where(alive, disc * self.reward[row], 0.0)
            term = np.where(alive, self.terminated[row], term)
            nxt = (row + 1) % rows
            last = np.where(alive, nxt, last)
            disc = np.where(alive, disc * gamma, disc)
            alive &= (self.terminated[row] == 0) & self.valid[nxt]
        return Batch(
            np.take(self.obs, idx, axis=0),
            np.take(self.action, idx, axis=0),
            ret.astype(np.float32),
            np.take(self.obs, last, axis=0),
            term,
            disc.astype(np.float32),
        )

    def sample(self, batch_size: int, num_batches: int = 1, n_step: int = 1, gamma: float = 0.99) -> Batch:
        """``num_batches`` batches of ``batch_size`` at once, shaped (num_batches, batch_size, ...); n-step ones if
        ``n_step`` > 1."""
        idx = self.sample_indices(num_batches * batch_size).reshape(num_batches, batch_size)
        return self.gather(idx) if n_step == 1 else self.gather_n_step(idx, n_step, gamma)

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict[str, np.ndarray]:
        """The filled rows and the write position (numpy arrays only, for an npz file)."""
        f = self.filled
        return {
            "obs": self.obs[:f],
            "action": self.action[:f],
            "reward": self.reward[:f],
            "terminated": self.terminated[:f],
            "valid": self.valid[:f],
            "pos": np.asarray(self.pos),
            "filled": np.asarray(f),
            "rows": np.asarray(self.rows),
        }

    def check_state(self, d: dict[str, np.ndarray]) -> str | None:
        """Why the arrays ``d`` (read from a checkpoint) cannot be this buffer's state, or None if they can."""
        want = self.state_dict()
        if set(d) != set(want):
            return f"replay.npz has arrays {sorted(d)}, expected {sorted(want)}"
        for name, w in want.items():
            if d[name].dtype != w.dtype or d[name].shape[1:] != w.shape[1:]:
                return (
                    f"replay.npz's {name} is {d[name].dtype}{list(d[name].shape)}, this run's config implies "
                    f"{w.dtype}[filled{', ' if w.ndim > 1 else ''}{', '.join(map(str, w.shape[1:]))}]"
                )
        f = int(d["filled"])
        if int(d["rows"]) != self.rows or not 0 <= f <= self.rows or not 0 <= int(d["pos"]) < self.rows:
            return (
                f"replay.npz describes {int(d['rows'])} rows ({f} filled), this run's buffer has {self.rows}"
            )
        if any(len(d[n]) != f for n in ("obs", "action", "reward", "terminated", "valid")):
            return f"replay.npz's columns do not all hold its {f} filled rows"
        return None

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        if int(d["rows"]) != self.rows or d["obs"].shape[1:] != self.obs.shape[1:]:
            raise ValueError(
                f"replay buffer shape mismatch: checkpoint has {int(d['rows'])} rows of obs {d['obs'].shape[1:]}, "
                f"this run {self.rows} of {self.obs.shape[1:]}"
            )
        f = int(d["filled"])
        for name in ("obs", "action", "reward", "terminated", "valid"):
            getattr(self, name)[:f] = d[name]
        self.pos, self.filled = int(d["pos"]), f


class PerEnvReplay:
    """One replay buffer per env (``--num-envs``), sampled as one: each env's episodes stay whole and contiguous
    in its own buffer (the ring's one-row-per-step layout and HER's episode slots both need that), and a batch is
    drawn uniformly from all stored transitions of all of them. With one env it is that env's buffer exactly: the
    same samples, the same random stream and the same checkpoint arrays as before there were several.

    Both buffer kinds offer what this needs: ``sample_space()`` (how many draws index their transitions),
    ``locate(u)`` (draw -> transition index, and which draws land on no transition), ``gather_at(index, n_step,
    gamma, rng)``, ``state_dict``/``check_state``/``load_state_dict`` and ``rng``.
    """

    def __init__(self, buffers: list, seed: int = 0) -> None:
        self.buffers = buffers
        self._rng = buffers[0].rng if len(buffers) == 1 else np.random.default_rng([seed, 13])

    @property
    def rng(self) -> np.random.Generator:
        return self._rng

    @property
    def num_envs(self) -> int:
        return len(self.buffers)

    def __len__(self) -> int:
        return sum(len(b) for b in self.buffers)

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for b in self.buffers)

    def add(self, env: int, *transition) -> None:
        self.buffers[env].add(*transition)

    def end_episode(self, env: int | None = None) -> None:
        for i, b in enumerate(self.buffers):
            if env is None or env == i:
                b.end_episode()

    def last_episode_goals(self, env: int, count: int, rng: np.random.Generator) -> np.ndarray:
        return self.buffers[env].last_episode_goals(count, rng)

    def sample(self, batch_size: int, num_batches: int = 1, n_step: int = 1, gamma: float = 0.99) -> Batch:
        """``num_batches`` batches of ``batch_size`` shaped (num_batches, batch_size, ...), drawn uniformly over every
        env's buffer."""
        if len(self.buffers) == 1:
            return self.buffers[0].sample(batch_size, num_batches, n_step, gamma)
        count = num_batches * batch_size
        sizes = np.array([b.sample_space() for b in self.buffers], np.int64)
        cum = np.cumsum(sizes)
        if cum[-1] == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        u = self._rng.integers(0, cum[-1], size=count)
        which = np.searchsorted(cum, u, side="right")
        local = u - (cum[which] - sizes[which])
        bad = ~self._valid(which, local)
        while bad.any():  # the ring's few rows that start no transition: drawn again, as the ring itself does
            u = self._rng.integers(0, cum[-1], size=int(bad.sum()))
            which[bad] = np.searchsorted(cum, u, side="right")
            local[bad] = u - (cum[which[bad]] - sizes[which[bad]])
            bad = ~self._valid(which, local)
        parts = []
        order = np.argsort(which, kind="stable")
        for j, b in enumerate(self.buffers):
            sel = order[which[order] == j]
            if len(sel):
                parts.append((sel, b.gather_at(b.locate(local[sel]), n_step, gamma, self._rng)))
        fields = []
        for f in range(len(parts[0][1])):
            if parts[0][1][f] is None:
                fields.append(None)
                continue
            first = parts[0][1][f]
            out = np.empty((count, *first.shape[1:]), first.dtype)
            for sel, batch in parts:
                out[sel] = batch[f]
            fields.append(out.reshape(num_batches, batch_size, *first.shape[1:]))
        return Batch(*fields)

    def _valid(self, which: np.ndarray, local: np.ndarray) -> np.ndarray:
        ok = np.ones(len(which), bool)
        for j, b in enumerate(self.buffers):
            m = which == j
            if m.any():
                ok[m] = b.valid_draw(local[m])
        return ok

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict[str, np.ndarray]:
        if len(self.buffers) == 1:
            return self.buffers[0].state_dict()
        return {f"env{i}.{k}": v for i, b in enumerate(self.buffers) for k, v in b.state_dict().items()}

    def _split(self, d: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]] | str:
        if len(self.buffers) == 1:
            return [d]
        parts: list[dict[str, np.ndarray]] = [{} for _ in self.buffers]
        for key, v in d.items():
            head, _, name = key.partition(".")
            i = int(head[3:]) if head.startswith("env") and head[3:].isdigit() else -1
            if not 0 <= i < len(parts):
                return f"replay.npz holds {key!r}, not one of this run's {len(parts)} envs' buffers"
            parts[i][name] = v
        return parts

    def check_state(self, d: dict[str, np.ndarray]) -> str | None:
        parts = self._split(d)
        if isinstance(parts, str):
            return parts
        for i, (b, p) in enumerate(zip(self.buffers, parts, strict=True)):
            problem = b.check_state(p)
            if problem:
                return problem if len(self.buffers) == 1 else f"env {i}: {problem}"
        return None

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        parts = self._split(d)
        assert not isinstance(parts, str), parts
        for b, p in zip(self.buffers, parts, strict=True):
            b.load_state_dict(p)
