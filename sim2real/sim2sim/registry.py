"""Robot kinds the MuJoCo hardware simulates, and the module that runs each.

Each module named here provides the same three functions, so ``sim2real sim2sim`` picks one by
``robot.kind`` and never branches on it:

* ``load_hardware(path: str, robot: RobotDescription) -> Hardware`` — read and validate a hardware
  file (raises :class:`sim2real.errors.ConfigError` naming the file and key);
* ``draw_hardware(path: str, robot: RobotDescription, rng: numpy.random.Generator) -> Hardware`` —
  draw a hardware from a file of ranges (reproducible for one generator state);
* ``run(robot, hardware, transport, options: RunOptions) -> dict`` — simulate in (scaled) real time
  behind the robot's ROS 2 topics on ``transport`` until ``options.duration`` s have passed, and
  return the JSON-able summary (what was received, trajectory summary, safety events).

``Hardware`` is the kind's own dataclass with ``to_dict()`` (what ``--truth`` writes).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from sim2real.errors import ConfigError

@dataclass(frozen=True)
class RunOptions:
    """How a hardware process runs.

    Attributes:
        duration: simulated seconds to run (``None``: until interrupted).
        realtime_factor: simulated seconds per wall-clock second (1.0: real time).
        seed: seed of the measurement-noise generator.
    """

    duration: float | None = None
    realtime_factor: float = 1.0
    seed: int = 0


#: robot.yaml ``kind`` -> module implementing ``load_hardware``, ``draw_hardware`` and ``run``
KIND_MODULES: dict[str, str] = {
    "arm": "sim2real.sim2sim.arm",
    "quadrotor": "sim2real.sim2sim.quadrotor",
}


def hardware_module(kind: str) -> ModuleType:
    """The module simulating robots of ``kind``; a clear error for kinds without MuJoCo hardware."""
    name = KIND_MODULES.get(kind)
    if name is None:
        raise ConfigError(f"no MuJoCo hardware for robots of kind {kind!r} (available: {', '.join(sorted(KIND_MODULES))})")
    return importlib.import_module(name)
