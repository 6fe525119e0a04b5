"""The object API (ddpgx.DDPG) over train, the run directory and load_policy, and callbacks on a real run."""

from __future__ import annotations

import csv

import gymnasium as gym
import numpy as np
import pytest

from ddpgx import DDPG, Callback, load_policy, preset_config, train
from ddpgx.cli import main
from ddpgx.errors import UserError

FAST = dict(eval_every=1000, eval_episodes=2, progress=False, tensorboard=False, plot=False)


def rows(path) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in csv.DictReader(open(path))]


def assert_same_run(a, b) -> None:
    assert (a / "final.msgpack").read_bytes() == (b / "final.msgpack").read_bytes()
    for name in ("episodes.csv", "eval.csv"):
        assert rows(a / name) == rows(b / name), name


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted 6000-step run."""
    run = tmp_path_factory.mktemp("api") / "ref"
    train(preset_config("pendulum", "Pendulum-v1", total_steps=6000, run_dir=str(run), **FAST))
    return run


@pytest.mark.slow
def test_learn_twice_is_bitwise_one_run_and_predict_save_load_agree(tmp_path, reference):
    model = DDPG("Pendulum-v1", preset="pendulum", run_dir=tmp_path / "m", **FAST)
    assert model.learn(3000) is model and model.config.total_steps == 3000
    model.learn(6000)  # continues the same run, as --resume --total-steps 6000 does
    assert_same_run(reference, model.run_dir)
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    action, state = model.predict(obs)
    assert state is None and action.shape == (5, 1)
    np.testing.assert_array_equal(action, load_policy(model.run_dir)(obs))
    np.testing.assert_array_equal(model.predict(obs[0])[0], action[0])
    path = model.save(tmp_path / "saved" / "pendulum.msgpack")
    loaded = DDPG.load(path)
    np.testing.assert_array_equal(loaded.predict(obs)[0], action)
    np.testing.assert_array_equal(load_policy(path)(obs), action)  # load_policy reads the saved file too
    assert loaded.config.env == "Pendulum-v1" and loaded.config.preset == "pendulum"
    with pytest.raises(UserError, match="deterministic"):
        model.predict(obs, deterministic=False)
    # actions in the env's dtype, inside its action space (float64 bounds made float64 actions)
    assert action.dtype == np.float32 and loaded.predict(obs)[0].dtype == np.float32
    assert gym.make("Pendulum-v1").action_space.contains(model.predict(obs[0])[0])
    # a model loaded from a policy file holds that policy only: learn refuses (it trained a new network from
    # step 0 when the run's directory was not there), save writes the loaded policy, 'best' needs the run
    with pytest.raises(UserError, match="holds a policy only .* DDPG.load\\(RUN_DIR\\).learn"):
        loaded.learn(7000)
    assert loaded.save(tmp_path / "again.msgpack").read_bytes() == path.read_bytes()
    model.run_dir.rename(tmp_path / "moved")
    with pytest.raises(UserError, match="holds one policy; the 'best' one is in its run directory"):
        DDPG.load(path).policy("best")
    np.testing.assert_array_equal(DDPG.load(tmp_path / "moved").predict(obs)[0], action)


@pytest.mark.slow
def test_a_callback_that_returns_false_stops_learn_at_a_checkpoint_and_learn_continues_bitwise(
    tmp_path, reference
):
    class StopAfterFirstEval(Callback):
        def __init__(self) -> None:
            self.evals: list[int] = []

        def on_eval(self, step, row):
            self.evals.append(step)
            return False

    cb = StopAfterFirstEval()
    model = DDPG("Pendulum-v1", preset="pendulum", run_dir=tmp_path / "m", **FAST)
    model.learn(6000, callback=cb)  # returns: the run stopped at the first episode end after step 1000
    assert cb.evals == [1000]
    steps = [int(r["step"]) for r in csv.DictReader(open(model.run_dir / "episodes.csv"))]
    assert steps[-1] == 1000 and not (model.run_dir / "final.msgpack").exists()  # an episode ends at 1000
    # a stopped run saves the policy predict uses (its checkpoint's), and the saved file acts the same
    obs = np.random.default_rng(1).uniform(-1, 1, size=(4, 3)).astype(np.float32)
    saved = DDPG.load(model.save(tmp_path / "stopped.msgpack"))
    np.testing.assert_array_equal(saved.predict(obs)[0], model.predict(obs)[0])
    assert saved.policy().step == 1000
    model.learn(6000)
    assert_same_run(reference, model.run_dir)


@pytest.mark.slow
def test_an_env_instance_with_a_wrapper_and_a_lambda_train(tmp_path):
    env = gym.wrappers.TransformReward(gym.make("Pendulum-v1"), lambda r: r / 10.0)
    model = DDPG(env, preset="pendulum", run_dir=tmp_path / "inst", **FAST)
    assert model.config.env.startswith("ddpgx-object/PendulumEnv")
    model.learn(1500)
    returns = [float(r["return"]) for r in csv.DictReader(open(model.run_dir / "episodes.csv"))]
    assert returns and all(
        -170.0 < r < 0.0 for r in returns
    )  # a tenth of Pendulum's -1700..0: the wrapper ran
    model = DDPG(lambda: gym.make("Pendulum-v1"), preset="pendulum", run_dir=tmp_path / "fn", **FAST)
    model.learn(1500)
    assert model.predict(np.zeros(3, np.float32))[0].shape == (1,)


def test_models_made_together_get_their_own_run_directories_and_an_env_objects_default_preset(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    a, b = (DDPG("Pendulum-v1", preset="pendulum", **FAST) for _ in range(2))  # the same second
    assert a.run_dir != b.run_dir and str(b.run_dir) == f"{a.run_dir}-2"
    (tmp_path / f"{a.run_dir}-3").mkdir(parents=True)  # a directory already on disk is not handed out either
    c = DDPG("Pendulum-v1", preset="pendulum", **FAST)
    assert c.run_dir.name != f"{a.run_dir.name}-3" and c.run_dir != b.run_dir
    # an env passed as an object gets its id's default preset, as the id would
    assert DDPG(gym.make("Pendulum-v1"), **FAST).config.preset == "pendulum"
    assert DDPG(gym.make("Hopper-v5"), **FAST).config.preset == "crossq256"
    assert DDPG(gym.make("MountainCarContinuous-v0"), **FAST).config.preset == "modern"
    # a factory is not called before learn (it may be costly, or hand out one shared env): an unknown id's default
    made = []
    factory = DDPG(lambda: made.append(1) or gym.make("Hopper-v5"), **FAST)
    assert factory.config.preset == "modern" and not made
    with pytest.raises(UserError, match="num_seeds=S"):
        DDPG("gymnax:Pendulum-v1", preset="pendulum", num_seeds=2)


@pytest.mark.slow
def test_learn_continues_a_run_stopped_before_its_first_checkpoint(tmp_path):
    class Boom(Callback):
        def on_episode(self, row):
            raise RuntimeError("bug in my callback")

    model = DDPG("Pendulum-v1", preset="pendulum", run_dir=tmp_path / "r", **FAST)
    with pytest.raises(UserError, match="no checkpoint was taken yet: the run in .* starts over"):
        model.learn(1000, callback=Boom())
    assert (model.run_dir / "config.json").is_file()  # the run's directory, with no checkpoint in it
    model.learn(1000)  # starts it over, as the line said (it was refused as 'already exists')
    assert (model.run_dir / "final.msgpack").is_file()
    assert [int(r["step"]) for r in csv.DictReader(open(model.run_dir / "eval.csv"))] == [1000]


def test_an_env_object_is_refused_in_one_line_where_it_cannot_be_rebuilt(tmp_path, capsys):
    env = gym.make("Pendulum-v1")
    model = DDPG(env, preset="pendulum", run_dir=tmp_path / "a", num_envs=2, vector="async", **FAST)
    with pytest.raises(UserError, match=r"--vector async \(each env made in a subprocess\) needs an env id"):
        model.learn(1000)
    assert not (tmp_path / "a").exists()
    # a run directory made in another process with an env object: eval and --resume cannot rebuild it
    code = main(
        ["train", "--env", "ddpgx-object/Gone1-v0", "--total-steps", "1000", "--run-dir", str(tmp_path / "b")]
    )
    err = capsys.readouterr().err
    assert (
        code == 2
        and err.count("\n") == 1
        and "was an env object given to DDPG(...) in another process" in err
    )
    with pytest.raises(UserError, match="takes an env id, a gymnasium.Env instance or a factory"):
        DDPG(42)
