"""One PyBullet world (client, floor, robot) with the robot's nominal dynamics and its controller.

A :class:`PhysicsWorld` owns one ``p.DIRECT`` client and never touches the default client
(every call passes ``physicsClientId``). It loads the floor and the robot of a
:class:`~sim2real.robots.RobotDescription`, maps link and joint names to PyBullet
indices, records the model's dynamics and applies ``robot.yaml`` ``nominal`` on top.

Randomizers (``sim2real.sim.randomizers``) change the world only through the setters
here (``set_link``, ``set_joint``, ``set_gravity``, ``set_com_offsets``, ...), which always
take *final* values; :meth:`restore_nominal` puts back every value changed since, so
nothing compounds across episodes.

Control runs at ``robot.control.rate_hz`` with ``robot.control.substeps`` physics steps
per control step. :meth:`step` queues a command and advances one control step; the
command reaches the joints ``action_delay`` physics steps after it was issued. What a
command does is the robot's drive (:attr:`PhysicsWorld.drive`, :mod:`sim2real.sim.actuators`):
computed drives (``pd``, ``dc_motor``, ``actuator_net``) give torques every physics step, which
the world applies in torque mode; PyBullet's motors are set once per command.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pybullet as p
import pybullet_data

from sim2real.errors import EnvError, RobotError
from sim2real.robots import RobotDescription
from sim2real.sim._pybullet import disconnect
from sim2real.sim.actuators import Drive
from sim2real.sim._armature import armature_solve
from sim2real.sim.body_builder import BodyBuilder
from sim2real.sim.dynamics import GRAVITY, WorldDynamics, _snapshot
from sim2real.sim.mirror import DynamicsMirror

try:  # the clip ufunc: min(max(x, lo), hi) elementwise
    from numpy._core.umath import clip as _clip
except ImportError:  # numpy < 2
    from numpy.core.umath import clip as _clip

# Joint friction in position/velocity modes is a smoothed Coulomb torque -f·tanh(q̇/eps).
FRICTION_VELOCITY_EPS = 0.01  # rad/s


@dataclass
class RenderSettings:
    """Visual state the camera reads; visual randomizers write it (see ``sim2real.sim.visuals``).

    Light direction is the direction the light comes from (world frame); camera offsets are
    added to the camera env's nominal camera (metres, roll/pitch/yaw rad, degrees).
    """

    light_direction: np.ndarray | None = None
    light_color: np.ndarray | None = None
    light_ambient: float | None = None
    light_diffuse: float | None = None
    light_specular: float | None = None
    camera_position_offset: np.ndarray = field(default_factory=lambda: np.zeros(3))
    camera_orientation_offset: np.ndarray = field(default_factory=lambda: np.zeros(3))
    camera_fov_offset: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


#: ``steps_left`` of a steady push: more physics steps than any run lasts
STEADY_STEPS = 2**62


@dataclass
class Push:
    link: int          # PyBullet link index (-1 base)
    force: np.ndarray  # (3,) N, world frame
    torque: np.ndarray  # (3,) N·m, world frame
    steps_left: int    # physics steps
    steady: bool = False  # a constant force (``wind``): held until the world's parameters change

    def __post_init__(self) -> None:
        #: the same as floats for the per-physics-step paths: force, and torque (None when zero)
        self.force_list: list[float] = np.asarray(self.force, dtype=float).tolist()
        self.torque_list: list[float] | None = (np.asarray(self.torque, dtype=float).tolist()
                                                if np.any(self.torque) else None)


def load_robot_body(robot: RobotDescription, cid: int) -> int:
    """Load the robot's model file into PyBullet client ``cid``; returns the body id."""
    m = robot.model
    path = robot.model_path()
    try:
        if m.format == "urdf":
            return p.loadURDF(path, m.base_position, m.base_orientation, useFixedBase=m.fixed_base,
                              flags=p.URDF_USE_INERTIA_FROM_FILE, physicsClientId=cid)
        bodies = p.loadMJCF(path, physicsClientId=cid)
    except p.error as exc:
        raise RobotError(f"PyBullet could not load {path}: {exc}", file=str(robot.file), path=("model", "path")) from None
    chosen = None
    for b in bodies:
        base, name = (s.decode() for s in p.getBodyInfo(b, physicsClientId=cid))
        if chosen is None and (m.body_name is None or m.body_name in (base, name)):
            chosen = b
        else:
            p.removeBody(b, physicsClientId=cid)
    if chosen is None:
        raise RobotError(f"no body named {m.body_name!r} in {path}", file=str(robot.file), path=("model", "body_name"))
    p.resetBasePositionAndOrientation(chosen, m.base_position, m.base_orientation, physicsClientId=cid)
    return chosen


