"""What the vehicle's firmware does with the ROS 2 setpoint streams: Crazyflie and PX4 commanders.

Each commander turns received messages into the flight controller's
:class:`~sim2real.sim2sim.quadrotor_firmware.Setpoint` and applies its firmware's rules for
missing or stale streams. Messages are read by attribute (rclpy messages or
:mod:`sim2real.ros2.dds_types` structs). Times are simulated seconds.

**Crazyflie** (Crazyswarm2 topics, robot.yaml ``ros2.topics``):

- ``cmd_velocity_world`` (``crazyflie_interfaces/VelocityWorld``): world velocity (m/s ENU);
  ``yaw_rate`` in deg/s, positive clockwise seen from above (the Crazyflie commander negates it
  into its counter-clockwise-positive attitude-rate setpoint), so the ENU yaw rate is
  ``−radians(yaw_rate)``.
- ``cmd_full_state`` (``crazyflie_interfaces/FullState``): position (m), velocity and
  acceleration feed-forward, heading from the pose quaternion (xyzw).
- Before the first low-level setpoint the vehicle hovers where it started (the high-level
  commander's hover after take-off). The firmware's setpoint watchdog: no setpoint for
  ``failsafe.stabilize_s`` → level attitude, zero vertical speed; for ``failsafe.shutdown_s``
  → motors stopped (the vehicle falls).

**PX4** (``px4_msgs``, uXRCE-DDS topics under ``/fmu/in``):

- ``OffboardControlMode`` heartbeat: the first true flag of ``position, velocity, acceleration,
  attitude, body_rate, thrust_and_torque, direct_actuator`` selects the setpoint stream, as in
  PX4. Offboard engages (as the operator's mode switch would) once the heartbeat has streamed
  for ``failsafe.offboard_engage_s`` and the selected setpoint has arrived; a heartbeat older
  than ``failsafe.offboard_loss_s`` (``COM_OF_LOSS_T``) leaves offboard into Hold at the
  current position. Before engaging the vehicle holds its start position.
- ``TrajectorySetpoint`` (NED): position if finite (velocity feed-forward if finite), else
  velocity; ``yaw`` (NED heading, ``yaw_enu = π/2 − yaw``) if finite, else ``yawspeed``
  (``−yawspeed`` ENU).
- ``VehicleRatesSetpoint``: body rates FRD → FLU ``(p, −q, −r)``, collective thrust
  ``−thrust_body[2]`` of the maximum.
- ``ActuatorMotors``: ``control[i]`` is PX4 motor ``i+1`` (quadrotor X: front-right,
  back-left, front-left, back-right), thrust fraction; NaN stops the motor.
- ``acceleration``, ``attitude`` and ``thrust_and_torque`` offboard modes are not flown: the
  vehicle holds position and logs ``unsupported_offboard_mode``.

Setpoints with NaN/inf where a number is needed are rejected (``nan_setpoint`` event).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
from scipy.spatial.transform import Rotation

from sim2real.robots import RobotDescription
from sim2real.sim2sim.quadrotor_firmware import Setpoint, yaw_of
from sim2real.sim2sim.quadrotor_model import QuadState

#: rotor (front-right 0, back-right 1, back-left 2, front-left 3) driven by PX4 motor 1..4
PX4_MOTOR_ROTOR = (0, 2, 3, 1)
PX4_MODE_FLAGS = ("position", "velocity", "acceleration", "attitude", "body_rate", "thrust_and_torque",
                  "direct_actuator")

Handler = Callable[[Any, float], None]


def _vec3(v: Any) -> np.ndarray:
    return np.array([v.x, v.y, v.z], dtype=np.float64)


def ned_to_enu(v: Any) -> np.ndarray:
    """World vector (3,) NED → ENU (its own inverse)."""
    return np.array([v[1], v[0], -v[2]], dtype=np.float64)


def quat_yaw(x: float, y: float, z: float, w: float) -> float:
    """Heading (rad) of a quaternion ``xyzw``: the first of its intrinsic z-y-x Euler angles."""
    return float(Rotation.from_quat([x, y, z, w]).as_euler("ZYX")[0])


class EventLog:
    """Safety/mode events ``{"t": s, "event": name, ...}`` and a count per name."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.counts: dict[str, int] = {}

    def add(self, t: float, event: str, **info: Any) -> None:
        self.counts[event] = self.counts.get(event, 0) + 1
        if len(self.events) < 200:  # a flood of one event must not grow the summary without bound
            self.events.append({"t": round(t, 4), "event": event, **info})


