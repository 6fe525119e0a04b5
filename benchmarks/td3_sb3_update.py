"""ddpgx's `td3` update against Stable-Baselines3's TD3.train, step by step, from the same weights on the same batches.

    python benchmarks/td3_sb3_update.py [--steps 40] [--preset td3] [--env Hopper-v5]   # needs the bench extra

The learning curves (benchmarks/td3_sb3_hopper.py) compare two whole training runs, whose seeds, initial weights
and samples all differ. This script takes the randomness out and asks only whether the two updates compute the same
thing. ddpgx's initial actor and twin critics are copied into SB3's TD3 (online and target networks, torch's
(out, in) weights transposed); each gradient step draws one batch (Hopper-shaped observations and actions, returns
and terminations, a tenth of them terminal) and feeds it to both; SB3's target-smoothing draw is replaced by the
exact draw ddpgx makes from its own key (the N(0, 0.2) sample before the clip at 0.5, so both sides clip it
themselves). After every step it compares every parameter of the actor, both critics, both target networks and the
critic loss. Float32 on both sides: agreement is to rounding, where a fault
(a wrong delay phase, a target updated on the wrong steps, the wrong critic in the actor loss, a missing clip, a
mis-wired min) shows as a difference of the order of the update itself: each network's gap is the distance
between the two sides' weights over the distance its weights moved from the shared start. Exits 1 if any step
disagrees. `--inject delay|smoothing-clip|tau|no-smoothing` changes one setting on ddpgx's side only, to show that
the check catches a fault of that kind.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def layers(params: dict) -> list[dict]:
    """A flax MLP's Dense layers in order: hidden_0, hidden_1, ..., out."""
    hidden = sorted((k for k in params if k.startswith("hidden_")), key=lambda k: int(k[7:]))
    return [params[k] for k in [*hidden, "out"]]


def linears(seq: Any) -> list[Any]:
    """A torch Sequential's Linear layers in order."""
    import torch

    return [m for m in seq if isinstance(m, torch.nn.Linear)]


def flax_to_torch(seq: Any, params: dict) -> None:
    """Copy a flax MLP into a torch Sequential of the same shape (torch keeps weights as (out, in))."""
    import torch

    with torch.no_grad():
        for lin, layer in zip(linears(seq), layers(params), strict=True):
            lin.weight.copy_(torch.from_numpy(np.asarray(layer["kernel"]).T.copy()))
            lin.bias.copy_(torch.from_numpy(np.asarray(layer["bias"]).copy()))


def flat_torch(seq: Any) -> np.ndarray:
    """A torch MLP's weights and biases as one vector, in flax's layout and order."""
    return np.concatenate([np.concatenate([lin.weight.detach().numpy().T.ravel(), lin.bias.detach().numpy()])
                           for lin in linears(seq)])  # fmt: skip


def flat_flax(params: dict) -> np.ndarray:
    return np.concatenate([np.concatenate([np.asarray(layer["kernel"]).ravel(), np.asarray(layer["bias"])])
                           for layer in layers(params)])  # fmt: skip


def gap(theirs: Any, ours: dict, start: np.ndarray) -> float:
    """||theirs - ours|| (a torch MLP against a flax one) relative to how far ours moved from the shared start,
    ||ours - start||: 0 for the same update, about 1 or more for a different one; rounding gives about 1e-6 to 1e-3
    (Adam's first steps turn the sign of a near-zero gradient into a whole learning-rate step, so a few weights may
    differ by 2 lr)."""
    t, o = flat_torch(theirs), flat_flax(ours)
    moved = float(np.linalg.norm(o - start))
    return float(np.linalg.norm(t - o)) / moved if moved > 0 else float(np.linalg.norm(t - o))


