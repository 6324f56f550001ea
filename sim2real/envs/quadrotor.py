"""Quadrotor envs: hover and waypoint flight of the Crazyflie-class drone (``robots/quadrotor``).

Ids (registered when :mod:`sim2real.envs` is imported):

- ``sim2real/QuadrotorHover-v0``: per-motor commands, hold the hover target (240 steps, 5 s);
- ``sim2real/QuadrotorWaypoint-v0``: per-motor commands, fly to a random waypoint and hold it
  (480 steps, 10 s);
- ``sim2real/QuadrotorHoverRates-v0``: collective thrust + body rates, hover (240 steps);
- ``sim2real/QuadrotorHoverVel-v0``, ``sim2real/QuadrotorWaypointVel-v0``: world velocity
  setpoints + yaw rate (what the ROS 2 deployment node sends to PX4 / Crazyswarm2).

Observation (25, float32), components of docs/interfaces.md in this order:
``base_position`` (3, m, world), ``base_rotation`` (9, body→world rotation matrix, row-major),
``base_linear_velocity`` (3, m/s, world), ``base_angular_velocity`` (3, rad/s, body),
``target_relative`` (3, target − position, m, world), ``previous_action`` (4).

Actions in [-1, 1]^4:

- ``motor``: rotor ``i`` gets ``ω_i² = (a_i + 1)/2 · max_rpm²`` (rpm²), motors ordered
  front-right, back-right, back-left, front-left;
- ``thrust_rates``: collective thrust ``(a_0 + 1)/2 · 4·kf·max_rpm²`` (N) and body rates
  ``a_1..3 · max_body_rate`` (rad/s), tracked by the body-rate PID at physics rate;
- ``velocity``: world velocity ``a_0..2 · max_velocity`` (m/s) and yaw rate ``a_3 · max_yaw_rate``
  (rad/s), tracked by a velocity loop feeding the body-rate PID, both at physics rate.

Reward per control step: ``1 − d − 0.05·|v| − 0.02·|ω| − 0.1·|a − a_hover|²/4`` (``d`` the
distance to the target in m), −10 on the step that crashes; the waypoint task adds
``10·(d_prev − d)`` for progress. An episode terminates when the drone leaves the flight box,
touches the floor or tilts beyond ``max_tilt``. ``info["is_success"]``: within
``waypoint_radius`` of the target.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Sequence

import gymnasium as gym
import numpy as np
import pybullet as p

from sim2real.errors import EnvError, RobotError
from sim2real.envs.base import SimEnv, clip_
from sim2real.envs.registration import SPEC_FLAGS
from sim2real.profiles import Profile
from sim2real.robots import RobotDescription
from sim2real.sim.quadrotor import BaseState, RotorParams
from sim2real.sim.quadrotor_world import QUAD_MODES, QuadrotorWorld

TASKS = ("hover", "waypoint")
LAYOUT = [("base_position", 3), ("base_rotation", 9), ("base_linear_velocity", 3),
          ("base_angular_velocity", 3), ("target_relative", 3), ("previous_action", 4)]
POS_LIMIT, VEL_LIMIT, RATE_LIMIT, REL_LIMIT = 10.0, 20.0, 40.0, 10.0
CRASH_PENALTY = 10.0
PROGRESS_WEIGHT = 10.0
#: extra height (m) above the body's reach below which the floor contact is queried
FLOOR_QUERY_MARGIN = 0.1

#: id -> (constructor kwargs, episode length in control steps)
QUADROTOR_SPECS: dict[str, tuple[dict[str, Any], int]] = {
    "sim2real/QuadrotorHover-v0": ({"task": "hover", "action_mode": "motor"}, 240),
    "sim2real/QuadrotorWaypoint-v0": ({"task": "waypoint", "action_mode": "motor"}, 480),
    "sim2real/QuadrotorHoverRates-v0": ({"task": "hover", "action_mode": "thrust_rates"}, 240),
    "sim2real/QuadrotorHoverVel-v0": ({"task": "hover", "action_mode": "velocity"}, 240),
    "sim2real/QuadrotorWaypointVel-v0": ({"task": "waypoint", "action_mode": "velocity"}, 480),
}


class QuadrotorEnv(SimEnv):
    """Hover / waypoint flight with per-motor, thrust + body-rate or velocity-setpoint actions.

    Args:
        task: ``hover`` (fixed target ``task.hover_target``, random start) or ``waypoint``
            (start near the hover target, random target in the waypoint box).
        action_mode: ``motor``, ``thrust_rates`` or ``velocity``.
        robot: a quadrotor robot (default ``quadrotor``).
        profile: randomization profile (e.g. ``quadrotor``).
        max_episode_steps: truncate after this many control steps (``None``: never).
        render_mode: ``None`` or ``rgb_array`` (a chase camera, :meth:`SimEnv.render`).

    Task settings come from ``robot.yaml`` ``model_params.task``; rotor numbers from
    ``model_params`` (randomized per episode by ``model_param`` entries).
    """

    render_view: ClassVar[tuple[float, float, float]] = (1.0, 45.0, -20.0)  # closer: the drone is 11 cm wide

    def __init__(self, task: str = "hover", action_mode: str = "motor", robot: str | RobotDescription = "quadrotor",
                 profile: str | dict | Profile = "nominal", max_episode_steps: int | None = 240,
                 render_mode: str | None = None) -> None:
        if task not in TASKS:
            raise EnvError(f"unknown quadrotor task {task!r}; expected one of {list(TASKS)}")
        if action_mode not in QUAD_MODES:
            raise EnvError(f"unknown quadrotor action mode {action_mode!r}; expected one of {list(QUAD_MODES)}")
        self.task = task
        self.action_mode = action_mode
        super().__init__(robot, profile, max_episode_steps, render_mode=render_mode)  # builds _make_world()
        self._cfg = _TaskConfig(self.robot)
        nominal: RotorParams = self.world.nominal_rotor
        self._nominal_mass = self.world.mass()
        self._nominal_weight = self._nominal_mass * self.world.gravity_norm()
        if action_mode == "motor":
            w2 = nominal.max_rpm**2
            self.action_scale = np.full(4, w2 / 2.0)
            self.action_offset = np.full(4, w2 / 2.0)
            hover_w2 = nominal.hover_rpm(self._nominal_mass, self.world.gravity_norm()) ** 2
            self._hover_action = np.full(4, hover_w2 / self.action_scale[0] - 1.0)
        elif action_mode == "velocity":
            self.action_scale = np.append(self._cfg.max_velocity, self._cfg.max_yaw_rate)
            self.action_offset = np.zeros(4)
            self._hover_action = np.zeros(4)
        else:
            t_max = 4.0 * nominal.max_thrust
            rates = self._cfg.max_body_rate
            self.action_scale = np.concatenate([[t_max / 2.0], rates])
            self.action_offset = np.array([t_max / 2.0, 0.0, 0.0, 0.0])
            self._hover_action = np.array([self._nominal_weight / self.action_scale[0] - 1.0, 0.0, 0.0, 0.0])
        if np.any(np.abs(self._hover_action) >= 1.0):
            raise RobotError("the rotors cannot carry the robot (hover needs more than max_rpm)",
                             file=str(self.robot.file), path=("model_params", "max_rpm"))
        self.action_joints: list[str] = []
        self._layout = list(LAYOUT)
        low = np.concatenate([np.full(3, -POS_LIMIT), np.full(9, -1.0), np.full(3, -VEL_LIMIT),
                              np.full(3, -RATE_LIMIT), np.full(3, -REL_LIMIT), np.full(4, -1.0)])
        self._finish_init(low, -low)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
        self._target = np.zeros(3)
        self._target_list = (0.0, 0.0, 0.0)
        self._hover_list = self._hover_action.tolist()
        self._prev_action = self._hover_list  # the previous action (4 floats), part of the observation
        self._prev_distance = 0.0
        self._bounds = (tuple(float(v) for v in self._cfg.bounds_low), tuple(float(v) for v in self._cfg.bounds_high))
        self._state_key: tuple[int, int] | None = None
        self._reach, self._floor_top = 0.0, 0.0  # set at each reset (_measure_floor_clearance)
        self._state_cache: tuple[tuple[float, ...], ...] = ()

    def _make_world(self) -> QuadrotorWorld:
        return QuadrotorWorld(self.robot, mode=self.action_mode)

    # ------------------------------------------------------------------ export metadata
    def action_spec(self) -> dict[str, Any]:
        """``mode``, ``joints`` (none), ``scale``, ``offset``, ``low``, ``high``.

        ``motor``: command ``ω² = offset + a·scale`` in rpm², bounds ``[0, max_rpm²]``.
        ``thrust_rates``: ``[F (N), p, q, r (rad/s)] = offset + a·scale``.
        ``velocity``: ``[vx, vy, vz (m/s, world), yaw rate (rad/s)] = a·scale``.
        """
        low = self.action_offset - self.action_scale
        high = self.action_offset + self.action_scale
        return {"mode": self.action_mode, "joints": [], "scale": [float(x) for x in self.action_scale],
                "offset": [float(x) for x in self.action_offset], "low": [float(x) for x in low],
                "high": [float(x) for x in high]}

    @property
    def target(self) -> np.ndarray:
        """Current target position (3,), m, world."""
        return self._target.copy()

    @property
    def hover_action(self) -> np.ndarray:
        """Normalised action that hovers the nominal drone (4,)."""
        return self._hover_action.copy()

    # ------------------------------------------------------------------ task hooks
    def _reset_task(self) -> None:
        w, rng, cfg = self.world, self.np_random, self._cfg
        w.sync_model()
        if self.task == "hover":
            start = rng.uniform(cfg.start_low, cfg.start_high)
            self._target = cfg.hover_target.copy()
        else:
            half = (cfg.start_high - cfg.start_low) / 2.0
            start = cfg.hover_target + rng.uniform(-half, half)
            self._target = rng.uniform(cfg.waypoint_low, cfg.waypoint_high)
        roll, pitch = rng.uniform(-cfg.start_max_tilt, cfg.start_max_tilt, size=2)
        yaw = rng.uniform(-cfg.start_max_yaw, cfg.start_max_yaw)
        quat = p.getQuaternionFromEuler([roll, pitch, yaw])
        vel = rng.uniform(-cfg.start_max_speed, cfg.start_max_speed, size=3)
        rates_body = rng.uniform(-cfg.start_max_rate, cfg.start_max_rate, size=3)
        rot = np.asarray(p.getMatrixFromQuaternion(quat), dtype=float).reshape(3, 3)
        p.resetBasePositionAndOrientation(w.robot_id, start.tolist(), quat, physicsClientId=w.client)
        p.resetBaseVelocity(w.robot_id, vel.tolist(), (rot @ rates_body).tolist(), physicsClientId=w.client)
        # rotors spin at the nominal hover speed, as after a take-off with the nominal model
        assert w.rotors is not None
        w.rotors.reset(math.sqrt(self._nominal_weight / (4.0 * w.nominal_rotor.kf)))
        w.active = self._command(self._hover_action)
        self._prev_action = self._hover_list
        self._prev_distance = float(np.linalg.norm(self._target - start))
        self._target_list = tuple(float(v) for v in self._target)
        self._state_key = None  # the body moved without a physics step: neither cache holds its state
        w.base_state = (-1, -1, None)
        self._measure_floor_clearance()

    def _measure_floor_clearance(self) -> None:
        """The body's reach (largest distance from its centre of mass to a corner of a link's
        bounding box, which PyBullet pads by its collision margin) and the top of the floor's
        bounding box, for :meth:`_touches_floor` (the body may be rebuilt at each reset)."""
        w = self.world
        if w.floor_id < 0:
            return
        cid, rid = w.client, w.robot_id
        com = p.getBasePositionAndOrientation(rid, physicsClientId=cid)[0]
        reach = 0.0
        for link in range(-1, p.getNumJoints(rid, physicsClientId=cid)):
            lo, hi = p.getAABB(rid, link, physicsClientId=cid)
            for corner in ((x, y, z) for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])):
                reach = max(reach, math.dist(corner, com))
        self._reach = reach
        self._floor_top = p.getAABB(w.floor_id, -1, physicsClientId=cid)[1][2]

    def _state(self) -> BaseState:
        """Position (3, m, world), rotation (9, body→world, row-major), linear velocity (3, m/s,
        world), body rates (3, rad/s), as float tuples.

        The state the rotor kernel read right after the world's last physics step when it did
        (``QuadrotorWorld.base_state``), else read now; cached per physics step (``_observe`` and
        ``_evaluate`` read the same state after a step; ``_reset_task`` clears the cache since a
        reset moves the body without stepping).
        """
        w = self.world
        key = (w.physics_step_count, w.robot_id)
        if self._state_key == key:
            return self._state_cache
        count, rid, state = w.base_state
        if state is None or (count, rid) != key:
            assert w.rotors is not None
            state = w.rotors.base_state()
        self._state_cache = state
        self._state_key = key
        return state

    def _observe(self) -> np.ndarray:
        pos, rot, lin, rates = self._state()
        t = self._target_list
        obs = np.array((*pos, *rot, *lin, *rates, t[0] - pos[0], t[1] - pos[1], t[2] - pos[2], *self._prev_action))
        return clip_(obs, self._obs_low, self._obs_high, out=obs)  # the clip ufunc (np.clip: ~4x slower here)

    def _command(self, action: np.ndarray) -> np.ndarray:
        self._prev_action = np.asarray(action, dtype=float).tolist()
        cmd = self.action_offset + self.action_scale * action
        if self.action_mode == "motor":
            return np.sqrt(np.maximum(cmd, 0.0))  # rotor speed, rpm
        return cmd

    def _evaluate(self, action: np.ndarray, obs: np.ndarray) -> tuple[float, bool, dict[str, Any]]:
        """(reward, terminated, info entries) for the applied action (4,) after the step."""
        cfg = self._cfg
        a = action.tolist()
        (x, y, z), rot, lin, rates = self._state()
        tx, ty, tz = self._target_list
        distance = math.sqrt((tx - x) ** 2 + (ty - y) ** 2 + (tz - z) ** 2)
        tilt = math.acos(min(max(rot[8], -1.0), 1.0))
        lo, hi = self._bounds
        out_of_bounds = not (lo[0] <= x <= hi[0] and lo[1] <= y <= hi[1] and lo[2] <= z <= hi[2])
        flipped = tilt > cfg.max_tilt
        touched = self._touches_floor()
        terminated = out_of_bounds or flipped or touched
        h0, h1, h2, h3 = self._hover_list
        d0, d1, d2, d3 = a[0] - h0, a[1] - h1, a[2] - h2, a[3] - h3
        dd = d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3  # left to right, as ``d @ d``
        reward = (1.0 - distance - 0.05 * math.sqrt(lin[0] ** 2 + lin[1] ** 2 + lin[2] ** 2)
                  - 0.02 * math.sqrt(rates[0] ** 2 + rates[1] ** 2 + rates[2] ** 2) - 0.1 * dd / 4.0)
        if self.task == "waypoint":
            reward += PROGRESS_WEIGHT * (self._prev_distance - distance)
        if terminated:
            reward -= CRASH_PENALTY
        self._prev_distance = distance
        info = {"is_success": distance < cfg.waypoint_radius, "distance": distance, "tilt": tilt,
                "crashed": terminated, "out_of_bounds": out_of_bounds, "flipped": flipped, "touched_floor": touched}
        return reward, terminated, info

    def _info(self, obs: np.ndarray) -> dict[str, Any]:
        info = super()._info(obs)
        info["is_success"] = self._prev_distance < self._cfg.waypoint_radius
        info["distance"] = self._prev_distance
        return info

    def _touches_floor(self) -> bool:
        """Whether PyBullet reports a contact between the drone and the floor.

        The contact query is skipped while the drone is too high for one: its centre of mass
        more than its reach (:meth:`_measure_floor_clearance`) plus ``FLOOR_QUERY_MARGIN`` plus
        twice this physics step's fall above the floor (contacts come from collision detection
        at the start of the step, before the body moved).
        """
        w = self.world
        (_, _, z), _, lin, _ = self._state()
        if z - self._reach - self._floor_top > FLOOR_QUERY_MARGIN + 2.0 * abs(lin[2]) * w.physics_dt:
            return False
        return self._floor_contact()

    def _floor_contact(self) -> bool:
        """PyBullet's contact query between the drone and the floor (``False`` without a floor)."""
        w = self.world
        return w.floor_id >= 0 and bool(p.getContactPoints(w.robot_id, w.floor_id, physicsClientId=w.client))


