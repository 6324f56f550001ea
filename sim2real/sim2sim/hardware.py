"""The arm's hardware file: the physical truth of one MuJoCo "robot", and blind draws of it.

A hardware file (YAML; ``configs/hardware/kuka_iiwa.yaml`` is an example)::

    robot: kuka_iiwa
    physics_hz: 1000            # MuJoCo steps per second (>= 500)
    joint_states_hz: 200        # sensor_msgs/JointState publish rate
    start_pose: home            # or a list of n joint angles, rad (robot.yaml joint order)
    links:
      mass_factor: 1.0          # one number for every moving link, or {link: factor} (missing links: 1)
    joints:                     # one number for every joint, or a list of n (robot.yaml joint order)
      damping: 0.5              # viscous, N·m·s/rad
      friction: 1.0             # Coulomb, N·m
      armature: 0.1             # reflected rotor inertia, kg·m²
    drive:
      kp: [...]                 # N·m/rad
      kd: [...]                 # N·m·s/rad
      setpoint: ramp            # step (zero-order hold) | ramp (linear over one command period)
      gravity_ff: true          # vendor gravity feed-forward from the NOMINAL URDF model
      effort_limit: robot       # N·m per joint; 'robot' = robot.yaml max_effort
      delay: 0.004              # transport delay of commands, s
    noise:                      # standard deviations of the published measurements
      position: 1.0e-5          # rad
      velocity: 1.0e-3          # rad/s
      effort: 0.2               # N·m

:meth:`ArmHardwareConfig.to_dict` writes the same layout with every value explicit, so a
``--truth`` file is itself a valid hardware file.

A draw file (``configs/hardware/arm_draw.yaml``) names a base hardware file per robot and
distributions (the profile syntax: ``{distribution: uniform, low: .., high: ..}``, also
``log_uniform``, ``gaussian``, ``constant``; ``{choice: [a, b]}`` for categories) for factors on
the base values and for absolute values; :func:`draw_hardware` consumes its generator in a fixed
order, so one seed always gives the same hardware.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from sim2real._check import Checker
from sim2real._io import read_yaml_file
from sim2real.profiles.distributions import Distribution, parse_distribution
from sim2real.robots import RobotDescription

SETPOINTS = ("step", "ramp")
MIN_PHYSICS_HZ = 500.0
_TOP = {"robot", "physics_hz", "joint_states_hz", "start_pose", "links", "joints", "drive", "noise"}
_JOINT_KEYS = {"damping": 0.0, "friction": 0.0, "armature": 0.0}
_DRIVE = {"kp", "kd", "setpoint", "gravity_ff", "effort_limit", "delay"}
_NOISE = ("position", "velocity", "effort")


@dataclass(frozen=True)
class ArmHardwareConfig:
    """One arm's physical truth. Per-joint tuples have robot.yaml joint order, shape (n,).

    Attributes:
        robot: robot name.
        physics_hz: MuJoCo rate, Hz; joint_states_hz: JointState publish rate, Hz.
        start_pose: joint angles at start, rad.
        mass_factors: URDF link -> factor on its mass and inertia.
        damping (N·m·s/rad), friction (N·m), armature (kg·m²): the joints' own physics.
        kp (N·m/rad), kd (N·m·s/rad), effort_limit (N·m): the servo.
        setpoint: ``step`` or ``ramp``; gravity_ff: nominal-model gravity feed-forward on/off.
        delay: command transport delay, s.
        noise_position (rad), noise_velocity (rad/s), noise_effort (N·m): measurement noise std.
    """

    robot: str
    physics_hz: float
    joint_states_hz: float
    start_pose: tuple[float, ...]
    mass_factors: Mapping[str, float]
    damping: tuple[float, ...]
    friction: tuple[float, ...]
    armature: tuple[float, ...]
    kp: tuple[float, ...]
    kd: tuple[float, ...]
    setpoint: str
    gravity_ff: bool
    effort_limit: tuple[float, ...]
    delay: float
    noise_position: float = 0.0
    noise_velocity: float = 0.0
    noise_effort: float = 0.0
    source: str = field(default="", compare=False)  # where it came from (a path, or "drawn")

    def to_dict(self) -> dict[str, Any]:
        """The hardware-file layout with every value explicit (JSON/YAML-able)."""
        lst = lambda v: [float(x) for x in v]  # noqa: E731
        return {
            "robot": self.robot, "physics_hz": float(self.physics_hz), "joint_states_hz": float(self.joint_states_hz),
            "start_pose": lst(self.start_pose),
            "links": {"mass_factor": {k: float(v) for k, v in self.mass_factors.items()}},
            "joints": {"damping": lst(self.damping), "friction": lst(self.friction), "armature": lst(self.armature)},
            "drive": {"kp": lst(self.kp), "kd": lst(self.kd), "setpoint": self.setpoint,
                      "gravity_ff": bool(self.gravity_ff), "effort_limit": lst(self.effort_limit),
                      "delay": float(self.delay)},
            "noise": {"position": float(self.noise_position), "velocity": float(self.noise_velocity),
                      "effort": float(self.noise_effort)},
        }


class _Checker(Checker):
    """:class:`~sim2real._check.Checker` (``ConfigError`` naming the file and key path) with the
    hardware file's value checks: a finite number passing ``ok``, per joint or one for all."""

    def value(self, value: Any, path: Sequence[Any], ok: Callable[[float], bool] = math.isfinite,
              expected: str = "a finite number") -> float:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or not ok(value):
            self.fail(path, f"expected {expected}, got {value!r}")
        return float(value)

    def per_joint(self, value: Any, n: int, path: Sequence[Any], ok: Callable[[float], bool],
                  expected: str) -> tuple[float, ...]:
        if isinstance(value, list):
            if len(value) != n:
                self.fail(path, f"expected {n} values (one per joint), got {len(value)}")
            return tuple(self.value(v, (*path, i), ok, expected) for i, v in enumerate(value))
        return (self.value(value, path, ok, expected + f" or a list of {n}"),) * n


