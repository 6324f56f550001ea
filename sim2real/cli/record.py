"""``sim2real record``: make a hardware-like log in simulation with known ground truth.

    sim2real record --robot kuka_iiwa --profile nominal --seed 0 --excitation multisine \\
        --duration 60 --out logs/run0 [--storage mcap|sqlite3] [--compression none|file|message]
        [--pos-noise 0.001] [--vel-noise 0.01] [--amplitude 0.4] [--csv] [--overwrite]
    sim2real record --robot kuka_iiwa --profile P --seed 0 --policy runs/x/export/policy.pt --duration 30 --out logs/p

Writes a rosbag2 directory ``OUT`` (with ``--csv``: the CSV file ``OUT`` itself; name it ``*.csv``,
the suffix by which ``sim2real calibrate --log`` reads a log as CSV) with the topics and types of
the real robot (``sensor_msgs/JointState`` on ``ros2.topics.joint_states`` with the
``ros2.joint_names``, ``std_msgs/Float64MultiArray`` on ``ros2.topics.command``), and
``OUT.truth.yaml`` with the parameters the simulation ran with.
"""

from __future__ import annotations

import argparse
from typing import Any

from sim2real.cli import _args

#: Longest log ``record`` writes (s): the whole log is simulated and held in memory first.
MAX_DURATION_S = 3600.0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("record", help="roll out in simulation and write a rosbag2 log with ground truth",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--robot", required=True, help="robot name or robot.yaml path")
    p.add_argument("--profile", default="nominal", help="randomization profile (file or shipped name), sampled once")
    p.add_argument("--seed", type=_args.seed, default=0, help="seed of the profile draw, excitation and sensor noise")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--excitation", choices=("chirp", "multisine", "prbs"), help="identification signal")
    src.add_argument("--policy", help="exported policy (policy.pt with policy.yaml next to it) driving its env")
    p.add_argument("--duration", type=_args.bounded_float(0.0, MAX_DURATION_S, "seconds"), default=30.0,
                   help=f"log length in seconds (default 30, at most {MAX_DURATION_S:g}: the log is built in memory)")
    p.add_argument("--out", required=True, help="output bag directory; with --csv the CSV file itself (name it *.csv)")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="rosbag2 storage (default mcap)")
    p.add_argument("--compression", choices=("none", "file", "message"), default="none", help="zstd compression")
    p.add_argument("--command-type", choices=("array", "trajectory"), default="array",
                   help="Float64MultiArray on ros2.topics.command or JointTrajectory on ros2.topics.trajectory")
    p.add_argument("--amplitude", type=float, default=0.4, help="excitation amplitude per joint (rad, default 0.4)")
    p.add_argument("--pos-noise", type=float, default=0.0, help="sensor noise std on positions (rad)")
    p.add_argument("--vel-noise", type=float, default=0.0, help="sensor noise std on velocities (rad/s)")
    p.add_argument("--effort-noise", type=float, default=0.0, help="sensor noise std on joint efforts (N·m)")
    p.add_argument("--csv", action="store_true", help="write the CSV file OUT (docs/sysid.md layout) instead of a bag")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    from sim2real.cli._quadrotor_sysid import add_record_arguments

    add_record_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sim2real._io import atomic_write_yaml, check_output_path
    from sim2real.errors import Sim2RealError
    from sim2real.profiles import load_profile
    from sim2real.robots import load_robot
    from sim2real.sysid.bagio import write_bag
    from sim2real.sysid.csvlog import write_csv

    check_output_path(args.out, folder=not args.csv)
    robot = load_robot(args.robot)
    profile = load_profile(args.profile, robot=robot)
    if robot.kind == "quadrotor":
        from sim2real.cli._quadrotor_sysid import run_record

        return run_record(args, robot, profile)
    if args.excitation:
        from sim2real.sysid.record import record_excitation

        log, truth = record_excitation(robot, profile, args.seed, args.excitation, args.duration,
                                       amplitude=args.amplitude, pos_noise=args.pos_noise, vel_noise=args.vel_noise,
                                       effort_noise=args.effort_noise)
    else:
        from sim2real.sysid.record_policy import record_policy

        log, truth = record_policy(robot, profile, args.seed, args.policy, args.duration,
                                   pos_noise=args.pos_noise, vel_noise=args.vel_noise)
    out = Path(args.out)
    if args.csv:
        if out.exists() and not args.overwrite:
            raise Sim2RealError(f"{out}: already exists (use --overwrite)")
        write_csv(out, log, robot)
    else:
        write_bag(out, log, robot, storage=args.storage, compression=args.compression,
                  command_type=args.command_type, overwrite=args.overwrite)
    truth_path = out.parent / f"{out.name}.truth.yaml"
    atomic_write_yaml(truth_path, truth)
    n = len(log.joint_states) if log.joint_states is not None else 0
    print(f"wrote {out} ({n} joint states, {args.duration:g} s) and {truth_path}")
    return 0
