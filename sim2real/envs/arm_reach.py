"""Reach: move an arm's end effector to a random target in its workspace.

Observation (float32, base frame): ``joint_position`` (n, rad), ``joint_velocity`` (n, rad/s),
``ee_position`` (3, m), ``target_position`` (3, m). Actions in [-1, 1] per joint:
``joint_position_delta`` (q_cmd = q + a·scale, clipped to the limits, scale 0.08 rad) or
``joint_velocity`` (q̇_cmd = a·max_velocity). Reward: −‖ee − target‖ − 0.01·‖a‖²/n
+ ``success_bonus`` while within ``success_radius``. ``info["is_success"]``: ee within
the radius after the step. Episodes start at the home pose with ±0.05 rad noise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pybullet as p

from sim2real.errors import EnvError
from sim2real.envs.base import SimEnv
from sim2real.profiles import Profile
from sim2real.robots import RobotDescription

ACTION_MODES = ("joint_position_delta", "joint_velocity")


class ArmReachEnv(SimEnv):
    """Reach a target drawn uniformly from ``robot.model_params.reach_workspace``.

    Args:
        robot: an arm (``kuka_iiwa``, ``franka_panda`` or a path).
        profile: randomization profile.
        action_mode: ``joint_position_delta`` or ``joint_velocity``.
        max_episode_steps: episode length in control steps (default 100 = 5 s at 20 Hz).
        position_delta_scale: rad per step at |a| = 1 in ``joint_position_delta`` mode.
        success_bonus: reward added on every step the ee is within the success radius.
        terminate_on_success: end the episode when the target is reached.
        start_noise: half-width (rad) of the uniform noise on the home pose.
        render_mode: ``None`` or ``"rgb_array"`` (``render()`` returns a frame).
    """

    def __init__(self, robot: str | RobotDescription = "kuka_iiwa", profile: str | dict | Profile = "nominal",
                 action_mode: str = "joint_position_delta", max_episode_steps: int | None = 100,
                 position_delta_scale: float = 0.08, success_bonus: float = 1.0,
                 terminate_on_success: bool = False, start_noise: float = 0.05,
                 render_mode: str | None = None) -> None:
        if action_mode not in ACTION_MODES:
            raise EnvError(f"unknown action_mode {action_mode!r}; expected one of {list(ACTION_MODES)}")
        super().__init__(robot, profile, max_episode_steps,
                         control_mode="position" if action_mode == "joint_position_delta" else "velocity",
                         render_mode=render_mode)
        r = self.robot
        if r.kind != "arm" or r.end_effector_link is None:
            raise EnvError(f"robot {r.name!r} is not an arm with an end_effector_link ({r.file})")
        ws = r.model_params.get("reach_workspace")
        if not (isinstance(ws, dict) and "low" in ws and "high" in ws):
            raise EnvError(f"robot {r.name!r} has no model_params.reach_workspace {{low, high}} ({r.file})")
        self.ws_low = np.asarray(ws["low"], dtype=float)
        self.ws_high = np.asarray(ws["high"], dtype=float)
        self.success_radius = float(r.model_params.get("success_radius", 0.05))
        self.success_bonus = float(success_bonus)
        self.terminate_on_success = bool(terminate_on_success)
        self.start_noise = float(start_noise)
        w = self.world
        n = r.n_joints
        self.action_mode = action_mode
        self.action_joints = r.joint_names
        if action_mode == "joint_position_delta":
            self.action_scale = np.full(n, float(position_delta_scale))
        else:
            self.action_scale = w.max_velocity.copy()
        self.action_offset = np.zeros(n)
        self._layout = [("joint_position", n), ("joint_velocity", n), ("ee_position", 3), ("target_position", 3)]
        vmax = 2.0 * w.max_velocity
        reach = 2.0
        # bounds leave room for observation noise (clipping would bias it)
        low = np.concatenate([w.lower - 0.5, -vmax, np.full(3, -reach), self.ws_low - 0.5])
        high = np.concatenate([w.upper + 0.5, vmax, np.full(3, reach), self.ws_high + 0.5])
        self._finish_init(low, high)
        base_pos, base_orn = w.base_pose()
        self._base_inv = p.invertTransform(base_pos.tolist(), base_orn.tolist())
        self._base_identity = bool(np.allclose(base_pos, 0.0) and np.allclose(base_orn, [0, 0, 0, 1]))
        self._ee = int(w.ee_index)
        self.target = (self.ws_low + self.ws_high) / 2

    def _reset_task(self) -> None:
        w, rng = self.world, self.np_random
        q0 = np.clip(w.home + rng.uniform(-self.start_noise, self.start_noise, size=w.home.shape), w.lower, w.upper)
        w.set_joint_state(q0)
        self.target = rng.uniform(self.ws_low, self.ws_high)

    def ee_position(self) -> np.ndarray:
        """End-effector position (m) in the robot base frame."""
        return np.array(self._ee_base())

    def _ee_base(self) -> tuple[float, float, float]:
        w = self.world
        pos = p.getLinkState(w.robot_id, self._ee, computeForwardKinematics=1, physicsClientId=w.client)[4]
        if self._base_identity:
            return pos
        return p.multiplyTransforms(*self._base_inv, pos, (0, 0, 0, 1))[0]

    def _observe(self) -> np.ndarray:
        # one getJointStates + one getLinkState, one array built from a flat list
        w = self.world
        states = p.getJointStates(w.robot_id, w._joint_list, physicsClientId=w.client)
        values = [s[0] for s in states]
        values += [s[1] for s in states]
        values += self._ee_base()
        values += self.target.tolist()
        obs = np.array(values)
        self._q = obs[:len(states)]  # unclipped joint positions (a view; obs is not modified)
        return np.minimum(np.maximum(obs, self._obs_low), self._obs_high)

    def _command(self, action: np.ndarray) -> np.ndarray:
        w = self.world
        if self.action_mode == "joint_position_delta":
            return np.minimum(np.maximum(self._q + action * self.action_scale, w.lower), w.upper)
        return action * self.action_scale

    def _evaluate(self, action: np.ndarray, obs: np.ndarray) -> tuple[float, bool, dict[str, Any]]:
        n = self.robot.n_joints
        ex, ey, ez = obs[2 * n:2 * n + 3].tolist()
        tx, ty, tz = self.target.tolist()
        dist = math.sqrt((ex - tx) ** 2 + (ey - ty) ** 2 + (ez - tz) ** 2)
        success = dist < self.success_radius
        reward = -dist - 0.01 * float(action @ action) / n + (self.success_bonus if success else 0.0)
        return reward, bool(success and self.terminate_on_success), {"is_success": bool(success), "distance": dist}

    def _info(self, obs: np.ndarray) -> dict[str, Any]:
        n = self.robot.n_joints
        dist = float(np.linalg.norm(obs[2 * n:2 * n + 3] - self.target))
        return {**super()._info(obs), "is_success": bool(dist < self.success_radius),
                "distance": dist}
