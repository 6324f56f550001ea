"""Local stages of :func:`sim2real.sysid.calibrate.calibrate`: bounded least squares on the residual
vector (SciPy's trust-region reflective solver), the joint delay/continuous re-fit and restarts of
that fit along flat directions.

Every function works in normalised ``[0, 1]`` parameter coordinates through an ``evaluate``
callback ``evaluate(xs, fixed, mode="cost"|"residuals", per_item=False) -> list`` that also
charges the shared evaluation budget (an object with ``left``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from sim2real.sysid.params import ParamSpec


def _polish_delay(evaluate: Callable[..., list[Any]], spec: ParamSpec, delay: int, x: np.ndarray, f: float,
                  cont: Sequence[ParamSpec], config: Any, budget: Any, reserve: int,
                  scan: dict[int, float]) -> tuple[int, np.ndarray, float]:
    """Delay and continuous parameters jointly: re-fit the continuous parameters (short LM) at the
    neighbouring delays ±1 and move to a neighbour when its *re-fitted* cost is lower (repeated
    while it helps). Comparing delays at fixed continuous parameters is not enough: a one-step
    delay error is partly absorbed by the masses, so the wrong delay's own optimum can look best.
    ``scan`` collects the best cost seen per delay (for the delay interval)."""
    scan[delay] = min(f, scan.get(delay, np.inf))
    tried = {delay}
    for _move in range(3):
        near = [g for g in (delay - 1, delay + 1) if spec.low <= g <= spec.high and g not in tried]
        best = (delay, x, f)
        for g in near:
            tried.add(g)
            fx = [(spec, float(g))]
            if not cont:
                fg, xg = float(evaluate([x], fx)[0]), x
            else:
                if budget.left < 2 * (len(cont) + 2) + reserve:
                    break
                xg, fg = _levenberg_marquardt(evaluate, x, fx, config.delay_lm_iterations, budget, reserve=reserve)
            scan[g] = min(fg, scan.get(g, np.inf))
            if fg < best[2] - 1e-12:
                best = (g, xg, fg)
        if best[0] == delay:
            break
        delay, x, f = best
        if cont:  # finish the fit at the new delay
            x, f = _levenberg_marquardt(evaluate, x, [(spec, float(delay))], config.lm_iterations, budget,
                                        reserve=reserve)
            scan[delay] = min(f, scan.get(delay, np.inf))
    return delay, x, f


def _hop(evaluate: Callable[..., list[Any]], x: np.ndarray, f: float, info: dict[str, Any], fixed: list[Any],
         config: Any, budget: Any, reserve: int) -> tuple[np.ndarray, float, list[tuple[np.ndarray, float]]]:
    """Restarts from diverse points along the flattest directions of the fit.

    A rugged cost (e.g. motor-saturation onsets that shift with the parameters) leaves LM in a
    nearby local minimum where weakly determined parameters compensate each other. Start a short
    LM from ``x ± step·v`` for the eigenvectors ``v`` of the Gauss–Newton covariance with the
    largest variance (``step`` = 3 standard deviations, 0.2–0.3 in unit coordinates), keep the
    best. Returns ``(x, f, local optima found)``.
    """
    found: list[tuple[np.ndarray, float]] = []
    jtj = info.get("jtj")
    if jtj is None or config.hops <= 0:
        return x, f, found
    cov = np.linalg.pinv(jtj, rcond=1e-10) * f * info["n"] / max(info["n"] - x.size, 1)
    lam, vec = np.linalg.eigh(cov)
    starts = []
    for k in range((config.hops + 1) // 2):
        v = vec[:, -1 - k]
        step = float(np.clip(3.0 * np.sqrt(max(lam[-1 - k], 0.0)), 0.2, 0.3))
        starts += [x + step * v, x - step * v]
    x0, f0 = x, f
    for start in starts[:config.hops]:
        if budget.left < 2 * (x.size + 3) + reserve:
            break
        xh, fh = _levenberg_marquardt(evaluate, np.clip(start, 0.0, 1.0), fixed, config.delay_lm_iterations, budget,
                                      reserve=reserve)
        found.append((xh, fh))
        if fh < f - 1e-12:
            x, f = xh, fh
    if f < f0 - 1e-12:  # finish the fit in the new basin
        x, f = _levenberg_marquardt(evaluate, x, fixed, config.lm_iterations, budget, reserve=reserve)
    found.append((x0, f0))
    return x, f, found


class _BudgetSpent(Exception):
    """Raised inside :func:`_levenberg_marquardt`'s callbacks when the evaluation budget is used up."""


