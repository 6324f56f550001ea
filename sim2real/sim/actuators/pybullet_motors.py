"""PyBullet's own drives kept as explicit models, and the torque pass-through.

* ``pybullet_position``: PyBullet's ``POSITION_CONTROL`` constraint motor. Its solver drives the
  joint toward the target with max force τ_lim inside every physics step, minimising
  ``positionGain·(q* − q)/h + velocityGain·(0 − q̇)``-type velocity errors: a very stiff servo that
  finishes almost any small step within one control period (not what a real drive does; kept for
  comparison and for robots that select it).
* ``pybullet_velocity``: ``VELOCITY_CONTROL`` toward the commanded joint velocity.
* ``torque``: the command is the torque, clipped to ±τ_lim.

The PyBullet motors are configured once when a command becomes active (:meth:`issue`); they do
not compute torques per physics step. ``position_gain`` / ``velocity_gain`` are the world's
per-joint values of the profile kinds of the same names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pybullet as p

from sim2real.sim.actuators.base import Actuator

if TYPE_CHECKING:
    from sim2real.sim.world import PhysicsWorld


class PyBulletMotorActuator(Actuator):
    """``pybullet_position`` (``mode == "position"``) or ``pybullet_velocity`` (``"velocity"``)."""

    computes_torque = False

    def __init__(self, config, world: "PhysicsWorld", mode: str) -> None:  # type: ignore[no-untyped-def]
        super().__init__(config, world, mode)
        self.world = world
        self.joint_ids = [world._joint_list[i] for i in self.index]
        self._all = len(self.index) == len(world._joint_list)

    def set_command(self, command: np.ndarray) -> None:
        self.issue(command)

    def issue(self, command: np.ndarray) -> None:
        """Set the PyBullet motors of the group to ``command`` (k,) rad or rad/s, with the world's
        current gains and max force."""
        w = self.world
        j, cid, rid = w.current["joints"], w.client, w.robot_id
        if self._all:  # the whole robot: arrays as they are
            forces, kp, kd = w.effort_limit, j["position_gain"], j["velocity_gain"]
        else:
            forces, kp, kd = w.effort_limit[self.index], j["position_gain"][self.index], j["velocity_gain"][self.index]
        if self.mode == "position":
            p.setJointMotorControlArray(rid, self.joint_ids, p.POSITION_CONTROL, targetPositions=command.tolist(),
                                        forces=forces.tolist(), positionGains=kp.tolist(),
                                        velocityGains=kd.tolist(), physicsClientId=cid)
        else:
            p.setJointMotorControlArray(rid, self.joint_ids, p.VELOCITY_CONTROL, targetVelocities=command.tolist(),
                                        forces=forces.tolist(), velocityGains=kd.tolist(), physicsClientId=cid)

    def torque(self, q: np.ndarray, qd: np.ndarray, feedforward: np.ndarray | None = None) -> np.ndarray:
        raise TypeError("PyBullet motors apply their torques inside PyBullet's solver")


class TorqueActuator(Actuator):
    """``torque``: τ = clip(command, ±τ_lim)."""

    def __init__(self, config, world: "PhysicsWorld", mode: str) -> None:  # type: ignore[no-untyped-def]
        super().__init__(config, world, mode)
        self.command = np.zeros(len(self.index))

    def set_command(self, command: np.ndarray) -> None:
        self.command = np.array(command, dtype=float)

    def torque(self, q: np.ndarray, qd: np.ndarray, feedforward: np.ndarray | None = None) -> np.ndarray:
        lim = self.effort_limit
        return np.minimum(np.maximum(self.command, -lim), lim)
