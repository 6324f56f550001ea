"""Writing robustness-evaluation results: CSV, JSON, PNG (line plot / heatmap) and markdown."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sim2real._io import atomic_write_bytes, atomic_write_text
from sim2real.train.report import markdown_table

COLUMNS = ("policy", "condition", "param_1", "value_1", "param_2", "value_2", "episodes", "success_rate",
           "mean_return", "std_return", "mean_length")


def rows_of(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for r in results:
        items = list(r["values"].items())
        row = {"policy": r["policy"], "condition": r["condition"],
               "param_1": items[0][0] if items else "", "value_1": items[0][1] if items else "",
               "param_2": items[1][0] if len(items) > 1 else "", "value_2": items[1][1] if len(items) > 1 else ""}
        row.update({k: r["summary"][k] for k in COLUMNS[6:]})
        rows.append(row)
    return rows


def _metric(results: Sequence[dict[str, Any]]) -> tuple[str, str]:
    has_success = any(not math.isnan(r["summary"]["success_rate"]) for r in results)
    return ("success_rate", "success rate") if has_success else ("mean_return", "mean return")


def write_results(out: Path, results: Sequence[dict[str, Any]], axes: Sequence[Any], meta: dict[str, Any]) -> dict[str, Path]:
    """Write ``results.csv``, ``results.json``, ``sweep*.png`` and ``report.md`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    rows = rows_of(results)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    paths = {"csv": out / "results.csv", "json": out / "results.json", "md": out / "report.md"}
    atomic_write_text(paths["csv"], buf.getvalue())
    atomic_write_text(paths["json"], json.dumps({"meta": meta, "results": rows}, indent=1))
    pngs = plot_sweep(out, results, axes)
    atomic_write_text(paths["md"], markdown_report(results, axes, meta, pngs))
    for i, p in enumerate(pngs):
        paths[f"png{i}"] = p
    return paths


def plot_sweep(out: Path, results: Sequence[dict[str, Any]], axes: Sequence[Any]) -> list[Path]:
    """Line plot (1 axis, all policies on one figure) or one heatmap per policy (2 axes)."""
    if not axes:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key, label = _metric(results)
    policies = list(dict.fromkeys(r["policy"] for r in results))
    cells = [r for r in results if r["values"]]
    paths = []
    if len(axes) == 1:
        ax_def = axes[0]
        fig, ax = plt.subplots(figsize=(6, 4))
        for pol in policies:
            pts = sorted((r["values"][ax_def.param], r["summary"][key]) for r in cells if r["policy"] == pol)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=pol)
        ax.set_xlabel(ax_def.param)
        ax.set_ylabel(label)
        if key == "success_rate":
            ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        paths.append(_save(fig, out / "sweep.png"))
        plt.close(fig)
        return paths
    a0, a1 = axes
    for pol in policies:
        grid = np.full((len(a1.values), len(a0.values)), np.nan)
        for r in cells:
            if r["policy"] == pol:
                i = a1.values.index(r["values"][a1.param])
                j = a0.values.index(r["values"][a0.param])
                grid[i, j] = r["summary"][key]
        fig, ax = plt.subplots(figsize=(6, 4.5))
        kw = {"vmin": 0.0, "vmax": 1.0} if key == "success_rate" else {}
        im = ax.imshow(grid, origin="lower", cmap="viridis", aspect="auto", **kw)
        ax.set_xticks(range(len(a0.values)), [f"{v:g}" for v in a0.values])
        ax.set_yticks(range(len(a1.values)), [f"{v:g}" for v in a1.values])
        ax.set_xlabel(a0.param)
        ax.set_ylabel(a1.param)
        lo, hi = (0.0, 1.0) if key == "success_rate" else (np.nanmin(grid), np.nanmax(grid))
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                bright = hi > lo and (grid[i, j] - lo) / (hi - lo) > 0.6  # viridis is light at the top
                ax.text(j, i, f"{grid[i, j]:.2g}", ha="center", va="center", color="k" if bright else "w",
                        fontsize=8)
        fig.colorbar(im, ax=ax, label=label)
        ax.set_title(pol)
        fig.tight_layout()
        paths.append(_save(fig, out / f"heatmap_{_slug(pol)}.png"))
        plt.close(fig)
    return paths


def _save(fig: Any, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


def markdown_report(results: Sequence[dict[str, Any]], axes: Sequence[Any], meta: dict[str, Any],
                    pngs: Sequence[Path]) -> str:
    """Policies side by side: one row per condition, success rate / mean return per policy."""
    policies = list(dict.fromkeys(r["policy"] for r in results))
    conditions = list(dict.fromkeys(r["condition"] for r in results))
    by = {(r["policy"], r["condition"]): r["summary"] for r in results}
    header = ["condition"] + [f"{p} success" for p in policies] + [f"{p} return" for p in policies]
    rows = []
    for c in conditions:
        rows.append([c] + [by[(p, c)]["success_rate"] for p in policies]
                    + [by[(p, c)]["mean_return"] for p in policies])
    md = [f"# Robustness evaluation: {meta.get('env_id')}", "",
          f"- policies: {', '.join(f'`{p}`' for p in policies)}",
          f"- episodes per condition: {meta.get('episodes')}",
          f"- profile: `{meta.get('profile')}`",
          f"- sweep: {', '.join(f'{a.param} in [{a.values[0]:g}, {a.values[-1]:g}] ({len(a.values)} steps)' for a in axes) or 'none'}",
          "", markdown_table(header, rows), ""]
    md += [f"![{p.stem}]({p.name})" for p in pngs]
    md += ["", "Numbers: `results.csv` / `results.json`.", ""]
    return "\n".join(md)
