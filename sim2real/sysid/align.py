"""Time alignment of command and state streams, resampling to the control rate, gap detection.

States are linearly interpolated onto a grid ``t_k = t_start + k / rate_hz``; commands are
zero-order held (the command in effect at ``t_k`` is the last one stamped at or before
``t_k + dt/2``, which absorbs the small lag between reading a state and publishing the command
computed from it). Wherever either stream has a hole longer than ``max_gap`` the log is split
into separate segments, so a calibration window never spans a gap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim2real.errors import LogError
from sim2real.sysid.logs import HardwareLog


@dataclass
class Segment:
    """One gap-free stretch of a log on the control-rate grid.

    :param t: ``(T,)`` grid times, s (log time, ``HardwareLog.t0_ns`` origin)
    :param q: ``(T, n)`` joint positions, rad
    :param qd: ``(T, n)`` joint velocities, rad/s
    :param cmd: ``(T, n)`` command in effect during ``[t_k, t_k + dt)``
    :param tau: ``(T, n)`` measured joint efforts, N·m (NaN when the log has none)
    """

    t: np.ndarray
    q: np.ndarray
    qd: np.ndarray
    cmd: np.ndarray
    tau: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.t.shape[0])


def find_gaps(t: np.ndarray, max_gap: float) -> list[tuple[float, float]]:
    """Intervals ``(t_before, t_after)`` where consecutive stamps ``t`` (``(N,)``, s) are more than ``max_gap`` apart."""
    d = np.diff(t)
    return [(float(t[i]), float(t[i + 1])) for i in np.flatnonzero(d > max_gap)]


def gap_free_pieces(t_state: np.ndarray, t_cmd: np.ndarray, dt: float,
                    max_gap: float | None = None) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Gaps of a state stream and a command stream (stamps ``(N,)``, ``(M,)``, s) and the stretches between them.

    :param dt: control period (s); the command stream is taken to hold its last value for ``dt``
    :param max_gap: longest allowed hole in either stream (s); default 3 control periods or
        2.5× the stream's median sample period, whichever is larger
    :returns: ``(gaps, pieces)``: gaps as ``(t_before, t_after)``, and the ``(start, end)`` stretches
        of the overlap of both streams not covered by any gap
    """

    def limit(t: np.ndarray) -> float:
        med = float(np.median(np.diff(t))) if t.size > 1 else dt
        return max_gap if max_gap is not None else max(3.0 * dt, 2.5 * med)

    gaps = find_gaps(t_state, limit(t_state)) + find_gaps(t_cmd, limit(t_cmd))
    start = max(float(t_state[0]), float(t_cmd[0]))
    end = min(float(t_state[-1]), float(t_cmd[-1]) + dt)
    # Segment boundaries: stretches of [start, end] not covered by any gap.
    pieces: list[tuple[float, float]] = []
    lo = start
    for a, b in sorted(gaps):
        if b <= lo:
            continue
        if a >= end:
            break
        if a > lo:
            pieces.append((lo, a))
        lo = b
    if lo < end:
        pieces.append((lo, end))
    return gaps, pieces


def finite_difference_velocity(t: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Joint velocities ``(N, n)`` from positions ``q`` ``(N, n)`` by central differences on stamps ``t``."""
    if t.size < 2:
        return np.zeros_like(q)
    return np.gradient(q, t, axis=0)


def _interp(t_grid: np.ndarray, t: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.stack([np.interp(t_grid, t, values[:, j]) for j in range(values.shape[1])], axis=1)


def align(log: HardwareLog, rate_hz: float, *, max_gap: float | None = None, min_steps: int = 2) -> tuple[list[Segment], list[tuple[float, float]]]:
    """Resample the joint states and joint commands of ``log`` to ``rate_hz``.

    :param max_gap: longest allowed hole in either stream (s); default 3 control periods or
        2.5× the stream's median sample period, whichever is larger
    :param min_steps: segments shorter than this many grid points are dropped
    :returns: ``(segments, gaps)``; gaps as ``(t_before, t_after)`` pairs in log time
    :raises LogError: no joint states or commands, or no gap-free overlap of at least ``min_steps``
    """
    js, cmd = log.require_joint_states(), log.require_command()
    dt = 1.0 / float(rate_hz)
    vel = js.velocity
    if np.isnan(vel).any():
        vel = finite_difference_velocity(js.t, js.position)
    gaps, pieces = gap_free_pieces(js.t, cmd.t, dt, max_gap)
    segments = []
    for a, b in pieces:
        n = int(np.floor((b - a) / dt + 1e-9)) + 1
        if n < min_steps:
            continue
        grid = a + dt * np.arange(n)
        idx = np.searchsorted(cmd.t, grid + 0.5 * dt, side="right") - 1
        if (idx < 0).any():
            grid, idx = grid[idx >= 0], idx[idx >= 0]
        if grid.size < min_steps:
            continue
        tau = (_interp(grid, js.t, js.effort) if not np.isnan(js.effort).any()
               else np.full((grid.size, js.position.shape[1]), np.nan))
        segments.append(Segment(grid, _interp(grid, js.t, js.position), _interp(grid, js.t, vel), cmd.values[idx], tau))
    if not segments:
        raise LogError(f"{log.source}: topics {js.topic} and {cmd.topic}: no gap-free overlap of at least "
                       f"{min_steps} control steps (states {js.t[0]:.3f}–{js.t[-1]:.3f} s, commands "
                       f"{cmd.t[0]:.3f}–{cmd.t[-1]:.3f} s, {len(gaps)} gap(s))")
    return segments, gaps
