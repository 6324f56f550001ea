"""Low-level quadrotor control: ``thrust_rates`` and ``motor`` policies to PX4 offboard streams.

:class:`LowLevelQuadController` turns the policy action into physical commands
(:class:`~sim2real.ros2.adapters.LowLevelCommand`) and applies the drone safety rules:

| event | command | offboard heartbeat |
| --- | --- | --- |
| heartbeat lead (before engaging) | level out at hover thrust | on |
| NaN/inf observation or action | level out (rates that bring body z to world up, hover thrust / cos tilt, vertical-speed damping) from the last finite attitude | on |
| stale state (watchdog) | rate hold: zero body rates, hover thrust (equal hover thrust per motor) — no attitude feedback from a stale state | off if ``px4.release_on_fault`` |
| e-stop ``level_out`` (default, latched) | level out (rate hold if the state is stale) | off if ``px4.release_on_fault`` |
| e-stop ``kill`` (latched) | zero thrust and rates / all motors NaN (PX4: disarmed, stopped) | off if ``px4.release_on_fault`` |

Motors are never cut mid-air except by an explicit ``kill`` e-stop. Stopping the heartbeat
makes PX4 leave offboard mode after ``COM_OF_LOSS_T`` and run its own failsafe
(``COM_OBL_RC_ACT``: hold, land, ...) on its own estimator; until then it keeps the
(safe) setpoints sent here. Thrust fractions are clipped to [``safety.min_thrust``,
``safety.max_thrust``] and change at most ``safety.max_thrust_rate`` per second; body rates
are clipped to ``safety.max_body_rate`` (default: the sidecar's range).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np

from sim2real.errors import ConfigError
from sim2real.robots import RobotDescription
from sim2real.ros2 import adapters as out
from sim2real.ros2.adapters import LowLevelCommand
from sim2real.ros2.controller import StepResult, _Base
from sim2real.ros2.drone import DroneModel, level_out_rates, level_out_thrust, motor_order, rotor_fractions
from sim2real.ros2.observation import ObservationBuilder, QuadState
from sim2real.ros2.params import NODE_NAME
from sim2real.ros2.policy import PolicySpec
from sim2real.ros2.safety import SafetyLayer

LOG = logging.getLogger("sim2real.ros2")

#: default output per drone action mode
DRONE_OUTPUTS = {"velocity": "px4_offboard", "thrust_rates": "px4_rates", "motor": "px4_motors"}
NO_CRAZYFLIE = ("crazyflie_interfaces (Crazyswarm2) has no body-rate/thrust or per-motor command stream "
                "(its cmd_vel_legacy is roll/pitch angles + yaw rate + PWM thrust); deploy {mode!r} policies "
                "with {px4}, or a velocity policy with the crazyswarm outputs")


def max_body_rates(params: dict[str, Any], spec: PolicySpec) -> np.ndarray:
    """Body-rate limits (3,) rad/s: ``safety.max_body_rate`` or the sidecar's action range."""
    if params["safety.max_body_rate"]:
        return np.asarray(params["safety.max_body_rate"], dtype=np.float64)
    rng = np.maximum(np.abs(spec.low[1:4]), np.abs(spec.high[1:4]))
    return np.where(np.isfinite(rng), rng, np.abs(spec.offset[1:4]) + np.abs(spec.scale[1:4]))


def low_level_limits(params: dict[str, Any], spec: PolicySpec, period: float) -> tuple[np.ndarray, ...]:
    """``lower``, ``upper``, ``max_step`` (4,) of the command vector.

    ``thrust_rates``: ``[thrust fraction, p, q, r (rad/s FLU)]``; ``motor``: 4 rotor thrust fractions.
    """
    lo, hi, step = params["safety.min_thrust"], params["safety.max_thrust"], params["safety.max_thrust_rate"] * period
    if spec.action_mode == "motor":
        return np.full(4, lo), np.full(4, hi), np.full(4, step)
    rates = max_body_rates(params, spec)
    return (np.concatenate([[lo], -rates]), np.concatenate([[hi], rates]),
            np.concatenate([[step], np.full(3, np.inf)]))


