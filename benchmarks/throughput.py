"""Throughput of the sim2real envs against a bare PyBullet loop, and the cost of a randomized reset.

For each registered env id (ids that are not registered are skipped), in the same process:

* ``env``: control steps/s of ``gym.make(id, profile=...)`` with random actions;
* ``bare``: steps/s of a bare PyBullet loop on the same robot — same model and ``robot.yaml``
  nominal dynamics, floor, physics rate and substeps — making the same PyBullet calls an
  env needs at minimum: the control call (one ``setJointMotorControlArray`` per control
  step; per physics step for torques), ``stepSimulation`` per physics step, then the state
  reads the observation needs with the same flags (arms: ``getJointStates`` of the arm
  joints and ``getLinkState`` of the end effector; hopper: ``getLinkState`` of the torso
  with velocities and ``getJointStates`` of root and leg joints; quadrotor: per physics step
  the base pose (and velocity for the rotor drag) and the resultant of the four rotor
  thrusts, yaw torque and drag as one force and one torque, per control step pose and
  velocity). A torque-controlled robot with armature (the hopper: rotor inertia 1.0 per
  joint) is simulated with it in both loops: PyBullet has no joint-space armature, so the
  bare loop makes the world's per-physics-step torque computation too
  (``PhysicsWorld._armature_torques``: joint states, mass matrix, inverse dynamics). A robot
  with a computed drive (the arms' ``pd`` actuators) runs the drive's arithmetic per physics step
  in plain numpy in the bare loop too: joint states, the linear setpoint ramp, the PD law, the
  nominal gravity feed-forward (one inverse dynamics on the drive's nominal model), the effort
  clip, then the armature solve and the torque call;
* ``ratio`` = env / bare steps/s by wall-clock, ``cpu ratio`` the same by thread CPU time
  (what an idle machine would show: PyBullet DIRECT and the envs are single-threaded, and
  CPU time does not count the time other processes hold the core). Target >= 0.9; PASS/MISS
  is judged on the CPU ratio;
* the env's own cost per step outside ``PhysicsWorld.step`` (observation, reward, noise,
  info, wrappers), i.e. what it adds on top of physics and control (timed in a separate pass
  after the rate blocks, so the timer's calls are not counted in the env's rate).

The two loops run interleaved in blocks of ``--block`` steps (order alternating) so machine
noise hits both; rates and ratios are medians over the blocks (ratios per round). Resets are not timed in
either loop (they are measured separately). The bare loops end an episode where the env does:
after the env's ``TimeLimit`` (100 steps for the arms, 1000 for the hopper, 240/480 for the
quadrotors), when the hopper falls, when the quadrotor leaves its flight box, tilts past its
limit or touches the floor (the env's tests).

Then the cost of one ``reset()`` with full dynamics randomization (``arm_dynamics_full``),
with and without its ``com_offset`` entry (which rebuilds the body), and nominal: median and
mean wall-clock and median CPU time over ``--resets`` resets; target <= 2 ms (judged on CPU
time: on a loaded machine a ~1.5 ms reset is often preempted for a whole time slice, which
makes wall-clock times bimodal).

    nice python benchmarks/throughput.py [--steps 3000] [--block 100] [--resets 200] [--only Kuka] [--skip Camera]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from typing import Any

import gymnasium as gym
import numpy as np
import pybullet as p

import sim2real.envs  # noqa: F401  (registers)

PROFILES = {
    "sim2real/KukaReach-v0": "peng2018_arm", "sim2real/PandaReach-v0": "peng2018_arm",
    "sim2real/KukaReachVel-v0": "peng2018_arm", "sim2real/PandaReachVel-v0": "peng2018_arm",
    "sim2real/KukaReachCamera-v0": "cad2rl_visual", "sim2real/PandaReachCamera-v0": "cad2rl_visual",
    "sim2real/Hopper-v0": "epopt_hopper",
    "sim2real/QuadrotorHover-v0": "quadrotor", "sim2real/QuadrotorWaypoint-v0": "quadrotor",
    "sim2real/QuadrotorHoverRates-v0": "quadrotor", "sim2real/QuadrotorHoverVel-v0": "quadrotor",
    "sim2real/QuadrotorWaypointVel-v0": "quadrotor",
}
#: rows with a ratio target (the issue's targets); others are informational
TARGET_IDS = {"sim2real/KukaReach-v0", "sim2real/PandaReach-v0", "sim2real/KukaReachVel-v0",
              "sim2real/PandaReachVel-v0", "sim2real/Hopper-v0", "sim2real/QuadrotorHover-v0",
              "sim2real/QuadrotorWaypoint-v0", "sim2real/QuadrotorHoverRates-v0", "sim2real/QuadrotorHoverVel-v0",
              "sim2real/QuadrotorWaypointVel-v0"}
EXTRA = [("sim2real/KukaReach-v0", "arm_dynamics_full"), ("sim2real/PandaReach-v0", "arm_dynamics_full")]
RATIO_TARGET = 0.9
RESET_TARGET_MS = 2.0


class EnvLoop:
    """Steps a registered env with random actions; resets are excluded from the timing."""

    def __init__(self, env_id: str, profile: str) -> None:
        self.env = gym.make(env_id, profile=profile)
        self.env.action_space.seed(0)
        self.actions = [self.env.action_space.sample() for _ in range(256)]
        self.episodes: list[dict[str, Any]] = []  # physical parameters of each episode (for `same`)
        self.env.reset(seed=0)
        self._snapshot()
        self.i = 0
        self.in_world = 0.0  # seconds inside PhysicsWorld.step (physics + control calls), while instrumented

    def instrument(self, on: bool) -> None:
        """Time ``PhysicsWorld.step`` (for the env's µs per step outside it) or stop timing it.
        Off for the rate blocks: the timer's own calls would be counted as env cost."""
        world = getattr(self.env.unwrapped, "world", None)
        if world is None or not hasattr(world, "step"):
            return
        if not on:
            world.__dict__.pop("step", None)
            return
        inner = world.step

        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            out = inner(*args, **kwargs)
            self.in_world += time.perf_counter() - t
            return out
        world.step = timed

    def _snapshot(self) -> None:
        w = getattr(self.env.unwrapped, "world", None)
        if w is None or not hasattr(w, "current"):
            return
        self.episodes.append({
            "links": {n: dict(v) for n, v in w.current["links"].items()},
            "scale": dict(w._inertia_scale), "joints": {k: v.copy() for k, v in w.current["joints"].items()},
            "gravity": w.current["gravity"].copy(), "com": dict(w.com_offsets)})

    def run(self, steps: int) -> tuple[float, float]:
        """(wall, CPU) seconds spent in ``steps`` env steps (resets excluded)."""
        env, actions = self.env, self.actions
        wall = cpu = 0.0
        t, c = time.perf_counter(), time.thread_time()
        for _ in range(steps):
            _, _, term, trunc, _ = env.step(actions[self.i % 256])
            self.i += 1
            if term or trunc:
                wall += time.perf_counter() - t
                cpu += time.thread_time() - c
                env.reset()
                self._snapshot()
                t, c = time.perf_counter(), time.thread_time()
        return wall + time.perf_counter() - t, cpu + time.thread_time() - c

    def close(self) -> None:
        self.env.close()


class BareLoop:
    """Bare PyBullet loop for the robot, control mode and action mapping of ``env`` (a SimEnv).

    The robot is loaded by a second ``PhysicsWorld`` so it has the same model and nominal
    dynamics (robot.yaml ``nominal``) as the env; stepping then uses raw PyBullet calls only.
    """

    def __init__(self, env: Any, actions: list[np.ndarray], episodes: list[dict[str, Any]] | None = None,
                 episode_steps: int = 100) -> None:
        from sim2real.sim.world import PhysicsWorld

        robot = env.robot
        self.world = world = PhysicsWorld(robot)
        world.mode = env.world.mode
        world.reset_control()
        #: the env loop's per-episode physical parameters: bare episode k gets the env's episode k
        self.episodes = episodes
        self.episode = 0
        self.cid = world.client
        self.body = world.robot_id
        self.joints = [int(j) for j in world.joint_indices]
        self.mode = world.mode
        self.substeps = world.substeps
        self.ee = world.ee_index if robot.kind == "arm" else None
        self.torso = world.link_index.get("torso") if robot.kind == "legged" else None
        # joints the env's observation reads (hopper: the planar root joints, then the leg)
        self.read = list(getattr(env, "_all", self.joints))
        self.healthy_z = float(robot.model_params.get("healthy_z", 0.7))
        self.healthy_angle = float(robot.model_params.get("healthy_angle", 0.2))
        n = len(self.joints)
        self.forces = world.max_effort.tolist()
        self.kp, self.kd = [robot.control.position_gain] * n, [robot.control.velocity_gain] * n
        # a computed drive (pd): its parameters, read as the drive reads them
        self.computed = world.drive.kind == "computed"
        if self.computed:
            group = world.drive.groups[0]
            if len(world.drive.groups) != 1 or type(group).__name__ != "PDActuator":
                raise ValueError("the bare loop reproduces one pd group per robot")
            self.interpolation = group.setpoint.kind
            self.gravity = world.drive.gravity
        spec = env.action_spec()
        self.scale, self.low, self.high = np.array(spec["scale"]), np.array(spec["low"]), np.array(spec["high"])
        self.delta = spec["mode"] == "joint_position_delta"
        self.acts = np.array(actions, dtype=np.float64)  # the env loop's actions, in the same order
        self.episode_steps = int(episode_steps)  # the env's episode length (its TimeLimit)
        self.i = 0
        self._reset()

    def _reset(self) -> None:
        self.t = 0  # steps in this episode
        cid, world = self.cid, self.world
        if self.episodes:
            # physical parameters only (masses, inertias, friction, damping, gains, strength,
            # gravity, COM); latency/noise/pushes are env work the bare loop does not do
            ep = self.episodes[min(self.episode, len(self.episodes) - 1)]
            self.episode += 1
            with world.batch():
                world.set_com_offsets(ep["com"])
                for name, values in ep["links"].items():
                    world.set_link(name, inertia_scale=ep["scale"][name], **values)
                for field, values in ep["joints"].items():
                    world.set_joint(field, values)
                world.set_gravity(ep["gravity"])
            self.body = world.robot_id
            j = world.current["joints"]
            self.forces = world.effort_limit.tolist()
            self.kp, self.kd = j["position_gain"].tolist(), j["velocity_gain"].tolist()
        if self.computed:
            j = world.current["joints"]
            self.kp_arr, self.kd_arr = j["position_gain"].copy(), j["velocity_gain"].copy()
            self.limit = world.effort_limit.copy()
        for j in range(p.getNumJoints(self.body, physicsClientId=cid)):
            p.resetJointState(self.body, j, 0.0, physicsClientId=cid)
        world._armature_prev = None  # a new state: no previous physics step's constraint force
        self.count = 0
        if self.torso is None:
            for j, q0 in zip(self.joints, self.world.home):
                p.resetJointState(self.body, j, float(q0), physicsClientId=cid)
        self.q = np.array(self.world.home, dtype=float)
        self.setpoint = self.q.copy()

    def _drive_substeps(self, target: np.ndarray, armature: Any) -> None:
        """One control step of the pd drive (linear or zoh setpoint), per physics step."""
        cid, body, joints, n = self.cid, self.body, self.joints, self.substeps
        start = self.setpoint
        rate = (target - start) / (n * self.world.physics_dt) if self.interpolation == "linear" else 0.0 * start
        kp, kd, lim, gravity = self.kp_arr, self.kd_arr, self.limit, self.gravity
        movable, dofs = self.world.movable_joints, self.world._armature_dofs
        for k in range(1, n + 1):
            # one state read: all movable joints when the armature solve needs them
            states = p.getJointStates(body, movable if armature is not None else joints, physicsClientId=cid)
            mine = [states[i] for i in dofs] if armature is not None else states
            q = np.array([s[0] for s in mine])
            qd = np.array([s[1] for s in mine])
            ref = start + (k / n) * (target - start) if self.interpolation == "linear" else target
            tau = kp * (ref - q) + kd * (rate - qd)
            if gravity is not None:
                tau = tau + gravity.torques(q)
            sent = np.minimum(np.maximum(tau, -lim), lim).tolist()
            if armature is not None:
                sent = armature(sent, self.count, states)
            p.setJointMotorControlArray(body, joints, p.TORQUE_CONTROL, forces=sent, physicsClientId=cid)
            p.stepSimulation(physicsClientId=cid)
            self.count += 1
        self.setpoint = target

    def run(self, steps: int) -> tuple[float, float]:
        """(wall, CPU) seconds spent in ``steps`` control steps (resets excluded)."""
        cid, body, joints, mode, read = self.cid, self.body, self.joints, self.mode, self.read
        # the robot's joint-space armature (the hopper's rotor inertia): PyBullet has none, so
        # simulating this robot takes the world's per-physics-step torque computation here too
        armature = self.world._armature_torques if self.world._armature is not None else None
        wall = cpu = 0.0
        t, c = time.perf_counter(), time.thread_time()
        for _ in range(steps):
            cmd = self.acts[self.i % 256] * self.scale
            if self.computed and mode == "position":
                target = np.minimum(np.maximum(self.q + cmd, self.low), self.high) if self.delta else cmd
                self._drive_substeps(target, armature)
            elif mode == "position":
                target = np.minimum(np.maximum(self.q + cmd, self.low), self.high) if self.delta else cmd
                p.setJointMotorControlArray(body, joints, p.POSITION_CONTROL, targetPositions=target.tolist(),
                                            forces=self.forces, positionGains=self.kp, velocityGains=self.kd,
                                            physicsClientId=cid)
            elif mode == "velocity":
                p.setJointMotorControlArray(body, joints, p.VELOCITY_CONTROL, targetVelocities=cmd.tolist(),
                                            forces=self.forces, velocityGains=self.kd, physicsClientId=cid)
            if self.computed and mode == "position":
                pass
            elif mode == "torque":
                torques = cmd.tolist()
                for _ in range(self.substeps):
                    sent = torques if armature is None else armature(torques, self.count)
                    p.setJointMotorControlArray(body, joints, p.TORQUE_CONTROL, forces=sent, physicsClientId=cid)
                    p.stepSimulation(physicsClientId=cid)
                    self.count += 1
            else:
                for _ in range(self.substeps):
                    p.stepSimulation(physicsClientId=cid)
            fallen = False
            if self.torso is not None:
                z = p.getLinkState(body, self.torso, computeLinkVelocity=1, computeForwardKinematics=1,
                                   physicsClientId=cid)[0][2]
                states = p.getJointStates(body, read, physicsClientId=cid)
                fallen = z < self.healthy_z or abs(states[2][0]) > self.healthy_angle
            else:
                states = p.getJointStates(body, read, physicsClientId=cid)
                self.q = np.array([s[0] for s in states])
                if self.ee is not None:
                    p.getLinkState(body, self.ee, computeForwardKinematics=1, physicsClientId=cid)
            self.i += 1
            self.t += 1
            if fallen or self.t >= self.episode_steps:  # episode boundary as in the envs
                wall += time.perf_counter() - t
                cpu += time.thread_time() - c
                self._reset()
                t, c = time.perf_counter(), time.thread_time()
        return wall + time.perf_counter() - t, cpu + time.thread_time() - c

    def close(self) -> None:
        self.world.close()


class BareQuadrotorLoop:
    """Bare loop for a quadrotor, what flying the robot needs at minimum, in plain floats: per
    control step the four rotor thrusts (from the random actions: the env's per-motor mapping,
    hover ± 20 % for the controller modes) and their
    resultant in the body frame (collective thrust along body z, torque ``Σ r_i × T_i ẑ`` plus
    the yaw reaction ``Σ s_i km/kf T_i``); per physics step the base pose, and (if the robot's
    ``model_params`` has rotor drag, as the env's rotor model applies it) the base velocity and
    the drag force, then that wrench turned to world and applied as one force at the centre of
    mass and one torque (as the env does); per control step the base pose and velocity, and the
    env's termination test (flight box, tilt, a floor contact query when low enough to touch
    the floor). No motor lag, ground effect or rate
    controller: those are the env's model, counted as env cost."""

    def __init__(self, env: Any, actions: list[np.ndarray], episode_steps: int = 100) -> None:
        robot = env.robot
        self.world = world = type(env.world)(robot)  # the env's world class loads it as the env does
        self.cid, self.body, self.substeps = world.client, world.robot_id, world.substeps
        mass = sum(p.getDynamicsInfo(self.body, i, physicsClientId=self.cid)[0]
                   for i in range(-1, p.getNumJoints(self.body, physicsClientId=self.cid)))
        mp = robot.model_params
        arm = float(mp.get("arm_length", 0.04)) / math.sqrt(2.0)
        #: rotor (x, y) in motor order (front-right, back-right, back-left, front-left) and yaw signs
        self.rotors = [(arm, -arm), (-arm, -arm), (-arm, arm), (arm, arm)]
        self.kf = float(mp.get("kf", 3.16e-10))
        self.yaw_per_thrust = [s * float(mp.get("km", 7.94e-12)) / self.kf for s in (-1.0, 1.0, -1.0, 1.0)]
        self.drag = (float(mp.get("drag_coeff", 0.0)), float(mp.get("drag_coeff_z", 0.0)))
        self.hover = mass * 9.81 / 4.0
        # rotor thrusts (N) from the env loop's actions: per-motor envs map them as the env does
        # (ω² = offset + scale·a, rpm², ≥ 0; thrust kf·ω²), so both drones tumble and crash alike;
        # for the thrust/rate and velocity envs (whose controllers this loop does not run) hover ± 20 %
        acts = np.array(actions, dtype=np.float64)
        if getattr(env, "action_mode", "motor") == "motor":
            w2 = np.maximum(env.action_offset + env.action_scale * np.clip(acts, -1.0, 1.0), 0.0)
            self.thrust_table = (self.kf * w2).tolist()
        else:
            self.thrust_table = (self.hover * (1.0 + 0.2 * acts)).tolist()
        self.acts = np.array(actions, dtype=np.float64)
        self.start = (tuple(robot.model.base_position), tuple(robot.model.base_orientation))
        self.episode_steps = int(episode_steps)  # the env's episode length (its TimeLimit)
        # the env's termination: its flight box, its tilt limit, and a floor contact, which the
        # env (and so this loop) only queries when the drone is low enough to touch the floor
        cfg = env._cfg
        self.box = (tuple(float(v) for v in cfg.bounds_low), tuple(float(v) for v in cfg.bounds_high))
        self.min_cos_tilt = math.cos(float(cfg.max_tilt))
        self.floor = world.floor_id
        self.dt = world.physics_dt
        from sim2real.envs.quadrotor import FLOOR_QUERY_MARGIN

        self.margin = FLOOR_QUERY_MARGIN
        self.i = 0
        self._reset()
        env_body = env.world.robot_id  # the body's reach from its centre of mass, as the env measures it
        self.reach = env._reach if env_body >= 0 and env._reach > 0 else 0.2
        self.floor_top = env._floor_top

    def _reset(self) -> None:
        self.t = 0  # steps in this episode
        p.resetBasePositionAndOrientation(self.body, *self.start, physicsClientId=self.cid)
        p.resetBaseVelocity(self.body, (0, 0, 0), (0, 0, 0), physicsClientId=self.cid)

    def run(self, steps: int) -> tuple[float, float]:
        """(wall, CPU) seconds spent in ``steps`` control steps (resets excluded)."""
        cid, body, rotors = self.cid, self.body, self.rotors
        world_frame = p.WORLD_FRAME
        wall = cpu = 0.0
        t, c = time.perf_counter(), time.thread_time()
        for _ in range(steps):
            thrusts = self.thrust_table[self.i % 256]
            total = sum(thrusts)
            # body-frame torque of thrusts along z at (x, y, 0): (Σ y T, −Σ x T, yaw)
            tx = sum(y * f for (_, y), f in zip(rotors, thrusts))
            ty = -sum(x * f for (x, _), f in zip(rotors, thrusts))
            tz = sum(k * f for k, f in zip(self.yaw_per_thrust, thrusts))
            spin = sum(math.sqrt(f / self.kf) for f in thrusts) * (2.0 * math.pi / 60.0)  # rad/s
            dxy, dz = -self.drag[0] * spin, -self.drag[1] * spin
            for _ in range(self.substeps):
                pos, orn = p.getBasePositionAndOrientation(body, physicsClientId=cid)
                m0, m1, m2, m3, m4, m5, m6, m7, m8 = p.getMatrixFromQuaternion(orn)
                fx, fy, fz = 0.0, 0.0, total
                if dxy or dz:
                    vx, vy, vz = p.getBaseVelocity(body, physicsClientId=cid)[0]
                    fx = dxy * (m0 * vx + m3 * vy + m6 * vz)
                    fy = dxy * (m1 * vx + m4 * vy + m7 * vz)
                    fz += dz * (m2 * vx + m5 * vy + m8 * vz)
                p.applyExternalForce(body, -1, (m0 * fx + m1 * fy + m2 * fz, m3 * fx + m4 * fy + m5 * fz,
                                                m6 * fx + m7 * fy + m8 * fz), pos, world_frame, physicsClientId=cid)
                p.applyExternalTorque(body, -1, (m0 * tx + m1 * ty + m2 * tz, m3 * tx + m4 * ty + m5 * tz,
                                                 m6 * tx + m7 * ty + m8 * tz), world_frame, physicsClientId=cid)
                p.stepSimulation(physicsClientId=cid)
            pos, (qx, qy, _, _) = p.getBasePositionAndOrientation(body, physicsClientId=cid)
            vz = p.getBaseVelocity(body, physicsClientId=cid)[0][2]
            cos_tilt = 1.0 - 2.0 * (qx * qx + qy * qy)  # body z · world z
            self.i += 1
            self.t += 1
            (x0, y0, z0), (x1, y1, z1) = self.box
            x, y, z = pos
            ended = (not (x0 <= x <= x1 and y0 <= y <= y1 and z0 <= z <= z1) or cos_tilt < self.min_cos_tilt
                     or (z - self.reach - self.floor_top <= self.margin + 2.0 * abs(vz) * self.dt
                         and bool(p.getContactPoints(body, self.floor, physicsClientId=cid))))
            if self.t >= self.episode_steps or ended:
                wall += time.perf_counter() - t
                cpu += time.thread_time() - c
                self._reset()
                t, c = time.perf_counter(), time.thread_time()
        return wall + time.perf_counter() - t, cpu + time.thread_time() - c

    def close(self) -> None:
        self.world.close()


def make_bare(env: Any, actions: list[np.ndarray], episode_steps: int = 100) -> Any:
    """The bare loop for ``env`` (unwrapped), replaying the env loop's ``actions``, episodes of
    at most ``episode_steps`` steps (the env's TimeLimit)."""
    from sim2real.envs.base import SimEnv

    if not isinstance(env, SimEnv):
        return None
    if env.robot.kind == "quadrotor":  # (its velocity-setpoint mode is not a joint velocity mode)
        return BareQuadrotorLoop(env, actions, episode_steps=episode_steps)
    if env.world.mode in ("position", "velocity", "torque"):
        return BareLoop(env, actions, episode_steps=episode_steps)
    return None


def compare(env_id: str, profile: str, steps: int, block: int) -> dict[str, float]:
    """Interleaved blocks of the env and its bare loops: median steps/s (wall) of each, median
    per-round ratios by wall-clock and by CPU time, env µs/step outside ``PhysicsWorld.step``.

    Two bare loops: ``bare`` with the robot's nominal dynamics and ``same``, whose k-th
    episode runs with the physical parameters of the env's k-th episode (randomized masses,
    damping, gains ... change how much work the physics solver does, which is not env overhead)."""
    envloop = EnvLoop(env_id, profile)
    base = envloop.env.unwrapped
    episode_steps = int(getattr(envloop.env.spec, "max_episode_steps", None) or 100)
    loops: dict[str, Any] = {"env": envloop}
    bare = make_bare(base, envloop.actions, episode_steps)
    if bare is not None:
        loops["bare"] = bare
        if isinstance(bare, BareLoop):
            loops["same"] = BareLoop(base, envloop.actions, episodes=envloop.episodes, episode_steps=episode_steps)
    for loop in loops.values():
        loop.run(20)
    names = list(loops)
    rates: dict[str, list[float]] = {k: [] for k in names}
    ratios: dict[str, list[float]] = {f"{k}_{c}": [] for k in names[1:] for c in ("wall", "cpu")}
    for k in range(max(1, steps // block)):
        order = names[k % len(names):] + names[:k % len(names)]  # rotate who goes first
        res = {name: loops[name].run(block) for name in order}
        for name in names:
            rates[name].append(block / res[name][0])
        for name in names[1:]:
            ratios[f"{name}_wall"].append(res[name][0] / res["env"][0])
            ratios[f"{name}_cpu"].append(res[name][1] / res["env"][1])
    # then, separately (the timer costs a little), the env's time outside PhysicsWorld.step
    done = max(block, min(steps, 1000))
    envloop.instrument(True)
    envloop.in_world = 0.0
    t_env = envloop.run(done)[0]
    for loop in loops.values():
        loop.close()
    nan = float("nan")
    med = statistics.median
    out = {"env": med(rates["env"]), "outside_us": (t_env - envloop.in_world) / done * 1e6}
    for name in ("bare", "same"):
        out[name] = med(rates[name]) if name in rates else nan
        out[f"{name}_wall"] = med(ratios[f"{name}_wall"]) if name in rates else nan
        out[f"{name}_cpu"] = med(ratios[f"{name}_cpu"]) if name in rates else nan
    return out


def reset_cost(env_id: str, profile: Any, resets: int) -> dict[str, float]:
    """Seconds per ``reset()`` (after a warm-up): median and mean wall-clock, median thread CPU time."""
    env = gym.make(env_id, profile=profile)
    env.reset(seed=0)
    for _ in range(5):
        env.reset()
    walls, cpus = [], []
    for _ in range(resets):
        t, c = time.perf_counter(), time.thread_time()
        env.reset()
        cpus.append(time.thread_time() - c)
        walls.append(time.perf_counter() - t)
    env.close()
    return {"median": statistics.median(walls), "mean": statistics.fmean(walls), "cpu": statistics.median(cpus)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000, help="steps per loop (split into blocks)")
    parser.add_argument("--block", type=int, default=100, help="steps per interleaved block")
    parser.add_argument("--resets", type=int, default=200)
    parser.add_argument("--only", default="", help="only env ids containing this text")
    parser.add_argument("--skip", default="", help="comma-separated: skip env ids containing any of these")
    parser.add_argument("--no-resets", action="store_true", help="skip the reset-cost table")
    args = parser.parse_args()
    skip = [x.strip() for x in args.skip.split(",") if x.strip()]
    from sim2real.profiles import load_profile

    head = (f"{'env':32s} {'profile':18s} {'env/s':>6s} {'bare/s':>6s} {'ratio':>5s} {'cpu':>5s} "
            f"{'same/s':>6s} {'ratio':>5s} {'cpu':>5s} {'target':>7s} {'result':>6s} {'µs outside':>10s}")
    print(head)
    print("-" * len(head))
    for env_id, profile in [*PROFILES.items(), *EXTRA]:
        if env_id not in gym.registry or args.only not in env_id or any(x and x in env_id for x in skip):
            continue
        try:
            r = compare(env_id, profile, args.steps, args.block)
        except Exception as exc:  # noqa: BLE001 - report and go on
            print(f"{env_id:32s} {profile:18s} error: {type(exc).__name__}: {exc}")
            continue
        # the target compares with the same robot: same dynamics where the bare loop can draw them
        decide = r["same_cpu"] if r["same_cpu"] == r["same_cpu"] else r["bare_cpu"]
        targeted = decide == decide and env_id in TARGET_IDS and profile == PROFILES.get(env_id)
        result = ("PASS" if decide >= RATIO_TARGET else "MISS") if targeted else "-"
        print(f"{env_id:32s} {profile:18s} {r['env']:6.0f} {r['bare']:6.0f} {r['bare_wall']:5.2f} {r['bare_cpu']:5.2f} "
              f"{r['same']:6.0f} {r['same_wall']:5.2f} {r['same_cpu']:5.2f} "
              f"{('>= %.2f' % RATIO_TARGET) if targeted else '':>7s} {result:>6s} {r['outside_us']:10.0f}", flush=True)
    print("bare: nominal dynamics; same: episode k runs with the env's episode-k physical parameters; "
          "ratio: wall-clock, cpu: thread CPU time\n(both env/bare, medians over interleaved blocks); "
          "PASS/MISS on the CPU ratio against `same` (against `bare` where there is no `same`); "
          "µs outside: env wall µs/step outside PhysicsWorld.step")

    if args.no_resets:
        return
    print()
    head = (f"{'reset cost (arm_dynamics_full)':46s} {'median ms':>9s} {'mean ms':>8s} {'cpu ms':>7s} "
            f"{'target':>7s} {'result':>6s}")
    print(head)
    print("-" * len(head))
    full = load_profile("arm_dynamics_full")
    no_com = full.replace_entry("com_offset", None)
    for env_id in ("sim2real/KukaReach-v0", "sim2real/PandaReach-v0"):
        if args.only not in env_id:
            continue
        for label, prof in (("full", full), ("full without com_offset", no_com), ("nominal", "nominal")):
            r = reset_cost(env_id, prof, args.resets)
            targeted = label == "full"
            result = ("PASS" if r["cpu"] * 1e3 <= RESET_TARGET_MS else "MISS") if targeted else "-"
            print(f"{env_id + ' ' + label:46s} {r['median'] * 1e3:9.2f} {r['mean'] * 1e3:8.2f} {r['cpu'] * 1e3:7.2f} "
                  f"{('<= %.0f' % RESET_TARGET_MS) if targeted else '':>7s} {result:>6s}", flush=True)
    print("median/mean: wall-clock; cpu: median thread CPU time (decides PASS/MISS)")


if __name__ == "__main__":
    main()
