"""``sim2real actuator``: actuator networks fitted to hardware logs.

    sim2real actuator fit LOG --robot R --out net.pt [--joints J1,J2] [--history 3] [--spacing-s 0.01]
        [--epochs 60] [--seed 0] [--val-fraction 0.2] [--shared]

LOG is a rosbag2 (directory, .db3/.mcap) or a CSV log with commanded positions, joint positions and
measured efforts. Prints one line per joint: validation RMSE of the net and of a least-squares linear PD
baseline, so a user sees whether the net is worth it; writes ``net.pt`` (weights, normalisation and
metadata, read by the ``actuator_net`` actuator model) and ``net.json`` (the metadata and validation
numbers), both atomically.
"""

from __future__ import annotations

import argparse
from typing import Any

from sim2real.cli import _args


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("actuator", help="fit actuator networks (torque from position error/velocity history)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="actuator_command", metavar="ACTION")
    f = sub.add_parser("fit", help="fit an actuator net to a log with measured efforts",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    f.add_argument("log", metavar="LOG", help="rosbag2 directory, .db3/.mcap file or .csv")
    f.add_argument("--robot", required=True, help="robot name or robot.yaml path")
    f.add_argument("--out", required=True, help="net file to write (.pt); metadata JSON next to it")
    f.add_argument("--joints", default="", help="comma-separated robot.yaml or ROS joint names (default: all)")
    f.add_argument("--history", type=int, default=3, help="samples per input signal H (default 3)")
    f.add_argument("--spacing-s", type=float, default=0.01, help="time between history samples, s (default 0.01)")
    f.add_argument("--hidden", default="32,32,32", help="hidden layer widths (default 32,32,32)")
    f.add_argument("--shared", action="store_true",
                   help="one net shared by the joints (identical drives) instead of one net per joint")
    f.add_argument("--epochs", type=int, default=60, help="passes over the training samples (default 60)")
    f.add_argument("--batch-size", type=int, default=128, help="samples per joint in one Adam step (default 128)")
    f.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate, cosine-decayed (default 3e-3)")
    f.add_argument("--seed", type=_args.seed, default=0, help="seed of weight init and minibatch order (default 0)")
    f.add_argument("--val-fraction", type=float, default=0.2,
                   help="trailing fraction of the log held out for validation (default 0.2)")
    f.add_argument("--joint-states-topic", help="override ros2.topics.joint_states")
    f.add_argument("--command-topic", help="override ros2.topics.command")
    f.add_argument("--allow-extra-joints", action="store_true", help="ignore joints the robot does not have")
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    f.set_defaults(func=run_fit)
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])


def _joint_names(text: str, robot: Any) -> list[str] | None:
    """robot.yaml names for ``--joints`` (ROS names are mapped); None for all."""
    from sim2real.errors import ConfigError

    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        return None
    ros = dict(zip(robot.ros2.joint_names, robot.joint_names))
    out = []
    for n in names:
        if n not in robot.joint_names and n not in ros:
            raise ConfigError(f"joint {n!r} is not a joint of {robot.name} (and so not in the log); expected some of "
                              f"{robot.joint_names}", path=("--joints",))
        out.append(ros.get(n, n))
    return out


def _hidden(text: str) -> tuple[int, ...]:
    from sim2real.errors import ConfigError

    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ConfigError(f"expected comma-separated integers, got {text!r}", path=("--hidden",)) from None


def run_fit(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from sim2real._io import atomic_write_text
    from sim2real.errors import ConfigError
    from sim2real.robots import load_robot
    from sim2real.sysid.actuator_fit import ActuatorFitConfig, fit_actuator_net
    from sim2real.sysid.csvlog import read_log

    out = Path(args.out)
    if out.is_dir() or out.suffix == ".json":
        raise ConfigError(f"{out}: expected a file path like net.pt (the metadata goes to <out>.json)", path=("--out",))
    robot = load_robot(args.robot)
    if robot.kind == "quadrotor":
        raise ConfigError(f"{robot.name} is a quadrotor; actuator nets model joint drives", path=("--robot",))
    config = ActuatorFitConfig(joints=_joint_names(args.joints, robot), history=args.history,
                               spacing_s=args.spacing_s, hidden=_hidden(args.hidden), per_joint=not args.shared,
                               epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                               val_fraction=args.val_fraction)
    config.validate()  # before reading the log: a bad option fails fast
    topics = {"joint_states": args.joint_states_topic, "command": args.command_topic}
    log = read_log(args.log, robot, topics=topics, require=("joint_states", "command"),
                   allow_extra_joints=args.allow_extra_joints)
    result = fit_actuator_net(log, config, robot=robot.name, progress=not args.quiet)
    _print_table(result)
    period = result.model.metadata["state_period_s"]
    if period > config.spacing_s:
        print(f"note: joint states every {period * 1e3:.3g} ms, coarser than the {config.spacing_s * 1e3:.3g} ms "
              "history spacing: the history is interpolated between samples; log joint states faster or "
              "raise --spacing-s")
    from sim2real.sim.actuators.net import save

    sidecar = out.with_suffix(".json")
    save(out, result.model)
    atomic_write_text(sidecar, json.dumps(result.model.metadata, indent=2) + "\n")
    print(f"wrote {out}, {sidecar}")
    return 0


def _print_table(result: Any) -> None:
    from sim2real.sysid.report import table

    rows = [(r.joint, r.n_train, r.n_val, r.tau_rms, r.net_rmse, r.pd_rmse,
             r.pd_rmse / r.net_rmse if r.net_rmse > 0 else float("inf"), r.kp, r.kd) for r in result.joints]
    print(table(rows, ("joint", "n_train", "n_val", "tau_rms_Nm", "net_rmse_Nm", "pd_rmse_Nm", "pd/net",
                       "pd_kp", "pd_kd")))
