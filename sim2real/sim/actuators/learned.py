"""``actuator_net``: a fitted actuator network (:mod:`sim2real.sim.actuators.net`) as a drive group.

The group's position command is held (zero-order) over the control period; every physics step
the net maps the history of position errors q* − q and velocities q̇ to the torque, clipped to
±τ_lim (max effort × motor strength). The net file is robot.yaml's ``net`` key; its joints must
be the group's joints, in robot.yaml order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim2real.actuator_config import ActuatorConfig
from sim2real.errors import RobotError
from sim2real.sim.actuators.base import Actuator

if TYPE_CHECKING:
    from sim2real.sim.world import PhysicsWorld


class NetActuator(Actuator):
    """An :class:`~sim2real.sim.actuators.net.ActuatorNetActuator` over one group of joints."""

    def __init__(self, config: ActuatorConfig, world: "PhysicsWorld", mode: str) -> None:
        from sim2real.sim.actuators.net import ActuatorNetActuator

        super().__init__(config, world, mode)
        self.net = ActuatorNetActuator(str(config.net))
        if tuple(self.net.joint_names) != tuple(config.joints):
            raise RobotError(f"actuator net {config.net} drives joints {self.net.joint_names}, "
                             f"the group has {list(config.joints)}", file=str(world.robot.file), path=("actuators",))
        self.target = np.zeros(len(self.index))
        self.dt = world.physics_dt

    def reset(self, command: np.ndarray, q: np.ndarray, qd: np.ndarray) -> None:
        self.target = np.array(command, dtype=float)
        self.net.reset(q, qd)

    def set_command(self, command: np.ndarray) -> None:
        self.target = np.array(command, dtype=float)

    def torque(self, q: np.ndarray, qd: np.ndarray, feedforward: np.ndarray | None = None) -> np.ndarray:
        lim = self.effort_limit
        return np.minimum(np.maximum(self.net.torque(self.target, q, qd, self.dt), -lim), lim)
