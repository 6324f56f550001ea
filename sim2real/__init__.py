"""sim2real: a toolkit that takes a robot policy from randomized simulation to the real robot.

Sub-packages, each usable on its own:

* :mod:`sim2real.profiles` -- randomization profiles (schema, validation, sampling)
* :mod:`sim2real.robots`   -- robot descriptions from ``robots/<name>/robot.yaml``
* :mod:`sim2real.sim`      -- PyBullet worlds and the randomizers that apply a profile
* :mod:`sim2real.envs`     -- Gymnasium envs registered as ``sim2real/...``
* :mod:`sim2real.train`    -- SB3 training, EPOpt, ADR, sweeps, export
* :mod:`sim2real.sysid`    -- hardware logs, offline calibration, online system ID
* :mod:`sim2real.adapt`    -- domain-adaptation networks
* :mod:`sim2real.ros2`     -- the deployment node and its transports
"""

from sim2real.errors import Sim2RealError

__version__ = "0.1.0"
__all__ = ["Sim2RealError", "__version__"]