class _TaskConfig:
    """``model_params.task`` and the command limits (``rate_controller.max_body_rate``,
    ``velocity_controller.max_velocity``/``max_yaw_rate``) of a quadrotor robot, validated."""

    DEFAULTS: dict[str, Any] = {
        "hover_target": [0.0, 0.0, 1.0], "start_low": [-0.3, -0.3, 0.7], "start_high": [0.3, 0.3, 1.3],
        "start_max_tilt": 0.2, "start_max_yaw": 0.5, "start_max_speed": 0.2, "start_max_rate": 0.5,
        "waypoint_low": [-1.0, -1.0, 0.5], "waypoint_high": [1.0, 1.0, 1.5], "waypoint_radius": 0.1,
        "bounds_low": [-2.0, -2.0, 0.03], "bounds_high": [2.0, 2.0, 2.5], "max_tilt": 1.2,
    }

    def __init__(self, robot: RobotDescription) -> None:
        file = str(robot.file)
        raw = robot.model_params.get("task", {})
        if not isinstance(raw, dict):
            raise RobotError("expected a mapping of task settings", file=file, path=("model_params", "task"))
        unknown = sorted(set(raw) - set(self.DEFAULTS))
        if unknown:
            raise RobotError(f"unknown task setting(s) {unknown}; expected some of {sorted(self.DEFAULTS)}",
                             file=file, path=("model_params", "task"))
        for key, default in self.DEFAULTS.items():
            size = len(default) if isinstance(default, list) else 1
            setattr(self, key, _numbers(raw.get(key, default), size, file, ("model_params", "task", key)))
        for key in ("start_max_tilt", "start_max_yaw", "start_max_speed", "start_max_rate", "waypoint_radius", "max_tilt"):
            value = float(getattr(self, key))
            if value < 0:
                raise RobotError(f"expected a value >= 0, got {value}", file=file, path=("model_params", "task", key))
            setattr(self, key, value)
        for lo, hi in (("start_low", "start_high"), ("waypoint_low", "waypoint_high"), ("bounds_low", "bounds_high")):
            if np.any(getattr(self, lo) > getattr(self, hi)):
                raise RobotError(f"{lo} must not exceed {hi}", file=file, path=("model_params", "task", lo))
        self.max_body_rate = _limit(robot, "rate_controller", "max_body_rate", [4.0, 4.0, 2.0])
        self.max_velocity = _limit(robot, "velocity_controller", "max_velocity", [1.0, 1.0, 1.0])
        self.max_yaw_rate = float(_limit(robot, "velocity_controller", "max_yaw_rate", 1.0))

    hover_target: np.ndarray
    start_low: np.ndarray
    start_high: np.ndarray
    start_max_tilt: float
    start_max_yaw: float
    start_max_speed: float
    start_max_rate: float
    waypoint_low: np.ndarray
    waypoint_high: np.ndarray
    waypoint_radius: float
    bounds_low: np.ndarray
    bounds_high: np.ndarray
    max_tilt: float
    max_body_rate: np.ndarray
    max_velocity: np.ndarray
    max_yaw_rate: float


