"""``sim2real calibrate``: fit simulator parameters to a hardware log (rosbag2 or CSV).

    sim2real calibrate --log logs/run0 --robot kuka_iiwa --params mass,damping,friction,delay \\
        --out calibrated.yaml [--profile peng2018_arm] [--workers 2] [--ray auto] [--resume]
        [--budget 1000] [--horizon 20] [--max-windows 24] [--bounds friction=0:2,mass=0.5:2]
    sim2real calibrate --validate logs/run4 --calibrated calibrated.json [--out validation.json]

Writes ``calibrated.yaml`` (a narrowed randomization profile: name it as
``profile: calibrated.yaml`` in a ``sim2real train`` run config), ``calibrated.json`` (estimates, 95 % intervals, identifiability,
estimates on a search bound with a wider ``--bounds`` suggestion, the log's noise floor, chi2/dof
and the misfit verdict, costs, evaluations, CPU time), ``calibrated.png`` (simulated vs logged
positions, velocities and efforts, before/after) and ``calibrated.state.pkl`` (CMA-ES state after
each generation; ``--resume`` continues from it).

``--validate HELDOUT --calibrated calibrated.json`` replays another log with the nominal and the
calibrated parameters and writes the errors per signal (``calibrated.validation.json``/``.csv``/``.png``
next to the calibration, or ``--out``).
"""

from __future__ import annotations

import argparse
from typing import Any

