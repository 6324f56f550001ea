"""Safety layer between the policy and the robot: limits, trips, soft start, fault latch.

Every check that changes or replaces a command is a *trip*, counted by name:

| trip | when | effect |
| --- | --- | --- |
| ``clip`` | a command component outside [lower, upper] | clipped |
| ``rate_limit`` | a component moved faster than ``max_step`` per control period since the last command | limited |
| ``nan_observation`` | non-finite value in the state or observation | fault: hold |
| ``nan_action`` | non-finite value in the policy output | fault: hold |
| ``stale_observation`` | no new state for ``watchdog_periods`` control periods | fault: hold / level out |
| ``estop`` | ``True`` on the e-stop topic (latches until the node restarts) | hold |
| ``start_gate`` | pose error to the start pose above tolerance after soft start | policy not engaged |

Faults (stale state, non-finite state/observation/action) *latch*: the node holds until it
is resumed — by the operator (``resume: operator``, default: ``True`` on the resume topic) or,
with ``resume: auto``, after ``resume_states`` consecutive fresh, finite states — and never
while the cause persists. Event trips are counted once per occurrence (a run of consecutive
ticks); ``held_ticks`` counts ticks that published a hold command.

The rate limit scales with the measured time ``dt`` since the previous command:
a component moves at most ``max_step · min(dt / period, 1)``, so no tick rate can make a
joint exceed ``max_step / period``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LOG = logging.getLogger("sim2real.ros2")

TRIPS = ("clip", "rate_limit", "nan_observation", "nan_action", "stale_observation", "estop", "start_gate")
FAULTS = ("nan_observation", "nan_action", "stale_observation")
RESUME_MODES = ("operator", "auto")


@dataclass
class SafetyConfig:
    """Limits in command units (rad, rad/s or m/s), vectors of shape (n,)."""

    lower: np.ndarray
    upper: np.ndarray
    max_step: np.ndarray  # largest change of a command component per control period
    enabled: bool = True
    watchdog_periods: float = 2.0
    soft_start_s: float = 2.0
    start_gate_tolerance: float = 0.1  # max |q - q_start| (rad) / |p - p_start| (m) to engage
    period: float = 0.0  # control period, s: the rate limit scales with dt / period (0: one max_step per call)
    resume: str = "operator"  # after a fault: "operator" (resume topic) or "auto"
    resume_states: int = 5  # auto: consecutive fresh, finite states before resuming


@dataclass
class SafetyLayer:
    config: SafetyConfig
    counts: dict[str, int] = field(default_factory=lambda: {name: 0 for name in TRIPS})
    held_ticks: int = 0
    estopped: bool = False
    #: the latched fault (one of FAULTS) the node holds for, until resumed
    faulted: str | None = None
    _active: set[str] = field(default_factory=set)
    _resume_requested: bool = False
    _fresh: int = 0

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

    def fault(self, name: str, active: bool, message: str = "") -> bool:
        """:meth:`event` for a fault trip; a rising edge latches :attr:`faulted`. Returns ``active``."""
        if self.event(name, active, message) and self.faulted is None:
            self.faulted, self._fresh, self._resume_requested = name, 0, False
            how = (f"after {self.config.resume_states} fresh states" if self.config.resume == "auto"
                   else "on the operator's resume")
            LOG.warning("holding after %s; resumes %s", name, how)
        return active

    def request_resume(self) -> None:
        """Operator resume (``True`` on the resume topic): clears the fault at the next fresh, finite state."""
        if self.faulted is not None:
            self._resume_requested = True
            LOG.info("resume requested after %s", self.faulted)

    def update_resume(self, state_ok: bool) -> bool:
        """Once per tick: ``state_ok`` = a fresh, finite, non-stale state arrived. Returns True while faulted."""
        if self.faulted is None:
            return False
        self._fresh = self._fresh + 1 if state_ok else 0
        auto = self.config.resume == "auto" and self._fresh >= self.config.resume_states
        if state_ok and not self.estopped and (self._resume_requested or auto):
            LOG.warning("resuming after %s (%s)", self.faulted, "auto" if auto and not self._resume_requested
                        else "operator")
            self.faulted, self._resume_requested, self._fresh = None, False, 0
            return False
        return True

    def is_stale(self, now: float, last_arrival: float | None, period: float) -> bool:
        """True (and a ``stale_observation`` trip) if no state arrived for ``watchdog_periods`` periods."""
        stale = last_arrival is not None and (now - last_arrival) > self.config.watchdog_periods * period
        return self.fault("stale_observation", stale,
                          f"no new state for {now - (last_arrival or now):.3f} s" if stale else "")

    def limit(self, command: np.ndarray, previous: np.ndarray | None, dt: float | None = None) -> np.ndarray:
        """Clip ``command`` (n,) to [lower, upper] and to ``max_step · min(dt / period, 1)`` from ``previous``.

        ``dt``: measured time (s) since ``previous`` was sent; ``None`` (or ``period`` 0): one full ``max_step``.
        """
        if not self.config.enabled:
            return command
        lower, upper = self.config.lower, self.config.upper
        out = np.minimum(np.maximum(command, lower), upper)
        if (out != command).any():
            self.counts["clip"] += 1
        if previous is not None:
            step = self.config.max_step
            if dt is not None and self.config.period > 0:
                step = step * min(max(dt, 0.0) / self.config.period, 1.0)
            limited = np.minimum(np.maximum(out, previous - step), previous + step)
            if (limited != out).any():
                self.counts["rate_limit"] += 1
            out = np.minimum(np.maximum(limited, lower), upper)
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


def safety_layer(params: dict[str, Any], lower: np.ndarray, upper: np.ndarray, step: np.ndarray,
                 period: float = 0.0) -> SafetyLayer:
    """Safety layer with command limits ``lower``/``upper``/``step`` (n,) and the ``safety.*`` parameters.

    ``step`` is the largest change per control ``period`` (s); with ``period`` > 0 the rate
    limit scales with the measured time between commands (see :mod:`sim2real.ros2.safety`).
    """
    return SafetyLayer(SafetyConfig(
        lower=lower, upper=upper, max_step=step, enabled=params["safety.enabled"],
        watchdog_periods=params["safety.watchdog_periods"], soft_start_s=params["safety.soft_start_s"],
        start_gate_tolerance=params["safety.start_gate_tolerance"], period=period,
        resume=params["safety.resume"], resume_states=params["safety.resume_states"]))


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
