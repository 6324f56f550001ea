"""The parameters a quadrotor calibration searches over, and how a value vector is applied to a
:class:`~sim2real.sim.quadrotor_world.QuadrotorWorld`.

``--params`` for a quadrotor is a comma-separated list of these names (no targets):

============ ================================ ===== ============= ==============================
name         profile entry (kind, targets)    op    default bounds value
============ ================================ ===== ============= ==============================
mass         ``link_mass`` [base]             scale [0.5, 2]      × nominal mass (inertia kept)
inertia      ``link_inertia`` [base]          scale [0.5, 2]      × nominal inertia (all axes)
kf           ``model_param`` [kf]             scale [0.5, 2]      × nominal thrust coefficient
km           ``model_param`` [km]             scale [0.5, 2]      × nominal torque coefficient
motor_tau    ``model_param`` [motor_tau]      scale [0.25, 4]     × nominal motor time constant
arm_length   ``model_param`` [arm_length]     scale [0.8, 1.25]   × nominal arm length
drag         ``model_param`` [drag_coeff]     scale [0.1, 10]     × nominal x/y rotor drag
drag_z       ``model_param`` [drag_coeff_z]   scale [0.1, 10]     × nominal z rotor drag
delay        ``action_latency``               abs   [0, 2 ctrl]   physics steps (integer)
============ ================================ ===== ============= ==============================

What a flight log constrains are the groups ``kf/mass``, ``drag/mass``, ``drag_z/mass``,
``kf·arm_length/inertia`` (roll, pitch), ``km/inertia`` (yaw), ``motor_tau`` and ``delay``:
scaling mass, inertia, kf, km and the drags together, or arm length against inertia (and km),
leaves every trajectory unchanged, and the calibration then flags the parameters involved as
not identifiable. Weigh the drone and measure its arms, put the numbers in robot.yaml and fit the
rest. With ``--profile`` the bounds come from the profile entry of the same kind and targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sim2real.errors import ConfigError
from sim2real.robots import RobotDescription
from sim2real.sysid.params import ParamSpec

if TYPE_CHECKING:
    from sim2real.profiles import Profile


@dataclass(frozen=True)
class _QuadKind:
    kind: str
    target: str  # link name or model_params key ("" for delay)
    low: float
    high: float
    entry: str  # entry name in the narrowed profile (as in randomization_profiles/quadrotor.yaml)
    unit: str


QUAD_KINDS: dict[str, _QuadKind] = {
    "mass": _QuadKind("link_mass", "base", 0.5, 2.0, "body_mass", "x nominal"),
    "inertia": _QuadKind("link_inertia", "base", 0.5, 2.0, "body_inertia", "x nominal"),
    "kf": _QuadKind("model_param", "kf", 0.5, 2.0, "thrust_coefficient", "x nominal"),
    "km": _QuadKind("model_param", "km", 0.5, 2.0, "torque_coefficient", "x nominal"),
    "motor_tau": _QuadKind("model_param", "motor_tau", 0.25, 4.0, "motor_lag", "x nominal"),
    "arm_length": _QuadKind("model_param", "arm_length", 0.8, 1.25, "arm_length", "x nominal"),
    "drag": _QuadKind("model_param", "drag_coeff", 0.1, 10.0, "rotor_drag", "x nominal"),
    "drag_z": _QuadKind("model_param", "drag_coeff_z", 0.1, 10.0, "rotor_drag_z", "x nominal"),
    "delay": _QuadKind("action_latency", "", 0.0, -1.0, "action_latency", "physics steps"),
}


def parse_quad_params(spec: str | Sequence[str], robot: RobotDescription, *, profile: Profile | None = None,
                      bounds: dict[str, tuple[float, float]] | None = None) -> list[ParamSpec]:
    """Parse ``--params`` for a quadrotor (see module docstring) into :class:`ParamSpec` objects.

    :param bounds: overrides ``{name: (low, high)}`` in value units
    :raises ConfigError: unknown name, a target given, duplicate parameter, empty bounds, a model
        parameter the robot does not have
    """
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if not items:
        raise ConfigError("expected at least one parameter", path=("params",))
    substeps = robot.control.substeps
    out: list[ParamSpec] = []
    for item in items:
        short, _, target = item.partition(":")
        if short not in QUAD_KINDS:
            raise ConfigError(f"unknown parameter {short!r} for a quadrotor; expected one of {list(QUAD_KINDS)}",
                              path=("params", item))
        if target:
            raise ConfigError(f"{short} takes no target for a quadrotor", path=("params", item))
        k = QUAD_KINDS[short]
        if k.kind == "model_param":
            value = robot.model_params.get(k.target)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"robot {robot.name} has no positive model_params.{k.target} to scale "
                                  f"(got {value!r})", file=str(robot.file), path=("model_params", k.target))
        low, high = k.low, (2.0 * substeps if short == "delay" else k.high)
        entry = _profile_entry(profile, k) if profile is not None else None
        if entry is not None and entry.operation in ("scale", "abs"):
            lo, hi = entry.distribution.support()
            lo, hi = float(np.min(lo)), float(np.max(hi))
            if np.isfinite(lo) and np.isfinite(hi) and hi > lo:
                if short == "delay":
                    unit = entry.options.get("unit", "physics_steps")
                    factor = {"physics_steps": 1.0, "control_steps": float(substeps),
                              "seconds": robot.control.physics_hz}[unit]
                    low, high = float(np.floor(lo * factor)), float(np.ceil(hi * factor))
                elif entry.operation == "scale":
                    low, high = lo, hi
        if bounds and short in bounds:
            low, high = bounds[short]
        if not high > low:
            raise ConfigError(f"bounds [{low}, {high}] are empty", path=("params", short))
        if short != "delay" and low <= 0:
            raise ConfigError(f"bounds [{low}, {high}] must be positive scale factors", path=("params", short))
        ps = ParamSpec(name=short, short=short, kind=k.kind, targets=(k.target,) if k.target else (),
                       operation="abs" if short == "delay" else "scale", low=float(low), high=float(high),
                       unit=k.unit, integer=short == "delay")
        if any(p.name == ps.name for p in out):
            raise ConfigError("parameter given twice", path=("params", short))
        out.append(ps)
    return out


def _profile_entry(profile: Profile, k: _QuadKind) -> Any:
    for entry in profile.entries.values():
        if entry.param != k.kind:
            continue
        if k.kind == "action_latency" or entry.targets is None or k.target in entry.targets:
            return entry
    return None


def apply_quad_params(world: Any, specs: Sequence[ParamSpec], values: Sequence[float]) -> None:
    """Restore the world's nominal dynamics, apply ``values`` (one per spec, value units) and
    point the rotor model at them (``world.sync_model()``)."""
    world.restore_nominal()
    nominal = world.nominal["links"]["base"]
    for spec, v in zip(specs, values):
        k = QUAD_KINDS[spec.short]
        if k.kind == "action_latency":
            world.action_delay = int(round(v))
        elif k.kind == "link_mass":
            world.set_link("base", mass=float(nominal["mass"]) * float(v))
        elif k.kind == "link_inertia":
            world.set_link("base", inertia=np.asarray(nominal["inertia"], dtype=float) * float(v))
        else:
            world.model_params[k.target] = float(world.robot.model_params[k.target]) * float(v)
    world.sync_model()


def quad_absolute_values(robot: RobotDescription, nominal_links: dict[str, Any], spec: ParamSpec,
                         value: float) -> dict[str, float]:
    """Physical value(s) ``value`` of ``spec`` means: kg, kg·m² per axis, N/rpm², s, m, ..."""
    k = QUAD_KINDS[spec.short]
    if k.kind == "action_latency":
        return {"value": float(value), "seconds": float(value) / robot.control.physics_hz}
    if k.kind == "link_mass":
        return {"base": float(nominal_links["base"]["mass"]) * float(value)}
    if k.kind == "link_inertia":
        i = np.asarray(nominal_links["base"]["inertia"], dtype=float) * float(value)
        return {"ixx": float(i[0]), "iyy": float(i[1]), "izz": float(i[2])}
    return {k.target: float(robot.model_params[k.target]) * float(value)}
