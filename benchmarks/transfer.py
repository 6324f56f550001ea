"""Sim-to-sim transfer: nominal vs Peng et al. 2018 randomization vs EPOpt-ε on the arm-reach env.

    python benchmarks/transfer.py [--out runs/transfer] [--episodes 50] [--workers 2]
                                  [--total-timesteps N] [--skip-train] [--reuse NAME=RUN_DIR ...]

Trains (or resumes) three policies from the shipped run configs
(``kuka_reach.yaml``, ``kuka_reach_peng2018.yaml``, ``kuka_reach_epopt.yaml``), then
evaluates all three on the nominal world and on held-out shifted worlds (every link mass
×0.5 and ×2, joint damping ×5, 40 ms action latency, observation noise σ = 0.05) and prints
a table of success rates measured in this run. Target: the randomized and EPOpt policies
keep ≥ 90 % of their nominal success on the shifted worlds where the nominal policy drops
below 30 %. Training all three takes hours on 2 CPU cores.

``--reuse nominal=runs/old/nominal`` evaluates an already-trained run folder for that
arm instead of training it (names: ``nominal``, ``peng2018``, ``epopt``); the table
lists each policy's training steps (from its ``report.json``) so mixed budgets show.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

CONFIGS = {"nominal": "kuka_reach", "peng2018": "kuka_reach_peng2018", "epopt": "kuka_reach_epopt"}


def _const(param: str, value: float, **extra) -> dict:
    entry = {"param": param, "distribution": "constant", "value": value, **extra}
    return {"params": {f"shift_{param}": entry}}


WORLDS = {
    "nominal": {"params": {}},
    "mass x0.5": _const("link_mass", 0.5, targets="all", shared=True),
    "mass x2": _const("link_mass", 2.0, targets="all", shared=True),
    "damping x5": _const("joint_damping", 5.0, targets="all", shared=True),
    "latency 40 ms": _const("action_latency", 0.04, unit="seconds"),
    "obs noise 0.05": _const("observation_noise", 0.05, noise="gaussian"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/transfer")
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--total-timesteps", type=int, help="override every config's budget")
    ap.add_argument("--skip-train", action="store_true", help="evaluate the policies already in --out")
    ap.add_argument("--reuse", action="append", default=[], metavar="NAME=RUN_DIR",
                    help="use this already-trained run folder for arm NAME (no training); repeatable")
    args = ap.parse_args()
    reuse: dict[str, Path] = {}
    for item in args.reuse:
        name, sep, path = item.partition("=")
        if not sep or name not in CONFIGS:
            ap.error(f"--reuse {item!r}: expected NAME=RUN_DIR with NAME one of {list(CONFIGS)}")
        if not (Path(path) / "model.zip").is_file():
            ap.error(f"--reuse {item!r}: {Path(path) / 'model.zip'} does not exist")
        reuse[name] = Path(path)

    from sim2real.train.config import load_run_config
    from sim2real.train.sweep import Condition, Job, run_jobs
    from sim2real.train.sweep_report import write_results
    from sim2real.train.trainer import train

    out = Path(args.out)
    dirs = {}
    for name, cfg_name in CONFIGS.items():
        cfg = load_run_config(cfg_name)
        if args.total_timesteps:
            cfg = cfg.with_overrides(total_timesteps=args.total_timesteps)
        run_dir = reuse.get(name, out / name)
        dirs[name] = run_dir
        if args.skip_train or name in reuse:
            continue
        if (run_dir / "model.zip").is_file() and not (run_dir / "checkpoints" / "latest.json").is_file():
            continue
        resume = (run_dir / "checkpoints" / "latest.json").is_file()
        print(f"== training {name} ({cfg_name}.yaml){' (resuming)' if resume else ''}")
        train(cfg, run_dir, resume=resume)

    base = load_run_config("kuka_reach")
    env_kwargs = dict(base.env_kwargs)
    jobs = [Job(pol, str(d), Condition(world, prof), base.env_id, env_kwargs, base.robot, args.episodes, 0)
            for pol, d in dirs.items() for world, prof in WORLDS.items()]
    summaries = run_jobs(jobs, workers=args.workers)
    results = [{"policy": j.policy, "condition": j.condition.label, "values": {}, "summary": s}
               for j, s in zip(jobs, summaries)]
    write_results(out / "eval", results, [], {"env_id": base.env_id, "episodes": args.episodes, "profile": None})

    sr = {(r["policy"], r["condition"]): r["summary"]["success_rate"] for r in results}
    pols = list(CONFIGS)
    steps = {}
    for p, d in dirs.items():
        rep = Path(d) / "report.json"
        steps[p] = json.loads(rep.read_text()).get("num_timesteps") if rep.is_file() else None
    print("\ntraining steps: " + ", ".join(f"{p} {steps[p]} ({dirs[p]})" for p in pols))
    print(f"\nSuccess rate on {base.env_id} ({args.episodes} episodes per cell; ratio = world / own nominal)\n")
    print("| world | " + " | ".join(pols) + " |")
    print("|---|" + "---|" * len(pols))
    for world in WORLDS:
        cells = []
        for p in pols:
            nom = sr[(p, "nominal")]
            ratio = sr[(p, world)] / nom if nom > 0 else float("nan")
            cells.append(f"{sr[(p, world)]:.2f}" + ("" if world == "nominal" else f" ({ratio:.2f})"))
        print(f"| {world} | " + " | ".join(cells) + " |")
    verdict = {}
    for world in list(WORLDS)[1:]:
        if sr[("nominal", world)] < 0.3:
            verdict[world] = {p: sr[(p, world)] >= 0.9 * sr[(p, "nominal")] for p in ("peng2018", "epopt")}
    print("\nworlds where the nominal policy drops below 30 %:", list(verdict) or "none")
    for world, ok in verdict.items():
        print(f"  {world}: " + ", ".join(f"{p} keeps >= 90 %: {'yes' if v else 'NO'}" for p, v in ok.items()))
    (out / "eval" / "transfer.json").write_text(json.dumps({"success": {f"{p}|{w}": v for (p, w), v in sr.items()},
                                                             "verdict": verdict, "steps": steps,
                                                             "runs": {p: str(d) for p, d in dirs.items()}}, indent=1))


if __name__ == "__main__":
    main()