FAULTS = {  # one setting changed on ddpgx's side only: the check must call each of these different
    "none": {},
    "delay": {"policy_delay": 1},  # actor and targets on every step
    "smoothing-clip": {"target_noise_clip": 0.1},
    "tau": {"tau": 0.01},
    "no-smoothing": {"target_noise": 0.0},
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--preset", default="td3")
    ap.add_argument("--env", default="Hopper-v5")
    ap.add_argument(
        "--inject",
        choices=sorted(FAULTS),
        default="none",
        help="change one setting on ddpgx's side only, to see the check catch it",
    )
    ap.add_argument("--tol", type=float, default=1e-2, help="largest gap (see gap()) allowed")
    args = ap.parse_args()

    import gymnasium as gym
    import torch
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.type_aliases import ReplayBufferSamples

    from ddpgx import preset_config
    from ddpgx.learner import Learner
    from ddpgx.replay import Batch

    sys.path.insert(0, str(Path(__file__).parent))
    from td3_sb3_hopper import sb3_td3

    torch.set_num_threads(1)
    cfg = preset_config(args.preset, args.env)
    if not (cfg.twin_critic and cfg.critic_action_layer == 0 and not cfg.obs_norm and not cfg.batch_norm):
        sys.exit(
            f"{args.preset}: this check covers TD3-style presets (twin critics, action at the critic's input)"
        )
    env = gym.make(args.env)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    learner = Learner(cfg.replace(**FAULTS[args.inject]), obs_dim, act_dim)
    state = learner.init(0)
    model = sb3_td3(cfg, env, buffer_size=1000, learning_starts=0, seed=0)  # batches come from this script
    model.set_logger(configure(None, []))  # train() records its losses here
    pol = model.policy
    for net, params in ((pol.actor.mu, state.actor["params"]), (pol.actor_target.mu, state.actor["params"])):
        flax_to_torch(net, params)
    for i in range(2):
        for net in (pol.critic.q_networks[i], pol.critic_target.q_networks[i]):
            flax_to_torch(net, state.critic["params"][f"q{i}"])

    starts = {"actor": flat_flax(state.actor["params"])}
    starts.update({f"q{i}": flat_flax(state.critic["params"][f"q{i}"]) for i in (0, 1)})
    rng = np.random.default_rng(7)
    batch_holder: dict[str, Any] = {}

    def sample(batch_size: int, env: Any = None) -> ReplayBufferSamples:
        return batch_holder["sb3"]

    model.replay_buffer.sample = sample  # type: ignore[method-assign]
    normal_orig = torch.Tensor.normal_

    def normal_(self: torch.Tensor, mean: float = 0.0, std: float = 1.0, **_: Any) -> torch.Tensor:
        assert std == cfg.target_noise and tuple(self.shape) == batch_holder["noise"].shape
        return self.copy_(torch.from_numpy(batch_holder["noise"]))

    worst_all, failed = 0.0, False
    print(f"{args.preset} on {args.env}-shaped batches of {cfg.batch_size}: ddpgx's update vs SB3 TD3.train")
    print(
        f"{'step':>4}  {'critic loss ddpgx':>17}  {'SB3':>10}  gap: {'actor':>9}  {'critics':>9}  {'targets':>9}"
    )
    for step in range(1, args.steps + 1):
        B = cfg.batch_size
        obs = rng.normal(size=(B, obs_dim)).astype(np.float32)
        nxt = (obs + 0.1 * rng.normal(size=(B, obs_dim))).astype(np.float32)
        act = rng.uniform(-1, 1, size=(B, act_dim)).astype(np.float32)
        rew = rng.normal(1.0, 1.0, size=B).astype(np.float32)
        term = (rng.uniform(size=B) < 0.1).astype(np.float32)
        _, sub = jax.random.split(state.key)  # the draw update_step makes for its smoothing noise
        raw = np.asarray(cfg.target_noise * jax.random.normal(sub, act.shape, jnp.float32))
        batch_holder["noise"] = raw
        t = torch.from_numpy
        batch_holder["sb3"] = ReplayBufferSamples(t(obs), t(act), t(nxt), t(term[:, None]), t(rew[:, None]))
        batches = Batch(obs[None], act[None], rew[None], nxt[None], term[None])
        state, metrics = learner.update(state, batches)
        torch.Tensor.normal_ = normal_  # type: ignore[method-assign]
        try:
            model.train(gradient_steps=1, batch_size=B)
        finally:
            torch.Tensor.normal_ = normal_orig  # type: ignore[method-assign]
        sb3_loss = model.logger.name_to_value["train/critic_loss"]
        a = gap(pol.actor.mu, state.actor["params"], starts["actor"])
        c = max(
            gap(pol.critic.q_networks[i], state.critic["params"][f"q{i}"], starts[f"q{i}"]) for i in (0, 1)
        )
        tg = max(
            gap(pol.actor_target.mu, state.actor_target["params"], starts["actor"]),
            *(gap(pol.critic_target.q_networks[i], state.critic_target["params"][f"q{i}"], starts[f"q{i}"])
              for i in (0, 1)),
        )  # fmt: skip
        loss_rel = abs(float(metrics.critic_loss) - sb3_loss) / (abs(sb3_loss) + 1e-12)
        worst = max(a, c, tg, loss_rel)  # the actor's gap is 0 until its first update (step policy_delay)
        worst_all = max(worst_all, worst)
        failed |= worst > args.tol
        print(f"{step:>4}  {float(metrics.critic_loss):>17.6f}  {sb3_loss:>10.6f}       {a:>9.2e}  {c:>9.2e}  {tg:>9.2e}"
              + ("  <- differs" if worst > args.tol else ""))  # fmt: skip
    verdict = "the same update" if not failed else "DIFFERENT updates"
    print(
        f"largest gap or relative loss difference over {args.steps} steps: {worst_all:.2e} (tolerance {args.tol:g}): {verdict}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
