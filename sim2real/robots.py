"""Robot descriptions: ``robots/<name>/robot.yaml`` loaded into typed, validated objects.

A robot file says which model to load (URDF or MJCF, from ``pybullet_data`` or next to
the YAML), which joints are controlled and their limits, the nominal physics the
simulator starts from, the end-effector link, the default control mode and rate, the drive
of each joint group (``actuators``, parsed by :mod:`sim2real.actuator_config`), and for
deployment the real robot's joint names and default ROS 2 topics.

This module depends on nothing but PyYAML so the ROS 2 bridge can use it on a robot
computer without PyBullet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping


from sim2real._io import data_dir, read_yaml_file
from sim2real.actuator_config import ActuatorConfig, default_actuators, parse_actuators
from sim2real.errors import RobotError

ROBOT_KINDS = ("arm", "quadrotor", "legged")
CONTROL_MODES = ("position", "velocity", "torque", "motor", "thrust_rates")
MODEL_FORMATS = ("urdf", "mjcf")
MODEL_SOURCES = ("pybullet_data", "local")


@dataclass(frozen=True)
class JointSpec:
    """One controlled joint. Angles in rad, velocities in rad/s, efforts in N·m (N for prismatic)."""

    name: str
    lower: float
    upper: float
    max_velocity: float
    max_effort: float
    home: float = 0.0


@dataclass(frozen=True)
class ModelSpec:
    path: str
    source: str = "pybullet_data"
    format: str = "urdf"
    fixed_base: bool = True
    base_position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    base_orientation: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)  # xyzw
    body_name: str | None = None  # MJCF files may hold several bodies; pick this one

    def resolved_path(self, robot_dir: Path) -> str:
        """Absolute path of the model file (``pybullet_data`` paths resolved against its data dir)."""
        if self.source == "local":
            return str((robot_dir / self.path).resolve())
        import pybullet_data  # imported lazily: deployment machines may not have PyBullet

        return str(Path(pybullet_data.getDataPath()) / self.path)


@dataclass(frozen=True)
class ControlSpec:
    mode: str = "position"
    rate_hz: float = 20.0
    physics_hz: float = 240.0
    position_gain: float = 0.3
    velocity_gain: float = 1.0

    @property
    def substeps(self) -> int:
        """Physics steps per control step."""
        return max(1, int(round(self.physics_hz / self.rate_hz)))


@dataclass(frozen=True)
class Ros2Spec:
    """What the real robot looks like on ROS 2 (names in the same order as ``joints``)."""

    joint_names: tuple[str, ...] = ()
    topics: Mapping[str, str] = field(default_factory=dict)
    controller: str = ""
    frame_id: str = ""


@dataclass(frozen=True)
class RobotDescription:
    name: str
    kind: str
    description: str
    model: ModelSpec
    control: ControlSpec
    joints: tuple[JointSpec, ...]
    end_effector_link: str | None
    nominal: Mapping[str, Any]
    model_params: Mapping[str, Any]
    ros2: Ros2Spec
    links: tuple[str, ...]
    directory: Path
    file: Path
    #: actuator groups (robot.yaml ``actuators``, or the default of ``control.mode``)
    actuators: tuple[ActuatorConfig, ...] = ()

    def actuator_of(self, joint: str) -> ActuatorConfig | None:
        """The actuator group driving controlled joint ``joint`` (``None``: no group)."""
        return next((a for a in self.actuators if joint in a.joints), None)

    def actuator_value(self, field: str, joint: str) -> float | None:
        """Nominal per-joint actuator value (``position_gain`` = kp or PyBullet's gain,
        ``velocity_gain`` = kd or PyBullet's gain, ``stall_torque``, ``free_speed``) of ``joint``,
        ``None`` when its model has no such value."""
        a = self.actuator_of(joint)
        if a is None or field not in a.values:
            return None
        return a.values[field][a.joints.index(joint)]

    @property
    def joint_names(self) -> list[str]:
        return [j.name for j in self.joints]

    @property
    def n_joints(self) -> int:
        return len(self.joints)

    def model_path(self) -> str:
        return self.model.resolved_path(self.directory)

    def all_link_names(self) -> list[str]:
        """Link names a profile may target (``base`` is the root link)."""
        return ["base", *self.links]


def robots_dir() -> Path:
    return data_dir("robots")


def list_robots() -> list[str]:
    root = robots_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "robot.yaml").is_file())


_TOP_KEYS = {
    "name", "kind", "description", "model", "control", "joints", "end_effector_link",
    "nominal", "model_params", "ros2", "links", "actuators",
}


def _expect(cond: bool, msg: str, file: Path, path: tuple[Any, ...]) -> None:
    if not cond:
        raise RobotError(msg, file=str(file), path=path)


def _num(value: Any, file: Path, path: tuple[Any, ...]) -> float:
    _expect(isinstance(value, (int, float)) and not isinstance(value, bool),
            f"expected a number, got {value!r}", file, path)
    return float(value)


def _mapping(value: Any, file: Path, path: tuple[Any, ...], allowed: set[str] | None = None) -> dict:
    _expect(isinstance(value, dict), f"expected a mapping, got {type(value).__name__}", file, path)
    if allowed is not None:
        for key in value:
            _expect(key in allowed, f"unknown key {key!r}; expected one of {sorted(allowed)}",
                    file, (*path, key))
    return value


def load_robot(name_or_path: str | Path) -> RobotDescription:
    """Load a robot by name (a folder under ``robots/``) or by path to its ``robot.yaml``.

    Raises :class:`RobotError` naming the file and key for anything invalid, or listing
    the known robots when the name is unknown.
    """
    cand = Path(name_or_path)
    if cand.suffix in (".yaml", ".yml") and cand.is_file():
        file = cand
    elif cand.is_dir() and (cand / "robot.yaml").is_file():
        file = cand / "robot.yaml"
    else:
        file = robots_dir() / str(name_or_path) / "robot.yaml"
        if not file.is_file():
            known = ", ".join(list_robots()) or "none found"
            raise RobotError(f"unknown robot {str(name_or_path)!r} (known robots: {known})")
    raw = read_yaml_file(file, RobotError, what="robot file")
    return parse_robot(raw, file)


def parse_robot(raw: Any, file: Path) -> RobotDescription:
    file = Path(file)
    root = _mapping(raw, file, (), _TOP_KEYS)
    for key in ("name", "kind", "model", "joints"):
        _expect(key in root, "missing required key", file, (key,))
    kind = root["kind"]
    _expect(kind in ROBOT_KINDS, f"expected one of {list(ROBOT_KINDS)}, got {kind!r}", file, ("kind",))

    m = _mapping(root["model"], file, ("model",),
                 {"path", "source", "format", "fixed_base", "base_position", "base_orientation", "body_name"})
    _expect(isinstance(m.get("path"), str), "expected a file path string", file, ("model", "path"))
    source = m.get("source", "pybullet_data")
    _expect(source in MODEL_SOURCES, f"expected one of {list(MODEL_SOURCES)}, got {source!r}", file, ("model", "source"))
    fmt = m.get("format", "mjcf" if str(m["path"]).endswith(".xml") else "urdf")
    _expect(fmt in MODEL_FORMATS, f"expected one of {list(MODEL_FORMATS)}, got {fmt!r}", file, ("model", "format"))
    pos = m.get("base_position", [0.0, 0.0, 0.0])
    orn = m.get("base_orientation", [0.0, 0.0, 0.0, 1.0])
    _expect(isinstance(pos, list) and len(pos) == 3, "expected [x, y, z]", file, ("model", "base_position"))
    _expect(isinstance(orn, list) and len(orn) == 4, "expected a quaternion [x, y, z, w]", file, ("model", "base_orientation"))
    model = ModelSpec(
        path=m["path"], source=source, format=fmt, fixed_base=bool(m.get("fixed_base", True)),
        base_position=tuple(_num(v, file, ("model", "base_position", i)) for i, v in enumerate(pos)),  # type: ignore[arg-type]
        base_orientation=tuple(_num(v, file, ("model", "base_orientation", i)) for i, v in enumerate(orn)),  # type: ignore[arg-type]
        body_name=m.get("body_name"),
    )
    if source == "local":
        _expect((file.parent / model.path).is_file(), f"model file {model.path!r} not found next to robot.yaml",
                file, ("model", "path"))

    c = _mapping(root.get("control", {}), file, ("control",),
                 {"mode", "rate_hz", "physics_hz", "position_gain", "velocity_gain"})
    mode = c.get("mode", "position")
    _expect(mode in CONTROL_MODES, f"expected one of {list(CONTROL_MODES)}, got {mode!r}", file, ("control", "mode"))
    control = ControlSpec(
        mode=mode,
        rate_hz=_num(c.get("rate_hz", 20.0), file, ("control", "rate_hz")),
        physics_hz=_num(c.get("physics_hz", 240.0), file, ("control", "physics_hz")),
        position_gain=_num(c.get("position_gain", 0.3), file, ("control", "position_gain")),
        velocity_gain=_num(c.get("velocity_gain", 1.0), file, ("control", "velocity_gain")),
    )
    _expect(control.rate_hz > 0 and control.physics_hz >= control.rate_hz,
            "expected 0 < rate_hz <= physics_hz", file, ("control",))

    joints_raw = root["joints"]
    _expect(isinstance(joints_raw, list), "expected a list of joints", file, ("joints",))
    joints = []
    for i, j in enumerate(joints_raw):
        j = _mapping(j, file, ("joints", i), {"name", "lower", "upper", "max_velocity", "max_effort", "home"})
        _expect(isinstance(j.get("name"), str), "expected a joint name", file, ("joints", i, "name"))
        spec = JointSpec(
            name=j["name"],
            lower=_num(j.get("lower", -3.14159), file, ("joints", i, "lower")),
            upper=_num(j.get("upper", 3.14159), file, ("joints", i, "upper")),
            max_velocity=_num(j.get("max_velocity", 1.0), file, ("joints", i, "max_velocity")),
            max_effort=_num(j.get("max_effort", 1.0), file, ("joints", i, "max_effort")),
            home=_num(j.get("home", 0.0), file, ("joints", i, "home")),
        )
        _expect(spec.lower < spec.upper, f"lower ({spec.lower}) must be below upper ({spec.upper})",
                file, ("joints", i))
        _expect(spec.lower <= spec.home <= spec.upper, "home must lie within [lower, upper]", file, ("joints", i, "home"))
        _expect(spec.max_velocity > 0 and spec.max_effort > 0, "max_velocity and max_effort must be > 0",
                file, ("joints", i))
        joints.append(spec)
    names = [j.name for j in joints]
    _expect(len(set(names)) == len(names), "joint names must be unique", file, ("joints",))

    links = root.get("links", [])
    _expect(isinstance(links, list) and all(isinstance(x, str) for x in links),
            "expected a list of link names", file, ("links",))
    ee = root.get("end_effector_link")
    if ee is not None:
        _expect(ee in links or not links, f"end_effector_link {ee!r} is not in links", file, ("end_effector_link",))

    r = _mapping(root.get("ros2", {}), file, ("ros2",), {"joint_names", "topics", "controller", "frame_id"})
    jn = r.get("joint_names", names)
    _expect(isinstance(jn, list) and len(jn) == len(joints),
            f"expected a list of {len(joints)} names, one per controlled joint", file, ("ros2", "joint_names"))
    topics = _mapping(r.get("topics", {}), file, ("ros2", "topics"))
    ros2 = Ros2Spec(joint_names=tuple(jn), topics=dict(topics), controller=str(r.get("controller", "")),
                    frame_id=str(r.get("frame_id", "")))

    if "actuators" in root:
        actuators = parse_actuators(root["actuators"], names, control.mode, file)
    else:
        actuators = default_actuators(control.mode, names, control.position_gain, control.velocity_gain)
    nominal = _mapping(root.get("nominal", {}), file, ("nominal",))
    model_params = _mapping(root.get("model_params", {}), file, ("model_params",))
    return RobotDescription(
        name=str(root["name"]), kind=kind, description=str(root.get("description", "")), model=model,
        control=control, joints=tuple(joints), end_effector_link=ee, nominal=dict(nominal),
        model_params=dict(model_params), ros2=ros2, links=tuple(links), directory=file.parent.resolve(), file=file,
        actuators=actuators,
    )
