"""``sim2real adapt CONFIG.yaml [--out DIR] [--resume]``: train a domain-adaptation run and report."""

from __future__ import annotations

import argparse
from pathlib import Path

from sim2real.cli import _args


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "adapt",
        help="train a domain-adaptation network (DANN, ADDA, PixelDA, CycleGAN) and report",
        description="Train the method of CONFIG.yaml on source/target images, plus source-only and "
        "oracle baselines, and write report.md/report.json (and grid.png for pixel-level methods), "
        "checkpoint.pt, TensorBoard logs and TorchScript encoder.pt / predictor.pt into --out.",
    )
    p.add_argument("config", help="adapt run config (YAML); see docs/adapt.md")
    p.add_argument("--out", default=None, help="output folder (default runs/adapt/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--steps", type=_args.positive_int, default=None, help="override train.steps")
    p.add_argument("--dataset-only", action="store_true",
                   help="only build the datasets (render + write PNG/labels.csv under OUT/data) and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sim2real._io import check_output_path, check_resume
    from sim2real.adapt.config import load_config, parse_config

    cfg = load_config(args.config)
    if args.steps is not None:
        raw = dict(cfg.raw, train={**(cfg.raw.get("train") or {}), "steps": args.steps})
        cfg = parse_config(raw, file=cfg.source, base_dir=Path(args.config).resolve().parent)
    out = check_output_path(args.out if args.out else Path("runs") / "adapt" / Path(args.config).stem, folder=True)
    progress = not args.no_progress
    if args.dataset_only:
        from sim2real.adapt.data import save_dataset
        from sim2real.adapt.trainer import build_set

        for name, spec in cfg.data.items():
            if isinstance(spec, dict):
                data = build_set(cfg, name, out / "data", progress)
                folder = save_dataset(data, out / "data" / name, progress=progress)
                print(f"{name}: {len(data)} images -> {folder}")
        return 0
    from sim2real.adapt.report import run_experiment

    check_resume(out, (out / "checkpoint.pt").is_file(), args.resume, what="checkpoint.pt")
    report = run_experiment(cfg, out, resume=args.resume, progress=progress)
    print((out / "report.md").read_text(encoding="utf-8"))
    print(f"wrote {out}/report.md, report.json, checkpoint.pt, encoder.pt, predictor.pt"
          + (", grid.png" if report.get("grid") else ""))
    return 0
