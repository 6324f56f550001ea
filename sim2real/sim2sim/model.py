"""An arm's URDF compiled into MuJoCo, with a floor, its hardware's physical parameters applied.

MuJoCo's own URDF importer (:meth:`mujoco.MjSpec.from_file`) reads the kinematics and the
``<inertial>`` blocks (mass, centre of mass, full inertia tensor) exactly as written; this
module only adapts what a URDF cannot say to MuJoCo:

* mesh paths (``package://...`` and relative paths) are resolved against the URDF's folder;
  collision meshes (STL/OBJ, both read by MuJoCo) collide through their convex hulls, visual
  meshes are dropped;
* static links are kept as bodies (no fusing) so every URDF link, the end-effector link in
  particular, keeps its name and frame;
* movable joints that robot.yaml does not control (a gripper's fingers) are welded at their
  zero position, as a gripper's own drive holds them; ``mimic`` couplings of those joints go too;
* the base is placed at robot.yaml ``model.base_position``/``base_orientation`` (xyzw);
* a floor plane; robot geoms collide with the floor only (no self-collision).

Per-link mass factors scale a link's mass and inertia tensor together (a denser link of the
same shape); joint viscous damping, Coulomb friction and reflected rotor inertia become MuJoCo
joint ``damping``, ``frictionloss`` and ``armature``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from sim2real.errors import ConfigError
from sim2real.robots import RobotDescription

try:
    import mujoco
except ImportError:  # pragma: no cover - exercised only without the optional dependency
    mujoco = None  # type: ignore[assignment]

ROBOT_GEOM_BITS = (2, 1)  # contype, conaffinity of robot geoms: they touch the floor, not each other
FLOOR_GEOM_BITS = (1, 2)


def require_mujoco() -> None:
    """Raise one clear error when the optional ``mujoco`` dependency is missing."""
    if mujoco is None:
        raise ConfigError("the MuJoCo hardware needs the 'mujoco' package: pip install 'sim2real[sim2sim]'")


@dataclass
class ArmModel:
    """A compiled arm.

    Attributes:
        model: the :class:`mujoco.MjModel`.
        qpos: (n,) ``qpos`` addresses of the controlled joints, robot.yaml joint order.
        dofs: (n,) ``qvel``/``qfrc`` addresses of the same joints.
        ee_body: body id of robot.yaml ``end_effector_link``.
        link_bodies: URDF link name -> body id, for every link kept as a body.
    """

    model: "mujoco.MjModel"
    qpos: np.ndarray
    dofs: np.ndarray
    ee_body: int
    link_bodies: dict[str, int]


def urdf_spec(robot: RobotDescription) -> "mujoco.MjSpec":
    """The robot's URDF as an editable :class:`mujoco.MjSpec` (meshes resolved, no floor yet)."""
    require_mujoco()
    if robot.model.format != "urdf":
        raise ConfigError(f"the MuJoCo arm hardware compiles URDF models; {robot.name} is "
                          f"{robot.model.format.upper()}", file=str(robot.file), path=("model", "format"))
    path = Path(robot.model_path())
    if not path.is_file():
        raise ConfigError(f"model file not found: {path}", file=str(robot.file), path=("model", "path"))
    try:
        spec = mujoco.MjSpec.from_file(str(path))
    except Exception as exc:  # mujoco raises ValueError with its parser message
        raise ConfigError(f"MuJoCo cannot read the URDF {path}: {exc}", file=str(robot.file),
                          path=("model", "path")) from None
    spec.compiler.fusestatic = False
    spec.compiler.discardvisual = True
    for mesh in spec.meshes:
        rel = mesh.file[len("package://"):] if mesh.file.startswith("package://") else mesh.file
        mesh.file = os.path.normpath(str(path.parent / rel))
    return spec


def _weld_uncontrolled(spec: "mujoco.MjSpec", controlled: Sequence[str]) -> None:
    movable = [j for j in spec.joints if j.type != mujoco.mjtJoint.mjJNT_FREE]
    welded = {j.name for j in movable if j.name not in controlled}
    for eq in list(spec.equalities):
        if eq.type == mujoco.mjtEq.mjEQ_JOINT and (eq.name1 in welded or eq.name2 in welded):
            spec.delete(eq)
    for joint in movable:
        if joint.name in welded:
            spec.delete(joint)


