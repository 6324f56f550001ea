"""Honesty checks of a calibration: the log's own noise floor, the fit's χ² against it, and
estimates that ended on a search bound.

A least-squares interval says how well the data pin a parameter *if the model is right*. When the
simulator cannot reproduce the robot (a drive it does not model, a delay outside the search
range), the fit converges to a tight, wrong compromise. Three checks catch that:

* :func:`noise_floor` estimates the measurement noise of every logged signal from the log itself;
* :func:`assess_fit` compares the final residuals with it (χ²/dof in noise units) and returns the
  verdict and the factor ``√(χ²/dof)`` the intervals are widened by (never narrowed);
* :func:`bound_check` / :func:`suggest_bounds` flag estimates on (or within a margin of) a search
  bound and propose a wider ``--bounds`` range.

Robot-agnostic: the functions take plain arrays per signal. The arm calibration runs all three;
the bound checks also flag the quadrotor calibration's estimates (shared interval code).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

# an estimate within this share of the (normalised) search range of a bound is "on the bound"
BOUND_MARGIN = 0.05
# χ²/dof above this is a misfit: the residual RMS is more than √2 × the noise floor (a perfect
# model scores ≈ 1; the noise-floor estimate itself is good to about ±20 %)
MISFIT_CHI2 = 2.0
# noise floors are never below this share of the signal's standard deviation (a resolution limit,
# so a noise-free simulated log does not give an infinite χ²)
MIN_RELATIVE_NOISE = 1e-3


def noise_floor(x: np.ndarray, window: int = 7, polyorder: int = 4) -> np.ndarray:
    """Standard deviation of white measurement noise per column of ``x``, from the log alone.

    Method: residual of a local polynomial (Savitzky–Golay, ``scipy.signal.savgol_filter``, cubic–
    quartic over ``window`` samples) fit. For white noise of std ``σ`` that residual has std
    ``σ·√(1 − c₀)`` (``c₀`` = the filter's centre coefficient), so ``σ = robust std / √(1 − c₀)``.
    The robust std is the RMS of the residuals within 3 median-absolute-deviation standard deviations
    (1.4826 · median |residual|), corrected for the truncation: it ignores the few samples where the
    signal itself is not locally polynomial (steps, contacts) at nearly the efficiency of a plain
    std. A short window keeps the smooth signal out of the residual: a 1.5 Hz tone sampled at 20 Hz
    leaks ~1e-5 of its amplitude.

    :param x: ``(N, n)`` uniformly sampled signal (one column per joint/axis); NaN columns give NaN
    :returns: ``(n,)`` noise std in the unit of ``x``; NaN for columns with NaN or fewer than ``window`` samples
    """
    from scipy.signal import savgol_coeffs, savgol_filter

    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    out = np.full(x.shape[1], np.nan)
    if x.shape[0] < window:
        return out
    from scipy.stats import truncnorm

    c0 = float(savgol_coeffs(window, polyorder)[window // 2])
    clip = 3.0
    trunc_var = float(truncnorm.var(-clip, clip))  # variance of a unit normal kept within ±clip
    for j in np.flatnonzero(~np.isnan(x).any(axis=0)):
        res = x[:, j] - savgol_filter(x[:, j], window, polyorder, mode="interp")
        s_mad = 1.4826 * float(np.median(np.abs(res)))
        kept = res[np.abs(res) <= clip * s_mad]
        s = float(np.sqrt(np.mean(kept ** 2) / trunc_var)) if kept.size else s_mad
        out[j] = s / np.sqrt(1.0 - c0)
    return out


@dataclass
class FitQuality:
    """How the final residuals compare with the log's noise floor.

    :param noise_floor: per signal (``position``, ...), the noise std per joint/axis in the signal's unit
    :param chi2_dof: Σ (residual / noise)² / (N − p) over every scored residual
    :param chi2_dof_per_signal: the same per signal (dof = its residual count)
    :param inflation: factor the intervals were widened by, ``max(1, √(χ²/dof))``
    :param verdict: ``consistent`` (χ²/dof ≤ ``threshold``) or ``misfit``
    """

    noise_floor: dict[str, list[float]]
    chi2_dof: float
    chi2_dof_per_signal: dict[str, float]
    dof: int
    inflation: float
    verdict: str
    threshold: float = MISFIT_CHI2
    message: str = ""
    units: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def assess_fit(residuals: dict[str, np.ndarray], noise: dict[str, np.ndarray], n_params: int,
               scales: dict[str, np.ndarray] | None = None, units: dict[str, str] | None = None) -> FitQuality:
    """χ²/dof of the final fit in noise units and the interval inflation factor.

    :param residuals: per signal, simulated − logged ``(..., n)`` in the signal's unit (last axis = joint/axis)
    :param noise: per signal, the noise floor ``(n,)`` (:func:`noise_floor`); NaN → that column is skipped
    :param n_params: fitted parameters (the dof is the residual count minus this)
    :param scales: per signal ``(n,)``: the noise is floored at ``MIN_RELATIVE_NOISE`` × this
        (the signal's std over the log)
    """
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    floors: dict[str, list[float]] = {}
    for name, r in residuals.items():
        sigma = np.asarray(noise[name], dtype=float).copy()
        if scales is not None and name in scales:
            sigma = np.fmax(sigma, MIN_RELATIVE_NOISE * np.asarray(scales[name], dtype=float))
        floors[name] = [float(s) for s in sigma]
        ok = np.isfinite(sigma) & (sigma > 0)
        if not ok.any():
            continue
        z = np.asarray(r, dtype=float)[..., ok] / sigma[ok]
        z = z[np.isfinite(z)]
        sums[name], counts[name] = float(np.sum(z * z)), int(z.size)
    n = sum(counts.values())
    dof = max(n - int(n_params), 1)
    chi2 = float(sum(sums.values()) / dof) if n else float("nan")
    per = {k: sums[k] / max(counts[k], 1) for k in sums}
    inflation = float(np.sqrt(chi2)) if np.isfinite(chi2) and chi2 > 1.0 else 1.0
    if not np.isfinite(chi2):
        verdict, msg = "unknown", "no noise floor could be estimated from the log"
    elif chi2 > MISFIT_CHI2:
        worst = max(per, key=per.get)
        verdict = "misfit"
        msg = (f"model misfit: residuals are {np.sqrt(chi2):.3g}x the log's noise floor (chi2/dof {chi2:.3g}, "
               f"worst: {worst} {per[worst]:.3g}); intervals widened {inflation:.3g}x — the simulator with these "
               "parameters does not reproduce the log to its noise (a model error the estimates absorb, or a "
               "fit short of convergence)")
    else:
        verdict = "consistent"
        msg = f"fit at the noise floor (chi2/dof {chi2:.3g})"
    return FitQuality(noise_floor=floors, chi2_dof=chi2, chi2_dof_per_signal=per, dof=dof, inflation=inflation,
                      verdict=verdict, message=msg, units=dict(units or {}))


def bound_check(u: float, *, integer_steps: float | None = None) -> str | None:
    """``"low"`` / ``"high"`` when the normalised estimate ``u`` ∈ [0, 1] is within ``BOUND_MARGIN``
    of a search bound (for an integer parameter: within one step, ``integer_steps`` = steps in the
    range), else ``None``. A lower bound that is a physical limit (zero friction, armature or delay)
    counts too: the fit may have wanted a value beyond it to compensate for something the model
    lacks (:func:`is_physical_low`; no wider range is suggested there)."""
    margin = BOUND_MARGIN if not integer_steps else min(1.0 / integer_steps + 1e-9, 0.5)
    if u >= 1.0 - margin:
        return "high"
    if u <= margin:
        return "low"
    return None


def is_physical_low(operation: str, low: float) -> bool:
    """An absolute parameter searched from exactly 0 (friction, armature, delay) cannot go lower."""
    return operation == "abs" and low == 0.0


def suggest_bounds(name: str, low: float, high: float, side: str, *, log: bool, integer: bool,
                   nonnegative: bool) -> tuple[float, float, str]:
    """A wider search range for a parameter stuck on its ``side`` bound: that side moved out by half
    the current range (a factor √(high/low) for log-searched scale factors), never below 0 for
    non-negative quantities. Returns ``(low, high, "name=low:high")`` for ``--bounds``."""
    lo, hi = float(low), float(high)
    if log and lo > 0:
        f = float(np.sqrt(hi / lo))
        lo, hi = (lo / f, hi) if side == "low" else (lo, hi * f)
    else:
        step = 0.5 * (hi - lo)
        if integer:
            step = float(max(np.ceil(step), 1.0))
        lo, hi = (lo - step, hi) if side == "low" else (lo, hi + step)
        if nonnegative:
            lo = max(lo, 0.0)
    return lo, hi, f"{name}={_fmt(lo)}:{_fmt(hi)}"


def _fmt(v: float) -> str:
    return f"{v:.4g}" if v != int(v) or abs(v) >= 1e6 else str(int(v))


def bounds_hint(estimates: Sequence[Any]) -> str:
    """One ``--bounds a=lo:hi,b=lo:hi`` argument with every suggested range, or ``""``."""
    items = [e.suggested_bounds for e in estimates if getattr(e, "suggested_bounds", None)]
    return f"--bounds {','.join(items)}" if items else ""
