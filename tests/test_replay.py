"""Replay buffer: ring wraparound, sampling only stored transitions, terminated kept apart from truncated."""

from __future__ import annotations

import numpy as np

from ddpgx.replay import ReplayBuffer


def fill(buf: ReplayBuffer, n: int, episode_len: int = 0, start: int = 0) -> None:
    """Transitions whose obs is the step number t and next obs t + 0.5; episodes of episode_len (0 = never end)."""
    for t in range(start, start + n):
        end = episode_len > 0 and (t + 1) % episode_len == 0
        buf.add(
            np.full(2, t), np.full(1, t / 1000), float(t), np.full(2, t + 1), terminated=end, episode_end=end
        )


def stored(buf: ReplayBuffer) -> np.ndarray:
    idx = np.flatnonzero(buf.valid)
    return np.sort(buf.reward[idx])


def test_wraparound_keeps_the_newest_transitions():
    buf = ReplayBuffer(10, 2, 1)
    fill(buf, 25)
    np.testing.assert_array_equal(stored(buf), np.arange(15, 25))
    assert len(buf) == 10
    b = buf.gather(np.flatnonzero(buf.valid))
    np.testing.assert_array_equal(b.next_obs[:, 0], b.obs[:, 0] + 1)  # next obs intact across the wrap
    np.testing.assert_array_equal(b.obs[:, 0], b.reward)


def test_wraparound_with_episode_ends_keeps_each_next_obs():
    buf = ReplayBuffer(10, 2, 1)
    # episodes of 3: after each end the next episode's first obs differs from the last next_obs
    for t in range(40):
        end = (t + 1) % 3 == 0
        first = t % 3 == 0
        obs = np.full(2, 1000 + t) if first else np.full(2, t)  # reset obs is not the previous next obs
        buf.add(obs, np.zeros(1), float(t), np.full(2, t + 1), terminated=end, episode_end=end)
    idx = np.flatnonzero(buf.valid)
    b = buf.gather(idx)
    np.testing.assert_array_equal(b.next_obs[:, 0], b.reward + 1)
    firsts = b.reward % 3 == 0
    np.testing.assert_array_equal(b.obs[firsts, 0], 1000 + b.reward[firsts])
    np.testing.assert_array_equal(b.obs[~firsts, 0], b.reward[~firsts])
    np.testing.assert_array_equal(b.terminated, (b.reward + 1) % 3 == 0)
    # the newest transitions survive: the last one added is among them, older ones dropped
    assert 39 in b.reward and 0 not in b.reward
    assert set(b.reward) == set(range(int(b.reward.min()), 40))


def test_samples_only_filled_rows():
    buf = ReplayBuffer(1000, 2, 1, seed=0)
    fill(buf, 7, episode_len=3)
    b = buf.sample(64, num_batches=4)
    assert b.obs.shape == (4, 64, 2) and b.reward.shape == (4, 64)
    assert set(np.unique(b.reward)) == set(range(7))
    np.testing.assert_array_equal(b.next_obs[..., 0], b.reward + 1)


def test_terminated_kept_apart_from_truncated():
    buf = ReplayBuffer(100, 1, 1)
    o = np.zeros(1)
    buf.add(o, np.zeros(1), 1.0, o + 1, terminated=True, episode_end=True)  # termination
    buf.add(o, np.zeros(1), 2.0, o + 2, terminated=False, episode_end=True)  # time-limit truncation
    buf.add(o, np.zeros(1), 3.0, o + 3, terminated=False, episode_end=False)
    b = buf.gather(np.flatnonzero(buf.valid))
    np.testing.assert_array_equal(b.reward, [1, 2, 3])
    np.testing.assert_array_equal(b.terminated, [1, 0, 0])
    np.testing.assert_array_equal(b.next_obs[:, 0], [1, 2, 3])


def test_stores_each_observation_about_once():
    cap, obs_dim, act_dim = 10_000, 17, 6
    buf = ReplayBuffer(cap, obs_dim, act_dim)
    raw = cap * (4 * obs_dim + 4 * act_dim + 4 + 1)  # obs, action, reward, terminated per transition
    assert buf.nbytes <= 1.1 * raw
    assert buf.nbytes < cap * (8 * obs_dim)  # well below storing obs and next_obs apart


def test_sampling_is_reproducible_by_seed():
    a, b = ReplayBuffer(100, 2, 1, seed=5), ReplayBuffer(100, 2, 1, seed=5)
    fill(a, 50)
    fill(b, 50)
    np.testing.assert_array_equal(a.sample_indices(32), b.sample_indices(32))
