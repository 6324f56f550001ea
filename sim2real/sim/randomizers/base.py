"""Randomizer base class and the registry keyed by parameter kind.

A randomizer is a small class (one per kind, in the spirit of Isaac Lab's event terms)
built once per env from a profile :class:`~sim2real.profiles.Entry`. Construction checks
the entry's targets against the loaded world (an unknown link fails there, before any
episode). :meth:`Randomizer.apply` takes one :class:`~sim2real.profiles.Sample` and the
env's generator, computes the final values ``entry.apply_op(nominal, draw)`` against
the world's *nominal* values (never the current ones, so nothing compounds), writes them
into the world and returns ``{target: value}`` for ``info["randomization"]``.

Other modules add kinds with the decorator::

    @register_randomizer("light_color")
    class LightColorRandomizer(Randomizer):
        def apply(self, sample, rng):
            self.world.render_settings.light_color = sample.values[0]
            return {"value": sample.values[0].tolist()}
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np

from sim2real.errors import ProfileError

if TYPE_CHECKING:
    from sim2real.profiles import Entry, Sample
    from sim2real.sim.world import PhysicsWorld

RANDOMIZERS: dict[str, type["Randomizer"]] = {}
# modules that register kinds of other engineers' areas; imported on first lookup miss
_EXTENSION_MODULES = ("sim2real.sim.visuals",)


def register_randomizer(kind: str) -> Callable[[type["Randomizer"]], type["Randomizer"]]:
    """Class decorator registering a :class:`Randomizer` subclass for parameter ``kind``."""
    def deco(cls: type[Randomizer]) -> type[Randomizer]:
        cls.kind = kind
        RANDOMIZERS[kind] = cls
        return cls
    return deco


def randomizer_class(kind: str) -> type["Randomizer"]:
    """The registered class for ``kind`` (imports extension modules on a miss)."""
    if kind not in RANDOMIZERS:
        for mod in _EXTENSION_MODULES:
            try:
                importlib.import_module(mod)
            except ModuleNotFoundError as exc:
                if exc.name != mod:
                    raise
    try:
        return RANDOMIZERS[kind]
    except KeyError:
        raise ProfileError(f"no randomizer is registered for kind {kind!r} "
                           f"(registered: {sorted(RANDOMIZERS)})") from None


def make_randomizer(world: "PhysicsWorld", entry: "Entry") -> "Randomizer":
    return randomizer_class(entry.param)(world, entry)


class Randomizer:
    """Applies draws of one entry to a world.

    Attributes:
        kind: the parameter kind (set by :func:`register_randomizer`).
        order: application order at a reset (lower first); ``com_offset`` rebuilds the body
            and therefore runs before everything else.
        world, entry, targets: what it acts on; ``targets`` are resolved names.
    """

    kind: ClassVar[str] = ""
    order: ClassVar[int] = 50

    def __init__(self, world: "PhysicsWorld", entry: "Entry") -> None:
        self.world = world
        self.entry = entry
        self.targets: list[str] = entry.resolve_targets(world.robot)
        self.validate()

    def validate(self) -> None:
        """Check the targets exist in the world; raise :class:`ProfileError` otherwise."""

    def fail(self, message: str) -> None:
        raise ProfileError(message, path=("params", self.entry.name))

    def apply(self, sample: "Sample", rng: np.random.Generator) -> dict[str, Any]:
        """Write the sample into the world; return ``{target: final value}`` (``{"value": v}`` for global kinds)."""
        raise NotImplementedError


def plain(value: Any) -> float | tuple[float, ...]:
    """A float for 1-element arrays, else a tuple of floats (immutable, JSON-friendly info values)."""
    if isinstance(value, float):
        return value
    arr = np.asarray(value, dtype=float).reshape(-1)
    return float(arr[0]) if arr.size == 1 else tuple(arr.tolist())
