"""Held-out validation of a calibration: replay a log the fit never saw with the nominal and with
the calibrated parameters and compare the errors, signal by signal.

A calibration that lowered its own cost can still have fitted the log's quirks (noise, one
trajectory's excitation) or traded a model error against wrong parameters. Replaying another log
of the same robot — same windows, same replay as the fit (:class:`~sim2real.sysid.replay.WindowReplay`)
— shows whether the calibrated simulator predicts the robot better than the nominal one.
``sim2real calibrate --validate HELDOUT --calibrated calibrated.json`` runs it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sim2real._io import atomic_write_text
from sim2real.errors import ConfigError, LogError, Sim2RealError
from sim2real.robots import RobotDescription
from sim2real.sysid.logs import HardwareLog
from sim2real.sysid.misfit import assess_fit, noise_floor
from sim2real.sysid.params import KINDS, ParamSpec

SIGNALS = (("position", "rad"), ("velocity", "rad/s"), ("effort", "N·m"))


def load_calibration(path: str | Path, robot: RobotDescription) -> tuple[list[ParamSpec], list[float]]:
    """The searched parameters and their estimates from a ``calibrated.json`` written by ``sim2real calibrate``.

    :raises ConfigError: file missing or not a calibration result of an arm, or for another robot
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError("calibration result not found (the .json written by sim2real calibrate)", file=str(path))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"not a calibration result ({type(exc).__name__}: {exc})", file=str(path)) from None
    if not isinstance(data, dict) or not isinstance(data.get("params"), list) or "robot" not in data:
        raise ConfigError("not a calibration result: expected 'robot' and a 'params' list", file=str(path))
    if data["robot"] != robot.name:
        raise ConfigError(f"calibrated for robot {data['robot']!r}, not {robot.name!r}", file=str(path),
                          path=("robot",))
    specs, values = [], []
    for i, p in enumerate(data["params"]):
        try:
            name, kind, op = str(p["name"]), str(p["kind"]), str(p["operation"])
            low, high, est = float(p["low"]), float(p["high"]), float(p["estimate"])
            targets = tuple(str(t) for t in p.get("targets", []))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"bad parameter entry ({exc})", file=str(path), path=("params", i)) from None
        short = name.partition(":")[0]
        if short not in KINDS or KINDS[short].kind != kind:
            raise ConfigError(f"parameter {name!r} of kind {kind!r} is not a joint-space calibration parameter",
                              file=str(path), path=("params", i))
        k = KINDS[short]
        universe = set(robot.links) if k.on == "link" else set(robot.joint_names)
        if k.on == "global":
            targets = ()
        elif not targets or not set(targets) <= universe:
            raise ConfigError(f"parameter {name!r}: targets {list(targets)} are not {k.on}s of {robot.name}",
                              file=str(path), path=("params", i))
        specs.append(ParamSpec(name=name, short=short, kind=kind, targets=targets, operation=op, low=low, high=high,
                               unit=str(p.get("unit", k.unit)), integer=short == "delay"))
        values.append(est)
    if not specs:
        raise ConfigError("no calibrated parameters", file=str(path), path=("params",))
    return specs, values


@dataclass
class SignalError:
    """Replay error of one signal: RMS of simulated − logged per joint ``(n,)`` and over all joints."""

    unit: str
    rms_nominal: list[float]
    rms_calibrated: list[float]
    rms_nominal_all: float
    rms_calibrated_all: float

    @property
    def ratio(self) -> float:
        """Calibrated / nominal error (< 1: the calibration predicts the held-out log better)."""
        return self.rms_calibrated_all / self.rms_nominal_all if self.rms_nominal_all > 0 else float("nan")


@dataclass
class ValidationResult:
    robot: str
    log: str
    calibrated: str
    windows: int
    horizon: int
    joint_names: list[str]
    signals: dict[str, SignalError]
    cost_nominal: float
    cost_calibrated: float
    parameters: dict[str, float] = field(default_factory=dict)
    # χ²/dof against the held-out log's own noise floor (sim2real.sysid.misfit.assess_fit), per parameter set
    fit_nominal: dict[str, Any] = field(default_factory=dict)
    fit_calibrated: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for name, s in self.signals.items():
            d["signals"][name]["ratio"] = s.ratio
        return d


