"""EPOpt's torso-mass figure on the hopper: return vs torso mass for a single-model and an EPOpt policy.

    python benchmarks/epopt_hopper.py [--out runs/epopt_hopper] [--episodes 10] [--workers 2]
                                      [--total-timesteps N] [--steps NAME=N ...] [--skip-train]
                                      [--skip-iters K] [--n-models N] [--warmup-steps N]
                                      [--run NAME=DIR ...] [--checkpoint final|best]
                                      [--seed N] [--only NAME ...] [--warmup-from mass6_ppo|scratch|PATH]

Trains (or resumes) ``hopper_mass6.yaml`` (PPO, torso mass fixed at 6 kg) and
``epopt_hopper.yaml`` (EPOpt-ε, ε = 0.1, on the ``epopt_hopper`` ensemble), then
evaluates both with the torso mass pinned at 3, 4, ..., 9 kg (everything else nominal)
and writes ``results.csv``/``results.json``, ``sweep.png`` (return vs mass) and a table.
Rajeswaran et al. (2017, Fig. 2) report the single-model policy collapsing away from
its training mass while EPOpt stays high over the whole range.

By default (what the README's table measured, seeds 0–3) the mass-6 PPO policy trains
first; EPOpt's ε = 1 phase then runs as a separate PPO run on the ensemble, started from the mass-6
policy's best (``--warmup-from mass6_ppo``, ``--warmup-steps 600000``, ``hopper_mass6.yaml``'s
settings); EPOpt starts from the warm-up's best policy, and each run's best-evaluated policy is
evaluated (``--checkpoint best``). The shipped configs train 1.5M (PPO at 6 kg) and 0.8M (EPOpt)
steps: about 20 + 8 + 7 minutes of training and 5 of evaluation on one core.
``--warmup-from scratch`` starts the warm-up from a fresh policy (it did not learn to hop in
1.2–2M steps in 2 of 3 seeds); ``--warmup-steps 0`` trains EPOpt standalone (its ``skip_iters``
ε = 1 iterations first). ``--total-timesteps`` (and, so that
a short EPOpt run still reaches its CVaR phase, ``--skip-iters`` / ``--n-models``) run a
reduced budget (``--steps mass6_ppo=600000`` sets one policy's budget only); a run folder
that already holds a checkpoint is resumed from it, so a budget can be raised in steps. The
steps each policy actually trained and every override are printed with
the table and written to ``eval/budget.json``, so a reduced run is labelled as such.
``--skip-train --run NAME=DIR`` evaluates runs trained elsewhere, and ``--checkpoint best``
evaluates each run's best-evaluated policy (``DIR/best/``, written with ``eval.save_best``)
instead of its last one. ``--seed N`` trains every run (the ε = 1 warm-up included) with seed N
instead of the configs' seed 0, for a curve per seed; ``--only NAME`` trains and evaluates one
policy, so two can train side by side in two processes (each with its own ``--out``) and be
evaluated together afterwards with ``--skip-train --run`` (``--only epopt_e0.1`` needs
``OUT/mass6_ppo`` trained, or ``--warmup-from scratch|PATH``). ``--warmup-from PATH`` starts the
warm-up from any run folder, ``best/`` folder or ``model.zip``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
from pathlib import Path

import numpy as np

CONFIGS = {"mass6_ppo": "hopper_mass6", "epopt_e0.1": "epopt_hopper"}


def _label_png(path: Path, text: str) -> None:
    """Stamp ``text`` over the top of the plot at ``path`` (so a reduced-budget figure says so)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img = plt.imread(str(path))
    h, w = img.shape[:2]
    fig = plt.figure(figsize=(w / 100, h / 100 + 0.4), dpi=100)
    ax = fig.add_axes((0, 0, 1, h / (h + 40)))
    ax.imshow(img)
    ax.axis("off")
    fig.text(0.5, 1 - 20 / (h + 40), text, ha="center", va="center", fontsize=9, color="darkred")
    fig.savefig(str(path), dpi=100)
    plt.close(fig)


