"""Excitation signals for identification runs: chirp, multi-sine and PRBS joint-position targets
around the robot's home pose, kept inside the joint limits.
"""

from __future__ import annotations

import numpy as np

from sim2real.errors import Sim2RealError
from sim2real.robots import RobotDescription

EXCITATIONS = ("chirp", "multisine", "prbs")


def _amplitudes(robot: RobotDescription, amplitude: float, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint centre (home, rad) and amplitude (rad) so that centre ± amplitude stays within the limits."""
    home = np.array([j.home for j in robot.joints])
    room = np.array([min(j.home - j.lower, j.upper - j.home) for j in robot.joints]) - margin
    if (room <= 0).any():
        # home sits on a limit: move the centre inside so every joint can move
        lower = np.array([j.lower for j in robot.joints])
        upper = np.array([j.upper for j in robot.joints])
        home = np.clip(home, lower + margin + 0.5 * amplitude, upper - margin - 0.5 * amplitude)
        room = np.minimum(home - lower, upper - home) - margin
    return home, np.clip(np.minimum(amplitude, room), 0.0, None)


def excitation(kind: str, robot: RobotDescription, duration: float, rate_hz: float, rng: np.random.Generator, *,
               amplitude: float = 0.3, f_min: float = 0.1, f_max: float = 1.5, margin: float = 0.05,
               min_hold: float = 0.25, vel_fraction: float = 0.9) -> np.ndarray:
    """Joint-position targets for an identification run.

    :param kind: ``chirp`` (log-swept sine ``f_min``→``f_max``, random phase per joint),
        ``multisine`` (10 log-spaced tones in ``[f_min, f_max]``, amplitude ∝ 1/√f, Schroeder phases,
        normalised to ``amplitude`` and scaled down where the peak velocity would exceed
        ``vel_fraction`` × the joint's ``max_velocity``) or ``prbs`` (random ±``amplitude`` steps
        held at least ``min_hold`` s, smoothed by one control period)
    :param duration: s; ``rate_hz``: control rate (Hz)
    :param amplitude: rad, upper bound per joint (reduced where a joint limit is closer)
    :returns: ``(T, n_joints)`` targets, ``T = round(duration * rate_hz)``
    """
    if kind not in EXCITATIONS:
        raise Sim2RealError(f"unknown excitation {kind!r}; expected one of {list(EXCITATIONS)}")
    steps = max(1, int(round(duration * rate_hz)))
    t = np.arange(steps) / rate_hz
    n = robot.n_joints
    centre, amp = _amplitudes(robot, amplitude, margin)
    f_max = min(f_max, 0.45 * rate_hz)
    if kind == "chirp":
        k = (f_max / f_min) ** (1.0 / max(duration, 1e-9))
        phase_t = 2 * np.pi * f_min * (k ** t - 1.0) / np.log(k) if k != 1.0 else 2 * np.pi * f_min * t
        offsets = rng.uniform(0, 2 * np.pi, n)
        sig = np.sin(phase_t[:, None] + offsets[None, :])
    elif kind == "multisine":
        # 10 log-spaced tones with amplitude ∝ 1/√f: large slow swings load
        # every link with gravity, the fast tones give velocities for damping/friction, and the
        # peak velocity is then scaled to vel_fraction of each joint's max_velocity
        m = 10
        freqs = np.geomspace(f_min, f_max, m)
        sig = np.zeros((steps, n))
        vmax = np.array([j.max_velocity for j in robot.joints]) * vel_fraction
        for j in range(n):
            shift = rng.permutation(m)
            phases = -np.pi * np.arange(m) * (np.arange(m) + 1) / m  # Schroeder: low crest factor
            arg = 2 * np.pi * freqs[None, :] * t[:, None] + phases[shift][None, :]
            s = (np.sin(arg) / np.sqrt(freqs)[None, :]).sum(axis=1)
            peak = max(np.abs(s).max(), 1e-9)
            sig[:, j] = s / peak
            v_peak = np.abs(np.diff(sig[:, j])).max(initial=0.0) * rate_hz * amp[j]  # rad/s at full amplitude
            if v_peak > vmax[j] > 0:
                sig[:, j] *= vmax[j] / v_peak
    else:
        hold = max(1, int(round(min_hold * rate_hz)))
        sig = np.zeros((steps, n))
        for j in range(n):
            level, k = rng.choice([-1.0, 1.0]), 0
            while k < steps:
                span = hold * int(rng.integers(1, 4))
                sig[k:k + span, j] = level
                level, k = -level if rng.random() < 0.7 else level, k + span
        sig[1:] = 0.5 * (sig[1:] + sig[:-1])
    targets = centre[None, :] + amp[None, :] * sig
    lower = np.array([j.lower for j in robot.joints])
    upper = np.array([j.upper for j in robot.joints])
    return np.clip(targets, lower, upper)