def validate(log: HardwareLog, robot: RobotDescription, specs: Sequence[ParamSpec], values: Sequence[float], *,
             calibrated: str = "", horizon: int = 20, max_windows: int | None = None) -> ValidationResult:
    """Replay ``log`` window by window with the robot's nominal parameters and with ``values`` of ``specs``.

    :param horizon: window length (control steps); ``max_windows``: evenly spread subset (None = all)
    :raises LogError: log unusable (no overlap, too short for one window)
    :returns: the result; its private ``_plot`` holds the windows and both simulations for :func:`write_validation`
    """
    from sim2real.sysid.align import align
    from sim2real.sysid.replay import WindowReplay, make_windows, signal_scales

    if robot.kind != "arm":
        raise Sim2RealError(f"--validate supports joint-space robots (arms); {robot.name} is a {robot.kind}")
    if horizon < 1:
        raise ConfigError(f"expected a horizon >= 1, got {horizon}", path=("--horizon",))
    segments, _gaps = align(log, robot.control.rate_hz)
    delay = max([v for s, v in zip(specs, values) if s.integer] or [0.0])
    past = max(3, int(np.ceil(delay / robot.control.substeps)) + 1)
    try:
        ws = make_windows(segments, horizon, past=past, max_windows=max_windows)
    except ValueError as exc:
        raise LogError(f"{log.source}: {exc}") from None
    scales = signal_scales(segments)
    replay = WindowReplay(robot, ws, list(specs), scales)
    try:
        nominal_replay = WindowReplay(robot, ws, [], scales)
        try:
            before = nominal_replay.simulate([])
            cost_nominal = nominal_replay.cost([])
        finally:
            nominal_replay.close()
        after = replay.simulate(list(values))
        cost_calibrated = replay.cost(list(values))
    finally:
        replay.close()
    logged = (ws.q, ws.qd, ws.tau)
    js = log.require_joint_states()
    raw = (js.position, js.velocity, js.effort)
    signals: dict[str, SignalError] = {}
    res0: dict[str, np.ndarray] = {}
    res1: dict[str, np.ndarray] = {}
    noise: dict[str, np.ndarray] = {}
    sc: dict[str, np.ndarray] = {}
    for c, (name, unit) in enumerate(SIGNALS):
        if logged[c] is None:
            continue
        e0, e1 = before[c] - logged[c], after[c] - logged[c]
        signals[name] = SignalError(unit, np.sqrt(np.mean(e0 ** 2, axis=(0, 1))).tolist(),
                                    np.sqrt(np.mean(e1 ** 2, axis=(0, 1))).tolist(),
                                    float(np.sqrt(np.mean(e0 ** 2))), float(np.sqrt(np.mean(e1 ** 2))))
        res0[name], res1[name], noise[name], sc[name] = e0, e1, noise_floor(raw[c]), scales[c]
    units = dict(SIGNALS)
    res = ValidationResult(robot=robot.name, log=log.source, calibrated=str(calibrated), windows=len(ws),
                           horizon=horizon, joint_names=list(robot.joint_names), signals=signals,
                           cost_nominal=float(cost_nominal), cost_calibrated=float(cost_calibrated),
                           parameters={s.name: float(v) for s, v in zip(specs, values)},
                           fit_nominal=assess_fit(res0, noise, 0, sc, units).to_dict(),
                           fit_calibrated=assess_fit(res1, noise, 0, sc, units).to_dict())
    res._plot = (ws, before, after)  # type: ignore[attr-defined]
    return res


def write_validation(result: ValidationResult, out: str | Path, plot: bool = True) -> dict[str, Path]:
    """Write ``out`` (JSON), the per-joint errors as ``out.csv`` and, if ``plot``, ``out.png``
    (logged / nominal / calibrated trajectories of a few windows), all atomically."""
    from sim2real.sysid.report import joint_signals_figure, save_figure

    out = Path(out)
    paths = {"json": out.with_suffix(".json"), "csv": out.with_suffix(".csv")}
    atomic_write_text(paths["json"], json.dumps(result.to_dict(), indent=2))
    lines = ["signal,joint,unit,rms_nominal,rms_calibrated"]
    for name, s in result.signals.items():
        for j, joint in enumerate(result.joint_names):
            lines.append(f"{name},{joint},{s.unit},{s.rms_nominal[j]:.9g},{s.rms_calibrated[j]:.9g}")
        lines.append(f"{name},all,{s.unit},{s.rms_nominal_all:.9g},{s.rms_calibrated_all:.9g}")
    atomic_write_text(paths["csv"], "\n".join(lines) + "\n")
    if plot and hasattr(result, "_plot"):
        ws, before, after = result._plot  # type: ignore[attr-defined]
        fig = joint_signals_figure(ws, before, after, result.joint_names, labels=("nominal", "calibrated"))
        paths["png"] = out.with_suffix(".png")
        save_figure(fig, f"{result.robot}: held-out {Path(result.log).name}, cost nominal {result.cost_nominal:.4g} "
                         f"→ calibrated {result.cost_calibrated:.4g}", paths["png"])
    return paths


def validation_table(result: ValidationResult) -> str:
    """Plain-text table: RMS replay error per signal, nominal vs calibrated."""
    from sim2real.sysid.report import table

    rows = [(name, s.unit, s.rms_nominal_all, s.rms_calibrated_all, s.ratio) for name, s in result.signals.items()]
    rows.append(("cost (normalised)", "-", result.cost_nominal, result.cost_calibrated,
                 result.cost_calibrated / result.cost_nominal if result.cost_nominal > 0 else float("nan")))
    c0, c1 = result.fit_nominal.get("chi2_dof", float("nan")), result.fit_calibrated.get("chi2_dof", float("nan"))
    rows.append(("chi2/dof vs noise floor", "-", c0, c1, c1 / c0 if c0 > 0 else float("nan")))
    return table(rows, ("signal", "unit", "rms_nominal", "rms_calibrated", "calibrated/nominal"))
