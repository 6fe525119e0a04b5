"""The one exception type for mistakes a user can fix: the CLI prints its message as one line, exit code 2."""


class UserError(Exception):
    """A bad environment, value or file: the message says what is wrong and how to fix it."""


class TrainingDiverged(UserError):
    """A NaN or inf appeared in observations or losses; the message names the step."""


def warn(message: str) -> None:
    """One line that does not stop anything: ``ddpgx: warning: ...`` on standard output."""
    print(f"ddpgx: warning: {message}", flush=True)
