"""Parameter schema of the deployment node and the ROS 2 parameter-file loader.

Parameter files use the ROS 2 layout (what ``launch_ros`` passes with ``--params-file``)::

    sim2real_deploy:            # node name (or /** for every node)
      ros__parameters:
        robot: kuka_iiwa
        rate_hz: 20.0
        safety:
          watchdog_periods: 5

Nested keys are flattened to ROS dotted names (``safety.watchdog_periods``). Every key is
checked against :data:`SCHEMA`; errors name the file and the key path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping


from sim2real._check import Checker
from sim2real._io import read_yaml_file
from sim2real.ros2.msg_definitions import PX4_MSGS_LAYOUTS

NODE_NAME = "sim2real_deploy"
OUTPUTS = ("forward_command", "joint_trajectory", "crazyswarm_full_state", "crazyswarm_velocity", "px4_offboard",
           "px4_rates", "px4_motors")


@dataclass(frozen=True)
class Param:
    type: type | tuple[type, ...]
    default: Any
    doc: str
    check: Callable[[Any], bool] | None = None
    expected: str = ""


def _pos(v: Any) -> bool:
    return v > 0


def _nonneg(v: Any) -> bool:
    return v >= 0


_num = (int, float)
#: name → Param. Empty strings / zeros mean "use the robot.yaml or sidecar default".
SCHEMA: dict[str, Param] = {
    "robot": Param(str, "", "robot name under robots/ or path to a robot.yaml (default: the sidecar's robot)"),
    "policy": Param(str, "", "TorchScript policy file; its sidecar is the same path with .yaml"),
    "sidecar": Param(str, "", "sidecar YAML if not next to the policy"),
    "transport": Param(str, "auto", "auto | rclpy | dds", lambda v: v in ("auto", "rclpy", "dds"), "auto, rclpy or dds"),
    "domain_id": Param(int, -1, "DDS domain for the dds transport (-1: $ROS_DOMAIN_ID or 0)",
                       lambda v: -1 <= v <= 232, "an integer in -1..232"),
    "use_sim_time": Param(bool, False, "use /clock (rclpy transport)"),
    "rate_hz": Param(_num, 0.0, "control rate, Hz (0: the sidecar's control_rate_hz)", _nonneg, ">= 0"),
    "trigger": Param(str, "timer", "timer: tick on a fixed-rate clock; state: tick when a new state arrives, "
                     "with the period as deadline", lambda v: v in ("timer", "state"), "timer or state"),
    "realtime_priority": Param(int, 0, "SCHED_FIFO priority of the control loop and middleware threads "
                               "(Linux, 1..99; 0: normal scheduling)", lambda v: 0 <= v <= 99, "an integer in 0..99"),
    "duration_s": Param(_num, 0.0, "stop after this many seconds (0: run until interrupted)", _nonneg, ">= 0"),
    "output": Param(str, "", f"command output: {' | '.join(OUTPUTS)} ('' or auto: forward_command for arms; for "
                    "quadrotors from the policy's action mode: velocity -> px4_offboard, thrust_rates -> px4_rates, "
                    "motor -> px4_motors)", lambda v: v in ("", "auto", *OUTPUTS), f"auto or one of {list(OUTPUTS)}"),
    "controller": Param(str, "", "ros2_control controller name for arm outputs (default: robot.yaml ros2.controller)"),
    "goal": Param(list, [], "default goal position [x, y, z] (m, base frame) until one arrives on topics.goal",
                  lambda v: len(v) in (0, 3) and all(isinstance(x, _num) and math.isfinite(x) for x in v),
                  "[] or [x, y, z] of finite numbers"),
    "topics.joint_states": Param(str, "", "sensor_msgs/JointState input"),
    "topics.odometry": Param(str, "", "nav_msgs/Odometry input (quadrotor)"),
    "odometry.twist_frame": Param(str, "body", "frame of the odometry twist: body (REP 105, child_frame_id) or world "
                                  "(Crazyswarm2 /cfX/odom: linear velocity in the world frame, no angular velocity; "
                                  "body rates are then differentiated from the orientation)",
                                  lambda v: v in ("body", "world"), "body or world"),
    "topics.imu": Param(str, "", "sensor_msgs/Imu input (quadrotor, optional)"),
    "topics.pose": Param(str, "", "geometry_msgs/PoseStamped input (quadrotor, when there is no odometry)"),
    "topics.goal": Param(str, "", "geometry_msgs/PoseStamped goal"),
    "topics.estop": Param(str, "", "std_msgs/Bool e-stop (latching)"),
    "topics.resume": Param(str, "", "std_msgs/Bool operator resume after a fault (default /sim2real/resume)"),
    "topics.diagnostics": Param(str, "", "diagnostic_msgs/DiagnosticArray loop statistics"),
    "topics.command": Param(str, "", "command topic (default from output and controller)"),
    "topics.offboard_mode": Param(str, "", "px4_msgs/OffboardControlMode heartbeat topic"),
    "safety.enabled": Param(bool, True, "clip and rate-limit commands (NaN, watchdog and e-stop always apply)"),
    "safety.watchdog_periods": Param(_num, 2.0, "fault (hold until resumed) when no new state for this many control "
                                     "periods; ticks without a new state repeat the last command", _pos, "> 0"),
    "safety.resume": Param(str, "operator", "after a fault (stale / non-finite state or action): operator (True on "
                           "topics.resume) or auto (after safety.resume_states fresh, finite states)",
                           lambda v: v in ("operator", "auto"), "operator or auto"),
    "safety.resume_states": Param(int, 5, "resume: auto: consecutive fresh, finite states before resuming", _pos,
                                  "> 0"),
    "safety.soft_start_s": Param(_num, 2.0, "interpolate from the current pose to the start pose over this time, s",
                                 _nonneg, ">= 0"),
    "safety.start_gate_tolerance": Param(_num, 0.1, "engage the policy only when max |q - q_start| (rad) is "
                                         "below this", _pos, "> 0"),
    "safety.max_step_scale": Param(_num, 1.0, "per-step position change limit as a fraction of "
                                   "max_velocity * period", _pos, "> 0"),
    "safety.max_speed": Param(_num, 1.0, "quadrotor velocity setpoint limit, m/s", _pos, "> 0"),
    "safety.max_accel": Param(_num, 2.0, "velocity setpoint change limit, m/s^2 (rad/s^2 for joint_velocity)",
                              _pos, "> 0"),
    "safety.min_thrust": Param(_num, 0.0, "thrust_rates / motor: lower bound of the collective (per-motor) thrust "
                               "fraction", lambda v: 0 <= v < 1, "in [0, 1)"),
    "safety.max_thrust": Param(_num, 1.0, "thrust_rates / motor: upper bound of the thrust fraction",
                               lambda v: 0 < v <= 1, "in (0, 1]"),
    "safety.max_thrust_rate": Param(_num, 10.0, "thrust_rates / motor: largest change of a thrust fraction per "
                                    "second, 1/s", _pos, "> 0"),
    "safety.max_body_rate": Param(list, [], "thrust_rates: body-rate limits [p, q, r] rad/s ([]: the sidecar's)",
                                  lambda v: len(v) in (0, 3) and all(isinstance(x, _num) and x > 0 for x in v),
                                  "[] or three positive numbers"),
    "safety.level_gain": Param(_num, 4.0, "level-out: body rate per rad of tilt, 1/s", _pos, "> 0"),
    "safety.drone_estop": Param(str, "level_out", "thrust_rates / motor e-stop: level_out (level out at hover "
                                "thrust, hand control back to PX4) or kill (zero thrust / motors stopped)",
                                lambda v: v in ("level_out", "kill"), "level_out or kill"),
    "drone.mass_kg": Param(_num, 0.0, "drone mass, kg (0: the URDF's)", _nonneg, ">= 0"),
    "drone.hover_thrust": Param(_num, 0.0, "hover thrust as a fraction of the maximum (0: from mass, kf, max_rpm; "
                                "set it to PX4's MPC_THR_HOVER on a real drone)", lambda v: 0 <= v < 1, "in [0, 1)"),
    "trajectory.time_from_start_s": Param(_num, 0.0, "JointTrajectory point time (0: one control period)",
                                          _nonneg, ">= 0"),
    "kinematics.ee_com": Param(bool, False, "ee_position is the end-effector link's centre of mass, not its frame"),
    "diagnostics.rate_hz": Param(_num, 1.0, "diagnostics publish rate, Hz", _pos, "> 0"),
    "px4_msgs_version": Param((str, float), "1.15", "px4_msgs release of the PX4 firmware's uXRCE-DDS messages: "
                              "1.14, 1.15, 1.16 or 1.17 (1.15 and later share the OffboardControlMode layout)",
                              lambda v: str(v) in PX4_MSGS_LAYOUTS, f"one of {sorted(PX4_MSGS_LAYOUTS)}"),
    "px4.heartbeat_lead_s": Param(_num, 1.0, "OffboardControlMode heartbeat time before the policy engages, s",
                                  _nonneg, ">= 0"),
    "px4.motor_order": Param(list, [0, 2, 3, 1], "px4_motors: env rotor (0 FR, 1 BR, 2 BL, 3 FL) driving PX4 motor "
                             "1..4 (default: PX4 quadrotor X)", lambda v: sorted(v) == [0, 1, 2, 3], "a permutation "
                             "of [0, 1, 2, 3]"),
    "px4.release_on_fault": Param(bool, True, "px4_rates / px4_motors: stop the OffboardControlMode heartbeat on a "
                                  "stale state or e-stop, so PX4's offboard-loss failsafe takes over"),
}


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def validate_params(flat: Mapping[str, Any], file: str | None = None, node_name: str = NODE_NAME) -> dict[str, Any]:
    """Check ``flat`` (dotted names) against :data:`SCHEMA`; return it completed with defaults."""
    chk = Checker(file)
    out = {name: (list(p.default) if isinstance(p.default, list) else p.default) for name, p in SCHEMA.items()}
    for name, value in flat.items():
        path = (node_name, "ros__parameters", *name.split("."))
        if name == "use_sim_time" or name in out:
            spec = SCHEMA[name]
        else:
            chk.fail(path, f"unknown parameter; expected one of {sorted(SCHEMA)}")
        ok_type = isinstance(value, spec.type) and not (isinstance(value, bool) and spec.type in (int, _num))
        if spec.type is bool:
            ok_type = isinstance(value, bool)
        tname = spec.type.__name__ if isinstance(spec.type, type) else "number"
        chk.expect(ok_type, path, f"expected {tname}, got {value!r}")
        chk.expect(spec.check is None or spec.check(value), path, f"expected {spec.expected}, got {value!r}")
        out[name] = float(value) if spec.type is _num else value
    return out


def load_params_file(path: str | Path, node_name: str = NODE_NAME, *, complete: bool = True) -> dict[str, Any]:
    """Read a ROS 2 parameter file and return the validated parameters of ``node_name``.

    ``complete=False`` returns only the keys the file sets (validated), for merging.

    Sections for ``node_name`` (with or without a leading ``/`` or namespace) and ``/**``
    are merged, the node's own section last.
    """
    path = Path(path)
    chk = Checker(str(path))
    chk.expect(path.is_file(), (), "parameter file not found")
    raw = read_yaml_file(path, what="parameter file")
    chk.expect(isinstance(raw, dict), (), "expected a mapping of node names to {ros__parameters: ...}")
    merged: dict[str, Any] = {}
    found = False
    for key in sorted(raw, key=lambda k: k != "/**"):  # wildcard first, node section wins
        if key != "/**" and str(key).rsplit("/", 1)[-1] != node_name:
            continue
        section = raw[key]
        chk.expect(isinstance(section, dict) and isinstance(section.get("ros__parameters"), dict), (key,),
                   "expected a mapping with a ros__parameters mapping")
        merged.update(flatten(section["ros__parameters"]))
        found = True
    chk.expect(found, (), f"no section for node {node_name!r} (or /**); sections: {sorted(map(str, raw))}")
    full = validate_params(merged, str(path), node_name)
    return full if complete else {k: full[k] for k in merged}
