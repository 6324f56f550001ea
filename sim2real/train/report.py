"""Reports written at the end of ``sim2real train`` (report.md + report.json)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

from sim2real._io import atomic_write_text


def fmt(x: Any, digits: int = 3) -> str:
    if isinstance(x, float):
        return "–" if math.isnan(x) else f"{x:.{digits}g}" if abs(x) < 1e4 else f"{x:.0f}"
    return str(x)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_train_report(out: Path, cfg: Any, result: Any, history: list, adr_state: Any) -> None:
    data = {
        "config": cfg.to_dict(),
        "config_file": cfg.source,
        "num_timesteps": result.num_timesteps,
        "wall_time_s": result.wall_time_s,
        "final_eval": result.final_eval,
        "evaluations": history,
    }
    if adr_state is not None:
        data["adr_ranges"] = adr_state.ranges_dict()
    atomic_write_text(out / "report.json", json.dumps(data, indent=1))
    fe = result.final_eval
    md = [f"# Training report: {cfg.env_id} ({cfg.algo})", ""]
    if cfg.description:
        md += [cfg.description, ""]
    md += [f"- config: `{cfg.source or '<inline>'}`", f"- steps: {result.num_timesteps}",
           f"- wall time: {result.wall_time_s / 60:.1f} min", f"- profile: `{cfg.profile}`",
           f"- evaluation profile: `{cfg.eval.profile}`", "",
           "## Final evaluation", "",
           markdown_table(["episodes", "success rate", "mean return", "std return", "mean length"],
                          [[fe["episodes"], fe["success_rate"], fe["mean_return"], fe["std_return"],
                            fe["mean_length"]]]), ""]
    if history:
        md += ["## Evaluations during training", "",
               markdown_table(["steps", "success rate", "mean return"],
                              [[h["num_timesteps"], h["success_rate"], h["mean_return"]] for h in history]), ""]
    if adr_state is not None:
        rows = []
        for name, r in adr_state.ranges.items():
            lim = adr_state.limits[name]
            for d in range(r.shape[1]):
                rows.append([f"{name}[{d}]", float(r[0, d]), float(r[1, d]), float(lim[0, d]), float(lim[1, d])])
        md += ["## ADR ranges (written to adr_profile.yaml)", "",
               markdown_table(["parameter", "low", "high", "limit low", "limit high"], rows), ""]
    md += ["Policy: `model.zip` (+ `vecnormalize.pkl`). Evaluate with "
           f"`sim2real evaluate --policy {out} --env {cfg.env_id}`, export with "
           f"`sim2real export --policy {out} --out policy.pt`.", ""]
    atomic_write_text(out / "report.md", "\n".join(md))
