"""Replay logged motor commands in the quadrotor world, window by window, and score the discrepancy.

Alignment (:func:`align_quad`): odometry is resampled to the control rate (positions and the
world-frame velocity linearly, the orientation by normalised linear interpolation on the
sign-continuous quaternion, body rates linearly); motor commands are zero-order held like the
arm's (:mod:`sim2real.sysid.align`); holes longer than ``max_gap`` in either stream split the
log into segments.

A window starts at control step ``k``: the body is reset to the logged pose and twist at ``k``;
the rotor speeds are unknown on a real drone, so they are reconstructed by running the
candidate motor lag over the ``P`` commands issued before ``k`` (with the candidate delay); the
commands still in flight are queued; then the logged commands ``k .. k+H-1`` are replayed.
Residuals are simulated minus logged position, world velocity, attitude (rotation vector of
``q_log⁻¹ q_sim``, body frame) and body rates at ``k+1 .. k+H``, each axis divided by the RMS
change of that signal over ``H`` steps in the log (how much it moves in one window), weighted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from sim2real.errors import LogError
from sim2real.sysid.align import gap_free_pieces
from sim2real.sysid.logs import HardwareLog
from sim2real.sysid.params import ParamSpec

PAST = 12  # commands kept before each window: motor-lag reconstruction and in-flight commands


@dataclass
class QuadSegment:
    """A gap-free stretch of a quadrotor log on the control-rate grid (``T`` points).

    ``t`` (T,) s; ``pos`` (T, 3) m world; ``quat`` (T, 4) xyzw; ``vel`` (T, 3) m/s world;
    ``rates`` (T, 3) rad/s body; ``cmd`` (T, 4) rotor thrust fractions in effect during ``[t_k, t_k+dt)``.
    """

    t: np.ndarray
    pos: np.ndarray
    quat: np.ndarray
    vel: np.ndarray
    rates: np.ndarray
    cmd: np.ndarray

    def __len__(self) -> int:
        return int(self.t.shape[0])


def _rotations(q: np.ndarray) -> Rotation:
    """SciPy rotations of xyzw quaternions (..., 4), flattened to (N,)."""
    return Rotation.from_quat(np.reshape(q, (-1, 4)))


def relative_rotvec(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation vector (..., 3), rad, of ``a⁻¹ b`` for xyzw quaternions ``a``, ``b`` (..., 4) (shortest rotation)."""
    return (_rotations(a).inv() * _rotations(b)).as_rotvec().reshape(*np.shape(b)[:-1], 3)


def rotate(q: np.ndarray, v: np.ndarray, inverse: bool = False) -> np.ndarray:
    """Rotate vectors ``v`` (..., 3) by xyzw quaternions ``q`` (..., 4) (body → world; ``inverse``: world → body)."""
    r = _rotations(q)
    return r.apply(np.reshape(v, (-1, 3)), inverse=inverse).reshape(np.shape(v))


def align_quad(log: HardwareLog, rate_hz: float, *, max_gap: float | None = None,
               min_steps: int = 2) -> tuple[list[QuadSegment], list[tuple[float, float]]]:
    """Resample odometry and motor commands of ``log`` to ``rate_hz`` (see module docstring).

    :raises LogError: no odometry or motor commands, or no gap-free overlap of ``min_steps``
    """
    odom, cmd = log.odometry, log.motor_command
    if odom is None or len(odom) == 0:
        raise LogError(f"{log.source}: no odometry (nav_msgs/Odometry) in the log")
    if cmd is None or len(cmd) == 0:
        raise LogError(f"{log.source}: no motor commands in the log")
    if cmd.values.shape[1] != 4:
        raise LogError(f"{log.source}: topic {cmd.topic}: {cmd.values.shape[1]} motor values per message, expected 4")
    dt = 1.0 / float(rate_hz)
    quat = odom.orientation / np.linalg.norm(odom.orientation, axis=1, keepdims=True)
    flips = np.cumprod(np.where(np.sum(quat[1:] * quat[:-1], axis=1) < 0, -1.0, 1.0))
    quat[1:] *= flips[:, None]
    vel_world = rotate(quat, odom.linear_velocity)
    gaps, pieces = gap_free_pieces(odom.t, cmd.t, dt, max_gap)

    def interp(grid: np.ndarray, values: np.ndarray) -> np.ndarray:
        return np.stack([np.interp(grid, odom.t, values[:, j]) for j in range(values.shape[1])], axis=1)

    segments = []
    for a, b in pieces:
        grid = a + dt * np.arange(int(np.floor((b - a) / dt + 1e-9)) + 1)
        idx = np.searchsorted(cmd.t, grid + 0.5 * dt, side="right") - 1
        grid, idx = grid[idx >= 0], idx[idx >= 0]
        if grid.size < min_steps:
            continue
        q = interp(grid, quat)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        segments.append(QuadSegment(grid, interp(grid, odom.position), q, interp(grid, vel_world),
                                    interp(grid, odom.angular_velocity), cmd.values[idx]))
    if not segments:
        raise LogError(f"{log.source}: topics {odom.topic} and {cmd.topic}: no gap-free overlap of at least "
                       f"{min_steps} control steps (odometry {odom.t[0]:.3f}–{odom.t[-1]:.3f} s, commands "
                       f"{cmd.t[0]:.3f}–{cmd.t[-1]:.3f} s, {len(gaps)} gap(s))")
    return segments, gaps


