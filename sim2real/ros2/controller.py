"""One control step, without any middleware: state → observation → policy → safe command.

:class:`ArmController` and :class:`QuadController` hold the engagement phase, the
previous action/command and apply the :class:`~sim2real.ros2.safety.SafetyLayer`. The
node calls ``step`` once per tick with the latest state; ``step`` returns what to publish
(or ``None`` when there is nothing safe to send yet).
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
        self._said: set[str] = set()

    def _say_once(self, key: str, msg: str) -> None:
        if key not in self._said:
            self._said.add(key)
            LOG.info(msg)

    def _infer(self, state: object, goal: np.ndarray | None) -> tuple[np.ndarray | None, float]:
        """Policy action in [-1, 1] (act_dim,), or None (trip counted) on NaN/inf or missing goal."""
        try:
            frame = self.builder.frame(state, goal, self.prev_action)
        except ValueError:
            self._say_once("goal", "waiting for a goal before engaging the policy")
            return None, 0.0
        if self.safety.event("nan_observation", not np.all(np.isfinite(frame)), "non-finite observation, holding"):
            return None, 0.0
        stacked = self.builder.push(frame)
        t0 = time.perf_counter()
        action = np.asarray(self.policy(stacked), dtype=np.float64)
        dt = time.perf_counter() - t0
        if self.safety.event("nan_action", not np.all(np.isfinite(action)), "non-finite action, holding"):
            return None, dt
        return np.clip(action, -1.0, 1.0), dt


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

    def _hold(self, state: ArmState) -> StepResult | None:
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

    def _emit(self, cmd: np.ndarray, inference_s: float = 0.0, engaged: bool = False) -> StepResult:
        if self.last_command is not None:
            prev = self.last_command
        else:  # first command: from rest (velocity) or from the measured pose (position)
            prev = np.zeros_like(self._q) if self.velocity_mode else self._q
        out = self.safety.limit(cmd, prev)
        self.last_command = out
        return StepResult(out.copy(), hold=False, inference_s=inference_s, engaged=engaged)

    def step(self, now: float, state: ArmState | None, goal: np.ndarray | None, stale: bool) -> StepResult | None:
        if state is None:
            return None
        self._q = state.q
        if self.safety.estopped or stale:
            return self._hold(state)
        if self.phase == "waiting":
            if not np.all(np.isfinite(state.q)):
                self.safety.event("nan_observation", True, "non-finite joint state before start")
                return None
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
                return self._emit(self._soft(now))
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
                return self._emit(np.zeros_like(self.start_pose) if self.velocity_mode else self.start_pose)
        action, dt = self._infer(state, goal)
        if action is None:
            return self._hold(state)
        self.prev_action = action
        spec = self.spec
        if spec.action_mode == "joint_position_delta":
            cmd = np.clip(state.q + action * spec.scale, spec.low, spec.high)
        elif spec.action_mode == "joint_position":
            cmd = np.clip(spec.offset + action * spec.scale, spec.low, spec.high)
        else:  # joint_velocity
            cmd = action * spec.scale
        return self._emit(cmd, dt, engaged=True)


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
        self._hold_position: np.ndarray | None = None
        self._start = 0.0

    @staticmethod
    def _yaw(q: np.ndarray) -> float:
        x, y, z, w = q
        return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))

    def _hold(self, state: QuadState) -> StepResult | None:
        if self._hold_position is None:
            if not np.all(np.isfinite(state.position)):
                return None
            self._hold_position = state.position.copy()
        self.safety.held_ticks += 1
        self.last_velocity = np.zeros(3)
        yaw = self._yaw(state.orientation) if np.all(np.isfinite(state.orientation)) else 0.0
        return StepResult(DroneCommand(np.zeros(3), 0.0, self._hold_position, yaw, hold=True), hold=True)

    def step(self, now: float, state: QuadState | None, goal: np.ndarray | None, stale: bool) -> StepResult | None:
        if state is None:
            return None
        if self.safety.estopped or stale:
            return self._hold(state)
        if self.phase == "waiting":
            self.phase, self._start = "heartbeat", now
        if self.phase == "heartbeat":
            if now - self._start < self.lead_s:
                return self._hold(state)
            self.phase = "running"
            self.builder.reset()
            LOG.info("offboard heartbeat lead done, policy engaged")
        action, dt = self._infer(state, goal)
        if action is None:
            return self._hold(state)
        self._hold_position = None
        self.prev_action = action
        cmd = action * self.spec.scale
        velocity = self.safety.limit(cmd[:3], self.last_velocity)
        self.last_velocity = velocity
        yaw_rate = float(cmd[3]) if cmd.size > 3 else 0.0
        return StepResult(DroneCommand(velocity, yaw_rate, state.position.copy(), self._yaw(state.orientation),
                                       hold=False), hold=False, inference_s=dt, engaged=True)
