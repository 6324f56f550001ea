"""Randomizable dynamics of a :class:`~sim2real.sim.world.PhysicsWorld`: the parameter store.

``current`` holds every quantity randomizers change (per link: mass, inertia diagonal,
frictions, restitution; per controlled joint: damping, Coulomb friction, armature, motor
strength, gains; gravity); ``nominal`` is its snapshot after ``robot.yaml`` ``nominal``.
Setters take final values and track what changed, so :meth:`restore_nominal` only undoes
that. Inside ``with world.batch():`` PyBullet calls are deferred and merged into one
``changeDynamics`` per link.

Armature (rotor inertia J of a geared motor, as seen at the joint) is MuJoCo's: J on the
joint's diagonal of the joint-space mass matrix, nothing else. PyBullet has no such term, so in
torque mode or with a computed drive (``pd``, ``dc_motor``, ``actuator_net``) on a fixed-base model
(the hopper, the arms) the world computes it: before every physics step it sends the torques
that give the model the acceleration (M + diag J)⁻¹(τ − bias − D q̇)
(:meth:`PhysicsWorld._armature_torques`, M and bias from a :class:`~sim2real.sim.mirror.DynamicsMirror`
that follows mass randomization); contact and joint-limit forces still come from
PyBullet's solver with M alone. With PyBullet's position/velocity motors their constraints set the
joint torques inside its solver, so there (and on floating bases) J·a² is added to the diagonal
inertia of the link the joint drives instead, a in that link's inertial frame: this also resists
the link's absolute rotation (couples into every joint above it), a coarser model. MJCF models
put a massless dummy link on each joint; the armature then goes to the first massive link below
it through fixed joints.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import pybullet as p

from sim2real.errors import EnvError, RobotError

if TYPE_CHECKING:
    from sim2real.robots import RobotDescription

JOINT_FIELDS = ("damping", "friction", "armature", "strength", "position_gain", "velocity_gain", "stall_torque",
                "free_speed")
GRAVITY = (0.0, 0.0, -9.81)
_PB_KEYS = {"lateral_friction": "lateralFriction", "spinning_friction": "spinningFriction",
            "rolling_friction": "rollingFriction", "restitution": "restitution", "mass": "mass"}


class WorldDynamics:
    """Mixin of :class:`PhysicsWorld` holding the randomizable parameters (see module doc)."""

    robot: "RobotDescription"
    client: int
    robot_id: int
    floor_id: int
    link_index: dict[str, int]
    link_names: list[str]
    joint_indices: np.ndarray
    joint_axes: np.ndarray
    n_model_joints: int
    _joint_list: list[int]
    _single_dof_joints: bool
    mode: str
    torque_driven: bool

    def _init_dynamics_state(self) -> None:
        self._dirty_links: set[str] = set()
        self._batch = False
        self._pending_links: set[str] = set()
        self._pending_damping = self._pending_motors = False
        self._pushed_damping: np.ndarray | None = None
        #: link name -> values last sent by _send_link (cleared when the body is rebuilt)
        self._pushed_links: dict[str, tuple] = {}
        self._dirty_joints = False
        self._dirty_gravity = False

    def _configure_motors(self) -> None:  # provided by PhysicsWorld
        raise NotImplementedError

    def _invalidate_mirror(self) -> None:
        """Masses, inertias, COMs or gravity changed: the dynamics mirror (armature solve) rebuilds."""
        mirror = getattr(self, "_mirror", None)
        if mirror is not None:
            mirror.invalidate()

    def _record_nominal(self) -> None:
        """Read the model's dynamics; ``self.current`` holds every quantity randomizers change."""
        cid = self.client
        links: dict[str, dict[str, Any]] = {}
        for name in self.link_names:
            d = p.getDynamicsInfo(self.robot_id, self.link_index[name], physicsClientId=cid)
            links[name] = {"mass": d[0], "lateral_friction": d[1], "inertia": np.array(d[2]),
                           "restitution": d[5], "rolling_friction": d[6], "spinning_friction": d[7]}
        if self.floor_id >= 0:
            d = p.getDynamicsInfo(self.floor_id, -1, physicsClientId=cid)
            links["floor"] = {"mass": 0.0, "lateral_friction": d[1], "inertia": np.zeros(3),
                              "restitution": d[5], "rolling_friction": d[6], "spinning_friction": d[7]}
        c, robot = self.robot.control, self.robot
        n = len(self._joint_list)

        def actuator(field: str, default: Any) -> np.ndarray:  # robot.yaml actuators, else the default
            vals = [robot.actuator_value(field, name) for name in robot.joint_names]
            return np.array([default[k] if v is None else v for k, v in enumerate(vals)], dtype=float)

        joints = {
            "damping": np.array([p.getJointInfo(self.robot_id, j, physicsClientId=cid)[6] for j in self._joint_list]),
            "friction": np.zeros(n), "armature": np.zeros(n), "strength": np.ones(n),
            "position_gain": actuator("position_gain", [c.position_gain] * n),
            "velocity_gain": actuator("velocity_gain", [c.velocity_gain] * n),
            # DC-motor torque-speed line (dc_motor groups; others: the max effort at any speed)
            "stall_torque": actuator("stall_torque", [j.max_effort for j in robot.joints]),
            "free_speed": actuator("free_speed", [np.inf] * n),
        }
        self.current: dict[str, Any] = {"links": links, "joints": joints, "gravity": np.array(GRAVITY)}
        self._inertia_scale = {name: 1.0 for name in links}  # from link_mass recompute_inertia

    def _apply_robot_nominal(self) -> None:
        """Apply ``robot.yaml`` ``nominal`` (absolute values) on top of the model file."""
        link_kinds = {"link_mass": "mass", "lateral_friction": "lateral_friction",
                      "spinning_friction": "spinning_friction", "rolling_friction": "rolling_friction",
                      "restitution": "restitution", "link_inertia": "inertia"}
        joint_kinds = {"joint_damping": "damping", "joint_friction": "friction", "armature": "armature",
                       "motor_strength": "strength", "position_gain": "position_gain",
                       "velocity_gain": "velocity_gain", "stall_torque": "stall_torque", "free_speed": "free_speed"}
        file = str(self.robot.file)
        for kind, value in self.robot.nominal.items():
            if kind == "gravity":
                self.set_gravity(np.asarray(value, dtype=float))
                continue
            if kind not in link_kinds and kind not in joint_kinds:
                raise RobotError(f"unsupported nominal kind {kind!r}; expected one of "
                                 f"{sorted([*link_kinds, *joint_kinds, 'gravity'])}", file=file, path=("nominal", kind))
            if kind in link_kinds:
                targets = value if isinstance(value, dict) else {n: value for n in self.link_names}
                for name, v in targets.items():
                    if name not in self.current["links"]:
                        raise RobotError(f"unknown link {name!r}", file=file, path=("nominal", kind, name))
                    extra: dict[str, Any] = {}
                    cur = self.current["links"][name]
                    if kind == "link_mass" and cur["mass"] > 0:  # keep the density: inertia scales with mass
                        extra["inertia"] = cur["inertia"] * float(v) / cur["mass"]
                    self.set_link(name, **{link_kinds[kind]: v}, **extra)
            else:
                names = self.robot.joint_names
                targets = value if isinstance(value, dict) else {n: value for n in names}
                for name, v in targets.items():
                    if name not in names:
                        raise RobotError(f"unknown controlled joint {name!r}", file=file, path=("nominal", kind, name))
                    arr = self.current["joints"][joint_kinds[kind]].copy()
                    arr[names.index(name)] = float(v)
                    self.set_joint(joint_kinds[kind], arr)

    # ------------------------------------------------------------------ dynamics setters
    def _body_link(self, name: str) -> tuple[int, int]:
        if name == "floor":
            return self.floor_id, -1
        return self.robot_id, self.link_index[name]

    def set_link(self, name: str, **values: Any) -> None:
        """Set final dynamics of one link (``mass`` kg, ``inertia`` (3,) kg·m², frictions, ``restitution``).

        ``inertia_scale`` (float) multiplies the inertia (link_mass ``recompute_inertia``).
        The inertia is always re-sent with the mass: PyBullet recomputes it from the
        collision shape when only the mass changes.
        """
        cur = self.current["links"][name]
        kwargs: dict[str, Any] = {}
        inertia_changed = False
        for key, v in values.items():
            if key == "inertia_scale":
                self._inertia_scale[name] = float(v)
                inertia_changed = True
            elif key == "inertia":
                arr = np.array(v, dtype=float).reshape(-1)
                cur["inertia"] = arr if arr.size == 3 else np.full(3, arr[0])
                inertia_changed = True
            else:
                cur[key] = float(v)
                kwargs[_PB_KEYS[key]] = float(v)
                inertia_changed = inertia_changed or key == "mass"
        self._dirty_links.add(name)
        if self._batch:
            self._pending_links.add(name)
            return
        self._pushed_links.pop(name, None)  # partial update: the flush cache no longer knows the link
        self._invalidate_mirror()
        if inertia_changed:
            kwargs["localInertiaDiagonal"] = self._effective_inertia(name)
        body, link = self._body_link(name)
        if kwargs and body >= 0:
            p.changeDynamics(body, link, physicsClientId=self.client, **kwargs)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Collect dynamics changes and send one ``changeDynamics`` per changed link at the end
        (a reset that restores and re-randomizes everything then costs ~10 calls, not ~70)."""
        self._batch = True
        try:
            yield
        finally:
            self._batch = False
            self._flush()

    def _flush(self) -> None:
        for name in self._pending_links:
            self._send_link(name)
        self._pending_links.clear()
        if self._pending_damping:
            self._push_damping()
            self._pending_damping = False
        self._configure_motors()  # cheap; also picks up a changed control mode
        self._pending_motors = False

    def _send_link(self, name: str) -> None:
        """One ``changeDynamics`` with every value of link ``name`` — skipped when PyBullet already
        has exactly these values (``_pushed_links``, e.g. a link restored to nominal and not re-drawn)."""
        body, link = self._body_link(name)
        if body < 0:
            return
        c = self.current["links"][name]
        values: tuple = (c["lateral_friction"], c["spinning_friction"], c["rolling_friction"], c["restitution"])
        if name != "floor":
            values += (c["mass"], *self._effective_inertia(name))
        if self._pushed_links.get(name) == values:
            return
        kw: dict[str, Any] = {"lateralFriction": values[0], "spinningFriction": values[1],
                              "rollingFriction": values[2], "restitution": values[3]}
        if name != "floor":
            kw["mass"] = values[4]
            kw["localInertiaDiagonal"] = values[5:]
        p.changeDynamics(body, link, physicsClientId=self.client, **kw)
        self._pushed_links[name] = values
        self._invalidate_mirror()

    def _push_damping(self) -> None:
        values = self.current["joints"]["damping"]
        pushed = self._pushed_damping
        for k, j in enumerate(self._joint_list):
            if pushed is None or pushed[k] != values[k]:
                p.changeDynamics(self.robot_id, j, jointDamping=float(values[k]), physicsClientId=self.client)
        self._pushed_damping = values.copy()

    def _effective_inertia(self, name: str, nominal: bool = False) -> list[float]:
        """Link inertia diagonal · mass scale + armature of the joint driving the link (a·a² on the
        diagonal); of the nominal dynamics with ``nominal=True``."""
        if nominal:
            inertia = self.nominal["links"][name]["inertia"]
        else:
            inertia = self.current["links"][name]["inertia"] * self._inertia_scale[name]
        k = self._armature_joint_of.get(name)
        if k is not None and not self._joint_armature:
            arm = (self.nominal if nominal else self.current)["joints"]["armature"][k]
            if arm:
                inertia = inertia + arm * self._armature_axis[k] ** 2
        return [float(x) for x in inertia]

    def _index_armature(self) -> None:
        """Which link carries each joint's armature: the child link, or (MJCF dummy links of zero
        mass) the first massive link below it through fixed joints. Axis in that link's inertial frame."""
        cid, rid = self.client, self.robot_id
        n = self.n_model_joints
        infos = [p.getJointInfo(rid, j, physicsClientId=cid) for j in range(n)]
        names = {i: nm for nm, i in self.link_index.items() if nm in self.current["links"]}
        self._armature_joint_of: dict[str, int] = {}
        self._armature_axis: dict[int, np.ndarray] = {}
        self._joint_armature = self._uses_joint_armature()
        self._armature: list[float] | None = None  # joint-space armature per controlled joint, if any
        for k, j in enumerate(self._joint_list):
            link = j
            while p.getDynamicsInfo(rid, link, physicsClientId=cid)[0] == 0.0:
                nxt = [i[0] for i in infos if i[16] == link and i[2] == p.JOINT_FIXED]
                if not nxt:
                    break
                link = nxt[0]
            name = names.get(link, infos[link][12].decode())
            if name not in self.current["links"]:
                continue  # not a profile-visible link; armature on it is not supported
            # jointAxis is in the child's inertial frame; express it in the carrier's inertial frame
            def com_rot(index: int) -> np.ndarray:
                orn = p.getLinkState(rid, index, computeForwardKinematics=1, physicsClientId=cid)[1]
                return np.array(p.getMatrixFromQuaternion(orn)).reshape(3, 3)
            axis_world = com_rot(j) @ self.joint_axes[k]
            self._armature_axis[k] = np.abs(com_rot(link).T @ axis_world)
            self._armature_joint_of[name] = k

    def _uses_joint_armature(self) -> bool:
        """Armature in joint space (MuJoCo's) needs the world to compute the torques: torque mode
        or a computed drive, on a fixed-base model with controlled joints, all movable joints one-DOF (the mass matrix
        is indexed by joint). Otherwise it goes on the link inertia."""
        return (self.torque_driven and bool(self._joint_list) and self.robot.model.fixed_base
                and self._single_dof_joints)

    def _sync_armature_model(self) -> None:
        """Follow a control-mode change: move the armature between the link inertias and the
        joint-space torques; refresh the per-joint values the stepping loops use."""
        joint_space = self._uses_joint_armature()
        if joint_space != self._joint_armature:
            self._joint_armature = joint_space
            if not joint_space:
                self._check_armature_carriers(self.current["joints"]["armature"])
            for name in self._armature_joint_of:
                self._pushed_links.pop(name, None)
                p.changeDynamics(self.robot_id, self.link_index[name], localInertiaDiagonal=self._effective_inertia(name),
                                 physicsClientId=self.client)
        arm = self.current["joints"]["armature"]
        self._armature = arm.tolist() if self._joint_armature and np.any(arm > 0) else None

    def _check_armature_carriers(self, values: np.ndarray) -> None:
        unsupported = [self.robot.joint_names[k] for k in range(len(values))
                       if values[k] and k not in self._armature_joint_of.values()]
        if unsupported:
            raise EnvError(f"armature of joints {unsupported} has no massive link listed in robot.yaml "
                           f"'links' to carry it in {self.mode} control mode ({self.robot.file})")

    def set_joint(self, field_name: str, values: np.ndarray) -> None:
        """Set a per-joint quantity for all controlled joints (``damping``, ``friction`` (N·m),
        ``armature`` (kg·m²), ``strength`` (× max effort), ``position_gain`` / ``velocity_gain``
        (kp N·m/rad / kd N·m·s/rad of pd and dc_motor drives, PyBullet's gains of its motors),
        ``stall_torque`` (N·m), ``free_speed`` (rad/s)). Drives read them at the next
        :meth:`~PhysicsWorld.reset_control` (or batch end)."""
        values = np.asarray(values, dtype=float).reshape(-1)
        old = self.current["joints"][field_name]
        self.current["joints"][field_name] = values.copy()
        cid, rid = self.client, self.robot_id
        self._dirty_joints = True
        if field_name == "damping":
            if self._batch:
                self._pending_damping = True
            else:
                self._push_damping()
        elif field_name == "armature" and self._joint_armature:
            self._armature = values.tolist() if np.any(values > 0) else None
        elif field_name == "armature":
            self._check_armature_carriers(values)
            for name, k in self._armature_joint_of.items():
                if values[k] != old[k]:
                    if self._batch:
                        self._pending_links.add(name)
                    else:
                        p.changeDynamics(rid, self.link_index[name], localInertiaDiagonal=self._effective_inertia(name),
                                         physicsClientId=cid)
        if field_name in ("friction", "strength"):
            if self._batch:
                self._pending_motors = True
            else:
                self._configure_motors()

    def set_gravity(self, g: np.ndarray) -> None:
        """World gravity (m/s², (3,))."""
        self.current["gravity"] = np.asarray(g, dtype=float).reshape(3).copy()
        self._invalidate_mirror()
        p.setGravity(*self.current["gravity"], physicsClientId=self.client)
        self._dirty_gravity = True

    def _reapply_nominal(self) -> None:
        """After a rebuild: every robot link/joint value back to nominal (the floor keeps its state)."""
        floor_dirty = "floor" in self._dirty_links
        for field_name in JOINT_FIELDS:
            self.current["joints"][field_name] = self.nominal["joints"][field_name].copy()
        links = self.current["links"]
        for name in self.link_names:
            n = self.nominal["links"][name]
            self._inertia_scale[name] = 1.0
            links[name].update(n)
            links[name]["inertia"] = n["inertia"].copy()
            self._pushed_links.pop(name, None)  # a new body: PyBullet has none of these values yet
            if self._batch:
                self._pending_links.add(name)  # sent once, with the episode's final values, at the flush
            else:
                self._send_link(name)
        self._dirty_links = {"floor"} if floor_dirty else set()
        self.set_joint("damping", self.nominal["joints"]["damping"])
        self._dirty_joints = False
        self._configure_motors()

    def restore_nominal(self) -> None:
        """Put back every link/joint/gravity value changed since the last restore (not the COM)."""
        nom = self.nominal
        links = self.current["links"]
        for name in self._dirty_links:
            n = nom["links"][name]
            self._inertia_scale[name] = 1.0
            cur = links[name]
            cur.update(n)
            cur["inertia"] = n["inertia"].copy()
            if self._batch:
                self._pending_links.add(name)
            else:
                self._send_link(name)
        self._dirty_links.clear()
        if self._dirty_joints:
            for field_name in JOINT_FIELDS:
                if not np.array_equal(self.current["joints"][field_name], nom["joints"][field_name]):
                    self.set_joint(field_name, nom["joints"][field_name])
            self._dirty_joints = False
        if self._dirty_gravity:
            self.set_gravity(nom["gravity"])
            self._dirty_gravity = False
        self.model_params = dict(self.robot.model_params)
        self.action_delay = self.observation_delay = 0
        self.action_noise = self.observation_noise = None
        self.pushes.clear()
        self.render_settings.reset()
        for hook in self.restore_hooks:
            hook(self)


def _snapshot(current: dict[str, Any]) -> dict[str, Any]:
    return {
        "links": {n: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in d.items()}
                  for n, d in current["links"].items()},
        "joints": {k: v.copy() for k, v in current["joints"].items()},
        "gravity": current["gravity"].copy(),
    }
