"""The parameter kinds a profile can randomize (the ``param`` of an entry).

:data:`PARAM_KINDS` maps each kind to a :class:`KindSpec`: what it targets, the vector
dimension of one draw, the default operation, whether the resulting quantity must stay
non-negative (or within [0, 1]), and the kind-specific keys with their defaults and
validators. The table in ``docs/profiles.md`` documents the same thing for users.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from sim2real.profiles.distributions import Distribution, _describe, _is_number, parse_distribution

#: target categories
LINK = "link"                 # robot links + ``base``
LINK_OR_FLOOR = "link_or_floor"  # robot links + ``base`` + ``floor``
JOINT = "joint"               # controlled joints
MODEL_PARAM = "model_param"   # keys of the robot's model_params

OPERATIONS = ("abs", "scale", "add")
WHENS = ("startup", "reset", "interval")

Fail = Callable[..., Any]
Validator = Callable[[Any, Fail], Any]  # (raw value, fail) -> parsed value


@dataclass(frozen=True)
class OptionSpec:
    """A kind-specific key: its default (already parsed) and a validator of raw values."""

    default: Any
    parse: Validator
    doc: str = ""


#: Largest ``scale`` factor of any kind: beyond it a simulated world stops being physical
#: (a 1e308 link mass makes every observation NaN).
MAX_SCALE = 100.0


#: Bound (N) on each component of a ``wind`` force.
WIND_MAX_ABS = 100.0


@dataclass(frozen=True)
class KindSpec:
    """What one parameter kind is.

    Attributes:
        name: the kind (``link_mass``, ...).
        target: target category (:data:`LINK`, :data:`LINK_OR_FLOOR`, :data:`JOINT`,
            :data:`MODEL_PARAM`) or ``None`` for global kinds (one value per world).
        dims: allowed vector lengths of one draw; ``dims[0]`` when every parameter is a number.
        default_op: operation used when the entry gives none.
        non_negative: the resulting quantity must be >= 0 (checked for ``abs``/``scale``).
        unit_interval: the resulting quantity must lie in [0, 1] (checked for ``abs``).
        integer: draws are rounded to whole numbers (counts).
        default_targets: targets when the entry gives none (``None`` = all).
        requires_interval: the kind only makes sense with ``when: interval``.
        max_abs: physical bound on the magnitude of an ``abs``/``add`` draw (in the kind's unit;
            ``None``: none); ``scale`` draws are bounded by :data:`MAX_SCALE` for every kind.
        options: kind-specific keys.
        doc: one line for ``sim2real profile`` output and docs.
    """

    name: str
    target: str | None
    dims: tuple[int, ...] = (1,)
    default_op: str = "scale"
    non_negative: bool = False
    unit_interval: bool = False
    integer: bool = False
    default_targets: tuple[str, ...] | None = None
    requires_interval: bool = False
    max_abs: float | None = None
    options: Mapping[str, OptionSpec] = field(default_factory=dict)
    doc: str = ""

    @property
    def is_global(self) -> bool:
        return self.target is None

    def value_range(self, operation: str) -> tuple[float, float]:
        """Range a draw must stay within for ``operation`` (``(-inf, inf)`` if unconstrained)."""
        inf = float("inf")
        if operation == "scale":
            return (0.0, MAX_SCALE)  # a negative scale factor is never meant; a huge one breaks the physics
        bound = inf if self.max_abs is None else self.max_abs
        if operation == "abs":
            if self.unit_interval:
                return (0.0, 1.0)
            if self.non_negative:
                return (0.0, bound)
        return (-bound, bound)


# -- option validators --------------------------------------------------------------------

def _choice(*values: str) -> Validator:
    def parse(v: Any, fail: Fail) -> str:
        if v not in values:
            fail(f"expected one of {list(values)}, got {_describe(v)}")
        return v
    return parse


def _subset(*values: str) -> Validator:
    def parse(v: Any, fail: Fail) -> list[str]:
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not v:
            fail(f"expected a non-empty list drawn from {list(values)}, got {_describe(v)}")
        for i, x in enumerate(v):
            if x not in values:
                fail(f"expected one of {list(values)}, got {_describe(x)}", (i,))
        return list(dict.fromkeys(v))
    return parse


def _bool(v: Any, fail: Fail) -> bool:
    if not isinstance(v, bool):
        fail(f"expected true or false, got {_describe(v)}")
    return v


def _positive(v: Any, fail: Fail) -> float:
    if not _is_number(v) or not v > 0:
        fail(f"expected a number > 0, got {_describe(v)}")
    return float(v)


def _positive_int(v: Any, fail: Fail) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        fail(f"expected an integer >= 1, got {_describe(v)}")
    return int(v)


def _size_range(v: Any, fail: Fail) -> list[float]:
    if _is_number(v):
        v = [v, v]
    if not (isinstance(v, list) and len(v) == 2 and all(_is_number(x) for x in v)):
        fail(f"expected [low, high] in metres, got {_describe(v)}")
    if not 0 < v[0] <= v[1]:
        fail(f"expected 0 < low <= high, got {v}")
    return [float(v[0]), float(v[1])]


def _region(v: Any, fail: Fail) -> dict[str, list[float]]:
    if not isinstance(v, dict):
        fail(f"expected a mapping {{low: [x, y, z], high: [x, y, z]}}, got {_describe(v)}")
    for key in v:
        if key not in ("low", "high"):
            fail("unknown key; expected 'low' or 'high'", (key,))
    out = {}
    for key in ("low", "high"):
        x = v.get(key)
        if not (isinstance(x, list) and len(x) == 3 and all(_is_number(e) for e in x)):
            fail(f"expected [x, y, z] in metres, got {_describe(x)}", (key,))
        out[key] = [float(e) for e in x]
    if any(lo > hi for lo, hi in zip(out["low"], out["high"])):
        fail("inverted bounds: low must be <= high in every coordinate", ("low",))
    return out


def _sub_distribution(non_negative: bool) -> Validator:
    """A nested ``{distribution: ..., low: ..., ...}`` of dimension 1."""

    def parse(v: Any, fail: Fail) -> Distribution:
        if not isinstance(v, dict):
            fail(f"expected a mapping with a distribution, got {_describe(v)}")
        for key in v:
            if key not in ("distribution", "low", "high", "mean", "std", "value"):
                fail("unknown key; expected distribution, low, high, mean, std or value", (key,))
        dist = parse_distribution(v, (1,), lambda msg, sub=(): fail(msg, sub))
        if non_negative and float(dist.support()[0][0]) < 0:
            fail("expected a distribution bounded below by 0 (a magnitude); give low >= 0", ("low",))
        return dist

    return parse


_PATTERNS = ("solid", "checker", "noise", "gradient")
_SHAPES = ("box", "sphere", "cylinder")


def _k(name: str, target: str | None, **kw: Any) -> KindSpec:
    return KindSpec(name=name, target=target, **kw)


_KINDS = [
    # dynamics
    _k("link_mass", LINK, non_negative=True,
       options={"recompute_inertia": OptionSpec(True, _bool, "scale the inertia tensor with the mass")},
       doc="link mass (kg)"),
    _k("link_inertia", LINK, dims=(1, 3), non_negative=True, doc="diagonal of the local inertia (kg·m²)"),
    _k("com_offset", LINK, dims=(3,), default_op="add", doc="centre-of-mass shift in the link frame (m)"),
    _k("lateral_friction", LINK_OR_FLOOR, non_negative=True, doc="lateral (sliding) friction coefficient"),
    _k("spinning_friction", LINK_OR_FLOOR, non_negative=True, doc="torsional friction coefficient"),
    _k("rolling_friction", LINK_OR_FLOOR, non_negative=True, doc="rolling friction coefficient"),
    _k("restitution", LINK_OR_FLOOR, default_op="abs", non_negative=True, doc="coefficient of restitution"),
    _k("joint_damping", JOINT, non_negative=True, doc="viscous joint damping (N·m·s/rad)"),
    _k("joint_friction", JOINT, default_op="abs", non_negative=True, doc="Coulomb joint friction torque (N·m)"),
    _k("armature", JOINT, default_op="abs", non_negative=True, doc="rotor inertia about the joint axis (kg·m²)"),
    _k("gravity", None, dims=(3,), default_op="add", max_abs=100.0, doc="world gravity vector (m/s²)"),
    # actuation
    _k("motor_strength", JOINT, non_negative=True, doc="scale of the joint's max effort"),
    _k("position_gain", JOINT, non_negative=True,
       doc="position gain: kp (N·m/rad) of pd/dc_motor drives, PyBullet's positionGain of its motor"),
    _k("velocity_gain", JOINT, non_negative=True,
       doc="velocity gain: kd (N·m·s/rad) of pd/dc_motor drives, PyBullet's velocityGain of its motors"),
    _k("stall_torque", JOINT, non_negative=True, doc="DC-motor stall torque (N·m; dc_motor drives)"),
    _k("free_speed", JOINT, non_negative=True, doc="DC-motor no-load speed (rad/s; dc_motor drives)"),
    _k("action_latency", None, default_op="abs", non_negative=True,
       options={"unit": OptionSpec("physics_steps", _choice("physics_steps", "control_steps", "seconds"))},
       doc="delay between policy output and actuation"),
    _k("observation_latency", None, default_op="abs", non_negative=True,
       options={"unit": OptionSpec("control_steps", _choice("control_steps", "physics_steps", "seconds"))},
       doc="delay between measurement and observation"),
    _k("action_noise", None, default_op="abs", non_negative=True,
       options={"noise": OptionSpec("gaussian", _choice("gaussian", "uniform"))},
       doc="per-step action noise level (normalised action units)"),
    _k("observation_noise", None, default_op="abs", non_negative=True,
       options={"noise": OptionSpec("gaussian", _choice("gaussian", "uniform")),
                "bias": OptionSpec(None, _sub_distribution(False), "per-episode bias per observation element")},
       doc="per-step observation noise level"),
    # disturbances
    _k("push", LINK, default_op="abs", non_negative=True, default_targets=("base",), requires_interval=True,
       options={"direction": OptionSpec("any", _choice("any", "horizontal")),
                "duration": OptionSpec(0.1, _positive, "seconds the force is held"),
                "torque": OptionSpec(None, _sub_distribution(True), "torque magnitude (N·m)")},
       doc="external force (N) on a link, random direction"),
    _k("wind", LINK, dims=(3,), default_op="abs", default_targets=("base",), max_abs=WIND_MAX_ABS,
       doc="constant external force (N, world frame) on a link, held at every physics step"),
    _k("model_param", MODEL_PARAM, doc="robot-model number from robot.yaml model_params"),
    # visual
    _k("texture", LINK_OR_FLOOR, dims=(3,), default_op="abs", unit_interval=True,
       options={"patterns": OptionSpec(list(_PATTERNS), _subset(*_PATTERNS)),
                "texture_size": OptionSpec(64, _positive_int, "texture side in pixels")},
       doc="procedural texture; the draw is its base RGB colour"),
    _k("link_color", LINK_OR_FLOOR, dims=(3, 4), default_op="abs", unit_interval=True, doc="RGB(A) colour"),
    _k("light_direction", None, dims=(3,), default_op="abs", doc="direction the light comes from"),
    _k("light_color", None, dims=(3,), default_op="abs", unit_interval=True, doc="light RGB colour"),
    _k("light_ambient", None, default_op="abs", unit_interval=True, doc="ambient coefficient"),
    _k("light_diffuse", None, default_op="abs", unit_interval=True, doc="diffuse coefficient"),
    _k("light_specular", None, default_op="abs", unit_interval=True, doc="specular coefficient"),
    _k("camera_position", None, dims=(3,), default_op="add", doc="camera eye position (m, world)"),
    _k("camera_orientation", None, dims=(3,), default_op="add", doc="roll/pitch/yaw jitter of the view (rad)"),
    _k("camera_fov", None, default_op="add", non_negative=True, doc="vertical field of view (deg)"),
    _k("distractors", None, default_op="abs", non_negative=True, integer=True,
       options={"shapes": OptionSpec(list(_SHAPES), _subset(*_SHAPES)),
                "size": OptionSpec([0.02, 0.08], _size_range, "object size range (m)"),
                "region": OptionSpec({"low": [0.2, -0.5, 0.0], "high": [0.9, 0.5, 0.4]}, _region,
                                     "box objects are placed in (m, world)")},
       doc="number of random distractor objects"),
]

#: kind name -> spec
PARAM_KINDS: dict[str, KindSpec] = {k.name: k for k in _KINDS}
