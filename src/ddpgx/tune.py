"""``ddpgx tune``: an Optuna study whose trials are ordinary ddpgx runs, run as Ray tasks.

- Every trial is a run directory (one per seed) under OUT: ``eval``, ``plot``, ``record``, ``export`` and
  ``--resume`` read it like any other run. ``OUT/trials.csv`` lists every trial, its state, value and parameters.
- The study lives in Optuna's RDB storage: by default the SQLite file ``OUT/study.db``; ``--storage
  postgresql://...`` or ``mysql://...`` lets drivers on several machines share one study.
- Each evaluation of a trial's runs (the mean over its seeds) is reported to Optuna; a trial the pruner stops is
  checkpointed at its next episode end (its own stop file, the mechanism sweeps use) and marked pruned.
- The objective is the mean noise-free evaluation return over a trial's last ``objective_evals`` evaluations,
  averaged over its seeds: the last one alone favours a lucky evaluation.
- The fault rules are the sweep's: a killed worker's run is retried and resumes from its checkpoint; Ctrl-C or
  ``touch OUT/.stop`` checkpoints the running trials; the same command continues the study, its unfinished trials
  first (their parameters are in the storage, their progress in their run directories).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import textwrap
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddpgx import worker
from ddpgx.config import Config
from ddpgx.driver import Driver, holder_of
from ddpgx.envs import check_env_id
from ddpgx.errors import UserError, describe, warn
from ddpgx.fieldtypes import parse_field
from ddpgx.grid import read_toml
from ddpgx.livetable import LiveTable
from ddpgx.logs import read_rows
from ddpgx.presets import default_preset, preset_config, resolve
from ddpgx.raynode import import_ray
from ddpgx.run import LOCK_NAME, STOP_FILE, RunLock, RunLocked, load_run_config
from ddpgx.runfiles import atomic_write_bytes
from ddpgx.validate import validate

EXTRA = "pip install 'ddpgx[tune]'"

# rl-baselines3-zoo's TD3/DDPG space (hyperparams_opt.py), in ddpgx's fields. Two names stand for tied fields:
# lr sets actor_lr and critic_lr; train_freq sets update_every and gradient_steps (one gradient step per env step).
DEFAULT_SPACE: dict[str, dict[str, Any]] = {
    "gamma": {"type": "categorical", "choices": [0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999]},
    "batch_size": {"type": "categorical", "choices": [16, 32, 64, 100, 128, 256, 512, 1024, 2048]},
    "lr": {"type": "float", "low": 1e-5, "high": 1.0, "log": True},
    "train_freq": {"type": "categorical", "choices": [1, 4, 8, 16, 32, 64, 128, 256, 512]},
    "tau": {"type": "categorical", "choices": [0.001, 0.005, 0.01, 0.02, 0.05, 0.08]},
    "noise": {"type": "categorical", "choices": ["ou", "gaussian"]},
    "noise_sigma": {"type": "float", "low": 0.0, "high": 1.0},
    "net_arch": {"type": "categorical", "choices": ["small", "medium", "big"]},
}
NET_ARCH = {"small": (64, 64), "medium": (256, 256), "big": (400, 300)}
TIED = ("lr", "train_freq", "net_arch")


@dataclass
class TuneSpec:
    env: str = ""
    preset: str = ""
    trials: int = 20
    total_steps: int = 100_000
    out: str = ""
    space: dict[str, dict[str, Any]] = field(default_factory=dict)
    sampler: str = "tpe"
    pruner: str = "median"
    storage: str = ""
    address: str = ""
    cpus_per_run: float = 1.0
    seeds: list[int] = field(default_factory=lambda: [0])
    eval_every: int = 0  # 0: total_steps / 10
    objective_evals: int = 3
    max_parallel: int = 0
    max_retries: int = 3
    set: dict[str, Any] = field(default_factory=dict)  # fixed Config fields for every trial


def _optuna():
    try:
        import optuna
    except ModuleNotFoundError:
        raise UserError(f"ddpgx tune runs Optuna, which is not installed: {EXTRA}") from None
    import warnings

    # the features ddpgx uses that Optuna still marks experimental print a warning with a source path each time
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def load_space(path: Path) -> dict[str, dict[str, Any]]:
    """A TOML space file: one table per Config field, ``[field] type = "float"|"int"|"categorical"`` with
    ``low``/``high`` (and ``log = true``) or ``choices``."""
    data = read_toml(path)
    data = data.get("space", data)
    check_space(data, str(path))
    return Space(data, source=str(path))


class Space(dict):
    """A search space as ``load_space`` read it: the file it came from names it in messages."""

    def __init__(self, data: dict[str, Any], source: str = "") -> None:
        super().__init__(data)
        self.source = source


def space_name(space: dict[str, Any]) -> str:
    return getattr(space, "source", "") or "the search space"


# the fields a trial's runs get from the tune itself (the flag that sets them): never from --set or the space
TUNE_SETS = {"seed": "--seeds", "run_dir": "--out", "total_steps": "--total-steps", "eval_every": "--eval-every",
             "progress": "--live", "env": "--env", "preset": "--preset"}  # fmt: skip
# the Config fields each tied name of the space sets
TIED_FIELDS = {"lr": ("actor_lr", "critic_lr"), "train_freq": ("update_every", "gradient_steps"),
               "net_arch": ("actor_hidden", "critic_hidden")}  # fmt: skip


def check_space(space: dict[str, Any], where: str) -> None:
    """The space's shape: each entry a Config field (or a tied name) with a known type and its bounds or choices.
    Whether each value is one the field takes is ``check_values``' (it needs the trial's config)."""
    fields = set(typing.get_type_hints(Config)) | set(TIED)
    if not isinstance(space, dict) or not space:
        raise UserError(f"{where}: the search space is empty; give it one [FIELD] table per tuned field")
    for name, d in space.items():
        if name not in fields:
            raise UserError(f"{where}: [{name}] is not a Config field; see `ddpgx presets` for the fields")
        if name in TUNE_SETS:
            raise UserError(
                f"{where}: [{name}] is set by the tune itself ({TUNE_SETS[name]}); take it out of the space"
            )
        if not isinstance(d, dict) or d.get("type") not in ("float", "int", "categorical"):
            raise UserError(f'{where}: [{name}] needs type = "float", "int" or "categorical"')
        if d["type"] == "categorical":
            if not isinstance(d.get("choices"), list) or not d["choices"]:
                raise UserError(f"{where}: [{name}] is categorical and needs choices = [...] (at least one)")
        else:
            lo, hi = d.get("low"), d.get("high")
            num = (int, float) if d["type"] == "float" else (int,)
            numbers = isinstance(lo, num) and isinstance(hi, num) and not isinstance(lo, bool | type(None))
            if not numbers or isinstance(hi, bool) or not lo < hi:
                raise UserError(f"{where}: [{name}] needs numbers low < high (got low={lo!r}, high={hi!r})")
            if d.get("log") and lo <= 0:
                raise UserError(f"{where}: [{name}] has log = true and needs low > 0")


def check_set(fixed: dict[str, Any], space: dict[str, dict[str, Any]]) -> None:
    """A --set field the tune sets itself, or one the space owns (the space would silently override it)."""
    owned = {f: name for name in space for f in TIED_FIELDS.get(name, (name,))}
    for key in fixed:
        if key in TUNE_SETS:
            raise UserError(f"--set {key}: the tune sets {key} itself; use {TUNE_SETS[key]}")
        if key in owned:
            via = (
                ""
                if owned[key] == key
                else f" (through [{owned[key]}], which sets {' and '.join(TIED_FIELDS[owned[key]])})"
            )
            raise UserError(
                f"--set {key}: the search space tunes {key}{via}; drop it from --set, or from the space (--space FILE)"
            )


def space_values(d: dict[str, Any]) -> list[Any]:
    """The values of a space entry that stand for all it may sample: its choices, or its bounds (and, for a float
    range, a value between them, so an int field given a float range is caught)."""
    if d["type"] == "categorical":
        return list(d["choices"])
    if d["type"] == "int":
        return [int(d["low"]), int(d["high"])]
    return [float(d["low"]), (float(d["low"]) + float(d["high"])) / 2, float(d["high"])]


def check_values(spec: TuneSpec, space: dict[str, dict[str, Any]], where: str) -> None:
    """Every value the space may give makes a valid trial with the fixed fields (one line naming the field and the
    value otherwise): a trial that could never run is refused now, not failed one by one."""
    try:
        trial_configs(spec, 0, {})
    except UserError as e:
        raise UserError(f"the trials' fixed fields (--set, --preset) make no valid run: {e}") from None
    for name, d in space.items():
        for v in space_values(d):
            try:
                trial_configs(spec, 0, {name: v})
            except UserError as e:
                what = "choice" if d["type"] == "categorical" else f'type = "{d["type"]}" gives'
                raise UserError(f"{where}: [{name}] {what} {v!r}: {e}") from None


def distributions(space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    optuna = _optuna()
    out = {}
    for name, d in space.items():
        if d["type"] == "categorical":
            out[name] = optuna.distributions.CategoricalDistribution(list(d["choices"]))
        elif d["type"] == "int":
            out[name] = optuna.distributions.IntDistribution(
                int(d["low"]), int(d["high"]), log=bool(d.get("log"))
            )
        else:
            out[name] = optuna.distributions.FloatDistribution(
                float(d["low"]), float(d["high"]), log=bool(d.get("log"))
            )
    return out


def config_values(params: dict[str, Any]) -> dict[str, Any]:
    """A trial's parameters as Config fields (the tied names expanded); a value the field does not take:
    UserError."""
    out: dict[str, Any] = {}
    for name, v in params.items():
        if name == "net_arch":
            if v not in NET_ARCH:
                raise UserError(f"net_arch={v!r} is not valid: net_arch must be one of {', '.join(NET_ARCH)}")
            v = NET_ARCH[v]
        for f in TIED_FIELDS.get(name, (name,)):
            out[f] = parse_field(f, v)
    return out


def make_sampler(name: str, seed: int):
    optuna = _optuna()
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise UserError(f"--sampler must be tpe or random, got {name}")


def make_pruner(name: str):
    optuna = _optuna()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if name == "none":
        return optuna.pruners.NopPruner()
    raise UserError(f"--pruner must be median, halving or none, got {name}")


@dataclass
class TrialRun:
    """One seed's run of a trial, as the live table shows it."""

    name: str
    run_dir: Path
    total_steps: int
    status: str = "running"
    error: str = ""
    started: float = 0.0


