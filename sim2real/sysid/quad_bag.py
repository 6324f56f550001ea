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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sim2real.errors import LogError
from sim2real.robots import RobotDescription
from sim2real.ros2.msg_definitions import EXTRA_MSG_DEFINITIONS
from sim2real.sysid.bagio import (
    COMPRESSIONS,
    FLOAT_ARRAY,
    IMU,
    ODOMETRY,
    STORAGES,
    _quat,
    _stamp_ns,
    _typestore,
    _vec,
    odometry_imu_messages,
    write_bag_messages,
)
from sim2real.sysid.logs import Commands, HardwareLog, Imu, Odometry, check_monotonic

ACTUATOR_MOTORS = "px4_msgs/msg/ActuatorMotors"
#: px4_msgs (PX4 v1.14+) ``ActuatorMotors.msg`` (:mod:`sim2real.ros2.msg_definitions`, shared with the DDS types)
ACTUATOR_MOTORS_MSG = EXTRA_MSG_DEFINITIONS[ACTUATOR_MOTORS]
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
    from rosbags.typesys.stores.ros2_humble import (
        std_msgs__msg__Float64MultiArray as F64Array,
    )
    from rosbags.typesys.stores.ros2_humble import (
        std_msgs__msg__MultiArrayLayout as Layout,
    )

    path = Path(path)
    if storage not in STORAGES:
        raise LogError(f"{path}: storage {storage!r} unknown; expected 'mcap' or 'sqlite3'")
    if compression not in COMPRESSIONS:
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

    messages = odometry_imu_messages(log, tmap, robot.ros2.frame_id or "world")
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
    write_bag_messages(path, messages, storage, compression, store)
    return path


def write_quad_csv(path: str | os.PathLike[str], log: HardwareLog) -> Path:
    """Write odometry and motor commands in the CSV layout of :mod:`sim2real.sysid.csvlog`
    (``pos_*``, ``quat_*``, ``vel_*`` body, ``rate_*``, ``motor_0..3`` thrust fractions), atomically."""
    from sim2real.sysid.csvlog import write_stamped_table

    o, mc = log.odometry, log.motor_command
    if o is None or mc is None:
        raise LogError(f"{path}: a quadrotor log needs odometry and motor commands")
    header = ["t", "pos_x", "pos_y", "pos_z", "quat_x", "quat_y", "quat_z", "quat_w", "vel_x", "vel_y", "vel_z",
              "rate_x", "rate_y", "rate_z"] + [f"motor_{i}" for i in range(mc.values.shape[1])]
    odo = np.hstack([o.position, o.orientation, o.linear_velocity, o.angular_velocity])
    return write_stamped_table(path, header, [(o.t, odo, 1), (mc.t, mc.values, 14)])
