"""DDPG + HER: relabelling on hand-made episodes, learning a small goal env, exact resume, and the goal-env errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import goal_envs
import numpy as np
import pytest
from killing import kill_after_first_checkpoint, resume

from ddpgx import load_policy, preset_config, train
from ddpgx.cli import main
from ddpgx.goals import GoalLayout
from ddpgx.her import HerBuffer, future_p

TESTS = Path(__file__).parent


def point_reward(achieved, desired):
    return goal_envs.PointGoal.compute_reward(None, achieved, desired, {})


def filled_buffer(k: int, strategy: str = "future", seed: int = 0) -> HerBuffer:
    """Episodes 1, 2 and 3 of lengths 10, 7 and 4 (the last cut short by a termination): step j of episode e
    achieves the goal (10 e + 0.05 j, 0), so every achieved goal names its episode and step; desired goals are
    (-e, -e), and stored rewards -(e + j) / 100, which no compute_reward gives."""
    buf = HerBuffer(1_000, 10, GoalLayout(2, 2), 1, point_reward, her_k=k, strategy=strategy, seed=seed)

    def flat(e: int, step: int) -> np.ndarray:  # [observation | achieved | desired]
        g = [10 * e + 0.05 * step, 0.0]
        return np.array([*g, *g, -e, -e], np.float32)

    for e, length in ((1, 10), (2, 7), (3, 4)):
        for j in range(length):
            end = j == length - 1
            buf.add(flat(e, j), np.zeros(1), -(e + j) / 100, flat(e, j + 1), e == 3 and end, end)
    return buf


@pytest.mark.parametrize("strategy", ["future", "final", "episode"])
def test_relabelled_goals_come_from_the_same_episode_at_the_right_steps(strategy):
    buf = filled_buffer(4, strategy)
    ep, t = buf.sample_transitions(20_000)
    goals, relabel = buf.relabel_goals(ep, t)
    episode_of = {0: 1, 1: 2, 2: 3}
    length = {1: 10, 2: 7, 3: 4}
    for i in np.flatnonzero(relabel):
        e = episode_of[int(ep[i])]
        src_e = int(goals[i, 0] // 10)
        j = int(round((goals[i, 0] - 10 * src_e) / 0.05))
        assert src_e == e and goals[i, 1] == 0.0, "a goal from another episode"
        if strategy == "future":
            assert t[i] + 1 <= j <= length[e]
        elif strategy == "final":
            assert j == length[e]
        else:
            assert 1 <= j <= length[e]
    keep = ~relabel
    np.testing.assert_array_equal(
        goals[keep], -np.array([[episode_of[int(x)]] * 2 for x in ep[keep]], np.float32)
    )
    # the relabelled fraction is future_p = 1 - 1/(1 + 4) = 0.8, within 4 standard errors
    se = np.sqrt(0.8 * 0.2 / len(ep))
    assert abs(relabel.mean() - future_p(4)) < 4 * se and future_p(4) == pytest.approx(0.8)
    # transitions are drawn uniformly: episode 1 holds 10 of the 21
    assert abs(np.mean(ep == 0) - 10 / 21) < 4 * np.sqrt((10 / 21) * (11 / 21) / len(ep))


def test_relabelled_rewards_are_compute_reward_on_the_new_goals_and_the_others_keep_their_stored_reward():
    buf = filled_buffer(4)
    ep, t = buf.sample_transitions(5_000)
    rng_state = buf.rng.bit_generator.state
    b = buf.gather(ep, t)
    buf.rng.bit_generator.state = rng_state
    goals, relabel = buf.relabel_goals(ep, t)
    np.testing.assert_array_equal(b.obs[:, 4:], goals)
    np.testing.assert_array_equal(b.next_obs[:, 4:], goals)  # the same goal on both sides of the transition
    achieved_next = b.next_obs[:, 2:4]
    np.testing.assert_array_equal(b.reward[relabel], point_reward(achieved_next[relabel], goals[relabel]))
    assert (b.reward[relabel] == 0).any() and (b.reward[relabel] == -1).any()  # both outcomes occur
    stored = -(np.array([1, 2, 3])[ep] + t) / 100
    np.testing.assert_allclose(b.reward[~relabel], stored[~relabel].astype(np.float32))
    # episode 3 ended in a termination: its last transition does not bootstrap; time limits do
    assert set(b.terminated[(ep == 2) & (t == 3)]) == {1.0} and b.terminated[ep != 2].max() == 0.0
    # no relabelling at all (her_k 0): every stored reward and goal comes back unchanged
    plain = filled_buffer(0)
    ep, t = plain.sample_transitions(2_000)
    b = plain.gather(ep, t)
    np.testing.assert_allclose(b.reward, (-(np.array([1, 2, 3])[ep] + t) / 100).astype(np.float32))
    np.testing.assert_array_equal(b.obs[:, 4], -np.array([1, 2, 3], np.float32)[ep])


def her_cfg(run_dir: Path, **over):
    return preset_config(
        "her", "goal_envs:PointGoal-v0", actor_hidden=(64, 64), critic_hidden=(64, 64), buffer_size=50_000,
        eval_every=1_000, eval_episodes=20, run_dir=str(run_dir), progress=False, plot=False, tensorboard=False,
        **{"total_steps": 4_000, **over},
    )  # fmt: skip


@pytest.mark.slow
def test_her_learns_a_sparse_goal_env_that_plain_replay_does_not(tmp_path):
    her = train(her_cfg(tmp_path / "her"))
    rows = list(csv.DictReader(open(tmp_path / "her" / "eval.csv")))
    assert float(rows[-1]["success"]) >= 0.8, rows
    train(her_cfg(tmp_path / "k0", her_k=0))
    rows0 = list(csv.DictReader(open(tmp_path / "k0" / "eval.csv")))
    assert float(rows0[-1]["success"]) <= 0.4, rows0
    assert her.final_eval_mean > -20 > float(rows0[-1]["mean_return"])
    # episodes.csv logs each episode's success; load_policy takes the env's Dict observation as it is
    ep_rows = list(csv.DictReader(open(tmp_path / "her" / "episodes.csv")))
    assert {r["success"] for r in ep_rows} <= {"0", "1", "0.0", "1.0"} and len(ep_rows) == 80
    policy = load_policy(tmp_path / "her")
    env = goal_envs.PointGoal()
    obs, _ = env.reset(seed=3)
    for _ in range(50):
        obs, r, *_ = env.step(policy(obs))
        if r == 0:
            break
    assert r == 0, "the loaded policy reaches the goal"


@pytest.mark.slow
def test_a_her_run_killed_and_resumed_is_bitwise_the_uninterrupted_run(tmp_path):
    flags = ["--env", "goal_envs:PointGoal-v0", "--preset", "her", "--actor-hidden", "32", "32", "--critic-hidden",
             "32", "32", "--total-steps", "3000", "--buffer-size", "2000", "--eval-every", "1000",
             "--eval-episodes", "5", "--checkpoint-every", "500", "--no-progress", "--no-plot", "--no-tensorboard"]  # fmt: skip
    ref = tmp_path / "ref"
    assert main(["train", *flags, "--run-dir", str(ref)]) == 0
    run = tmp_path / "killed"
    kill_after_first_checkpoint(flags, run, jitter=1.5)
    manifest = json.loads(
        (
            run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip() / "manifest.json"
        ).read_text()
    )
    assert "obs_stats" in manifest  # the normalizer is in the checkpoint, beside the episodes of the replay
    assert (
        "goal" in manifest["obs_stats"] and "goal_stats" in manifest["rng"]
    )  # the her preset's relabelled goals
    r = resume(run)
    assert r.returncode == 0, r.stderr
    assert (ref / "final.msgpack").read_bytes() == (run / "final.msgpack").read_bytes()
    assert (ref / "best.msgpack").read_bytes() == (
        run / "best.msgpack"
    ).read_bytes()  # the same best, same step
    for name in ("episodes.csv", "eval.csv", "train.csv"):  # train.csv: losses and clip shares, not speeds
        strip = lambda p: [  # noqa: E731
            {k: v for k, v in row.items() if k not in ("wall_s", "sps")} for row in csv.DictReader(open(p))
        ]  # noqa: E731
        assert strip(ref / name) == strip(run / name), name


@pytest.mark.slow
def test_a_goal_env_run_stops_once_its_eval_success_reaches_target_success(tmp_path, capsys):
    res = train(her_cfg(tmp_path / "r", total_steps=20_000, target_success=0.5))
    rows = list(csv.DictReader(open(tmp_path / "r" / "eval.csv")))
    assert res.steps < 20_000 and res.steps == int(rows[-1]["step"])
    assert float(rows[-1]["success"]) >= 0.5 and all(float(r["success"]) < 0.5 for r in rows[:-1])
    assert main(["train", "--resume", str(tmp_path / "r"), "--total-steps", "30000"]) == 2
    err = capsys.readouterr().err
    assert f"stopped at step {res.steps} on reaching its --target-success" in err and err.count("\n") == 1, (
        err
    )


BAD = [
    (
        ["--env-kwargs", "keys=other"],
        "has a Dict observation space with keys ['goal', 'state']; ddpgx takes a Dict",
    ),
    (
        ["--env-kwargs", "compute_reward=false"],
        "without a compute_reward(achieved_goal, desired_goal, info) method",
    ),
]


@pytest.mark.parametrize("extra,message", BAD, ids=["other-dict", "no-compute-reward"])
def test_dict_spaces_that_are_not_goal_envs_get_one_line(tmp_path, capsys, extra, message):
    code = main(
        [
            "train",
            "--env",
            "goal_envs:PointGoal-v0",
            *extra,
            "--preset",
            "her",
            "--run-dir",
            str(tmp_path / "r"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "r").exists()


def test_her_on_a_flat_env_is_refused_in_one_line(tmp_path, capsys):
    assert main(["train", "--env", "Pendulum-v1", "--her", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "--her needs a goal env" in err and err.count("\n") == 1


@pytest.mark.skipif(not __import__("importlib").util.find_spec("gymnasium_robotics"), reason="robotics extra")
def test_fetch_envs_are_made_as_goal_envs():
    from ddpgx.envs import make_env
    from ddpgx.goals import goal_layout

    env = make_env("FetchReach-v4")
    assert goal_layout(env) == GoalLayout(10, 3) and env.observation_space.shape == (16,)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (16,) and np.isfinite(obs).all()
