"""Make hardware-like logs in simulation with known ground truth.

:func:`record_excitation` samples a randomization profile once (seeded), applies it to a
:class:`~sim2real.sim.world.PhysicsWorld` with the registered randomizers, drives the arm with
an excitation signal (or a policy through an env, see :func:`record_policy`) and returns a
:class:`HardwareLog` plus the ground truth: the parameter values the world ran with.
``sim2real record`` writes the log as a rosbag2 (or CSV) and the ground truth as YAML.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim2real.errors import Sim2RealError
from sim2real.robots import RobotDescription
from sim2real.sysid.excitation import excitation
from sim2real.sysid.logs import Commands, HardwareLog, JointStates

T0_NS = 1_700_000_000_000_000_000  # fixed epoch so recorded bags are reproducible bit for bit


def apply_profile(world: Any, profile: Any, rng: np.random.Generator) -> dict[str, dict[str, Any]]:
    """Restore nominal, draw every startup/reset entry of ``profile`` and apply it with the
    registered randomizers. Returns ``{entry: {target: value}}`` (``info["randomization"]`` format)."""
    from sim2real.sim.randomizers import make_randomizer

    world.restore_nominal()
    samples = profile.sample(rng, world.robot, when=("startup", "reset"))
    randomizers = [(make_randomizer(world, profile.entries[name]), s) for name, s in samples.items()]
    applied: dict[str, dict[str, Any]] = {}
    for rz, sample in sorted(randomizers, key=lambda x: x[0].order):
        applied[rz.entry.name] = rz.apply(sample, rng)
    world.reset_control()
    return applied


def world_truth(world: Any) -> dict[str, Any]:
    """The world's current dynamics in physical units (what a calibration should recover)."""
    cur, nom = world.current, world.nominal
    names = world.robot.joint_names
    links = [ln for ln in world.robot.links if ln in cur["links"]]
    j = cur["joints"]
    return {
        "link_mass": {ln: float(cur["links"][ln]["mass"]) for ln in links},
        "link_mass_scale": {ln: float(cur["links"][ln]["mass"] / nom["links"][ln]["mass"])
                            for ln in links if nom["links"][ln]["mass"] > 0},
        "joint_damping": {n: float(v) for n, v in zip(names, j["damping"])},
        "joint_friction": {n: float(v) for n, v in zip(names, j["friction"])},
        "motor_strength": {n: float(v) for n, v in zip(names, j["strength"])},
        "position_gain": {n: float(v) for n, v in zip(names, j["position_gain"])},
        "velocity_gain": {n: float(v) for n, v in zip(names, j["velocity_gain"])},
        "armature": {n: float(v) for n, v in zip(names, j["armature"])},
        "action_delay_physics_steps": int(world.action_delay),
    }


def record_excitation(robot: RobotDescription, profile: Any, seed: int, kind: str, duration: float, *,
                      amplitude: float = 0.4, pos_noise: float = 0.0, vel_noise: float = 0.0,
                      effort_noise: float = 0.0, truth_override: Any = None) -> tuple[HardwareLog, dict[str, Any]]:
    """Roll out an excitation signal in a randomized world and log it like the real robot would.

    :param profile: a loaded :class:`~sim2real.profiles.Profile` (sampled once with ``seed``)
    :param kind: ``chirp`` | ``multisine`` | ``prbs`` (see :mod:`sim2real.sysid.excitation`)
    :param duration: log length (s)
    :param pos_noise, vel_noise, effort_noise: std of Gaussian sensor noise on logged positions (rad),
        velocities (rad/s) and efforts (N·m; the effort is the motor torque of the last physics step)
    :param truth_override: optional callable ``world -> None`` applied after the profile (benchmarks
        use it to plant hidden values directly)
    :returns: ``(log, truth)``; the log's joint states are stamped at the control rate, the command
        issued at step ``k`` has the stamp of the state it was computed from
    """
    from sim2real.sim.world import PhysicsWorld

    if robot.kind != "arm":
        raise Sim2RealError(f"record with an excitation signal needs an arm; {robot.name} is a {robot.kind}")
    rng = np.random.default_rng(seed)
    world = PhysicsWorld(robot)
    try:
        applied = apply_profile(world, profile, rng)
        if truth_override is not None:
            truth_override(world)
            world.reset_control()
        targets = excitation(kind, robot, duration, robot.control.rate_hz, rng, amplitude=amplitude)
        world.set_joint_state(targets[0])
        world.hold()
        log = _rollout(world, targets, robot, rng, pos_noise, vel_noise, effort_noise)
        truth = {"robot": robot.name, "profile": getattr(profile, "name", str(profile)), "seed": int(seed),
                 "excitation": kind, "duration": float(duration), "rate_hz": float(robot.control.rate_hz),
                 "physics_hz": float(robot.control.physics_hz),
                 "sensor_noise": {"position_std": float(pos_noise), "velocity_std": float(vel_noise),
                                  "effort_std": float(effort_noise)},
                 "randomization": _plain(applied), "values": world_truth(world)}
    finally:
        world.close()
    log.meta.update(truth=truth)
    return log, truth


def joint_efforts(world: Any) -> np.ndarray:
    """Motor torque (N·m) each controlled joint applied in the last physics step, ``(n_joints,)``
    (what a real arm reports in ``JointState.effort``; see ``PhysicsWorld.joint_efforts``)."""
    return world.joint_efforts()


def _rollout(world: Any, targets: np.ndarray, robot: RobotDescription, rng: np.random.Generator,
             pos_noise: float, vel_noise: float, effort_noise: float = 0.0) -> HardwareLog:
    steps, n = targets.shape
    dt = 1.0 / robot.control.rate_hz
    q = np.empty((steps + 1, n))
    qd = np.empty((steps + 1, n))
    tau = np.empty((steps + 1, n))
    for k in range(steps):
        q[k], qd[k] = world.joint_state()
        tau[k] = joint_efforts(world)
        world.step(targets[k])
    q[steps], qd[steps] = world.joint_state()
    tau[steps] = joint_efforts(world)
    q += rng.normal(0.0, pos_noise, q.shape) if pos_noise > 0 else 0.0
    qd += rng.normal(0.0, vel_noise, qd.shape) if vel_noise > 0 else 0.0
    tau += rng.normal(0.0, effort_noise, tau.shape) if effort_noise > 0 else 0.0
    t = np.arange(steps + 1) * dt
    return HardwareLog(source="<simulation>", joint_names=robot.joint_names, t0_ns=T0_NS,
                       joint_states=JointStates(t, q, qd, tau), command=Commands(t[:-1], targets.copy()))


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
