"""In-memory hardware logs: time series read from a rosbag2 or CSV file, or recorded in simulation.

All times are seconds (float64) relative to ``HardwareLog.t0_ns`` (an absolute ROS time in
nanoseconds), joint quantities are in the robot.yaml ``joints`` order (never the message
order), angles in rad, quaternions xyzw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim2real.errors import LogError

COMMAND_KINDS = ("position", "velocity", "effort", "motor", "thrust_rates")


def check_monotonic(t: np.ndarray, *, file: str, topic: str) -> None:
    """Raise :class:`LogError` unless the stamps ``t`` (shape ``(N,)``) strictly increase."""
    if t.size < 2:
        return
    bad = np.flatnonzero(np.diff(t) <= 0)
    if bad.size:
        i = int(bad[0])
        raise LogError(f"{file}: topic {topic}: timestamps are not strictly increasing "
                       f"(message {i + 1} at {t[i + 1]:.9f} s after message {i} at {t[i]:.9f} s)")


@dataclass
class JointStates:
    """``sensor_msgs/JointState`` samples, columns in robot joint order.

    :param t: stamps, shape ``(N,)``, s
    :param position: ``(N, n_joints)``, rad
    :param velocity: ``(N, n_joints)``, rad/s (NaN where the log has none)
    :param effort: ``(N, n_joints)``, N·m (NaN where the log has none)
    """

    t: np.ndarray
    position: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray
    topic: str = "/joint_states"

    def __len__(self) -> int:
        return int(self.t.shape[0])


@dataclass
class Commands:
    """Commands sent to the robot (joint positions/velocities/efforts, motor or thrust commands).

    :param t: stamps, shape ``(N,)``, s
    :param values: ``(N, dim)``; joint commands in robot joint order
    :param kind: one of :data:`COMMAND_KINDS`
    """

    t: np.ndarray
    values: np.ndarray
    kind: str = "position"
    topic: str = "/commands"

    def __len__(self) -> int:
        return int(self.t.shape[0])


@dataclass
class Odometry:
    """``nav_msgs/Odometry``: position (m, world), orientation (xyzw), twist in the child (body) frame.

    Shapes ``(N,)`` for ``t`` and ``(N, 3)`` / ``(N, 4)`` for the rest.
    """

    t: np.ndarray
    position: np.ndarray
    orientation: np.ndarray
    linear_velocity: np.ndarray
    angular_velocity: np.ndarray
    topic: str = "/odom"

    def __len__(self) -> int:
        return int(self.t.shape[0])


@dataclass
class Imu:
    """``sensor_msgs/Imu``: orientation xyzw ``(N, 4)``, angular velocity rad/s and acceleration m/s² ``(N, 3)``."""

    t: np.ndarray
    orientation: np.ndarray
    angular_velocity: np.ndarray
    linear_acceleration: np.ndarray
    topic: str = "/imu"

    def __len__(self) -> int:
        return int(self.t.shape[0])


@dataclass
class HardwareLog:
    """Everything read from one log file. Absent streams are ``None``.

    :param source: the file or directory the log came from (for error messages)
    :param joint_names: robot.yaml joint names, the column order of joint arrays
    :param t0_ns: absolute time (ns) of ``t = 0``
    :param meta: free-form metadata (robot, rates, ground truth path, ...)
    """

    source: str
    joint_names: list[str]
    t0_ns: int = 0
    joint_states: JointStates | None = None
    command: Commands | None = None
    odometry: Odometry | None = None
    imu: Imu | None = None
    motor_command: Commands | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def require_joint_states(self) -> JointStates:
        if self.joint_states is None or len(self.joint_states) == 0:
            raise LogError(f"{self.source}: no joint states in the log")
        return self.joint_states

    def require_command(self) -> Commands:
        if self.command is None or len(self.command) == 0:
            raise LogError(f"{self.source}: no joint commands in the log")
        return self.command

    @property
    def duration(self) -> float:
        """Span of the joint-state stream (s), 0 when absent."""
        js = self.joint_states
        return float(js.t[-1] - js.t[0]) if js is not None and len(js) > 1 else 0.0
