"""One randomization entry (what, how, when), its draws and its interval.

An :class:`Entry` is immutable; :meth:`Entry.sample` turns it into a :class:`Sample`,
an array of shape ``(max(1, n_targets), dim)``: one row per target (a global kind
has one row and no targets).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from sim2real.errors import ProfileError
from sim2real.profiles.distributions import Distribution
from sim2real.profiles.kinds import JOINT, LINK, LINK_OR_FLOOR, MODEL_PARAM, PARAM_KINDS, KindSpec

if TYPE_CHECKING:
    from sim2real.robots import RobotDescription


@dataclass(frozen=True)
class Interval:
    """How often an ``when: interval`` entry fires.

    Attributes:
        unit: ``"steps"`` (control steps) or ``"seconds"``.
        low, high: period range; equal for a fixed period.
    """

    unit: str
    low: float
    high: float

    def draw_period(self, rng: np.random.Generator, control_dt: float) -> int:
        """Draw the number of control steps until the next event (>= 1).

        Args:
            rng: the env's generator (always consumed once, even for a fixed period).
            control_dt: seconds per control step.
        """
        if self.unit == "steps":
            return max(1, int(rng.integers(int(self.low), int(self.high) + 1)))
        if control_dt <= 0:
            raise ValueError(f"control_dt must be > 0, got {control_dt}")
        seconds = float(rng.uniform(self.low, self.high))
        return max(1, int(round(seconds / control_dt)))

    def to_dict(self) -> dict[str, Any]:
        num = (lambda x: int(x)) if self.unit == "steps" else float
        value: Any = num(self.low) if self.low == self.high else [num(self.low), num(self.high)]
        return {self.unit: value}


@dataclass(frozen=True)
class Sample:
    """Draws of one entry.

    Attributes:
        entry: the entry drawn from.
        targets: target names, ``()`` for global kinds.
        values: float array of shape ``(max(1, len(targets)), entry.dim)``.
    """

    entry: "Entry"
    targets: tuple[str, ...]
    values: np.ndarray

    def value(self, target: str | None = None) -> np.ndarray:
        """The draw for ``target`` (or the global draw), shape ``(dim,)``."""
        if target is None:
            if self.targets:
                raise KeyError(f"entry {self.entry.name!r} has targets {list(self.targets)}; name one")
            return self.values[0]
        try:
            return self.values[self.targets.index(target)]
        except ValueError:
            raise KeyError(f"entry {self.entry.name!r} has no target {target!r}") from None

    def as_dict(self) -> dict[str, float | list[float]]:
        """``{target: value}`` (``{"value": ...}`` for global kinds); scalars for dim 1. For env info."""
        def plain(row: np.ndarray) -> float | list[float]:
            return float(row[0]) if row.shape[0] == 1 else [float(x) for x in row]
        if not self.targets:
            return {"value": plain(self.values[0])}
        return {t: plain(row) for t, row in zip(self.targets, self.values)}


@dataclass(frozen=True)
class Entry:
    """One validated profile entry.

    Attributes:
        name: entry name (unique in the profile).
        param: parameter kind, a key of :data:`PARAM_KINDS`.
        targets: target names, or ``None`` for all (may contain ``"all"`` plus extras such as ``"floor"``).
        distribution: what a draw comes from.
        operation: ``abs`` | ``scale`` | ``add``.
        when: ``startup`` | ``reset`` | ``interval``.
        interval: period of ``when: interval`` entries, else ``None``.
        shared: one draw for all targets.
        options: kind-specific keys with defaults filled in (nested distributions as :class:`Distribution`).
        dim: length of one draw.
    """

    name: str
    param: str
    targets: tuple[str, ...] | None
    distribution: Distribution
    operation: str
    when: str = "reset"
    interval: Interval | None = None
    shared: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)
    dim: int = 1

    @property
    def kind(self) -> KindSpec:
        return PARAM_KINDS[self.param]

    # -- targets ----------------------------------------------------------------------
    def resolve_targets(self, robot: "RobotDescription | None" = None) -> list[str]:
        """Concrete target names (``all`` expanded); ``[]`` for global kinds.

        ``all`` means every link incl. ``base`` (link kinds), every controlled joint, or
        every scalar model parameter; ``floor`` is only targeted when named;
        ``end_effector`` is the robot's ``end_effector_link``. Needs ``robot`` to resolve
        ``all`` or ``end_effector``.
        """
        spec = self.kind
        if spec.is_global:
            return []
        names = list(self.targets) if self.targets is not None else ["all"]
        if robot is None:
            if "all" in names or "end_effector" in names:
                raise ProfileError(f"targets {names} of a {self.param} entry need a robot to resolve",
                                   path=("params", self.name, "targets"))
            return names
        out: list[str] = []
        for n in names:
            if n == "all":
                expanded = all_targets(spec, robot)
            elif n == "end_effector" and spec.target in (LINK, LINK_OR_FLOOR):
                expanded = [robot.end_effector_link] if robot.end_effector_link else []
            else:
                expanded = [n]
            for x in expanded:
                if x not in out:
                    out.append(x)
        return out

    def _resolved(self, robot: "RobotDescription | None") -> tuple[str, ...]:
        """:meth:`resolve_targets` as a tuple, cached for the last robot (robot descriptions are
        not modified after loading; a reset samples every entry, so this runs per reset)."""
        if robot is None:
            return tuple(self.resolve_targets(None))
        cache = self.__dict__.get("_targets_cache")
        if cache is not None and cache[0] is robot:
            return cache[1]
        targets = tuple(self.resolve_targets(robot))
        object.__setattr__(self, "_targets_cache", (robot, targets))  # frozen dataclass: not a field
        return targets

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_targets_cache", None)  # never pickle the robot along with the entry
        return state

    # -- sampling ---------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, robot: "RobotDescription | None" = None) -> Sample:
        """Draw values for every target: shape ``(max(1, n_targets), dim)``."""
        targets = self._resolved(robot)
        n = len(targets) or 1
        with np.errstate(over="ignore", invalid="ignore"):  # overflowing draws are reported below
            if self.shared:
                values = np.repeat(self.distribution.sample(rng, (1,)), n, axis=0)
            else:
                values = self.distribution.sample(rng, (n,))
        if PARAM_KINDS[self.param].integer:
            values = np.rint(values)
        vmin, vmax = self.value_range()
        bad = ~np.isfinite(values) | (values < vmin) | (values > vmax)
        if np.any(bad):  # e.g. a span that overflows: never hand such a world to the physics
            v = float(values[bad].ravel()[0])
            why = "a non-finite value" if not np.isfinite(v) else f"outside [{vmin:g}, {vmax:g}]"
            raise ProfileError(f"drew {v:g} for {self.param} ({why}); narrow the distribution",
                               path=("params", self.name))
        return Sample(self, targets, values)

    def make_sample(self, value: Any, robot: "RobotDescription | None" = None) -> Sample:
        """A :class:`Sample` pinned to ``value`` instead of a draw (env ``options={"params": ...}``).

        ``value`` is a number or ``dim``-list (used for every target) or ``{target: value}``
        (every resolved target must be given; global kinds accept ``{"value": v}``).
        """
        targets = tuple(self.resolve_targets(robot))
        n = max(1, len(targets))
        if isinstance(value, Mapping):
            keys = list(targets) if targets else ["value"]
            missing = [k for k in keys if k not in value]
            if missing:
                raise ProfileError(f"pinned value misses targets {missing}", path=("params", self.name))
            rows = [value[k] for k in keys]
        else:
            rows = [value] * n
        try:
            values = np.stack([np.broadcast_to(np.asarray(r, dtype=np.float64), (self.dim,)) for r in rows])
        except ValueError:
            raise ProfileError(f"pinned value must be a number or a list of {self.dim}", path=("params", self.name)) from None
        return Sample(self, targets, values.copy())

    # -- operations -------------------------------------------------------------------
    def apply_op(self, nominal: Any, draw: Any) -> np.ndarray:
        """Resulting value: ``draw`` (abs), ``nominal * draw`` (scale) or ``nominal + draw`` (add).

        ``nominal`` and ``draw`` broadcast against each other (e.g. a diagonal inertia of
        shape ``(3,)`` scaled by a draw of shape ``(1,)``).
        """
        d = np.asarray(draw, dtype=np.float64)
        if self.operation == "abs":
            if nominal is None:
                return d.copy()
            shape = np.shape(nominal)
            if shape == d.shape:
                return d.copy()
            return np.broadcast_to(d, np.broadcast_shapes(shape, d.shape)).copy()
        n = np.asarray(nominal, dtype=np.float64)
        if self.operation == "scale":
            return n * d
        return n + d

    def value_range(self) -> tuple[float, float]:
        """Bounds every draw must respect for this kind and operation (used to clip ADR bounds)."""
        return self.kind.value_range(self.operation)

    def with_bounds(self, low: Any, high: Any) -> "Entry":
        """The same entry drawing uniformly from ``[low, high]`` (numbers or ``dim``-lists)."""
        lo = np.broadcast_to(np.asarray(low, dtype=np.float64), (self.dim,))
        hi = np.broadcast_to(np.asarray(high, dtype=np.float64), (self.dim,))
        path = ("params", self.name)
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise ProfileError(f"bounds must be finite, got low={lo.tolist()} high={hi.tolist()}", path=path)
        if np.any(lo > hi):
            raise ProfileError(f"inverted bounds: low {lo.tolist()} > high {hi.tolist()}", path=path)
        vmin, vmax = self.value_range()
        if np.any(lo < vmin) or np.any(hi > vmax):
            raise ProfileError(f"bounds [{lo.tolist()}, {hi.tolist()}] leave the valid range [{vmin}, {vmax}] "
                               f"of {self.param} with operation {self.operation}", path=path)
        return dataclasses.replace(self, distribution=Distribution("uniform", {"low": lo, "high": hi}, self.dim))

    def to_dict(self) -> dict[str, Any]:
        """YAML-able dict that :func:`sim2real.profiles.load_profile` reads back to an equal entry."""
        spec = self.kind
        out: dict[str, Any] = {"param": self.param}
        if not spec.is_global:
            out["targets"] = "all" if self.targets is None else list(self.targets)
        out.update(self.distribution.to_dict(default_dim=spec.dims[0]))
        out["operation"] = self.operation
        out["when"] = self.when
        if self.interval is not None:
            out["interval"] = self.interval.to_dict()
        if not spec.is_global:
            out["shared"] = self.shared
        for key, value in self.options.items():
            if isinstance(value, Distribution):
                value = value.to_dict(default_dim=1)
            if value is not None:
                out[key] = value
        return out


def all_targets(spec: KindSpec, robot: "RobotDescription") -> list[str]:
    """What ``targets: all`` expands to for this kind on this robot."""
    if spec.target in (LINK, LINK_OR_FLOOR):
        return robot.all_link_names()
    if spec.target == JOINT:
        return robot.joint_names
    if spec.target == MODEL_PARAM:
        return [k for k, v in robot.model_params.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return []


def valid_targets(spec: KindSpec, robot: "RobotDescription") -> list[str]:
    """Every name a target list may hold for this kind on this robot."""
    ee = ["end_effector"] if robot.end_effector_link else []
    if spec.target == LINK_OR_FLOOR:
        return [*robot.all_link_names(), *ee, "floor"]
    if spec.target == LINK:
        return [*robot.all_link_names(), *ee]
    if spec.target == MODEL_PARAM:
        return list(robot.model_params)
    return all_targets(spec, robot)


def _is_numeric(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float)):
        return True
    return isinstance(v, list) and bool(v) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