@dataclass
class QuadWindows:
    """Logged windows stacked for scoring (``W`` windows of ``H`` steps, ``P`` past commands).

    ``pos0, vel0, rates0`` (W, 3) and ``quat0`` (W, 4): state at the start; ``past`` (W, P, 4) and
    ``cmd`` (W, H, 4): thrust fractions; ``pos, vel, rates`` (W, H, 3), ``quat`` (W, H, 4): logged
    states after each step; ``t`` (W, H+1) log times.
    """

    pos0: np.ndarray
    quat0: np.ndarray
    vel0: np.ndarray
    rates0: np.ndarray
    past: np.ndarray
    cmd: np.ndarray
    pos: np.ndarray
    quat: np.ndarray
    vel: np.ndarray
    rates: np.ndarray
    t: np.ndarray

    def __len__(self) -> int:
        return int(self.pos0.shape[0])


def make_quad_windows(segments: Sequence[QuadSegment], horizon: int, *, stride: int | None = None,
                      past: int = PAST, max_windows: int | None = None) -> QuadWindows:
    """Cut segments into windows (as :func:`sim2real.sysid.replay.make_windows`)."""
    stride = stride or horizon
    rows = [(s, k) for s, seg in enumerate(segments) for k in range(past, len(seg) - horizon, stride)]
    if not rows:
        raise ValueError(f"log too short for one window of {horizon} steps after {past} warm-up steps")
    if max_windows and len(rows) > max_windows:
        rows = [rows[i] for i in np.linspace(0, len(rows) - 1, max_windows).round().astype(int)]

    def stack(fn):  # type: ignore[no-untyped-def]
        return np.stack([fn(segments[s], k) for s, k in rows])

    return QuadWindows(
        pos0=stack(lambda g, k: g.pos[k]), quat0=stack(lambda g, k: g.quat[k]), vel0=stack(lambda g, k: g.vel[k]),
        rates0=stack(lambda g, k: g.rates[k]), past=stack(lambda g, k: g.cmd[k - past:k]),
        cmd=stack(lambda g, k: g.cmd[k:k + horizon]), pos=stack(lambda g, k: g.pos[k + 1:k + horizon + 1]),
        quat=stack(lambda g, k: g.quat[k + 1:k + horizon + 1]), vel=stack(lambda g, k: g.vel[k + 1:k + horizon + 1]),
        rates=stack(lambda g, k: g.rates[k + 1:k + horizon + 1]), t=stack(lambda g, k: g.t[k:k + horizon + 1]))


def quad_signal_scales(segments: Sequence[QuadSegment], horizon: int) -> tuple[np.ndarray, ...]:
    """Per-axis RMS change over ``horizon`` steps of position, velocity, attitude and rates, ``(3,)``
    each, floored at 1 mm, 1 cm/s, 1 mrad and 0.01 rad/s."""
    out = [[], [], [], []]
    for g in segments:
        if len(g) <= horizon:
            continue
        out[0].append(g.pos[horizon:] - g.pos[:-horizon])
        out[1].append(g.vel[horizon:] - g.vel[:-horizon])
        out[2].append(relative_rotvec(g.quat[:-horizon], g.quat[horizon:]))
        out[3].append(g.rates[horizon:] - g.rates[:-horizon])
    floors = (1e-3, 1e-2, 1e-3, 1e-2)
    if not out[0]:
        return tuple(np.full(3, f) for f in floors)
    return tuple(np.maximum(np.sqrt(np.mean(np.concatenate(d) ** 2, axis=0)), f) for d, f in zip(out, floors))


