"""Distractors: random visual-only objects (boxes, spheres, cylinders) around the robot."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pybullet as p

from sim2real.errors import EnvError

SHAPES: tuple[str, ...] = ("box", "sphere", "cylinder")
#: distractor sizes are rounded to this grid (m) so visual shapes can be reused
SIZE_QUANTUM = 0.005


@dataclass
class DistractorSet:
    """Visual-only random objects (no collision shape, so nothing can hit them).

    Visual shapes cannot be deleted in PyBullet, so they are cached by shape and size
    rounded to :data:`SIZE_QUANTUM`; bodies are removed and recreated each :meth:`spawn`.
    """

    client: int
    bodies: list[int] = field(default_factory=list)
    _shapes: dict[tuple, int] = field(default_factory=dict)

    def clear(self) -> None:
        """Remove every distractor body of this set."""
        for body in self.bodies:
            try:
                p.removeBody(body, physicsClientId=self.client)
            except p.error:
                pass  # already gone (e.g. after resetSimulation)
        self.bodies = []

    def _visual_shape(self, shape: str, dims: tuple[float, ...]) -> int:
        key = (shape, dims)
        vs = self._shapes.get(key)
        if vs is None:
            if shape == "box":
                vs = p.createVisualShape(p.GEOM_BOX, halfExtents=[d / 2 for d in dims], physicsClientId=self.client)
            elif shape == "sphere":
                vs = p.createVisualShape(p.GEOM_SPHERE, radius=dims[0] / 2, physicsClientId=self.client)
            elif shape == "cylinder":
                vs = p.createVisualShape(p.GEOM_CYLINDER, radius=dims[0] / 2, length=dims[1],
                                         physicsClientId=self.client)
            else:
                raise EnvError(f"distractors: unknown shape {shape!r}; expected one of {list(SHAPES)}")
            self._shapes[key] = vs
        return vs

    def spawn(self, rng: np.random.Generator, count: int, shapes: Sequence[str] = SHAPES,
              size: Sequence[float] = (0.02, 0.08), region_low: Sequence[float] = (0.2, -0.5, 0.0),
              region_high: Sequence[float] = (0.9, 0.5, 0.4)) -> list[int]:
        """Replace the current distractors by ``count`` new ones drawn from ``rng``.

        Per object, in order: shape (uniform over ``shapes``), sizes (m, uniform in
        ``size``; box: 3 side lengths, sphere: diameter, cylinder: diameter and length),
        position (uniform in the region box, m, world), yaw (rad), RGB colour.
        """
        self.clear()
        count = int(count)
        if count < 0:
            raise EnvError(f"distractors: count must be >= 0, got {count}")
        lo_s, hi_s = float(size[0]), float(size[1])
        if not (0.0 < lo_s <= hi_s):
            raise EnvError(f"distractors: size must be [low, high] with 0 < low <= high, got {list(size)}")
        lo, hi = np.asarray(region_low, float), np.asarray(region_high, float)
        for _ in range(count):
            shape = str(shapes[int(rng.integers(len(shapes)))])
            raw = rng.uniform(lo_s, hi_s, size={"box": 3, "sphere": 1, "cylinder": 2}.get(shape, 1))
            dims = tuple(max(SIZE_QUANTUM, round(float(d) / SIZE_QUANTUM) * SIZE_QUANTUM) for d in raw)
            pos = rng.uniform(lo, hi)
            yaw = float(rng.uniform(-math.pi, math.pi))
            rgb = rng.uniform(0.0, 1.0, size=3)
            vs = self._visual_shape(shape, dims)
            body = p.createMultiBody(baseMass=0.0, baseCollisionShapeIndex=-1, baseVisualShapeIndex=vs,
                                     basePosition=pos.tolist(),
                                     baseOrientation=p.getQuaternionFromEuler([0.0, 0.0, yaw]),
                                     physicsClientId=self.client)
            p.changeVisualShape(body, -1, rgbaColor=[*rgb.tolist(), 1.0], physicsClientId=self.client)
            self.bodies.append(body)
        return list(self.bodies)


__all__ = ["SHAPES", "SIZE_QUANTUM", "DistractorSet"]
