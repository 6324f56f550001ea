"""Output adapters: turn a safe command into the messages a robot's controller expects.

Arms (command = joint positions (n,) rad, or velocities (n,) rad/s, robot joint order):

- ``forward_command``: ros2_control ``ForwardCommandController``, ``std_msgs/Float64MultiArray``
  on ``/<controller>/commands``; the controller's ``joints`` list must be robot.yaml
  ``ros2.joint_names`` in that order (the message carries no names).
- ``joint_trajectory``: ``JointTrajectoryController``, ``trajectory_msgs/JointTrajectory`` on
  ``/<controller>/joint_trajectory``, one point, joint names from ``ros2.joint_names``.

Quadrotors (command = world-frame (ENU) velocity setpoint (3,) m/s + yaw rate rad/s, or
a hold position (3,) m):

- ``crazyswarm_full_state``: ``crazyflie_interfaces/FullState`` (Crazyswarm2 ``cmd_full_state``).
- ``crazyswarm_velocity``: ``crazyflie_interfaces/VelocityWorld`` (``cmd_velocity_world``).
- ``px4_offboard``: ``px4_msgs/OffboardControlMode`` heartbeat every tick plus
  ``px4_msgs/TrajectorySetpoint`` in PX4's NED frame (x_ned = y_enu, y_ned = x_enu, z_ned = -z_enu).

Quadrotors, low level (:class:`LowLevelCommand`, see :mod:`sim2real.ros2.controller_drone`):

- ``px4_rates``: ``OffboardControlMode`` (``body_rate``) + ``px4_msgs/VehicleRatesSetpoint``
  (rates FRD, ``thrust_body`` normalised in body FRD/NED, up = −z).
- ``px4_motors``: ``OffboardControlMode`` (``direct_actuator``) + ``px4_msgs/ActuatorMotors``
  (normalised thrust per PX4 motor, NaN = stopped).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from sim2real.ros2.msg_definitions import PX4_MSGS_DEFAULT, PX4_MSGS_LAYOUTS, px4_type
from sim2real.ros2.transport import Transport

NAN = float("nan")


def _stamp(ns: int) -> dict[str, int]:
    return {"sec": ns // 1_000_000_000, "nanosec": ns % 1_000_000_000}


def enu_to_ned(v: Sequence[float]) -> list[float]:
    return [float(v[1]), float(v[0]), -float(v[2])]


class ForwardCommandAdapter:
    """``std_msgs/Float64MultiArray`` with the command in controller joint order."""

    type_name = "std_msgs/msg/Float64MultiArray"

    def __init__(self, transport: Transport, topic: str) -> None:
        self.topic = topic
        self._pub = transport.advertise(topic, self.type_name)

    def send(self, command: np.ndarray, stamp_ns: int) -> None:
        self._pub({"data": command.tolist()})


class JointTrajectoryAdapter:
    """Single-point ``trajectory_msgs/JointTrajectory`` reached ``time_from_start`` seconds after receipt."""

    type_name = "trajectory_msgs/msg/JointTrajectory"

    def __init__(self, transport: Transport, topic: str, joint_names: Sequence[str], time_from_start: float) -> None:
        self.topic, self.joint_names = topic, list(joint_names)
        ns = int(round(time_from_start * 1e9))
        self._tfs = _stamp(ns)
        self._pub = transport.advertise(topic, self.type_name)

    def send(self, command: np.ndarray, stamp_ns: int) -> None:
        # A zero header stamp means "start now" to the controller (no clock-offset surprises).
        self._pub({"joint_names": self.joint_names,
                   "points": [{"positions": command.tolist(), "time_from_start": self._tfs}]})


class DroneCommand:
    """Velocity setpoint ``velocity`` (3,) m/s ENU and ``yaw_rate`` rad/s, or ``hold`` at ``position`` (3,) m."""

    __slots__ = ("velocity", "yaw_rate", "position", "yaw", "hold")

    def __init__(self, velocity: np.ndarray, yaw_rate: float, position: np.ndarray, yaw: float, hold: bool) -> None:
        self.velocity, self.yaw_rate, self.position, self.yaw, self.hold = velocity, yaw_rate, position, yaw, hold


class _CrazyswarmStream:
    """Crazyswarm2 streaming setpoints. The Crazyflie levels out 0.5 s and stops its motors 2 s after
    the last streamed setpoint (crazyflie-firmware ``supervisor.c``) unless its high-level commander
    takes over: :meth:`release` calls Crazyswarm2's ``/<cf>/notify_setpoints_stop`` for that."""

    type_name = ""

    def __init__(self, transport: Transport, topic: str) -> None:
        self.topic, self._transport = topic, transport
        self._pub = transport.advertise(topic, self.type_name)

    def release(self) -> str:
        """Hand the Crazyflie to its high-level commander (after the final hold setpoint); returns what happened."""
        service = f"{self.topic.rsplit('/', 1)[0]}/notify_setpoints_stop"
        try:
            ok = self._transport.call_service(service, "crazyflie_interfaces/srv/NotifySetpointsStop",
                                              {"group_mask": 0, "remain_valid_millisecs": 100})
        except Exception as exc:  # DDS transport, or crazyflie_interfaces not installed
            return (f"could not call {service} ({exc}): the Crazyflie stops its motors 2 s after the last "
                    "setpoint unless its high-level commander takes over (call the service, then land)")
        return f"called {service}" if ok else f"{service} did not answer"