class QuadWindowReplay:
    """Simulates every window for given parameter values (one PyBullet client, ``motor`` mode).

    Same interface as :class:`sim2real.sysid.replay.WindowReplay` (``set_fixed``, ``simulate``,
    ``residuals``, ``cost``, ``close``), so the evaluators of :mod:`sim2real.sysid.evaluators` run it.
    """

    def __init__(self, robot: Any, windows: QuadWindows, specs: Sequence[ParamSpec], scales: Sequence[np.ndarray],
                 weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0)) -> None:
        from sim2real.sim.quadrotor_world import QuadrotorWorld

        self.robot = robot
        self.world = QuadrotorWorld(robot, mode="motor")
        self.windows, self.specs, self.fixed = windows, list(specs), []  # type: ignore[var-annotated]
        self.scales = [np.asarray(s, dtype=float) for s in scales]
        self.weights = [float(w) for w in weights]
        self.max_rpm = float(robot.model_params["max_rpm"])
        self.evaluations = 0

    def set_fixed(self, fixed: Sequence[tuple[ParamSpec, float]]) -> None:
        self.fixed = list(fixed)

    def simulate(self, values: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Simulated positions (W, H, 3), orientations (W, H, 4), world velocities and body rates (W, H, 3)."""
        import pybullet as p

        from sim2real.sysid.quad_params import apply_quad_params

        w, ws = self.world, self.windows
        apply_quad_params(w, self.specs + [s for s, _ in self.fixed], list(values) + [v for _, v in self.fixed])
        rotors = w.rotors
        assert rotors is not None
        tau = float(rotors.params.motor_tau)
        alpha = 1.0 - math.exp(-w.physics_dt / tau) if tau > 0 else 1.0
        delay, sub, cid, rid = int(w.action_delay), w.substeps, w.client, w.robot_id
        n_w, horizon, _ = ws.cmd.shape
        out_p, out_v, out_r = (np.empty((n_w, horizon, 3)) for _ in range(3))
        out_q = np.empty((n_w, horizon, 4))
        rpm_past = np.sqrt(np.clip(ws.past, 0.0, 1.0)) * self.max_rpm
        rpm_cmd = np.sqrt(np.clip(ws.cmd, 0.0, 1.0)) * self.max_rpm
        for i in range(n_w):
            q0 = ws.quat0[i]
            p.resetBasePositionAndOrientation(rid, ws.pos0[i].tolist(), q0.tolist(), physicsClientId=cid)
            p.resetBaseVelocity(rid, ws.vel0[i].tolist(), rotate(q0, ws.rates0[i]).tolist(), physicsClientId=cid)
            self._prime(rpm_past[i], delay, sub, alpha)
            for h in range(horizon):
                w.step(rpm_cmd[i, h])
                pos, quat = p.getBasePositionAndOrientation(rid, physicsClientId=cid)
                lin, ang = p.getBaseVelocity(rid, physicsClientId=cid)
                out_p[i, h], out_q[i, h], out_v[i, h], out_r[i, h] = pos, quat, lin, ang
        out_r = rotate(out_q, out_r, inverse=True)  # world angular velocity -> body rates
        self.evaluations += 1
        return out_p, out_q, out_v, out_r

    def _prime(self, past: np.ndarray, delay: int, sub: int, alpha: float) -> None:
        """Rotor speeds at the window start from the motor lag run over the past commands (``P``
        control steps, issued at physics steps ``(j − P)·sub``, active ``delay`` later), and the
        command queue: the one active at the start plus those still in flight."""
        w = self.world
        n_past = past.shape[0]
        due = [(j - n_past) * sub + delay for j in range(n_past)]
        rpm = past[0].tolist()
        j_active = 0
        for s in range(-n_past * sub, 0):
            while j_active + 1 < n_past and due[j_active + 1] <= s:
                j_active += 1
            c = past[j_active]
            rpm = [r + alpha * (ci - r) for r, ci in zip(rpm, c)]
        active = next((past[j] for j in range(n_past - 1, -1, -1) if due[j] <= 0), past[0])
        now = w.physics_step_count
        pending = [(now + due[j], past[j]) for j in range(n_past) if due[j] > 0]
        assert w.rotors is not None
        w.rotors.reset(rpm)
        w.set_command_queue(active, pending)

    def residuals(self, values: Sequence[float]) -> np.ndarray:
        """Normalised, weighted residuals: position, velocity, attitude, rates blocks of (W, H, 3)."""
        pos, quat, vel, rates = self.simulate(values)
        ws = self.windows
        att = relative_rotvec(ws.quat, quat)
        diffs = (pos - ws.pos, vel - ws.vel, att, rates - ws.rates)
        return np.concatenate([(d / s * math.sqrt(wt)).ravel() for d, s, wt in zip(diffs, self.scales, self.weights)])

    def cost(self, values: Sequence[float]) -> float:
        r = self.residuals(values)
        return float(np.mean(r * r))

    def close(self) -> None:
        self.world.close()


@dataclass
class QuadReplaySetup:
    """Everything a worker needs to build a :class:`QuadWindowReplay` (picklable)."""

    robot_file: str
    windows: QuadWindows
    specs: list[ParamSpec]
    scales: tuple[np.ndarray, ...]
    weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)

    def build(self) -> QuadWindowReplay:
        from sim2real.robots import load_robot

        return QuadWindowReplay(load_robot(self.robot_file), self.windows, self.specs, self.scales, self.weights)
