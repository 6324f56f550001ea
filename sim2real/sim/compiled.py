"""The compiled hot paths of the simulation (``sim2real/sim/_fastsim.c``), when they are built.

``setup.py`` builds the C extension ``sim2real.sim._fastsim`` where a C compiler and the Python
headers are available (``pip install`` prints a warning and goes on without it otherwise). It
holds the quadrotor's per-physics-step loop (rotor model, body-rate and velocity controllers),
the quadrotor env's observation and reward, the torque-control substep loop, the hopper's
observation read and the joint-space armature solve (``armature_solve``). Every one of
them has a Python twin doing the same operations in the same order, so results are the same bit
for bit with or without it (``tests/test_fastsim.py``); only the speed differs.

Set ``SIM2REAL_FASTSIM=0`` in the environment (or :data:`ENABLED` to ``False`` before building a
world or env) to run the Python code instead.
"""

from __future__ import annotations

import os
from types import ModuleType

try:
    from sim2real.sim import _fastsim as _built
except ImportError:  # pragma: no cover - exercised on machines without a C compiler
    _built = None

#: use the compiled code when it is built (worlds and envs read this when they are created)
ENABLED = os.environ.get("SIM2REAL_FASTSIM", "1") != "0"


def built() -> bool:
    """Whether the extension was built (whatever :data:`ENABLED` says)."""
    return _built is not None


def module() -> ModuleType | None:
    """The extension module, or ``None`` when it is not built or :data:`ENABLED` is off."""
    return _built if ENABLED else None
