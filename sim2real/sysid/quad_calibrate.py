"""Offline calibration of the quadrotor: fit rotor/airframe parameters to a flight log.

The stages are those of :func:`sim2real.sysid.calibrate.calibrate` (delay scan, CMA-ES with
restarts and resumable state, Levenberg–Marquardt polish, Gauss–Newton / CMA-ES uncertainty,
identifiability flags), except that the final delay search re-fits the continuous parameters at
each neighbouring delay (motor lag and delay trade off against each other), run on :class:`~sim2real.sysid.quad_replay.QuadWindowReplay`
(motor commands replayed from the logged odometry in the quadrotor world) and evaluated by the
same serial / process-pool / Ray backends. :func:`narrowed_quad_profile` turns the result into
a profile ``sim2real train`` accepts (entry names as in ``randomization_profiles/quadrotor.yaml``).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sim2real._io import atomic_write_bytes
from sim2real.errors import LogError, Sim2RealError
from sim2real.robots import RobotDescription
from sim2real.sysid.calibrate import (
    CalibrationConfig,
    CalibrationResult,
    _Budget,
    _delay_estimate,
    _levenberg_marquardt,
    _load_state,
    _run_cma,
    _scan_delay,
    _uncertainty,
    check_budget,
    residual_clusters,
)
from sim2real.sysid.evaluators import make_evaluator
from sim2real.sysid.logs import HardwareLog
from sim2real.sysid.params import ParamSpec
from sim2real.sysid.quad_params import QUAD_KINDS, quad_absolute_values
from sim2real.sysid.quad_replay import (
    PAST,
    QuadReplaySetup,
    align_quad,
    make_quad_windows,
    quad_signal_scales,
)


@dataclass(frozen=True)
class QuadWeights:
    """Weights of the position, velocity, attitude and body-rate residuals (each normalised per axis)."""

    pos: float = 1.0
    vel: float = 1.0
    att: float = 1.0
    rates: float = 1.0

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.pos, self.vel, self.att, self.rates)


def calibrate_quadrotor(log: HardwareLog, robot: RobotDescription, specs: Sequence[ParamSpec],
                        config: CalibrationConfig | None = None, *, weights: QuadWeights | None = None,
                        state_path: str | os.PathLike[str] | None = None, resume: bool = False,
                        progress: bool = True) -> CalibrationResult:
    """Fit ``specs`` (from :func:`~sim2real.sysid.quad_params.parse_quad_params`) to a quadrotor ``log``.

    :param state_path: CMA-ES state pickled after each generation; ``resume`` continues from it
    :raises LogError: no odometry / motor commands, or too short for one window
    """
    import resource

    config = config or CalibrationConfig()
    weights = weights or QuadWeights()
    wall0, cpu0 = time.time(), time.process_time()
    child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    segments, gaps = align_quad(log, robot.control.rate_hz)
    try:
        windows = make_quad_windows(segments, config.horizon, stride=config.stride, max_windows=config.max_windows)
    except ValueError as exc:
        raise LogError(f"{log.source}: {exc}") from None
    delay_specs = [s for s in specs if s.integer]
    cont = [s for s in specs if not s.integer]
    if len(delay_specs) > 1:
        raise Sim2RealError("delay given more than once")
    check_budget(config, specs, quadrotor=True)
    max_delay = float((PAST - 2) * robot.control.substeps)
    if delay_specs and delay_specs[0].high > max_delay:
        delay_specs = [type(delay_specs[0])(**{**asdict(delay_specs[0]), "high": max_delay})]
    setup = QuadReplaySetup(str(robot.file), windows, cont, quad_signal_scales(segments, config.horizon),
                            weights.as_tuple())
    fp = _fingerprint(log, robot, specs, config, weights)
    state = _load_state(state_path, resume, fp)

    def save() -> None:
        if state_path:
            atomic_write_bytes(state_path, pickle.dumps(state))

    budget = _Budget.start(config.budget, progress, int(state.get("evals", 0)))
    evaluator = make_evaluator(setup, config.workers, config.ray_address)  # type: ignore[arg-type]
    try:
        x0 = np.array([s.to_unit(min(max(s.neutral, s.low), s.high)) for s in cont])

        def evaluate(xs: Sequence[np.ndarray], fixed: Any, mode: str = "cost", per_item: bool = False) -> list[Any]:
            fx = fixed if per_item else [fixed] * len(xs)
            out = evaluator.map([[s.from_unit(u) for s, u in zip(cont, x)] for x in xs], fx, mode)
            budget.take(len(xs))
            state["evals"] = budget.used
            return out

        if "cost_initial" not in state:
            state["cost_initial"] = float(evaluate([x0], [(delay_specs[0], 0.0)] if delay_specs else [])[0])
        delay = _scan_delay(state, delay_specs[0], x0, evaluate, save) if delay_specs else None

        def fixed() -> list[tuple[ParamSpec, float]]:
            return [(delay_specs[0], float(delay))] if delay_specs else []

        if cont and "cma_done" not in state:
            _run_cma(state, evaluate, x0, fixed, config, budget, save, len(cont))
            state["cma_done"] = True
            save()
        x_best = np.asarray(state.get("x_best", x0), dtype=float)
        f_best = float(state.get("f_best", state["cost_initial"]))
        f_start = float(state["delay_scan"][delay]) if delay is not None else float(state["cost_initial"])
        if f_start < f_best:  # a small budget may leave CMA-ES worse than its (nominal) start
            x_best, f_best = x0, f_start
        if cont:
            x_best, f_best = _levenberg_marquardt(evaluate, x_best, fixed(), config.lm_iterations, budget)
        if delay_specs and delay is not None:
            # profile the delay: re-fit the continuous parameters at each neighbouring delay (the
            # motor lag and a physics step of delay compensate each other, so a re-scan with the
            # other parameters held would stay where CMA-ES started)
            d = delay_specs[0]
            costs = {delay: f_best}
            fits = {delay: x_best}
            for g in (g for g in range(delay - 2, delay + 3) if d.low <= g <= d.high and g != delay):
                if cont and budget.left >= 3 * (len(cont) + 2):
                    fits[g], costs[g] = _levenberg_marquardt(evaluate, x_best, [(d, float(g))], 3, budget)
                else:
                    fits[g], costs[g] = x_best, float(evaluate([x_best], [(d, float(g))])[0])
            state.setdefault("delay_scan_final", {}).update(costs)
            best_g = min(costs, key=costs.get)  # type: ignore[arg-type]
            if best_g != delay:
                delay, x_best, f_best = best_g, fits[best_g], costs[best_g]
        clusters = residual_clusters(len(windows), config.horizon, 3, 4)
        es = state.get("es")
        cma_std = np.asarray(es.sigma * np.sqrt(np.diag(es.C)), dtype=float)[:len(cont)] if es is not None else None
        estimates = _uncertainty(evaluate, x_best, cont, fixed(), budget, cma_std=cma_std, clusters=clusters)
        if delay_specs and delay is not None:
            estimates.append(_delay_estimate(delay_specs[0], int(delay), state.get("delay_scan_final", {}), f_best))
        nominal_links = evaluator.replay.world.nominal["links"] if hasattr(evaluator, "replay") else _nominal_links(robot)
        by = {s.name: s for s in specs}
        for e in estimates:
            e.absolute = quad_absolute_values(robot, nominal_links, by[e.name], e.estimate)
        result = CalibrationResult(
            robot=robot.name, log=log.source, params=estimates, cost_initial=float(state["cost_initial"]),
            cost_final=float(f_best), evaluations=budget.used, cpu_time=time.process_time() - cpu0,
            wall_time=time.time() - wall0, windows=len(windows), horizon=config.horizon, gaps=gaps,
            delay_scan={int(k): float(v) for k, v in {**state.get("delay_scan", {}),
                                                       **state.get("delay_scan_final", {})}.items()},
            history=list(state.get("history", [])))
        result._setup = setup  # type: ignore[attr-defined]  # for plotting
        result._x = (x_best, delay)  # type: ignore[attr-defined]
        result._delay_spec = delay_specs[0] if delay_specs else None  # type: ignore[attr-defined]
    finally:
        evaluator.close()
        if budget.bar is not None:
            budget.bar.close()
    child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    result.cpu_time += (child1.ru_utime + child1.ru_stime) - (child0.ru_utime + child0.ru_stime)
    return result


def _nominal_links(robot: RobotDescription) -> dict[str, Any]:
    from sim2real.sim.quadrotor_world import QuadrotorWorld

    world = QuadrotorWorld(robot, mode="motor", floor=False)
    try:
        return {k: dict(v) for k, v in world.nominal["links"].items()}
    finally:
        world.close()


def _fingerprint(log: HardwareLog, robot: RobotDescription, specs: Sequence[ParamSpec], config: CalibrationConfig,
                 weights: QuadWeights) -> str:
    h = hashlib.sha256()
    h.update(robot.name.encode())
    assert log.odometry is not None and log.motor_command is not None
    h.update(np.ascontiguousarray(log.odometry.position).tobytes())
    h.update(np.ascontiguousarray(log.motor_command.values).tobytes())
    h.update(json.dumps([asdict(s) for s in specs], sort_keys=True, default=str).encode())
    h.update(json.dumps({**config.fingerprint(), "weights": asdict(weights)}, sort_keys=True).encode())
    return h.hexdigest()


def narrowed_quad_profile(result: CalibrationResult, robot: RobotDescription, prior: Any = None, *,
                          width_sigmas: float = 2.0, min_rel_width: float = 0.02) -> dict[str, Any]:
    """Profile dict centred on the estimates (as :func:`sim2real.sysid.report.narrowed_profile`):
    ``uniform[est ± max(k·σ, min_rel_width·est)]`` clipped to the search bounds; parameters flagged
    not identifiable keep their search range; ``prior`` entries of uncalibrated kinds/targets are kept."""
    calibrated = {(QUAD_KINDS[p.name].kind, QUAD_KINDS[p.name].target) for p in result.params}
    params: dict[str, Any] = {}
    if prior is not None:
        for name, entry in prior.to_dict().get("params", {}).items():
            kind = entry.get("param", name)
            targets = entry.get("targets") or [""]
            if kind == "action_latency":
                targets = [""]
            if not any((kind, t) in calibrated for t in targets):
                params[name] = entry
    for p in result.params:
        k = QUAD_KINDS[p.name]
        entry: dict[str, Any] = {"param": k.kind}
        if k.kind == "action_latency":
            lo, hi = (p.ci_low, p.ci_high) if p.identifiable else (p.low, p.high)
            lo, hi = float(np.floor(lo)), float(np.ceil(hi))
            entry.update({"distribution": "constant", "value": lo} if lo == hi else
                         {"distribution": "uniform", "low": lo, "high": hi})
            entry.update(operation="abs", unit="physics_steps")
        else:
            entry["targets"] = [k.target]
            if p.identifiable:
                half = max(width_sigmas * p.std, min_rel_width * abs(p.estimate))
                lo, hi = max(p.low, p.estimate - half), min(p.high, p.estimate + half)
            else:
                lo, hi = p.low, p.high
            entry.update(distribution="uniform", low=float(lo), high=float(hi), operation="scale")
            if k.kind == "link_mass":
                entry["recompute_inertia"] = False
        params[k.entry] = entry
    n_id = sum(p.identifiable for p in result.params)
    return {"description": (f"Calibrated from {Path(result.log).name} for {robot.name}: {n_id}/{len(result.params)} "
                            f"parameters identified, ranges = estimate ± {width_sigmas:g}σ (sim2real calibrate)"),
            "robot": robot.name, "params": params}


def write_quad_outputs(result: CalibrationResult, robot: RobotDescription, out: str | Path, prior: Any = None,
                       truth: dict[str, Any] | None = None, plot: bool = True) -> dict[str, Path]:
    """Write ``out`` (narrowed profile YAML, validated), ``out.json`` and ``out.png``."""
    from sim2real.sysid.report import write_profile_outputs

    return write_profile_outputs(result, robot, out, narrowed_quad_profile(result, robot, prior), plot_quad_overlay,
                                 truth, plot)


def plot_quad_overlay(result: CalibrationResult, path: str | Path, max_windows: int = 6) -> None:
    """Logged vs simulated (nominal and calibrated) position and body rates per axis, a few windows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sim2real.sysid.report import overlay_lines, save_overlay

    setup: QuadReplaySetup = result._setup  # type: ignore[attr-defined]
    x_best, delay = result._x  # type: ignore[attr-defined]
    dspec = result._delay_spec  # type: ignore[attr-defined]
    replay = setup.build()
    try:
        replay.set_fixed([(dspec, 0.0)] if dspec is not None else [])
        before = replay.simulate([min(max(s.neutral, s.low), s.high) for s in setup.specs])
        replay.set_fixed([(dspec, float(delay))] if dspec is not None else [])
        after = replay.simulate([s.from_unit(u) for s, u in zip(setup.specs, x_best)])
    finally:
        replay.close()
    ws = setup.windows
    idx = np.linspace(0, len(ws) - 1, min(max_windows, len(ws))).round().astype(int)
    rows = [("x [m]", ws.pos, 0, 0), ("y [m]", ws.pos, 0, 1), ("z [m]", ws.pos, 0, 2),
            ("p [rad/s]", ws.rates, 3, 0), ("q [rad/s]", ws.rates, 3, 1), ("r [rad/s]", ws.rates, 3, 2)]
    fig, axes = plt.subplots(len(rows), 1, figsize=(10, 9), sharex=True)
    for ax, (label, logged, sig, j) in zip(axes, rows):
        overlay_lines(ax, ws.t, idx, logged[:, :, j], before[sig][:, :, j], after[sig][:, :, j])
        ax.set_ylabel(label, fontsize=7)
    axes[0].legend(loc="upper right", fontsize=7, ncol=3)
    axes[-1].set_xlabel("log time [s]")
    save_overlay(fig, result, path)
