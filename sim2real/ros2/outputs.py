"""Which output adapter carries a policy's commands, and on which topic.

Topic resolution: the node parameter ``topics.<key>``, else robot.yaml ``ros2.topics``, else a
default. Adapters are in :mod:`sim2real.ros2.adapters`.
"""

from __future__ import annotations

from typing import Any

from sim2real.errors import ConfigError
from sim2real.robots import RobotDescription
from sim2real.ros2 import adapters as out
from sim2real.ros2.params import NODE_NAME
from sim2real.ros2.transport import Transport


def topic(params: dict[str, Any], robot: RobotDescription, key: str, robot_key: str, default: str) -> str:
    """``topics.<key>``, else robot.yaml ``ros2.topics[robot_key]``, else ``default``."""
    return params[f"topics.{key}"] or str(robot.ros2.topics.get(robot_key, "")) or default


def arm_command_adapter(params: dict[str, Any], robot: RobotDescription, transport: Transport, period: float) -> Any:
    """Output adapter of an arm for ``params["output"]`` (``forward_command`` (default) or ``joint_trajectory``).

    Topic: ``topics.command``, else ``/<controller>/commands`` (``/joint_trajectory``) of the
    ``controller`` parameter, else robot.yaml ``ros2.topics`` ``command`` (``trajectory``).
    """
    p = params
    output, ctrl = p["output"] if p["output"] not in ("", "auto") else "forward_command", p["controller"]
    if output == "forward_command":
        topic = p["topics.command"] or (f"/{ctrl}/commands" if ctrl else "") or str(
            robot.ros2.topics.get("command", "")) or f"/{robot.ros2.controller or 'forward_position_controller'}/commands"
        return out.ForwardCommandAdapter(transport, topic)
    if output == "joint_trajectory":
        topic = p["topics.command"] or (f"/{ctrl}/joint_trajectory" if ctrl else "") or str(
            robot.ros2.topics.get("trajectory", "")) or "/joint_trajectory_controller/joint_trajectory"
        return out.JointTrajectoryAdapter(transport, topic, robot.ros2.joint_names,
                                          p["trajectory.time_from_start_s"] or period)
    raise ConfigError(f"output {output!r} is for quadrotors; arms use forward_command or joint_trajectory",
                      path=(NODE_NAME, "ros__parameters", "output"))


def velocity_adapter(params: dict[str, Any], robot: RobotDescription, transport: Transport, output: str,
                     rate_hz: float, period: float) -> Any:
    """Output adapter of a quadrotor velocity policy: ``crazyswarm_full_state``, ``crazyswarm_velocity``
    or ``px4_offboard``; topics from ``topics.command`` / ``topics.offboard_mode``, else robot.yaml."""
    p = params
    frame = robot.ros2.frame_id or "world"
    if output == "crazyswarm_full_state":
        return out.CrazyswarmFullStateAdapter(
            transport, topic(p, robot, "command", "cmd_full_state", "/cf1/cmd_full_state"), frame, period)
    if output == "crazyswarm_velocity":
        return out.CrazyswarmVelocityAdapter(
            transport, topic(p, robot, "command", "cmd_velocity_world", "/cf1/cmd_velocity_world"), frame)
    if output == "px4_offboard":
        if rate_hz <= 2.0:
            raise ConfigError("PX4 offboard needs the heartbeat above 2 Hz; raise rate_hz", path=("rate_hz",))
        return out.Px4OffboardAdapter(
            transport, topic(p, robot, "command", "px4_trajectory_setpoint", "/fmu/in/trajectory_setpoint"),
            topic(p, robot, "offboard_mode", "px4_offboard_mode", "/fmu/in/offboard_control_mode"),
            str(p["px4_msgs_version"]))
    hint = " (it is for arms)" if output in ("forward_command", "joint_trajectory") else "; use px4_offboard or " \
        "a crazyswarm output"
    raise ConfigError(f"output {output!r} cannot carry a velocity policy{hint}",
                      path=(NODE_NAME, "ros__parameters", "output"))