def _best_or_final(run: Path) -> Path:
    """A run's best-evaluated policy (``run/best``), or the run folder itself (its final policy) when
    it never evaluated, e.g. on a tiny budget."""
    return run / "best" if (run / "best" / "model.zip").is_file() else run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/epopt_hopper")
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--masses", default="3:9:7", help="LOW:HIGH:STEPS torso masses in kg")
    ap.add_argument("--total-timesteps", type=int, help="override both configs' budget")
    ap.add_argument("--steps", action="append", default=[], metavar="NAME=N",
                    help=f"override one policy's budget (NAME one of {list(CONFIGS)}); repeatable")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--skip-iters", type=int, help="override epopt.skip_iters (reduced budgets)")
    ap.add_argument("--n-models", type=int, help="override epopt.n_models (reduced budgets)")
    ap.add_argument("--warmup-steps", type=int, default=600000, metavar="N",
                    help="run EPOpt's epsilon = 1 phase as a separate run first: hopper_mass6.yaml's PPO on the "
                         "epopt_hopper ensemble for N steps (OUT/epopt_warmup_e1), then start the EPOpt run from "
                         "its best-evaluated policy (init_from) with skip_iters 0 (default 600000; 0: EPOpt "
                         "standalone with its skip_iters)")
    ap.add_argument("--run", action="append", default=[], metavar="NAME=DIR",
                    help="evaluate the run folder DIR for NAME instead of OUT/NAME (with --skip-train); repeatable")
    ap.add_argument("--checkpoint", choices=("final", "best"), default="best",
                    help="evaluate each run's final policy or its best-evaluated one (RUN/best/, eval.save_best)")
    ap.add_argument("--seed", type=int, help="train every run (the warm-up included) with this seed "
                                             "instead of the configs' seed")
    ap.add_argument("--only", action="append", choices=list(CONFIGS), metavar="NAME",
                    help=f"train and evaluate only this policy (one of {list(CONFIGS)}); repeatable")
    ap.add_argument("--warmup-from", metavar="mass6_ppo|scratch|PATH",
                    help="the policy the epsilon = 1 warm-up run starts from: 'mass6_ppo' (default: "
                         "OUT/mass6_ppo's best policy, trained first), 'scratch' (a fresh policy) or a run "
                         "folder, best/ folder or model.zip")
    args = ap.parse_args()
    names = [n for n in CONFIGS if n in (args.only or CONFIGS)]
    if args.warmup_from is not None and args.warmup_steps <= 0:
        ap.error("--warmup-from needs a warm-up run (--warmup-steps > 0)")
    warmup_from = args.warmup_from or "mass6_ppo"
    if args.warmup_steps > 0 and warmup_from not in ("mass6_ppo", "scratch"):
        from sim2real.errors import CheckpointError
        from sim2real.train.warmstart import find_init_model
        try:
            find_init_model(warmup_from)
        except CheckpointError as exc:
            ap.error(f"--warmup-from: {exc}")
    if args.seed is not None and args.seed < 0:
        ap.error(f"--seed {args.seed}: expected a non-negative integer")
    runs: dict[str, Path] = {}
    for item in args.run:
        name, sep, d = item.partition("=")
        if not sep or name not in names or not d:
            ap.error(f"--run {item!r}: expected NAME=DIR with NAME one of {names}")
        runs[name] = Path(d)
    if runs and not args.skip_train:
        ap.error("--run needs --skip-train (it evaluates runs trained elsewhere)")
    steps: dict[str, int] = {}
    for item in args.steps:
        name, sep, n = item.partition("=")
        if not sep or name not in names or not n.isdigit() or int(n) <= 0:
            ap.error(f"--steps {item!r}: expected NAME=N with NAME one of {names} and N a positive integer")
        steps[name] = int(n)

    from sim2real.train.config import load_run_config
    from sim2real.train.sweep import Condition, Job, SweepAxis, run_jobs
    from sim2real.train.sweep_report import write_results
    from sim2real.train.trainer import train

    out = Path(args.out)
    dirs = {}
    shipped: dict[str, int] = {}
    seed = {} if args.seed is None else {"seed": args.seed}
    for name in names:
        cfg_name = CONFIGS[name]
        cfg = load_run_config(cfg_name).with_overrides(**seed)
        if name in steps or args.total_timesteps:
            cfg = cfg.with_overrides(total_timesteps=steps.get(name, args.total_timesteps))
        if cfg.epopt is not None and (args.skip_iters is not None or args.n_models is not None):
            ep = cfg.epopt
            cfg = cfg.with_overrides(epopt=dataclasses.replace(
                ep, skip_iters=ep.skip_iters if args.skip_iters is None else args.skip_iters,
                n_models=ep.n_models if args.n_models is None else args.n_models))
        shipped[name] = load_run_config(cfg_name).total_timesteps
        dirs[name] = runs.get(name, out / name)
        done = (dirs[name] / "model.zip").is_file() and not (dirs[name] / "checkpoints").is_dir()
        if cfg.epopt is not None and args.warmup_steps > 0 and not args.skip_train and not done:
            warm = out / "epopt_warmup_e1"
            wcfg = load_run_config("hopper_mass6")
            winit = None
            if warmup_from == "mass6_ppo":
                m6 = dirs.get("mass6_ppo", out / "mass6_ppo")
                winit = str(_best_or_final(m6))
                if not (Path(winit) / "model.zip").is_file():
                    ap.error(f"--warmup-from mass6_ppo: {m6} holds no trained policy (train mass6_ppo first, "
                             f"or start the warm-up elsewhere: --warmup-from scratch|PATH)")
            elif warmup_from != "scratch":
                winit = warmup_from
            wcfg = wcfg.with_overrides(profile=cfg.profile, total_timesteps=args.warmup_steps, **seed,
                                       init_from=winit,
                                       eval=dataclasses.replace(wcfg.eval, profile=cfg.eval.profile, save_best=True),
                                       description=f"EPOpt epsilon = 1 phase: PPO on {cfg.profile}")
            if not args.skip_train and not (warm / "report.json").is_file():
                resume = (warm / "checkpoints" / "latest.json").is_file()
                start = f", from {winit}" if winit else ""
                print(f"== training epopt_warmup_e1 (hopper_mass6.yaml on {cfg.profile}, {args.warmup_steps} steps"
                      f"{start})")
                train(wcfg, warm, resume=resume)
            src = _best_or_final(warm)
            cfg = cfg.with_overrides(init_from=str(src),
                                     epopt=dataclasses.replace(cfg.epopt, skip_iters=0))
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
    policies = {}
    for p, d in dirs.items():
        policies[p] = d / "best" if args.checkpoint == "best" else d
        if not (policies[p] / "model.zip").is_file():
            ap.error(f"{policies[p]}: no model.zip (train {p} first"
                     + (", with eval.save_best: true)" if args.checkpoint == "best" else ")"))
    jobs = [Job(p, str(policies[p]), c, base.env_id, dict(base.env_kwargs), base.robot, args.episodes, 0)
            for p in dirs for c in conds]
    summaries = run_jobs(jobs, workers=args.workers)
    results = [{"policy": j.policy, "condition": j.condition.label, "values": j.condition.values, "summary": s}
               for j, s in zip(jobs, summaries)]
    paths = write_results(out / "eval", results, [axis], {"env_id": base.env_id, "episodes": args.episodes,
                                                          "profile": "torso mass sweep"})
    budget = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes"),
              "episodes": args.episodes, "seed": args.seed, "policies": {}}
    for p, d in dirs.items():
        rep = d / "report.json"
        info = json.loads(rep.read_text()) if rep.is_file() else {}
        latest = d / "checkpoints" / "latest.json"
        if info.get("num_timesteps") is None and latest.is_file():  # a run stopped early: its last checkpoint
            info["num_timesteps"] = json.loads(latest.read_text()).get("num_timesteps")
        best = d / "best" / "best.json"
        budget["policies"][p] = {"run": str(d), "policy": str(policies[p]), "steps": info.get("num_timesteps"),
                                 "best": json.loads(best.read_text()) if args.checkpoint == "best" else None,
                                 "shipped_steps": shipped[p], "wall_time_s": info.get("wall_time_s"),
                                 "config": info.get("config")}
    warm_rep = out / "epopt_warmup_e1" / "report.json"
    if args.warmup_steps > 0 and warm_rep.is_file():
        info = json.loads(warm_rep.read_text())
        budget["epopt_warmup_e1"] = {"run": str(warm_rep.parent), "steps": info.get("num_timesteps"),
                                     "wall_time_s": info.get("wall_time_s"), "config": info.get("config")}
        print(f"epopt_warmup_e1 (epsilon = 1 phase, separate run): {info.get('num_timesteps')} steps")
    (out / "eval" / "budget.json").write_text(json.dumps(budget, indent=1))
    ret = {(r["policy"], r["values"]["torso_mass"]): r["summary"]["mean_return"] for r in results}
    reduced = []
    for p, b in budget["policies"].items():
        steps = b["steps"]
        label = "" if steps is not None and steps >= b["shipped_steps"] else "  ** REDUCED BUDGET **"
        if label:
            reduced.append(f"{p} {steps} of {b['shipped_steps']} steps")
        print(f"{p}: trained {steps} steps (shipped config: {b['shipped_steps']}){label}")
        if b["best"] is not None:
            print(f"  evaluated {b['policy']}: best periodic evaluation at {b['best']['num_timesteps']} steps "
                  f"(return {b['best']['mean_return']:.0f})")
    if reduced and paths.get("png0"):
        _label_png(Path(paths["png0"]), "REDUCED BUDGET: " + "; ".join(reduced))
    print(f"\nMean return vs torso mass ({args.episodes} episodes per point)\n")
    print("| torso mass (kg) | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for m in axis.values:
        print(f"| {m:g} | " + " | ".join(f"{ret[(p, m)]:.0f}" for p in names) + " |")
    for p in names:
        vals = np.array([ret[(p, m)] for m in axis.values])
        print(f"{p}: worst {vals.min():.0f}, mean {vals.mean():.0f}")
    print(f"\nplot: {paths.get('png0')}, numbers: {paths['csv']}")


if __name__ == "__main__":
    main()
