"""Gymnasium envs, registered as ``sim2real/...`` when this package is imported.

Ids of this module: ``sim2real/KukaReach-v0``, ``sim2real/PandaReach-v0`` (joint-position
deltas), ``sim2real/KukaReachVel-v0``, ``sim2real/PandaReachVel-v0`` (joint velocities),
``sim2real/Hopper-v0`` (torques). Camera and quadrotor envs register from their own
modules, imported here when present.
"""

from __future__ import annotations

import importlib

import sim2real.sim  # noqa: F401  (imports PyBullet first, without its stdout banner)

from sim2real.envs.arm_reach import ArmReachEnv
from sim2real.envs.base import SimEnv
from sim2real.envs.hopper import HopperEnv
from sim2real.envs.registration import ENV_SPECS, register_envs

register_envs()

for _mod in ("sim2real.envs.camera", "sim2real.envs.quadrotor"):
    try:
        importlib.import_module(_mod)
    except ModuleNotFoundError as _exc:
        if _exc.name != _mod:
            raise

__all__ = ["ArmReachEnv", "ENV_SPECS", "HopperEnv", "SimEnv", "register_envs"]
