"""Actuator models: commands in, joint torques out, at the physics rate (docs/actuators.md).

One class per model, declared per joint group in robot.yaml ``actuators``
(:mod:`sim2real.actuator_config` parses it):

* ``pd`` / ``dc_motor`` — :mod:`sim2real.sim.actuators.pd`;
* ``actuator_net`` — :mod:`sim2real.sim.actuators.learned` over :mod:`sim2real.sim.actuators.net`;
* ``pybullet_position`` / ``pybullet_velocity`` / ``torque`` — :mod:`sim2real.sim.actuators.pybullet_motors`.

:class:`Drive` holds a world's groups; the registry :data:`ACTUATOR_MODELS` maps model names
to classes (imported on first use).
"""

from sim2real.sim.actuators.base import Actuator, Setpoint
from sim2real.sim.actuators.drive import ACTUATOR_MODELS, Drive, actuator_class

__all__ = ["ACTUATOR_MODELS", "Actuator", "Drive", "Setpoint", "actuator_class"]
