"""Replay logged commands in the simulator, window by window, and score the discrepancy.

A window starts at a logged control step ``k`` of an aligned segment: the simulator is reset to
the logged joint positions and velocities at ``k``, the commands issued before ``k`` that are
still in flight (actuation delay) are queued, and the logged commands ``k .. k+H-1`` are
replayed for ``H`` control steps. Residuals are the simulated minus logged joint positions and
velocities at ``k+1 .. k+H``, each divided by that signal's standard deviation over the log
(per-signal normalisation) and weighted (``w_pos``, ``w_vel``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sim2real.robots import RobotDescription
from sim2real.sysid.align import Segment
from sim2real.sysid.params import ParamSpec, apply_params


@dataclass
class WindowSet:
    """Logged windows stacked for fast scoring.

    :param q0, qd0: ``(W, n)`` state at each window start
    :param past: ``(W, P, n)`` the ``P`` commands issued just before the start (oldest first)
    :param cmd: ``(W, H, n)`` commands replayed
    :param q, qd: ``(W, H, n)`` logged states after each replayed step
    :param t: ``(W, H+1)`` log times of the window's grid points (start included)
    :param tau: ``(W, H, n)`` logged efforts after each step, or ``None`` when the log has none
    """

    q0: np.ndarray
    qd0: np.ndarray
    past: np.ndarray
    cmd: np.ndarray
    q: np.ndarray
    qd: np.ndarray
    t: np.ndarray
    tau: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.q0.shape[0])


def make_windows(segments: Sequence[Segment], horizon: int, *, stride: int | None = None, past: int = 2,
                 max_windows: int | None = None) -> WindowSet:
    """Cut segments into windows of ``horizon`` control steps every ``stride`` steps (default: no overlap).

    Windows need ``past`` earlier commands (for delays up to ``past`` control steps), so they
    start at step ``past`` of a segment or later. With ``max_windows`` an evenly spread subset
    is kept.
    """
    stride = stride or horizon
    rows: list[tuple[int, int]] = []
    for s, seg in enumerate(segments):
        for k in range(past, len(seg) - horizon, stride):
            rows.append((s, k))
    if not rows:
        raise ValueError(f"log too short for one window of {horizon} steps after {past} warm-up steps")
    if max_windows and len(rows) > max_windows:
        pick = np.linspace(0, len(rows) - 1, max_windows).round().astype(int)
        rows = [rows[i] for i in pick]

    def stack(fn):  # type: ignore[no-untyped-def]
        return np.stack([fn(segments[s], k) for s, k in rows])

    has_tau = all(g.tau is not None and not np.isnan(g.tau).any() for g in segments)
    return WindowSet(
        q0=stack(lambda g, k: g.q[k]), qd0=stack(lambda g, k: g.qd[k]),
        past=stack(lambda g, k: g.cmd[k - past:k]), cmd=stack(lambda g, k: g.cmd[k:k + horizon]),
        q=stack(lambda g, k: g.q[k + 1:k + horizon + 1]), qd=stack(lambda g, k: g.qd[k + 1:k + horizon + 1]),
        t=stack(lambda g, k: g.t[k:k + horizon + 1]),
        tau=stack(lambda g, k: g.tau[k + 1:k + horizon + 1]) if has_tau else None,
    )


def signal_scales(segments: Sequence[Segment], floor_pos: float = 1e-3, floor_vel: float = 1e-2,
                  floor_tau: float = 1e-1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-joint standard deviation of logged positions, velocities and efforts, ``(n,)`` each, floored
    (efforts: ones when the log has none)."""
    q = np.concatenate([s.q for s in segments])
    qd = np.concatenate([s.qd for s in segments])
    taus = [s.tau for s in segments if s.tau is not None]
    tau = np.concatenate(taus) if taus else np.full_like(q, np.nan)
    tau_scale = np.maximum(tau.std(axis=0), floor_tau) if not np.isnan(tau).any() else np.ones(q.shape[1])
    return np.maximum(q.std(axis=0), floor_pos), np.maximum(qd.std(axis=0), floor_vel), tau_scale