class CrazyswarmFullStateAdapter(_CrazyswarmStream):
    """``crazyflie_interfaces/FullState``: position = current + velocity·dt, level attitude at the current yaw.

    ``twist.angular`` is rad/s, counter-clockwise positive: Crazyswarm2 passes it to the full-state
    setpoint packed as milliradians/s, which the firmware's ``fullStateDecoder`` reads unnegated.
    """

    type_name = "crazyflie_interfaces/msg/FullState"

    def __init__(self, transport: Transport, topic: str, frame_id: str, period: float) -> None:
        super().__init__(transport, topic)
        self.frame_id, self.period = frame_id, period

    def send(self, cmd: DroneCommand, stamp_ns: int) -> None:
        vel = np.zeros(3) if cmd.hold else cmd.velocity
        pos = cmd.position if cmd.hold else cmd.position + cmd.velocity * self.period
        half = 0.5 * cmd.yaw
        self._pub({
            "header": {"stamp": _stamp(stamp_ns), "frame_id": self.frame_id},
            "pose": {"position": dict(zip("xyz", map(float, pos))),
                     "orientation": {"x": 0.0, "y": 0.0, "z": math.sin(half), "w": math.cos(half)}},
            "twist": {"linear": dict(zip("xyz", map(float, vel))),
                      "angular": {"x": 0.0, "y": 0.0, "z": 0.0 if cmd.hold else float(cmd.yaw_rate)}},
        })


class CrazyswarmVelocityAdapter(_CrazyswarmStream):
    """``crazyflie_interfaces/VelocityWorld`` (zero velocity when holding).

    ``yaw_rate`` is sent as the Crazyflie firmware reads it: Crazyswarm2 passes the field unchanged
    to the CRTP velocity-world setpoint (``crazyflie_server.cpp`` ``cmd_velocity_world_changed``),
    whose decoder takes deg/s and negates it (``crtp_commander_generic.c`` ``velocityDecoder``:
    ``attitudeRate.yaw = -yawrate``). A counter-clockwise (ENU) ω rad/s is ``-degrees(ω)``.
    """

    type_name = "crazyflie_interfaces/msg/VelocityWorld"

    def __init__(self, transport: Transport, topic: str, frame_id: str) -> None:
        super().__init__(transport, topic)
        self.frame_id = frame_id

    def send(self, cmd: DroneCommand, stamp_ns: int) -> None:
        vel = np.zeros(3) if cmd.hold else cmd.velocity
        self._pub({"header": {"stamp": _stamp(stamp_ns), "frame_id": self.frame_id},
                   "vel": dict(zip("xyz", map(float, vel))),
                   "yaw_rate": 0.0 if cmd.hold else -math.degrees(float(cmd.yaw_rate))})