def _limit(robot: RobotDescription, section: str, key: str, default: Any) -> np.ndarray:
    """A positive command limit ``model_params.<section>.<key>`` (3 numbers, or 1 for a scalar default)."""
    cfg = robot.model_params.get(section, {})
    cfg = cfg if isinstance(cfg, dict) else {}
    size = len(default) if isinstance(default, list) else 1
    path = ("model_params", section, key)
    value = _numbers(cfg.get(key, default), size, str(robot.file), path)
    if np.any(value <= 0):
        raise RobotError(f"expected values > 0, got {value.tolist()}", file=str(robot.file), path=path)
    return value


def _numbers(raw: Any, size: int, file: str, path: Sequence[Any]) -> np.ndarray:
    try:
        arr = None if isinstance(raw, (str, bool, dict)) else np.asarray(raw, dtype=float)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.size != size or not np.all(np.isfinite(arr)):
        raise RobotError(f"expected {size} number(s), got {raw!r}", file=file, path=path)
    return arr.reshape(size) if size > 1 else arr.reshape(())


def register_quadrotor_envs() -> None:
    """Register :data:`QUADROTOR_SPECS` with Gymnasium (idempotent)."""
    for env_id, (kwargs, steps) in QUADROTOR_SPECS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point="sim2real.envs.quadrotor:QuadrotorEnv",
                         kwargs={**kwargs, "max_episode_steps": None}, max_episode_steps=steps, **SPEC_FLAGS)


register_quadrotor_envs()