class WindowReplay:
    """Simulates every window of a :class:`WindowSet` for given parameter values (one PyBullet client).

    :param robot: robot description (the world is built from it)
    :param specs: the searched parameters; values passed to :meth:`residuals` follow this order
    :param fixed: parameters held fixed (e.g. the delay while the rest is searched), with values
    :param w_tau: weight of the effort residuals (used when the log has efforts)
    """

    def __init__(self, robot: RobotDescription, windows: WindowSet, specs: Sequence[ParamSpec],
                 scales: Sequence[np.ndarray], *, w_pos: float = 1.0, w_vel: float = 0.05, w_tau: float = 1.0,
                 fixed: Sequence[tuple[ParamSpec, float]] = ()) -> None:
        from sim2real.sim.world import PhysicsWorld

        self.robot = robot
        self.world = PhysicsWorld(robot, floor=False)
        self.windows = windows
        self.specs = list(specs)
        self.fixed = list(fixed)
        self.q_scale, self.qd_scale = scales[0], scales[1]
        self.tau_scale = scales[2] if len(scales) > 2 else np.ones_like(scales[0])
        self.w_pos, self.w_vel, self.w_tau = float(w_pos), float(w_vel), float(w_tau)
        self.evaluations = 0

    def set_fixed(self, fixed: Sequence[tuple[ParamSpec, float]]) -> None:
        self.fixed = list(fixed)

    def simulate(self, values: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Simulated joint positions, velocities and motor efforts ``(W, H, n)`` for ``values`` (value units)."""
        import pybullet as p

        w, ws = self.world, self.windows
        specs = self.specs + [s for s, _ in self.fixed]
        apply_params(w, specs, list(values) + [v for _, v in self.fixed])
        delay = w.action_delay
        sub = w.substeps
        n_w, horizon, n = ws.cmd.shape
        q_out = np.empty((n_w, horizon, n))
        qd_out = np.empty((n_w, horizon, n))
        tau_out = np.empty((n_w, horizon, n))
        joints = [int(j) for j in w.joint_indices]
        computed = w.drive.kind == "computed"
        for i in range(n_w):
            w.set_joint_state(ws.q0[i], ws.qd0[i])
            self._prime(ws.past[i], delay, sub)
            for h in range(horizon):
                w.step(ws.cmd[i, h])
                states = p.getJointStates(w.robot_id, joints, physicsClientId=w.client)
                for j, st in enumerate(states):
                    q_out[i, h, j], qd_out[i, h, j], tau_out[i, h, j] = st[0], st[1], st[3]
                if computed:  # the drive's torque, not PyBullet's (friction) motor reading
                    tau_out[i, h] = w.drive_torque
        self.evaluations += 1
        return q_out, qd_out, tau_out

    def _prime(self, past: np.ndarray, delay: int, sub: int) -> None:
        """Make the command active at the window start the one the delay implies, and queue the
        earlier commands that are still in flight (issued ``j`` control steps ago → due at
        ``delay - j·substeps`` physics steps from now)."""
        w = self.world
        now = w.physics_step_count
        active = previous = None
        elapsed = 0
        pending: list[tuple[int, np.ndarray]] = []
        for j in range(1, past.shape[0] + 1):  # j control steps ago, most recent first
            due = delay - j * sub
            if due <= 0:
                active = past[-j]
                # an interpolating drive is `elapsed` physics steps along its ramp from the command before
                previous = past[-j - 1] if j < past.shape[0] else None
                elapsed = -due
                break
            pending.append((now + due, past[-j]))
        if active is None:  # delay longer than the stored history: hold the oldest command
            active = past[0]
        w.set_command_queue(active, pending, previous=previous, elapsed=elapsed)

    def residuals(self, values: Sequence[float]) -> np.ndarray:
        """Normalised, weighted residual vector (positions, velocities, then efforts when logged)."""
        q, qd, tau = self.simulate(values)
        ws = self.windows
        parts = [((q - ws.q) / self.q_scale * np.sqrt(self.w_pos)).ravel(),
                 ((qd - ws.qd) / self.qd_scale * np.sqrt(self.w_vel)).ravel()]
        if ws.tau is not None and self.w_tau > 0:
            parts.append(((tau - ws.tau) / self.tau_scale * np.sqrt(self.w_tau)).ravel())
        return np.concatenate(parts)

    def cost(self, values: Sequence[float]) -> float:
        """Mean squared normalised residual (0 = perfect match)."""
        r = self.residuals(values)
        return float(np.mean(r * r))

    def close(self) -> None:
        self.world.close()


ROBUST_LOSSES = ("linear", "soft_l1", "cauchy")


def residual_blocks(n_windows: int, horizon: int, n_joints: int, n_signals: int) -> np.ndarray:
    """Block index ``signal · n_joints + joint`` of each entry of :meth:`WindowReplay.residuals`, ``(N,)``."""
    per = np.tile(np.arange(n_joints), n_windows * horizon)
    return np.concatenate([per + s * n_joints for s in range(n_signals)])


def robust_scales(r: np.ndarray, blocks: np.ndarray, k: float = 3.0, floor: float = 1e-6) -> np.ndarray:
    """Per-entry loss scale ``c`` ``(N,)``: ``k`` robust standard deviations (1.4826 · median |r|)
    of the residuals ``r`` ``(N,)`` in each block (signal × joint), so residuals at the noise level
    are scored as by least squares and isolated spikes are down-weighted."""
    c = np.empty_like(r, dtype=float)
    for b in np.unique(blocks):
        m = blocks == b
        c[m] = max(k * 1.4826 * float(np.median(np.abs(r[m]))), floor)
    return c


def robust_residuals(r: np.ndarray, c: np.ndarray, loss: str) -> np.ndarray:
    """Transformed residuals ``r̃`` with ``Σ r̃² = Σ c² ρ((r/c)²)`` (the convention of
    ``scipy.optimize.least_squares``), so Gauss–Newton/LM on ``r̃`` minimises the robust cost.

    ``soft_l1``: ``ρ(z) = 2(√(1+z) − 1)``; ``cauchy``: ``ρ(z) = ln(1+z)``; ``linear``: ``r`` unchanged.
    Both robust losses are smooth and ≈ ``z`` for ``|r| ≪ c``.
    """
    if loss == "linear":
        return r
    z = (r / c) ** 2
    if loss == "soft_l1":
        rho = 2.0 * (np.sqrt(1.0 + z) - 1.0)
    elif loss == "cauchy":
        rho = np.log1p(z)
    else:
        raise ValueError(f"unknown loss {loss!r}; expected one of {list(ROBUST_LOSSES)}")
    return np.sign(r) * c * np.sqrt(rho)
