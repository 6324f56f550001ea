"""Robot state from ROS messages and the policy observation built from it.

Message objects are read by attribute (``msg.name``, ``msg.pose.pose.position.x``), which
works the same for rclpy messages and the Cyclone DDS structs of
:mod:`sim2real.ros2.dds_types`. Units SI, quaternions xyzw, joint order = robot.yaml ``joints``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from sim2real.errors import ConfigError
from sim2real.ros2.kinematics import UrdfChain
from sim2real.ros2.policy import PolicySpec


def stamp_ns(header: Any) -> int:
    """``std_msgs/Header`` stamp in integer nanoseconds."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def quat_to_matrix(q: Sequence[float]) -> np.ndarray:
    """Rotation matrix (3, 3) body→world of a unit quaternion ``(x, y, z, w)``.

    In numpy, not ``scipy.spatial.transform``: the deployment install (``.[deploy]``) has no SciPy."""
    x, y, z, w = q
    n = x * x + y * y + z * z + w * w
    s = 2.0 / n if n > 0 else 0.0
    return np.array([
        [1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)],
        [s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w)],
        [s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)],
    ])


@dataclass
class ArmState:
    """Joint positions ``q`` (n,) rad and velocities ``qd`` (n,) rad/s in robot joint order."""

    q: np.ndarray
    qd: np.ndarray
    stamp_ns: int
    arrival: float  # time.monotonic() seconds when the message arrived


@dataclass
class QuadState:
    """Position (3,) m world, orientation (4,) xyzw, linear velocity (3,) m/s world, angular (3,) rad/s body."""

    position: np.ndarray
    orientation: np.ndarray
    linear_velocity: np.ndarray
    angular_velocity: np.ndarray
    stamp_ns: int
    arrival: float


class JointStateReader:
    """Reorders ``sensor_msgs/JointState`` by name into robot joint order (never trusts message order).

    :param ros_names: real joint names in robot.yaml ``joints`` order (``ros2.joint_names``).
    """

    def __init__(self, ros_names: Sequence[str]) -> None:
        self.names = tuple(ros_names)
        self._key: tuple[str, ...] | None = None
        self._index: np.ndarray | None = None
        self._prev: tuple[int, np.ndarray] | None = None

    def missing(self, msg: Any) -> list[str]:
        have = set(msg.name)
        return [n for n in self.names if n not in have]

    def read(self, msg: Any, arrival: float) -> ArmState | None:
        """State in robot order, or ``None`` when a controlled joint is missing from ``msg``."""
        key = tuple(msg.name)
        if key != self._key:
            pos = {n: i for i, n in enumerate(key)}
            if any(n not in pos for n in self.names):
                return None
            self._key, self._index = key, np.array([pos[n] for n in self.names])
        idx = self._index
        assert idx is not None
        position = np.asarray(msg.position, dtype=np.float64)
        if len(position) != len(key):
            return None
        q = position[idx]
        stamp = stamp_ns(msg.header)
        velocity = np.asarray(msg.velocity, dtype=np.float64)
        if len(velocity) == len(key):
            qd = velocity[idx]
        elif self._prev is not None and stamp > self._prev[0]:  # no velocities published: differentiate
            qd = (q - self._prev[1]) / ((stamp - self._prev[0]) * 1e-9)
        else:
            qd = np.zeros_like(q)
        self._prev = (stamp, q)
        return ArmState(q=q, qd=qd, stamp_ns=stamp, arrival=arrival)


def _vec3(v: Any) -> np.ndarray:
    return np.array([v.x, v.y, v.z], dtype=np.float64)


def _quat(q: Any) -> np.ndarray:
    return np.array([q.x, q.y, q.z, q.w], dtype=np.float64)


ODOMETRY_TWIST_FRAMES = ("body", "world")


