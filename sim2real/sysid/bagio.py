"""Read and write ROS 2 bags (rosbag2 directories, sqlite3 ``.db3`` or MCAP, zstd-compressed or not)
without a ROS install, through the pure-Python ``rosbags`` package.

Topics and types are the ones a real robot's log has:

===========================  ==============================================  ====================
stream                       type                                            default topic
===========================  ==============================================  ====================
joint states                 ``sensor_msgs/msg/JointState``                  ``ros2.topics.joint_states``
joint commands               ``std_msgs/msg/Float64MultiArray``              ``ros2.topics.command``
joint commands (trajectory)  ``trajectory_msgs/msg/JointTrajectory``         ``ros2.topics.trajectory``
odometry (quadrotor)         ``nav_msgs/msg/Odometry``                       ``ros2.topics.odometry``
IMU (quadrotor)              ``sensor_msgs/msg/Imu``                         ``ros2.topics.imu``
motor/thrust commands        ``std_msgs/msg/Float64MultiArray``              ``ros2.topics.motor_command``
===========================  ==============================================  ====================

Joint columns are matched by name against robot.yaml ``ros2.joint_names`` (or the sim joint
names) and reordered into robot.yaml ``joints`` order; the message order is never trusted.
Stamps come from ``header.stamp``; messages without a header (or with a zero stamp) use the
bag receive time. Every problem is raised as one :class:`~sim2real.errors.LogError` naming the
file and the topic.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from sim2real.errors import LogError
from sim2real.robots import RobotDescription
from sim2real.sysid.logs import Commands, HardwareLog, Imu, JointStates, Odometry, check_monotonic

JOINT_STATE = "sensor_msgs/msg/JointState"
FLOAT_ARRAY = "std_msgs/msg/Float64MultiArray"
TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"
ODOMETRY = "nav_msgs/msg/Odometry"
IMU = "sensor_msgs/msg/Imu"

DEFAULT_TOPICS = {
    "joint_states": "/joint_states",
    "command": "/forward_position_controller/commands",
    "trajectory": "/joint_trajectory_controller/joint_trajectory",
    "odometry": "/odom",
    "imu": "/imu",
    "motor_command": "/motor_commands",
}
STREAMS = tuple(DEFAULT_TOPICS)
#: rosbag2 storage plugins and (zstd) compression modes :func:`write_bag_messages` accepts.
STORAGES = ("mcap", "sqlite3")
COMPRESSIONS = ("none", "file", "message")


def _typestore() -> Any:
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_HUMBLE)


def robot_topics(robot: RobotDescription | None, overrides: dict[str, str | None] | None = None) -> dict[str, str]:
    """Topic per stream: ``overrides`` over robot.yaml ``ros2.topics`` over :data:`DEFAULT_TOPICS`."""
    topics = dict(DEFAULT_TOPICS)
    if robot is not None:
        topics.update({k: str(v) for k, v in robot.ros2.topics.items() if k in DEFAULT_TOPICS})
    for key, value in (overrides or {}).items():
        if value:
            topics[key] = value
    return topics


class _JointMapper:
    """Maps a message's joint-name list to robot column indices, caching per name tuple."""

    def __init__(self, robot: RobotDescription, file: str, topic: str, allow_extra: bool) -> None:
        self.lookup = {n: i for i, n in enumerate(robot.ros2.joint_names)}
        self.lookup.update({n: i for i, n in enumerate(robot.joint_names)})
        self.expected = list(robot.ros2.joint_names)
        self.n = robot.n_joints
        self.file, self.topic, self.allow_extra = file, topic, allow_extra
        self.cache: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(src, dst)``: message index ``src[k]`` goes to robot column ``dst[k]``."""
        key = tuple(names)
        if key not in self.cache:
            unknown = [n for n in key if n not in self.lookup]
            if unknown and not self.allow_extra:
                raise LogError(f"{self.file}: topic {self.topic}: unknown joint names {unknown}; "
                               f"expected the robot's joints {self.expected} (robot.yaml ros2.joint_names)")
            src = [i for i, n in enumerate(key) if n in self.lookup]
            dst = [self.lookup[key[i]] for i in src]
            if len(set(dst)) != self.n:
                missing = [self.expected[j] for j in range(self.n) if j not in set(dst)]
                raise LogError(f"{self.file}: topic {self.topic}: joints {missing} missing from the message "
                               f"(it names {list(key)})")
            self.cache[key] = (np.asarray(src), np.asarray(dst))
        return self.cache[key]


def _stamp_ns(msg: Any, bag_ns: int) -> int:
    header = getattr(msg, "header", None)
    if header is not None:
        ns = int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)
        if ns > 0:
            return ns
    return int(bag_ns)


def _vec(v: Any) -> list[float]:
    return [float(v.x), float(v.y), float(v.z)]


def _quat(q: Any) -> list[float]:
    return [float(q.x), float(q.y), float(q.z), float(q.w)]


def read_bag(
    path: str | os.PathLike[str],
    robot: RobotDescription,
    *,
    topics: dict[str, str | None] | None = None,
    require: Iterable[str] = ("joint_states",),
    command_kind: str | None = None,
    allow_extra_joints: bool = False,
) -> HardwareLog:
    """Read a rosbag2 (directory, or a bare ``.db3``/``.mcap`` file) into a :class:`HardwareLog`.

    :param robot: gives the joint order, the ROS joint names and the default topics
    :param topics: per-stream topic overrides (keys of :data:`DEFAULT_TOPICS`)
    :param require: streams that must be present and non-empty; ``"command"`` is satisfied by
        either the ``command`` (Float64MultiArray) or the ``trajectory`` topic
    :param command_kind: what the joint command means; default from robot.yaml ``control.mode``
    :param allow_extra_joints: ignore joint names the robot does not have (e.g. gripper fingers)
        instead of raising
    :raises LogError: missing/corrupt/truncated/empty bag, missing topic, unknown joint names,
        wrong message type or length, non-monotonic stamps
    """
    from rosbags.rosbag2 import Reader

    file = str(path)
    tmap = robot_topics(robot, topics)
    require = set(require)
    bad = require - set(STREAMS)
    if bad:
        raise LogError(f"{file}: unknown stream(s) {sorted(bad)}; expected some of {list(STREAMS)}")
    if not Path(file).exists():
        raise LogError(f"{file}: no such bag (directory or .db3/.mcap file)")
    store = _typestore()
    expected_types = {"joint_states": (JOINT_STATE,), "command": (FLOAT_ARRAY, TRAJECTORY),
                      "trajectory": (TRAJECTORY,), "odometry": (ODOMETRY,), "imu": (IMU,),
                      "motor_command": (FLOAT_ARRAY,)}
    raw: dict[str, list[tuple[int, Any]]] = {}
    current = "<metadata>"
    try:
        with Reader(file) as reader:
            by_topic = {c.topic: c for c in reader.connections}
            wanted = {}
            for stream, topic in tmap.items():
                conn = by_topic.get(topic)
                if conn is None:
                    continue
                if conn.msgtype not in expected_types[stream]:
                    raise LogError(f"{file}: topic {topic}: has type {conn.msgtype}, expected "
                                   f"{' or '.join(expected_types[stream])} for {stream}")
                wanted[topic] = stream
                raw[stream] = []
            missing = [s for s in require if s not in raw and not (s == "command" and "trajectory" in raw)]
            if missing:
                names = ", ".join(tmap[s] + (f" (or {tmap['trajectory']})" if s == "command" else "")
                                  for s in sorted(missing))
                raise LogError(f"{file}: topic {names} not in the bag; it has {sorted(by_topic) or 'no topics'}")
            conns = [by_topic[t] for t in wanted]
            for conn, bag_ns, data in reader.messages(connections=conns):
                current = conn.topic
                raw[wanted[conn.topic]].append((bag_ns, store.deserialize_cdr(data, conn.msgtype)))
    except LogError:
        raise
    except Exception as exc:  # rosbags, sqlite3, mcap and zstd all raise their own types
        where = f"topic {current}" if current != "<metadata>" else "cannot open"
        raise LogError(f"{file}: {where}: corrupt or truncated bag ({type(exc).__name__}: {exc})") from None

    for stream in require:
        have = raw.get(stream) or (raw.get("trajectory") if stream == "command" else None)
        if not have:
            topic = tmap[stream]
            raise LogError(f"{file}: topic {topic}: no messages (empty bag or empty topic)")
    return _assemble(file, robot, tmap, raw, command_kind, allow_extra_joints)


def _assemble(file: str, robot: RobotDescription, tmap: dict[str, str], raw: dict[str, list[tuple[int, Any]]],
              command_kind: str | None, allow_extra: bool) -> HardwareLog:
    n = robot.n_joints
    stamps: dict[str, np.ndarray] = {}
    for stream, items in raw.items():
        stamps[stream] = np.array([_stamp_ns(m, b) for b, m in items], dtype=np.int64)
    firsts = [s[0] for s in stamps.values() if s.size]
    t0 = int(min(firsts)) if firsts else 0
    secs = {k: (v - t0) / 1e9 for k, v in stamps.items()}
    for stream, t in secs.items():
        check_monotonic(t, file=file, topic=tmap[stream])
    log = HardwareLog(source=file, joint_names=robot.joint_names, t0_ns=t0, meta={"topics": tmap})

    if raw.get("joint_states"):
        topic = tmap["joint_states"]
        mapper = _JointMapper(robot, file, topic, allow_extra)
        items = raw["joint_states"]
        pos = np.full((len(items), n), np.nan)
        vel, eff = pos.copy(), pos.copy()
        for k, (_, msg) in enumerate(items):
            src, dst = mapper(list(msg.name))
            for arr, field in ((pos, msg.position), (vel, msg.velocity), (eff, msg.effort)):
                field = np.asarray(field, dtype=float)
                if field.size == 0:
                    continue
                if field.size != len(msg.name):
                    raise LogError(f"{file}: topic {topic}: message {k} has {len(msg.name)} names but "
                                   f"{field.size} values in one of position/velocity/effort")
                arr[k, dst] = field[src]
        if np.isnan(pos).any():
            raise LogError(f"{file}: topic {topic}: joint positions missing in some messages")
        log.joint_states = JointStates(secs["joint_states"], pos, vel, eff, topic=topic)

    kind = command_kind or {"velocity": "velocity", "torque": "effort"}.get(robot.control.mode, "position")
    if raw.get("command"):
        topic = tmap["command"]
        items = raw["command"]
        if items and not hasattr(items[0][1], "data"):  # JointTrajectory published on the command topic
            log.command = _trajectory_commands(file, topic, robot, items, secs["command"], kind, allow_extra)
        else:
            vals = [np.asarray(m.data, dtype=float) for _, m in items]
            for k, v in enumerate(vals):
                if v.size != n:
                    raise LogError(f"{file}: topic {topic}: message {k} has {v.size} values, expected {n} "
                                   f"(one per joint in ros2.joint_names order)")
            log.command = Commands(secs["command"], np.stack(vals), kind=kind, topic=topic)
    elif raw.get("trajectory"):
        log.command = _trajectory_commands(file, tmap["trajectory"], robot, raw["trajectory"],
                                           secs["trajectory"], kind, allow_extra)
    if raw.get("odometry"):
        ms = [m for _, m in raw["odometry"]]
        log.odometry = Odometry(
            secs["odometry"], np.array([_vec(m.pose.pose.position) for m in ms]),
            np.array([_quat(m.pose.pose.orientation) for m in ms]),
            np.array([_vec(m.twist.twist.linear) for m in ms]), np.array([_vec(m.twist.twist.angular) for m in ms]),
            topic=tmap["odometry"])
    if raw.get("imu"):
        ms = [m for _, m in raw["imu"]]
        log.imu = Imu(secs["imu"], np.array([_quat(m.orientation) for m in ms]),
                      np.array([_vec(m.angular_velocity) for m in ms]),
                      np.array([_vec(m.linear_acceleration) for m in ms]), topic=tmap["imu"])
    if raw.get("motor_command"):
        topic = tmap["motor_command"]
        vals = [np.asarray(m.data, dtype=float) for _, m in raw["motor_command"]]
        if len({v.size for v in vals}) != 1:
            raise LogError(f"{file}: topic {topic}: messages have different lengths {sorted({v.size for v in vals})}")
        mkind = "thrust_rates" if robot.control.mode == "thrust_rates" else "motor"
        log.motor_command = Commands(secs["motor_command"], np.stack(vals), kind=mkind, topic=topic)
    return log


def _trajectory_commands(file: str, topic: str, robot: RobotDescription, items: list[tuple[int, Any]],
                         t: np.ndarray, kind: str, allow_extra: bool) -> Commands:
    """First point of each ``JointTrajectory`` as the command (streaming trajectory controllers)."""
    mapper = _JointMapper(robot, file, topic, allow_extra)
    out = np.zeros((len(items), robot.n_joints))
    field = {"velocity": "velocities", "effort": "effort"}.get(kind, "positions")
    for k, (_, msg) in enumerate(items):
        if not msg.points:
            raise LogError(f"{file}: topic {topic}: message {k} has no trajectory points")
        src, dst = mapper(list(msg.joint_names))
        vals = np.asarray(getattr(msg.points[0], field), dtype=float)
        if vals.size != len(msg.joint_names):
            raise LogError(f"{file}: topic {topic}: message {k} point 0 has {vals.size} {field}, "
                           f"expected {len(msg.joint_names)}")
        out[k, dst] = vals[src]
    return Commands(t, out, kind=kind, topic=topic)


def write_bag(
    path: str | os.PathLike[str],
    log: HardwareLog,
    robot: RobotDescription,
    *,
    storage: str = "mcap",
    compression: str = "none",
    topics: dict[str, str | None] | None = None,
    joint_order: Sequence[str] | None = None,
    command_type: str = "array",
    overwrite: bool = False,
) -> Path:
    """Write ``log`` as a rosbag2 directory with the topics and types of a real robot's log.

    :param storage: ``"mcap"`` or ``"sqlite3"``
    :param compression: ``"none"``, ``"file"`` or ``"message"`` (zstd)
    :param joint_order: ROS joint names in the order ``JointState`` messages list them
        (default robot.yaml ``ros2.joint_names``); a permutation exercises reordering on read
    :param command_type: ``"array"`` (Float64MultiArray) or ``"trajectory"`` (JointTrajectory)
    :param overwrite: replace an existing bag; otherwise an existing ``path`` is an error
    :returns: the bag directory. The bag is built in a temp directory and renamed into place.
    """
    path = Path(path)
    if storage not in STORAGES:
        raise LogError(f"{path}: storage {storage!r} unknown; expected one of {list(STORAGES)}")
    if compression not in COMPRESSIONS:
        raise LogError(f"{path}: compression {compression!r} unknown; expected one of {list(COMPRESSIONS)}")
    if command_type not in ("array", "trajectory"):
        raise LogError(f"{path}: command_type {command_type!r} unknown; expected 'array' or 'trajectory'")
    if path.exists() and not overwrite:
        raise LogError(f"{path}: already exists (pass overwrite=True / --overwrite to replace it)")
    tmap = robot_topics(robot, topics)
    ros_names = list(robot.ros2.joint_names)
    order = list(joint_order) if joint_order is not None else ros_names
    if sorted(order) != sorted(ros_names):
        raise LogError(f"{path}: joint_order {order} is not a permutation of ros2.joint_names {ros_names}")
    perm = np.array([ros_names.index(n) for n in order])
    store = _typestore()
    from rosbags.typesys.stores.ros2_humble import (
        builtin_interfaces__msg__Time as Time,
        std_msgs__msg__Header as Header,
        std_msgs__msg__Float64MultiArray as F64Array,
        std_msgs__msg__MultiArrayLayout as Layout,
        sensor_msgs__msg__JointState as JointStateMsg,
        trajectory_msgs__msg__JointTrajectory as TrajMsg,
        trajectory_msgs__msg__JointTrajectoryPoint as TrajPoint,
        builtin_interfaces__msg__Duration as Duration,
    )

    def ns(t: float) -> int:
        return int(log.t0_ns + round(float(t) * 1e9))

    def header(t_ns: int, frame: str = "") -> Any:
        return Header(stamp=Time(sec=t_ns // 1_000_000_000, nanosec=t_ns % 1_000_000_000), frame_id=frame)

    messages: list[tuple[int, str, str, Any]] = []  # (time ns, topic, type, msg)
    js = log.joint_states
    if js is not None:
        for k in range(len(js)):
            t = ns(js.t[k])
            vel = js.velocity[k][perm] if not np.isnan(js.velocity[k]).any() else np.zeros(0)
            eff = js.effort[k][perm] if not np.isnan(js.effort[k]).any() else np.zeros(0)
            msg = JointStateMsg(header=header(t), name=order, position=np.ascontiguousarray(js.position[k][perm]),
                                velocity=np.ascontiguousarray(vel), effort=np.ascontiguousarray(eff))
            messages.append((t, tmap["joint_states"], JOINT_STATE, msg))
    if log.command is not None:
        c = log.command
        for k in range(len(c)):
            t = ns(c.t[k])
            if command_type == "array":
                msg = F64Array(layout=Layout(dim=[], data_offset=0), data=np.ascontiguousarray(c.values[k], dtype=float))
                messages.append((t, tmap["command"], FLOAT_ARRAY, msg))
            else:
                vals = np.ascontiguousarray(c.values[k][perm], dtype=float)
                empty = np.zeros(0)
                point = TrajPoint(positions=vals if c.kind == "position" else empty,
                                  velocities=vals if c.kind == "velocity" else empty, accelerations=empty,
                                  effort=vals if c.kind == "effort" else empty, time_from_start=Duration(sec=0, nanosec=0))
                msg = TrajMsg(header=header(t), joint_names=order, points=[point])
                messages.append((t, tmap["trajectory"], TRAJECTORY, msg))
    messages += odometry_imu_messages(log, tmap, robot.ros2.frame_id or "world")
    if log.motor_command is not None:
        mc = log.motor_command
        for k in range(len(mc)):
            msg = F64Array(layout=Layout(dim=[], data_offset=0), data=np.ascontiguousarray(mc.values[k], dtype=float))
            messages.append((ns(mc.t[k]), tmap["motor_command"], FLOAT_ARRAY, msg))
    write_bag_messages(path, messages, storage, compression, store)
    return path


def odometry_imu_messages(log: HardwareLog, tmap: dict[str, str], world_frame: str) -> list[tuple[int, str, str, Any]]:
    """``(t_ns, topic, msgtype, msg)`` of the odometry (``nav_msgs/Odometry`` in ``world_frame``, child
    ``base_link``, body-frame twist) and IMU (``sensor_msgs/Imu`` in ``base_link``) streams of ``log``, if present.

    :param tmap: topic per stream (keys ``"odometry"``, ``"imu"``); stamps are ``log.t0_ns`` + log time
    """
    from rosbags.typesys.stores.ros2_humble import (
        builtin_interfaces__msg__Time as Time,
        std_msgs__msg__Header as Header,
        nav_msgs__msg__Odometry as OdomMsg,
        sensor_msgs__msg__Imu as ImuMsg,
        geometry_msgs__msg__PoseWithCovariance as PoseCov,
        geometry_msgs__msg__TwistWithCovariance as TwistCov,
        geometry_msgs__msg__Pose as Pose,
        geometry_msgs__msg__Twist as Twist,
        geometry_msgs__msg__Point as Point,
        geometry_msgs__msg__Quaternion as Quat,
        geometry_msgs__msg__Vector3 as Vec3,
    )

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
    if log.odometry is not None:
        o = log.odometry
        for k in range(len(o)):
            t = ns(o.t[k])
            msg = OdomMsg(header=header(t, world_frame), child_frame_id="base_link",
                          pose=PoseCov(pose=Pose(position=Point(x=float(o.position[k, 0]), y=float(o.position[k, 1]),
                                                                z=float(o.position[k, 2])),
                                                 orientation=q4(o.orientation[k])), covariance=zeros36),
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
    return messages


def write_bag_messages(path: Path, messages: list[tuple[int, str, str, Any]], storage: str, compression: str,
                       store: Any) -> None:
    """Write ``(t_ns, topic, msgtype, msg)`` tuples, sorted by time here, as the rosbag2 directory ``path``.

    The bag is built in a temp directory next to ``path`` and renamed into place (an existing
    ``path`` is replaced). ``storage`` is one of :data:`STORAGES`, ``compression`` one of
    :data:`COMPRESSIONS` (zstd); callers validate both with their own messages. ``store`` is the
    rosbags typestore that knows every ``msgtype``.
    """
    from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer

    plugins = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
    modes = {"file": CompressionMode.FILE, "message": CompressionMode.MESSAGE}
    messages.sort(key=lambda m: m[0])
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