def build_arm(robot: RobotDescription, *, physics_hz: float, mass_factors: Mapping[str, float] | None = None,
              damping: Sequence[float] | None = None, friction: Sequence[float] | None = None,
              armature: Sequence[float] | None = None) -> ArmModel:
    """Compile ``robot`` into MuJoCo.

    Args:
        physics_hz: physics rate; the model's timestep is ``1 / physics_hz`` s.
        mass_factors: URDF link name -> factor on its mass and inertia (missing links: 1).
        damping: (n,) viscous joint damping, N·m·s/rad (default 0), robot.yaml joint order.
        friction: (n,) Coulomb joint friction, N·m (default 0).
        armature: (n,) reflected rotor inertia, kg·m² (default 0).
    """
    spec = urdf_spec(robot)
    names = robot.joint_names
    by_name = {j.name: j for j in spec.joints}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ConfigError(f"joints {missing} are not in the URDF {robot.model_path()}", file=str(robot.file),
                          path=("joints",))
    _weld_uncontrolled(spec, names)
    n = len(names)
    for key, values in (("damping", damping), ("frictionloss", friction), ("armature", armature)):
        arr = np.zeros(n) if values is None else np.asarray(values, dtype=float)
        for name, v in zip(names, arr):
            joint = by_name[name]
            if np.ndim(getattr(joint, key)):  # MuJoCo 4 damping: [linear, polynomial terms...]
                setattr(joint, key, np.r_[float(v), np.zeros(np.size(getattr(joint, key)) - 1)])
            else:
                setattr(joint, key, float(v))
    bodies = {b.name: b for b in spec.bodies if b.name != "world"}
    for link, factor in (mass_factors or {}).items():
        if link not in bodies:
            raise ConfigError(f"link {link!r} is not in the URDF (links: {sorted(bodies)})")
        body = bodies[link]
        body.mass = body.mass * float(factor)
        body.fullinertia = np.asarray(body.fullinertia) * float(factor)
    for geom in spec.geoms:
        geom.contype, geom.conaffinity = ROBOT_GEOM_BITS
    roots = [b for b in spec.worldbody.bodies]
    if roots:
        pos, (x, y, z, w) = robot.model.base_position, robot.model.base_orientation
        roots[0].pos = list(pos)
        roots[0].quat = [w, x, y, z]  # MuJoCo stores wxyz
    floor = spec.worldbody.add_geom()
    floor.name, floor.type, floor.size = "floor", mujoco.mjtGeom.mjGEOM_PLANE, [0.0, 0.0, 0.05]
    floor.contype, floor.conaffinity = FLOOR_GEOM_BITS
    spec.option.timestep = 1.0 / float(physics_hz)
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST  # stable with stiff joint damping
    try:
        model = spec.compile()
    except Exception as exc:
        raise ConfigError(f"MuJoCo cannot compile {robot.name}: {exc}", file=str(robot.file)) from None
    qpos = np.array([model.jnt_qposadr[model.joint(nm).id] for nm in names], dtype=np.intp)
    dofs = np.array([model.jnt_dofadr[model.joint(nm).id] for nm in names], dtype=np.intp)
    links = {model.body(i).name: i for i in range(1, model.nbody)}
    ee = robot.end_effector_link or model.body(model.nbody - 1).name
    if ee not in links:
        raise ConfigError(f"end_effector_link {ee!r} is not a link of the URDF", file=str(robot.file),
                          path=("end_effector_link",))
    return ArmModel(model=model, qpos=qpos, dofs=dofs, ee_body=links[ee], link_bodies=links)


def moving_links(arm: ArmModel) -> list[str]:
    """Links that move with a joint and have a positive mass, in URDF order (what mass factors may name)."""
    m = arm.model
    return [name for name, b in arm.link_bodies.items() if m.body_mass[b] > 0 and m.body_weldid[b] != 0]
