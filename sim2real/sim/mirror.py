"""A geometry-free copy of a world's robot on a private PyBullet client, for its mass matrix and
inverse dynamics.

PyBullet computes ``calculateMassMatrix`` / ``calculateInverseDynamics`` on an inverse-dynamics
model it builds from a body at the first such call and keeps per body: later ``changeDynamics``
mass or inertia changes do not reach it (an open bullet3 bug), so on a body whose masses are
randomized every episode it would answer with the first episode's masses. A
:class:`DynamicsMirror` holds a body with the same kinematics, masses, inertias, centres of mass
and gravity, but no collision or visual shapes (built in well under a millisecond), and rebuilds
it in a reset client (``resetSimulation`` drops PyBullet's cached model) when the source values
change: :meth:`invalidate` marks that, the next call rebuilds.

Two uses: the world's joint-space armature solve (the *current* dynamics) and the ``gravity_ff``
feed-forward of PD drives (the *nominal* dynamics, never rebuilt).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pybullet as p

from sim2real.errors import EnvError
from sim2real.sim._pybullet import disconnect
from sim2real.sim.body_builder import BodyBuilder

if TYPE_CHECKING:
    from sim2real.sim.world import PhysicsWorld


def physical_inertia(diagonal: Sequence[float]) -> list[float]:
    """Principal moments (3,) kg·m² with each clipped to the sum of the other two (the triangle
    inequality of a real body's inertia). PyBullet's inverse dynamics refuses a body breaking it,
    which an independent per-axis ``link_inertia`` draw can produce; its forward dynamics accepts
    it, so the mirror differs from the simulated body only for such draws."""
    a, b, c = (float(x) for x in diagonal)
    shrink = 1.0 - 1e-9  # a clipped moment stays inside the bound after PyBullet's frame rotation
    return [a if a <= b + c else (b + c) * shrink, b if b <= a + c else (a + c) * shrink,
            c if c <= a + b else (a + b) * shrink]


class DynamicsMirror:
    """Mirror of ``world``'s robot: its current dynamics, or with ``nominal=True`` the nominal ones
    (``world.nominal`` link masses/inertias, nominal gravity, model COMs). Build it while the
    world's body is the one loaded from the model file (before any COM rebuild).

    Methods take positions/velocities of all movable joints (PyBullet's DOF order, rad, rad/s)."""

    def __init__(self, world: "PhysicsWorld", *, nominal: bool = False) -> None:
        self.world = world
        self.nominal = nominal
        self.builder = BodyBuilder(world.client, world.robot_id, shapes=False)
        self.client = p.connect(p.DIRECT)
        if self.client < 0:
            raise EnvError("could not start a PyBullet physics client")
        self.body = -1
        self.dirty = True

    def invalidate(self) -> None:
        """The world's masses, inertias, COMs or gravity changed: rebuild before the next use."""
        if not self.nominal:
            self.dirty = True

    def _rebuild(self) -> None:
        w, cid = self.world, self.client
        p.resetSimulation(physicsClientId=cid)
        state = w.nominal if self.nominal else w.current
        offsets = {} if self.nominal else {w.link_index[k]: v for k, v in w.com_offsets.items()}
        self.body = body = self.builder.build(offsets, client=cid)
        p.setGravity(*[float(x) for x in state["gravity"]], physicsClientId=cid)
        for name in w.link_names:
            link = state["links"][name]
            inertia = physical_inertia(w._effective_inertia(name, nominal=self.nominal))
            p.changeDynamics(body, w.link_index[name], mass=float(link["mass"]), localInertiaDiagonal=inertia,
                             physicsClientId=cid)
        self.dirty = False

    def mass_matrix(self, q: Sequence[float]) -> Any:
        """Joint-space mass matrix (n_dof × n_dof nested lists, kg·m²) at ``q``."""
        if self.dirty:
            self._rebuild()
        return p.calculateMassMatrix(self.body, list(q), physicsClientId=self.client)

    def inverse_dynamics(self, q: Sequence[float], qd: Sequence[float], qdd: Sequence[float]) -> Any:
        """Generalized forces (n_dof,) N·m giving ``qdd`` at (``q``, ``qd``), gravity included."""
        if self.dirty:
            self._rebuild()
        return p.calculateInverseDynamics(self.body, list(q), list(qd), list(qdd), physicsClientId=self.client)

    def gravity(self, q: Sequence[float]) -> np.ndarray:
        """Gravity torques (n_dof,) N·m at ``q`` (at rest)."""
        zeros = [0.0] * len(q)
        return np.asarray(self.inverse_dynamics(q, zeros, zeros), dtype=float)

    def close(self) -> None:
        self.client = disconnect(self.client)

    def __del__(self) -> None:  # pragma: no cover - best effort
        self.close()