class Px4OffboardAdapter:
    """PX4 offboard stream: ``OffboardControlMode`` heartbeat each tick + ``TrajectorySetpoint`` (NED).

    Holding uses a position setpoint (``position=True``); flying uses a velocity setpoint
    (``velocity=True``) with NaN in the uncontrolled fields, as PX4 expects.
    """

    type_name = "px4_msgs/msg/TrajectorySetpoint"

    def __init__(self, transport: Transport, topic: str, mode_topic: str, version: str = PX4_MSGS_DEFAULT) -> None:
        self.topic, self.mode_topic = topic, mode_topic
        self.mode_type = px4_type("OffboardControlMode", version)
        self._pub = transport.advertise(topic, self.type_name)
        self._mode = transport.advertise(mode_topic, self.mode_type)

    def heartbeat(self, stamp_ns: int, hold: bool) -> None:
        self._mode({"timestamp": stamp_ns // 1000, "position": hold, "velocity": not hold})

    def send(self, cmd: DroneCommand, stamp_ns: int) -> None:
        self.heartbeat(stamp_ns, cmd.hold)
        nan3 = [NAN, NAN, NAN]
        if cmd.hold:
            fields: dict[str, Any] = {"position": enu_to_ned(cmd.position), "velocity": nan3,
                                      "yaw": float(math.pi / 2 - cmd.yaw), "yawspeed": NAN}
        else:
            fields = {"position": nan3, "velocity": enu_to_ned(cmd.velocity), "yaw": NAN,
                      "yawspeed": -float(cmd.yaw_rate)}
        self._pub({"timestamp": stamp_ns // 1000, "acceleration": nan3, "jerk": nan3, **fields})


class LowLevelCommand:
    """Command of a ``thrust_rates`` or ``motor`` policy, in FLU / env rotor order.

    ``thrust`` collective thrust fraction of the maximum [0, 1] and ``rates`` (3,) body rates
    rad/s FLU (``thrust_rates``), or ``motors`` (4,) per-rotor thrust fractions [0, 1] in env
    rotor order (``motor``). ``hold``: a safety command (level out / hover), not the policy's.
    ``release``: stop the offboard heartbeat (PX4's offboard-loss failsafe takes over).
    ``kill``: zero thrust (rates) / motors stopped (NaN = disarmed in ``ActuatorMotors``).
    """

    __slots__ = ("thrust", "rates", "motors", "hold", "release", "kill")

    def __init__(self, *, thrust: float = 0.0, rates: np.ndarray | None = None, motors: np.ndarray | None = None,
                 hold: bool = False, release: bool = False, kill: bool = False) -> None:
        self.thrust, self.hold, self.release, self.kill = float(thrust), hold, release, kill
        self.rates = np.zeros(3) if rates is None else rates
        self.motors = np.zeros(4) if motors is None else motors


class _Px4LowLevel:
    """``OffboardControlMode`` heartbeat in the layout of px4_msgs ``version`` (1.14: the motor flag is
    ``actuator``; 1.15 and later: ``direct_actuator``)."""

    mode_flag = ""

    def __init__(self, transport: Transport, topic: str, mode_topic: str, version: str = PX4_MSGS_DEFAULT) -> None:
        self.topic, self.mode_topic = topic, mode_topic
        self.mode_type = px4_type("OffboardControlMode", version)
        if self.mode_flag == "direct_actuator" and PX4_MSGS_LAYOUTS[str(version)] == "1.14":
            self.mode_flag = "actuator"
        self._pub = transport.advertise(topic, self.type_name)  # type: ignore[attr-defined]
        self._mode = transport.advertise(mode_topic, self.mode_type)

    def heartbeat(self, stamp_ns: int) -> None:
        self._mode({"timestamp": stamp_ns // 1000, self.mode_flag: True})


class Px4RatesAdapter(_Px4LowLevel):
    """``OffboardControlMode`` (``body_rate``) heartbeat + ``VehicleRatesSetpoint``.

    Rates FLU → FRD ``(p, −q, −r)``; ``thrust_body = [0, 0, −thrust]`` (body NED/FRD, up is −z).
    """

    type_name = "px4_msgs/msg/VehicleRatesSetpoint"
    mode_flag = "body_rate"

    def send(self, cmd: LowLevelCommand, stamp_ns: int) -> None:
        if not cmd.release:
            self.heartbeat(stamp_ns)
        rates = [0.0, 0.0, 0.0] if cmd.kill else [float(cmd.rates[0]), -float(cmd.rates[1]), -float(cmd.rates[2])]
        thrust = 0.0 if cmd.kill else -float(cmd.thrust)
        self._pub({"timestamp": stamp_ns // 1000, "roll": rates[0], "pitch": rates[1], "yaw": rates[2],
                   "thrust_body": [0.0, 0.0, thrust], "reset_integral": False})


class Px4MotorsAdapter(_Px4LowLevel):
    """``OffboardControlMode`` (``direct_actuator``) heartbeat + ``ActuatorMotors``.

    ``control[i]`` (PX4 motor i+1) = ``motors[order[i]]``; unused outputs and a kill are NaN
    (PX4: disarmed, motor stopped).
    """

    type_name = "px4_msgs/msg/ActuatorMotors"
    mode_flag = "direct_actuator"

    def __init__(self, transport: Transport, topic: str, mode_topic: str, order: Sequence[int],
                 version: str = PX4_MSGS_DEFAULT) -> None:
        super().__init__(transport, topic, mode_topic, version)
        self.order = list(order)

    def send(self, cmd: LowLevelCommand, stamp_ns: int) -> None:
        if not cmd.release:
            self.heartbeat(stamp_ns)
        control = [NAN] * 12
        if not cmd.kill:
            for i, rotor in enumerate(self.order):
                control[i] = float(cmd.motors[rotor])
        us = stamp_ns // 1000
        self._pub({"timestamp": us, "timestamp_sample": us, "reversible_flags": 0, "control": control})
