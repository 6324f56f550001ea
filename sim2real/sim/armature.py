"""The joint-space armature solve (MuJoCo's armature on a PyBullet robot).

Armature J (a geared motor's rotor inertia seen at the joint) is MuJoCo's: J on the joint's
diagonal of the joint-space mass matrix. PyBullet has none, so before each physics step the
world sends τ − J q̈ with q̈ = (M + diag J)⁻¹(τ − bias − D q̇ + g) (see :mod:`sim2real.sim.dynamics`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def armature_solve(mass: Sequence[Sequence[float]], bias: Sequence[float], qd: Sequence[float], damping: np.ndarray,
                   dofs: np.ndarray, armature: np.ndarray, torque: Sequence[float],
                   prev: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
                   h: float) -> tuple[list[float], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The arithmetic of :meth:`~sim2real.sim.world.PhysicsWorld._armature_torques`.

    Over the ``n`` movable joints: ``mass`` (n, n) kg·m² (M, nested sequences as PyBullet gives
    it), ``bias`` (n,) N·m (gravity, Coriolis, centrifugal), ``qd`` (n,) rad/s, ``damping`` (n,)
    N·m·s/rad; per controlled joint: ``dofs`` its index among the movable joints, ``armature``
    (kg·m²) and ``torque`` (N·m); ``prev`` the previous physics step's ``(M, applied forces, q̇)``
    (this function's second result) or ``None`` (then the constraint force g is 0); ``h`` the
    physics step (s).

    Returns the torques to send (list, one per controlled joint, N·m) and this step's
    ``(M, applied forces, q̇)`` arrays, the applied forces being −bias − D q̇ + the sent torques.
    """
    m = np.array(mass)
    qd = np.array(qd)
    applied = damping * qd
    applied += bias
    np.negative(applied, out=applied)
    force = applied.copy()
    if prev is not None:  # + the previous step's constraint force g = M_prev·Δq̇/h − applied_prev
        mass_prev, applied_prev, qd_prev = prev
        force += mass_prev @ ((qd - qd_prev) / h)
        force -= applied_prev
    eff = m.copy()
    eff[dofs, dofs] += armature
    force[dofs] += torque
    sent = torque - armature * np.linalg.solve(eff, force)[dofs]
    applied[dofs] += sent
    return sent.tolist(), (m, applied, qd)
