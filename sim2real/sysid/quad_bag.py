"""Quadrotor flight logs as ROS 2 bags (rosbag2 directories, sqlite3 or MCAP), through ``rosbags``.

Topics and types are those of our deployed drone (``sim2real deploy`` with a ``motor`` policy,
``sim2real.ros2.adapters.Px4MotorsAdapter``) and of a Crazyswarm2 drone:

=================  ===================================  ====================================================
stream             type                                 topic (robot.yaml ``ros2.topics`` key)
=================  ===================================  ====================================================
odometry           ``nav_msgs/msg/Odometry``            ``odometry`` (``/cf231/odom``); twist in the body
                                                        (child) frame, pose in the world (ENU) frame
IMU (optional)     ``sensor_msgs/msg/Imu``              ``imu`` (``/cf231/imu``)
motor commands     ``px4_msgs/msg/ActuatorMotors``      ``px4_actuator_motors`` (``/fmu/in/actuator_motors``):
                                                        ``control[i]`` = thrust fraction of PX4 motor ``i+1``,
                                                        NaN = stopped
motor commands     ``std_msgs/msg/Float64MultiArray``   ``motor_command`` (``/motor_commands``): 4 thrust
(alternative)                                           fractions in env rotor order (0 FR, 1 BR, 2 BL, 3 FL)
=================  ===================================  ====================================================

A thrust fraction is ``T / T_max = ω² / max_rpm²`` (what PX4's ``ActuatorMotors`` carries once
``THR_MDL_FAC`` linearises thrust). In memory the commands are always fractions in env rotor
order (``HardwareLog.motor_command``, kind ``motor``). ``ActuatorMotors`` has no header: its
stamp is the bag receive time; odometry/IMU use ``header.stamp``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sim2real.errors import LogError
from sim2real.robots import RobotDescription
from sim2real.sysid.bagio import (
    FLOAT_ARRAY,
    IMU,
    ODOMETRY,
    _quat,
    _stamp_ns,
    _typestore,
    _vec,
)
from sim2real.sysid.logs import Commands, HardwareLog, Imu, Odometry, check_monotonic

ACTUATOR_MOTORS = "px4_msgs/msg/ActuatorMotors"
#: px4_msgs (PX4 v1.14+) ``ActuatorMotors.msg``, the same text as ``sim2real.ros2.dds_types``.
ACTUATOR_MOTORS_MSG = (
    "# Motor control message\n\nuint32 MESSAGE_VERSION = 0\n\n"
    "uint64 timestamp\t\t\t# time since system start (microseconds)\n"
    "uint64 timestamp_sample\t    # the timestamp the data this control response is based on was sampled\n\n"
    "uint16 reversible_flags     # bitset which motors are configured to be reversible\n\n"
    "uint8 ACTUATOR_FUNCTION_MOTOR1 = 101\n\nuint8 NUM_CONTROLS = 12\n"
    "float32[12] control # range: [-1, 1], where 1 means maximum positive thrust,\n"
    "                    # -1 maximum negative (if not supported by the output, <0 maps to NaN),\n"
    "                    # and NaN maps to disarmed (stop the motors)\n"
)
QUAD_DEFAULT_TOPICS = {"odometry": "/odom", "imu": "/imu", "motor_command": "/motor_commands",
                       "px4_actuator_motors": "/fmu/in/actuator_motors"}
MOTOR_TYPES = ("px4", "array")


def quad_topics(robot: RobotDescription, overrides: dict[str, str | None] | None = None) -> dict[str, str]:
    """Topic per stream: ``overrides`` over robot.yaml ``ros2.topics`` over :data:`QUAD_DEFAULT_TOPICS`."""
    topics = dict(QUAD_DEFAULT_TOPICS)
    topics.update({k: str(v) for k, v in robot.ros2.topics.items() if k in QUAD_DEFAULT_TOPICS})
    topics.update({k: v for k, v in (overrides or {}).items() if v})
    return topics


def _store() -> Any:
    from rosbags.typesys import get_types_from_msg

    store = _typestore()
    store.register(get_types_from_msg(ACTUATOR_MOTORS_MSG, ACTUATOR_MOTORS))
    return store


def _px4_order(robot: RobotDescription, motor_order: Sequence[int] | None) -> tuple[int, ...]:
    from sim2real.ros2.drone import PX4_QUAD_X_ORDER
    from sim2real.ros2.drone import motor_order as check_order

    return check_order(motor_order if motor_order is not None else PX4_QUAD_X_ORDER, file=str(robot.file))


def read_quad_bag(path: str | os.PathLike[str], robot: RobotDescription, *,
                  topics: dict[str, str | None] | None = None,
                  motor_order: Sequence[int] | None = None) -> HardwareLog:
    """Read odometry, IMU and motor commands of a quadrotor flight (see module docstring).

    The motor commands come from the ``px4_actuator_motors`` topic when the bag has it, else
    from ``motor_command``.

    :param motor_order: env rotor driven by PX4 motor 1..4 (default quadrotor-X, as the bridge)
    :raises LogError: missing/corrupt/truncated bag, missing or empty odometry or motor topic,
        wrong message type or length, non-monotonic stamps (naming the file and topic)
    """
    from rosbags.rosbag2 import Reader

    file = str(path)
    tmap = quad_topics(robot, topics)
    if not Path(file).exists():
        raise LogError(f"{file}: no such bag (directory or .db3/.mcap file)")
    order = _px4_order(robot, motor_order)
    expected = {"odometry": ODOMETRY, "imu": IMU, "px4_actuator_motors": ACTUATOR_MOTORS,
                "motor_command": FLOAT_ARRAY}
    store = _store()
    raw: dict[str, list[tuple[int, Any]]] = {}
    current = "<metadata>"
    try:
        with Reader(file) as reader:
            by_topic = {c.topic: c for c in reader.connections}
            have = sorted(by_topic) or "no topics"
            if tmap["odometry"] not in by_topic:
                raise LogError(f"{file}: topic {tmap['odometry']} (nav_msgs/msg/Odometry) not in the bag; it has {have}")
            motor_topic = next((tmap[s] for s in ("px4_actuator_motors", "motor_command") if tmap[s] in by_topic), None)
            if motor_topic is None:
                raise LogError(f"{file}: topic {tmap['px4_actuator_motors']} ({ACTUATOR_MOTORS}) or "
                               f"{tmap['motor_command']} ({FLOAT_ARRAY}) not in the bag; it has {have}")
            # the stream follows the topic's type (one --motor-topic override serves both)
            motor_stream = "motor_command" if by_topic[motor_topic].msgtype == FLOAT_ARRAY else "px4_actuator_motors"
            tmap[motor_stream] = motor_topic
            wanted = {}
            for stream in ("odometry", "imu", motor_stream):
                conn = by_topic.get(tmap[stream])
                if conn is None:
                    continue
                if conn.msgtype != expected[stream]:
                    want = expected[stream] if stream != "px4_actuator_motors" else f"{ACTUATOR_MOTORS} or {FLOAT_ARRAY}"
                    raise LogError(f"{file}: topic {conn.topic}: has type {conn.msgtype}, expected {want}")
                wanted[conn.topic] = stream
                raw[stream] = []
            conns = [by_topic[t] for t in wanted]
            for conn, bag_ns, data in reader.messages(connections=conns):
                current = conn.topic
                raw[wanted[conn.topic]].append((bag_ns, store.deserialize_cdr(data, conn.msgtype)))
    except LogError:
        raise
    except Exception as exc:  # rosbags, sqlite3, mcap and zstd all raise their own types
        where = f"topic {current}" if current != "<metadata>" else "cannot open"
        raise LogError(f"{file}: {where}: corrupt or truncated bag ({type(exc).__name__}: {exc})") from None
    for stream in ("odometry", motor_stream):
        if not raw.get(stream):
            raise LogError(f"{file}: topic {tmap[stream]}: no messages (empty bag or empty topic)")
    stamps = {s: np.array([_stamp_ns(m, b) if s != "px4_actuator_motors" else int(b) for b, m in items],
                          dtype=np.int64) for s, items in raw.items()}
    t0 = int(min(s[0] for s in stamps.values() if s.size))
    secs = {s: (v - t0) / 1e9 for s, v in stamps.items()}
    for s, t in secs.items():
        check_monotonic(t, file=file, topic=tmap[s])
    log = HardwareLog(source=file, joint_names=[], t0_ns=t0, meta={"topics": tmap, "motor_stream": motor_stream})
    ms = [m for _, m in raw["odometry"]]
    log.odometry = Odometry(secs["odometry"], np.array([_vec(m.pose.pose.position) for m in ms]),
                            np.array([_quat(m.pose.pose.orientation) for m in ms]),
                            np.array([_vec(m.twist.twist.linear) for m in ms]),
                            np.array([_vec(m.twist.twist.angular) for m in ms]), topic=tmap["odometry"])
    if raw.get("imu"):
        ms = [m for _, m in raw["imu"]]
        log.imu = Imu(secs["imu"], np.array([_quat(m.orientation) for m in ms]),
                      np.array([_vec(m.angular_velocity) for m in ms]),
                      np.array([_vec(m.linear_acceleration) for m in ms]), topic=tmap["imu"])
    topic = tmap[motor_stream]
    vals = np.zeros((len(raw[motor_stream]), 4))
    for k, (_, m) in enumerate(raw[motor_stream]):
        data = np.asarray(m.control if motor_stream == "px4_actuator_motors" else m.data, dtype=float)
        if motor_stream == "px4_actuator_motors":
            vals[k, list(order)] = data[:4]
        elif data.size != 4:
            raise LogError(f"{file}: topic {topic}: message {k} has {data.size} values, expected 4 rotor "
                           "thrust fractions (env rotor order)")
        else:
            vals[k] = data
    vals = np.where(np.isnan(vals), 0.0, vals)  # NaN = disarmed: motor stopped
    if (vals < -1e-6).any() or (vals > 1.0 + 1e-6).any():
        k = int(np.flatnonzero(((vals < -1e-6) | (vals > 1 + 1e-6)).any(axis=1))[0])
        raise LogError(f"{file}: topic {topic}: message {k} has thrust fractions {vals[k].tolist()} outside [0, 1]")
    log.motor_command = Commands(secs[motor_stream], np.clip(vals, 0.0, 1.0), kind="motor", topic=topic)
    return log


def write_quad_bag(path: str | os.PathLike[str], log: HardwareLog, robot: RobotDescription, *,
                   storage: str = "mcap", compression: str = "none", motor_type: str = "px4",
                   topics: dict[str, str | None] | None = None, motor_order: Sequence[int] | None = None,
                   overwrite: bool = False) -> Path:
    """Write a quadrotor log (odometry, IMU, motor thrust fractions) as a rosbag2 directory.

    :param storage: ``"mcap"`` or ``"sqlite3"``; ``compression``: ``"none"``, ``"file"``, ``"message"`` (zstd)
    :param motor_type: ``"px4"`` (``ActuatorMotors``, PX4 motor order, float32) or ``"array"``
        (``Float64MultiArray``, env rotor order)
    """
    from rosbags.rosbag2 import (
        CompressionFormat,
        CompressionMode,
        StoragePlugin,
        Writer,
    )
    from rosbags.typesys.stores.ros2_humble import (
        builtin_interfaces__msg__Time as Time,
    )
    from rosbags.typesys.stores.ros2_humble import (
        geometry_msgs__msg__Point as Point,
    )
    from rosbags.typesys.stores.ros2_humble import (
        geometry_msgs__msg__Pose as Pose,
    )
    from rosbags.typesys.stores.ros2_humble import (
        geometry_msgs__msg__PoseWithCovariance as PoseCov,
    )
    from rosbags.typesys.stores.ros2_humble import (
        geometry_msgs__msg__Quaternion as Quat,
    )
    from rosbags.typesys.stores.ros2_humble import (
        geometry_msgs__msg__Twist as Twist,
    )
    from rosbags.typesys.stores.ros2_humble import (
        geometry_msgs__msg__TwistWithCovariance as TwistCov,
    )
    from rosbags.typesys.stores.ros2_humble import (
        geometry_msgs__msg__Vector3 as Vec3,
    )
    from rosbags.typesys.stores.ros2_humble import (
        nav_msgs__msg__Odometry as OdomMsg,
    )
    from rosbags.typesys.stores.ros2_humble import (
        sensor_msgs__msg__Imu as ImuMsg,
    )
    from rosbags.typesys.stores.ros2_humble import (
        std_msgs__msg__Float64MultiArray as F64Array,
    )
    from rosbags.typesys.stores.ros2_humble import (
        std_msgs__msg__Header as Header,
    )
    from rosbags.typesys.stores.ros2_humble import (
        std_msgs__msg__MultiArrayLayout as Layout,
    )

    path = Path(path)
    plugins = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
    modes = {"file": CompressionMode.FILE, "message": CompressionMode.MESSAGE}
    if storage not in plugins:
        raise LogError(f"{path}: storage {storage!r} unknown; expected 'mcap' or 'sqlite3'")
    if compression not in ("none", *modes):
        raise LogError(f"{path}: compression {compression!r} unknown; expected 'none', 'file' or 'message'")
    if motor_type not in MOTOR_TYPES:
        raise LogError(f"{path}: motor_type {motor_type!r} unknown; expected one of {list(MOTOR_TYPES)}")
    if log.odometry is None or log.motor_command is None:
        raise LogError(f"{path}: a quadrotor log needs odometry and motor commands")
    if path.exists() and not overwrite:
        raise LogError(f"{path}: already exists (pass overwrite=True / --overwrite to replace it)")
    tmap = quad_topics(robot, topics)
    order = list(_px4_order(robot, motor_order))
    store = _store()
    Motors = store.types[ACTUATOR_MOTORS]

    def ns(t: float) -> int:
        return int(log.t0_ns + round(float(t) * 1e9))

    def header(t_ns: int, frame: str) -> Any:
        return Header(stamp=Time(sec=t_ns // 1_000_000_000, nanosec=t_ns % 1_000_000_000), frame_id=frame)

    def v3(a: np.ndarray) -> Any:
        return Vec3(x=float(a[0]), y=float(a[1]), z=float(a[2]))

    def q4(a: np.ndarray) -> Any:
        return Quat(x=float(a[0]), y=float(a[1]), z=float(a[2]), w=float(a[3]))

    zeros9, zeros36 = np.zeros(9), np.zeros(36)
    messages: list[tuple[int, str, str, Any]] = []
    o = log.odometry
    for k in range(len(o)):
        t = ns(o.t[k])
        pos = Point(x=float(o.position[k, 0]), y=float(o.position[k, 1]), z=float(o.position[k, 2]))
        msg = OdomMsg(header=header(t, robot.ros2.frame_id or "world"), child_frame_id="base_link",
                      pose=PoseCov(pose=Pose(position=pos, orientation=q4(o.orientation[k])), covariance=zeros36),
                      twist=TwistCov(twist=Twist(linear=v3(o.linear_velocity[k]), angular=v3(o.angular_velocity[k])),
                                     covariance=zeros36))
        messages.append((t, tmap["odometry"], ODOMETRY, msg))
    if log.imu is not None:
        m = log.imu
        for k in range(len(m)):
            t = ns(m.t[k])
            msg = ImuMsg(header=header(t, "base_link"), orientation=q4(m.orientation[k]), orientation_covariance=zeros9,
                         angular_velocity=v3(m.angular_velocity[k]), angular_velocity_covariance=zeros9,
                         linear_acceleration=v3(m.linear_acceleration[k]), linear_acceleration_covariance=zeros9)
            messages.append((t, tmap["imu"], IMU, msg))
    mc = log.motor_command
    for k in range(len(mc)):
        t = ns(mc.t[k])
        if motor_type == "px4":
            control = np.full(12, np.nan, dtype=np.float32)
            control[:4] = mc.values[k][order]
            us = t // 1000
            msg = Motors(timestamp=us, timestamp_sample=us, reversible_flags=0, control=control)
            messages.append((t, tmap["px4_actuator_motors"], ACTUATOR_MOTORS, msg))
        else:
            msg = F64Array(layout=Layout(dim=[], data_offset=0), data=np.ascontiguousarray(mc.values[k], dtype=float))
            messages.append((t, tmap["motor_command"], FLOAT_ARRAY, msg))
    messages.sort(key=lambda x: x[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        writer = Writer(tmpdir / path.name, version=8, storage_plugin=plugins[storage])
        if compression != "none":
            writer.set_compression(modes[compression], CompressionFormat.ZSTD)
        with writer:
            conns: dict[str, Any] = {}
            for t, topic, msgtype, msg in messages:
                if topic not in conns:
                    conns[topic] = writer.add_connection(topic, msgtype, typestore=store)
                writer.write(conns[topic], t, bytes(store.serialize_cdr(msg, msgtype)))
        if path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        os.replace(tmpdir / path.name, path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return path


def write_quad_csv(path: str | os.PathLike[str], log: HardwareLog) -> Path:
    """Write odometry and motor commands in the CSV layout of :mod:`sim2real.sysid.csvlog`
    (``pos_*``, ``quat_*``, ``vel_*`` body, ``rate_*``, ``motor_0..3`` thrust fractions), atomically."""
    import csv

    from sim2real._io import atomic_open

    o, mc = log.odometry, log.motor_command
    if o is None or mc is None:
        raise LogError(f"{path}: a quadrotor log needs odometry and motor commands")
    header = ["t", "pos_x", "pos_y", "pos_z", "quat_x", "quat_y", "quat_z", "quat_w", "vel_x", "vel_y", "vel_z",
              "rate_x", "rate_y", "rate_z"] + [f"motor_{i}" for i in range(mc.values.shape[1])]
    times = np.unique(np.concatenate([o.t, mc.t]))
    table = np.full((times.size, len(header)), np.nan)
    table[:, 0] = times
    odo = np.hstack([o.position, o.orientation, o.linear_velocity, o.angular_velocity])
    table[np.searchsorted(times, o.t), 1:14] = odo
    table[np.searchsorted(times, mc.t), 14:] = mc.values
    path = Path(path)
    with atomic_open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for row in table:
            w.writerow(["" if np.isnan(v) else repr(float(v)) for v in row])
    return path
