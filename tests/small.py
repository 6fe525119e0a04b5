"""The one base of every test's small runs: 32-32 networks, and no progress bar, plot or TensorBoard. Each test
module adds the run length and schedule its checks need (``{**SMALL_BASE, "total_steps": ...}``)."""

SMALL_BASE = dict(
    actor_hidden=(32, 32), critic_hidden=(32, 32), progress=False, plot=False, tensorboard=False
)