@dataclass
class Trial:
    handle: Any  # optuna.trial.Trial
    runs: list[TrialRun]
    results: dict[int, dict[str, Any]] = field(default_factory=dict)  # seed index -> what its task returned
    pruned: bool = False
    reported: set[int] = field(default_factory=set)  # evaluation steps already reported to Optuna

    @property
    def number(self) -> int:
        return self.handle.number

    @property
    def dirs(self) -> list[Path]:
        return [r.run_dir for r in self.runs]

    @property
    def stop_file(self) -> Path:
        return self.runs[0].run_dir.parent / f"trial_{self.number:04d}.stop"

    def mark(self, status: str) -> None:
        for r in self.runs:
            r.status = status


def trial_configs(spec: TuneSpec, number: int, params: dict[str, Any]) -> list:
    """The trial's run configs, one per seed, validated (a parameter set that makes no sensible run: UserError)."""
    out = Path(spec.out).absolute()
    eval_every = spec.eval_every or max(spec.total_steps // 10, 1)
    fixed = {k: v for k, v in spec.set.items()}
    cfgs = []
    for seed in spec.seeds:
        cfg = preset_config(spec.preset, spec.env).replace(
            **{**fixed, **config_values(params)}, total_steps=spec.total_steps, eval_every=eval_every, seed=seed,
            run_dir=str(out / f"trial_{number:04d}__s{seed}"), progress=False,
        )  # fmt: skip
        cfgs.append(validate(resolve(cfg)))
    return cfgs


def eval_rows(run: Path) -> list[tuple[int, float]]:
    """(step, mean return) of each evaluation a run has written whole (none yet: [])."""
    try:
        return [(int(r["step"]), float(r["mean_return"])) for r in read_rows(run / "eval.csv")]
    except (ValueError, KeyError):
        return []


def objective(runs: list[Path], last: int) -> float:
    """Mean over the runs of the mean of each one's last ``last`` evaluations."""
    vals = []
    for r in runs:
        rows = eval_rows(r)
        if not rows:
            raise ValueError(f"{r} has no evaluation")
        vals.append(sum(v for _, v in rows[-last:]) / len(rows[-last:]))
    return sum(vals) / len(vals)


def report_progress(t: Trial) -> None:
    """Report each evaluation step every seed has reached (their mean) once; ask the pruner."""
    per_run = [dict(eval_rows(r)) for r in t.dirs]
    steps = sorted(set.intersection(*(set(d) for d in per_run))) if per_run else []
    for step in steps:
        if step not in t.reported:
            t.handle.report(sum(d[step] for d in per_run) / len(per_run), step)
            t.reported.add(step)
    if steps and not t.pruned and t.handle.should_prune():
        t.pruned = True
        t.stop_file.write_text("pruned\n")


def write_trials_csv(out: Path, study) -> None:
    """OUT/trials.csv: every trial's number, state, objective, parameters, run directories and, for a failed
    trial, its error."""
    trials = study.get_trials(deepcopy=False)
    names = sorted({k for t in trials for k in t.params})
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["number", "state", "value", *names, "runs", "error"])
    for t in trials:
        runs = " ".join(sorted(p.name for p in out.glob(f"trial_{t.number:04d}__s*")))
        vals = ["" if t.params.get(n) is None else str(t.params[n]) for n in names]
        value = "" if t.value is None else f"{t.value:.6g}"
        w.writerow([str(t.number), t.state.name.lower(), value, *vals, runs, t.user_attrs.get("error", "")])
    atomic_write_bytes(out / "trials.csv", buf.getvalue().encode())


