"""``sim2real sim2sim``: a robot simulated in MuJoCo behind its real ROS 2 topics (the "hardware")."""

from __future__ import annotations

import argparse
import json
import signal
from pathlib import Path
from typing import Any

from sim2real.cli import _args
from sim2real.errors import ConfigError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sim2sim", help="run a robot in MuJoCo behind its ROS 2 topics (hardware stand-in)",
        description="Simulate the robot in MuJoCo with its own physical parameters (a hardware file, or a blind "
        "draw whose values go only to --truth) behind the topics its real ROS 2 drivers use, so "
        "`sim2real deploy` and `sim2real excite` run against it as against the robot. Prints a JSON summary.")
    parser.add_argument("--robot", required=True, help="robot name under robots/ or path to robot.yaml")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--hardware", metavar="FILE",
                        help="hardware file (default: configs/hardware/<robot>.yaml)")
    source.add_argument("--draw", metavar="FILE", help="draw the hardware from this file of ranges (needs --seed)")
    parser.add_argument("--seed", type=_args.seed, help="seed of the draw (numpy default_rng)")
    parser.add_argument("--truth", metavar="OUT.json", help="with --draw: write the drawn hardware here (JSON)")
    parser.add_argument("--transport", choices=("auto", "rclpy", "dds"), default="auto",
                        help="auto: rclpy when it imports, else the ROS 2 wire-compatible DDS transport")
    parser.add_argument("--domain-id", dest="domain_id", type=int, help="DDS domain (default $ROS_DOMAIN_ID or 0)")
    parser.add_argument("--duration", type=float, metavar="S", help="simulated seconds to run (default: until Ctrl-C)")
    parser.add_argument("--realtime-factor", dest="realtime_factor", type=float, default=1.0, metavar="F",
                        help="simulated seconds per wall-clock second (default 1.0)")
    parser.add_argument("--noise-seed", dest="noise_seed", type=_args.seed, default=0,
                        help="seed of the measurement noise (default 0)")
    parser.add_argument("--summary", metavar="OUT.json", help="also write the JSON summary here")
    parser.set_defaults(func=run)


def _check_out(path: str | None, flag: str) -> None:
    if path and not Path(path).resolve().parent.is_dir():
        raise ConfigError(f"{flag}: folder {str(Path(path).parent)!r} does not exist")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from sim2real._io import atomic_write_text, data_dir
    from sim2real.robots import load_robot
    from sim2real.ros2.transport import make_transport
    from sim2real.sim2sim.registry import RunOptions, hardware_module

    if args.duration is not None and not args.duration > 0:
        raise ConfigError(f"--duration: expected seconds > 0, got {args.duration}")
    if not args.realtime_factor > 0:
        raise ConfigError(f"--realtime-factor: expected a factor > 0, got {args.realtime_factor}")
    if args.draw and args.seed is None:
        raise ConfigError("--draw needs --seed N (a blind draw is reproducible from its seed)")
    if args.seed is not None and not args.draw:
        raise ConfigError("--seed is the seed of --draw; give --draw FILE too")
    if args.truth and not args.draw:
        raise ConfigError("--truth records a drawn hardware; give --draw FILE --seed N too")
    _check_out(args.truth, "--truth")
    _check_out(args.summary, "--summary")
    robot = load_robot(args.robot)
    module = hardware_module(robot.kind)
    if args.draw:
        if not Path(args.draw).is_file():
            raise ConfigError("draw file not found", file=args.draw)
        hardware = module.draw_hardware(args.draw, robot, np.random.default_rng(args.seed))
    else:
        path = Path(args.hardware) if args.hardware else data_dir("configs") / "hardware" / f"{robot.name}.yaml"
        if not path.is_file():
            raise ConfigError("hardware file not found" + ("" if args.hardware else " (give --hardware FILE)"),
                              file=str(path))
        hardware = module.load_hardware(str(path), robot)
    options = RunOptions(duration=args.duration, realtime_factor=args.realtime_factor, seed=args.noise_seed)
    transport = make_transport(args.transport, f"sim2sim_{robot.name}", domain_id=args.domain_id)

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        if args.truth:  # once the run can start: a failed start leaves no truth of a hardware that never ran
            atomic_write_text(args.truth, json.dumps(hardware.to_dict(), indent=2) + "\n")
        summary = module.run(robot, hardware, transport, options)
    finally:
        signal.signal(signal.SIGTERM, previous)
        transport.close()
    text = json.dumps(summary, indent=2)
    if args.summary:
        atomic_write_text(args.summary, text + "\n")
    print(text, flush=True)
    return 0
