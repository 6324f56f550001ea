"""``sim2real train CONFIG [--out DIR] [--seed N | --seeds 0,1,2 [--workers K] [--ray ADDRESS|auto]] [--resume]
[--total-timesteps N]``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sim2real.cli import _args
from sim2real.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train a policy from a run config (PPO, SAC, EPOpt-PPO, ADR)",
        description="Train a policy from a YAML run config. Writes TensorBoard logs, periodic evaluations, "
        "atomic checkpoints, the final model and report.md/report.json into --out.")
    p.add_argument("config", help="run config YAML (or the name of a shipped one in configs/train/)")
    p.add_argument("--out", help="output folder (default runs/<config name>)")
    seeding = p.add_mutually_exclusive_group()
    seeding.add_argument("--seed", type=_args.seed, help="override the config's seed")
    seeding.add_argument("--seeds", type=_args.seed_list, metavar="N,N,...",
                         help="train one run per seed into OUT/seed_<n>, then write OUT/seeds.json with each seed's "
                         "final evaluation and the mean with a 95%% confidence interval")
    p.add_argument("--workers", type=_args.positive_int, help="with --seeds: seeds trained at a time in local "
                   "processes (default 1: one after the other in this process)")
    p.add_argument("--ray", metavar="ADDRESS", help="with --seeds: train the seeds as Ray tasks ('auto': the running "
                   "cluster, else a local Ray instance; or a cluster address)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--total-timesteps", type=_args.positive_int, help="override the config's total_timesteps")
    p.add_argument("--dry-run", action="store_true", help="check the config, its profiles, the env and --out "
                   "(and --resume) as training would, print the resolved config and stop; writes nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", type=int, default=0, help="SB3 verbosity (0, 1, 2)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sim2real.train.config import load_run_config

    cfg = load_run_config(args.config)
    overrides = {}
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.total_timesteps is not None:
        from sim2real.train.hyperparams import MAX_TIMESTEPS

        if args.total_timesteps > MAX_TIMESTEPS:
            raise ConfigError(f"expected an integer in 1..{MAX_TIMESTEPS:.0e}, got {args.total_timesteps}",
                              path=("--total-timesteps",))
        overrides["total_timesteps"] = args.total_timesteps
    cfg = cfg.with_overrides(**overrides)
    out = Path(args.out) if args.out else Path("runs") / Path(args.config).stem
    if args.seeds is None:
        for flag, value in (("--workers", args.workers), ("--ray", args.ray)):
            if value is not None:
                raise ConfigError("only used with --seeds", path=(flag,))
    else:
        if args.workers is not None and args.ray is not None:
            raise ConfigError("give --workers (local processes) or --ray (Ray tasks), not both", path=("--ray",))
        if not args.dry_run:
            return _run_seeds(cfg, out, args)
    if args.dry_run:
        return _dry_run(cfg, out, args)

    from sim2real.train.trainer import train

    res = train(cfg, out, resume=args.resume, progress_bar=not args.no_progress, verbose=args.verbose)
    fe = res.final_eval
    print(f"trained {res.num_timesteps} steps in {res.wall_time_s / 60:.1f} min; final evaluation: "
          f"success {fe['success_rate']:.2f}, return {fe['mean_return']:.2f} ({fe['episodes']} episodes)")
    print(f"report: {out / 'report.md'}")
    return 0


def _run_seeds(cfg: object, out: Path, args: argparse.Namespace) -> int:
    from sim2real.train.seeds import format_aggregate, run_seeds

    report = run_seeds(cfg, out, args.seeds, resume=args.resume, workers=args.workers or 1, ray_address=args.ray,
                       progress_bar=not args.no_progress)
    print(format_aggregate(report))
    print(f"seeds: {out / 'seeds.json'}")
    return 0


def _dry_run(cfg: Any, out: Path, args: argparse.Namespace) -> int:
    """Every check ``train`` makes before its first step, then the resolved config as YAML on stdout."""
    import yaml

    from sim2real._io import check_output_path
    from sim2real.train.checkpoint import check_checkpoint_resume, check_resume_config, latest_checkpoint
    from sim2real.train.trainer import _load_profiles
    from sim2real.train.vec import create_env

    if args.seeds is not None:
        from sim2real.train.seeds import check_seeds

        check_seeds(cfg, out, args.seeds, args.resume)
    else:
        _load_profiles(cfg)
        check_output_path(out, folder=True)
        check_checkpoint_resume(out, args.resume)
        if args.resume:
            check_resume_config(out, cfg.to_dict())
            latest_checkpoint(out)
    env = create_env(cfg.env_id, cfg.env_kwargs, cfg.robot, cfg.profile)
    env.close()
    print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
    print(f"# dry run: the config, its profiles, the env and {out} are fine; nothing written")
    return 0
