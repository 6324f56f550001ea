"""The parameters a calibration searches over, and how a value vector is applied to a
:class:`~sim2real.sim.world.PhysicsWorld`.

``--params`` is a comma-separated list of ``NAME``, ``NAME:*`` or ``NAME:TARGET``:

* ``NAME`` alone is one value shared by every target (e.g. ``mass`` = one scale for all links);
* ``NAME:*`` is one value per target (every link / controlled joint);
* ``NAME:TARGET`` is one value for that link or joint.

========== =================== ===== ===================== ==========================
name       profile kind        op    default bounds        unit of the value
========== =================== ===== ===================== ==========================
mass       ``link_mass``       scale [0.25, 4]             × nominal (inertia scaled too)
damping    ``joint_damping``   scale [0.1, 10]             × nominal
friction   ``joint_friction``  abs   [0, 5]                N·m (Coulomb)
strength   ``motor_strength``  scale [0.3, 1.5]            × max effort
kp         ``position_gain``   scale [0.25, 4]             × nominal gain (drive kp or PyBullet's)
kd         ``velocity_gain``   scale [0.25, 4]             × nominal gain (drive kd or PyBullet's)
stall      ``stall_torque``    scale [0.3, 2]              × nominal stall torque (dc_motor)
free_speed ``free_speed``      scale [0.3, 3]              × nominal no-load speed (dc_motor)
armature   ``armature``        abs   [0, 0.5]              kg·m²
delay      ``action_latency``  abs   [0, 200 ms]           physics steps (integer)
========== =================== ===== ===================== ==========================

Scale parameters are searched in log space, absolute ones linearly; CMA-ES sees every
parameter normalised to ``[0, 1]``. With ``--profile`` the bounds (and operation) of a
parameter come from the profile entry of the same kind when it has one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from sim2real.errors import ConfigError
from sim2real.robots import RobotDescription

if TYPE_CHECKING:
    from sim2real.profiles import Profile
    from sim2real.sim.world import PhysicsWorld


DEFAULT_MAX_DELAY_S = 0.2  # default delay search: 0 .. 200 ms


@dataclass(frozen=True)
class _Kind:
    kind: str
    operation: str
    low: float
    high: float
    on: str  # "link" | "joint" | "global"
    field: str  # PhysicsWorld field
    unit: str


KINDS: dict[str, _Kind] = {
    "mass": _Kind("link_mass", "scale", 0.25, 4.0, "link", "mass", "x nominal"),
    "damping": _Kind("joint_damping", "scale", 0.1, 10.0, "joint", "damping", "x nominal"),
    "friction": _Kind("joint_friction", "abs", 0.0, 5.0, "joint", "friction", "N·m"),
    "strength": _Kind("motor_strength", "scale", 0.3, 1.5, "joint", "strength", "x max effort"),
    "kp": _Kind("position_gain", "scale", 0.25, 4.0, "joint", "position_gain", "x nominal"),
    "kd": _Kind("velocity_gain", "scale", 0.25, 4.0, "joint", "velocity_gain", "x nominal"),
    "stall": _Kind("stall_torque", "scale", 0.3, 2.0, "joint", "stall_torque", "x nominal"),
    "free_speed": _Kind("free_speed", "scale", 0.3, 3.0, "joint", "free_speed", "x nominal"),
    "armature": _Kind("armature", "abs", 0.0, 0.5, "joint", "armature", "kg·m²"),
    "delay": _Kind("action_latency", "abs", 0.0, -1.0, "global", "action_delay", "physics steps"),
}


@dataclass(frozen=True)
class ParamSpec:
    """One searched parameter: a value shared by ``targets`` of one kind.

    ``low``/``high`` are in value units (scale factor or absolute); ``log`` says the search
    coordinate is logarithmic; ``integer`` parameters (delay) are searched on a grid.
    """

    name: str
    short: str
    kind: str
    targets: tuple[str, ...]
    operation: str
    low: float
    high: float
    unit: str
    integer: bool = False

    @property
    def log(self) -> bool:
        return self.operation == "scale" and self.low > 0

    @property
    def neutral(self) -> float:
        """The value that leaves the world at nominal (1 for scale, the nominal mean for abs)."""
        return 1.0 if self.operation == "scale" else 0.0

    def to_unit(self, value: float) -> float:
        """Value → search coordinate in [0, 1]."""
        if self.log:
            return float((np.log(value) - np.log(self.low)) / (np.log(self.high) - np.log(self.low)))
        return float((value - self.low) / (self.high - self.low)) if self.high > self.low else 0.0

    def from_unit(self, u: float) -> float:
        """Search coordinate in [0, 1] → value."""
        u = float(np.clip(u, 0.0, 1.0))
        if self.log:
            return float(np.exp(np.log(self.low) + u * (np.log(self.high) - np.log(self.low))))
        v = self.low + u * (self.high - self.low)
        return float(np.round(v)) if self.integer else v


def parse_params(spec: str | Sequence[str], robot: RobotDescription, *, substeps: int | None = None,
                 profile: "Profile | None" = None, bounds: dict[str, tuple[float, float]] | None = None) -> list[ParamSpec]:
    """Parse ``--params`` (see module docstring) into :class:`ParamSpec` objects.

    :param bounds: overrides ``{name or short name: (low, high)}``
    :raises ConfigError: unknown name or target, duplicate parameter, bad bounds
    """
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if not items:
        raise ConfigError("expected at least one parameter", path=("params",))
    substeps = substeps or robot.control.substeps
    out: list[ParamSpec] = []
    for item in items:
        short, _, target = item.partition(":")
        if short not in KINDS:
            raise ConfigError(f"unknown parameter {short!r}; expected one of {sorted(KINDS)} "
                              f"(optionally NAME:* or NAME:TARGET)", path=("params", item))
        k = KINDS[short]
        universe = list(robot.links) if k.on == "link" else robot.joint_names if k.on == "joint" else []
        if short in ("stall", "free_speed"):  # only a dc_motor drive has a torque-speed line
            universe = [j for j in universe if robot.actuator_value(k.field, j) is not None]
            if not universe:
                raise ConfigError(f"{short} needs joints driven by a dc_motor actuator (robot.yaml actuators); "
                                  f"{robot.name} has none", path=("params", item))
        if k.on == "global":
            if target:
                raise ConfigError(f"{short} takes no target", path=("params", item))
            groups = [(short, ())]
        elif not target:
            groups = [(short, tuple(universe))]
        elif target == "*":
            groups = [(f"{short}:{t}", (t,)) for t in universe]
        else:
            if target not in universe:
                raise ConfigError(f"unknown {k.on} {target!r}; expected one of {universe}", path=("params", item))
            groups = [(item, (target,))]
        for name, targets in groups:
            low, high = k.low, (default_delay_high(robot) if short == "delay" else k.high)
            op = k.operation
            entry = _profile_entry(profile, k.kind, targets) if profile is not None else None
            if entry is not None and entry.operation in ("scale", "abs"):
                lo, hi = entry.distribution.support()
                lo, hi = float(np.min(lo)), float(np.max(hi))
                if np.isfinite(lo) and np.isfinite(hi) and hi > lo:
                    op, low, high = entry.operation, lo, hi
                    if short == "delay":
                        low, high = _latency_to_physics(entry, low, high, robot, substeps)
            for key in (name, short):
                if bounds and key in bounds:
                    low, high = bounds[key]
                    break
            if not high > low:
                raise ConfigError(f"bounds [{low}, {high}] are empty", path=("params", name))
            if op == "scale" and low <= 0:
                low = min(1e-3, high / 10)
            ps = ParamSpec(name=name, short=short, kind=k.kind, targets=targets, operation=op, low=float(low),
                           high=float(high), unit=k.unit if op == k.operation else "x nominal",
                           integer=short == "delay")
            if any(p.name == ps.name for p in out):
                raise ConfigError("parameter given twice", path=("params", name))
            out.append(ps)
    return out


def default_delay_high(robot: RobotDescription, seconds: float = DEFAULT_MAX_DELAY_S) -> float:
    """Upper bound of the default delay search, physics steps: ``ceil(seconds · physics_hz)``
    (200 ms by default; real position interfaces show 10–100 ms of command-to-motion delay)."""
    return float(np.ceil(seconds * robot.control.physics_hz - 1e-9))


def _profile_entry(profile: "Profile", kind: str, targets: tuple[str, ...]) -> Any:
    for entry in profile.entries.values():
        if entry.param != kind:
            continue
        if entry.targets is None or not targets or set(targets) <= set(entry.targets):
            return entry
    return None


def _latency_to_physics(entry: Any, low: float, high: float, robot: RobotDescription, substeps: int) -> tuple[float, float]:
    unit = entry.options.get("unit", "physics_steps")
    factor = {"physics_steps": 1.0, "control_steps": float(substeps), "seconds": robot.control.physics_hz}[unit]
    return float(np.floor(low * factor)), float(np.ceil(high * factor))


def apply_params(world: "PhysicsWorld", specs: Sequence[ParamSpec], values: Sequence[float]) -> None:
    """Restore the world's nominal dynamics, then apply ``values`` (value units, one per spec).

    Masses scale the inertia with them (profile ``recompute_inertia: true``); ``delay`` sets
    ``world.action_delay`` (physics steps).
    """
    world.restore_nominal()
    joint_fields: dict[str, np.ndarray] = {}
    names = world.robot.joint_names
    for spec, v in zip(specs, values):
        k = KINDS[spec.short]
        if k.on == "global":
            world.action_delay = int(round(v))
        elif k.on == "link":
            for link in spec.targets:
                nominal = world.nominal["links"][link]["mass"]
                if spec.operation == "scale":
                    world.set_link(link, mass=nominal * v, inertia_scale=v)
                else:
                    world.set_link(link, mass=v, inertia_scale=v / nominal if nominal > 0 else 1.0)
        else:
            arr = joint_fields.setdefault(k.field, world.current["joints"][k.field].copy())
            for joint in spec.targets:
                i = names.index(joint)
                arr[i] = world.nominal["joints"][k.field][i] * v if spec.operation == "scale" else v
    for field, arr in joint_fields.items():
        world.set_joint(field, arr)
    if joint_fields:
        world.reset_control()


def absolute_values(world: "PhysicsWorld", spec: ParamSpec, value: float) -> dict[str, float]:
    """Physical value per target (kg, N·m·s/rad, N·m, ...) that ``value`` of ``spec`` means."""
    k = KINDS[spec.short]
    if k.on == "global":
        return {"value": float(value)}
    if k.on == "link":
        nom = {t: world.nominal["links"][t]["mass"] for t in spec.targets}
    else:
        nom = {t: float(world.nominal["joints"][k.field][world.robot.joint_names.index(t)]) for t in spec.targets}
    return {t: float(n * value if spec.operation == "scale" else value) for t, n in nom.items()}


def with_bounds(spec: ParamSpec, low: float, high: float) -> ParamSpec:
    return replace(spec, low=float(low), high=float(high))