def _topic(robot: RobotDescription, key: str, default: str) -> str:
    return str(robot.ros2.topics.get(key, default))


class CrazyflieCommander:
    """Crazyswarm2 low-level setpoints with the Crazyflie setpoint watchdog (module docstring)."""

    def __init__(self, robot: RobotDescription, failsafe: dict[str, float], hold: Setpoint, log: EventLog) -> None:
        self.hold, self.log = hold, log
        self.stabilize_s, self.shutdown_s = failsafe["stabilize_s"], failsafe["shutdown_s"]
        self.low: Setpoint | None = None
        self.last = -math.inf
        self.state = "high_level"
        self.subscriptions: list[tuple[str, str, Handler]] = [
            (_topic(robot, "cmd_velocity_world", "/cf1/cmd_velocity_world"), "crazyflie_interfaces/msg/VelocityWorld",
             self.on_velocity_world),
            (_topic(robot, "cmd_full_state", "/cf1/cmd_full_state"), "crazyflie_interfaces/msg/FullState",
             self.on_full_state),
        ]

    def _accept(self, sp: Setpoint, t: float, values: np.ndarray, topic: str) -> None:
        if not np.all(np.isfinite(values)):
            self.log.add(t, "nan_setpoint", topic=topic)
            return
        self.low, self.last = sp, t

    def on_velocity_world(self, msg: Any, t: float) -> None:
        vel, rate = _vec3(msg.vel), float(msg.yaw_rate)
        self._accept(Setpoint("velocity", velocity=vel, yaw_rate=-math.radians(rate)), t, np.append(vel, rate),
                     "cmd_velocity_world")

    def on_full_state(self, msg: Any, t: float) -> None:
        pos, vel, acc = _vec3(msg.pose.position), _vec3(msg.twist.linear), _vec3(msg.acc)
        q = msg.pose.orientation
        quat = np.array([q.x, q.y, q.z, q.w], dtype=np.float64)
        ok = np.concatenate([pos, vel, acc, quat])
        yaw = quat_yaw(*quat) if np.all(np.isfinite(quat)) and np.linalg.norm(quat) > 1e-6 else math.nan
        self._accept(Setpoint("position", position=pos, velocity=vel, acceleration=acc, yaw=yaw), t,
                     np.append(ok, yaw), "cmd_full_state")

    def setpoint(self, t: float, state: QuadState) -> Setpoint:
        if self.low is None:
            return self.hold
        age = t - self.last
        mode = "shutdown" if age > self.shutdown_s else "stabilize" if age > self.stabilize_s else "low_level"
        if mode != self.state:
            self.log.add(t, {"shutdown": "watchdog_motors_off", "stabilize": "watchdog_level",
                             "low_level": "low_level_setpoints"}[mode])
            self.state = mode
        if mode == "shutdown":
            return Setpoint("off")
        if mode == "stabilize":
            return Setpoint("level")
        return self.low


