"""``sim2real evaluate --policy P [--policy P2 ...] --env ID [--profile F] [--episodes N]
[--sweep PARAM=LOW:HIGH:STEPS ...] [--out DIR] [--workers K] [--ray ADDRESS|auto]``."""

from __future__ import annotations

import argparse

from sim2real.cli import _args


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate", help="success rate and return on nominal, a profile and parameter sweeps",
        description="Evaluate one or more trained policies on the nominal world, on a randomization profile "
        "and over a 1- or 2-parameter grid. Writes results.csv/json, a line plot or heatmaps (PNG) and "
        "report.md comparing the policies side by side.")
    p.add_argument("--policy", action="append", required=True,
                   help="run folder, checkpoint folder or model.zip (repeat to compare policies; "
                   "LABEL=PATH names it)")
    p.add_argument("--env", help="env id (default: the first policy's training env)")
    p.add_argument("--profile", help="randomization profile to evaluate on (also the base of sweeps)")
    p.add_argument("--episodes", type=_args.positive_int, default=20, help="episodes per policy and condition (default 20)")
    p.add_argument("--sweep", action="append", default=[], metavar="PARAM=LOW:HIGH:STEPS",
                   help="grid axis: a profile entry name, 'latency' (s) or a parameter kind such as "
                   "link_mass / joint_damping (constant scale on all targets); give one or two")
    p.add_argument("--out", default="eval", help="output folder (default ./eval)")
    p.add_argument("--workers", type=_args.positive_int, help="local worker processes (default: one per CPU core, "
                   "at most one per cell; 1 runs in this process)")
    p.add_argument("--ray", metavar="ADDRESS", help="run cells as Ray tasks: 'auto' or a cluster address")
    p.add_argument("--seed", type=_args.seed, default=0, help="episode k of every cell is reset with seed+k")
    p.add_argument("--no-nominal", action="store_true", help="skip the nominal condition")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sim2real._io import check_output_path
    from sim2real.train.evaluate import evaluate_policies

    check_output_path(args.out, folder=True)
    policies = []
    for spec in args.policy:
        label, _, path = spec.rpartition("=") if "=" in spec else ("", "", spec)
        policies.append((label or None, path))
    paths = evaluate_policies(policies, env_id=args.env, profile=args.profile, episodes=args.episodes,
                              sweeps=args.sweep, out=Path(args.out), workers=args.workers, ray_address=args.ray,
                              seed=args.seed, include_nominal=not args.no_nominal)
    print((Path(args.out) / "report.md").read_text())
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0
