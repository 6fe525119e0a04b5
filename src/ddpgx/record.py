"""Record the noise-free learned policy as a GIF or MP4, headless (MuJoCo through EGL or OSMesa).

Frames keep the env's aspect ratio: an env that renders at the asked size (MuJoCo's) renders ``width x height``;
one that renders at its own size (classic control's 500x500 or 600x400) is scaled to fit inside ``width x height``,
never stretched to it. The camera (``camera="auto"``) follows a running MuJoCo robot (its "track" camera) and looks
at a Fetch arm's table from closer than the env's default, where the goal is a few pixels; ``camera="env"`` keeps
the env's own. ``overlay=True`` writes the step and the return so far on every frame (PIL, already a dependency of
matplotlib and imageio). ``successful=True`` (goal envs: their ``info["is_success"]``) records only episodes that
end in success: the seeds from ``seed`` on are played without rendering until enough succeed, then those are
recorded (the policy is noise-free and the env seeded, so the recorded episode is the one that succeeded)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ddpgx.envs import EnvArgumentError, make_run_env
from ddpgx.errors import UserError
from ddpgx.policy import load_policy
from ddpgx.trackers import attach_artifacts

# classic control renders through pygame, whose SDL opens a sound card it never uses: ALSA's errors, 8 lines of them
# on a machine without one. No env ddpgx records plays sound.
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

RENDER_PACKAGES = "libegl1 libegl-mesa0 libgl1 libosmesa6"


@dataclass(frozen=True)
class Recording:
    path: Path
    frames: int
    returns: list[float]
    lengths: list[int]
    seeds: list[int]  # each episode's reset seed


def choose_gl_backend() -> None:
    """With no display, MuJoCo must render offscreen: pick EGL unless the user chose a backend."""
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("MUJOCO_GL", "egl")
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # classic-control envs draw with pygame
    if os.environ.get("MUJOCO_GL") in ("egl", "osmesa"):
        os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])


# Fetch's default camera (2.5 m away, gymnasium-robotics' DEFAULT_CAMERA_CONFIG) shows the goal as a dot of about
# 10 pixels in a 240x240 frame; from 1.4 m, looking at the table top, it is about 40, with the gripper, the object
# and the goal of every Fetch task in view (Reach, Push, Slide, PickAndPlace).
FETCH_CAMERA = {"distance": 1.4, "azimuth": 150.0, "elevation": -22.0, "lookat": (1.35, 0.75, 0.55)}


def is_fetch(env) -> bool:
    return type(env.unwrapped).__module__.startswith("gymnasium_robotics.envs.fetch")


def _make_render_env(cfg, size: tuple[int, int], camera: str = "auto"):
    """The run's env (with its kwargs and module) rendering ``size`` frames where the env takes a size; with
    ``camera="auto"`` the camera that shows the task best (see the module's docstring)."""
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
    if camera != "auto":
        return env
    if is_fetch(env):
        env.close()
        view = {**FETCH_CAMERA, "lookat": np.array(FETCH_CAMERA["lookat"])}
        return make_run_env(cfg, "rgb_array", width=width, height=height, default_camera_config=view)
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


def fit_size(frame: tuple[int, int], box: tuple[int, int], even: bool = False) -> tuple[int, int]:
    """(width, height) of a ``frame`` (width, height) scaled to fit inside ``box`` with its aspect ratio kept: a
    128x64 render in a 240x240 box is 240x120, not stretched to 240x240. ``even``: both rounded down to even numbers
    (H.264 in MP4 needs them)."""
    (w, h), (bw, bh) = frame, box
    scale = min(bw / w, bh / h)
    fw, fh = max(1, round(w * scale)), max(1, round(h * scale))
    if even:
        fw, fh = max(2, fw - fw % 2), max(2, fh - fh % 2)
    return fw, fh


def _resize(frame: np.ndarray, size: tuple[int, int], even: bool = False) -> np.ndarray:
    """The frame scaled to fit inside ``size`` (width, height), its aspect ratio kept (``fit_size``)."""
    target = fit_size((frame.shape[1], frame.shape[0]), size, even)
    if target == (frame.shape[1], frame.shape[0]):
        return frame
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize(target, Image.Resampling.BILINEAR))


