"""Randomizers: one class per profile parameter kind, registered by kind name.

Importing this package registers the dynamics, actuation and sensing kinds; visual
kinds are registered by ``sim2real.sim.visuals`` (imported on first use).
"""

from sim2real.sim.randomizers import actuation, dynamics  # noqa: F401  (registers kinds)
from sim2real.sim.randomizers.base import (
    RANDOMIZERS, Randomizer, make_randomizer, randomizer_class, register_randomizer,
)

__all__ = ["RANDOMIZERS", "Randomizer", "make_randomizer", "randomizer_class", "register_randomizer"]
