"""Safety layer between the policy and the robot: limits, trips, soft start.

Every check that changes or replaces a command is a *trip*, counted by name:

| trip | when | effect |
| --- | --- | --- |
| ``clip`` | a command component outside [lower, upper] | clipped |
| ``rate_limit`` | a component moved more than ``max_step`` from the last command | limited |
| ``nan_observation`` | non-finite value in the observation | hold |
| ``nan_action`` | non-finite value in the policy output | hold |
| ``stale_observation`` | no new state for ``watchdog_periods`` control periods | hold / level out |
| ``estop`` | ``True`` on the e-stop topic (latches until the node restarts) | hold |
| ``start_gate`` | pose error to the start pose above tolerance after soft start | policy not engaged |

Event trips (stale, estop, start gate, NaN) are counted once per occurrence (a run of
consecutive ticks), and ``held_ticks`` counts ticks that published a hold command.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LOG = logging.getLogger("sim2real.ros2")

TRIPS = ("clip", "rate_limit", "nan_observation", "nan_action", "stale_observation", "estop", "start_gate")


@dataclass
class SafetyConfig:
    """Limits in command units (rad, rad/s or m/s), vectors of shape (n,)."""

    lower: np.ndarray
    upper: np.ndarray
    max_step: np.ndarray  # largest change of a command component per control step
    enabled: bool = True
    watchdog_periods: int = 5
    soft_start_s: float = 2.0
    start_gate_tolerance: float = 0.1  # max |q - q_start| (rad) / |p - p_start| (m) to engage


@dataclass
class SafetyLayer:
    config: SafetyConfig
    counts: dict[str, int] = field(default_factory=lambda: {name: 0 for name in TRIPS})
    held_ticks: int = 0
    estopped: bool = False
    _active: set[str] = field(default_factory=set)

    def event(self, name: str, active: bool, message: str = "") -> bool:
        """Record the state of an event trip; counts and logs on its rising edge. Returns ``active``."""
        if active and name not in self._active:
            self._active.add(name)
            self.counts[name] += 1
            LOG.warning("safety trip %s%s", name, f": {message}" if message else "")
        elif not active and name in self._active:
            self._active.discard(name)
            LOG.info("safety trip %s cleared", name)
        return active

    def latch_estop(self) -> None:
        """E-stop: latches; only a restart of the node clears it."""
        if not self.estopped:
            self.estopped = True
            self.event("estop", True, "latched, holding until restart")

    def is_stale(self, now: float, last_arrival: float | None, period: float) -> bool:
        """True (and a ``stale_observation`` trip) if no state arrived for ``watchdog_periods`` periods."""
        stale = last_arrival is not None and (now - last_arrival) > self.config.watchdog_periods * period
        return self.event("stale_observation", stale,
                          f"no new state for {now - (last_arrival or now):.3f} s" if stale else "")

    def limit(self, command: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        """Clip ``command`` (n,) to [lower, upper] and to ``max_step`` from ``previous``."""
        if not self.config.enabled:
            return command
        out = np.clip(command, self.config.lower, self.config.upper)
        if np.any(out != command):
            self.counts["clip"] += 1
        if previous is not None:
            limited = np.clip(out, previous - self.config.max_step, previous + self.config.max_step)
            if np.any(limited != out):
                self.counts["rate_limit"] += 1
            out = np.clip(limited, self.config.lower, self.config.upper)
        return out

    def report(self) -> dict[str, int]:
        return {**self.counts, "held_ticks": self.held_ticks}


def joint_position_limits(robot: Any, period: float, max_step_scale: float = 1.0
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Position-command limits of an arm: ``lower``, ``upper`` (n,) rad from robot.yaml ``joints`` and
    ``max_step`` (n,) rad per control period = ``max_velocity`` · ``period`` (s) · ``max_step_scale``."""
    lower = np.array([j.lower for j in robot.joints])
    upper = np.array([j.upper for j in robot.joints])
    step = np.array([j.max_velocity for j in robot.joints]) * period * max_step_scale
    return lower, upper, step


class SoftStart:
    """Smooth (cosine) interpolation from ``start`` to ``goal`` over ``duration`` seconds."""

    def __init__(self, start: np.ndarray, goal: np.ndarray, duration: float, t0: float) -> None:
        self.start, self.goal, self.duration, self.t0 = start.copy(), goal.copy(), duration, t0

    def done(self, now: float) -> bool:
        return now - self.t0 >= self.duration

    def __call__(self, now: float) -> np.ndarray:
        if self.duration <= 0:
            return self.goal.copy()
        s = min(max((now - self.t0) / self.duration, 0.0), 1.0)
        w = 0.5 - 0.5 * np.cos(np.pi * s)
        return self.start + w * (self.goal - self.start)
