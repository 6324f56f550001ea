"""ROS 2 message types as Cyclone DDS IDL structs, wire-compatible with ROS 2 Humble.

ROS 2 (rmw_cyclonedds / rmw_fastrtps) maps ``pkg/msg/Type`` to the DDS type
``pkg::msg::dds_::Type_`` with final extensibility and XCDR1 encoding; fields appear
in the order of the ``.msg`` file. Every struct below mirrors its ``.msg`` definition
field by field (``byte`` → ``uint8``, ``float64[36]`` → ``array[float64, 36]``,
``float64[]`` → ``sequence[float64]``), so ``obj.serialize()`` produces exactly the
bytes ``rosbags``' ``serialize_cdr`` produces (tested in ``tests/test_ros2_dds_types.py``).

The px4_msgs definitions are those of px4_msgs v1.15 (also v1.16, v1.17: same fields):
``TrajectorySetpoint`` with ``float32[3]`` position/velocity/acceleration/jerk,
``OffboardControlMode`` with ``thrust_and_torque`` and ``direct_actuator``,
``VehicleRatesSetpoint`` with ``float32[3] thrust_body``, ``ActuatorMotors`` with
``float32[12] control``; their ``.msg`` text is in :data:`EXTRA_MSG_DEFINITIONS` so
``rosbags`` can register them. px4_msgs v1.14 differs in ``OffboardControlMode`` only (its last
field is ``actuator``; no ``thrust_and_torque``): :class:`OffboardControlModeV114`, registered as
``px4_msgs/msg/OffboardControlMode@v1.14`` (see :func:`px4_type`).

Only :mod:`sim2real.ros2.transport_dds` imports this module (it needs ``cyclonedds``).
"""

import typing
from dataclasses import dataclass
from typing import Any, Mapping

import cyclonedds.idl.annotations as annotate
import cyclonedds.idl.types as t
from cyclonedds.idl import IdlStruct

from sim2real.ros2.msg_definitions import EXTRA_MSG_DEFINITIONS  # noqa: F401  (re-exported)


def _name(ros_type: str) -> str:
    pkg, _, typ = ros_type.split("/")
    return f"{pkg}::msg::dds_::{typ}_"


# --- builtin_interfaces ---------------------------------------------------------------
@dataclass
@annotate.final
class Time(IdlStruct, typename=_name("builtin_interfaces/msg/Time")):
    sec: t.int32
    nanosec: t.uint32


@dataclass
@annotate.final
class Duration(IdlStruct, typename=_name("builtin_interfaces/msg/Duration")):
    sec: t.int32
    nanosec: t.uint32


# --- std_msgs -------------------------------------------------------------------------
@dataclass
@annotate.final
class Header(IdlStruct, typename=_name("std_msgs/msg/Header")):
    stamp: Time
    frame_id: str


@dataclass
@annotate.final
class Bool(IdlStruct, typename=_name("std_msgs/msg/Bool")):
    data: bool


@dataclass
@annotate.final
class MultiArrayDimension(IdlStruct, typename=_name("std_msgs/msg/MultiArrayDimension")):
    label: str
    size: t.uint32
    stride: t.uint32


@dataclass
@annotate.final
class MultiArrayLayout(IdlStruct, typename=_name("std_msgs/msg/MultiArrayLayout")):
    dim: t.sequence[MultiArrayDimension]
    data_offset: t.uint32


@dataclass
@annotate.final
class Float64MultiArray(IdlStruct, typename=_name("std_msgs/msg/Float64MultiArray")):
    layout: MultiArrayLayout
    data: t.sequence[t.float64]


# --- geometry_msgs --------------------------------------------------------------------
@dataclass
@annotate.final
class Point(IdlStruct, typename=_name("geometry_msgs/msg/Point")):
    x: t.float64
    y: t.float64
    z: t.float64


@dataclass
@annotate.final
class Vector3(IdlStruct, typename=_name("geometry_msgs/msg/Vector3")):
    x: t.float64
    y: t.float64
    z: t.float64


@dataclass
@annotate.final
class Quaternion(IdlStruct, typename=_name("geometry_msgs/msg/Quaternion")):
    x: t.float64
    y: t.float64
    z: t.float64
    w: t.float64


@dataclass
@annotate.final
class Pose(IdlStruct, typename=_name("geometry_msgs/msg/Pose")):
    position: Point
    orientation: Quaternion


@dataclass
@annotate.final
class PoseStamped(IdlStruct, typename=_name("geometry_msgs/msg/PoseStamped")):
    header: Header
    pose: Pose


@dataclass
@annotate.final
class Twist(IdlStruct, typename=_name("geometry_msgs/msg/Twist")):
    linear: Vector3
    angular: Vector3