def _nonneg(v: float) -> bool:
    return v >= 0


def _pos(v: float) -> bool:
    return v > 0


def parse_hardware(raw: Any, robot: RobotDescription, file: str, links: Sequence[str]) -> ArmHardwareConfig:
    """Validate a hardware mapping for ``robot``; ``links`` are the links mass factors may name."""
    c = _Checker(file)
    root = c.section(raw, (), _TOP)
    n = robot.n_joints
    if "robot" in root and root["robot"] != robot.name:
        c.fail(("robot",), f"this hardware file is for robot {root['robot']!r}, not {robot.name!r}")
    physics_hz = c.value(root.get("physics_hz", 1000.0), ("physics_hz",), lambda v: v >= MIN_PHYSICS_HZ,
                          f"a rate >= {MIN_PHYSICS_HZ:g} Hz")
    js_hz = c.value(root.get("joint_states_hz", 200.0), ("joint_states_hz",), lambda v: 0 < v <= physics_hz,
                     f"a rate in (0, physics_hz = {physics_hz:g}] Hz")
    pose = root.get("start_pose", "home")
    if pose == "home":
        start = tuple(j.home for j in robot.joints)
    else:
        if not isinstance(pose, list):
            c.fail(("start_pose",), f"expected 'home' or a list of {n} joint angles (rad), got {pose!r}")
        start = c.per_joint(pose, n, ("start_pose",), math.isfinite, "a joint angle (rad)")
        for i, (q, j) in enumerate(zip(start, robot.joints)):
            if not j.lower <= q <= j.upper:
                c.fail(("start_pose", i), f"{q} is outside {j.name}'s limits [{j.lower}, {j.upper}]")
    lk = c.section(root.get("links", {}), ("links",), {"mass_factor"})
    mf_raw = lk.get("mass_factor", 1.0)
    if isinstance(mf_raw, dict):
        for name in mf_raw:
            if name not in links:
                c.fail(("links", "mass_factor", name), f"not a moving link with mass; expected one of {list(links)}")
        mass = {name: c.value(mf_raw.get(name, 1.0), ("links", "mass_factor", name), _pos, "a factor > 0")
                for name in links}
    else:
        f = c.value(mf_raw, ("links", "mass_factor"), _pos, "a factor > 0 or a mapping {link: factor}")
        mass = {name: f for name in links}
    jt = c.section(root.get("joints", {}), ("joints",), set(_JOINT_KEYS))
    joint_values = {k: c.per_joint(jt.get(k, d), n, ("joints", k), _nonneg, "a number >= 0")
                    for k, d in _JOINT_KEYS.items()}
    if "drive" not in root:
        c.fail(("drive",), "missing required key (kp, kd, setpoint, gravity_ff, effort_limit, delay)")
    dr = c.section(root["drive"], ("drive",), _DRIVE)
    for key in ("kp", "kd"):
        if key not in dr:
            c.fail(("drive", key), "missing required key")
    kp = c.per_joint(dr["kp"], n, ("drive", "kp"), _pos, "a gain > 0 (N·m/rad)")
    kd = c.per_joint(dr["kd"], n, ("drive", "kd"), _nonneg, "a gain >= 0 (N·m·s/rad)")
    setpoint = dr.get("setpoint", "ramp")
    if setpoint not in SETPOINTS:
        c.fail(("drive", "setpoint"), f"expected one of {list(SETPOINTS)}, got {setpoint!r}")
    gff = dr.get("gravity_ff", True)
    if not isinstance(gff, bool):
        c.fail(("drive", "gravity_ff"), f"expected true or false, got {gff!r}")
    lim_raw = dr.get("effort_limit", "robot")
    limit = (tuple(j.max_effort for j in robot.joints) if lim_raw == "robot" else
             c.per_joint(lim_raw, n, ("drive", "effort_limit"), _pos, "'robot' or a limit > 0 (N·m)"))
    delay = c.value(dr.get("delay", 0.0), ("drive", "delay"), lambda v: 0 <= v < 1.0, "a delay in [0, 1) s")
    nz = c.section(root.get("noise", {}), ("noise",), set(_NOISE))
    noise = {k: c.value(nz.get(k, 0.0), ("noise", k), _nonneg, "a standard deviation >= 0") for k in _NOISE}
    return ArmHardwareConfig(
        robot=robot.name, physics_hz=physics_hz, joint_states_hz=js_hz, start_pose=start, mass_factors=mass,
        damping=joint_values["damping"], friction=joint_values["friction"], armature=joint_values["armature"],
        kp=kp, kd=kd, setpoint=setpoint, gravity_ff=gff, effort_limit=limit, delay=delay,
        noise_position=noise["position"], noise_velocity=noise["velocity"], noise_effort=noise["effort"], source=file)


