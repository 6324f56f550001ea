"""PyBullet simulation core: one world per env and the randomizers that apply a sampled profile.

* :class:`PhysicsWorld` — one ``p.DIRECT`` client, floor + robot, nominal dynamics, control
  with substeps and physics-step action latency, pushes.
* :mod:`sim2real.sim.actuators` — the actuator models (``pd``, ``dc_motor``, ``actuator_net``,
  PyBullet motors, torque) that turn commands into joint torques at the physics rate.
* :mod:`sim2real.sim.randomizers` — one class per profile kind, registered by kind name
  (``register_randomizer``); visual kinds come from ``sim2real.sim.visuals``.
* :class:`RandomizationRunner` — applies a profile at startup / reset / intervals.
"""

from sim2real.sim._pybullet import pybullet as _pybullet  # noqa: F401  (first import, without the banner)
from sim2real.sim.world import PhysicsWorld, RenderSettings
from sim2real.sim.runner import RandomizationRunner  # noqa: E402  (imports randomizers, which import world)

__all__ = ["PhysicsWorld", "RandomizationRunner", "RenderSettings"]
