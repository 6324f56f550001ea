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


from sim2real._check import Checker
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
    """Validate a robot.yaml mapping read from ``file``; raises :class:`RobotError` naming file and key."""
    file = Path(file)
    chk = Checker(str(file), RobotError)
    root = chk.section(raw, (), _TOP_KEYS)
    for key in ("name", "kind", "model", "joints"):
        chk.expect(key in root, (key,), "missing required key")
    kind = root["kind"]
    chk.expect(kind in ROBOT_KINDS, ("kind",), f"expected one of {list(ROBOT_KINDS)}, got {kind!r}")

    m = chk.section(root["model"], ("model",),
                 {"path", "source", "format", "fixed_base", "base_position", "base_orientation", "body_name"})
    chk.expect(isinstance(m.get("path"), str), ("model", "path"), "expected a file path string")
    source = m.get("source", "pybullet_data")
    chk.expect(source in MODEL_SOURCES, ("model", "source"), f"expected one of {list(MODEL_SOURCES)}, got {source!r}")
    fmt = m.get("format", "mjcf" if str(m["path"]).endswith(".xml") else "urdf")
    chk.expect(fmt in MODEL_FORMATS, ("model", "format"), f"expected one of {list(MODEL_FORMATS)}, got {fmt!r}")
    pos = m.get("base_position", [0.0, 0.0, 0.0])
    orn = m.get("base_orientation", [0.0, 0.0, 0.0, 1.0])
    chk.expect(isinstance(pos, list) and len(pos) == 3, ("model", "base_position"), "expected [x, y, z]")
    chk.expect(isinstance(orn, list) and len(orn) == 4, ("model", "base_orientation"),
               "expected a quaternion [x, y, z, w]")
    model = ModelSpec(
        path=m["path"], source=source, format=fmt, fixed_base=bool(m.get("fixed_base", True)),
        base_position=tuple(chk.number(v, ("model", "base_position", i)) for i, v in enumerate(pos)),  # type: ignore[arg-type]
        base_orientation=tuple(chk.number(v, ("model", "base_orientation", i)) for i, v in enumerate(orn)),  # type: ignore[arg-type]
        body_name=m.get("body_name"),
    )
    if source == "local":
        chk.expect((file.parent / model.path).is_file(), ("model", "path"),
                   f"model file {model.path!r} not found next to robot.yaml")

    c = chk.section(root.get("control", {}), ("control",),
                 {"mode", "rate_hz", "physics_hz", "position_gain", "velocity_gain"})
    mode = c.get("mode", "position")
    chk.expect(mode in CONTROL_MODES, ("control", "mode"), f"expected one of {list(CONTROL_MODES)}, got {mode!r}")
    control = ControlSpec(
        mode=mode,
        rate_hz=chk.number(c.get("rate_hz", 20.0), ("control", "rate_hz")),
        physics_hz=chk.number(c.get("physics_hz", 240.0), ("control", "physics_hz")),
        position_gain=chk.number(c.get("position_gain", 0.3), ("control", "position_gain")),
        velocity_gain=chk.number(c.get("velocity_gain", 1.0), ("control", "velocity_gain")),
    )
    chk.expect(control.rate_hz > 0 and control.physics_hz >= control.rate_hz, ("control",),
               "expected 0 < rate_hz <= physics_hz")

    joints_raw = root["joints"]
    chk.expect(isinstance(joints_raw, list), ("joints",), "expected a list of joints")
    joints = []
    for i, j in enumerate(joints_raw):
        j = chk.section(j, ("joints", i), {"name", "lower", "upper", "max_velocity", "max_effort", "home"})
        chk.expect(isinstance(j.get("name"), str), ("joints", i, "name"), "expected a joint name")
        spec = JointSpec(
            name=j["name"],
            lower=chk.number(j.get("lower", -3.14159), ("joints", i, "lower")),
            upper=chk.number(j.get("upper", 3.14159), ("joints", i, "upper")),
            max_velocity=chk.number(j.get("max_velocity", 1.0), ("joints", i, "max_velocity")),
            max_effort=chk.number(j.get("max_effort", 1.0), ("joints", i, "max_effort")),
            home=chk.number(j.get("home", 0.0), ("joints", i, "home")),
        )
        chk.expect(spec.lower < spec.upper, ("joints", i), f"lower ({spec.lower}) must be below upper ({spec.upper})")
        chk.expect(spec.lower <= spec.home <= spec.upper, ("joints", i, "home"),
                   "home must lie within [lower, upper]")
        chk.expect(spec.max_velocity > 0 and spec.max_effort > 0, ("joints", i),
                   "max_velocity and max_effort must be > 0")
        joints.append(spec)
    names = [j.name for j in joints]
    chk.expect(len(set(names)) == len(names), ("joints",), "joint names must be unique")

    links = root.get("links", [])
    chk.expect(isinstance(links, list) and all(isinstance(x, str) for x in links), ("links",),
               "expected a list of link names")
    ee = root.get("end_effector_link")
    if ee is not None:
        chk.expect(ee in links or not links, ("end_effector_link",), f"end_effector_link {ee!r} is not in links")

    r = chk.section(root.get("ros2", {}), ("ros2",), {"joint_names", "topics", "controller", "frame_id"})
    jn = r.get("joint_names", names)
    chk.expect(isinstance(jn, list) and len(jn) == len(joints), ("ros2", "joint_names"),
               f"expected a list of {len(joints)} names, one per controlled joint")
    topics = chk.section(r.get("topics", {}), ("ros2", "topics"))
    ros2 = Ros2Spec(joint_names=tuple(jn), topics=dict(topics), controller=str(r.get("controller", "")),
                    frame_id=str(r.get("frame_id", "")))

    if "actuators" in root:
        actuators = parse_actuators(root["actuators"], names, control.mode, file)
    else:
        actuators = default_actuators(control.mode, names, control.position_gain, control.velocity_gain)
    nominal = chk.section(root.get("nominal", {}), ("nominal",))
    model_params = chk.section(root.get("model_params", {}), ("model_params",))
    return RobotDescription(
        name=str(root["name"]), kind=kind, description=str(root.get("description", "")), model=model,
        control=control, joints=tuple(joints), end_effector_link=ee, nominal=dict(nominal),
        model_params=dict(model_params), ros2=ros2, links=tuple(links), directory=file.parent.resolve(), file=file,
        actuators=actuators,
    )
