"""``sim2real deploy``: run an exported policy on a ROS 2 robot (rclpy or ROS 2 wire-compatible DDS)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    from sim2real.ros2.cli_args import add_arguments  # light: argparse + params schema only

    parser = subparsers.add_parser(
        "deploy", help="run an exported policy on a ROS 2 robot",
        description="Run an exported policy (policy.pt + policy.yaml) on a ROS 2 robot with the safety layer on. "
        "Ctrl-C stops and prints loop statistics and safety trip counts.")
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sim2real.ros2.cli_args import run as run_node

    return run_node(args, [])