def _moving_links(robot: RobotDescription) -> list[str]:
    from sim2real.sim2sim.model import build_arm, moving_links

    return moving_links(build_arm(robot, physics_hz=MIN_PHYSICS_HZ))


def load_hardware(path: str | Path, robot: RobotDescription) -> ArmHardwareConfig:
    """Read and validate a hardware file for ``robot`` (:class:`ConfigError` naming the file and key)."""
    raw = read_yaml_file(path, what="hardware file")
    return parse_hardware(raw, robot, str(path), _moving_links(robot))


# --------------------------------------------------------------------------------- draws
#: draw key -> what it draws; the order here is the order the generator is consumed in
DRAW_KEYS: dict[str, str] = {
    "mass_factor": "per link: factor on the base file's mass factor",
    "damping_factor": "per joint: factor on the base damping",
    "friction_factor": "per joint: factor on the base friction",
    "armature_factor": "per joint: factor on the base armature",
    "kp_factor": "per joint: factor on the base kp",
    "kd_factor": "per joint: factor on the base kd",
    "delay": "s, absolute",
    "setpoint": "step | ramp",
    "gravity_ff": "true | false",
    "noise_position": "rad std, absolute",
    "noise_velocity": "rad/s std, absolute",
    "noise_effort": "N·m std, absolute",
}
_CATEGORIES = {"setpoint": list(SETPOINTS), "gravity_ff": [True, False]}


