"""The robot's drive: its actuator groups, built from robot.yaml ``actuators`` by model name.

:class:`Drive` is what :class:`~sim2real.sim.world.PhysicsWorld` talks to. Its ``kind`` says how
the world steps:

* ``"torque"``: every joint takes torque commands (control mode ``torque``); the world's
  torque loops send the clipped command each physics step;
* ``"computed"``: torque-computing models (``pd``, ``dc_motor``, ``actuator_net``): the world
  calls :meth:`Drive.torques` once per physics step with the joint state;
* ``"motor"``: PyBullet's constraint motors, set when a command becomes active (:meth:`Drive.issue`);
* ``"none"``: no controlled joints (the quadrotor).

The control mode decides the PyBullet motor (``position`` → ``pybullet_position``, ``velocity`` →
``pybullet_velocity``) and makes every group a ``torque`` pass-through in ``torque`` mode, so an env
may switch modes (``control_mode=``) on any robot.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

import numpy as np

from sim2real.actuator_config import ActuatorConfig
from sim2real.errors import RobotError
from sim2real.sim.actuators.base import Actuator

if TYPE_CHECKING:
    from sim2real.sim.world import PhysicsWorld

#: model name -> "module:Class" (imported on first use)
ACTUATOR_MODELS: dict[str, str] = {
    "pd": "sim2real.sim.actuators.pd:PDActuator",
    "dc_motor": "sim2real.sim.actuators.pd:DCMotorActuator",
    "actuator_net": "sim2real.sim.actuators.learned:NetActuator",
    "pybullet_position": "sim2real.sim.actuators.pybullet_motors:PyBulletMotorActuator",
    "pybullet_velocity": "sim2real.sim.actuators.pybullet_motors:PyBulletMotorActuator",
    "torque": "sim2real.sim.actuators.pybullet_motors:TorqueActuator",
}


def actuator_class(model: str) -> type[Actuator]:
    """The class of actuator model ``model`` (a key of :data:`ACTUATOR_MODELS`)."""
    module, name = ACTUATOR_MODELS[model].split(":")
    return getattr(import_module(module), name)


def _model_for(config: ActuatorConfig, mode: str) -> str:
    if mode == "torque":
        return "torque"
    if config.model in ("pybullet_position", "pybullet_velocity", "torque"):
        return f"pybullet_{mode}"
    if not config.accepts(mode):
        raise RobotError(f"actuator model {config.model} cannot follow {mode!r} commands "
                         f"(joints {list(config.joints)})", path=("actuators",))
    return config.model


class Drive:
    """All actuator groups of a world's robot for control mode ``world.mode``.

    Attributes:
        kind: ``"torque"`` | ``"computed"`` | ``"motor"`` | ``"none"`` (module doc).
        groups: the :class:`Actuator` of each group.
        mode: the control mode it was built for.
    """

    def __init__(self, world: "PhysicsWorld") -> None:
        self.mode = world.mode
        self.n = len(world._joint_list)
        configs = world.robot.actuators if self.n else ()
        models = [_model_for(c, self.mode) for c in configs]
        self.groups: list[Actuator] = []
        for config, model in zip(configs, models):
            self.groups.append(actuator_class(model)(config, world, self.mode))
        if not self.groups:
            self.kind = "none"
        elif self.mode == "torque":
            self.kind = "torque"
        elif all(g.computes_torque for g in self.groups):
            self.kind = "computed"
        else:
            self.kind = "motor"
        self.gravity: Any = None
        if self.kind == "computed" and any(c.gravity_ff for c in configs):
            from sim2real.sim.actuators.pd import NominalGravity

            self.gravity = NominalGravity(world)
        self._ff = [g.config.gravity_ff for g in self.groups]
        self._single = len(self.groups) == 1 and len(self.groups[0].index) == self.n

    def configure(self, joints: dict[str, np.ndarray], effort_limit: np.ndarray) -> None:
        """Every group re-reads its parameters (world per-joint store, effort limits (n_joints,) N·m)."""
        for g in self.groups:
            g.configure(joints, effort_limit)

    def reset(self, command: np.ndarray, q: np.ndarray, qd: np.ndarray) -> None:
        """Start from rest with ``command`` (n_joints,) active and nothing in flight."""
        for g in self.groups:
            i = g.index
            g.reset(command[i], q[i], qd[i])

    def advance(self, steps: int) -> None:
        """Move interpolating setpoints ``steps`` physics steps along their ramps without physics
        (to resume mid-ramp, e.g. a log replay window starting between commands)."""
        for g in self.groups:
            setpoint = getattr(g, "setpoint", None)
            if setpoint is not None and g.mode == "position":
                for _ in range(steps):
                    setpoint.advance()

    def issue(self, command: np.ndarray) -> None:
        """``command`` (n_joints,) becomes active."""
        if self._single:
            self.groups[0].set_command(command)
            return
        for g in self.groups:
            g.set_command(command[g.index])

    def torques(self, q: np.ndarray, qd: np.ndarray) -> np.ndarray:
        """Joint torques (n_joints,) N·m for the next physics step from the controlled joints'
        positions ``q`` (rad) and velocities ``qd`` (rad/s), each (n_joints,)."""
        ff = self.gravity.torques(q) if self.gravity is not None else None
        if self._single:
            return self.groups[0].torque(q, qd, ff if self._ff[0] else None)
        out = np.zeros(self.n)
        for g, use_ff in zip(self.groups, self._ff):
            i = g.index
            out[i] = g.torque(q[i], qd[i], ff[i] if use_ff and ff is not None else None)
        return out

    def close(self) -> None:
        if self.gravity is not None:
            self.gravity.close()