def all_failed(study: Any, out: Path | str) -> str:
    """One line when every trial of the study failed (nothing to rank: the caller exits non-zero), naming the
    last failure's error and where to look; empty otherwise."""
    optuna = _optuna()
    trials = study.get_trials(deepcopy=False)
    if not trials or any(t.state != optuna.trial.TrialState.FAIL for t in trials):
        return ""
    last = trials[-1]
    runs = sorted(Path(out).glob(f"trial_{last.number:04d}__s*"))
    where = f"its run directory {runs[0]}" if runs else "it made no run directory"
    error = (str(last.user_attrs.get("error") or "").strip().splitlines() or ["not recorded"])[0]
    n = len(trials)
    return (
        f"all {n} trial{'s' * (n != 1)} of the study failed; trial {last.number} ({where}) failed with: {error}; "
        f"every trial's error is in {Path(out) / 'trials.csv'}"
    )


def run_tune(spec: TuneSpec, pruner: Any = None, live: bool = True) -> Any:
    """Run the study to ``spec.trials`` finished trials (complete, pruned or failed); returns the Optuna study."""
    _optuna()  # not installed: one line first
    if not spec.env or not spec.out:
        missing = " and ".join(f for f, v in (("--env", spec.env), ("--out", spec.out)) if not v)
        raise UserError(f"ddpgx tune needs {missing}: ddpgx tune --env ENV --trials N --out DIR")
    if spec.trials < 1 or spec.total_steps < 1 or spec.objective_evals < 1 or not spec.seeds:
        raise UserError(
            "--trials, --total-steps and --objective-evals must be positive, and --seeds not empty"
        )
    space = spec.space or DEFAULT_SPACE
    check_space(space, space_name(space))
    preset_config(spec.preset, spec.env)  # an unknown preset: one line now
    if ":" not in spec.env:
        check_env_id(spec.env)
    check_set(spec.set, space)
    check_values(spec, space, space_name(space))
    dists = distributions(space)
    import_ray(spec.address, "ddpgx tune")  # not installed: one line, before anything is written
    out = Path(spec.out).absolute()
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is an existing file; a study needs a directory: give another --out")
    created, had_lock = not out.exists(), (out / LOCK_NAME).exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot make the study directory --out {out}: {describe(e)}") from None
    # the lock before the storage is opened: a second driver changes nothing of a study another one runs
    lock = RunLock(out)
    try:
        lock.acquire()
    except RunLocked:
        raise UserError(
            f"--out {out} is being tuned by process {holder_of(out) or '?'}; wait for it or stop it with "
            f"`touch {out / STOP_FILE}` (its trials checkpoint), then run this again"
        ) from None
    try:
        study = open_study(spec, out, pruner)
    except UserError:
        if created:  # nothing of a study that never opened is left behind (removed while the lock is held)
            import shutil

            shutil.rmtree(out, ignore_errors=True)
        elif not had_lock:
            (out / LOCK_NAME).unlink(missing_ok=True)
        lock.release()
        raise
    try:
        return _tune_locked(spec, out, study, dists, live)
    finally:
        lock.release()