from sim2real.cli import _args


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("calibrate", help="identify simulator parameters from a hardware log",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--log", help="rosbag2 directory, .db3/.mcap file or .csv (required unless --validate)")
    p.add_argument("--robot", help="robot name or robot.yaml path (with --validate: default the calibration's robot)")
    p.add_argument("--validate", metavar="HELDOUT_LOG",
                   help="replay this log with the nominal and the --calibrated parameters instead of fitting")
    p.add_argument("--calibrated", metavar="JSON", help="with --validate: the calibrated.json of a calibration")
    p.add_argument("--params",
                   help="comma-separated: mass, damping, friction, strength, kp, kd, armature, delay; "
                        "NAME:* for one value per link/joint, NAME:TARGET for one target; "
                        "quadrotor: mass, inertia, kf, km, motor_tau, arm_length, drag, drag_z, delay")
    p.add_argument("--profile", help="prior profile: search bounds from its entries; its other entries are kept")
    p.add_argument("--out", help="narrowed profile YAML (JSON/PNG/state written next to it); with --validate: "
                                 "the validation JSON (CSV/PNG next to it)")
    p.add_argument("--workers", type=_args.positive_int, default=1, help="parallel simulator processes (default 1)")
    p.add_argument("--ray", metavar="ADDRESS", help="evaluate on a Ray cluster ('auto', 'ray://host:10001', 'local')")
    p.add_argument("--resume", action="store_true", help="continue an interrupted calibration from its state file")
    p.add_argument("--budget", type=_args.positive_int, default=1000, help="max simulator evaluations (default 1000); a budget below what the "
                   "parameters need whatever the budget (e.g. 7 for mass) is refused")
    p.add_argument("--horizon", type=_args.positive_int, default=20, help="window length in control steps (default 20)")
    p.add_argument("--max-windows", type=_args.positive_int, default=24, help="windows per evaluation (default 24)")
    p.add_argument("--bounds", default="", help="search bounds overrides NAME=LOW:HIGH,...")
    p.add_argument("--w-vel", type=float, default=0.05, help="weight of velocities vs positions (default 0.05)")
    p.add_argument("--w-tau", type=float, default=1.0, help="weight of joint efforts (when logged; 0 ignores them)")
    p.add_argument("--seed", type=_args.seed, default=0, help="CMA-ES seed")
    p.add_argument("--loss", choices=("cauchy", "soft_l1", "linear"), default="cauchy",
                   help="loss of the local fit stages: robust cauchy (default), soft_l1, or linear (least squares)")
    p.add_argument("--joint-states-topic", help="override ros2.topics.joint_states")
    p.add_argument("--command-topic", help="override ros2.topics.command")
    p.add_argument("--allow-extra-joints", action="store_true", help="ignore joints the robot does not have")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    from sim2real.cli._quadrotor_sysid import add_calibrate_arguments

    add_calibrate_arguments(p)
    p.set_defaults(func=run)


def _parse_bounds(text: str) -> dict[str, tuple[float, float]]:
    from sim2real.errors import ConfigError

    out: dict[str, tuple[float, float]] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, _, rng = item.partition("=")
        lo, _, hi = rng.partition(":")
        try:
            out[name.strip()] = (float(lo), float(hi))
        except ValueError:
            raise ConfigError(f"expected NAME=LOW:HIGH, got {item!r}", path=("--bounds",)) from None
    return out


def run(args: argparse.Namespace) -> int:
    from sim2real.errors import ConfigError, Sim2RealError
    from sim2real.profiles import load_profile
    from sim2real.robots import load_robot
    from sim2real.sysid.calibrate import CalibrationConfig, calibrate
    from sim2real.sysid.csvlog import read_log
    from sim2real.sysid.params import parse_params
    from sim2real.sysid.report import write_outputs

    if args.validate or args.calibrated:
        return run_validate(args)
    missing = [f"--{k}" for k in ("log", "robot", "params", "out") if not getattr(args, k)]
    if missing:
        raise ConfigError(f"calibrate needs {', '.join(missing)} (or --validate LOG --calibrated JSON)")
    robot = load_robot(args.robot)
    if robot.kind == "quadrotor":
        from sim2real.cli._quadrotor_sysid import run_calibrate

        return run_calibrate(args, robot, _parse_bounds(args.bounds))
    if robot.kind != "arm":
        raise Sim2RealError(f"calibrate supports joint-space robots (arms); {robot.name} is a {robot.kind}")
    prior = load_profile(args.profile, robot=robot) if args.profile else None
    specs = parse_params(args.params, robot, profile=prior, bounds=_parse_bounds(args.bounds))
    topics = {"joint_states": args.joint_states_topic, "command": args.command_topic}
    log = read_log(args.log, robot, topics=topics, require=("joint_states", "command"),
                   allow_extra_joints=args.allow_extra_joints)
    out, state = calibration_output(args)
    config = CalibrationConfig(horizon=args.horizon, max_windows=args.max_windows, budget=args.budget,
                               seed=args.seed, workers=args.workers, ray_address=args.ray, w_vel=args.w_vel,
                               w_tau=args.w_tau, loss=args.loss)
    result = calibrate(log, robot, specs, config, state_path=state, resume=args.resume, progress=not args.quiet)
    paths = write_outputs(result, robot, out, prior=prior, truth=_log_truth(args.log), plot=not args.no_plot)
    _print_result(result, paths)
    return 0


def calibration_output(args: argparse.Namespace) -> tuple[Any, Any]:
    """``(out, state file)`` of a calibration after the shared ``--out``/``--resume`` rule: an existing
    calibration (its YAML or state file) is refused without ``--resume``, and ``--resume`` needs the state."""
    from sim2real._io import check_output_path, check_resume

    out = check_output_path(args.out, folder=False)
    state = out.with_suffix(".state.pkl")
    if args.resume:
        check_resume(out, state.is_file(), True, what=state.name)
    else:
        done = [p.name for p in (out, state) if p.exists()]
        check_resume(out, bool(done), False, what=" and ".join(done))
    return out, state


def run_validate(args: argparse.Namespace) -> int:
    """``--validate HELDOUT --calibrated JSON``: replay errors of the nominal vs the calibrated parameters."""
    import json
    from pathlib import Path

    from sim2real._io import check_output_path
    from sim2real.errors import ConfigError
    from sim2real.robots import load_robot
    from sim2real.sysid.csvlog import read_log
    from sim2real.sysid.validate import load_calibration, validate, validation_table, write_validation

    if not args.validate or not args.calibrated:
        raise ConfigError("--validate HELDOUT_LOG and --calibrated JSON go together")
    calibrated = Path(args.calibrated)
    robot_name = args.robot
    if robot_name is None:
        try:
            robot_name = json.loads(calibrated.read_text(encoding="utf-8")).get("robot")
        except (OSError, ValueError, AttributeError):
            robot_name = None
        if not isinstance(robot_name, str):
            raise ConfigError("cannot read the robot from it; pass --robot", file=str(calibrated))
    robot = load_robot(robot_name)
    specs, values = load_calibration(calibrated, robot)
    topics = {"joint_states": args.joint_states_topic, "command": args.command_topic}
    log = read_log(args.validate, robot, topics=topics, require=("joint_states", "command"),
                   allow_extra_joints=args.allow_extra_joints)
    result = validate(log, robot, specs, values, calibrated=str(calibrated), horizon=args.horizon,
                      max_windows=args.max_windows)
    out = check_output_path(args.out if args.out else calibrated.with_suffix(".validation.json"), folder=False)
    paths = write_validation(result, out, plot=not args.no_plot)
    print(f"held-out {args.validate}: {result.windows} windows of {result.horizon} control steps")
    print(validation_table(result))
    print(f"calibrated on the held-out log: {result.fit_calibrated['message']}")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _log_truth(log_path: str) -> dict[str, Any] | None:
    """The ground truth ``<log>.truth.yaml`` next to a log made by ``sim2real record``, or None."""
    from pathlib import Path

    truth = None
    truth_file = Path(log_path).parent / f"{Path(log_path).name}.truth.yaml"
    if truth_file.is_file():  # a log made by `sim2real record`: keep its ground truth next to the estimates
        import yaml

        truth = yaml.safe_load(truth_file.read_text(encoding="utf-8"))
    return truth


def _print_result(result: Any, paths: dict[str, Any]) -> None:
    """Print the estimates table, the cost and time summary, the fit against the noise floor, estimates
    on a search bound (with a wider ``--bounds`` to paste) and the written files of a calibration."""
    import numpy as np

    from sim2real.sysid.report import table

    from sim2real.sysid.misfit import bounds_hint

    rows = [(p.name, p.estimate, p.ci_low, p.ci_high, p.unit, "yes" if p.identifiable else "NO",
             getattr(p, "bound", None) or "-") for p in result.params]
    print(table(rows, ("param", "estimate", "ci95_low", "ci95_high", "unit", "identifiable", "on_bound")))
    print(f"cost {result.cost_initial:.4g} -> {result.cost_final:.4g}, {result.evaluations} simulator evaluations, "
          f"{result.cpu_time:.1f} s CPU (incl. workers), {result.wall_time:.1f} s wall")
    fit = getattr(result, "fit", None) or {}
    if fit:
        floors = "; ".join(f"{k} {np.nanmedian(v):.3g} {fit.get('units', {}).get(k, '')}".rstrip()
                           for k, v in fit["noise_floor"].items() if np.isfinite(v).any())
        print(f"noise floor (median over joints): {floors}")
        print(("WARNING: " if fit["verdict"] == "misfit" else "") + fit["message"])
    stuck = [p for p in result.params if getattr(p, "bound", None)]
    if stuck:
        print("on a search bound (not identified): " + ", ".join(
            f"{p.name} ({p.bound}{'' if getattr(p, 'suggested_bounds', None) else ', a physical limit'})"
            for p in stuck))
        hint = bounds_hint(stuck)
        if hint:
            print(f"to search wider, re-run with: {hint}")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