class PhysicsWorld(WorldDynamics):
    """PyBullet world for one robot.

    Args:
        robot: the robot description.
        floor: load ``plane.urdf`` as the floor (its link name for profiles is ``floor``).
        gui: connect with ``p.GUI`` instead of ``p.DIRECT`` (debugging only).

    Attributes:
        client: the PyBullet client id.
        robot_id / floor_id: body ids (``robot_id`` changes when the COM is moved, see
            :meth:`set_com_offsets`).
        joint_indices: (n_joints,) int array of the controlled joints in robot.yaml order.
        link_index: link name -> PyBullet link index (``base`` -> -1).
        nominal: the nominal value of every randomizable quantity (see ``_record_nominal``).
        model_params: robot ``model_params`` plus values written by ``model_param`` randomizers.
        render_settings: light/camera parameters for camera envs.
    """

    def __init__(self, robot: RobotDescription, *, floor: bool = True, gui: bool = False) -> None:
        self.robot = robot
        #: rebuilt bodies (com_offset) keep the model's visual shapes only if True
        self.keep_visuals = gui
        #: nothing renders this world's robot (no camera observation, no render()): rebuilt
        #: bodies then get an invisible placeholder visual instead of PyBullet converting their
        #: collision meshes for its renderer, ~10-50x faster (physics identical; envs set it)
        self.headless = False
        self.client = p.connect(p.GUI if gui else p.DIRECT)
        if self.client < 0:
            raise EnvError("could not start a PyBullet physics client")
        self.physics_dt = 1.0 / robot.control.physics_hz
        self.substeps = robot.control.substeps
        self.control_dt = self.physics_dt * self.substeps
        self.mode = robot.control.mode
        cid = self.client
        p.setPhysicsEngineParameter(fixedTimeStep=self.physics_dt, numSubSteps=0, physicsClientId=cid)
        p.setGravity(*GRAVITY, physicsClientId=cid)
        self._init_dynamics_state()
        self.floor_id = -1
        if floor:
            self.floor_id = p.loadURDF(str(pybullet_data.getDataPath()) + "/plane.urdf", physicsClientId=cid)
        self.robot_id = self._load_robot()
        self._builder: BodyBuilder | None = None
        self._index_model()
        #: the robot's mass matrix / inverse dynamics with its current dynamics (armature solve)
        self._mirror = DynamicsMirror(self) if robot.model.fixed_base and self._joint_list else None
        #: the actuator groups (sim2real.sim.actuators): commands -> joint torques / PyBullet motors
        self.drive = Drive(self)
        self.model_params: dict[str, Any] = dict(robot.model_params)
        self._floor_contact: tuple[float, float] | None = None
        self.apply_floor_contact()
        self.render_settings = RenderSettings()
        self.physics_step_count = 0
        self._record_nominal()
        self._index_armature()
        self._apply_robot_nominal()
        self.nominal = _snapshot(self.current)
        self.com_offsets: dict[str, np.ndarray] = {}
        self._dirty_links.clear()
        self._dirty_joints = self._dirty_gravity = False
        self.action_delay = 0  # physics steps
        self.observation_delay = 0  # physics steps
        self.action_noise: tuple[str, float] | None = None  # (gaussian|uniform, level)
        self.observation_noise: tuple[str, float, np.ndarray] | None = None  # (kind, level, bias (obs_size,))
        self.observation_size = 0  # set by the env (for per-element observation bias)
        #: callables run by restore_nominal (visual randomizers undo colours/objects there)
        self.restore_hooks: list[Callable[[PhysicsWorld], None]] = []
        #: called with no arguments before every ``stepSimulation`` (after queued commands are
        #: issued), e.g. to apply external forces PyBullet clears after each step; ``None``: no
        #: per-physics-step Python work (step then runs the physics in runs, see :meth:`step`)
        self.physics_step_hook: Callable[[], None] | None = None
        #: a ``physics_step_hook`` that also takes ``(force, torque)`` of a push on the base (world
        #: frame, N / N·m or ``None``) and applies it with its own base force (the quadrotor's rotor
        #: model): while it is the hook, a single base push goes through it instead of its own calls
        self.push_hook: Callable[..., None] | None = None
        self._queue: deque[tuple[int, np.ndarray]] = deque()
        self.pushes: list[Push] = []
        #: the computed drive's torques (n_joints,) N·m of the last physics step
        self.drive_torque = np.zeros(len(self._joint_list))
        self._configure_motors()
        self.hold()

    # ------------------------------------------------------------------ loading
    def apply_floor_contact(self) -> None:
        """``model_params`` ``floor_contact_stiffness`` (N/m) and ``floor_contact_damping`` (N·s/m,
        both or neither, from robot.yaml or a ``model_param`` profile entry): a compliant
        spring-damper floor contact instead of PyBullet's rigid one. Called at construction and by
        the envs after each reset's randomization (one ``changeDynamics`` when the values changed).
        The hopper's values reproduce a drop test of MuJoCo's soft default contact (solref 0.02 s):
        ~2.5 cm compression and the rebound of a 0.2 m drop (docs/envs.md)."""
        mp, file = self.model_params, str(self.robot.file)
        k, c = mp.get("floor_contact_stiffness"), mp.get("floor_contact_damping")
        if (k is None and c is None) or self.floor_id < 0 or self._floor_contact == (k, c):
            return
        for key, v in (("floor_contact_stiffness", k), ("floor_contact_damping", c)):
            if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) or not (v > 0 and math.isfinite(v)):
                raise RobotError(f"model_params.{key} must be a positive number of {'N/m' if 'stiff' in key else 'N·s/m'}"
                                 f" (set both floor_contact_stiffness and floor_contact_damping, or neither); got {v!r}",
                                 file=file, path=("model_params", key))
        p.changeDynamics(self.floor_id, -1, contactStiffness=float(k), contactDamping=float(c), physicsClientId=self.client)
        self._floor_contact = (k, c)

    def _load_robot(self) -> int:
        return load_robot_body(self.robot, self.client)

    def _index_model(self) -> None:
        cid, rid, robot = self.client, self.robot_id, self.robot
        n = p.getNumJoints(rid, physicsClientId=cid)
        self.n_model_joints = n
        infos = [p.getJointInfo(rid, j, physicsClientId=cid) for j in range(n)]
        joint_by_name = {i[1].decode(): i[0] for i in infos}
        self.link_index: dict[str, int] = {i[12].decode(): i[0] for i in infos}
        self.link_index["base"] = -1
        self.link_index[p.getBodyInfo(rid, physicsClientId=cid)[0].decode()] = -1
        missing = [j.name for j in robot.joints if j.name not in joint_by_name]
        if missing:
            raise RobotError(f"joints {missing} are not in the model {robot.model.path} "
                             f"(it has {sorted(joint_by_name)})", file=str(robot.file), path=("joints",))
        bad = [ln for ln in robot.links if ln not in self.link_index]
        if bad:
            raise RobotError(f"links {bad} are not in the model {robot.model.path} "
                             f"(it has {sorted(self.link_index)})", file=str(robot.file), path=("links",))
        self.joint_indices = np.array([joint_by_name[j.name] for j in robot.joints], dtype=int)
        self._joint_list = [int(j) for j in self.joint_indices]
        self.joint_axes = np.array([infos[j][13] for j in self._joint_list], dtype=float)
        self.lower = np.array([j.lower for j in robot.joints])
        self.upper = np.array([j.upper for j in robot.joints])
        self.max_velocity = np.array([j.max_velocity for j in robot.joints])
        self.max_effort = np.array([j.max_effort for j in robot.joints])
        self.home = np.array([j.home for j in robot.joints])
        self.ee_index = self.link_index[robot.end_effector_link] if robot.end_effector_link else None
        self.link_names = ["base", *robot.links]
        self.movable_joints = [i[0] for i in infos if i[2] != p.JOINT_FIXED]
        # joint-space armature (_armature_torques): each controlled joint's index among the movable
        # ones (the mass matrix's order), the other movable joints' damping (N·m·s/rad)
        self._armature_dofs = [self.movable_joints.index(j) for j in self._joint_list]
        self._dof_damping = [0.0 if j in self._joint_list else infos[j][6] for j in self.movable_joints]
        self._zero_dofs = [0.0] * len(self.movable_joints)
        self._single_dof_joints = all(infos[j][2] in (p.JOINT_REVOLUTE, p.JOINT_PRISMATIC) for j in self.movable_joints)
        #: (physics step it is for, M, applied forces, q̇) of the last armature step (_armature_torques)
        self._armature_prev: tuple[int, Any, list[float], list[float]] | None = None
        passive = [j for j in self.movable_joints if j not in self._joint_list]
        self._passive_initial = [(j, p.getJointState(rid, j, physicsClientId=cid)[0]) for j in passive]

    def set_com_offsets(self, offsets: dict[str, np.ndarray]) -> None:
        """Move link centres of mass by ``offsets`` (m, link frame) relative to the model's.

        PyBullet cannot move a COM after loading, so the robot body is rebuilt with
        ``createMultiBody`` from collision shapes cached at the first call (see
        :mod:`sim2real.sim.body_builder`; its visual shapes follow ``keep_visuals`` /
        ``headless``, the physics does not depend on them). The new body starts from the nominal dynamics
        (the runner applies the episode's other draws afterwards) and the current joint
        state. An empty dict restores the model's COMs (rebuilds only if they moved).
        """
        offsets = {k: np.asarray(v, dtype=float).reshape(3) for k, v in offsets.items() if np.any(v)}
        if not offsets and not self.com_offsets:
            return
        if self.robot.model.format != "urdf":
            raise EnvError(f"com_offset needs a URDF model; {self.robot.name} is {self.robot.model.format.upper()}")
        mode = "model" if self.keep_visuals else ("none" if self.headless else "collision")
        if self._builder is None:
            self._builder = BodyBuilder(self.client, self.robot_id, visuals=mode)
        q, qd = self.joint_state()
        index_offsets = {self.link_index[k]: v for k, v in offsets.items()}
        p.removeBody(self.robot_id, physicsClientId=self.client)
        self.robot_id = self._builder.build(index_offsets, visuals=mode)
        self._pushed_damping = None
        self._pushed_links = {k: v for k, v in self._pushed_links.items() if k == "floor"}
        self.com_offsets = offsets
        self._invalidate_mirror()
        self._reapply_nominal()
        self.set_joint_state(q, qd)

    # ------------------------------------------------------------------ state
    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Controlled joints' positions (rad) and velocities (rad/s), each (n_joints,) (empty
        arrays for a robot without controlled joints, e.g. a quadrotor)."""
        if not self._joint_list:  # p.getJointStates(body, []) returns None
            return np.zeros(0), np.zeros(0)
        states = p.getJointStates(self.robot_id, self._joint_list, physicsClientId=self.client)
        return np.array([s[0] for s in states]), np.array([s[1] for s in states])

    def set_joint_state(self, q: Sequence[float], qd: Sequence[float] | None = None) -> None:
        """Reset controlled joints to ``q`` (rad) / ``qd`` (rad/s, default 0); other movable
        joints (fingers, passive joints) go back to their state at load, so resets are deterministic."""
        cid, rid = self.client, self.robot_id
        qd = np.zeros(len(self._joint_list)) if qd is None else qd
        for j, a in self._passive_initial:
            p.resetJointState(rid, j, a, 0.0, physicsClientId=cid)
        for j, a, v in zip(self._joint_list, q, qd):
            p.resetJointState(rid, j, float(a), float(v), physicsClientId=cid)
        self._armature_prev = None

    def link_position(self, link: int) -> np.ndarray:
        """World position (m) of a link frame (-1: the base link frame)."""
        if link < 0:
            return self.base_pose()[0]
        return np.array(p.getLinkState(self.robot_id, link, computeForwardKinematics=1,
                                       physicsClientId=self.client)[4])

    def base_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Base link frame: position (m, world) and orientation (quaternion xyzw).

        PyBullet reports the base's centre-of-mass frame; the link frame (what URDF and the
        robot's joint/end-effector coordinates refer to) is recovered from the inertial offset.
        """
        cid = self.client
        pos, orn = p.getBasePositionAndOrientation(self.robot_id, physicsClientId=cid)
        d = p.getDynamicsInfo(self.robot_id, -1, physicsClientId=cid)
        inv_pos, inv_orn = p.invertTransform(d[3], d[4])
        pos, orn = p.multiplyTransforms(pos, orn, inv_pos, inv_orn)
        return np.array(pos), np.array(orn)

    # ------------------------------------------------------------------ control
    @property
    def torque_driven(self) -> bool:
        """The joints run in PyBullet's torque mode: torque commands, or a drive that computes
        torques every physics step (``pd``, ``dc_motor``, ``actuator_net``)."""
        return self.mode == "torque" or self.drive.kind == "computed"

    def _configure_motors(self) -> None:
        """Motor set-up of the control mode and drive: torque-driven joints get PyBullet's default
        velocity motors replaced by velocity motors (target 0) whose max force is the joint's
        Coulomb friction; the drive re-reads its per-joint parameters."""
        cid, rid = self.client, self.robot_id
        if self.drive.mode != self.mode:  # the control mode changed (env control_mode, record)
            self.drive.close()
            self.drive = Drive(self)
        j = self.current["joints"]
        self.effort_limit = self.max_effort * j["strength"]
        self._neg_effort = -self.effort_limit
        self.drive.configure(j, self.effort_limit)
        if self.torque_driven and self._joint_list:
            passive = [i for i in self.movable_joints if i not in self._joint_list]
            if passive:
                p.setJointMotorControlArray(rid, passive, p.VELOCITY_CONTROL, forces=[0.0] * len(passive),
                                            physicsClientId=cid)
            p.setJointMotorControlArray(rid, self._joint_list, p.VELOCITY_CONTROL,
                                        targetVelocities=[0.0] * len(self._joint_list),
                                        forces=[float(f) for f in j["friction"]], physicsClientId=cid)
        self._friction_torque = bool(not self.torque_driven and np.any(j["friction"] > 0))
        self._friction_list = [float(f) for f in j["friction"]]
        self._sync_armature_model()

    def _armature_torques(self, torque: list[float], count: int, states: Sequence[Any] | None = None) -> list[float]:
        """The torques to send for ``torque`` (N·m per controlled joint) before physics step
        ``count`` so that the model moves as with each joint's armature J on its diagonal of the
        joint-space mass matrix (MuJoCo's armature, see :mod:`sim2real.sim.dynamics`):

        q̈ = (M + diag J)⁻¹(τ − bias − D q̇ + g) over all movable joints, sent as τ − J q̈; PyBullet's
        M q̈ = τ' − bias − D q̇ + g then gives that q̈. g is the generalized force of contacts, joint
        limits and friction motors, which PyBullet's solver computes inside its step: it is taken
        from the previous physics step (its M, applied forces and the velocity change it made),
        so a resting contact or a joint at its limit takes its share of the torque as in MuJoCo.
        Without a previous step (after :meth:`hold`, a state reset or a rebuild) g = 0.
        ``states``: ``getJointStates`` of the movable joints when the caller has read them."""
        cid, rid, dofs = self.client, self.robot_id, self._armature_dofs
        if states is None:
            states = p.getJointStates(rid, self.movable_joints, physicsClientId=cid)
        q = [s[0] for s in states]
        qd = [s[1] for s in states]
        mirror = self._mirror
        mass = mirror.mass_matrix(q)
        bias = mirror.inverse_dynamics(q, qd, self._zero_dofs)
        damping = self._dof_damping
        for k, v in zip(dofs, self.current["joints"]["damping"].tolist()):
            damping[k] = v
        prev = self._armature_prev
        last = prev[1:] if prev is not None and prev[0] == count else None
        sent, applied = armature_solve(mass, bias, qd, damping, dofs, self._armature, torque, last, self.physics_dt)
        self._armature_prev = (count + 1, mass, applied, qd)
        return sent

    @property
    def active(self) -> np.ndarray:
        """The command acting now, (n_joints,) (rad, rad/s or N·m by control mode; a subclass's
        actuator command, e.g. the quadrotor's). Assign a new array (or list of floats) to
        change it: the float list view (``_active_list``) does not see in-place edits."""
        a = self._active
        if a is None:  # a list was issued (``_active_list``): make the array on demand
            a = self._active = np.array(self._active_list, dtype=float)
        return a

    @active.setter
    def active(self, value: np.ndarray | list[float]) -> None:
        if type(value) is list:  # floats: the array is built when someone asks
            self._active, self._active_list = None, value
        else:
            self._active, self._active_list = value, None

    def hold(self) -> None:
        """Make the current joint state the active command (position: hold here; others: zero)."""
        q, qd = self.joint_state()
        self._queue.clear()
        self._armature_prev = None
        self.active = q.copy() if self.mode == "position" else np.zeros(len(self._joint_list))
        if self.drive.kind == "computed":
            self.drive.reset(self.active, q, qd)
        self._issue(self.active)

    def set_command_queue(self, active: np.ndarray, pending: Sequence[tuple[int, np.ndarray]] = (),
                          previous: np.ndarray | None = None, elapsed: int = 0) -> None:
        """Make ``active`` the command acting now and queue ``pending`` ``(due physics step, command)``
        pairs (absolute ``physics_step_count`` values) — e.g. to start a log replay mid-stream
        with the commands still in flight under action latency. ``previous``: the command before
        ``active``, which became active ``elapsed`` physics steps ago (an interpolating drive's
        setpoint is then where it would be on that ramp); without it the drive starts at rest on
        ``active``."""
        self.active = np.asarray(active, dtype=float).copy()
        if self.drive.kind == "computed":
            start = self.active if previous is None else np.asarray(previous, dtype=float)
            self.drive.reset(start, *self.joint_state())
        self._issue(self.active)
        if self.drive.kind == "computed" and previous is not None:
            self.drive.advance(int(elapsed))
        self._armature_prev = None
        self._queue = deque((int(t), np.asarray(c, dtype=float)) for t, c in sorted(pending, key=lambda x: x[0]))

    def _issue(self, cmd: np.ndarray | list[float]) -> None:
        if not self._joint_list:  # nothing to command (subclasses with other actuators override this)
            self._torque = None
            return
        if type(cmd) is list:
            cmd = np.array(cmd, dtype=float)
        if self.mode != "torque":  # the drive: PyBullet motors are set now, computed torques follow the command
            self.drive.issue(cmd)
            self._torque = None
        else:
            # the clip ufunc (np.clip's Python wrapper costs ~4x more on a few joints)
            self._torque = _clip(cmd, self._neg_effort, self.effort_limit).tolist()

    def reset_control(self) -> None:
        """Re-issue the motor set-up (call after gains/strength/friction changed); a computed
        drive re-reads its parameters and keeps its setpoint."""
        self._configure_motors()
        if self.drive.kind != "computed":
            self._issue(self.active)

    def step(self, command: np.ndarray, capture_at: int = 0, capture: Callable[[], None] | None = None) -> None:
        """Issue ``command`` now and advance one control step (``substeps`` physics steps).

        Args:
            command: (n_joints,) position targets (rad), velocity targets (rad/s) or torques
                (N·m) by control mode, an array or a list of floats. It becomes active
                ``action_delay`` physics steps later.
            capture_at: if ``capture`` is given, it is called after this many physics steps
                (1..substeps) of the control step (observation latency at physics resolution).
        """
        count = self.physics_step_count
        self._queue.append((count + self.action_delay, command))
        if (self.drive.kind == "computed" or (self.mode == "torque" and self._joint_list) or self._friction_torque
                or self.pushes or self.physics_step_hook is not None):
            self._step_per_physics_step(capture_at, capture)
            return
        # Nothing to do between physics steps: step in runs up to the next queued command
        # or capture (one Python loop iteration per run, not per physics step).
        cid, step_sim, substeps = self.client, p.stepSimulation, self.substeps
        k = 0
        while k < substeps:
            self._activate_due(count)
            stop = self._run_end(k, count, capture_at, capture)
            for _ in range(stop - k):
                step_sim(physicsClientId=cid)
            count += stop - k
            k = stop
            self.physics_step_count = count
            if capture is not None and k == capture_at:
                capture()

    def joint_efforts(self) -> np.ndarray:
        """Motor torque (N·m) of each controlled joint in the last physics step, (n_joints,): the
        drive's torque when it computes torques, else what PyBullet reports as the joint motor's
        torque (what a real arm reports in ``JointState.effort``)."""
        if self.drive.kind == "computed":
            return np.array(self.drive_torque, dtype=float)
        states = p.getJointStates(self.robot_id, self._joint_list, physicsClientId=self.client)
        return np.array([s[3] for s in states], dtype=float)

    def _activate_due(self, count: int) -> None:
        """Make the queued commands due at physics step ``count`` active (in queue order)."""
        queue = self._queue
        while queue and queue[0][0] <= count:
            cmd = queue.popleft()[1]
            self.active = cmd
            self._issue(cmd)

    def _run_end(self, k: int, count: int, capture_at: int, capture: Callable[[], None] | None) -> int:
        """Where a run of physics steps that starts at substep ``k`` (physics step ``count``) ends:
        the next queued command's activation, the observation capture, or the control step's end."""
        stop = self.substeps
        queue = self._queue
        if queue and queue[0][0] - count < stop - k:
            stop = k + queue[0][0] - count
        if capture is not None and k < capture_at < stop:
            stop = capture_at
        return stop

    def _step_per_physics_step(self, capture_at: int, capture: Callable[[], None] | None) -> None:
        """:meth:`step` when something acts every physics step: torques (torque mode, or a
        torque-computing drive, which turns the active command and the joint state into
        :attr:`drive_torque` every physics step), friction torques, pushes,
        :attr:`physics_step_hook`. Torques go through the joint-space armature solve when the
        robot has armature."""
        cid, rid, joints = self.client, self.robot_id, self._joint_list
        hook = self.physics_step_hook
        step_sim, set_motors, torque_control = p.stepSimulation, p.setJointMotorControlArray, p.TORQUE_CONTROL
        computed = self.drive.kind == "computed"
        torque_mode = self.mode == "torque" and bool(joints)
        friction = self._friction_torque
        count = self.physics_step_count
        for k in range(1, self.substeps + 1):
            self._activate_due(count)
            if computed:
                self._send_drive_torques(count)
            elif torque_mode:
                torque = self._torque if self._armature is None else self._armature_torques(self._torque, count)
                set_motors(rid, joints, torque_control, forces=torque, physicsClientId=cid)
            elif friction:
                self._apply_friction_torque()
            pushes = self.pushes
            if hook is None:
                pass
            elif pushes and hook is self.push_hook and len(pushes) == 1 and pushes[0].link < 0:
                # the hook applies the base's forces anyway: it adds this push to them (one
                # applyExternalForce; PyBullet sums the forces on a body the same way)
                push = pushes[0]
                hook(push.force_list, push.torque_list)
                push.steps_left -= 1
                if push.steps_left <= 0:
                    self.pushes = []
                pushes = None
            else:
                hook()
                pushes = self.pushes  # (a hook may start a push)
            if pushes:
                self._apply_pushes()
            step_sim(physicsClientId=cid)
            count += 1
            self.physics_step_count = count
            if k == capture_at and capture is not None:
                capture()

    def _send_drive_torques(self, count: int) -> None:
        """The computed drive's torques for physics step ``count``, sent in torque mode: one joint-state
        read (the movable joints when the armature solve needs them all, the controlled ones picked
        out for the drive)."""
        cid, rid, joints = self.client, self.robot_id, self._joint_list
        armature = self._armature is not None
        states = p.getJointStates(rid, self.movable_joints if armature else joints, physicsClientId=cid)
        mine = [states[i] for i in self._armature_dofs] if armature else states
        tau = self.drive.torques(np.array([s[0] for s in mine]), np.array([s[1] for s in mine]))
        self.drive_torque = tau
        sent = tau.tolist()
        if armature:
            sent = self._armature_torques(sent, count, states)
        p.setJointMotorControlArray(rid, joints, p.TORQUE_CONTROL, forces=sent, physicsClientId=cid)

    def _apply_friction_torque(self) -> None:
        # pure Python on purpose: this runs every physics step, numpy would triple its cost
        cid, rid, eps = self.client, self.robot_id, FRICTION_VELOCITY_EPS
        states = p.getJointStates(rid, self._joint_list, physicsClientId=cid)
        tau = [-f * math.tanh(s[1] / eps) for f, s in zip(self._friction_list, states)]
        p.setJointMotorControlArray(rid, self._joint_list, p.TORQUE_CONTROL, forces=tau, physicsClientId=cid)

    def start_push(self, link: int, force: np.ndarray, torque: np.ndarray, duration_steps: int) -> None:
        """Apply ``force`` (N, world) at the link's COM and ``torque`` (N·m, world) for ``duration_steps`` physics steps."""
        self.pushes.append(Push(link, np.asarray(force, float), np.asarray(torque, float), max(1, int(duration_steps))))

    def set_wind(self, link: int, force: Sequence[float]) -> None:
        """Hold ``force`` (3,), N, world frame, at the link's COM at every physics step until the next
        randomized reset (a steady :class:`Push`; replaces the link's previous one, zero removes it)."""
        self.pushes = [x for x in self.pushes if not (x.steady and x.link == link)]
        force = np.asarray(force, dtype=float).reshape(3)
        if np.any(force):
            self.pushes.insert(0, Push(link, force, np.zeros(3), STEADY_STEPS, steady=True))

    def _apply_pushes(self) -> None:
        cid, rid = self.client, self.robot_id
        for push in self.pushes:
            if push.link < 0:
                pos = p.getBasePositionAndOrientation(rid, physicsClientId=cid)[0]
            else:
                pos = p.getLinkState(rid, push.link, computeForwardKinematics=1, physicsClientId=cid)[0]
            p.applyExternalForce(rid, push.link, push.force_list, pos, p.WORLD_FRAME, physicsClientId=cid)
            if push.torque_list is not None:
                p.applyExternalTorque(rid, push.link, push.torque_list, p.WORLD_FRAME, physicsClientId=cid)
            push.steps_left -= 1
        self.pushes = [x for x in self.pushes if x.steps_left > 0]

    def close(self) -> None:
        for part in (getattr(self, "drive", None), getattr(self, "_mirror", None)):
            if part is not None:
                part.close()
        self.client = disconnect(self.client)

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass
