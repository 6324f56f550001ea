"""The quadrotor side of ``sim2real record`` and ``sim2real calibrate`` (not a sub-command itself).

    sim2real record --robot quadrotor --profile quadrotor --seed 0 --excitation multisine --duration 60 \\
        --out logs/flight0 [--motor-amplitude 0.06] [--trajectory circle|hover] [--motor-type px4|array]
        [--pos-noise 0.001] [--vel-noise 0.01] [--att-noise 0.002] [--rate-noise 0.02] [--storage sqlite3]
    sim2real calibrate --log logs/flight0 --robot quadrotor --params inertia,kf,km,motor_tau,drag,delay \\
        --out calibrated.yaml [--profile quadrotor] [--odometry-topic /cf231/odom] [--motor-topic /fmu/in/actuator_motors]

See docs/sysid_quadrotor.md.
"""

from __future__ import annotations

import argparse
from typing import Any

QUAD_PARAMS_HELP = "quadrotor: mass, inertia, kf, km, motor_tau, arm_length, drag, drag_z, delay"


def add_record_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``record --robot <quadrotor>`` (``--pos-noise``/``--vel-noise`` are then m and m/s)."""
    g = p.add_argument_group("quadrotor (--robot quadrotor; --excitation adds to the motor commands)")
    g.add_argument("--motor-amplitude", type=float, default=0.06,
                   help="excitation peak on collective thrust (thrust fraction; torque channels scaled down)")
    g.add_argument("--trajectory", choices=("circle", "hover"), default="circle",
                   help="reference the hover controller tracks (default circle: r 0.5 m, 6 s, ±0.2 m altitude)")
    g.add_argument("--att-noise", type=float, default=0.0, help="odometry/IMU attitude noise std (rad)")
    g.add_argument("--rate-noise", type=float, default=0.0, help="odometry/IMU body-rate noise std (rad/s)")
    g.add_argument("--motor-type", choices=("px4", "array"), default="px4",
                   help="px4_msgs/ActuatorMotors on ros2.topics.px4_actuator_motors (default, as the deploy "
                        "bridge) or std_msgs/Float64MultiArray on ros2.topics.motor_command")


def add_calibrate_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("quadrotor (--robot quadrotor)")
    g.add_argument("--odometry-topic", help="override ros2.topics.odometry (nav_msgs/Odometry)")
    g.add_argument("--motor-topic", help="override the motor command topic (px4_msgs/ActuatorMotors or "
                                         "Float64MultiArray of 4 thrust fractions)")
    g.add_argument("--w-lin-vel", type=float, default=1.0, help="weight of linear-velocity residuals (default 1)")
    g.add_argument("--w-att", type=float, default=1.0, help="weight of attitude residuals (default 1)")
    g.add_argument("--w-rates", type=float, default=1.0, help="weight of body-rate residuals (default 1)")


def run_record(args: argparse.Namespace, robot: Any, profile: Any) -> int:
    from pathlib import Path

    from sim2real._io import atomic_write_yaml
    from sim2real.errors import Sim2RealError
    from sim2real.sysid.quad_bag import write_quad_bag, write_quad_csv
    from sim2real.sysid.quad_record import record_quadrotor

    if args.policy:
        raise Sim2RealError(f"record --policy is for arms; fly {robot.name} with --excitation "
                            "(a hover controller plus motor excitation)")
    log, truth = record_quadrotor(robot, profile, args.seed, args.excitation, args.duration,
                                  amplitude=args.motor_amplitude, trajectory=args.trajectory,
                                  pos_noise=args.pos_noise, vel_noise=args.vel_noise, att_noise=args.att_noise,
                                  rate_noise=args.rate_noise)
    out = Path(args.out)
    if args.csv:
        if out.exists() and not args.overwrite:
            raise Sim2RealError(f"{out}: already exists (use --overwrite)")
        write_quad_csv(out, log)
    else:
        write_quad_bag(out, log, robot, storage=args.storage, compression=args.compression,
                       motor_type=args.motor_type, overwrite=args.overwrite)
    truth_path = out.parent / f"{out.name}.truth.yaml"
    atomic_write_yaml(truth_path, truth)
    n = len(log.odometry) if log.odometry is not None else 0
    print(f"wrote {out} ({n} odometry messages, {args.duration:g} s) and {truth_path}")
    return 0


def run_calibrate(args: argparse.Namespace, robot: Any, bounds: dict[str, tuple[float, float]]) -> int:
    from sim2real.cli.calibrate import _log_truth, _print_result, calibration_output
    from sim2real.profiles import load_profile
    from sim2real.sysid.calibrate import CalibrationConfig
    from sim2real.sysid.csvlog import read_csv
    from sim2real.sysid.quad_bag import read_quad_bag
    from sim2real.sysid.quad_calibrate import (
        QuadWeights,
        calibrate_quadrotor,
        write_quad_outputs,
    )
    from sim2real.sysid.quad_params import parse_quad_params

    prior = load_profile(args.profile, robot=robot) if args.profile else None
    specs = parse_quad_params(args.params, robot, profile=prior, bounds=bounds)
    if str(args.log).lower().endswith(".csv"):
        log = read_csv(args.log, robot)
    else:
        motor = args.motor_topic or args.command_topic
        log = read_quad_bag(args.log, robot, topics={"odometry": args.odometry_topic, "px4_actuator_motors": motor,
                                                     "motor_command": motor})
    out, state = calibration_output(args)
    config = CalibrationConfig(horizon=args.horizon, max_windows=args.max_windows, budget=args.budget,
                               seed=args.seed, workers=args.workers, ray_address=args.ray)
    weights = QuadWeights(vel=args.w_lin_vel, att=args.w_att, rates=args.w_rates)
    result = calibrate_quadrotor(log, robot, specs, config, weights=weights, state_path=state, resume=args.resume,
                                 progress=not args.quiet)
    paths = write_quad_outputs(result, robot, out, prior=prior, truth=_log_truth(args.log), plot=not args.no_plot)
    _print_result(result, paths)
    return 0