@dataclass
@annotate.final
class PoseWithCovariance(IdlStruct, typename=_name("geometry_msgs/msg/PoseWithCovariance")):
    pose: Pose
    covariance: t.array[t.float64, 36]


@dataclass
@annotate.final
class TwistWithCovariance(IdlStruct, typename=_name("geometry_msgs/msg/TwistWithCovariance")):
    twist: Twist
    covariance: t.array[t.float64, 36]


# --- sensor_msgs / nav_msgs -----------------------------------------------------------
@dataclass
@annotate.final
class JointState(IdlStruct, typename=_name("sensor_msgs/msg/JointState")):
    header: Header
    name: t.sequence[str]
    position: t.sequence[t.float64]
    velocity: t.sequence[t.float64]
    effort: t.sequence[t.float64]


@dataclass
@annotate.final
class Imu(IdlStruct, typename=_name("sensor_msgs/msg/Imu")):
    header: Header
    orientation: Quaternion
    orientation_covariance: t.array[t.float64, 9]
    angular_velocity: Vector3
    angular_velocity_covariance: t.array[t.float64, 9]
    linear_acceleration: Vector3
    linear_acceleration_covariance: t.array[t.float64, 9]


@dataclass
@annotate.final
class Odometry(IdlStruct, typename=_name("nav_msgs/msg/Odometry")):
    header: Header
    child_frame_id: str
    pose: PoseWithCovariance
    twist: TwistWithCovariance


# --- trajectory_msgs ------------------------------------------------------------------
@dataclass
@annotate.final
class JointTrajectoryPoint(IdlStruct, typename=_name("trajectory_msgs/msg/JointTrajectoryPoint")):
    positions: t.sequence[t.float64]
    velocities: t.sequence[t.float64]
    accelerations: t.sequence[t.float64]
    effort: t.sequence[t.float64]
    time_from_start: Duration


@dataclass
@annotate.final
class JointTrajectory(IdlStruct, typename=_name("trajectory_msgs/msg/JointTrajectory")):
    header: Header
    joint_names: t.sequence[str]
    points: t.sequence[JointTrajectoryPoint]


# --- diagnostic_msgs ------------------------------------------------------------------
@dataclass
@annotate.final
class KeyValue(IdlStruct, typename=_name("diagnostic_msgs/msg/KeyValue")):
    key: str
    value: str


@dataclass
@annotate.final
class DiagnosticStatus(IdlStruct, typename=_name("diagnostic_msgs/msg/DiagnosticStatus")):
    level: t.uint8  # ROS `byte` (OK=0, WARN=1, ERROR=2, STALE=3)
    name: str
    message: str
    hardware_id: str
    values: t.sequence[KeyValue]


@dataclass
@annotate.final
class DiagnosticArray(IdlStruct, typename=_name("diagnostic_msgs/msg/DiagnosticArray")):
    header: Header
    status: t.sequence[DiagnosticStatus]


# --- crazyflie_interfaces (Crazyswarm2) -----------------------------------------------
@dataclass
@annotate.final
class FullState(IdlStruct, typename=_name("crazyflie_interfaces/msg/FullState")):
    header: Header
    pose: Pose
    twist: Twist
    acc: Vector3


@dataclass
@annotate.final
class VelocityWorld(IdlStruct, typename=_name("crazyflie_interfaces/msg/VelocityWorld")):
    header: Header
    vel: Vector3
    yaw_rate: t.float32


# --- px4_msgs (PX4 v1.14+) ------------------------------------------------------------
@dataclass
@annotate.final
class OffboardControlMode(IdlStruct, typename=_name("px4_msgs/msg/OffboardControlMode")):
    timestamp: t.uint64
    position: bool
    velocity: bool
    acceleration: bool
    attitude: bool
    body_rate: bool
    thrust_and_torque: bool
    direct_actuator: bool


@dataclass
@annotate.final
class OffboardControlModeV114(IdlStruct, typename=_name("px4_msgs/msg/OffboardControlMode")):
    """px4_msgs v1.14 ``OffboardControlMode`` (same DDS type name, one field fewer)."""

    timestamp: t.uint64
    position: bool
    velocity: bool
    acceleration: bool
    attitude: bool
    body_rate: bool
    actuator: bool


@dataclass
@annotate.final
class TrajectorySetpoint(IdlStruct, typename=_name("px4_msgs/msg/TrajectorySetpoint")):
    timestamp: t.uint64
    position: t.array[t.float32, 3]
    velocity: t.array[t.float32, 3]
    acceleration: t.array[t.float32, 3]
    jerk: t.array[t.float32, 3]
    yaw: t.float32
    yawspeed: t.float32


