"""Record the noise-free learned policy as a GIF or MP4, headless (MuJoCo through EGL or OSMesa)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ddpgx.envs import EnvArgumentError, make_run_env
from ddpgx.errors import UserError
from ddpgx.policy import load_policy

RENDER_PACKAGES = "libegl1 libegl-mesa0 libgl1 libosmesa6"


@dataclass(frozen=True)
class Recording:
    path: Path
    frames: int
    returns: list[float]
    lengths: list[int]


def choose_gl_backend() -> None:
    """With no display, MuJoCo must render offscreen: pick EGL unless the user chose a backend."""
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("MUJOCO_GL", "egl")
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # classic-control envs draw with pygame
    if os.environ.get("MUJOCO_GL") in ("egl", "osmesa"):
        os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])


def _make_render_env(cfg, size: tuple[int, int]):
    """The run's env (with its kwargs and module) rendering ``size`` frames where the env takes a size."""
    import warnings

    choose_gl_backend()
    width, height = size
    with (
        warnings.catch_warnings()
    ):  # an env without rgb_array is said in one line by _render, not warned about
        warnings.filterwarnings("ignore", message=".*render_mode.*")
        try:
            env = make_run_env(cfg, "rgb_array", width=width, height=height)
        except EnvArgumentError:  # envs without width/height arguments (classic control): resized afterwards
            return make_run_env(cfg, "rgb_array")
    # A MuJoCo robot that runs (HalfCheetah-v5, Hopper-v5) soon leaves the free camera's view; Gymnasium's models
    # have a camera named "track" that follows the robot's centre of mass: use it when there is one.
    model = getattr(env.unwrapped, "model", None)
    if model is not None:
        import mujoco

        if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "track") >= 0:
            env.close()
            env = make_run_env(cfg, "rgb_array", width=width, height=height, camera_name="track")
    return env


def _render(env) -> np.ndarray:
    modes = list(env.unwrapped.metadata.get("render_modes", []))
    name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
    try:
        frame = env.render()
    except NotImplementedError:
        raise UserError(
            f"{name} cannot render: it has no render() for render_mode='rgb_array' (its render_modes: {modes}); "
            "ddpgx record needs one"
        ) from None
    except Exception as e:  # noqa: BLE001 - GL libraries missing or unusable, or the env's own failure
        text = (str(e).strip().splitlines() or [""])[0][:120]
        if getattr(env.unwrapped, "model", None) is None:  # not MuJoCo: no GL to blame
            raise UserError(f"{name}'s render() failed ({type(e).__name__}: {text})") from None
        backend = os.environ.get("MUJOCO_GL", "default")
        raise UserError(
            f"rendering failed with MUJOCO_GL={backend} ({type(e).__name__}: {text}); "
            f"install the offscreen GL libraries: apt-get install -y {RENDER_PACKAGES} "
            "(or try MUJOCO_GL=osmesa)"
        ) from None
    if frame is None:
        raise UserError(
            f"{name} rendered no frame: it does not render for render_mode='rgb_array' (its render_modes: {modes})"
        )
    return np.asarray(frame)


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if frame.shape[1] == size[0] and frame.shape[0] == size[1]:
        return frame
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.BILINEAR))


def record(
    run_dir: str | Path,
    out: str | Path | None = None,
    episodes: int = 1,
    max_steps: int = 1000,
    fps: int = 30,
    every: int = 1,
    size: tuple[int, int] = (240, 240),
    seed: int = 0,
    params_file: str | Path | None = None,
) -> Recording:
    """Run ``episodes`` noise-free episodes of the run's policy and write their frames to ``out``."""
    for name, v in (("--episodes", episodes), ("--max-steps", max_steps), ("--fps", fps), ("--every", every)):
        if v <= 0:
            raise UserError(f"{name} must be a positive integer, got {v}")
    if min(size) < 16:
        raise UserError(f"frames of {size[0]}x{size[1]} pixels are too small; use --width/--height >= 16")
    out = Path(out) if out else Path(run_dir) / "policy.gif"
    if out.suffix.lower() not in (".gif", ".mp4"):
        raise UserError(f"--out must end in .gif or .mp4, got {out.name}")
    policy = load_policy(run_dir, params_file)
    env = _make_render_env(policy.config, size)
    frames: list[np.ndarray] = []
    returns: list[float] = []
    lengths: list[int] = []
    try:
        for ep in range(episodes):
            obs, _ = env.reset(seed=seed + ep)
            ret = 0.0
            frames.append(_resize(_render(env), size))
            for t in range(max_steps):
                obs, r, term, trunc, _ = env.step(policy(np.asarray(obs, np.float32)))
                ret += float(r)
                if (t + 1) % every == 0:
                    frames.append(_resize(_render(env), size))
                if term or trunc:
                    break
            returns.append(ret)
            lengths.append(t + 1)
    finally:
        env.close()
    write_video(out, frames, fps)
    return Recording(out, len(frames), returns, lengths)


def write_video(out: Path, frames: list[np.ndarray], fps: int) -> None:
    import imageio.v3 as iio

    out.parent.mkdir(parents=True, exist_ok=True)
    stack = np.stack(frames).astype(np.uint8)
    if out.suffix.lower() == ".gif":
        iio.imwrite(out, stack, extension=".gif", duration=1000.0 / fps, loop=0)
    else:
        import warnings

        with warnings.catch_warnings():  # imageio-ffmpeg starts ffmpeg with a fork; harmless here
            warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)
            iio.imwrite(out, stack, extension=".mp4", fps=fps, codec="libx264", macro_block_size=1)