def body_rates(q_prev: np.ndarray, q_now: np.ndarray, dt: float) -> np.ndarray:
    """Body angular velocity (3,) rad/s turning orientation ``q_prev`` into ``q_now`` (xyzw) in ``dt`` s
    (small-angle: the skew part of ``R_prev^T R_now``)."""
    skew = (quat_to_matrix(q_prev).T @ quat_to_matrix(q_now) - np.eye(3)) / dt
    return np.array([skew[2, 1] - skew[1, 2], skew[0, 2] - skew[2, 0], skew[1, 0] - skew[0, 1]]) / 2.0


def quad_state_from_odometry(msg: Any, arrival: float, twist_frame: str = "body",
                             previous: QuadState | None = None) -> QuadState:
    """``nav_msgs/Odometry``: pose in ``header.frame_id`` (world).

    ``twist_frame: body`` (REP 105): twist in ``child_frame_id`` (the body frame), rotated to the
    world here. ``world``: Crazyswarm2's ``/cfX/odom`` (C++ server, ``crazyflie_server.cpp``
    ``on_logging_odom``): linear velocity already in the world frame (``stateEstimateZ.vx/vy/vz``),
    angular velocity not filled — the body rates are then differentiated from the orientation of
    ``previous`` (zeros on the first message); an IMU topic, when configured, replaces them.
    """
    orientation = _quat(msg.pose.pose.orientation)
    stamp = stamp_ns(msg.header)
    linear, angular = _vec3(msg.twist.twist.linear), _vec3(msg.twist.twist.angular)
    if twist_frame == "world":
        dt = (stamp - previous.stamp_ns) * 1e-9 if previous is not None else 0.0
        angular = body_rates(previous.orientation, orientation, dt) if dt > 0 else np.zeros(3)
    else:
        linear = quat_to_matrix(orientation) @ linear
    return QuadState(position=_vec3(msg.pose.pose.position), orientation=orientation, linear_velocity=linear,
                     angular_velocity=angular, stamp_ns=stamp, arrival=arrival)


def update_quad_from_imu(state: QuadState, msg: Any, arrival: float) -> QuadState:
    """``sensor_msgs/Imu`` overrides orientation and body angular velocity (usually faster than odometry)."""
    return QuadState(position=state.position, orientation=_quat(msg.orientation),
                     linear_velocity=state.linear_velocity, angular_velocity=_vec3(msg.angular_velocity),
                     stamp_ns=max(state.stamp_ns, stamp_ns(msg.header)), arrival=arrival)


def update_quad_from_pose(state: QuadState | None, msg: Any, arrival: float, differentiate: bool) -> QuadState:
    """``geometry_msgs/PoseStamped`` (motion capture); velocity by finite difference when ``differentiate``."""
    position, orientation, stamp = _vec3(msg.pose.position), _quat(msg.pose.orientation), stamp_ns(msg.header)
    if state is None:
        return QuadState(position, orientation, np.zeros(3), np.zeros(3), stamp, arrival)
    lin, ang = state.linear_velocity, state.angular_velocity
    dt = (stamp - state.stamp_ns) * 1e-9
    if differentiate and dt > 0:
        lin = (position - state.position) / dt
        ang = body_rates(state.orientation, orientation, dt)
    return QuadState(position, orientation, lin, ang, stamp, arrival)


