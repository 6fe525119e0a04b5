"""The one exception type for mistakes a user can fix: the CLI prints its message as one line, exit code 2."""


class UserError(Exception):
    """A bad environment, value or file: the message says what is wrong and how to fix it."""


class TrainingDiverged(UserError):
    """A NaN or inf appeared in observations or losses; the message names the step."""


def reset_error(name: str, obs: list[float], first: bool) -> UserError:
    """A NaN or inf from an env's reset: at a run's first reset the env is broken before anything was learned
    (UserError); later, the run's data went non-finite (TrainingDiverged: the host names the checkpoint)."""
    text = f"{name}'s reset() returned a NaN or inf observation {obs[:8]}; fix the env's reset"
    return UserError(f"{text} (nothing was learned yet)") if first else TrainingDiverged(text)


def env_not_finite(step: int, who: str = "") -> TrainingDiverged:
    """The env's observation or reward after a finite action went NaN or inf: the env's fault, not learning's."""
    return TrainingDiverged(
        f"{who}the environment returned a NaN or inf observation/reward at step {step}; check the env or its wrappers"
    )


def actions_not_finite(step: int, who: str = "") -> TrainingDiverged:
    """The policy's action went NaN or inf: the networks diverged (said before the env is stepped with it, so the
    env is not blamed for what the learner did)."""
    return TrainingDiverged(
        f"{who}the policy's actions became NaN or inf at step {step}: the networks diverged (lower --critic-lr or "
        "--actor-lr, or raise --batch-size, in a new run)"
    )


def warn(message: str) -> None:
    """One line that does not stop anything: ``ddpgx: warning: ...`` on standard output."""
    print(f"ddpgx: warning: {message}", flush=True)


def describe(e: BaseException) -> str:
    """An exception in words for a one-line message, without Python's repr: ``no such file or directory: x.csv``
    for an OS error, the first line of the message otherwise (the exception's type only when it says nothing)."""
    if isinstance(e, OSError) and e.strerror:
        where = f": {e.filename}" if e.filename else ""
        return f"{e.strerror[0].lower()}{e.strerror[1:]}{where}"
    text = (str(e).strip().splitlines() or [""])[0][:200]
    return text or type(e).__name__
