"""The actuator interface and the setpoint interpolation of position-command models.

An :class:`Actuator` drives one group of controlled joints (robot.yaml ``actuators``). A
torque-computing actuator is called once per physics step with the group's joint state and
returns the torques to apply; a PyBullet-motor actuator instead configures PyBullet's
constraint motors when a command becomes active (:mod:`sim2real.sim.actuators.pybullet_motors`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from sim2real.actuator_config import ActuatorConfig

if TYPE_CHECKING:
    from sim2real.sim.world import PhysicsWorld


class Actuator:
    """One actuator group.

    Args:
        config: the group's robot.yaml declaration.
        world: the world it drives (read for the control period, limits and per-joint parameters).
        mode: the control mode of the commands (``position`` | ``velocity`` | ``torque``).

    Attributes:
        index: (k,) int array, the group's joints among the controlled joints.
        computes_torque: True for models called every physics step (:meth:`torque`).
    """

    computes_torque = True

    def __init__(self, config: ActuatorConfig, world: "PhysicsWorld", mode: str) -> None:
        self.config = config
        self.mode = mode
        self.index = np.array(config.indices, dtype=int)
        self.physics_dt = world.physics_dt
        self.substeps = world.substeps
        self.effort_limit = np.asarray(world.max_effort, dtype=float)[self.index]

    def configure(self, joints: dict[str, np.ndarray], effort_limit: np.ndarray) -> None:
        """Read the group's current parameters: ``joints`` is the world's per-joint store
        (``PhysicsWorld.current["joints"]``, (n_joints,) arrays), ``effort_limit`` (n_joints,) N·m
        (max effort × motor strength). Called after any parameter change."""
        self.effort_limit = np.asarray(effort_limit, dtype=float)[self.index]

    def reset(self, command: np.ndarray, q: np.ndarray, qd: np.ndarray) -> None:
        """Start from rest: ``command`` (k,) acts now with nothing to interpolate from; ``q``,
        ``qd`` (k,) the joint state (rad, rad/s)."""
        self.set_command(command)

    def set_command(self, command: np.ndarray) -> None:
        """A new command (k,) becomes active (rad, rad/s or N·m by mode)."""
        raise NotImplementedError

    def torque(self, q: np.ndarray, qd: np.ndarray, feedforward: np.ndarray | None = None) -> np.ndarray:
        """Torques (k,) N·m for the next physics step from the group's state ``q`` (rad), ``qd``
        (rad/s); ``feedforward`` (k,) N·m is the nominal gravity torque when the group has
        ``gravity_ff`` (computed once for all groups by the drive), else ``None``."""
        raise NotImplementedError


class Setpoint:
    """Position setpoint q*(t) and its rate q̇*(t) between commands, sampled once per physics step.

    A command ``c`` arriving while the setpoint is at ``p0`` (rate ``v0``) starts a segment of one
    control period T = ``substeps`` physics steps h. At the k-th physics step after it (k = 1, 2,
    ...; the value at the *end* of that step), with s = min(k/substeps, 1):

    * ``zoh``: q* = c, q̇* = 0 (the command holds until the next);
    * ``linear``: q* = p0 + s·(c − p0), q̇* = (c − p0)/T while k ≤ substeps, then 0;
    * ``cubic``: the Hermite cubic from (p0, v0) to (c, (c − p0)/T) over T (ros2_control's joint
      trajectory controller between two waypoints with velocities), q̇* its derivative;
      after the segment q* = c, q̇* = 0.

    Arrays are (k,) (rad, rad/s).
    """

    def __init__(self, kind: str, substeps: int, physics_dt: float, size: int) -> None:
        self.kind = kind
        self.n = max(1, int(substeps))
        self.period = self.n * physics_dt
        self.start = np.zeros(size)
        self.end = np.zeros(size)
        self.v0 = np.zeros(size)
        self.v1 = np.zeros(size)
        self.k = self.n + 1  # past the segment: holding
        self.value = np.zeros(size)
        self.rate = np.zeros(size)

    def reset(self, q: np.ndarray) -> None:
        """Hold ``q`` (no segment in progress)."""
        self.start = self.end = self.value = np.array(q, dtype=float)
        self.v0 = self.v1 = self.rate = np.zeros_like(self.value)
        self.k = self.n + 1

    def command(self, c: np.ndarray) -> None:
        """Start a segment from the current setpoint to ``c``."""
        c = np.array(c, dtype=float)
        if self.kind == "zoh":
            self.end = self.value = c
            self.rate = np.zeros_like(c)
            return
        self.start, self.end, self.v0 = self.value, c, self.rate
        self.v1 = (c - self.start) / self.period
        self.k = 0

    def advance(self) -> tuple[np.ndarray, np.ndarray]:
        """Move one physics step on; returns (q*, q̇*) at its end."""
        if self.kind == "zoh":
            return self.value, self.rate
        self.k += 1
        if self.k > self.n:
            if self.k == self.n + 1:
                self.value, self.rate = self.end, np.zeros_like(self.end)
            return self.value, self.rate
        s = self.k / self.n
        if self.kind == "linear":
            self.value = self.start + s * (self.end - self.start)
            self.rate = self.v1
        else:  # cubic Hermite
            s2, s3, period = s * s, s * s * s, self.period
            h00, h10, h01, h11 = 2 * s3 - 3 * s2 + 1, s3 - 2 * s2 + s, -2 * s3 + 3 * s2, s3 - s2
            d00, d10, d01, d11 = 6 * s2 - 6 * s, 3 * s2 - 4 * s + 1, -6 * s2 + 6 * s, 3 * s2 - 2 * s
            p0, p1, m0, m1 = self.start, self.end, self.v0 * period, self.v1 * period
            self.value = h00 * p0 + h10 * m0 + h01 * p1 + h11 * m1
            self.rate = (d00 * p0 + d10 * m0 + d01 * p1 + d11 * m1) / period
        return self.value, self.rate


def group_values(joints: dict[str, Any], field: str, index: np.ndarray) -> np.ndarray:
    """The group's entries (k,) of a per-joint world field."""
    return np.asarray(joints[field], dtype=float)[index]