def _levenberg_marquardt(evaluate: Callable[..., list[Any]], x: np.ndarray, fixed: list[Any], iterations: int,
                         budget: Any, h: float = 1e-2, reserve: int = 0,
                         info: dict[str, Any] | None = None) -> tuple[np.ndarray, float]:
    """Bounded nonlinear least squares on the residual vector in unit coordinates: SciPy's
    trust-region reflective solver (``scipy.optimize.least_squares(method="trf")``, bounds
    ``[0, 1]``) with :func:`_jacobian`'s batched forward differences as its Jacobian. The
    residuals are what ``evaluate`` returns (the calibrator hands robustly transformed residuals
    ``r̃`` with ``Σ r̃² = Σ c² ρ((r/c)²)``, so the plain loss on ``r̃`` is the robust loss on ``r``).

    At most ``iterations`` residual evaluations besides the Jacobians; stops early when an
    evaluation would leave fewer than ``reserve`` of the budget. Returns ``(x, mean squared
    residual)`` at the best point evaluated; ``JᵀJ`` at the last Jacobian and the residual count
    go to ``info`` (keys ``jtj``, ``n``) when given."""
    x = np.clip(np.asarray(x, dtype=float), 0.0, 1.0)
    dim = x.size
    seen: dict[bytes, np.ndarray] = {}  # residuals by point (the Jacobian's base residuals)
    best: list[Any] = [x, np.inf]

    def residuals(z: np.ndarray) -> np.ndarray:
        key = z.tobytes()
        if key not in seen:
            if budget.left < 1 + reserve and np.isfinite(best[1]):
                raise _BudgetSpent
            r = np.asarray(evaluate([z.copy()], fixed, "residuals")[0], dtype=float)
            seen[key] = r
            f = float(np.mean(r * r))
            if f < best[1]:
                best[:] = [z.copy(), f]
        return seen[key]

    def jacobian(z: np.ndarray) -> np.ndarray:
        if budget.left < dim + 1 + reserve:
            raise _BudgetSpent
        jac = _jacobian(evaluate, z, residuals(z), fixed, h)
        if info is not None:
            info.update(jtj=jac.T @ jac, n=jac.shape[0])
        return jac

    residuals(x)
    if iterations > 0 and budget.left >= dim + 2 + reserve:
        try:
            least_squares(residuals, x, jac=jacobian, bounds=(0.0, 1.0), method="trf", max_nfev=iterations,
                          xtol=1e-6, ftol=1e-10, gtol=1e-10)
        except _BudgetSpent:
            pass
    return best[0], best[1]


def _jacobian(evaluate: Callable[..., list[Any]], x: np.ndarray, r0: np.ndarray, fixed: list[Any], h: float) -> np.ndarray:
    """Forward differences in unit coordinates (steps pointed into the box), ``(len(r0), dim)``."""
    xs, hs = [], []
    for i in range(x.size):
        hi = h if x[i] + h <= 1.0 else -h
        xp = x.copy()
        xp[i] += hi
        xs.append(xp)
        hs.append(hi)
    rs = evaluate(xs, fixed, "residuals")
    return np.stack([(np.asarray(ri) - r0) / hi for ri, hi in zip(rs, hs)], axis=1)
