"""EPOpt's torso-mass figure on the hopper: return vs torso mass for a single-model and an EPOpt policy.

    python benchmarks/epopt_hopper.py [--out runs/epopt_hopper] [--episodes 10] [--workers 2]
                                      [--total-timesteps N] [--skip-train]

Trains (or resumes) ``hopper_mass6.yaml`` (PPO, torso mass fixed at 6 kg) and
``epopt_hopper.yaml`` (EPOpt-ε, ε = 0.1, on the ``epopt_hopper`` ensemble), then
evaluates both with the torso mass pinned at 3, 4, ..., 9 kg (everything else nominal)
and writes ``results.csv``/``results.json``, ``sweep.png`` (return vs mass) and a table.
Rajeswaran et al. (2017, Fig. 2) report the single-model policy collapsing away from
its training mass while EPOpt stays high over the whole range.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

CONFIGS = {"mass6_ppo": "hopper_mass6", "epopt_e0.1": "epopt_hopper"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/epopt_hopper")
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--masses", default="3:9:7", help="LOW:HIGH:STEPS torso masses in kg")
    ap.add_argument("--total-timesteps", type=int)
    ap.add_argument("--skip-train", action="store_true")
    args = ap.parse_args()

    from sim2real.train.config import load_run_config
    from sim2real.train.sweep import Condition, Job, SweepAxis, run_jobs
    from sim2real.train.sweep_report import write_results
    from sim2real.train.trainer import train

    out = Path(args.out)
    dirs = {}
    for name, cfg_name in CONFIGS.items():
        cfg = load_run_config(cfg_name)
        if args.total_timesteps:
            cfg = cfg.with_overrides(total_timesteps=args.total_timesteps)
        dirs[name] = out / name
        done = (dirs[name] / "model.zip").is_file() and not (dirs[name] / "checkpoints").is_dir()
        if args.skip_train or done:
            continue
        resume = (dirs[name] / "checkpoints" / "latest.json").is_file()
        print(f"== training {name} ({cfg_name}.yaml){' (resuming)' if resume else ''}")
        train(cfg, dirs[name], resume=resume)

    axis = SweepAxis.parse(f"torso_mass={args.masses}")
    base = load_run_config("hopper_mass6")
    conds = []
    for m in axis.values:
        prof = {"params": {"torso_mass": {"param": "link_mass", "targets": ["torso"], "distribution": "constant",
                                          "value": float(m), "operation": "abs", "recompute_inertia": True}}}
        conds.append(Condition(f"torso_mass={m:g}", prof, {"torso_mass": float(m)}))
    jobs = [Job(p, str(d), c, base.env_id, dict(base.env_kwargs), base.robot, args.episodes, 0)
            for p, d in dirs.items() for c in conds]
    summaries = run_jobs(jobs, workers=args.workers)
    results = [{"policy": j.policy, "condition": j.condition.label, "values": j.condition.values, "summary": s}
               for j, s in zip(jobs, summaries)]
    paths = write_results(out / "eval", results, [axis], {"env_id": base.env_id, "episodes": args.episodes,
                                                          "profile": "torso mass sweep"})
    ret = {(r["policy"], r["values"]["torso_mass"]): r["summary"]["mean_return"] for r in results}
    print(f"\nMean return vs torso mass ({args.episodes} episodes per point)\n")
    print("| torso mass (kg) | " + " | ".join(CONFIGS) + " |")
    print("|---|" + "---|" * len(CONFIGS))
    for m in axis.values:
        print(f"| {m:g} | " + " | ".join(f"{ret[(p, m)]:.0f}" for p in CONFIGS) + " |")
    for p in CONFIGS:
        vals = np.array([ret[(p, m)] for m in axis.values])
        print(f"{p}: worst {vals.min():.0f}, mean {vals.mean():.0f}")
    print(f"\nplot: {paths.get('png0')}, numbers: {paths['csv']}")


if __name__ == "__main__":
    main()
