"""Record a hardware-like log of an exported policy driving its env (``sim2real record --policy``).

The env named in the policy sidecar is built with the given profile; every command the env sends
to its :class:`~sim2real.sim.world.PhysicsWorld` is captured (so the log holds joint targets in
robot units, exactly like a real controller's command topic) together with the joint state at
each control step. Episodes follow each other; between two episodes the log has a 1 s gap in
its stamps so :func:`~sim2real.sysid.align.align` never joins across a reset.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from sim2real.errors import CheckpointError, Sim2RealError
from sim2real.robots import RobotDescription
from sim2real.sysid.logs import Commands, HardwareLog, JointStates
from sim2real.sysid.record import T0_NS, _plain, world_truth


def record_policy(robot: RobotDescription, profile: Any, seed: int, policy_path: str | Path, duration: float, *,
                  pos_noise: float = 0.0, vel_noise: float = 0.0) -> tuple[HardwareLog, dict[str, Any]]:
    """Run the exported policy (``policy.pt`` + ``policy.yaml``) for ``duration`` seconds of env time.

    :returns: ``(log, truth)``; ``truth["episodes"]`` lists each episode's ``info["randomization"]``
    """
    import gymnasium as gym

    import sim2real.envs  # noqa: F401  (registers env ids)
    from sim2real.ros2.policy import load_policy

    path = Path(policy_path)
    policy, spec = load_policy(path)  # validated sidecar, TorchScript shape-checked; errors name the file
    side_path = spec.file
    if not spec.env_id:
        raise CheckpointError(f"{side_path}: env_id: missing (re-export the policy)")
    if spec.robot != robot.name:
        raise Sim2RealError(f"{side_path}: the policy is for robot {spec.robot!r}, not {robot.name!r}")
    history = spec.history
    env_id = spec.env_id
    try:
        env_spec = gym.spec(env_id)
    except gym.error.Error:
        raise CheckpointError(f"{side_path}: env_id: unknown env {env_id!r}") from None
    env = gym.make(env_id, profile=profile, robot=robot.name) if "robot" in (env_spec.kwargs or {}) \
        else gym.make(env_id, profile=profile)
    world = env.unwrapped.world
    if world.robot.name != robot.name:
        raise Sim2RealError(f"{side_path}: the policy's env {env_id} drives {world.robot.name}, not {robot.name}")
    rng = np.random.default_rng(seed)
    dt = 1.0 / robot.control.rate_hz
    steps = int(round(duration * robot.control.rate_hz))
    sent: list[np.ndarray] = []
    original_step = world.step

    def capture(command: np.ndarray, *a: Any, **k: Any) -> Any:
        sent.append(np.asarray(command, dtype=float).copy())
        return original_step(command, *a, **k)

    world.step = capture  # instance attribute: records exactly what the env commands
    ts, qs, qds, tc, cmds, episodes = [], [], [], [], [], []
    t, k, ep = 0.0, 0, 0
    try:
        while k < steps:
            obs, info = env.reset(seed=seed + ep)
            episodes.append(_plain(info.get("randomization", {})))
            stack: deque[np.ndarray] = deque([obs] * history, maxlen=history)
            done = False
            while not done and k < steps:
                q, qd = world.joint_state()
                ts.append(t)
                qs.append(q)
                qds.append(qd)
                a = policy(np.concatenate(stack))
                n_before = len(sent)
                obs, _, term, trunc, info = env.step(a)
                if len(sent) > n_before:
                    tc.append(t)
                    cmds.append(sent[-1])
                stack.append(obs)
                done = term or trunc
                t += dt
                k += 1
            q, qd = world.joint_state()
            ts.append(t)
            qs.append(q)
            qds.append(qd)
            t += 1.0  # gap between episodes
            ep += 1
        truth = {"robot": robot.name, "profile": getattr(profile, "name", str(profile)), "seed": int(seed),
                 "policy": str(path), "env_id": env_id, "duration": float(duration),
                 "rate_hz": float(robot.control.rate_hz), "episodes": episodes, "values": world_truth(world),
                 "sensor_noise": {"position_std": float(pos_noise), "velocity_std": float(vel_noise)}}
    finally:
        world.step = original_step
        env.close()
    q = np.asarray(qs) + (rng.normal(0, pos_noise, (len(qs), robot.n_joints)) if pos_noise > 0 else 0.0)
    qd = np.asarray(qds) + (rng.normal(0, vel_noise, (len(qds), robot.n_joints)) if vel_noise > 0 else 0.0)
    js = JointStates(np.asarray(ts), q, qd, np.full_like(q, np.nan))
    cmd_kind = {"velocity": "velocity", "torque": "effort"}.get(world.mode, "position")
    log = HardwareLog("<simulation>", robot.joint_names, t0_ns=T0_NS, joint_states=js,
                      command=Commands(np.asarray(tc), np.asarray(cmds), kind=cmd_kind), meta={"truth": truth})
    return log, truth
