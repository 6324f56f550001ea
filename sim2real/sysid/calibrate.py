"""Offline calibration: fit simulator parameters to a hardware log.

Pipeline (:func:`calibrate`):

1. align the log to the control rate and cut it into windows (:mod:`sim2real.sysid.replay`);
2. if ``delay`` is searched, scan every integer delay (physics steps) at the starting point;
3. CMA-ES (``cma``) over the continuous parameters in normalised ``[0, 1]`` coordinates with
   bounds and restarts (doubling population; the delay is re-scanned at each restart), batches
   evaluated in parallel; its state is pickled atomically after every generation so an
   interrupted run resumes;
4. local stages on a robust (Cauchy) loss of the residual vector — motor-saturation onsets that
   shift with the parameters make isolated effort spikes, which least squares lets dominate: a
   bounded Levenberg–Marquardt polish (finite-difference Jacobian); the delay and the continuous
   parameters jointly (LM re-fit at the neighbouring delays, since a one-step delay error is
   absorbed by the masses); LM restarts ("hops") along the flattest directions of the fit;
5. uncertainty from the full Gauss–Newton covariance at the optimum: the wider of
   ``s² (JᵀJ)⁻¹`` and the window-clustered sandwich estimate (:func:`_gn_std`), widened to
   include local optima the data cannot tell apart (likelihood ratio), and by √(χ²/dof) when the
   final residuals are above the log's own noise floor (:mod:`sim2real.sysid.misfit`: model
   misfit); a parameter whose 95 % interval is wide, whose Jacobian column vanishes (its interval is
   then the whole search range) or whose estimate ends on a search bound (with a wider ``--bounds``
   suggestion) is flagged not identifiable.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim2real._io import atomic_write_bytes
from sim2real.errors import ConfigError, LogError, Sim2RealError
from sim2real.robots import RobotDescription
from sim2real.sysid.align import align
from sim2real.sysid.evaluators import ReplaySetup, make_evaluator
from sim2real.sysid.localfit import _hop, _jacobian, _levenberg_marquardt, _polish_delay
from sim2real.sysid.logs import HardwareLog
from sim2real.sysid.misfit import FitQuality, assess_fit, bound_check, is_physical_low, noise_floor, suggest_bounds
from sim2real.sysid.params import ParamSpec
from sim2real.sysid.replay import (
    ROBUST_LOSSES,
    make_windows,
    residual_blocks,
    robust_residuals,
    robust_scales,
    signal_scales,
)

STATE_VERSION = 1


@dataclass
class CalibrationConfig:
    """Knobs of :func:`calibrate` (all have working defaults).

    :param horizon: window length (control steps); ``stride`` between window starts (default = horizon)
    :param max_windows: cap on windows (evenly spread), bounds the cost of one evaluation
    :param budget: maximum simulator evaluations (each = all windows once), all stages included
    :param cma_fraction: share of the budget CMA-ES may use before the local stages (default: 0.5
        for arms, whose local stages need the rest; 0.75 for the quadrotor calibration)
    :param lm_iterations: Levenberg–Marquardt iterations of the polish; ``delay_lm_iterations`` those
        of each re-fit at a neighbouring delay and of each hop
    :param hops: LM restarts from points along the flattest directions of the fit (:func:`_hop`)
    :param loss: ``cauchy`` (default), ``soft_l1`` or ``linear`` (plain least squares) for the local
        stages; ``loss_scale`` = robust standard deviations per signal × joint where it bends
    """

    horizon: int = 20
    stride: int | None = None
    max_windows: int | None = 24
    w_pos: float = 1.0
    w_vel: float = 0.05
    w_tau: float = 1.0
    budget: int = 1000
    cma_fraction: float | None = None
    popsize: int | None = None
    sigma0: float = 0.25
    restarts: int = 3
    seed: int = 0
    workers: int = 1
    ray_address: str | None = None
    lm_iterations: int = 12
    delay_lm_iterations: int = 5
    hops: int = 2
    loss: str = "cauchy"
    loss_scale: float = 3.0

    def fingerprint(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("workers", "ray_address", "budget"):
            d.pop(k)
        return d


@dataclass
class ParamEstimate:
    name: str
    kind: str
    targets: list[str]
    operation: str
    unit: str
    estimate: float
    ci_low: float
    ci_high: float
    std: float
    identifiable: bool
    low: float
    high: float
    absolute: dict[str, float] = field(default_factory=dict)
    bound: str | None = None  # "low" / "high": the estimate ended on that search bound
    suggested_bounds: str | None = None  # a wider range for --bounds ("name=low:high")


@dataclass
class CalibrationResult:
    robot: str
    log: str
    params: list[ParamEstimate]
    cost_initial: float
    cost_final: float
    evaluations: int
    cpu_time: float
    wall_time: float
    windows: int
    horizon: int
    gaps: list[tuple[float, float]]
    delay_scan: dict[int, float] = field(default_factory=dict)
    history: list[tuple[int, float]] = field(default_factory=list)
    fit: dict[str, Any] = field(default_factory=dict)  # FitQuality.to_dict(): noise floor, chi2/dof, verdict

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["delay_scan"] = {str(k): v for k, v in self.delay_scan.items()}
        return d

    def by_name(self) -> dict[str, ParamEstimate]:
        return {p.name: p for p in self.params}


def minimum_budget(specs: Sequence[ParamSpec], loss: str = "cauchy", quadrotor: bool = False) -> int:
    """Simulator evaluations a calibration of ``specs`` spends whatever its budget, so the smallest
    ``budget`` it can honour: the initial cost, the delay scan over the delay's integer range, the
    delay's neighbours (up to 4), the local fit's first residuals and the uncertainty stage (residuals
    + one Jacobian column per continuous parameter); for arms also the final replay and, with a robust
    ``loss``, the switch to it (with a re-scan of up to 4 delays) and the final plain cost."""
    delays = [s for s in specs if s.integer]
    n_cont = len(specs) - len(delays)
    need = 1 + sum(int(s.high) - int(s.low) + 1 for s in delays) + (4 if delays else 0)
    need += 2 + n_cont if n_cont else 0
    if not quadrotor:
        need += 1  # final replay
        if n_cont and loss != "linear":
            need += 2 + (4 if delays else 0)
    return need


def check_budget(config: CalibrationConfig, specs: Sequence[ParamSpec], quadrotor: bool = False) -> None:
    """Refuse a ``config.budget`` below :func:`minimum_budget` (it would silently run more evaluations)."""
    need = minimum_budget(specs, config.loss, quadrotor)
    if config.budget < need:
        raise ConfigError(f"expected at least {need} simulator evaluations for these parameters (initial cost, "
                          f"delay scan, uncertainty), got {config.budget}", path=("--budget",))


class _Budget:
    def __init__(self, total: int, bar: Any) -> None:
        self.total, self.used, self.bar = total, 0, bar

    def take(self, n: int) -> None:
        self.used += n
        if self.bar is not None:
            self.bar.update(n)

    @property
    def left(self) -> int:
        return self.total - self.used

    @classmethod
    def start(cls, total: int, progress: bool, used: int = 0) -> _Budget:
        """A budget of ``total`` simulations (with a tqdm bar if ``progress``) with ``used`` already spent."""
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, desc="calibrate", unit="sim", dynamic_ncols=True)
        budget = cls(total, bar)
        budget.take(used)
        return budget


def _load_state(state_path: str | os.PathLike[str] | None, resume: bool, fp: str) -> dict[str, Any]:
    """A fresh calibration state for fingerprint ``fp``, or the one pickled at ``state_path`` when ``resume``
    and that file exists (it must have the same fingerprint)."""
    state: dict[str, Any] = {"version": STATE_VERSION, "fingerprint": fp}
    if resume and state_path and Path(state_path).is_file():
        try:
            loaded = pickle.loads(Path(state_path).read_bytes())
        except Exception as exc:
            raise Sim2RealError(f"{state_path}: cannot read calibration state ({exc})") from None
        if loaded.get("fingerprint") != fp:
            raise Sim2RealError(f"{state_path}: calibration state is for a different log, parameter set or "
                                "config; remove it or drop --resume")
        state = loaded
    return state


def _fingerprint(log: HardwareLog, robot: RobotDescription, specs: Sequence[ParamSpec], config: CalibrationConfig) -> str:
    js = log.require_joint_states()
    h = hashlib.sha256()
    h.update(robot.name.encode())
    h.update(np.ascontiguousarray(js.position).tobytes())
    h.update(json.dumps([asdict(s) for s in specs], sort_keys=True, default=str).encode())
    h.update(json.dumps(config.fingerprint(), sort_keys=True).encode())
    return h.hexdigest()


def calibrate(log: HardwareLog, robot: RobotDescription, specs: Sequence[ParamSpec],
              config: CalibrationConfig | None = None, *, state_path: str | os.PathLike[str] | None = None,
              resume: bool = False, progress: bool = True) -> CalibrationResult:
    """Fit ``specs`` to ``log``; see the module docstring for the stages.

    :param state_path: where the CMA-ES state is pickled after each generation
    :param resume: continue from ``state_path`` (it must come from the same log, parameters and config)
    :raises LogError: log unusable (no overlap, too short for one window)
    """
    if robot.kind == "quadrotor":  # odometry + motor commands: sim2real.sysid.quad_calibrate
        from sim2real.sysid.quad_calibrate import calibrate_quadrotor

        return calibrate_quadrotor(log, robot, specs, config, state_path=state_path, resume=resume, progress=progress)
    import resource

    config = config or CalibrationConfig()
    check_budget(config, specs)
    wall0, cpu0 = time.time(), time.process_time()
    child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    segments, gaps = align(log, robot.control.rate_hz)
    delay_specs = [s for s in specs if s.integer]
    cont = [s for s in specs if not s.integer]
    if len(delay_specs) > 1:
        raise Sim2RealError("delay given more than once")
    # windows carry enough command history for the longest searched delay (+1 for the command in effect)
    past = max(3, int(np.ceil(delay_specs[0].high / robot.control.substeps)) + 1) if delay_specs else 3
    try:
        windows = make_windows(segments, config.horizon, stride=config.stride, past=past,
                               max_windows=config.max_windows)
    except ValueError as exc:
        raise LogError(f"{log.source}: {exc}") from None
    if config.loss not in ROBUST_LOSSES:
        raise Sim2RealError(f"unknown calibration loss {config.loss!r}; expected one of {list(ROBUST_LOSSES)}")
    setup = ReplaySetup(str(robot.file), windows, cont, signal_scales(segments), config.w_pos, config.w_vel,
                        config.w_tau)
    fp = _fingerprint(log, robot, specs, config)
    state = _load_state(state_path, resume, fp)

    def save() -> None:
        if state_path:
            atomic_write_bytes(state_path, pickle.dumps(state))

    budget = _Budget.start(config.budget, progress, int(state.get("evals", 0)))
    evaluator = make_evaluator(setup, config.workers, config.ray_address)
    try:
        x0 = np.array([s.to_unit(min(max(s.neutral, s.low), s.high)) for s in cont])
        to_vals = lambda x: [s.from_unit(u) for s, u in zip(cont, x)]

        def evaluate(xs: Sequence[np.ndarray], fixed: Any, mode: str = "cost", per_item: bool = False) -> list[Any]:
            fx = fixed if per_item else [fixed] * len(xs)
            if robust is None or mode not in ("cost", "residuals"):
                out = evaluator.map([to_vals(x) for x in xs], fx, mode)
            else:  # robust loss: transform the residuals here (cost = mean of the transformed squares)
                out = [robust_residuals(np.asarray(o), robust, config.loss)
                       for o in evaluator.map([to_vals(x) for x in xs], fx, "residuals")]
                if mode == "cost":
                    out = [float(np.mean(o * o)) for o in out]
            budget.take(len(xs))
            state["evals"] = budget.used
            return out

        robust: np.ndarray | None = state.get("robust")  # per-residual loss scales, once switched on
        n_signals = 3 if windows.tau is not None and config.w_tau > 0 else 2
        if "cost_initial" not in state:
            fixed0 = [(delay_specs[0], 0.0)] if delay_specs else []
            state["cost_initial"] = float(evaluate([x0], fixed0)[0])
            state["x_initial"] = x0
        # stage 1: delay scan at the starting point
        delay = _scan_delay(state, delay_specs[0], x0, evaluate, save) if delay_specs else None
        fixed = (lambda: [(delay_specs[0], float(delay))] if delay_specs else [])

        def rescan() -> None:
            """At a CMA-ES restart: re-scan the delay ±2 around its estimate at the best point so far
            (the scan at the neutral start can be off by a step, and the continuous parameters then
            compensate for it)."""
            nonlocal delay
            if not delay_specs or "x_best" not in state:
                return
            d = delay_specs[0]
            near = [g for g in range(delay - 2, delay + 3) if d.low <= g <= d.high and g != delay]
            xb = np.asarray(state["x_best"], dtype=float)
            vals = evaluate([xb] * len(near), [[(d, float(g))] for g in near], per_item=True)
            costs = {g: float(c) for g, c in zip(near, vals)}
            best_g = min(costs, key=costs.get) if costs else delay
            if costs and costs[best_g] < float(state["f_best"]):
                delay = state["delay"] = int(best_g)
                state["f_best"] = costs[best_g]

        def go_robust() -> None:
            """Switch every later cost to the robust loss, scaled from the residuals at the best point."""
            nonlocal robust
            if config.loss == "linear" or robust is not None or "x_best" not in state:
                return
            r = np.asarray(evaluate([np.asarray(state["x_best"])], fixed(), "residuals")[0])
            robust = state["robust"] = robust_scales(r, residual_blocks(*windows.cmd.shape, n_signals),
                                                     config.loss_scale)
            state["f_best"] = float(np.mean(robust_residuals(r, robust, config.loss) ** 2))
            rescan()

        # stage 2: CMA-ES with restarts (plain least squares for the first half, then robust)
        if cont and "cma_done" not in state:
            _run_cma(state, evaluate, x0, fixed, config, budget, save, len(cont), rescan, default_fraction=0.5,
                     switch=go_robust)
            state["cma_done"] = True
            save()
        x_best = np.asarray(state.get("x_best", x0), dtype=float)
        f_best = float(state.get("f_best", state["cost_initial"]))
        if delay_specs and not cont:
            f_best = float(state["delay_scan"][delay])
        # stage 3: Levenberg–Marquardt polish, then the delay and the continuous parameters jointly
        reserve = len(cont) + 5  # the uncertainty stage's Jacobian, the final plain cost, LM trial steps
        if cont and robust is None and config.loss != "linear":  # CMA-ES ended before the switch
            state.setdefault("x_best", x_best)
            go_robust()
            x_best, f_best = np.asarray(state["x_best"], dtype=float), float(state["f_best"])
        lm_info: dict[str, Any] = {}
        optima: list[tuple[np.ndarray, float]] = []
        if cont:
            x_best, f_best = _levenberg_marquardt(evaluate, x_best, fixed(), config.lm_iterations, budget,
                                                  reserve=reserve, info=lm_info)
        if delay_specs:
            delay, x_best, f_best = _polish_delay(evaluate, delay_specs[0], int(delay), x_best, f_best, cont, config,
                                                  budget, reserve, state.setdefault("delay_scan_final", {}))
        if cont:
            x_best, f_best, optima = _hop(evaluate, x_best, f_best, lm_info, fixed(), config, budget, reserve)
        # stage 4: uncertainty
        clusters = residual_clusters(*windows.cmd.shape, n_signals)
        es = state.get("es")
        cma_std = None
        if es is not None and config.lm_iterations <= 0:  # no local fit: the search distribution is all we have
            cma_std = np.asarray(es.sigma * np.sqrt(np.diag(es.C)), dtype=float)[:len(cont)]
        n_res = int(lm_info.get("n", 0))
        # local optima that are statistically indistinguishable from the best (likelihood-ratio
        # Δχ² = N·Δf/f ≤ 3.84) widen the intervals: the data cannot tell them apart
        alternatives = [xo for xo, fo in optima if n_res and n_res * (fo - f_best) / max(f_best, 1e-300) <= 3.84]
        # the final residuals against the log's own noise floor: a misfit widens every interval
        fit = _fit_quality(log, windows, evaluate([x_best], fixed(), "simulate")[0], setup.scales, len(specs), config)
        estimates = _uncertainty(evaluate, x_best, cont, fixed(), budget, cma_std=cma_std, clusters=clusters,
                                 alternatives=alternatives, inflation=fit.inflation)
        if delay_specs:
            estimates.append(_delay_estimate(delay_specs[0], int(delay), state.get("delay_scan_final", {}), f_best,
                                             inflation=fit.inflation))
        if robust is not None:  # report the plain mean squared residual, comparable with cost_initial
            robust = None
            f_best = float(evaluate([x_best], fixed())[0])
        world = evaluator.replay.world if hasattr(evaluator, "replay") else None
        _fill_absolute(estimates, specs, robot, world)
        result = CalibrationResult(
            robot=robot.name, log=log.source, params=estimates, cost_initial=float(state["cost_initial"]),
            cost_final=float(f_best), evaluations=budget.used, cpu_time=time.process_time() - cpu0,
            wall_time=time.time() - wall0, windows=len(windows), horizon=config.horizon, gaps=gaps,
            delay_scan={int(k): float(v) for k, v in {**state.get("delay_scan", {}),
                                                       **state.get("delay_scan_final", {})}.items()},
            history=list(state.get("history", [])), fit=fit.to_dict())
        result._setup = setup  # type: ignore[attr-defined]  # for plotting
        result._x = (x_best, delay)  # type: ignore[attr-defined]
    finally:
        evaluator.close()
        if budget.bar is not None:
            budget.bar.close()
    child1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # worker processes, reaped by close()
    result.cpu_time += (child1.ru_utime + child1.ru_stime) - (child0.ru_utime + child0.ru_stime)
    return result


def _scan_delay(state: dict[str, Any], d: ParamSpec, x0: np.ndarray, evaluate: Callable[..., list[Any]],
                save: Callable[[], None]) -> int:
    """Delay (physics steps) of least cost at ``x0`` over the integer range of ``d``, scanned once:
    ``state["delay_scan"]`` (cost per delay) and ``state["delay"]`` are kept for a resume."""
    if "delay" not in state:
        grid = list(range(int(d.low), int(d.high) + 1))
        costs = [float(c) for c in evaluate([x0] * len(grid), [[(d, float(g))] for g in grid], per_item=True)]
        state["delay_scan"] = dict(zip(grid, costs))
        state["delay"] = grid[int(np.argmin(costs))]
        save()
    return int(state["delay"])


def _run_cma(state: dict[str, Any], evaluate: Callable[..., list[Any]], x0: np.ndarray,
             fixed: Callable[[], list[Any]], config: CalibrationConfig, budget: _Budget,
             save: Callable[[], None], dim: int, rescan: Callable[[], None] | None = None,
             default_fraction: float = 0.75, switch: Callable[[], None] | None = None) -> None:
    """CMA-ES with restarts until its share of the budget is used. With ``switch``, the first run is
    cut at half that share and ``switch()`` is called before the next restart (calibrate switches
    to the robust loss there)."""
    import cma

    frac = config.cma_fraction if config.cma_fraction is not None else default_fraction
    cma_budget = int(config.budget * frac)
    base_pop = config.popsize or (4 + int(3 * np.log(max(dim, 1))))
    if dim == 1:
        base_pop = max(base_pop, 6)
    state.setdefault("restart", 0)
    state.setdefault("history", [])
    switch_at = budget.used + (cma_budget - budget.used) // 2 if switch is not None else None

    def due() -> bool:
        return switch_at is not None and not state.get("switched") and budget.used >= switch_at

    while budget.used < cma_budget:
        es = state.get("es")
        if es is None:
            r = state["restart"]
            start = np.asarray(state.get("x_best", x0), dtype=float)
            opts = {"bounds": [0.0, 1.0], "popsize": base_pop * 2 ** r, "seed": config.seed + 1 + r,
                    "verbose": -9, "tolfun": 1e-9, "tolx": 1e-5}
            sigma = config.sigma0 if r == 0 else config.sigma0 / 2
            if dim == 1:  # cma needs >= 2 dimensions; pad with a dummy coordinate
                start = np.append(start, 0.5)
            es = cma.CMAEvolutionStrategy(start, sigma, opts)
            state["es"] = es
        while not es.stop() and budget.used < cma_budget and not due():
            xs = es.ask()
            n_take = min(len(xs), max(0, cma_budget - budget.used))
            if n_take < len(xs) // 2:
                break
            fs = evaluate([x[:dim] for x in xs], fixed())
            es.tell(xs, fs)
            i = int(np.argmin(fs))
            if fs[i] < state.get("f_best", np.inf):
                state["f_best"], state["x_best"] = float(fs[i]), np.asarray(xs[i][:dim], dtype=float)
            state["history"].append((budget.used, float(state["f_best"])))
            save()
        else:
            if due() and switch is not None:
                state["switched"] = True
                switch()
                state["restart"] += 1
                state["es"] = None
                save()
                continue
            if budget.used < cma_budget and state["restart"] < config.restarts:
                state["restart"] += 1
                state["es"] = None
                if rescan is not None:
                    rescan()
                save()
                continue
        break


def _uncertainty(evaluate: Callable[..., list[Any]], x: np.ndarray, specs: Sequence[ParamSpec], fixed: list[Any],
                 budget: _Budget, h: float = 5e-2, cma_std: np.ndarray | None = None,
                 clusters: np.ndarray | None = None, alternatives: Sequence[np.ndarray] = (),
                 inflation: float = 1.0) -> list[ParamEstimate]:
    """Gauss–Newton standard deviations in unit coordinates, widened to the final CMA-ES
    distribution's where that is wider (the cost surface of a contact-rich simulator is rugged,
    so the local curvature alone can be over-confident; the Jacobian uses wide steps, ``h`` = 5 %
    of each search range, for the same reason), then multiplied by ``inflation`` ≥ 1 (the misfit
    factor √(χ²/dof) of :func:`sim2real.sysid.misfit.assess_fit`)."""
    if not specs:
        return []
    r = np.asarray(evaluate([x], fixed, "residuals")[0])
    jac = _jacobian(evaluate, x, r, fixed, h)
    std_u = _gn_std(jac, r, clusters)
    if cma_std is not None and cma_std.shape == std_u.shape:
        std_u = np.maximum(std_u, cma_std)
    std_u = std_u * max(float(inflation), 1.0)
    out = []
    col = np.sqrt(np.diag(jac.T @ jac))
    for i, s in enumerate(specs):
        v = s.from_unit(x[i])
        if not col[i] > 1e-8 * max(col.max(), 1e-300):  # the fit does not depend on it: the data say nothing
            std_u[i] = 0.5
        lo_u, hi_u = x[i] - 1.96 * std_u[i], x[i] + 1.96 * std_u[i]
        for alt in alternatives:
            lo_u, hi_u = min(lo_u, float(alt[i])), max(hi_u, float(alt[i]))
        lo, hi = s.from_unit(max(lo_u, 0.0)), s.from_unit(min(hi_u, 1.0))
        # identifiable: the Jacobian column is not ~0 and the 95 % interval is within ±25 % of the
        # estimate (or, for values near 0, narrower than a quarter of the search range)
        rel_ok = (hi - lo) < 0.5 * abs(v) if abs(v) > 0.05 * (s.high - s.low) else (hi_u - lo_u) < 0.25
        # an estimate on a search bound is a compensation artefact or a too-narrow range, not an identification
        side = bound_check(float(x[i]))
        ident = bool(col[i] > 1e-8 * max(col.max(), 1e-300) and (hi_u - lo_u) < 0.5 and rel_ok and side is None)
        dv = (np.log(s.high) - np.log(s.low)) * v if s.log else (s.high - s.low)
        out.append(ParamEstimate(s.name, s.kind, list(s.targets), s.operation, s.unit, float(v), float(lo), float(hi),
                                 float(abs(dv) * std_u[i]), ident, s.low, s.high, bound=side,
                                 suggested_bounds=_suggestion(s, side)))
    return out


def _suggestion(s: ParamSpec, side: str | None) -> str | None:
    """``name=low:high`` widening the bound ``side`` of ``s`` (None when on no bound, or on a lower
    bound of 0 that is a physical limit)."""
    if side is None or (side == "low" and is_physical_low(s.operation, s.low)):
        return None
    return suggest_bounds(s.name, s.low, s.high, side, log=s.log, integer=s.integer,
                          nonnegative=s.operation == "abs" and s.low >= 0)[2]


def _fit_quality(log: HardwareLog, windows: Any, sim: Sequence[np.ndarray], scales: Sequence[np.ndarray],
                 n_params: int, config: CalibrationConfig) -> FitQuality:
    """χ²/dof of the simulated ``(q, qd, tau)`` ``(W, H, n)`` against the logged windows, in units of
    the noise floor each signal has in the raw log (:func:`noise_floor`); signals with weight 0 are
    left out, as in the fit."""
    js = log.require_joint_states()
    res = {"position": sim[0] - windows.q}
    noise = {"position": noise_floor(js.position)}
    sc = {"position": scales[0]}
    if config.w_vel > 0:
        res["velocity"], noise["velocity"], sc["velocity"] = sim[1] - windows.qd, noise_floor(js.velocity), scales[1]
    if windows.tau is not None and config.w_tau > 0:
        res["effort"], noise["effort"], sc["effort"] = sim[2] - windows.tau, noise_floor(js.effort), scales[2]
    return assess_fit(res, noise, n_params, sc, units={"position": "rad", "velocity": "rad/s", "effort": "N·m"})


def _gn_std(jac: np.ndarray, r: np.ndarray, clusters: np.ndarray | None) -> np.ndarray:
    """Standard deviations (unit coordinates) from the full Gauss–Newton covariance at the optimum.

    Two estimates, the wider one per parameter is kept: the textbook ``s² (JᵀJ)⁻¹`` with ``s²``
    the residual variance, and the window-clustered sandwich ``(JᵀJ)⁻¹ (Σ_w J_wᵀ r_w r_wᵀ J_w)
    (JᵀJ)⁻¹ · W/(W−1)``: residuals within a window are strongly correlated (a shared initial-state
    error, accumulated model error), which the plain formula ignores and which made its intervals
    over-confident. Both use the full covariance (compensating parameters widen each other), not
    per-parameter curvature.

    :param jac: ``(N, p)`` Jacobian of the residuals ``r`` ``(N,)``
    :param clusters: ``(N,)`` window index of each residual, or ``None`` (plain formula only)
    """
    n, p = jac.shape
    inv = np.linalg.pinv(jac.T @ jac, rcond=1e-10)
    var = np.diag(inv) * float(r @ r) / max(n - p, 1)
    if clusters is not None and clusters.shape == (n,):
        w = int(clusters.max()) + 1
        if w > 1:
            g = np.zeros((w, p))
            np.add.at(g, clusters, jac * r[:, None])
            var = np.maximum(var, np.diag(inv @ (g.T @ g) @ inv) * w / (w - 1))
    return np.sqrt(np.clip(var, 0.0, None))


def residual_clusters(n_windows: int, horizon: int, n_joints: int, n_signals: int) -> np.ndarray:
    """Window index of each entry of :meth:`WindowReplay.residuals` (``n_signals`` blocks of ``(W, H, n)``)."""
    return np.tile(np.repeat(np.arange(n_windows), horizon * n_joints), n_signals)


def _delay_estimate(spec: ParamSpec, delay: int, scan: dict[int, float], f_best: float,
                    inflation: float = 1.0) -> ParamEstimate:
    """Integer delay: the interval is every scanned delay whose cost is within 5 % of the best; with
    ``inflation`` > 1 (model misfit) each side is widened to ``ceil(inflation · max(side, 1))`` steps
    (clipped to the search range). Identified when the interval spans at most ``max(2, delay/2)`` steps
    and the estimate is more than one step from a bound of the search range."""
    ok = [g for g, c in scan.items() if c <= f_best * 1.05 + 1e-12] or [delay]
    lo, hi = min(ok + [delay]), max(ok + [delay])
    if inflation > 1.0:
        lo = max(int(spec.low), delay - int(np.ceil(inflation * max(delay - lo, 1))))
        hi = min(int(spec.high), delay + int(np.ceil(inflation * max(hi - delay, 1))))
    steps = spec.high - spec.low
    side = bound_check(spec.to_unit(delay), integer_steps=steps)
    ident = bool(hi - lo <= max(2.0, 0.5 * delay) and side is None)
    return ParamEstimate(spec.name, spec.kind, [], "abs", spec.unit, float(delay), float(lo), float(hi),
                         float((hi - lo) / 3.92), ident, spec.low, spec.high, bound=side,
                         suggested_bounds=_suggestion(spec, side))


def _fill_absolute(estimates: list[ParamEstimate], specs: Sequence[ParamSpec], robot: RobotDescription, world: Any) -> None:
    from sim2real.sysid.params import absolute_values

    if world is None:
        from sim2real.sim.world import PhysicsWorld

        world = PhysicsWorld(robot, floor=False)
        close = True
    else:
        close = False
    try:
        by = {s.name: s for s in specs}
        for e in estimates:
            e.absolute = absolute_values(world, by[e.name], e.estimate)
    finally:
        if close:
            world.close()
