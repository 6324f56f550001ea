"""The joint-space armature solve in plain floats (the C twin is ``_fastsim.armature_solve``).

Armature J (a geared motor's rotor inertia seen at the joint) is MuJoCo's: J on the joint's
diagonal of the joint-space mass matrix. PyBullet has none, so before each physics step the
world sends τ − J q̈ with q̈ = (M + diag J)⁻¹(τ − bias − D q̇ + g) (see :mod:`sim2real.sim.dynamics`).
"""

from __future__ import annotations

from typing import Any, Sequence


def armature_solve(mass: Sequence[Sequence[float]], bias: Sequence[float], qd: list[float], damping: list[float],
                   dofs: list[int], armature: list[float], torque: list[float],
                   prev: tuple[Any, list[float], list[float]] | None, h: float) -> tuple[list[float], list[float]]:
    """The arithmetic of :meth:`~sim2real.sim.world.PhysicsWorld._armature_torques` in plain floats (the C twin
    ``_fastsim.armature_solve`` does the same operations in the same order): the torques to send
    and the forces applied in this physics step (−bias − D q̇ + sent torques), over the movable
    joints (``dofs``: the controlled joints' indices among them); ``prev`` = (M, applied forces, q̇)
    of the previous physics step or ``None``; ``h`` the physics step (s)."""
    n = len(qd)
    # applied forces but the torques: −bias − D q̇ (bias: gravity, Coriolis, centrifugal)
    applied = [-b - d * v for b, d, v in zip(bias, damping, qd)]
    force = list(applied)
    if prev is not None:  # + the previous step's constraint force g = M_prev·Δq̇/h − applied_prev
        mass_prev, applied_prev, qd_prev = prev
        acc = [(v - w) / h for v, w in zip(qd, qd_prev)]
        for i in range(n):
            row = mass_prev[i]
            g = -applied_prev[i]
            for j in range(n):
                g += row[j] * acc[j]
            force[i] += g
    eff = [list(row) for row in mass]
    for k, i in enumerate(dofs):
        force[i] += torque[k]
        eff[i][i] += armature[k]
    # Gaussian elimination without pivoting (symmetric positive definite)
    for k in range(n):
        rk, pivot = eff[k], eff[k][k]
        for i in range(k + 1, n):
            ri = eff[i]
            f = ri[k] / pivot
            if f != 0.0:
                for j in range(k + 1, n):
                    ri[j] -= f * rk[j]
                force[i] -= f * force[k]
    x = [0.0] * n
    for i in range(n - 1, -1, -1):
        ri = eff[i]
        acc_i = force[i]
        for j in range(i + 1, n):
            acc_i -= ri[j] * x[j]
        x[i] = acc_i / ri[i]
    sent = [torque[k] - armature[k] * x[i] for k, i in enumerate(dofs)]
    for k, i in enumerate(dofs):
        applied[i] += sent[k]
    return sent, applied
