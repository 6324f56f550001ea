"""Actuator declarations of ``robot.yaml`` (``actuators:``), parsed into typed configs.

Each group names its joints and a model; the model's class lives in
:mod:`sim2real.sim.actuators` (this module depends on nothing but the package's errors, so
:mod:`sim2real.robots` stays importable on a robot computer without PyBullet)::

    actuators:
      - joints: all                 # or a list of controlled joint names
        model: pd                   # pd | dc_motor | actuator_net | pybullet_position | pybullet_velocity | torque
        kp: [800, 800, 400, ...]    # N·m/rad, one number or one per joint of the group
        kd: [40, 40, 20, ...]       # N·m·s/rad
        interpolation: linear       # zoh | linear | cubic
        gravity_ff: false

Keys per model (scalars or per-joint lists where marked *):

=================== ==================================================================
model               keys
=================== ==================================================================
pd                  kp*, kd*, interpolation, gravity_ff
dc_motor            pd's keys + stall_torque* (N·m), free_speed* (rad/s)
actuator_net        net (file of ``sim2real actuator fit``, relative to robot.yaml)
pybullet_position   position_gain*, velocity_gain* (PyBullet's ``positionGains``/``velocityGains``)
pybullet_velocity   velocity_gain*
torque              (none: the command is the joint torque)
=================== ==================================================================

Without ``actuators:`` the robot gets one group over all joints from ``control.mode``:
``pybullet_position`` / ``pybullet_velocity`` with ``control.position_gain`` /
``control.velocity_gain``, or ``torque``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from sim2real._check import Checker
from sim2real.errors import RobotError

INTERPOLATIONS = ("zoh", "linear", "cubic")
#: models that compute a torque every physics step (PyBullet then runs the joints in torque mode)
TORQUE_MODELS = ("pd", "dc_motor", "actuator_net", "torque")
#: PyBullet's constraint motors
PYBULLET_MODELS = ("pybullet_position", "pybullet_velocity")
MODELS = (*TORQUE_MODELS, *PYBULLET_MODELS)
#: per-joint keys of each model and the world's per-joint field (``PhysicsWorld.current["joints"]``)
#: they set: the profile kinds ``position_gain`` / ``velocity_gain`` / ``stall_torque`` /
#: ``free_speed`` randomize exactly these values
_JOINT_KEYS = {
    "pd": {"kp": "position_gain", "kd": "velocity_gain"},
    "dc_motor": {"kp": "position_gain", "kd": "velocity_gain", "stall_torque": "stall_torque",
                 "free_speed": "free_speed"},
    "actuator_net": {},
    "pybullet_position": {"position_gain": "position_gain", "velocity_gain": "velocity_gain"},
    "pybullet_velocity": {"velocity_gain": "velocity_gain"},
    "torque": {},
}
_OTHER_KEYS = {
    "pd": {"interpolation", "gravity_ff"},
    "dc_motor": {"interpolation", "gravity_ff"},
    "actuator_net": {"net"},
    "pybullet_position": set(),
    "pybullet_velocity": set(),
    "torque": set(),
}
_REQUIRED = {"pd": ("kp", "kd"), "dc_motor": ("kp", "kd", "stall_torque", "free_speed"), "actuator_net": ("net",)}
#: what a position-command model reads from the command in each control mode
_COMMAND_MODES = {"pd": ("position", "velocity"), "dc_motor": ("position", "velocity"),
                  "actuator_net": ("position",), "pybullet_position": ("position",),
                  "pybullet_velocity": ("velocity",), "torque": ("torque",)}


@dataclass(frozen=True)
class ActuatorConfig:
    """One actuator group of robot.yaml.

    Attributes:
        model: the model name (:data:`MODELS`).
        joints: the group's controlled joint names, in robot.yaml ``joints`` order.
        indices: their positions among the controlled joints.
        values: per-joint values by world field (``position_gain`` = kp (N·m/rad) or PyBullet's
            gain, ``velocity_gain`` = kd (N·m·s/rad) or PyBullet's gain, ``stall_torque`` (N·m),
            ``free_speed`` (rad/s)), each a tuple with one value per joint of the group.
        interpolation: setpoint interpolation over the control period (pd, dc_motor).
        gravity_ff: add the nominal model's gravity torque (pd, dc_motor).
        net: actuator-net file (absolute path; actuator_net).
    """

    model: str
    joints: tuple[str, ...]
    indices: tuple[int, ...]
    values: dict[str, tuple[float, ...]] = field(default_factory=dict)
    interpolation: str = "zoh"
    gravity_ff: bool = False
    net: str | None = None

    @property
    def computes_torque(self) -> bool:
        """True when the model turns commands into torques every physics step."""
        return self.model in TORQUE_MODELS

    def accepts(self, mode: str) -> bool:
        """Whether the model can follow commands of control mode ``mode``."""
        return mode in _COMMAND_MODES[self.model]


def default_actuators(mode: str, names: Sequence[str], position_gain: float,
                      velocity_gain: float) -> tuple[ActuatorConfig, ...]:
    """The single group a robot without ``actuators:`` gets from its control mode (empty for
    the quadrotor's rotor modes)."""
    n = len(names)
    idx = tuple(range(n))
    if not n or mode not in ("position", "velocity", "torque"):
        return ()
    if mode == "torque":
        return (ActuatorConfig("torque", tuple(names), idx),)
    model = "pybullet_position" if mode == "position" else "pybullet_velocity"
    values = {"position_gain": (float(position_gain),) * n, "velocity_gain": (float(velocity_gain),) * n}
    return (ActuatorConfig(model, tuple(names), idx, values),)


def _per_joint(value: Any, n: int, chk: Checker, path: tuple[Any, ...], positive: bool) -> tuple[float, ...]:
    """A number or a list of ``n`` numbers, each finite and > 0 (``positive``) or >= 0."""
    items = value if isinstance(value, list) else [value] * n
    if len(items) != n:
        chk.fail(path, f"expected one number or a list of {n} (one per joint of the group), got {len(items)}")
    out = []
    for v in items:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf")
        if not ok or v < 0 or (positive and v == 0):
            chk.fail(path, f"expected {'positive' if positive else 'non-negative'} finite numbers, got {value!r}")
        out.append(float(v))
    return tuple(out)


def parse_actuators(raw: Any, names: Sequence[str], mode: str, file: Path) -> tuple[ActuatorConfig, ...]:
    """Validate robot.yaml ``actuators`` (a list of groups) against the controlled joints
    ``names`` and the control ``mode``; every controlled joint must be in exactly one group.

    Raises :class:`RobotError` naming the file and key (``actuators[i].kp`` ...).
    """
    chk = Checker(str(file), RobotError)
    if not isinstance(raw, list) or not raw:
        chk.fail(("actuators",), "expected a non-empty list of actuator groups")
    owner: dict[str, int] = {}
    groups = []
    for i, g in enumerate(raw):
        at = ("actuators", i)
        chk.section(g, at)
        model = g.get("model")
        if model not in MODELS:
            chk.fail((*at, "model"), f"expected one of {list(MODELS)}, got {model!r}")
        allowed = {"joints", "model", *_JOINT_KEYS[model], *_OTHER_KEYS[model]}
        for key in g:
            if key not in allowed:
                chk.fail((*at, key), f"unknown key {key!r} for model {model}; expected one of {sorted(allowed)}")
        for key in _REQUIRED.get(model, ()):
            if key not in g:
                chk.fail((*at, key), f"missing required key of model {model}")
        joints = g.get("joints", "all")
        if joints == "all":
            joints = list(names)
        if not isinstance(joints, list) or not joints or not all(isinstance(j, str) for j in joints):
            chk.fail((*at, "joints"), "expected 'all' or a non-empty list of controlled joint names")
        for j in joints:
            if j not in names:
                chk.fail((*at, "joints"),
                         f"unknown controlled joint {j!r}; expected names from 'joints': {list(names)}")
            if j in owner:
                chk.fail((*at, "joints"), f"joint {j!r} is already driven by actuators[{owner[j]}]")
            owner[j] = i
        ordered = tuple(n for n in names if n in joints)
        n = len(ordered)
        values = {}
        for key, world_field in _JOINT_KEYS[model].items():
            if key in g:
                values[world_field] = _per_joint(g[key], n, chk, (*at, key), positive=key in ("stall_torque", "free_speed"))
        # per-joint lists follow the group's `joints` order; store them in robot.yaml joint order
        if isinstance(g.get("joints"), list):
            perm = [joints.index(nm) for nm in ordered]
            values = {k: tuple(v[p] for p in perm) for k, v in values.items()}
        interp = g.get("interpolation", "zoh")
        if interp not in INTERPOLATIONS:
            chk.fail((*at, "interpolation"), f"expected one of {list(INTERPOLATIONS)}, got {interp!r}")
        gff = chk.boolean(g.get("gravity_ff", False), (*at, "gravity_ff"))
        net = None
        if model == "actuator_net":
            if not isinstance(g["net"], str):
                chk.fail((*at, "net"), "expected the path of a fitted net (sim2real actuator fit --out)")
            net_path = (file.parent / g["net"]).resolve()
            if not net_path.is_file():
                chk.fail((*at, "net"), f"actuator net file {g['net']!r} not found next to robot.yaml")
            net = str(net_path)
        cfg = ActuatorConfig(model, ordered, tuple(names.index(nm) for nm in ordered), values, interp, gff, net)
        if not cfg.accepts(mode):
            chk.fail((*at, "model"), f"model {model} cannot follow control.mode {mode!r} commands")
        groups.append(cfg)
    missing = [n for n in names if n not in owner]
    if missing:
        chk.fail(("actuators",), f"joints {missing} have no actuator group")
    kinds = {c.computes_torque for c in groups}
    if len(kinds) > 1:
        chk.fail(("actuators",), "PyBullet motors (pybullet_position/pybullet_velocity) cannot be mixed with "
                 "torque-computing models in one robot")
    return tuple(groups)