class LowLevelQuadController(_Base):
    """Collective thrust + body rates (``thrust_rates``) or per-rotor thrust (``motor``).

    Phases: ``waiting`` → ``heartbeat`` (level out for ``lead_s`` while PX4 sees the offboard
    heartbeat) → ``running``. See the module docstring for the safety rules.
    """

    def __init__(self, spec: PolicySpec, policy: Callable[[np.ndarray], np.ndarray], builder: ObservationBuilder,
                 safety: SafetyLayer, period: float, lead_s: float, model: DroneModel, *, level_gain: float,
                 max_rates: np.ndarray, estop_kill: bool, release_on_fault: bool) -> None:
        super().__init__(spec, policy, builder, safety, period)
        self.model, self.lead_s, self.level_gain, self.max_rates = model, lead_s, level_gain, max_rates
        self.estop_kill, self.release_on_fault = estop_kill, release_on_fault
        self.thrust_mode = spec.action_mode == "thrust_rates"
        self.last: np.ndarray | None = None  # last command vector (see low_level_limits)
        self._last_result: StepResult | None = None
        self._start = 0.0

    # --- conversions -----------------------------------------------------------------------
    def to_vector(self, action: np.ndarray) -> np.ndarray:
        """Policy action (4,) in [-1, 1] → command vector: thrust fraction + rates, or rotor fractions."""
        phys = self.spec.offset + action * self.spec.scale
        if self.thrust_mode:  # [F (N), p, q, r (rad/s)]
            return np.concatenate([[phys[0] / self.model.max_thrust], phys[1:4]])
        return phys / self.model.max_rpm**2  # ω² (rpm²) / max_rpm² = T / T_max

    def to_action(self, vector: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_vector`, clipped to [-1, 1] (the policy's ``previous_action`` on engaging)."""
        if self.thrust_mode:
            phys = np.concatenate([[vector[0] * self.model.max_thrust], vector[1:4]])
        else:
            phys = vector * self.model.max_rpm**2
        scale = np.where(self.spec.scale != 0, self.spec.scale, 1.0)
        return np.clip((phys - self.spec.offset) / scale, -1.0, 1.0)

    def _command(self, vector: np.ndarray, **flags: bool) -> LowLevelCommand:
        if self.thrust_mode:
            return LowLevelCommand(thrust=float(vector[0]), rates=vector[1:4].copy(), **flags)
        return LowLevelCommand(motors=vector.copy(), **flags)

    def _safe_vector(self, state: QuadState, level: bool) -> np.ndarray:
        """Level-out (``level``, from the state's attitude when finite) or rate-hold command vector."""
        q = state.orientation
        q_ok = level and bool(np.all(np.isfinite(q))) and float(np.linalg.norm(q)) > 1e-6
        vz = float(state.linear_velocity[2]) if level and np.isfinite(state.linear_velocity[2]) else None
        rates = level_out_rates(q, self.level_gain, self.max_rates) if q_ok else np.zeros(3)
        thrust = level_out_thrust(self.model, q if q_ok else None, vz)
        if self.thrust_mode:
            return np.concatenate([[thrust], rates])
        omega = state.angular_velocity if q_ok and np.all(np.isfinite(state.angular_velocity)) else None
        return rotor_fractions(self.model, thrust, rates, omega)

    def _hold(self, state: QuadState, now: float, *, level: bool, release: bool) -> StepResult:
        self.safety.held_ticks += 1
        vector = self.safety.limit(self._safe_vector(state, level), self.last, self._dt(now))
        self.last = vector
        return StepResult(self._command(vector, hold=True, release=release), hold=True)

    def exit_command(self, state: QuadState | None) -> LowLevelCommand | None:
        """Stop: level out (rate hold without a finite attitude) and stop the offboard heartbeat, so
        PX4's offboard-loss failsafe takes over (``kill`` e-stop: motors stopped)."""
        if self.safety.estopped and self.estop_kill:
            return LowLevelCommand(kill=True, hold=True, release=True)
        if state is None:
            return None
        vector = self.safety.limit(self._safe_vector(state, level=True), self.last)
        return self._command(vector, hold=True, release=True)

    # --- step ------------------------------------------------------------------------------
    def step(self, now: float, state: QuadState | None, goal: np.ndarray | None, stale: bool,
             fresh: bool = True) -> StepResult | None:
        if state is None:
            return None
        release = self.release_on_fault
        if self.safety.estopped:
            self._must_hold(state, stale, fresh)
            if self.estop_kill:
                self.safety.held_ticks += 1
                return StepResult(LowLevelCommand(kill=True, hold=True, release=release), hold=True)
            return self._hold(state, now, level=not stale, release=release)
        if self._must_hold(state, stale, fresh):
            # stale: rate hold (no attitude feedback from an old state); other faults: level out
            return self._hold(state, now, level=not stale, release=release and (stale or self.safety.faulted
                                                                                == "stale_observation"))
        if self.phase == "running" and not fresh and self._last_result is not None:
            self._dt(now)
            self.safety.held_ticks += 1
            return self._last_result  # no new state: repeat the last command
        if self.phase == "waiting":
            self.phase, self._start = "heartbeat", now
        if self.phase == "heartbeat":
            if now - self._start < self.lead_s:
                return self._hold(state, now, level=True, release=False)
            self.phase = "running"
            self.builder.reset()
            if self.last is not None:  # as the envs start: previous action = the hover command
                self.prev_action = self.to_action(self.last)
            LOG.info("offboard heartbeat lead done, %s policy engaged", self.spec.action_mode)
        action, dt = self._infer(state, goal)
        if action is None:
            self._last_result = None
            return self._hold(state, now, level=True, release=False)
        self.prev_action = action
        vector = self.safety.limit(self.to_vector(action), self.last, self._dt(now))
        self.last = vector
        self._last_result = StepResult(self._command(vector), hold=False, inference_s=dt, engaged=True)
        return self._last_result


def setup_low_level(params: dict[str, Any], robot: RobotDescription, spec: PolicySpec, transport: Any,
                    builder: ObservationBuilder, policy: Callable[[np.ndarray], np.ndarray], safety: SafetyLayer,
                    period: float, rate_hz: float, output: str,
                    topic: Callable[[str, str, str], str]) -> tuple[LowLevelQuadController, Any]:
    """Controller and PX4 adapter for a ``thrust_rates`` / ``motor`` policy.

    ``topic(param_key, robot_topic_key, default)`` resolves a topic as the node does.
    """
    mode = spec.action_mode
    where = (NODE_NAME, "ros__parameters", "output")
    if output.startswith("crazyswarm"):
        raise ConfigError(NO_CRAZYFLIE.format(mode=mode, px4=DRONE_OUTPUTS[mode]), path=where)
    if output != DRONE_OUTPUTS[mode]:
        raise ConfigError(f"output {output!r} cannot carry a {mode!r} policy; use {DRONE_OUTPUTS[mode]!r}", path=where)
    if spec.action_size != 4:
        raise ConfigError(f"a {mode} policy has 4 action components, got {spec.action_size}", file=spec.file,
                          path=("action", "size"))
    if rate_hz <= 2.0:
        raise ConfigError("PX4 offboard needs the heartbeat above 2 Hz; raise rate_hz", path=("rate_hz",))
    model = DroneModel.from_robot(robot, mass=params["drone.mass_kg"], hover_fraction=params["drone.hover_thrust"])
    full = spec.offset + spec.scale
    spec_max = float(full[0]) if mode == "thrust_rates" else float(np.max(full))
    model_max = model.max_thrust if mode == "thrust_rates" else model.max_rpm**2
    if abs(spec_max - model_max) > 0.05 * model_max:
        LOG.warning("policy's full-scale command %.4g differs from %s's model (%.4g) by more than 5%%: the "
                    "policy was trained on another rotor model", spec_max, robot.name, model_max)
    controller = LowLevelQuadController(
        spec, policy, builder, safety, period, params["px4.heartbeat_lead_s"], model,
        level_gain=params["safety.level_gain"], max_rates=max_body_rates(params, spec) if mode == "thrust_rates"
        else np.asarray((robot.model_params.get("rate_controller") or {}).get("max_body_rate", [4.0, 4.0, 2.0]),
                        dtype=np.float64),
        estop_kill=params["safety.drone_estop"] == "kill", release_on_fault=params["px4.release_on_fault"])
    mode_topic = topic("offboard_mode", "px4_offboard_mode", "/fmu/in/offboard_control_mode")
    adapter: Any
    if mode == "thrust_rates":
        adapter = out.Px4RatesAdapter(transport, topic("command", "px4_rates_setpoint",
                                                       "/fmu/in/vehicle_rates_setpoint"), mode_topic,
                                      str(params["px4_msgs_version"]))
    else:
        adapter = out.Px4MotorsAdapter(transport, topic("command", "px4_actuator_motors", "/fmu/in/actuator_motors"),
                                       mode_topic, motor_order(params["px4.motor_order"]),
                                       str(params["px4_msgs_version"]))
    return controller, adapter
