"""Explicit PD drives computed at the physics rate: ``pd`` and ``dc_motor``.

``pd`` (Isaac Lab's IdealPD, legged_gym's torque-mode PD)::

    τ = clip(kp·(q* − q) + kd·(q̇* − q̇) + τ_ff, −τ_lim, τ_lim)

q*, q̇* from the command by :class:`~sim2real.sim.actuators.base.Setpoint` (``zoh`` |
``linear`` | ``cubic``); in velocity control mode q̇* is the command and the kp term is off.
τ_lim = max_effort × motor strength. τ_ff is the gravity torque of the *nominal* model at the
measured q (``gravity_ff: true``, what vendor controllers add), computed by
:class:`NominalGravity` on a copy of the robot that randomization never touches, so a
heavier-than-nominal link sags as on a real robot.

``dc_motor`` adds the torque–speed line of a DC motor: |τ| ≤ clip(τ_stall·(1 − |q̇|/ω_free),
0, τ_lim), τ_stall the stall torque (N·m), ω_free the no-load speed (rad/s).

kp, kd, τ_stall, ω_free are the world's per-joint ``position_gain``, ``velocity_gain``,
``stall_torque``, ``free_speed`` (profile kinds of the same names), re-read by
:meth:`Actuator.configure` after every randomization.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim2real.actuator_config import ActuatorConfig
from sim2real.errors import RobotError
from sim2real.sim.actuators.base import Actuator, Setpoint, group_values
from sim2real.sim.mirror import DynamicsMirror

if TYPE_CHECKING:
    from sim2real.sim.world import PhysicsWorld


class NominalGravity:
    """Gravity torques of the robot's nominal model (``world.nominal`` link masses and gravity:
    robot.yaml ``nominal`` on the model file), never randomized: ``torques(q)`` (n_joints,) N·m
    for controlled joint positions ``q`` (n_joints,) rad, other movable joints at their initial
    positions. One ``calculateInverseDynamics`` on a :class:`~sim2real.sim.mirror.DynamicsMirror`
    per call (fixed-base models only)."""

    def __init__(self, world: "PhysicsWorld") -> None:
        robot = world.robot
        if not robot.model.fixed_base:
            raise RobotError("gravity_ff needs a fixed-base model", file=str(robot.file), path=("actuators",))
        self.mirror = DynamicsMirror(world, nominal=True)
        initial = dict(world._passive_initial)
        self.q = [initial.get(j, 0.0) for j in world.movable_joints]
        self.dofs = list(world._armature_dofs)  # the controlled joints among the movable ones

    def torques(self, q: np.ndarray) -> np.ndarray:
        full = self.q
        for k, v in zip(self.dofs, q.tolist()):
            full[k] = v
        return self.mirror.gravity(full)[self.dofs]

    def close(self) -> None:
        self.mirror.close()


class PDActuator(Actuator):
    """``pd``: τ = clip(kp·(q* − q) + kd·(q̇* − q̇) + τ_ff, ±τ_lim) (see module doc)."""

    def __init__(self, config: ActuatorConfig, world: "PhysicsWorld", mode: str) -> None:
        super().__init__(config, world, mode)
        k = len(self.index)
        self.setpoint = Setpoint(config.interpolation if mode == "position" else "zoh", self.substeps,
                                 self.physics_dt, k)
        self.kp = np.zeros(k)
        self.kd = np.zeros(k)
        self.velocity_target = np.zeros(k)

    def configure(self, joints: dict[str, np.ndarray], effort_limit: np.ndarray) -> None:
        super().configure(joints, effort_limit)
        self.kp = group_values(joints, "position_gain", self.index) if self.mode == "position" else np.zeros(len(self.index))
        self.kd = group_values(joints, "velocity_gain", self.index)

    def reset(self, command: np.ndarray, q: np.ndarray, qd: np.ndarray) -> None:
        if self.mode == "position":
            self.setpoint.reset(command)
        else:
            self.velocity_target = np.array(command, dtype=float)

    def set_command(self, command: np.ndarray) -> None:
        if self.mode == "position":
            self.setpoint.command(command)
        else:
            self.velocity_target = np.array(command, dtype=float)

    def demanded(self, q: np.ndarray, qd: np.ndarray, feedforward: np.ndarray | None = None) -> np.ndarray:
        """The unsaturated PD torque (k,) for the next physics step, plus ``feedforward`` (k,) N·m."""
        if self.mode == "position":
            target, rate = self.setpoint.advance()
            tau = self.kp * (target - q) + self.kd * (rate - qd)
        else:
            tau = self.kd * (self.velocity_target - qd)
        if feedforward is not None:
            tau = tau + feedforward
        return tau

    def torque(self, q: np.ndarray, qd: np.ndarray, feedforward: np.ndarray | None = None) -> np.ndarray:
        lim = self.effort_limit
        return np.minimum(np.maximum(self.demanded(q, qd, feedforward), -lim), lim)


class DCMotorActuator(PDActuator):
    """``dc_motor``: ``pd`` saturated by the torque–speed line |τ| ≤ clip(τ_stall·(1 − |q̇|/ω_free), 0, τ_lim)."""

    def configure(self, joints: dict[str, np.ndarray], effort_limit: np.ndarray) -> None:
        super().configure(joints, effort_limit)
        self.stall_torque = group_values(joints, "stall_torque", self.index)
        self.free_speed = group_values(joints, "free_speed", self.index)

    def torque_limit(self, qd: np.ndarray) -> np.ndarray:
        """Available torque (k,) N·m at joint speeds ``qd`` (k,) rad/s."""
        return np.clip(self.stall_torque * (1.0 - np.abs(qd) / self.free_speed), 0.0, self.effort_limit)

    def torque(self, q: np.ndarray, qd: np.ndarray, feedforward: np.ndarray | None = None) -> np.ndarray:
        lim = self.torque_limit(qd)
        return np.minimum(np.maximum(self.demanded(q, qd, feedforward), -lim), lim)