def open_study(spec: TuneSpec, out: Path, pruner: Any = None) -> Any:
    optuna = _optuna()
    storage = spec.storage or f"sqlite:///{out / 'study.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(
            study_name="ddpgx", storage=storage, load_if_exists=True, direction="maximize",
            sampler=make_sampler(spec.sampler, spec.seeds[0]), pruner=pruner or make_pruner(spec.pruner),
        )  # fmt: skip
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - a missing driver, an unreachable server, a bad URL: the same fix
        raise UserError(
            f"cannot open the study storage {storage}: {type(e).__name__}: {describe(e)}"
        ) from None
    # A driver that grows or resumes a study seeds its sampler past the trials the study holds: seeded alike, its
    # random start-up trials would repeat trial 0's parameters. A new study keeps the seed of --seeds' first.
    held = len(study.get_trials(deepcopy=False))
    if held:
        study.sampler = make_sampler(spec.sampler, spec.seeds[0] + 7919 * held)
    check_settings(study, spec, storage)
    study.set_user_attr("objective_evals", spec.objective_evals)  # the history plot names the objective
    return study


# what makes trials comparable: a study continued or grown (--trials) must keep them (flag: TuneSpec field)
SETTINGS = {"--env": "env", "--preset": "preset", "--total-steps": "total_steps", "--seeds": "seeds",
            "--set": "set", "--space": "space", "--eval-every": "eval_every", "--objective-evals": "objective_evals"}  # fmt: skip


