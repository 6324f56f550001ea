"""``sim2real export --policy P --out policy.pt [--onnx] [--env ID]``."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export", help="export a trained policy to TorchScript (+ ONNX) with a sidecar YAML",
        description="Write the deterministic policy with its observation normalisation as TorchScript "
        "(loadable with torch alone), a sidecar YAML (observation/action layout, scales, limits, control rate, "
        "robot) and optionally ONNX.")
    p.add_argument("--policy", required=True, help="run folder, checkpoint folder or model.zip")
    p.add_argument("--out", required=True, help="output .pt file (sidecar: same name with .yaml)")
    p.add_argument("--onnx", action="store_true", help="also write <out>.onnx")
    p.add_argument("--env", help="env id (default: the one in the run's run.yaml); another env is built as "
                                 "registered (its own robot) and must have the policy's observation and action sizes")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from sim2real._io import check_output_path
    from sim2real.train.export import export_policy
    from sim2real.train.policy import load_policy

    out = check_output_path(args.out, folder=False)
    for extra in (".yaml", ".onnx") if args.onnx else (".yaml",):
        check_output_path(Path(out).with_suffix(extra), folder=False)
    policy = load_policy(args.policy)
    paths = export_policy(policy, args.out, onnx=args.onnx, env_id=args.env)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    if args.env and policy.env_id and args.env != policy.env_id:
        print(f"note: {args.policy} was trained on {policy.env_id}; the sidecar describes {args.env} "
              "(its robot, observation layout and action)", file=sys.stderr)
    return 0
