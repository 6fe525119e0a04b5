"""The normalizer HER needs: the std floor, goal statistics of relabelled goals, the clip share, against numbers
computed by hand; and a goal env with a constant goal coordinate (like FetchPush's height) in training."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from ddpgx import preset_config, train
from ddpgx.goals import GoalLayout
from ddpgx.her import HerBuffer
from ddpgx.obsnorm import Normalizer


def test_the_std_floor_bounds_a_constant_input_and_leaves_the_others():
    for floor, const_std in ((0.0, 1e-4), (0.01, 0.01)):
        n = Normalizer(3, floor=floor)
        n.push(np.array([1.0, 2.0, 3.0]))
        n.push(np.array([1.0, 2.0, 5.0]))
        mean, std = n.mean_std()
        np.testing.assert_array_equal(mean, np.float32([1, 2, 4]))
        np.testing.assert_allclose(std, np.float32([const_std, const_std, 1.0]), rtol=1e-6)
        assert mean.dtype == std.dtype == np.float32


def test_without_floor_or_goal_statistics_the_normalizer_is_the_old_running_statistics():
    from ddpgx.obsnorm import RunningStats

    rng = np.random.default_rng(0)
    old, new = RunningStats(4), Normalizer(4, GoalLayout(2, 1))
    for x in rng.normal(size=(30, 4)):
        old.push(x)
        new.push(x)
    for a, b in zip(old.mean_std(), new.mean_std(), strict=True):
        assert a.tobytes() == b.tobytes()
    assert new.state() == old.state()  # checkpoints keep their old form


def test_relabelled_goal_statistics_replace_the_desired_goal_part_only():
    lay = GoalLayout(obs_dim=2, goal_dim=2)  # [o0, o1, ag0, ag1, dg0, dg1]
    n = Normalizer(lay.size, lay, floor=0.01, relabelled_goals=True)
    obs = np.array([[0, 0, 1, 1, 5, 0.5], [2, 4, 3, 1, 5, 0.5]], np.float64)
    for x in obs:
        n.push(x)
    mean, std = n.mean_std()  # no goal pushed yet: the seen statistics, floored
    np.testing.assert_allclose(mean, [1, 2, 2, 1, 5, 0.5])
    np.testing.assert_allclose(std, [1, 2, 1, 0.01, 0.01, 0.01], rtol=1e-6)
    n.push_goals(np.array([[1.0, 0.5], [3.0, 0.5], [5.0, 0.5]]))
    mean, std = n.mean_std()
    # goals: dg0 mean 3, var 8/3; dg1 constant -> the floor
    np.testing.assert_allclose(mean, [1, 2, 2, 1, 3, 0.5], rtol=1e-6)
    np.testing.assert_allclose(std, [1, 2, 1, 0.01, np.sqrt(8 / 3), 0.01], rtol=1e-6)
    state = json.loads(json.dumps(n.state()))
    m = Normalizer(lay.size, lay, floor=0.01, relabelled_goals=True)
    m.load_state(state)
    assert [a.tobytes() for a in m.mean_std()] == [a.tobytes() for a in n.mean_std()]
    with pytest.raises(ValueError, match="no goal statistics"):
        m.load_state({k: v for k, v in state.items() if k != "goal"})


def test_clip_share_per_input_group_as_computed_by_hand():
    lay = GoalLayout(obs_dim=2, goal_dim=1)  # [o0, o1, ag, dg]
    n = Normalizer(lay.size, lay)
    for x in ([-1.0, -1, -1, -1], [1.0, 1, 1, 1]):
        n.push(np.array(x))  # mean 0, std sqrt(1 + 1e-8)
    batch = np.array([[3, 0, 0, 3], [0, -3, 0, 0], [0, 0, 0, 3], [1.9, 0, 2.5, 0]], np.float32)
    share = n.clip_share(batch, clip=2.0)
    # observation: 2 of 8 entries >= 2 (3, -3); achieved: 1 of 4 (2.5); desired: 2 of 4
    assert share == {"observation": 0.25, "achieved_goal": 0.25, "desired_goal": 0.5}
    assert Normalizer(3).clip_share(np.zeros((5, 3)) + 9, 5.0) == {"input": 1.0}


def test_goals_for_the_statistics_come_from_the_last_episode_relabelled_as_batches_are():
    lay = GoalLayout(obs_dim=1, goal_dim=1)
    buf = HerBuffer(
        1000, 5, lay, 1, lambda a, d: np.zeros(len(a), np.float32), her_k=4, strategy="final", seed=0
    )
    for base in (100.0, 200.0):  # achieved goals base+1..base+5, desired goal -base
        for t in range(5):
            o = np.array([0.0, base + t, -base], np.float32)
            o2 = np.array([0.0, base + t + 1, -base], np.float32)
            buf.add(o, np.zeros(1, np.float32), 0.0, o2, False, t == 4)
    goals = buf.last_episode_goals(4000, np.random.default_rng(1))
    # strategy final: the achieved goal of the last step (205) with p = 1 - 1/(1+4) = 0.8, else the real goal
    assert set(np.unique(goals)) == {-200.0, 205.0}
    assert abs((goals == 205.0).mean() - 0.8) < 0.02


def height_cfg(run_dir: Path, **over):
    return preset_config(
        "her", "goal_envs:PointGoal-v0", env_kwargs=("height=true",), actor_hidden=(32, 32), critic_hidden=(32, 32),
        buffer_size=5_000, total_steps=1_500, log_every=500, eval_every=1_500, eval_episodes=2, run_dir=str(run_dir),
        progress=False, plot=False, tensorboard=False, **over,
    )  # fmt: skip


@pytest.mark.slow
def test_a_constant_goal_coordinate_saturates_the_old_normalizer_and_not_the_new_one(tmp_path):
    """Every real desired goal has height 0 and every achieved goal after the first step has height 0.002. Fitted
    to real goals, the height's std is 1e-4 and each relabelled goal's height normalizes to +20, at the clip 5: a
    third of the desired-goal inputs of each relabelled row, 0.8 of the rows (her_k 4). Fitted to relabelled goals
    with the floor 0.01, the height stays within +-0.2 and nothing saturates."""

    def clip_col(run: Path, col: str) -> list[float]:
        return [float(r[col]) for r in csv.DictReader(open(run / "train.csv")) if r[col]]

    train(height_cfg(tmp_path / "old", obs_std_floor=0.0, goal_stats="seen"))
    old = clip_col(tmp_path / "old", "clip_desired_goal")
    assert len(old) == 3 and all(abs(s - 0.8 / 3) < 0.05 for s in old), old
    train(height_cfg(tmp_path / "new"))
    assert clip_col(tmp_path / "new", "clip_desired_goal") == [0.0, 0.0, 0.0]
    # the observation part (the point's position in [-1, 1]) is far from the clip either way
    assert (
        max(clip_col(tmp_path / "new", "clip_observation") + clip_col(tmp_path / "old", "clip_observation"))
        < 0.01
    )
    manifest = json.loads(next((tmp_path / "new" / "checkpoints").glob("step_*/manifest.json")).read_text())
    goal = manifest["obs_stats"]["goal"]
    assert goal["count"] == 30 * 50  # 30 episodes, as many goals drawn from each as it has transitions
    assert abs(goal["mean"][2] - 0.8 * 0.002) < 2e-4  # relabelled heights 0.002, real ones 0
