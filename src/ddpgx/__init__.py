"""ddpgx: Deep Deterministic Policy Gradient (Lillicrap et al. 2015) in JAX.

>>> from ddpgx import preset_config, train, load_policy
>>> result = train(preset_config("pendulum", "Pendulum-v1", total_steps=10_000))
>>> policy = load_policy(result.run_dir)

or, as SB3 users write it:

>>> from ddpgx import DDPG
>>> model = DDPG("Pendulum-v1", preset="pendulum").learn(10_000)
>>> action, _ = model.predict(obs)
"""

from ddpgx.api import DDPG
from ddpgx.callbacks import Callback, StopOnNoImprovement, StopOnReward, every
from ddpgx.config import Config
from ddpgx.errors import TrainingDiverged, UserError
from ddpgx.host import Interrupted
from ddpgx.policy import load_policy
from ddpgx.presets import PRESETS, preset_config
from ddpgx.train import TrainResult, train
from ddpgx.version import __version__

__all__ = [
    "DDPG",
    "Callback",
    "StopOnReward",
    "StopOnNoImprovement",
    "every",
    "Config",
    "PRESETS",
    "preset_config",
    "train",
    "TrainResult",
    "load_policy",
    "UserError",
    "TrainingDiverged",
    "Interrupted",
    "__version__",
]
