"""ddpgx: Deep Deterministic Policy Gradient (Lillicrap et al. 2015) in JAX.

>>> from ddpgx import preset_config, train, load_policy
>>> result = train(preset_config("pendulum", "Pendulum-v1", total_steps=10_000))
>>> policy = load_policy(result.run_dir)
"""

from ddpgx.config import Config
from ddpgx.errors import UserError
from ddpgx.policy import load_policy
from ddpgx.presets import PRESETS, preset_config
from ddpgx.train import TrainResult, train
from ddpgx.version import __version__

__all__ = [
    "Config",
    "PRESETS",
    "preset_config",
    "train",
    "TrainResult",
    "load_policy",
    "UserError",
    "__version__",
]