class Px4Commander:
    """PX4 offboard control: heartbeat, engage/loss rules and the setpoint streams (module docstring)."""

    def __init__(self, robot: RobotDescription, failsafe: dict[str, float], hold: Setpoint, log: EventLog) -> None:
        self.hold, self.log = hold, log
        self.loss_s, self.engage_s = failsafe["offboard_loss_s"], failsafe["offboard_engage_s"]
        self.last_hb, self.stream_start = -math.inf, -math.inf
        self.mode: str | None = None
        self.engaged = False
        self.latest: dict[str, Setpoint] = {}
        self.subscriptions: list[tuple[str, str, Handler]] = [
            (_topic(robot, "px4_offboard_mode", "/fmu/in/offboard_control_mode"), "px4_msgs/msg/OffboardControlMode",
             self.on_mode),
            (_topic(robot, "px4_trajectory_setpoint", "/fmu/in/trajectory_setpoint"),
             "px4_msgs/msg/TrajectorySetpoint", self.on_trajectory),
            (_topic(robot, "px4_rates_setpoint", "/fmu/in/vehicle_rates_setpoint"),
             "px4_msgs/msg/VehicleRatesSetpoint", self.on_rates),
            (_topic(robot, "px4_actuator_motors", "/fmu/in/actuator_motors"), "px4_msgs/msg/ActuatorMotors",
             self.on_motors),
        ]

    def on_mode(self, msg: Any, t: float) -> None:
        if t - self.last_hb > self.loss_s:
            self.stream_start = t
        self.last_hb = t
        self.mode = next((f for f in PX4_MODE_FLAGS if bool(getattr(msg, f, False))), None)

    def on_trajectory(self, msg: Any, t: float) -> None:
        pos, vel, acc = (np.asarray(v, dtype=np.float64) for v in (msg.position, msg.velocity, msg.acceleration))
        yaw, yawspeed = float(msg.yaw), float(msg.yawspeed)
        heading = math.pi / 2 - yaw if math.isfinite(yaw) else None
        rate = -yawspeed if math.isfinite(yawspeed) else 0.0
        ff_acc = ned_to_enu(acc) if np.all(np.isfinite(acc)) else np.zeros(3)
        if np.all(np.isfinite(pos)):
            ff_vel = ned_to_enu(vel) if np.all(np.isfinite(vel)) else np.zeros(3)
            sp = Setpoint("position", position=ned_to_enu(pos), velocity=ff_vel, acceleration=ff_acc, yaw=heading,
                          yaw_rate=rate)
        elif np.all(np.isfinite(vel)):
            sp = Setpoint("velocity", velocity=ned_to_enu(vel), yaw=heading, yaw_rate=rate)
        else:
            self.log.add(t, "nan_setpoint", topic="trajectory_setpoint")
            return
        self.latest["trajectory"] = sp

    def on_rates(self, msg: Any, t: float) -> None:
        frd = np.array([msg.roll, msg.pitch, msg.yaw], dtype=np.float64)
        thrust = -float(msg.thrust_body[2])
        if not (np.all(np.isfinite(frd)) and math.isfinite(thrust)):
            self.log.add(t, "nan_setpoint", topic="vehicle_rates_setpoint")
            return
        self.latest["rates"] = Setpoint("rates", rates=frd * np.array([1.0, -1.0, -1.0]), thrust=thrust)

    def on_motors(self, msg: Any, t: float) -> None:
        control = np.asarray(msg.control, dtype=np.float64)
        motors = np.full(4, np.nan)
        for i, rotor in enumerate(PX4_MOTOR_ROTOR):
            motors[rotor] = control[i]
        if np.any(np.isinf(motors)):
            self.log.add(t, "nan_setpoint", topic="actuator_motors")
            return
        self.latest["motors"] = Setpoint("motors", motors=motors)

    def _stream(self) -> str | None:
        return {"position": "trajectory", "velocity": "trajectory", "body_rate": "rates",
                "direct_actuator": "motors"}.get(self.mode or "")

    def setpoint(self, t: float, state: QuadState) -> Setpoint:
        fresh = t - self.last_hb <= self.loss_s
        if self.engaged and not fresh:
            self.engaged = False
            self.hold = Setpoint("position", position=state.position.copy(), yaw=yaw_of(state.rotation))
            self.log.add(t, "offboard_lost")
        stream = self._stream()
        if not self.engaged and fresh and t - self.stream_start >= self.engage_s and self.mode is not None:
            if stream is None:
                if self.log.counts.get("unsupported_offboard_mode", 0) == 0:
                    self.log.add(t, "unsupported_offboard_mode", mode=self.mode)
            elif stream in self.latest:
                self.engaged = True
                self.log.add(t, "offboard_engaged", mode=self.mode)
        if not self.engaged:
            return self.hold
        if stream is None or stream not in self.latest:  # mode changed to one without a setpoint yet
            return self.hold
        return self.latest[stream]


COMMANDERS = {"crazyflie": CrazyflieCommander, "px4": Px4Commander}
