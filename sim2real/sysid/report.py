"""Calibration outputs: the narrowed randomization profile (DROPO-style), the JSON of the numbers
and the PNG overlay of simulated vs logged trajectories before and after calibration.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from sim2real._io import atomic_write_bytes, atomic_write_text
from sim2real.robots import RobotDescription
from sim2real.sysid.calibrate import CalibrationResult, ParamEstimate


def _entry_name(p: ParamEstimate) -> str:
    base = {"link_mass": "link_mass", "joint_damping": "joint_damping", "joint_friction": "joint_friction",
            "motor_strength": "motor_strength", "position_gain": "position_gain", "velocity_gain": "velocity_gain",
            "stall_torque": "stall_torque", "free_speed": "free_speed",
            "armature": "armature", "action_latency": "action_latency"}[p.kind]
    return base if ":" not in p.name else f"{base}_{p.name.split(':', 1)[1]}"


def narrowed_profile(result: CalibrationResult, robot: RobotDescription, prior: Any = None, *,
                     width_sigmas: float = 2.0, min_rel_width: float = 0.02) -> dict[str, Any]:
    """A profile dict centred on the estimates: ``uniform[est − k·σ, est + k·σ]`` (k = ``width_sigmas``,
    at least ±``min_rel_width``·est, clipped to the search bounds). Parameters flagged not
    identifiable keep their prior range (the prior profile's entry, else the search bounds).
    Entries of ``prior`` for kinds that were not calibrated are kept unchanged.
    """
    params: dict[str, Any] = {}
    calibrated_kinds = {p.kind for p in result.params}
    if prior is not None:
        for name, entry in prior.to_dict().get("params", {}).items():
            kind = entry.get("param", name)
            if kind not in calibrated_kinds:
                params[name] = entry
    for p in result.params:
        name = _entry_name(p)
        entry: dict[str, Any] = {"param": p.kind}
        if p.targets:
            entry["targets"] = list(p.targets)
            entry["shared"] = True
        if p.kind == "action_latency":
            lo, hi = (p.ci_low, p.ci_high) if p.identifiable else (p.low, p.high)
            entry.update(distribution="uniform", low=float(np.floor(lo)), high=float(np.ceil(hi)), operation="abs",
                         unit="physics_steps")
            if entry["low"] == entry["high"]:
                entry = {"param": p.kind, "distribution": "constant", "value": float(lo), "operation": "abs",
                         "unit": "physics_steps"}
        else:
            if p.identifiable:
                half = max(width_sigmas * p.std, min_rel_width * abs(p.estimate))
                lo, hi = max(p.low, p.estimate - half, 0.0), min(p.high, p.estimate + half)
            else:
                lo, hi = p.low, p.high
            entry.update(distribution="uniform", low=float(lo), high=float(hi), operation=p.operation)
            if p.kind == "link_mass":
                entry["recompute_inertia"] = True
        params[name] = entry
    n_id = sum(p.identifiable for p in result.params)
    fit = getattr(result, "fit", None) or {}
    misfit = (f"; model misfit (chi2/dof {fit['chi2_dof']:.3g} against the log's noise floor), σ widened "
              f"{fit['inflation']:.3g}x" if fit.get("verdict") == "misfit" else "")
    return {
        "description": (f"Calibrated from {Path(result.log).name} for {robot.name}: {n_id}/{len(result.params)} "
                        f"parameters identified, ranges = estimate ± {width_sigmas:g}σ{misfit} (sim2real calibrate)"),
        "robot": robot.name,
        "params": params,
    }


def write_outputs(result: CalibrationResult, robot: RobotDescription, out: str | Path, prior: Any = None,
                  truth: dict[str, Any] | None = None, plot: bool = True) -> dict[str, Path]:
    """Write ``out`` (narrowed profile YAML, validated with ``load_profile``), ``out.json`` and ``out.png``."""
    return write_profile_outputs(result, robot, out, narrowed_profile(result, robot, prior), plot_overlay,
                                 truth, plot)


def write_profile_outputs(result: CalibrationResult, robot: RobotDescription, out: str | Path, prof: dict[str, Any],
                          plot_fn: Callable[[CalibrationResult, Path], None], truth: dict[str, Any] | None = None,
                          plot: bool = True) -> dict[str, Path]:
    """Validate the narrowed profile ``prof`` (``load_profile``) and write it to ``out`` (YAML),
    ``result`` (plus ``truth``) to ``out.json`` and, if ``plot``, ``plot_fn``'s figure to ``out.png``."""
    import yaml

    from sim2real.profiles import load_profile

    out = Path(out)
    load_profile(prof, robot=robot)  # validates: raises ProfileError if anything is off
    header = "# Narrowed randomization profile written by `sim2real calibrate`; numbers in the .json next to it.\n"
    atomic_write_text(out, header + yaml.safe_dump(prof, sort_keys=False, default_flow_style=None))
    data = result.to_dict()
    if truth is not None:
        data["truth"] = truth
    paths = {"profile": out, "json": out.with_suffix(".json")}
    atomic_write_text(paths["json"], json.dumps(data, indent=2, default=_jsonable))
    if plot and hasattr(result, "_setup"):
        paths["png"] = out.with_suffix(".png")
        plot_fn(result, paths["png"])
    return paths


def _jsonable(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def plot_overlay(result: CalibrationResult, path: str | Path, max_windows: int = 6) -> None:
    """Per joint: logged positions, velocities and efforts (when logged) and the simulated windows
    before (nominal) and after calibration."""
    from sim2real.sysid.replay import WindowReplay

    setup = result._setup  # type: ignore[attr-defined]
    x_best, delay = result._x  # type: ignore[attr-defined]
    from sim2real.robots import load_robot

    robot = load_robot(setup.robot_file)
    ws = setup.windows
    delay_spec = [(_delay_spec(result), 0.0)] if delay is not None else []
    replay = WindowReplay(robot, ws, setup.specs, setup.scales, w_pos=setup.w_pos, w_vel=setup.w_vel,
                          w_tau=setup.w_tau)
    try:
        before_vals = [min(max(s.neutral, s.low), s.high) for s in setup.specs]
        replay.set_fixed(delay_spec)
        before = replay.simulate(before_vals)
        after_vals = [s.from_unit(u) for s, u in zip(setup.specs, x_best)]
        if delay is not None:
            replay.set_fixed([(delay_spec[0][0], float(delay))])
        after = replay.simulate(after_vals)
    finally:
        replay.close()
    fig = joint_signals_figure(ws, before, after, robot.joint_names, max_windows)
    save_overlay(fig, result, path)


def joint_signals_figure(ws: Any, before: Sequence[np.ndarray], after: Sequence[np.ndarray],
                         joint_names: Sequence[str], max_windows: int = 6,
                         labels: tuple[str, str] = ("sim before", "sim after")) -> Any:
    """A figure with one row per joint and one column per signal — position [rad], velocity [rad/s]
    and, when the windows have them, effort [N·m] — overlaying logged and two simulations of
    ``max_windows`` windows.

    :param ws: the :class:`~sim2real.sysid.replay.WindowSet`
    :param before, after: simulated ``(q, qd, tau)``, each ``(W, H, n)``
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    signals = [("position", "rad", ws.q), ("velocity", "rad/s", ws.qd)]
    if ws.tau is not None:
        signals.append(("effort", "N·m", ws.tau))
    n = ws.q.shape[2]
    idx = np.linspace(0, len(ws) - 1, min(max_windows, len(ws))).round().astype(int)
    fig, axes = plt.subplots(n, len(signals), figsize=(5.5 * len(signals), 1.6 * n + 1), sharex=True,
                             squeeze=False)
    for c, (name, unit, logged) in enumerate(signals):
        for j in range(n):
            ax = axes[j, c]
            overlay_lines(ax, ws.t, idx, logged[:, :, j], before[c][:, :, j], after[c][:, :, j], labels)
            ax.set_ylabel(f"{joint_names[j]}\n[{unit}]", fontsize=7)
            ax.tick_params(labelsize=7)
        axes[0, c].set_title(name, fontsize=8)
        axes[-1, c].set_xlabel("log time [s]")
    axes[0, 0].legend(loc="upper right", fontsize=7, ncol=3)
    return fig


def overlay_lines(ax: Any, t: np.ndarray, idx: np.ndarray, logged: np.ndarray, before: np.ndarray,
                  after: np.ndarray, labels: tuple[str, str] = ("sim before", "sim after")) -> None:
    """Plot windows ``idx`` of one signal on ``ax``: logged (black), simulated before (red, dashed) and
    after (blue) calibration, labelled ``labels``; ``t`` (W, H+1) log times (s), the signals (W, H)."""
    for m, i in enumerate(idx):
        ti = t[i, 1:]
        ax.plot(ti, logged[i], color="k", lw=1.5, label="logged" if m == 0 else None)
        ax.plot(ti, before[i], color="tab:red", lw=1, ls="--", label=labels[0] if m == 0 else None)
        ax.plot(ti, after[i], color="tab:blue", lw=1, label=labels[1] if m == 0 else None)


def save_overlay(fig: Any, result: CalibrationResult, path: str | Path) -> None:
    """Title ``fig`` with the cost before → after calibration and write it as a PNG to ``path`` (atomically)."""
    fit = getattr(result, "fit", None) or {}
    verdict = f", {fit['verdict']} (chi2/dof {fit['chi2_dof']:.3g})" if fit.get("verdict") else ""
    save_figure(fig, f"{result.robot}: cost {result.cost_initial:.4g} → {result.cost_final:.4g} "
                     f"({result.evaluations} simulator evaluations){verdict}", path)


def save_figure(fig: Any, title: str, path: str | Path) -> None:
    """Title ``fig`` and write it as a PNG to ``path`` (atomically); closes the figure."""
    import io

    import matplotlib.pyplot as plt

    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _delay_spec(result: CalibrationResult) -> Any:
    from sim2real.sysid.params import ParamSpec

    p = next(p for p in result.params if p.kind == "action_latency")
    return ParamSpec(p.name, "delay", p.kind, (), "abs", p.low, p.high, p.unit, integer=True)


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """Plain-text table (benchmarks)."""
    cells = [[str(h) for h in header]] + [[f"{c:.4g}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
