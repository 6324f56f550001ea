"""Hopper: planar one-legged forward hopping (Gym Hopper / EPOpt), torque control.

Observation (14, float32): ``base_height`` (torso centre z, m), ``base_pitch`` (rad),
``joint_position`` (3, rad), ``base_linear_velocity`` (3, m/s, world), ``base_angular_velocity``
(3, rad/s, torso frame), ``joint_velocity`` (3, rad/s); velocities clipped to ±10.
Action: torques a·200 N·m (gear 200) on thigh, leg, foot. Reward (Gym Hopper): forward
torso velocity + 1 (alive) − 1e-3·‖a‖². Terminates when the torso centre drops below
``healthy_z`` (0.7 m) or |pitch| exceeds ``healthy_angle`` (0.2 rad). 125 Hz control,
500 Hz physics.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pybullet as p

from sim2real.errors import EnvError
from sim2real.envs.base import SimEnv, clip_
from sim2real.profiles import Profile
from sim2real.robots import RobotDescription

ROOT_JOINTS = ("ignore1", "ignore2", "ignore3")  # slide x, slide z, hinge y of mjcf/hopper.xml
VEL_CLIP = 10.0


class HopperEnv(SimEnv):
    """EPOpt-style hopper.

    Args:
        robot: the hopper robot (default ``hopper``).
        profile: randomization profile (e.g. ``epopt_hopper``).
        max_episode_steps: episode length (default 1000, as Gym Hopper).
        forward_reward_weight, healthy_reward, ctrl_cost_weight: reward terms.
        reset_noise: half-width of the uniform noise on the initial joint positions/velocities.
        render_mode: ``None`` or ``"rgb_array"``.
    """
    render_view = (3.0, 0.0, -10.0)

    def __init__(self, robot: str | RobotDescription = "hopper", profile: str | dict | Profile = "nominal",
                 max_episode_steps: int | None = 1000, forward_reward_weight: float = 1.0,
                 healthy_reward: float = 1.0, ctrl_cost_weight: float = 1e-3, reset_noise: float = 5e-3,
                 render_mode: str | None = None) -> None:
        super().__init__(robot, profile, max_episode_steps, control_mode="torque", render_mode=render_mode)
        w, r = self.world, self.robot
        infos = {p.getJointInfo(w.robot_id, j, physicsClientId=w.client)[1].decode(): j
                 for j in range(w.n_model_joints)}
        missing = [j for j in ROOT_JOINTS if j not in infos]
        if missing or "torso" not in w.link_index:
            raise EnvError(f"robot {r.name!r} is not the planar hopper (needs joints {list(ROOT_JOINTS)} and a "
                           f"'torso' link; {r.file})")
        self._root = [infos[j] for j in ROOT_JOINTS]
        self._all = self._root + [int(j) for j in w.joint_indices]
        self._torso = w.link_index["torso"]
        self.forward_reward_weight = forward_reward_weight
        self.healthy_reward = healthy_reward
        self.ctrl_cost_weight = ctrl_cost_weight
        self.reset_noise = reset_noise
        self.healthy_z = float(r.model_params.get("healthy_z", 0.7))
        self.healthy_angle = float(r.model_params.get("healthy_angle", 0.2))
        self.action_mode = "joint_torque"
        self.action_joints = r.joint_names
        self.action_scale = np.array([float(r.model_params.get("gear", 200.0))] * r.n_joints)
        self.action_offset = np.zeros(r.n_joints)
        n = r.n_joints
        self._layout = [("base_height", 1), ("base_pitch", 1), ("joint_position", n), ("base_linear_velocity", 3),
                        ("base_angular_velocity", 3), ("joint_velocity", n)]
        v = np.full(6 + n, VEL_CLIP)
        low = np.concatenate([[0.0, -np.pi], w.lower - 0.5, -v])
        high = np.concatenate([[3.0, np.pi], w.upper + 0.5, v])
        self._finish_init(low, high)
        self._x = 0.0

    def _reset_task(self) -> None:
        w, rng, cid = self.world, self.np_random, self.world.client
        noise = rng.uniform(-self.reset_noise, self.reset_noise, size=(2, len(self._all)))
        for k, j in enumerate(self._all):
            p.resetJointState(w.robot_id, j, float(noise[0, k]), float(noise[1, k]), physicsClientId=cid)
        self._x = self._read()[2]

    def _read(self) -> tuple[float, float, float, tuple[float, ...]]:
        """Torso height (m), pitch (rad), torso x (m) and the unclipped observation as floats.

        One ``getLinkState`` (torso pose + velocity) and one ``getJointStates`` (root + legs)
        per call, indices cached at construction."""
        w = self.world
        cid, rid = w.client, w.robot_id
        (x, _, z), orn, _, _, _, _, (vx, vy, vz), (wx, wy, wz) = p.getLinkState(
            rid, self._torso, computeLinkVelocity=1, computeForwardKinematics=1, physicsClientId=cid)
        _, _, (pitch, _, _, _), *legs = p.getJointStates(rid, self._all, physicsClientId=cid)
        self._torso_x, self._pitch = x, pitch
        r0, r1, r2, r3, r4, r5, r6, r7, r8 = p.getMatrixFromQuaternion(orn)
        values = (z, pitch, *[s[0] for s in legs], vx, vy, vz,
                  r0 * wx + r3 * wy + r6 * wz, r1 * wx + r4 * wy + r7 * wz, r2 * wx + r5 * wy + r8 * wz,
                  *[s[1] for s in legs])  # R^T ω: angular velocity in the torso frame
        return z, pitch, x, values

    def _observe(self) -> np.ndarray:
        obs = np.array(self._read()[3])
        return clip_(obs, self._obs_low, self._obs_high, out=obs)  # also clips velocities to ±10

    def _command(self, action: np.ndarray) -> np.ndarray:
        return action * self.action_scale

    def _evaluate(self, action: np.ndarray, obs: np.ndarray) -> tuple[float, bool, dict[str, Any]]:
        """Gym Hopper's reward from the torso centre's x (m, read by :meth:`_observe`), the clipped
        torso height ``obs[0]`` (m), the pitch (rad) and the control cost ``a·a``."""
        x = self._torso_x
        x_velocity = (x - self._x) / self.world.control_dt
        self._x = x
        healthy = bool(obs[0] > self.healthy_z and abs(self._pitch) < self.healthy_angle)
        aa = 0.0
        for a in action.tolist():  # left to right (BLAS dot's order depends on the CPU)
            aa += a * a
        reward = self.forward_reward_weight * x_velocity + self.healthy_reward - self.ctrl_cost_weight * aa
        return reward, not healthy, {"x_position": x, "x_velocity": x_velocity, "is_healthy": healthy}
