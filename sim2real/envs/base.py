"""Gymnasium base env: a :class:`PhysicsWorld` driven by a randomization profile.

Subclasses define the task (``_reset_task``, ``_observe``, ``_command``, ``_evaluate``)
and the layout; this class handles the profile (startup/reset/interval entries, pinned
draws, ``randomize=False``), action checks and noise, action latency (in the world, at
physics-step resolution), observation latency/noise/bias, ``info["randomization"]``,
truncation and the export metadata (``observation_layout()``, ``action_spec()``).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from sim2real.errors import EnvError
from sim2real.profiles import Profile, load_profile
from sim2real.robots import RobotDescription, load_robot
from sim2real.sim.runner import RandomizationRunner
from sim2real.sim.world import PhysicsWorld

try:  # the clip ufunc itself: min(max(x, lo), hi) elementwise, ~4x cheaper than np.clip on small arrays
    from numpy._core.umath import clip as clip_
except ImportError:  # numpy < 2
    from numpy.core.umath import clip as clip_

RESET_OPTIONS = ("randomize", "params")


class SimEnv(gym.Env):
    """Base of the sim2real envs.

    Args:
        robot: robot name, path or description.
        profile: randomization profile (shipped name, path, dict or :class:`Profile`).
        max_episode_steps: truncate after this many control steps (``None``: never).
        control_mode: world control mode override (``position`` | ``velocity`` | ``torque``).

    Subclasses set ``self.action_mode``, ``self.action_scale``, ``self.action_offset``,
    ``self._layout`` and ``self.observation_space`` bounds before calling :meth:`_finish_init`.
    A subclass that needs another world (e.g. the quadrotor's rotor model) sets
    :attr:`world_class` or overrides :meth:`_make_world`.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"]}
    #: render() camera: distance (m), yaw, pitch (deg) around the base, image width x height
    render_view: ClassVar[tuple[float, float, float]] = (1.8, 50.0, -30.0)
    render_size: ClassVar[tuple[int, int]] = (320, 240)
    #: the world :meth:`_make_world` builds (called as ``world_class(robot)``)
    world_class: ClassVar[type[PhysicsWorld]] = PhysicsWorld

    def __init__(self, robot: str | RobotDescription, profile: str | dict | Profile = "nominal",
                 max_episode_steps: int | None = 100, control_mode: str | None = None,
                 render_mode: str | None = None) -> None:
        super().__init__()
        if render_mode not in (None, "rgb_array"):
            raise EnvError(f"unsupported render_mode {render_mode!r}; expected None or 'rgb_array'")
        self.render_mode = render_mode
        self.robot = robot if isinstance(robot, RobotDescription) else load_robot(robot)
        self.world = self._make_world()
        self.metadata = {**type(self).metadata, "render_fps": int(round(self.robot.control.rate_hz))}
        if control_mode is not None and control_mode != self.world.mode:
            self.world.mode = control_mode
            self.world.reset_control()
        self.max_episode_steps = max_episode_steps
        try:
            self.profile = load_profile(profile, robot=self.robot)
            self.runner = RandomizationRunner(self.world, self.profile)
        except Exception:
            self.world.close()  # a bad profile must not leak the physics client
            raise
        self._pending_runner: RandomizationRunner | None = None
        self._obs_history: deque[np.ndarray] = deque(maxlen=2)
        self._elapsed = 0
        self._needs_reset = True

    def _finish_init(self, obs_low: np.ndarray, obs_high: np.ndarray) -> None:
        n_act = len(self.action_joints)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(n_act,), dtype=np.float32)
        self._obs_low = np.asarray(obs_low, dtype=np.float64)
        self._obs_high = np.asarray(obs_high, dtype=np.float64)
        self.observation_space = gym.spaces.Box(self._obs_low.astype(np.float32), self._obs_high.astype(np.float32),
                                                dtype=np.float32)
        size = sum(n for _, n in self._layout)
        if size != self._obs_low.shape[0]:
            raise EnvError(f"observation layout sums to {size} but bounds have {self._obs_low.shape[0]} elements")
        self.world.observation_size = size

    def _make_world(self) -> PhysicsWorld:
        """Build the env's world for ``self.robot`` (default: ``world_class(self.robot)``)."""
        return self.world_class(self.robot)

    # ------------------------------------------------------------------ public API
    def set_profile(self, profile: str | dict | Profile) -> None:
        """Use ``profile`` from the next reset on (validated now)."""
        prof = load_profile(profile, robot=self.robot)
        self._pending_runner = RandomizationRunner(self.world, prof)

    def observation_layout(self) -> list[tuple[str, int]]:
        """``[(component, size), ...]`` in observation order (vocabulary of docs/interfaces.md)."""
        return list(self._layout)

    def action_spec(self) -> dict[str, Any]:
        """``mode``, ``joints``, ``scale``, ``offset``, ``low``, ``high`` (joint limits), as lists."""
        idx = [self.robot.joint_names.index(j) for j in self.action_joints]
        return {
            "mode": self.action_mode,
            "joints": list(self.action_joints),
            "scale": [float(x) for x in self.action_scale],
            "offset": [float(x) for x in self.action_offset],
            "low": [float(self.world.lower[i]) for i in idx],
            "high": [float(self.world.upper[i]) for i in idx],
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = [k for k in options if k not in RESET_OPTIONS]
        if unknown:
            raise EnvError(f"unknown reset option(s) {unknown}; expected {list(RESET_OPTIONS)}")
        if self._pending_runner is not None:
            self.runner, self._pending_runner = self._pending_runner, None
            self.profile = self.runner.profile
        self.world.headless = not self._renders_robot()  # com_offset rebuilds skip the renderer
        self.runner.reset(self.np_random, randomize=bool(options.get("randomize", True)),
                          pinned=options.get("params"), reseed=seed is not None)
        self.world.apply_floor_contact()  # model_params may have been randomized
        self._reset_task()
        self.world.hold()
        self._elapsed = 0
        self._needs_reset = False
        obs = self._observe()
        delay = self.world.observation_delay
        self._obs_history = deque([obs], maxlen=delay // self.world.substeps + 2)
        return self._sense(obs), self._info(obs)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._needs_reset:
            raise EnvError("step() called before reset() (or after the episode ended without a reset)")
        a = np.asarray(action, dtype=np.float64)
        shape = self.action_space.shape
        if a.shape != shape:
            try:
                a = a.reshape(shape)
            except ValueError:
                raise EnvError(f"action has shape {np.shape(action)}, expected {shape}") from None
        # a finite a·a means finite elements (one BLAS call; a huge finite action may overflow it,
        # so the exact check confirms before raising); a·a <= 1 also means every |a_i| <= 1
        aa = a @ a
        if not math.isfinite(aa) and not np.isfinite(a).all():
            raise EnvError(f"action contains NaN or inf: {a.tolist()}")
        if aa > 1.0:
            a = clip_(a, -1.0, 1.0)
        world = self.world
        noise = world.action_noise
        if noise is not None and noise[1] > 0:
            a = np.minimum(np.maximum(a + _noise(self.np_random, noise[0], noise[1], a.shape), -1.0), 1.0)
        delay = world.observation_delay
        if delay:
            r, q = delay % world.substeps, delay // world.substeps
            world.step(self._command(a), capture_at=world.substeps - r,
                       capture=lambda: self._obs_history.append(self._observe()))
        else:
            world.step(self._command(a))
        runner = self.runner
        if runner.has_interval:
            runner.step(self.np_random)
        self._elapsed += 1
        obs = self._observe()
        reward, terminated, extra = self._evaluate(a, obs)
        mx = self.max_episode_steps
        truncated = False if mx is None else bool(self._elapsed >= mx)
        if delay:
            hist = self._obs_history
            seen = hist[-(1 + q)] if len(hist) > q else hist[0]
        else:
            seen = obs
        info = {"randomization": self._randomization_info()}
        info.update(extra)
        terminated = bool(terminated)
        self._needs_reset = terminated or truncated
        return self._sense(seen), float(reward), terminated, truncated, info

    def render(self) -> np.ndarray | None:
        """``rgb_array``: an (H, W, 3) uint8 frame from a camera looking at the robot base (TinyRenderer)."""
        if self.render_mode != "rgb_array":
            return None
        import pybullet as p

        w = self.world
        dist, yaw, pitch = self.render_view
        width, height = self.render_size
        target = w.base_pose()[0] + np.array([0.0, 0.0, 0.4])
        view = p.computeViewMatrixFromYawPitchRoll(target.tolist(), dist, yaw, pitch, 0.0, 2, physicsClientId=w.client)
        proj = p.computeProjectionMatrixFOV(60.0, width / height, 0.05, 10.0, physicsClientId=w.client)
        img = p.getCameraImage(width, height, view, proj, renderer=p.ER_TINY_RENDERER, physicsClientId=w.client)[2]
        return np.asarray(img, dtype=np.uint8).reshape(height, width, 4)[:, :, :3].copy()

    def close(self) -> None:
        self.world.close()

    def _renders_robot(self) -> bool:
        """Whether anything renders this env's robot: ``render()`` (``render_mode``) or an
        observation that is not a flat vector (camera envs). If not, bodies rebuilt for
        ``com_offset`` get no renderer geometry (``PhysicsWorld.headless``; ~10-50x cheaper)."""
        return self.render_mode is not None or not (
            isinstance(self.observation_space, gym.spaces.Box) and len(self.observation_space.shape) == 1)

    # ------------------------------------------------------------------ helpers
    def _sense(self, obs: np.ndarray) -> np.ndarray:
        noise = self.world.observation_noise
        if noise is None:
            return obs.astype(np.float32)
        kind, level, bias = noise
        out = obs + bias if bias.shape == obs.shape else obs.copy()
        if level > 0:
            out += _noise(self.np_random, kind, level, obs.shape)
        np.maximum(out, self._obs_low, out=out)
        np.minimum(out, self._obs_high, out=out)
        return out.astype(np.float32)

    def _info(self, obs: np.ndarray) -> dict[str, Any]:
        return {"randomization": self._randomization_info()}

    def _randomization_info(self) -> dict[str, dict[str, Any]]:
        """``info["randomization"]``: fresh dicts on every call (Gymnasium's env checker requires
        that no two returned infos share a mutable object; the values are immutable)."""
        return _copy(self.runner.applied)

    # ------------------------------------------------------------------ task hooks
    def _reset_task(self) -> None:
        """Put the robot in its start state and draw the task (goal) from ``self.np_random``."""
        raise NotImplementedError

    def _observe(self) -> np.ndarray:
        """True observation (float64, layout order, clipped to the observation bounds)."""
        raise NotImplementedError

    def _command(self, action: np.ndarray) -> np.ndarray:
        """Map a normalised action in [-1, 1] to the world command (rad, rad/s or N·m)."""
        raise NotImplementedError

    def _evaluate(self, action: np.ndarray, obs: np.ndarray) -> tuple[float, bool, dict[str, Any]]:
        """(reward, terminated, extra info) from the true state after the step."""
        raise NotImplementedError


def _noise(rng: np.random.Generator, kind: str, level: float, shape: tuple[int, ...]) -> np.ndarray:
    if kind == "uniform":
        return rng.uniform(-level, level, size=shape)
    return rng.normal(0.0, level, size=shape)


def _copy(applied: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Fresh dicts for ``info["randomization"]`` (values are floats/tuples, safe to share)."""
    return {k: v.copy() for k, v in applied.items()}