class ObservationBuilder:
    """Builds the policy input ``(obs_size * history,)`` from state, goal and previous action.

    :param spec: the policy sidecar (layout, history). Values are raw (SI units); the sidecar's
        ``observation.clip`` is applied by the exported module after its normalisation.
    :param n_joints: number of controlled joints (arms).
    :param fk: forward kinematics for ``ee_position``/``target_delta`` (arms).
    :param ee_link: end-effector link name; :param ee_com: use its centre of mass.
    :param joint_names: URDF joint names in robot order (keys for ``fk``).
    """

    def __init__(self, spec: PolicySpec, *, n_joints: int = 0, fk: UrdfChain | None = None,
                 ee_link: str | None = None, ee_com: bool = False, joint_names: Sequence[str] = ()) -> None:
        self.spec = spec
        self.needs_goal = any(n in ("target_position", "target_delta", "target_relative") for n, _ in spec.layout)
        self._history: deque[np.ndarray] = deque(maxlen=spec.history)
        self._parts: list[Callable[[Any, np.ndarray | None, np.ndarray], np.ndarray]] = []
        self._ee_cache: tuple[bytes, np.ndarray] | None = None
        names = list(joint_names)
        for i, (name, size) in enumerate(spec.layout):
            where = (spec.file, ("observation", "layout", i))
            if name in ("joint_position", "joint_velocity") and size != n_joints:
                raise ConfigError(f"{name} has size {size} but the robot has {n_joints} joints",
                                  file=where[0], path=where[1])
            if name == "previous_action" and size != spec.action_size:
                raise ConfigError(f"previous_action has size {size}, action size is {spec.action_size}",
                                  file=where[0], path=where[1])
            if name == "dynamics_params":
                raise ConfigError("dynamics_params (UP-OSI) is not available on the robot; export the policy "
                                  "with its OSI network folded in", file=where[0], path=where[1])
            if name in ("ee_position", "target_delta") and (fk is None or ee_link is None):
                raise ConfigError(f"{name} needs the robot's URDF and end_effector_link", file=where[0], path=where[1])
            self._parts.append(self._component(name, fk, ee_link, ee_com, names))

    def _ee(self, fk: UrdfChain, link: str, com: bool, names: list[str], q: np.ndarray) -> np.ndarray:
        key = q.tobytes()
        if self._ee_cache is None or self._ee_cache[0] != key:
            self._ee_cache = (key, fk.link_position(dict(zip(names, q)), link, com=com))
        return self._ee_cache[1]

    def _component(self, name: str, fk: UrdfChain | None, link: str | None, com: bool,
                   names: list[str]) -> Callable[[Any, np.ndarray | None, np.ndarray], np.ndarray]:
        ee = lambda s: self._ee(fk, link, com, names, s.q)  # noqa: E731  (fk/link checked above)
        table: dict[str, Callable[[Any, np.ndarray | None, np.ndarray], np.ndarray]] = {
            "joint_position": lambda s, g, a: s.q,
            "joint_velocity": lambda s, g, a: s.qd,
            "ee_position": lambda s, g, a: ee(s),
            "target_position": lambda s, g, a: g,
            "target_delta": lambda s, g, a: g - ee(s),
            "previous_action": lambda s, g, a: a,
            "base_position": lambda s, g, a: s.position,
            "base_orientation": lambda s, g, a: s.orientation,
            "base_rotation": lambda s, g, a: quat_to_matrix(s.orientation).reshape(-1),
            "base_linear_velocity": lambda s, g, a: s.linear_velocity,
            "base_angular_velocity": lambda s, g, a: s.angular_velocity,
            "target_relative": lambda s, g, a: g - s.position,
        }
        return table[name]

    def frame(self, state: Any, goal: np.ndarray | None, previous_action: np.ndarray) -> np.ndarray:
        """One observation ``(obs_size,)`` (not pushed to the history)."""
        if self.needs_goal and goal is None:
            raise ValueError("no goal yet")
        # raw values: the sidecar's observation.clip bounds the *normalised* input, which the
        # exported module computes (normalise, then clip) itself
        return np.concatenate([np.asarray(part(state, goal, previous_action), dtype=np.float64).reshape(-1)
                               for part in self._parts])

    def push(self, frame: np.ndarray) -> np.ndarray:
        """Append ``frame`` to the history and return the stacked input, oldest first.

        The first frame after :meth:`reset` fills the whole history (as the envs do at reset).
        """
        if not self._history:
            self._history.extend([frame] * self.spec.history)
        else:
            self._history.append(frame)
        return np.concatenate(self._history) if self.spec.history > 1 else frame

    def reset(self) -> None:
        self._history.clear()
