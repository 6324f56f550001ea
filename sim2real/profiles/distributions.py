"""Probability distributions of profile entries, parsed from YAML and sampled with numpy.

Every distribution is over vectors of a fixed dimension ``dim`` (1 for scalar kinds,
3 for vectors such as ``gravity``, 3 or 4 for colours). Parameters are stored as float
arrays of shape ``(dim,)``; a scalar in the YAML is broadcast.

Sampling takes a :class:`numpy.random.Generator` and consumes it in a fixed order, so
the same seed always gives the same values bit for bit. Truncated Gaussians use the
inverse-CDF method (one uniform draw per value), which is exact, never loops and stays
accurate far in the tails.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

#: distribution name -> (required parameter keys, optional parameter keys)
DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "uniform": (("low", "high"), ()),
    "log_uniform": (("low", "high"), ()),
    "gaussian": (("mean", "std"), ("low", "high")),
    "truncated_gaussian": (("mean", "std", "low", "high"), ()),
    "constant": (("value",), ()),
}
PARAM_KEYS = ("low", "high", "mean", "std", "value")

Fail = Callable[..., Any]  # fail(message, subpath=()) -> NoReturn


class Distribution:
    """A distribution over ``dim``-vectors.

    Attributes:
        kind: one of :data:`DISTRIBUTIONS`.
        params: parameter name -> float array of shape ``(dim,)``.
        dim: dimension of one draw.
    """

    __slots__ = ("kind", "params", "dim", "_args")

    def __init__(self, kind: str, params: Mapping[str, Any], dim: int = 1) -> None:
        if kind not in DISTRIBUTIONS:
            raise ValueError(f"unknown distribution {kind!r}")
        self.kind = kind
        self.dim = int(dim)
        self.params = {
            k: np.broadcast_to(np.asarray(v, dtype=np.float64), (self.dim,)).copy() for k, v in params.items()
        }
        for arr in self.params.values():
            arr.setflags(write=False)
        # generator arguments of uniform/log_uniform/gaussian draws: plain floats when dim == 1
        # (numpy's scalar path is ~5x faster than its broadcasting path, same values)
        p = self.params
        args: tuple[Any, Any] | None = None
        if kind == "uniform":
            args = (p["low"], p["high"])
        elif kind == "log_uniform":
            args = (np.log(p["low"]), np.log(p["high"]))
        elif kind == "gaussian" and "mean" in p and "std" in p:
            args = (p["mean"], p["std"])
        if args is not None and self.dim == 1:
            args = (float(args[0][0]), float(args[1][0]))
        elif args is not None and kind != "gaussian":
            with np.errstate(over="ignore"):  # a span beyond the float range: Entry.sample reports its draws
                args = (args[0], args[1] - args[0])  # low, span: low + span * u is what rng.uniform computes
        self._args = args

    # -- convenient accessors -------------------------------------------------------------
    def __getattr__(self, name: str) -> np.ndarray | None:
        if name in PARAM_KEYS:
            return self.params.get(name)
        raise AttributeError(name)

    @property
    def truncated(self) -> bool:
        return self.kind == "truncated_gaussian" or (
            self.kind == "gaussian" and ("low" in self.params or "high" in self.params)
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Distribution):
            return NotImplemented
        return (
            self.kind == other.kind
            and self.dim == other.dim
            and self.params.keys() == other.params.keys()
            and all(np.array_equal(v, other.params[k]) for k, v in self.params.items())
        )

    def __hash__(self) -> int:
        return hash((self.kind, self.dim, tuple(sorted((k, v.tobytes()) for k, v in self.params.items()))))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={_compact(v)}" for k, v in self.params.items())
        return f"Distribution({self.kind}, {args}, dim={self.dim})"

    # -- maths ----------------------------------------------------------------------------
    def support(self) -> tuple[np.ndarray, np.ndarray]:
        """Lowest and highest possible value per dimension, arrays of shape ``(dim,)`` (±inf if unbounded)."""
        p = self.params
        if self.kind in ("uniform", "log_uniform", "truncated_gaussian"):
            return p["low"].copy(), p["high"].copy()
        if self.kind == "constant":
            return p["value"].copy(), p["value"].copy()
        low = p["low"].copy() if "low" in p else np.full(self.dim, -np.inf)
        high = p["high"].copy() if "high" in p else np.full(self.dim, np.inf)
        degenerate = p["std"] == 0  # a zero-std gaussian is a constant
        low = np.where(degenerate, np.clip(p["mean"], low, high), low)
        high = np.where(degenerate, np.clip(p["mean"], low, high), high)
        return low, high

    def mean(self) -> np.ndarray:
        """Expected value per dimension, shape ``(dim,)``."""
        p = self.params
        if self.kind == "uniform":
            return 0.5 * (p["low"] + p["high"])
        if self.kind == "log_uniform":
            lo, hi = np.log(p["low"]), np.log(p["high"])
            same = hi == lo
            span = np.where(same, 1.0, hi - lo)
            return np.where(same, p["low"], (p["high"] - p["low"]) / span)
        if self.kind == "constant":
            return p["value"].copy()
        if not self.truncated:
            return p["mean"].copy()
        from scipy.stats import truncnorm  # SciPy only where a truncated normal is used (the core install has none)

        lo, hi = self.support()
        m, s = p["mean"], p["std"]
        moving = s > 0
        safe = np.where(moving, s, 1.0)
        out = truncnorm.mean((lo - m) / safe, (hi - m) / safe, loc=m, scale=safe)
        return np.where(moving, out, np.clip(m, lo, hi))

    def sample(self, rng: np.random.Generator, shape: int | Sequence[int] = ()) -> np.ndarray:
        """Draw values of shape ``(*shape, dim)`` (float64)."""
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        size = (*shape, self.dim)
        p = self.params
        kind = self.kind
        if kind == "uniform" or kind == "log_uniform":
            if self.dim == 1:
                x = rng.uniform(*self._args, size=size)
            else:  # numpy's broadcasting uniform is ~5x slower than this (same values)
                low, span = self._args
                x = low + span * rng.random(size)
            return np.exp(x) if kind == "log_uniform" else x
        if kind == "constant":
            out = np.empty(size)
            out[...] = p["value"]
            return out
        if not self.truncated:
            return rng.normal(*self._args, size=size)
        return _truncated_normal(rng, p["mean"], p["std"], *self.support(), size)

    def with_params(self, **params: Any) -> "Distribution":
        merged = {**self.params, **params}
        return Distribution(self.kind, merged, self.dim)

    def to_dict(self, default_dim: int | None = None) -> dict[str, Any]:
        """YAML-able ``{distribution: kind, <param>: number or list}``.

        Parameters are written as one number when all elements agree and ``dim`` equals
        ``default_dim`` (what a number would be broadcast to on re-load), else as lists.
        """
        out: dict[str, Any] = {"distribution": self.kind}
        for k, v in self.params.items():
            if default_dim == self.dim and np.all(v == v[0]):
                out[k] = float(v[0])
            else:
                out[k] = [float(x) for x in v]
        return out


def _compact(v: np.ndarray) -> str:
    return repr(float(v[0])) if np.all(v == v[0]) else repr([float(x) for x in v])


# ---------------------------------------------------------------------------------------
# parsing


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _describe(value: Any) -> str:
    return f"{value!r}" if isinstance(value, (str, int, float, bool)) or value is None else type(value).__name__


def parse_number_or_vector(value: Any, dims: Sequence[int], fail: Fail, key: str) -> tuple[float | list[float], int | None]:
    """Check a parameter is a finite number or a list of one of the allowed lengths ``dims``.

    Returns the value and its length (``None`` for a number, which broadcasts).
    """
    if _is_number(value):
        if math.isnan(value):
            fail("expected a number, got nan", (key,))
        return float(value), None
    if isinstance(value, list):
        if not all(_is_number(x) and not math.isnan(x) for x in value):
            bad = next(x for x in value if not (_is_number(x) and not math.isnan(x)))
            fail(f"expected a list of numbers, got element {_describe(bad)}", (key,))
        if len(value) not in dims or len(dims) == 1 and dims[0] == 1:
            fail(_dim_expectation(dims) + f", got a list of {len(value)}", (key,))
        return [float(x) for x in value], len(value)
    fail(f"{_dim_expectation(dims)}, got {_describe(value)}", (key,))
    raise AssertionError  # unreachable: fail raises


def _dim_expectation(dims: Sequence[int]) -> str:
    if list(dims) == [1]:
        return "expected a number"
    lens = " or ".join(str(d) for d in dims)
    return f"expected a number or a list of {lens} numbers"


def parse_distribution(raw: Mapping[str, Any], dims: Sequence[int], fail: Fail) -> Distribution:
    """Build a :class:`Distribution` from the ``distribution``/``low``/... keys of ``raw``.

    ``dims`` lists the vector lengths the parameter kind accepts (first one is used when
    every parameter is a number). ``fail(message, subpath)`` raises the caller's error.
    Keys of ``raw`` other than the distribution keys are ignored (the caller checks them).
    """
    kind = raw.get("distribution")
    if kind is None:
        fail(f"missing key; expected one of {list(DISTRIBUTIONS)}", ("distribution",))
    if not isinstance(kind, str) or kind not in DISTRIBUTIONS:
        fail(f"expected one of {list(DISTRIBUTIONS)}, got {_describe(kind)}", ("distribution",))
    required, optional = DISTRIBUTIONS[kind]
    allowed = set(required) | set(optional)
    for key in PARAM_KEYS:
        if key in raw and key not in allowed and raw[key] is not None:
            fail(f"not a parameter of a {kind} distribution (expected {_and_list(required + optional)})", (key,))
    for key in required:
        if raw.get(key) is None:
            fail(f"missing; a {kind} distribution needs {_and_list(required)}", (key,))
    params: dict[str, Any] = {}
    lengths: set[int] = set()
    for key in (*required, *optional):
        if raw.get(key) is None:
            continue
        value, length = parse_number_or_vector(raw[key], dims, fail, key)
        params[key] = value
        if length is not None:
            lengths.add(length)
    if len(lengths) > 1:
        fail(f"parameter lists must all have the same length, got lengths {sorted(lengths)}", ("distribution",))
    dim = lengths.pop() if lengths else dims[0]
    arr = {k: np.broadcast_to(np.asarray(v, dtype=np.float64), (dim,)) for k, v in params.items()}

    if "low" in arr and "high" in arr and np.any(arr["low"] > arr["high"]):
        fail(f"inverted bounds: low ({_compact(arr['low'])}) must be <= high ({_compact(arr['high'])})", ("low",))
    if "std" in arr:
        if np.any(arr["std"] < 0) or not np.all(np.isfinite(arr["std"])):
            fail(f"expected a finite std >= 0, got {_compact(arr['std'])}", ("std",))
    for key in ("mean", "value"):
        if key in arr and not np.all(np.isfinite(arr[key])):
            fail(f"expected a finite number, got {_compact(arr[key])}", (key,))
    if kind in ("uniform", "log_uniform"):
        for key in ("low", "high"):
            if not np.all(np.isfinite(arr[key])):
                fail(f"a {kind} distribution needs finite bounds, got {_compact(arr[key])}", (key,))
    if kind == "log_uniform" and np.any(arr["low"] <= 0):
        fail(f"log_uniform needs low > 0, got {_compact(arr['low'])}", ("low",))
    dist = Distribution(kind, arr, dim)
    if dist.truncated:
        lo, hi = dist.support()
        m, s = dist.params["mean"], dist.params["std"]
        for i in range(dim):
            if s[i] == 0 and not lo[i] <= m[i] <= hi[i]:
                fail(f"a zero-std gaussian's mean ({m[i]}) must lie within [low, high]", ("mean",))
    return dist


def _and_list(keys: Sequence[str]) -> str:
    keys = list(keys)
    return keys[0] if len(keys) == 1 else ", ".join(keys[:-1]) + " and " + keys[-1]


# ---------------------------------------------------------------------------------------
# truncated normal by inverse CDF


def _truncated_normal(rng: np.random.Generator, mean: np.ndarray, std: np.ndarray, low: np.ndarray,
                      high: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """Normal(mean, std) restricted to [low, high]; all parameter arrays of shape ``(dim,)``.

    Inverse CDF with SciPy's ``ndtr`` / ``ndtri`` (one uniform per value), on the lower side of
    the mean where the CDF keeps its precision (far tails included)."""
    from scipy.special import ndtr, ndtri  # SciPy only where a truncated normal is used

    u = rng.random(size)
    safe_std = np.where(std > 0, std, 1.0)
    a = (low - mean) / safe_std
    b = (high - mean) / safe_std
    flip = a > 0
    pa, pb = ndtr(np.where(flip, -b, a)), ndtr(np.where(flip, -a, b))
    p = np.clip(pa + u * (pb - pa), np.finfo(np.float64).tiny, 1.0 - np.finfo(np.float64).epsneg)
    z = ndtri(p)
    z = np.clip(np.where(flip, -z, z), a, b)
    x = np.clip(mean + std * z, low, high)
    return np.where(std > 0, x, np.clip(mean, low, high))
