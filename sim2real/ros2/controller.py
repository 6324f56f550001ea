"""One control step, without any middleware: state → observation → policy → safe command.

:class:`ArmController` and :class:`QuadController` hold the engagement phase, the
previous action/command and apply the :class:`~sim2real.ros2.safety.SafetyLayer`. The
node calls ``step`` once per tick with the latest state; ``step`` returns what to publish
(or ``None`` when there is nothing safe to send yet).

Every step first checks, in every phase: e-stop, stale state, non-finite state and a
latched fault (→ hold). While the policy is engaged, a tick without a new state
(``fresh=False``) repeats the last command instead of running the policy on a state it
has already seen. :meth:`exit_command` is the command published when the node stops.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from sim2real.robots import RobotDescription
from sim2real.ros2.adapters import DroneCommand
from sim2real.ros2.observation import ArmState, ObservationBuilder, QuadState
from sim2real.ros2.policy import PolicySpec
from sim2real.ros2.safety import SafetyLayer, SoftStart

LOG = logging.getLogger("sim2real.ros2")
GATE_SETTLE_S = 1.0  # time after soft start before a pose error counts as a start-gate trip


@dataclass
class StepResult:
    command: np.ndarray | DroneCommand
    hold: bool
    inference_s: float = 0.0
    engaged: bool = False  # the policy produced this command


class _Base:
    def __init__(self, spec: PolicySpec, policy: Callable[[np.ndarray], np.ndarray], builder: ObservationBuilder,
                 safety: SafetyLayer, period: float) -> None:
        self.spec, self.policy, self.builder, self.safety, self.period = spec, policy, builder, safety, period
        self.prev_action = np.zeros(spec.action_size)
        self.phase = "waiting"
        self.goal_missing = False  # engaged, but the policy waits for a goal
        self._said: set[str] = set()
        self._last_time: float | None = None  # when the last command was produced (s, monotonic)
        self._faulted = False

    def _say_once(self, key: str, msg: str) -> None:
        if key not in self._said:
            self._said.add(key)
            LOG.info(msg)

    @staticmethod
    def finite(state: object) -> bool:
        """True when every array of ``state`` (positions, velocities, orientation, ...) is finite."""
        return all(bool(np.isfinite(v).all()) for v in vars(state).values() if isinstance(v, np.ndarray))

    def _dt(self, now: float) -> float | None:
        """Measured time since the previous command (s), ``None`` before the first; marks ``now``."""
        dt = None if self._last_time is None else now - self._last_time
        self._last_time = now
        return dt

    def _must_hold(self, state: object, stale: bool, fresh: bool) -> bool:
        """E-stop, stale state, non-finite state or a latched fault: this step holds (any phase)."""
        finite = self.finite(state)
        self.safety.fault("nan_observation", not finite, "non-finite state, holding")
        faulted = self.safety.update_resume(fresh and not stale and finite)
        if self._faulted and not faulted:
            self._resumed()
        self._faulted = faulted
        return self.safety.estopped or stale or not finite or faulted

    def _resumed(self) -> None:
        """After a fault clears: restart the observation history; before engagement, start over."""
        self.builder.reset()
        if self.phase != "running":
            self.phase = "waiting"

    def _infer(self, state: object, goal: np.ndarray | None) -> tuple[np.ndarray | None, float]:
        """Policy action in [-1, 1] (act_dim,), or None (fault latched) on NaN/inf or missing goal."""
        try:
            frame = self.builder.frame(state, goal, self.prev_action)
        except ValueError:
            self.goal_missing = True
            self._say_once("goal", "waiting for a goal before engaging the policy")
            return None, 0.0
        self.goal_missing = False
        if self.safety.fault("nan_observation", not np.isfinite(frame).all(), "non-finite observation, holding"):
            return None, 0.0
        stacked = self.builder.push(frame)
        t0 = time.perf_counter()
        action = np.asarray(self.policy(stacked), dtype=np.float64)
        dt = time.perf_counter() - t0
        if self.safety.fault("nan_action", not np.isfinite(action).all(), "non-finite action, holding"):
            return None, dt
        return np.minimum(np.maximum(action, -1.0), 1.0), dt


class ArmController(_Base):
    """Joint-space control; commands are positions (rad) or, for ``joint_velocity``, velocities (rad/s).

    Phases: ``waiting`` (no state yet) → ``soft_start`` (interpolate to the start pose =
    robot.yaml ``home``) → ``gate`` (hold the start pose until max |q - q_start| is below
    tolerance) → ``running`` (policy engaged). Velocity-mode policies skip soft start.
    """

    def __init__(self, robot: RobotDescription, spec: PolicySpec, policy: Callable[[np.ndarray], np.ndarray],
                 builder: ObservationBuilder, safety: SafetyLayer, period: float) -> None:
        super().__init__(spec, policy, builder, safety, period)
        self.velocity_mode = spec.action_mode == "joint_velocity"
        self.start_pose = np.array([j.home for j in robot.joints])
        self.last_command: np.ndarray | None = None
        self._soft: SoftStart | None = None
        self._gate_since = 0.0

    def _hold(self, state: ArmState, now: float | None = None) -> StepResult | None:
        """Position: the last command (else the measured pose); velocity: zeros."""
        if now is not None:
            self._dt(now)
        self.safety.held_ticks += 1
        if self.velocity_mode:
            cmd = np.zeros_like(self.start_pose)
        elif self.last_command is not None:
            cmd = self.last_command
        elif np.all(np.isfinite(state.q)):
            cmd = np.clip(state.q, self.safety.config.lower, self.safety.config.upper)
        else:
            return None  # nothing finite to hold yet: publish nothing
        self.last_command = cmd
        return StepResult(cmd.copy(), hold=True)

    def _emit(self, cmd: np.ndarray, now: float, inference_s: float = 0.0, engaged: bool = False) -> StepResult:
        if self.last_command is not None:
            prev = self.last_command
        else:  # first command: from rest (velocity) or from the measured pose (position)
            prev = np.zeros_like(self._q) if self.velocity_mode else self._q
        out = self.safety.limit(cmd, prev, self._dt(now))
        self.last_command = out
        return StepResult(out.copy(), hold=False, inference_s=inference_s, engaged=engaged)

    def exit_command(self, state: ArmState | None) -> np.ndarray | None:
        """What to leave on the controller when the node stops: zeros (velocity), the measured
        position clipped to the limits (position; the last command when no finite state)."""
        if self.velocity_mode:
            return np.zeros_like(self.start_pose)
        if state is not None and np.all(np.isfinite(state.q)):
            return np.clip(state.q, self.safety.config.lower, self.safety.config.upper)
        return None if self.last_command is None else self.last_command.copy()

    def step(self, now: float, state: ArmState | None, goal: np.ndarray | None, stale: bool,
             fresh: bool = True) -> StepResult | None:
        """One tick at ``now`` (s) with the latest ``state``; ``fresh``: it arrived since the previous tick."""
        if state is None:
            return None
        self._q = state.q
        if self._must_hold(state, stale, fresh):
            return self._hold(state, now)
        if self.phase == "running" and not fresh and self.last_command is not None:
            self._dt(now)  # no new state: repeat the last command (velocity too), do not re-run the policy
            self.safety.held_ticks += 1
            return StepResult(self.last_command.copy(), hold=True)
        if self.phase == "waiting":
            duration = 0.0 if self.velocity_mode else self.safety.config.soft_start_s
            self._soft = SoftStart(state.q, self.start_pose, duration, now)
            self.phase = "soft_start" if duration > 0 else "gate"
            self._gate_since = now
            LOG.info("soft start to the start pose over %.2f s", duration)
        if self.phase == "soft_start":
            assert self._soft is not None
            if self._soft.done(now):
                self.phase, self._gate_since = "gate", now
            else:
                return self._emit(self._soft(now), now)
        if self.phase == "gate":
            error = float(np.max(np.abs(state.q - self.start_pose))) if self.start_pose.size else 0.0
            if error <= self.safety.config.start_gate_tolerance:
                self.safety.event("start_gate", False)
                self.phase = "running"
                self.builder.reset()
                LOG.info("start gate passed (pose error %.3f rad), policy engaged", error)
            else:
                self.safety.event("start_gate", now - self._gate_since > GATE_SETTLE_S,
                                  f"pose error {error:.3f} rad > {self.safety.config.start_gate_tolerance} rad")
                return self._emit(np.zeros_like(self.start_pose) if self.velocity_mode else self.start_pose, now)
        action, dt = self._infer(state, goal)
        if action is None:
            return self._hold(state, now)
        self.prev_action = action
        spec = self.spec
        if spec.action_mode == "joint_position_delta":
            cmd = np.clip(state.q + action * spec.scale, spec.low, spec.high)
        elif spec.action_mode == "joint_position":
            cmd = np.clip(spec.offset + action * spec.scale, spec.low, spec.high)
        else:  # joint_velocity
            cmd = action * spec.scale
        return self._emit(cmd, now, dt, engaged=True)


class QuadController(_Base):
    """Velocity-setpoint control of a quadrotor (action mode ``velocity``).

    Phases: ``waiting`` → ``heartbeat`` (hold the first position for ``lead_s`` so PX4 sees
    the offboard heartbeat before any motion) → ``running``. Holding (stale state, e-stop,
    NaN) levels out: zero velocity at the position where the hold began.
    """

    def __init__(self, spec: PolicySpec, policy: Callable[[np.ndarray], np.ndarray], builder: ObservationBuilder,
                 safety: SafetyLayer, period: float, lead_s: float) -> None:
        super().__init__(spec, policy, builder, safety, period)
        self.lead_s = lead_s
        self.last_velocity: np.ndarray | None = None
        self._last_result: StepResult | None = None
        self._hold_position: np.ndarray | None = None
        self._start = 0.0

    @staticmethod
    def _yaw(q: np.ndarray) -> float:
        """Heading (rad) of an xyzw quaternion (numpy: the deployment install has no SciPy)."""
        x, y, z, w = q
        return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))

    def _hold(self, state: QuadState) -> StepResult | None:
        if self._hold_position is None:
            if not np.all(np.isfinite(state.position)):
                return None
            self._hold_position = state.position.copy()
        self._last_result = None
        self.safety.held_ticks += 1
        self.last_velocity = np.zeros(3)
        yaw = self._yaw(state.orientation) if np.all(np.isfinite(state.orientation)) else 0.0
        return StepResult(DroneCommand(np.zeros(3), 0.0, self._hold_position, yaw, hold=True), hold=True)

    def exit_command(self, state: QuadState | None) -> DroneCommand | None:
        """Stop: zero velocity, hold position (the hold position, else the measured one)."""
        if state is None:
            return None
        self._hold_position = self._hold_position if self._hold_position is not None else (
            state.position.copy() if np.all(np.isfinite(state.position)) else None)
        if self._hold_position is None:
            return None
        yaw = self._yaw(state.orientation) if np.all(np.isfinite(state.orientation)) else 0.0
        return DroneCommand(np.zeros(3), 0.0, self._hold_position, yaw, hold=True)

    def step(self, now: float, state: QuadState | None, goal: np.ndarray | None, stale: bool,
             fresh: bool = True) -> StepResult | None:
        if state is None:
            return None
        if self._must_hold(state, stale, fresh):
            self._dt(now)
            return self._hold(state)
        if self.phase == "running" and not fresh and self._last_result is not None:
            self._dt(now)
            self.safety.held_ticks += 1
            return self._last_result  # no new state: repeat the last command
        if self.phase == "waiting":
            self.phase, self._start = "heartbeat", now
        if self.phase == "heartbeat":
            if now - self._start < self.lead_s:
                self._dt(now)
                return self._hold(state)
            self.phase = "running"
            self.builder.reset()
            LOG.info("offboard heartbeat lead done, policy engaged")
        action, dt = self._infer(state, goal)
        if action is None:
            self._dt(now)
            return self._hold(state)
        self._hold_position = None
        self.prev_action = action
        cmd = action * self.spec.scale
        velocity = self.safety.limit(cmd[:3], self.last_velocity, self._dt(now))
        self.last_velocity = velocity
        yaw_rate = float(cmd[3]) if cmd.size > 3 else 0.0
        self._last_result = StepResult(DroneCommand(velocity, yaw_rate, state.position.copy(),
                                                    self._yaw(state.orientation), hold=False),
                                       hold=False, inference_s=dt, engaged=True)
        return self._last_result
