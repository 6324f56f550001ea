"""``sim2real excite``: run a system-identification experiment on a live arm and record it as a rosbag2.

    sim2real excite --robot kuka_iiwa --excitation multisine --duration 60 --out bags/iiwa_sysid \\
        [--amplitude 0.3] [--seed 0] [--rate HZ] [--transport auto|rclpy|dds] [--domain-id N] \\
        [--output forward_command|joint_trajectory] [--controller NAME] [--params FILE] \\
        [--storage mcap|sqlite3] [--force]

Sends the excitation around robot.yaml ``home`` as position commands on the robot's command
topic through the deployment node's safety layer (joint and rate limits, soft start, start
gate, stale-state watchdog, latching e-stop on ``topics.estop``), records ``JointState`` and the
commands, holds the last measured pose at the end (or on Ctrl-C / e-stop / watchdog), writes
the bag (``sim2real calibrate --log OUT`` reads it) and prints a JSON summary. Exit 0 when the
excitation completed, 1 when it ended early (the bag holds what was recorded), 2 on bad input.
"""

from __future__ import annotations

import argparse
from typing import Any

from sim2real.cli import _args


def register(subparsers: Any) -> None:
    from sim2real.ros2.excite import EXCITE_NODE  # light: numpy + the ros2 package, no middleware

    p = subparsers.add_parser("excite", help="run an identification experiment on a ROS 2 arm and record a rosbag2",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--robot", required=True, help="robot name under robots/ or path to robot.yaml (an arm)")
    p.add_argument("--excitation", choices=("multisine", "chirp", "prbs"), default="multisine",
                   help="identification signal (default multisine)")
    p.add_argument("--duration", type=float, default=60.0, help="excitation length, s (default 60)")
    p.add_argument("--out", required=True, help="output rosbag2 directory (must not exist unless --force)")
    p.add_argument("--amplitude", type=float, default=0.3,
                   help="swing around home per joint, rad (default 0.3); must fit every joint's limits")
    p.add_argument("--seed", type=_args.seed, default=0, help="seed of the excitation's random phases / steps")
    p.add_argument("--rate", type=float, metavar="HZ", help="command rate (default robot.yaml control.rate_hz, "
                   "the rate calibrate replays at)")
    p.add_argument("--transport", choices=("auto", "rclpy", "dds"),
                   help="auto: rclpy when it imports, else the ROS 2 wire-compatible DDS transport")
    p.add_argument("--domain-id", dest="domain_id", type=int, help="DDS domain (default $ROS_DOMAIN_ID or 0)")
    p.add_argument("--output", choices=("forward_command", "joint_trajectory"),
                   help="Float64MultiArray on ros2.topics.command (default) or JointTrajectory on "
                   "ros2.topics.trajectory")
    p.add_argument("--controller", help="ros2_control controller name: commands go to /NAME/commands "
                   "(/NAME/joint_trajectory)")
    p.add_argument("--params", metavar="FILE", help="ROS 2 parameter YAML with the deployment node's topics.* and "
                   "safety.* keys (section NODE_NAME or /**)")
    p.add_argument("--node-name", default=EXCITE_NODE, help=f"node name and parameter-file section "
                   f"(default {EXCITE_NODE})")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="rosbag2 storage (default mcap)")
    p.add_argument("--wait-state", type=float, default=10.0, metavar="S",
                   help="give up when no joint state arrives within S seconds (default 10)")
    p.add_argument("--hold", type=float, default=1.0, metavar="S",
                   help="publish the hold command for S seconds after the excitation (default 1)")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> tuple[Any, dict[str, Any], float]:
    """Validate everything before any middleware starts; returns (robot, params, rate_hz)."""
    import math

    from sim2real._io import check_output_path
    from sim2real.errors import Sim2RealError
    from sim2real.robots import load_robot
    from sim2real.ros2.cli_args import resolve_params
    from sim2real.ros2.excite import check_amplitude

    robot = load_robot(args.robot)
    if robot.kind != "arm":
        raise Sim2RealError(f"excite drives arms; {robot.name} is a {robot.kind}")
    for flag, value in (("--duration", args.duration), ("--wait-state", args.wait_state)):
        if not (math.isfinite(value) and value > 0):
            raise Sim2RealError(f"{flag} must be > 0 s, got {value}")
    if not (math.isfinite(args.hold) and args.hold >= 0):
        raise Sim2RealError(f"--hold must be >= 0 s, got {args.hold}")
    if args.rate is not None and not (math.isfinite(args.rate) and args.rate > 0):
        raise Sim2RealError(f"--rate must be > 0 Hz, got {args.rate}")
    check_amplitude(robot, args.amplitude)
    out = check_output_path(args.out, folder=True)
    if out.exists() and not args.force:
        raise Sim2RealError(f"{out}: already exists (use --force to replace it)")
    params = resolve_params(args, [])
    rate = params["rate_hz"] or robot.control.rate_hz
    if args.duration * rate < 2:
        raise Sim2RealError(f"--duration {args.duration:g} s at {rate:g} Hz is fewer than 2 commands")
    return robot, params, rate


def run(args: argparse.Namespace) -> int:
    import json
    import logging
    import signal

    import numpy as np

    from sim2real.errors import TransportError
    from sim2real.ros2.excite import ExcitationRun
    from sim2real.ros2.transport import make_transport
    from sim2real.sysid.excitation import excitation

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="[%(levelname)s] [%(asctime)s] [%(name)s]: %(message)s")
    robot, params, rate = _check(args)
    targets = excitation(args.excitation, robot, args.duration, rate, np.random.default_rng(args.seed),
                         amplitude=args.amplitude)
    transport = make_transport(params["transport"], args.node_name,
                               domain_id=None if params["domain_id"] < 0 else params["domain_id"],
                               args=[args.node_name], use_sim_time=params["use_sim_time"])
    try:
        experiment = ExcitationRun(robot, targets, params, transport, rate, wait_state_s=args.wait_state,
                                   hold_s=args.hold)

        def on_signal(signum: int, frame: Any) -> None:
            experiment.stop()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            summary = experiment.run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    finally:
        transport.close()
    if not experiment.recording.state_ns:
        raise TransportError(f"stopped ({summary['stop_reason']}) before any joint state arrived on "
                             f"{experiment.state_topic}; nothing was sent or written")
    path = experiment.write_bag(args.out, storage=args.storage, overwrite=args.force)
    summary = {"out": str(path), "storage": args.storage, "excitation": args.excitation, "seed": args.seed,
               "amplitude": args.amplitude, **summary}
    print(json.dumps(summary, indent=2), flush=True)
    return 0 if summary["completed"] else 1