def _parse_draw_entry(c: _Checker, key: str, raw: Any) -> tuple[Distribution | list[Any], bool]:
    """An entry's distribution (or list of choices) and whether one draw is shared by every
    link/joint (``shared: true``, per-link/joint factors only)."""
    path = ("draw", key)
    if key in _CATEGORIES:
        entry = c.section(raw, path, {"choice"})
        options = entry.get("choice")
        if not isinstance(options, list) or not options or any(o not in _CATEGORIES[key] for o in options):
            c.fail((*path, "choice"), f"expected a non-empty list drawn from {_CATEGORIES[key]}")
        return options, True
    entry = dict(c.section(raw, path, {"distribution", "low", "high", "mean", "std", "value", "shared"}))
    shared = entry.pop("shared", False)
    if not isinstance(shared, bool):
        c.fail((*path, "shared"), f"expected true or false, got {shared!r}")
    if shared and not key.endswith("_factor"):
        c.fail((*path, "shared"), "only per-link/per-joint factors (*_factor) can be shared")
    dist = parse_distribution(entry, [1], lambda msg, sub=(): c.fail((*path, *sub), msg))
    low, high = dist.support()
    if key in ("mass_factor", "kp_factor") and not low[0] > 0:
        c.fail(path, "expected a distribution over values > 0 (bound it: low > 0)")
    if not low[0] >= 0:
        c.fail(path, "expected a distribution over values >= 0 (bound it: low >= 0)")
    if key == "delay" and not high[0] < 1.0:
        c.fail(path, "expected a distribution over delays below 1 s (bound it: high < 1)")
    return dist, shared


def draw_hardware(path: str | Path, robot: RobotDescription, rng: np.random.Generator) -> ArmHardwareConfig:
    """Draw an arm hardware for ``robot`` from the draw file at ``path`` with ``rng``.

    Keys missing from ``draw`` keep the base file's value. The result's ``source`` says only
    that it was drawn (the values stay out of every output but ``--truth``).
    """
    path = Path(path)
    c = _Checker(str(path))
    raw = c.section(read_yaml_file(path, what="draw file"), (), {"base", "draw"})
    if "base" not in raw:
        c.fail(("base",), "missing required key (robot name -> base hardware file)")
    bases = raw["base"]
    if not isinstance(bases, dict):
        c.fail(("base",), f"expected a mapping robot name -> hardware file, got {type(bases).__name__}")
    if robot.name not in bases:
        c.fail(("base",), f"no base hardware file for robot {robot.name!r} (has: {sorted(bases)})")
    if not isinstance(bases[robot.name], str):
        c.fail(("base", robot.name), "expected a path to a hardware file")
    base_path = (path.parent / bases[robot.name]).resolve()
    if not base_path.is_file():
        c.fail(("base", robot.name), f"base hardware file not found: {base_path}")
    draws = c.section(raw.get("draw", {}), ("draw",), set(DRAW_KEYS))
    entries = {k: _parse_draw_entry(c, k, draws[k]) for k in DRAW_KEYS if k in draws}
    base = load_hardware(base_path, robot)
    n, links = robot.n_joints, list(base.mass_factors)
    values: dict[str, Any] = {}
    for key in DRAW_KEYS:  # fixed order: reproducible whatever the file's key order
        if key not in entries:
            continue
        entry, shared = entries[key]
        if isinstance(entry, list):
            values[key] = entry[int(rng.integers(len(entry)))]
            continue
        size = len(links) if key == "mass_factor" else n if key.endswith("_factor") else 1
        values[key] = np.repeat(entry.sample(rng, 1)[:, 0], size) if shared else entry.sample(rng, size)[:, 0]

    def scaled(name: str, current: Sequence[float]) -> tuple[float, ...]:
        f = values.get(f"{name}_factor")
        return tuple(current) if f is None else tuple(float(a * b) for a, b in zip(current, f))

    mass = dict(base.mass_factors)
    if "mass_factor" in values:
        mass = {k: float(mass[k] * f) for k, f in zip(links, values["mass_factor"])}
    scalar = lambda key, default: float(values[key][0]) if key in values else default  # noqa: E731
    return replace(
        base, mass_factors=mass, damping=scaled("damping", base.damping), friction=scaled("friction", base.friction),
        armature=scaled("armature", base.armature), kp=scaled("kp", base.kp), kd=scaled("kd", base.kd),
        delay=scalar("delay", base.delay), setpoint=values.get("setpoint", base.setpoint),
        gravity_ff=bool(values.get("gravity_ff", base.gravity_ff)),
        noise_position=scalar("noise_position", base.noise_position),
        noise_velocity=scalar("noise_velocity", base.noise_velocity),
        noise_effort=scalar("noise_effort", base.noise_effort), source=f"drawn from {path.name}")