def check_settings(study: Any, spec: TuneSpec, storage: str) -> None:
    """A study records its settings once; a later driver with other ones is refused in one line (its trials would
    be ranked against trials of another task, or its running trials fail their resume check). A study made before
    settings were recorded adopts the command's."""
    values = {flag: getattr(spec, name) for flag, name in SETTINGS.items()}
    # as the trials use them: the env's default preset by name, the default evaluation cadence in steps
    values.update({"--preset": spec.preset or default_preset(spec.env), "--space": spec.space or DEFAULT_SPACE,
                   "--eval-every": spec.eval_every or max(spec.total_steps // 10, 1)})  # fmt: skip
    mine = json.loads(json.dumps(values, default=str))
    held = study.user_attrs.get("settings")
    if held is None:
        study.set_user_attr("settings", mine)
        return
    changed = [flag for flag in SETTINGS if held.get(flag) != mine[flag]]
    if changed:
        flag = changed[0]
        raise UserError(
            f"the study in {storage} was made with {flag} {held.get(flag)!r}, not {mine[flag]!r}"
            + (f" (and {', '.join(changed[1:])} differ too)" if changed[1:] else "")
            + ": continue it with its own settings (only --trials may grow), or start another study (another --out)"
        )


def _tune_locked(spec: TuneSpec, out: Path, study: Any, dists: dict[str, Any], live: bool) -> Any:
    optuna = _optuna()
    stop_file = out / STOP_FILE
    stop_file.unlink(missing_ok=True)
    limit = spec.max_parallel or max(1, int((os.cpu_count() or 1) // spec.cpus_per_run) // len(spec.seeds))
    # trials a stopped driver of this --out left running come first, with the parameters the storage holds for
    # them; drivers sharing a storage each keep to their own (a trial made before owners were recorded: ours)
    # (the default storage lives in --out: every trial in it is this --out's, however the path was written)
    here, shared = str(out.resolve()), bool(spec.storage)

    def ours(t: Any) -> bool:
        return not shared or t.user_attrs.get("out", here) == here

    resumable = [
        t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.RUNNING and ours(t)
    ]
    running: list[Trial] = []
    shown: list[TrialRun] = []  # every trial run this driver started, for the live table
    driver = Driver(worker.run_task, spec.address, spec.cpus_per_run, 0.0, spec.max_retries, stop_file)

    def launch(handle: Any, params: dict[str, Any], reported: dict[int, float] | None = None) -> None:
        handle.set_user_attr("out", here)  # this driver's trial (its runs live in this --out)
        try:
            cfgs = trial_configs(spec, handle.number, params)
        except (
            UserError
        ) as e:  # a parameter set that makes no sensible run fails as a trial, the study goes on
            handle.set_user_attr("error", str(e))
            study.tell(handle, state=optuna.trial.TrialState.FAIL)
            print(f"trial {handle.number} failed: {e}")
            return
        runs = [
            TrialRun(Path(c.run_dir).name, Path(c.run_dir), c.total_steps, started=time.time()) for c in cfgs
        ]
        t = Trial(handle, runs, reported=set(reported or {}))
        t.stop_file.unlink(missing_ok=True)
        for i, c in enumerate(cfgs):
            driver.submit(dataclasses.asdict(c), (t, i), own_stop=t.stop_file)
        running.append(t)
        shown.extend(runs)

    def settle(t: Trial) -> None:
        """All its runs have returned: tell the study (complete, pruned or failed), or leave it running to resume."""
        failed = [r for r in t.results.values() if r["status"] == "failed"]
        if failed:
            t.runs[0].error = failed[0].get("error", "")
            t.handle.set_user_attr("error", t.runs[0].error)
            study.tell(t.handle, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
            t.mark("failed")
            print(f"trial {t.number} failed: {t.runs[0].error}")
        elif t.pruned:
            study.tell(t.handle, state=optuna.trial.TrialState.PRUNED, skip_if_finished=True)
            t.mark("pruned")
        elif any(r["status"] != "done" for r in t.results.values()):
            t.mark(
                "stopped"
            )  # stopped (Ctrl-C, .stop): it stays running in the storage, and resumes next time
        else:
            study.tell(t.handle, objective(t.dirs, spec.objective_evals), skip_if_finished=True)
            t.mark("done")

    def finished() -> int:
        states = (
            optuna.trial.TrialState.COMPLETE,
            optuna.trial.TrialState.PRUNED,
            optuna.trial.TrialState.FAIL,
        )
        return sum(t.state in states for t in study.get_trials(deepcopy=False))

    # trials other drivers sharing the storage run now (they count toward --trials)
    def others_running() -> int:
        return sum(
            t.state == optuna.trial.TrialState.RUNNING and not ours(t)
            for t in study.get_trials(deepcopy=False)
        )

    def best() -> str:
        done = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
        if not done:
            return f"{finished()}/{spec.trials} trials finished"
        top = max(done, key=lambda t: t.value)
        return f"{finished()}/{spec.trials} trials finished, best {top.value:.1f} (trial {top.number})"

    def planned() -> int:  # env steps of the trials not asked yet
        return max(0, spec.trials - finished() - len(running)) * len(spec.seeds) * spec.total_steps

    table = LiveTable(lambda: shown, live, label="tune", planned_steps=planned, note=best)
    try:
        with driver, table:
            try:
                while True:
                    stopping = driver.stopping
                    while (
                        not stopping
                        and len(running) < limit
                        and (resumable or finished() + len(running) + others_running() < spec.trials)
                    ):
                        if resumable:
                            ft = resumable.pop(0)
                            launch(optuna.trial.Trial(study, ft._trial_id), ft.params, ft.intermediate_values)
                        else:
                            h = study.ask(dists)
                            launch(h, h.params)
                    if not running:
                        break
                    for (t, i), result in driver.poll():
                        t.results[i] = result
                    for t in list(running):
                        report_progress(t)
                        if len(t.results) == len(t.runs):
                            running.remove(t)
                            settle(t)
                            write_trials_csv(out, study)
                    table.update()
                    if stopping and not running:
                        break
            except KeyboardInterrupt:
                # the running trials checkpoint; those whose runs all returned are settled as usual (one judged
                # pruned is told so, not resumed and trained again); the others stay running and resume next time
                for (t, i), result in driver.drain():
                    t.results[i] = result
                for t in running:
                    if len(t.results) == len(t.runs):
                        settle(t)
                raise
    finally:
        write_trials_csv(out, study)
    return study


__all__ = ["TuneSpec", "run_tune", "all_failed", "DEFAULT_SPACE"]


def best_results(out: Path | str, storage: str = "", top: int = 10) -> dict[str, Any]:
    """A study's results: its best trials (rows), the best config as a sweep TOML variant (OUT/best.toml) and as a
    ``ddpgx train`` command, and the optimization history and parameter importances (OUT/history.png,
    OUT/importance.png)."""
    optuna = _optuna()
    out = Path(out)
    storage = storage or f"sqlite:///{out / 'study.db'}"
    if not storage.startswith("sqlite:///") or (out / "study.db").is_file():
        try:
            study = optuna.load_study(study_name="ddpgx", storage=storage)
        except (KeyError, ValueError, optuna.exceptions.OptunaError) as e:
            raise UserError(f"no ddpgx study in {storage} ({describe(e)})") from None
    else:
        raise UserError(f"{out} holds no study.db: give the --out of a `ddpgx tune` (or --storage)")
    done = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise UserError(f"the study in {out} has no completed trial yet")
    ranked = sorted(done, key=lambda t: t.value, reverse=True)[:top]
    best = ranked[0]
    run0 = next(iter(sorted(out.glob(f"trial_{best.number:04d}__s*"))), None)
    cfg_fields = config_values(best.params)
    env, preset = "", ""
    if (
        run0 is not None
    ):  # everything the trial's runs set apart from their preset: the tuned and the fixed fields
        c = load_run_config(run0)
        env, preset = c.env, c.preset
        base = preset_config(preset, env)
        skip = {"run_dir", "seed", "progress", "preset", "env"}
        cfg_fields = {
            f.name: getattr(c, f.name)
            for f in dataclasses.fields(c)
            if f.name not in skip and getattr(c, f.name) != getattr(base, f.name)
        }

    def toml_value(v: Any) -> str:
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, tuple):
            return "[" + ", ".join(map(str, v)) + "]"
        return repr(v)

    lines = [
        f"# the best trial ({best.number}, objective {best.value:.6g}) of the study in {out}",
        f'env = "{env}"', f'preset = "{preset}"', 'seeds = "0-9"', f'out = "{out}-best"', "",
        "[[variant]]", f'name = "tuned-trial-{best.number}"',
        *(f"{k} = {toml_value(v)}" for k, v in cfg_fields.items()),
    ]  # fmt: skip
    (out / "best.toml").write_text("\n".join(lines) + "\n")

    def flag(k: str, v: Any) -> str:  # as `ddpgx train` reads it: booleans are --x / --no-x
        name = k.replace("_", "-")
        if isinstance(v, bool):
            return f"--{name}" if v else f"--no-{name}"
        return f"--{name} {' '.join(map(str, v)) if isinstance(v, tuple) else v}"

    flags = " ".join(flag(k, v) for k, v in cfg_fields.items())
    command = f"ddpgx train --env {env} --preset {preset} {flags}".strip()
    images = plot_study(study, out)
    return {"study": study, "ranked": ranked, "toml": out / "best.toml", "command": command, "images": images}


# from fewer complete trials the importances are mostly noise: the figure says so, and a warning is printed
MIN_TRIALS_FOR_IMPORTANCE = 10


def objective_name(study: Any) -> str:
    """What the study maximizes, in words (``ddpgx tune``'s objective)."""
    k = study.user_attrs.get("objective_evals")
    last = f"its last {k} evaluations" if k else "its last evaluations (--objective-evals)"
    return f"objective: a trial's mean noise-free eval return over {last}, mean over its seeds"


def history_figure(study: Any) -> Any:
    """Each complete trial's objective against its number (points) and the best so far (a step line); integer
    trial ticks; the pruned and failed trials counted in the title."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    optuna = _optuna()
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    fig = Figure(figsize=(7.0, 4.0), dpi=100, layout="constrained")
    ax = fig.subplots()
    numbers = [t.number for t in done]
    values = [t.value for t in done]
    ax.plot(numbers, values, "o", color="C0", markersize=4, label="a complete trial's objective")
    ax.step(numbers, list(_running_max(values)), where="post", color="C1", label="best so far")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial number")
    ax.set_ylabel("objective (mean eval return)")
    counts = {s: sum(t.state.name.lower() == s for t in trials) for s in ("pruned", "fail")}
    ax.set_title(
        f"optimization history: {len(done)} complete, {counts['pruned']} pruned, {counts['fail']} failed trials\n"
        + textwrap.fill(objective_name(study), 90, break_on_hyphens=False),
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return fig


def _running_max(values: list[float]) -> list[float]:
    best, out = float("-inf"), []
    for v in values:
        best = max(best, v)
        out.append(best)
    return out


def importance_figure(study: Any) -> Any:
    """Optuna's parameter importances (fANOVA: each parameter's share of the objective's variance) as bars.
    From fewer than ``MIN_TRIALS_FOR_IMPORTANCE`` complete trials they are mostly noise: the figure says so in its
    title, and a warning is printed. Raises ValueError/RuntimeError where Optuna cannot compute them (fewer than
    2 complete trials, a single value of every parameter)."""
    from matplotlib.figure import Figure

    optuna = _optuna()
    done = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    importances = optuna.importance.get_param_importances(study)
    names = list(importances)[::-1]  # the most important at the top
    fig = Figure(figsize=(7.0, 0.4 * len(names) + 2.0), dpi=100, layout="constrained")
    ax = fig.subplots()
    ax.barh(range(len(names)), [importances[n] for n in names], color="C0", alpha=0.8)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("importance for the objective (fANOVA: share of its variance)")
    ax.set_xlim(0, 1)
    ax.grid(alpha=0.3, axis="x")
    title = f"parameter importances from {len(done)} complete trials"
    if len(done) < MIN_TRIALS_FOR_IMPORTANCE:
        warning = (
            f"from only {len(done)} complete trials (fewer than {MIN_TRIALS_FOR_IMPORTANCE}) the parameter "
            "importances are mostly noise"
        )
        warn(warning)
        title += f"\nwarning: fewer than {MIN_TRIALS_FOR_IMPORTANCE}: mostly noise, do not trust the ranking"
        ax.set_title(title, color="C3")
    else:
        ax.set_title(title)
    return fig


def plot_study(study: Any, out: Path) -> list[Path]:
    """OUT/history.png and OUT/importance.png (the latter where Optuna can compute importances)."""
    images = []
    for name, draw in (("history", history_figure), ("importance", importance_figure)):
        try:
            fig = draw(study)
        except (ValueError, RuntimeError, ZeroDivisionError):  # importances need 2+ completed trials
            continue
        fig.savefig(out / f"{name}.png")
        images.append(out / f"{name}.png")
    return images
