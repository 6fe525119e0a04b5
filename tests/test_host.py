"""The host's cadence against a fake engine, every step computed by hand; and the compiled engine's refusal of
non-finite env data (a test env that emits NaN at a known step)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from ddpgx import checkpoint as ckpt
from ddpgx.callbacks import Callback, StopOnNoImprovement, StopOnReward, every
from ddpgx.errors import TrainingDiverged, UserError
from ddpgx.host import Episode, EvalRow, Host, Interrupted, LogColumns, LossRow, Snapshot
from ddpgx.jaxenvs import JaxEnv
from ddpgx.jaxloop import CompiledEngine, Program
from ddpgx.learner import Learner
from ddpgx.logs import read_rows
from ddpgx.presets import preset_config, resolve
from ddpgx.run import RunDir
from ddpgx.train import train
from ddpgx.validate import validate

# the fake engine: 3 env steps an iteration, at most 4 iterations at once; an episode ends every 7 env steps; the
# first update is at step 15; evaluations return what EVALS says for the step
N, CHUNK, EPISODE, FIRST_UPDATE = 3, 4, 7, 15
EVALS = {21: -5.0, 42: -9.0, 48: -2.0}


@dataclass
class FakeEngine:
    losses_at: dict[int, float] = field(default_factory=dict)  # critic loss by step (else 1.0)
    nan_state_from: int | None = None  # the state's critic goes NaN from this step on
    signal_at: int | None = None  # send SIGTERM to this process while advancing to this step
    step: int = 0
    safe: bool = True
    columns: LogColumns = LogColumns()
    untils: list[int] = field(default_factory=list)
    ended: bool = False

    def advance(self, until: int) -> list[Episode]:
        self.untils.append(until)
        before = self.step
        self.step += min(CHUNK, max(1, -(-(until - before) // N))) * N
        if self.signal_at is not None and before < self.signal_at <= self.step:
            os.kill(os.getpid(), signal.SIGTERM)
        ends = range(before // EPISODE + 1, self.step // EPISODE + 1)
        return [Episode(0, k * EPISODE, float(-k), EPISODE) for k in ends]

    def losses(self, interval_s: float) -> list[LossRow | None]:
        if self.step < FIRST_UPDATE:
            return [None]
        cl = self.losses_at.get(self.step, 1.0)
        return [LossRow(cl, 2.0, 3.0)]

    def evaluate(self, step: int) -> list[EvalRow]:
        return [EvalRow(EVALS[step], 0.5)]

    def policy(self, i: int) -> tuple[dict, dict]:
        return {"params": {"w": np.full(2, self.step, np.float32)}}, {
            "params": {"v": np.zeros(1, np.float32)}
        }

    def snapshots(self) -> list[Snapshot]:
        state = {"w": np.full(2, self.step, np.float32)}
        if self.nan_state_from is not None and self.step >= self.nan_state_from:
            state["critic"] = {"params": {"v": np.array([1.0, np.nan], np.float32)}}
        return [
            Snapshot(state, {"x": np.arange(self.step, dtype=np.float32)}, {"fake": True}, {"metrics": None})
        ]

    def end_episodes(self) -> None:
        self.ended = True


def host_for(tmp_path, engine: FakeEngine, stop=None, **over) -> Host:
    cfg = preset_config("pendulum", "Pendulum-v1", total_steps=48, log_every=10, eval_every=20,
                        checkpoint_every=25, run_dir=str(tmp_path / "run"), progress=False, tensorboard=False,
                        plot=False, **over)  # fmt: skip
    cfg = validate(resolve(cfg))
    run = RunDir(cfg, resume=False)
    run.open({"config": {}})
    return Host(cfg, engine, [run], [None], run.path, stop)


def manifest(run_dir, name: str | None = None) -> dict:
    name = name or ckpt.latest_name(run_dir)
    return json.loads((run_dir / "checkpoints" / name / "manifest.json").read_text())


def test_the_host_logs_evaluates_and_checkpoints_at_the_steps_computed_by_hand(tmp_path):
    engine = FakeEngine()
    res = host_for(tmp_path, engine).run()
    run = tmp_path / "run"
    # step 0 -> until min(log 10, eval 20, total 48, checkpoint 25) = 10: 4 iterations -> 12; then until 20: 3 -> 21;
    # until 25 -> 27 (checkpoint, next at 50); until 30 -> 30; until 40 -> 42; until 48 -> 48 (the end)
    assert engine.untils == [10, 20, 25, 30, 40, 48]
    assert [int(r["step"]) for r in read_rows(run / "train.csv")] == [21, 30, 42]  # 12: no update yet
    assert [int(r["step"]) for r in read_rows(run / "eval.csv")] == [21, 42, 48]
    eps = read_rows(run / "episodes.csv")
    assert [int(r["step"]) for r in eps] == [7, 14, 21, 28, 35, 42] and eps[-1]["episode"] == "6"
    assert sorted(p.name for p in (run / "checkpoints").iterdir() if p.is_dir()) == [
        "step_000000000027", "step_000000000048"]  # fmt: skip
    first = manifest(run, "step_000000000027")
    assert first["finished"] is None and first["fake"] is True and first["counters"]["next_checkpoint"] == 50
    last = manifest(run)
    assert last["finished"] == "total_steps" and last["counters"]["best"] == [48, -2.0]
    assert last["counters"]["last_eval"] == [-2.0, 0.5] and last["counters"]["episode"] == 6
    assert engine.ended and res.steps == 48 and res.final_eval_mean == -2.0 and res.final_eval_std == 0.5
    # best.msgpack: the policy of step 48's evaluation (better than step 21's); final.msgpack the same
    for name in ("best.msgpack", "final.msgpack"):
        payload = serialization.msgpack_restore((run / name).read_bytes())
        assert payload["step"] == 48 and payload["actor"]["params"]["w"].tolist() == [48.0, 48.0]


def test_a_target_reached_at_the_last_evaluation_marks_the_run_finished_by_its_target(tmp_path):
    host_for(tmp_path, FakeEngine(), target_return=-3.0).run()
    assert manifest(tmp_path / "run")["finished"] == "target_return"


def test_a_target_reached_early_stops_the_run_there(tmp_path):
    engine = FakeEngine()
    res = host_for(tmp_path, engine, target_return=-6.0).run()
    assert res.steps == 21 and manifest(tmp_path / "run")["finished"] == "target_return"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_nan_or_inf_loss_stops_with_one_line_naming_the_step_the_checkpoint_and_the_best_policy(
    tmp_path, bad
):
    engine = FakeEngine(losses_at={30: bad})
    with pytest.raises(TrainingDiverged) as e:
        host_for(tmp_path, engine).run()
    msg = str(e.value)
    assert "\n" not in msg
    assert f"critic loss became {bad} by step 30" in msg
    run = tmp_path / "run"
    # a resume replays the same steps bitwise: it is not offered as the cure for a divergence
    assert (
        f"its last checkpoint (step_000000000027) is kept, but ddpgx train --resume {run} replays the same steps "
        "and stops here again unless its cause (the env's code) was changed" in msg
    )
    assert "best.msgpack keeps the best policy (step 21)" in msg
    assert (run / "best.msgpack").is_file() and not (run / "final.msgpack").exists()
    assert ckpt.latest_name(run) == "step_000000000027"


@pytest.mark.parametrize("nan_from,kept", [(27, None), (40, "step_000000000027")])
def test_a_state_gone_nan_between_log_rows_is_never_checkpointed_and_the_last_good_one_is_named(
    tmp_path, nan_from, kept
):
    # log rows at 21, 30, 42 see finite losses; the checkpoint at 27 (or the final one at 48) would hold a NaN critic
    engine = FakeEngine(nan_state_from=nan_from)
    with pytest.raises(TrainingDiverged) as e:
        host_for(tmp_path, engine).run()
    msg, run = str(e.value), tmp_path / "run"
    step = 27 if kept is None else 48
    assert f"the training state's critic went NaN or inf by step {step}, so it was not checkpointed" in msg
    assert ckpt.latest_name(run) == kept
    if kept is None:
        assert "no checkpoint was taken yet" in msg and not list((run / "checkpoints").glob("step_*"))
    else:
        assert (
            f"its last checkpoint ({kept}) is kept, but ddpgx train --resume {run} replays the same steps"
            in msg
        )
    assert not (run / "final.msgpack").exists()


def test_sigterm_checkpoints_where_the_engine_is_safe_then_raises_with_the_signal(tmp_path):
    engine = FakeEngine(signal_at=21)
    with pytest.raises(Interrupted) as e:
        host_for(tmp_path, engine).run()
    assert e.value.signum == signal.SIGTERM and 128 + e.value.signum == 143 and e.value.step == 21
    assert ckpt.latest_name(tmp_path / "run") == "step_000000000021"
    assert manifest(tmp_path / "run")["finished"] is None


def test_a_stop_asked_where_the_engine_is_not_safe_waits_for_a_safe_step(tmp_path):
    class OnlyAtEpisodeEnds(
        FakeEngine
    ):  # as the Python engine with one env: safe where an episode just ended
        def advance(self, until: int) -> list[Episode]:
            eps = super().advance(until)
            self.safe = self.step % EPISODE == 0
            return eps

    engine = OnlyAtEpisodeEnds()
    with pytest.raises(Interrupted) as e:  # asked from step 12 on: 12 is not safe, 21 is
        host_for(tmp_path, engine, stop=lambda: engine.step >= 12).run()
    assert e.value.signum == 0 and e.value.step == 21
    assert ckpt.latest_name(tmp_path / "run") == "step_000000000021"


# ------------------------------------------------------------------------------------------ non-finite env data

BAD_STEP = 6  # the env's 6th step returns a NaN observation


def nan_env() -> JaxEnv:
    """A 1-d env whose observation is the step count (reward -obs), NaN on its BAD_STEP-th step; 50-step episodes."""

    def reset(key):
        return jnp.zeros((1,), jnp.float32), jnp.int32(0)

    def step(key, t, action):
        t = t + 1
        obs = jnp.where(t == BAD_STEP, jnp.nan, t.astype(jnp.float32))[None]
        trunc = t >= 50
        return obs, jnp.where(trunc, 0, t), -obs[0], jnp.bool_(False), trunc, obs

    return JaxEnv("test:Nan", reset, step, 1, 1, np.array([-1.0]), np.array([1.0]), 50)


def test_the_compiled_engine_keeps_non_finite_rows_out_of_the_ring_and_names_the_step():
    cfg = validate(resolve(preset_config("pendulum", "gymnax:Pendulum-v1", total_steps=100, learning_starts=20,
                                         batch_size=4, buffer_size=64, chunk_steps=10)))  # fmt: skip
    jenv = nan_env()
    program = Program(cfg, jenv, Learner(cfg, 1, 1))
    carry = jax.tree_util.tree_map(lambda x: x[None], program.init(0))
    engine = CompiledEngine(cfg, program, carry, [0], 0)
    with pytest.raises(TrainingDiverged) as e:
        engine.advance(10)
    assert str(e.value) == (
        f"the environment returned a NaN or inf observation/reward at step {BAD_STEP}; check the env or its wrappers"
    )
    ring = engine.carry.ring
    # the rows of steps 1-5 and 8-10 are stored (step 7's row starts from the NaN observation, step 6's ends in it)
    assert int(ring.size[0]) == 8 and int(ring.ptr[0]) == 8
    filled = {k: np.asarray(getattr(ring, k))[0, :8] for k in ("obs", "reward", "next_obs")}
    assert all(np.isfinite(v).all() for v in filled.values())
    assert filled["next_obs"][:, 0].tolist() == [1, 2, 3, 4, 5, 8, 9, 10]


# ------------------------------------------------------------------------------------------ callbacks


class Recorder(Callback):
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def on_step(self, step, info):
        self.calls.append(("step", step, "critic_loss" in info))

    def on_episode(self, row):
        self.calls.append(("episode", row["step"], row["return"]))

    def on_eval(self, step, row):
        self.calls.append(("eval", step, row["mean_return"]))

    def on_checkpoint(self, step, path):
        self.calls.append(("checkpoint", step, path.name))


def test_callbacks_are_called_at_the_steps_computed_by_hand(tmp_path):
    rec = Recorder()
    host = host_for(tmp_path, FakeEngine())
    host.callbacks = [rec]
    host.run()
    kind = lambda k: [c[1:] for c in rec.calls if c[0] == k]  # noqa: E731
    assert kind("step") == [
        (12, False),
        (21, True),
        (30, True),
        (42, True),
    ]  # log rows; losses from step 15 on
    assert kind("episode") == [(7 * k, float(-k)) for k in range(1, 7)]
    assert kind("eval") == [(21, -5.0), (42, -9.0), (48, -2.0)]
    assert kind("checkpoint") == [(27, "step_000000000027"), (48, "step_000000000048")]


def test_a_callback_returning_false_checkpoints_and_stops_as_the_stop_file_does(tmp_path):
    class StopAt21(Callback):
        def on_eval(self, step, row):
            return step < 21

    host = host_for(tmp_path, FakeEngine())
    host.callbacks = [StopAt21()]
    with pytest.raises(Interrupted) as e:
        host.run()
    assert e.value.step == 21 and e.value.signum == 0
    assert (
        ckpt.latest_name(tmp_path / "run") == "step_000000000021"
        and manifest(tmp_path / "run")["finished"] is None
    )


def test_a_raising_callback_stops_with_one_line_naming_it_and_keeps_the_checkpoint(tmp_path):
    class Boom(Callback):
        def on_eval(self, step, row):
            if step == 42:
                raise RuntimeError("no\nmore")

    host = host_for(tmp_path, FakeEngine())
    host.callbacks = [Boom()]
    with pytest.raises(UserError) as e:
        host.run()
    run = tmp_path / "run"
    assert str(e.value) == (
        "callback Boom.on_eval raised RuntimeError: no; the run stopped: its last checkpoint (step_000000000027) "
        f"continues with: ddpgx train --resume {run}; best.msgpack keeps the best policy (step 21)"
    )
    assert ckpt.latest_name(run) == "step_000000000027"
    assert isinstance(
        e.value.__cause__, RuntimeError
    )  # in Python the callback's own traceback stays attached


def test_a_callback_the_host_would_never_call_is_refused_before_the_run(tmp_path):
    from ddpgx.callbacks import as_list

    with pytest.raises(TypeError, match="StopOnReward is a class: pass an instance"):
        as_list(StopOnReward)
    with pytest.raises(TypeError, match="a function has none of the hooks .* every\\(n, fn\\)"):
        as_list(lambda locals_, globals_: True)  # SB3's function callbacks

    class Typo:
        def on_evaluation(self, step, row):  # not a hook: it would never be called
            return False

    with pytest.raises(TypeError, match="callback Typo has none of the hooks on_step, on_episode"):
        as_list([Callback(), Typo()])
    assert len(as_list([Callback(), every(10, print)])) == 2
    cfg = preset_config("pendulum", "Pendulum-v1", run_dir=str(tmp_path / "never"))
    with pytest.raises(TypeError, match="pass a callback by name"):
        train(cfg, False, StopOnReward(0.0))  # a callback in stop's place
    assert not (tmp_path / "never").exists()


def test_the_shipped_callbacks_stop_on_reward_on_no_improvement_and_call_every_n_steps(tmp_path):
    seen: list[int] = []
    host = host_for(tmp_path / "a", FakeEngine())
    host.callbacks = [every(20, seen.append)]
    host.run()
    assert seen == [21, 42]  # the first log rows at or after 20 and 40
    no_better = StopOnNoImprovement(patience=1)  # evals -5, -9 (no better: stop), ...
    host = host_for(tmp_path / "b", FakeEngine())
    host.callbacks = [no_better]
    with pytest.raises(Interrupted) as e:
        host.run()
    assert e.value.step == 42 and no_better.stopped_at == 42
    reward = StopOnReward(
        -2.5
    )  # only step 48's -2.0 reaches it: the run's last evaluation, so the run just ends
    host = host_for(tmp_path / "c", FakeEngine())
    host.callbacks = [reward]
    assert host.run().steps == 48 and reward.stopped_at == 48
    reward = StopOnReward(-6.0)
    host = host_for(tmp_path / "d", FakeEngine())
    host.callbacks = [reward]
    with pytest.raises(Interrupted) as e:
        host.run()
    assert e.value.step == 21 and reward.stopped_at == 21


def test_the_stop_callbacks_judge_each_seed_of_a_group_on_its_own_and_stop_when_all_qualify():
    """The host calls on_eval once per seed, the rows carrying seed and seeds; one shared best (or one seed
    reaching the threshold) must not stop the others."""

    def feed(cb, evals):  # evals: per step, each seed's mean return; the answers in call order
        return [
            cb.on_eval(step, {"mean_return": r, "seed": s, "seeds": len(rets)})
            for step, rets in evals
            for s, r in enumerate(rets)
        ]

    improving = [(1000, [-900.0, -1200.0, -1500.0]), (2000, [-700.0, -1000.0, -1300.0])]
    cb = StopOnNoImprovement(patience=2)
    assert False not in feed(cb, improving) and cb.stopped_at is None  # each seed improves: no stop
    cb = StopOnNoImprovement(patience=1)
    answers = feed(cb, [*improving, (3000, [-800.0, -900.0, -1400.0]), (4000, [-750.0, -950.0, -1350.0])])
    # seeds 0 and 2 ran out of patience at 3000; seed 1 improved there (-900), so the group stops only at 4000, on
    # seed 1's row (the 11th answer), when it too has not improved
    assert answers.index(False) == 10 and cb.stopped_at == 4000
    cb = StopOnReward(-1000.0)
    answers = feed(cb, [(1000, [-900.0, -1200.0, -1500.0]), (2000, [-950.0, -990.0, -1100.0]),
                        (3000, [-1200.0, -1300.0, -999.0])])  # fmt: skip
    assert answers.index(False) == 8 and cb.stopped_at == 3000  # seeds 0, 1, 2 reached it by 1000, 2000, 3000
    one = StopOnReward(-1000.0)
    assert one.on_eval(1000, {"mean_return": -999.0}) is False  # a single run: as before
    with pytest.raises(ValueError, match="mean_return"):
        StopOnReward(-200.0, metric="mean_reward")  # SB3's word would never match a row: refused


def test_a_resume_checkpoints_next_by_its_own_checkpoint_every_from_the_checkpoint_s_step(tmp_path):
    from ddpgx.host import Counters, counters_of

    cfg = preset_config("pendulum", "Pendulum-v1", checkpoint_every=25)
    # a run that ended at 50 kept the next checkpoint it had (50) in its final checkpoint: an extension
    # checkpointed at once
    final = dataclasses.asdict(Counters(step=50, next_checkpoint=50))
    loaded = ckpt.Loaded(tmp_path, {"counters": final}, {}, {}, [])
    assert counters_of(loaded, cfg).next_checkpoint == 75  # was 50
    assert counters_of(loaded, cfg.replace(checkpoint_every=100)).next_checkpoint == 100
    assert counters_of(loaded, cfg.replace(checkpoint_every=10)).next_checkpoint == 60
    mid = dataclasses.asdict(
        Counters(step=27, next_checkpoint=50)
    )  # a checkpoint mid-run: the same as before
    assert counters_of(ckpt.Loaded(tmp_path, {"counters": mid}, {}, {}, []), cfg).next_checkpoint == 50
    assert counters_of(None, cfg).next_checkpoint == 25


def test_a_seed_groups_plain_progress_line_shows_all_steps_per_second_and_one_runs_eta(tmp_path, capsys):
    from ddpgx.logs import RunLogger

    lg = RunLogger(tmp_path, 100_000, 0, False, False)  # not a TTY: the plain line on stderr
    lg.plain = True
    lg.tick(10_000, 100.0, runs=4)  # 4 seeds at 100 env steps/s each, every one at step 10,000 of 100,000
    line = capsys.readouterr().err
    lg.close()
    assert "400 steps/s" in line  # all the seeds' steps
    assert "ETA 15.0 min" in line  # 90,000 steps to go at one seed's 100/s, not at the sum's 400/s (3.8 min)


def test_a_seed_groups_progress_shows_the_seeds_means_without_writing_them_into_the_first_seeds_state(
    tmp_path, capsys
):
    import types

    from ddpgx.logs import RunLogger

    for i in range(2):
        (tmp_path / f"s{i}").mkdir()
    loggers = [RunLogger(tmp_path / f"s{i}", 1000, 0, False, False) for i in range(2)]
    for lg, (ret, ev, length) in zip(loggers, [(-100.0, -200.0, 50.0), (-300.0, -400.0, 150.0)], strict=True):
        lg.plain = True
        lg.last_return, lg.last_eval, lg.last_length = ret, ev, length
    Host._tick(types.SimpleNamespace(loggers=loggers, sps=10.0), 500)
    line = capsys.readouterr().err
    assert "20 steps/s" in line and "return   -200.0" in line and "eval   -300.0 (length 100)" in line
    # seed 0's own values (its checkpoint's counters take last_return from here) are untouched
    assert (loggers[0].last_return, loggers[0].last_eval, loggers[0].last_length) == (-100.0, -200.0, 50.0)
    for lg in loggers:
        lg.close()
