"""The joint-space armature solve (MuJoCo's armature on a PyBullet robot).

Armature J (a geared motor's rotor inertia seen at the joint) is MuJoCo's: J on the joint's
diagonal of the joint-space mass matrix. PyBullet has none, so before each physics step the
world sends τ − J q̈ with q̈ = (M + diag J)⁻¹(τ − bias − D q̇ + g) (see :mod:`sim2real.sim.dynamics`).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def armature_solve(mass: Sequence[Sequence[float]], bias: Sequence[float], qd: Sequence[float],
                   damping: Sequence[float], dofs: Sequence[int], armature: Sequence[float], torque: Sequence[float],
                   prev: tuple[Any, np.ndarray, np.ndarray] | None, h: float) -> tuple[list[float], np.ndarray]:
    """The arithmetic of :meth:`~sim2real.sim.world.PhysicsWorld._armature_torques`.

    Over the ``n`` movable joints: ``mass`` (n, n) kg·m² (M), ``bias`` (n,) N·m (gravity,
    Coriolis, centrifugal), ``qd`` (n,) rad/s, ``damping`` (n,) N·m·s/rad; per controlled joint:
    ``dofs`` its index among the movable joints, ``armature`` (kg·m²) and ``torque`` (N·m);
    ``prev`` = (M, applied forces, q̇) of the previous physics step or ``None`` (then the
    constraint force g is 0); ``h`` the physics step (s).

    Returns the torques to send (list, one per controlled joint, N·m) and the forces applied in
    this physics step (n,) (−bias − D q̇ + the sent torques), the next step's ``prev`` entry.
    """
    qd = np.asarray(qd, dtype=float)
    applied = -np.asarray(bias, dtype=float) - np.asarray(damping, dtype=float) * qd
    force = applied.copy()
    if prev is not None:  # + the previous step's constraint force g = M_prev·Δq̇/h − applied_prev
        mass_prev, applied_prev, qd_prev = prev
        force += np.asarray(mass_prev) @ ((qd - qd_prev) / h) - applied_prev
    eff = np.array(mass, dtype=float)
    dofs = np.asarray(dofs, dtype=np.intp)
    arm = np.asarray(armature, dtype=float)
    tau = np.asarray(torque, dtype=float)
    eff[dofs, dofs] += arm
    force[dofs] += tau
    qdd = np.linalg.solve(eff, force)
    sent = tau - arm * qdd[dofs]
    applied[dofs] += sent
    return sent.tolist(), applied
