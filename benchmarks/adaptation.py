"""Domain-adaptation benchmark: digits → digits-on-photos and rendered arm → shifted camera style.

For each task and method, trains the method plus a source-only and an oracle baseline with
the same data, networks and training budget (shared by methods whose budget matches), and prints target accuracy
(digits) or target pixel error (arm) of each, and the fraction of the source-only →
oracle gap the method closes. Configs: ``configs/adapt/<task>_<method>.yaml``.

    nice -n 10 python benchmarks/adaptation.py --task digits            # ~10 min on 2 cores
    python benchmarks/adaptation.py --task arm --methods dann pixelda
    nice -n 19 python benchmarks/adaptation.py --task all --methods selfens   # self-ensembling, ~5 min per task
    python benchmarks/adaptation.py --task all --out runs/bench_adapt
    python benchmarks/adaptation.py --task all --methods selfens --seeds 0 1 2   # seed spread

``--seeds`` runs every method and its baselines once per seed (the config's ``seed``
replaced; for the digits task the seed also draws the digit split and photo patches) and
prints the mean and the worst gap closed over the seeds. Results go to ``<out>/<task>/``
(runs under ``<method>/seed<N>/``, ``results.json``, ``results.md``). Finished runs are
reused (delete ``<out>`` to retrain).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("dann", "adda", "pixelda", "cyclegan", "selfens")
TASKS = ("digits", "arm")


def run_task(task: str, methods: list[str], out: Path, steps: int | None, progress: bool,
             seeds: list[int] | None = None) -> list[dict]:
    from sim2real.adapt.config import load_config, parse_config
    from sim2real.adapt.report import metric_name, run_experiment
    from sim2real.adapt.trainer import load_domains

    cfgs = []
    for m in methods:
        base = load_config(ROOT / "configs" / "adapt" / f"{task}_{m}.yaml")
        for seed in (seeds if seeds is not None else [base.seed]):
            raw = dict(base.raw, seed=seed)
            if steps is not None:
                raw["train"] = {**raw["train"], "steps": steps}
            cfg = parse_config(raw, file=base.source, base_dir=Path(base.base_dir) if base.base_dir else None)
            cfgs.append((m, cfg))
    domains_by_key: dict[str, object] = {}
    key, higher = metric_name(cfgs[0][1].task.type)
    rows = []
    for m, cfg in cfgs:
        dkey = _key(cfg, ("data", "seed"), cfg.network.image_size)
        if dkey not in domains_by_key:
            t0 = time.perf_counter()
            domains_by_key[dkey] = d = load_domains(cfg, out / "data", progress)
            print(f"[{task}] data: source {len(d.xs)}, target train {len(d.xt)}, "
                  f"target eval {len(d.x_eval)} images ({time.perf_counter() - t0:.0f} s)", flush=True)
        # baselines are shared by every method with the same data, networks and training budget
        bkey = _key(cfg, ("data", "network", "task", "train", "seed"))
        t = time.perf_counter()
        rep = run_experiment(cfg, out / m / f"seed{cfg.seed}", resume=True, progress=progress, domains=domains_by_key[dkey],
                             baseline_dir=out / "baselines" / bkey)
        res = rep["results"]
        row = {"task": task, "method": m, "seed": cfg.seed, "metric": key, "source_only": res["source_only"]["metrics"][key],
               "adapted": res[m]["metrics"][key], "oracle": res.get("oracle", {}).get("metrics", {}).get(key),
               "gap_closed": rep.get("gap_closed"), "train_time_s": res[m]["train_time_s"],
               "train_cpu_s": res[m].get("train_cpu_s"),
               "source_only_time_s": res["source_only"]["train_time_s"],
               "oracle_time_s": res.get("oracle", {}).get("train_time_s"),
               "wall_s": round(time.perf_counter() - t, 1), "steps": cfg.train.steps}
        rows.append(row)
        print(format_row(row), flush=True)
    return rows


def _key(cfg, keys: tuple[str, ...], *extra: object) -> str:
    """Short stable hash of the given top-level config keys (+ extra values)."""
    blob = json.dumps([[cfg.raw.get(k) for k in keys], list(extra)], sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:10]


def format_row(r: dict) -> str:
    f = (lambda v: "n/a" if v is None else f"{v:.3f}") if r["metric"] == "accuracy" else \
        (lambda v: "n/a" if v is None else f"{v:.2f} px")
    gap = "n/a" if r["gap_closed"] is None else f"{r['gap_closed']:.0%}"
    return (f"| {r['task']} | {r['method']} | {r['seed']} | {r['metric']} | {f(r['source_only'])} | {f(r['adapted'])} | "
            f"{f(r['oracle'])} | {gap} | {r['steps']} | {r['train_time_s']:.0f} | "
            f"{'n/a' if r.get('train_cpu_s') is None else format(r['train_cpu_s'], '.0f')} |")


HEADER = ("| task | method | seed | metric | source-only | adapted | oracle | gap closed | steps | train wall (s) | "
          "train CPU (s) |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=[*TASKS, "all"], default="all")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--out", type=Path, default=Path("runs/bench_adapt"))
    parser.add_argument("--steps", type=int, default=None, help="override train.steps of every config")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="run every method and its baselines once per seed (default: the config's seed)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 on the shared machine)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    tasks = list(TASKS) if args.task == "all" else [args.task]
    all_rows = []
    print(HEADER, flush=True)
    for task in tasks:
        rows = run_task(task, args.methods, args.out / task, args.steps, not args.no_progress, args.seeds)
        all_rows += rows
        (args.out / task).mkdir(parents=True, exist_ok=True)
        from sim2real._io import atomic_write_text

        atomic_write_text(args.out / task / "results.json", json.dumps(rows, indent=2))
        atomic_write_text(args.out / task / "results.md", HEADER + "\n" + "\n".join(format_row(r) for r in rows) + "\n")
    print("\n" + HEADER)
    for r in all_rows:
        print(format_row(r))
    for line in summary_lines(all_rows):
        print(line)
    return 0


def summary_lines(rows: list[dict]) -> list[str]:
    """Per task: each method's mean and worst gap closed over its seeds, and whether the best
    method's *worst* seed reaches the 70 % target."""
    lines = []
    for task in dict.fromkeys(r["task"] for r in rows):
        worst: dict[str, float] = {}
        for m in dict.fromkeys(r["method"] for r in rows if r["task"] == task):
            gaps = [r["gap_closed"] for r in rows if r["task"] == task and r["method"] == m]
            if any(g is None for g in gaps):
                continue
            worst[m] = min(gaps)
            lines.append(f"{task} {m}: gap closed mean {sum(gaps) / len(gaps):.0%}, worst {min(gaps):.0%} "
                         f"over {len(gaps)} seed(s)")
        if worst:
            best = max(worst, key=worst.get)
            lines.append(f"{task}: best method {best} closes >= {worst[best]:.0%} of the gap in every seed "
                         f"(target >= 70%: {'met' if worst[best] >= 0.7 else 'NOT met'})")
    return lines


if __name__ == "__main__":
    sys.exit(main())