@dataclass
@annotate.final
class VehicleRatesSetpoint(IdlStruct, typename=_name("px4_msgs/msg/VehicleRatesSetpoint")):
    timestamp: t.uint64
    roll: t.float32  # body rates, FRD, rad/s
    pitch: t.float32
    yaw: t.float32
    thrust_body: t.array[t.float32, 3]  # normalised, body FRD: multicopter thrust is -z
    reset_integral: bool


@dataclass
@annotate.final
class ActuatorMotors(IdlStruct, typename=_name("px4_msgs/msg/ActuatorMotors")):
    timestamp: t.uint64
    timestamp_sample: t.uint64
    reversible_flags: t.uint16
    control: t.array[t.float32, 12]  # normalised thrust [-1, 1] per motor; NaN = disarmed (motor stopped)


@dataclass
@annotate.final
class VehicleOdometry(IdlStruct, typename=_name("px4_msgs/msg/VehicleOdometry")):
    timestamp: t.uint64
    timestamp_sample: t.uint64
    pose_frame: t.uint8  # 1 = NED
    position: t.array[t.float32, 3]
    q: t.array[t.float32, 4]  # w, x, y, z: FRD body -> pose frame
    velocity_frame: t.uint8  # 1 = NED, 3 = body FRD
    velocity: t.array[t.float32, 3]
    angular_velocity: t.array[t.float32, 3]  # body FRD, rad/s
    position_variance: t.array[t.float32, 3]
    orientation_variance: t.array[t.float32, 3]
    velocity_variance: t.array[t.float32, 3]
    reset_counter: t.uint8
    quality: t.int8


#: ROS type name (``pkg/msg/Type``, ``@v<release>`` for an older px4_msgs layout) → IDL struct.
MESSAGE_TYPES: dict[str, type] = {
    cls.__idl_typename__.replace("::msg::dds_::", "/msg/").rstrip("_"): cls  # type: ignore[attr-defined]
    for cls in (
        Time, Duration, Header, Bool, MultiArrayDimension, MultiArrayLayout, Float64MultiArray, Point,
        Vector3, Quaternion, Pose, PoseStamped, Twist, PoseWithCovariance, TwistWithCovariance,
        JointState, Imu, Odometry, JointTrajectoryPoint, JointTrajectory, KeyValue, DiagnosticStatus,
        DiagnosticArray, FullState, VelocityWorld, OffboardControlMode, TrajectorySetpoint,
        VehicleRatesSetpoint, ActuatorMotors, VehicleOdometry,
    )
}
MESSAGE_TYPES["px4_msgs/msg/OffboardControlMode@v1.14"] = OffboardControlModeV114


def _default(hint: Any) -> Any:
    if isinstance(hint, type) and issubclass(hint, IdlStruct):
        return build(hint, {})
    if hint is str:
        return ""
    if hint is bool:
        return False
    args = typing.get_args(hint)
    if len(args) == 2:
        base, meta = args
        if isinstance(meta, t.array):
            return [_default(meta.subtype) for _ in range(meta.length)]
        if isinstance(meta, t.sequence):
            return []
        if base is float:
            return 0.0
        if base is int:
            return 0
    raise TypeError(f"no default for field type {hint!r}")


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls, include_extras=True)
    return hints


def build(cls: type, fields: Mapping[str, Any]) -> Any:
    """Instantiate IDL struct ``cls`` from a (nested) dict; missing fields get ROS defaults.

    Nested structs may be given as dicts, sequences of structs as lists of dicts.
    """
    kwargs: dict[str, Any] = {}
    for name, hint in _hints(cls).items():
        if name not in fields:
            kwargs[name] = _default(hint)
            continue
        value = fields[name]
        if isinstance(hint, type) and issubclass(hint, IdlStruct):
            kwargs[name] = build(hint, value) if isinstance(value, Mapping) else value
            continue
        args = typing.get_args(hint)
        if len(args) == 2 and isinstance(args[1], (t.array, t.sequence)):
            sub = args[1].subtype
            if isinstance(sub, type) and issubclass(sub, IdlStruct):
                value = [build(sub, v) if isinstance(v, Mapping) else v for v in value]
            elif typing.get_args(sub) and typing.get_args(sub)[0] is float:
                value = [float(v) for v in value]
            else:
                value = list(value)
        elif args and args[0] is float:
            value = float(value)
        elif args and args[0] is int:
            value = int(value)
        kwargs[name] = value
    unknown = set(fields) - set(kwargs)
    if unknown:
        raise KeyError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
    return cls(**kwargs)