def draw_overlay(frame: np.ndarray, lines: list[str]) -> np.ndarray:
    """``lines`` of white text on a dark box in the frame's top-left corner, sized to the frame (PIL)."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.fromarray(np.ascontiguousarray(frame[..., :3], dtype=np.uint8))
    try:
        font = ImageFont.load_default(size=max(8, img.height // 16))
    except (TypeError, OSError, ImportError):  # Pillow < 10.1 or without FreeType: its fixed bitmap font
        font = ImageFont.load_default()
    draw = ImageDraw.Draw(img, "RGBA")
    text = "\n".join(lines)
    left, top, right, bottom = draw.multiline_textbbox((3, 2), text, font=font)
    draw.rectangle((0, 0, right + 3, bottom + 3), fill=(0, 0, 0, 150))
    draw.multiline_text((3, 2), text, font=font, fill=(255, 255, 255, 255))
    return np.asarray(img)


SUCCESS_TRIES = 100  # successful=True: seeds played at most, from --seed on


def successful_seeds(
    env, policy, episodes: int, seed: int, max_steps: int, tries: int = SUCCESS_TRIES
) -> list[int]:
    """The first ``episodes`` seeds from ``seed`` on whose noise-free episode (at most ``max_steps`` steps) ends with
    ``info["is_success"]`` true, played without rendering; one line when the env reports no success, or when fewer
    than ``episodes`` of ``tries`` seeds succeed."""
    found: list[int] = []
    for s in range(seed, seed + tries):
        obs, info = env.reset(seed=s)
        for t in range(max_steps):
            obs, _, term, trunc, info = env.step(policy(np.asarray(obs, np.float32)))
            if t == 0 and "is_success" not in info:  # said after one step, not after a whole episode
                raise UserError(
                    "--successful needs an env that reports info['is_success'] at every step (goal envs such as "
                    "Fetch); this one does not: record without it"
                )
            if term or trunc:
                break
        if info.get("is_success"):
            found.append(s)
            if len(found) == episodes:
                return found
    raise UserError(
        f"--successful: {len(found)} of seeds {seed}-{seed + tries - 1} ended in success, fewer than the "
        f"{episodes} episode(s) asked; ask for fewer --episodes, another --seed, or the best policy (--which best)"
    )


def record_frames(
    env,
    policy,
    episodes: int = 1,
    max_steps: int = 1000,
    every: int = 1,
    size: tuple[int, int] = (240, 240),
    seed: int = 0,
    overlay: bool = False,
    even: bool = False,
    seeds: list[int] | None = None,
) -> tuple[list[np.ndarray], list[float], list[int]]:
    """Frames of ``episodes`` episodes of ``policy`` (observation -> action) in ``env``: the first frame, then one
    every ``every`` steps, each fitted inside ``size`` (``fit_size``), with the step and the return so far written
    on it when ``overlay``. Episode i starts from ``seeds[i]`` when given, else from ``seed + i``. Returns (frames,
    returns, lengths)."""
    frames: list[np.ndarray] = []
    returns: list[float] = []
    lengths: list[int] = []

    def frame(ep: int, t: int, ret: float) -> np.ndarray:
        f = _resize(_render(env), size, even)
        if not overlay:
            return f
        where = f"episode {ep + 1}/{episodes}  " if episodes > 1 else ""
        return draw_overlay(f, [f"{where}step {t}", f"return {ret:.1f}"])

    for ep in range(episodes):
        obs, _ = env.reset(seed=seeds[ep] if seeds is not None else seed + ep)
        ret = 0.0
        frames.append(frame(ep, 0, ret))
        for t in range(max_steps):
            obs, r, term, trunc, _ = env.step(policy(np.asarray(obs, np.float32)))
            ret += float(r)
            if (t + 1) % every == 0:
                frames.append(frame(ep, t + 1, ret))
            if term or trunc:
                break
        returns.append(ret)
        lengths.append(t + 1)
    return frames, returns, lengths


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
    overlay: bool = False,
    camera: str = "auto",
    successful: bool = False,
) -> Recording:
    """Run ``episodes`` noise-free episodes of the run's policy and write their frames to ``out``: each frame fits
    inside ``size`` (width, height) with the env's aspect ratio; ``overlay`` writes the step and return on it;
    ``camera``: "auto" (a tracking camera for MuJoCo robots, a closer view for Fetch) or "env" (the env's own)."""
    for name, v in (("--episodes", episodes), ("--max-steps", max_steps), ("--fps", fps), ("--every", every)):
        if v <= 0:
            raise UserError(f"{name} must be a positive integer, got {v}")
    if min(size) < 16:
        raise UserError(f"frames of {size[0]}x{size[1]} pixels are too small; use --width/--height >= 16")
    if camera not in ("auto", "env"):
        raise UserError(f"--camera must be auto or env, got {camera}")
    out = Path(out) if out else Path(run_dir) / "policy.gif"
    if out.suffix.lower() not in (".gif", ".mp4"):
        raise UserError(f"--out must end in .gif or .mp4, got {out.name}")
    policy = load_policy(run_dir, params_file)
    env = _make_render_env(policy.config, size, camera)
    try:
        seeds = successful_seeds(env, policy, episodes, seed, max_steps) if successful else None
        frames, returns, lengths = record_frames(
            env, policy, episodes, max_steps, every, size, seed, overlay, out.suffix.lower() == ".mp4", seeds
        )
    finally:
        env.close()
    write_video(out, frames, fps)
    if Path(run_dir).is_dir() and policy.config.tracker != "none":  # the GIF joins the run's tracker runs
        attach_artifacts(policy.config, Path(run_dir), [out])
    return Recording(out, len(frames), returns, lengths, seeds or list(range(seed, seed + episodes)))


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
