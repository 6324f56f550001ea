"""Run an adaptation experiment and write its report.

``run_experiment`` trains the configured method in ``out/`` and, with
``report.baselines`` (default), a source-only baseline in ``out/baselines/source_only``
and, when the target training set has labels, an oracle in ``out/baselines/oracle``, all
with the same data, networks and steps. It then writes ``report.json`` + ``report.md``
(held-out target accuracy or error of each, and the fraction of the source-only → oracle
gap the method closes) and, for pixel-level methods, ``grid.png`` (rows: source,
translated, target images).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sim2real._io import atomic_open, atomic_write_text
from sim2real.adapt.config import AdaptConfig
from sim2real.adapt.methods import Method
from sim2real.adapt.trainer import Domains, load_domains, train


def metric_name(task_type: str) -> tuple[str, bool]:
    """``(metric key, higher is better)``."""
    return ("accuracy", True) if task_type == "classification" else ("error", False)


def gap_closed(source_only: float, adapted: float, oracle: float, higher_better: bool) -> float | None:
    """Fraction of the source-only → oracle gap closed: 0 = no better than source-only, 1 = oracle."""
    gap = (oracle - source_only) if higher_better else (source_only - oracle)
    if gap <= 1e-12:
        return None
    gain = (adapted - source_only) if higher_better else (source_only - adapted)
    return gain / gap


def save_grid(method: Method, domains: Domains, path: Path, rows: int = 8, seed: int = 0) -> Path:
    """PNG grid: source images, their translations, and real target images (``rows`` columns each)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gen = np.random.default_rng(seed)
    n = min(rows, len(domains.xs), len(domains.xt))
    xs = domains.xs[gen.choice(len(domains.xs), n, replace=False)].float() / 255.0
    xt = domains.xt[gen.choice(len(domains.xt), n, replace=False)].float() / 255.0
    method.train(False)
    with torch.no_grad():
        fake = method.translate(xs)
    rows_ = [("source", xs), ("translated", fake), ("target", xt)]
    fig, axes = plt.subplots(3, n, figsize=(1.3 * n, 4.2), squeeze=False)
    for r, (name, imgs) in enumerate(rows_):
        for c in range(n):
            ax = axes[r][c]
            ax.imshow(imgs[c].permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name)
    fig.tight_layout()
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=100)
    plt.close(fig)
    return path


def run_experiment(cfg: AdaptConfig, out: str | Path, resume: bool = False, progress: bool = True,
                   domains: Domains | None = None, baseline_dir: str | Path | None = None) -> dict[str, Any]:
    """Train the method (+ baselines) and write the report; returns the report dict.

    :param baseline_dir: where baselines live (default ``out/baselines``); finished
        baseline runs there are reused, so several methods can share them.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if domains is None:
        domains = load_domains(cfg, out / "data", progress)
    method, summary = train(cfg, out, domains, resume=resume, progress=progress)
    key, higher = metric_name(cfg.task.type)
    report: dict[str, Any] = {"method": cfg.method, "config": cfg.source, "task": cfg.task.type, "metric": key,
                              "higher_is_better": higher, "steps": cfg.train.steps,
                              "eval_size": 0 if domains.x_eval is None else len(domains.x_eval),
                              "results": {cfg.method: summary}}
    if domains.x_eval is not None and cfg.report["baselines"] and cfg.method not in ("source_only", "oracle"):
        bdir = Path(baseline_dir) if baseline_dir else out / "baselines"
        baselines = ["source_only"] + (["oracle"] if domains.yt is not None else [])
        for name in baselines:
            bcfg = cfg.with_method(name)
            _, report["results"][name] = train(bcfg, bdir / name, domains, resume=True, progress=progress)
    res = report["results"]
    if all(k in res and "metrics" in res[k] for k in ("source_only", "oracle", cfg.method)):
        report["gap_closed"] = gap_closed(res["source_only"]["metrics"][key], res[cfg.method]["metrics"][key],
                                          res["oracle"]["metrics"][key], higher)
    if method.is_pixel_level and domains.xs is not None and domains.xt is not None:
        report["grid"] = str(save_grid(method, domains, out / "grid.png", cfg.report["grid_rows"], cfg.seed))
    atomic_write_text(out / "report.json", json.dumps(report, indent=2))
    atomic_write_text(out / "report.md", report_markdown(report))
    return report


def report_markdown(report: dict[str, Any]) -> str:
    key = report["metric"]
    unit = "" if key == "accuracy" else " (label units)"
    lines = [f"# Adaptation report: {report['method']}", "",
             f"Held-out target set: {report['eval_size']} images; metric: {key}{unit}, "
             f"{'higher' if report['higher_is_better'] else 'lower'} is better.", "",
             f"| model | target {key} | train steps | train time (s) |", "| --- | --- | --- | --- |"]
    order = ["source_only", report["method"], "oracle"]
    for name in dict.fromkeys(order):
        r = report["results"].get(name)
        if r is None:
            continue
        val = r.get("metrics", {}).get(key)
        lines.append(f"| {name} | {'n/a' if val is None else f'{val:.4f}'} | {r['steps']} | {r['train_time_s']} |")
    if report.get("gap_closed") is not None:
        lines += ["", f"Fraction of the source-only → oracle gap closed: **{report['gap_closed']:.1%}**"]
    if report.get("grid"):
        lines += ["", "![source / translated / target](grid.png)"]
    return "\n".join(lines) + "\n"
