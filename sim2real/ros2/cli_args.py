"""Command-line front end shared by ``sim2real deploy`` and the ``deploy_node`` executable.

Precedence: schema defaults < parameter file (``--params`` or ROS ``--params-file``) <
parameters the rclpy node received < command-line flags.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any

from sim2real.cli._args import finite_float, positive_float
from sim2real.errors import Sim2RealError
from sim2real.ros2.params import NODE_NAME, load_params_file, validate_params

FLAG_TO_PARAM = {
    "robot": "robot", "policy": "policy", "sidecar": "sidecar", "transport": "transport", "rate": "rate_hz",
    "duration": "duration_s", "domain_id": "domain_id", "trigger": "trigger", "output": "output",
    "controller": "controller", "goal": "goal", "rt_priority": "realtime_priority",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--robot", help="robot name under robots/ or path to robot.yaml (default: the policy's)")
    parser.add_argument("--policy", help="exported TorchScript policy (sidecar: same path with .yaml)")
    parser.add_argument("--sidecar", help="sidecar YAML if it is not next to the policy")
    parser.add_argument("--transport", choices=("auto", "rclpy", "dds"),
                        help="auto: rclpy when it imports, else the ROS 2 wire-compatible DDS transport")
    parser.add_argument("--params", metavar="FILE", help="ROS 2 parameter YAML (node_name: ros__parameters: ...)")
    parser.add_argument("--rate", type=positive_float, metavar="HZ", help="control rate (default: the policy's)")
    parser.add_argument("--duration", type=positive_float, metavar="S", help="stop after S seconds (default: run until Ctrl-C)")
    parser.add_argument("--domain-id", dest="domain_id", type=int, help="DDS domain (default $ROS_DOMAIN_ID or 0)")
    parser.add_argument("--trigger", choices=("timer", "state"), help="tick on a fixed clock or on each new state")
    parser.add_argument("--output", help="auto | forward_command | joint_trajectory | crazyswarm_full_state | "
                        "crazyswarm_velocity | px4_offboard | px4_rates | px4_motors (auto: from the robot kind "
                        "and the policy's action mode)")
    parser.add_argument("--controller", help="ros2_control controller name (arm outputs)")
    parser.add_argument("--goal", nargs=3, type=finite_float, metavar=("X", "Y", "Z"),
                        help="goal position (m, base frame) until one arrives on the goal topic")
    parser.add_argument("--rt-priority", dest="rt_priority", type=int, metavar="PRIO",
                        help="run the control loop under SCHED_FIFO at this priority (Linux; needs CAP_SYS_NICE)")
    parser.add_argument("--node-name", default=NODE_NAME, help="node name (and parameter-file section)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def split_ros_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split ``argv`` at ``--ros-args`` (what ``launch_ros`` appends)."""
    if "--ros-args" in argv:
        i = argv.index("--ros-args")
        return argv[:i], argv[i:]
    return argv, []


def ros_params_files(ros_args: list[str]) -> list[str]:
    return [ros_args[i + 1] for i, a in enumerate(ros_args[:-1]) if a == "--params-file"]


def resolve_params(args: argparse.Namespace, ros_args: list[str], given: dict[str, Any] | None = None) -> dict[str, Any]:
    """Parameter files, then ``given`` (parameters the rclpy node received), then flags."""
    params: dict[str, Any] = {}
    for path in ros_params_files(ros_args) + ([args.params] if args.params else []):
        params.update(load_params_file(path, args.node_name, complete=False))
    params.update(given or {})
    for flag, name in FLAG_TO_PARAM.items():
        value = getattr(args, flag, None)
        if value is not None:
            params[name] = value
    return validate_params(params, node_name=args.node_name)


def run(args: argparse.Namespace, ros_args: list[str] | None = None) -> int:
    from sim2real.ros2.node import DeployNode, set_realtime_priority
    from sim2real.ros2.transport import make_transport

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="[%(levelname)s] [%(asctime)s] [%(name)s]: %(message)s")
    ros_args = ros_args or []
    params = resolve_params(args, ros_args)
    set_realtime_priority(params["realtime_priority"])  # before the transport creates its threads
    transport = make_transport(params["transport"], args.node_name,
                               domain_id=None if params["domain_id"] < 0 else params["domain_id"],
                               args=["deploy_node", *ros_args], use_sim_time=params["use_sim_time"])
    try:
        if transport.kind == "rclpy":
            params = resolve_params(args, ros_args, transport.parameters())
        node = DeployNode(params, transport=transport, node_name=args.node_name)
    except BaseException:
        transport.close()
        raise

    def on_signal(signum: int, frame: Any) -> None:
        node.stop()

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        node.run()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        node.close()
        print(node.format_report(), flush=True)
    return 0


def run_from_argv(argv: list[str] | None, prog: str) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    own, ros_args = split_ros_args(argv)
    parser = argparse.ArgumentParser(prog=prog, description="Run an exported sim2real policy on a ROS 2 robot.")
    add_arguments(parser)
    args = parser.parse_args(own)
    try:
        return run(args, ros_args)
    except Sim2RealError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
