"""Throughput of the sim2real envs against a bare PyBullet loop, and the cost of a randomized reset.

For each registered env id (ids that are not registered are skipped), in the same run:

* ``env``: control steps/s of the env with its randomization profile, random actions;
* ``bare``: steps/s of a bare PyBullet loop stepping the same robot (same model, floor,
  physics rate and substeps) with the same control calls per step (one
  ``setJointMotorControlArray`` per control step, or per physics step for torques, then
  ``getJointStates`` and, for arms, ``getLinkState`` of the end effector);
* ``ratio`` = env / bare (target >= 0.9);
* the env's own cost per step outside ``PhysicsWorld.step`` (observation, reward, noise,
  info; for envs with a world), i.e. what the env adds on top of physics and control.

Then the mean cost of one ``reset()`` with full dynamics randomization
(``arm_dynamics_full``), with and without its ``com_offset`` entry (which rebuilds the body).

    python benchmarks/throughput.py [--steps 3000] [--resets 200]
"""

from __future__ import annotations

import argparse
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
    "sim2real/QuadrotorHoverRates-v0": "quadrotor",
}
EXTRA = [("sim2real/KukaReach-v0", "arm_dynamics_full"), ("sim2real/PandaReach-v0", "arm_dynamics_full")]


class EnvLoop:
    """Steps a registered env with random actions; resets are excluded from the timing."""

    def __init__(self, env_id: str, profile: str) -> None:
        self.env = gym.make(env_id, profile=profile)
        self.env.action_space.seed(0)
        self.actions = [self.env.action_space.sample() for _ in range(256)]
        self.env.reset(seed=0)
        self.i = 0
        self.in_world = 0.0  # seconds inside PhysicsWorld.step (physics + control calls)
        world = getattr(self.env.unwrapped, "world", None)
        if world is not None and hasattr(world, "step"):
            inner = world.step

            def timed(*args: Any, **kwargs: Any) -> Any:
                t = time.perf_counter()
                out = inner(*args, **kwargs)
                self.in_world += time.perf_counter() - t
                return out
            world.step = timed

    def run(self, steps: int) -> float:
        """Seconds spent in ``steps`` env steps."""
        env, spent = self.env, 0.0
        for _ in range(steps):
            t = time.perf_counter()
            _, _, term, trunc, _ = env.step(self.actions[self.i % 256])
            spent += time.perf_counter() - t
            self.i += 1
            if term or trunc:
                env.reset()
        return spent

    def close(self) -> None:
        self.env.close()


class BareLoop:
    """Bare PyBullet loop for the robot, control mode and action mapping of ``env`` (a SimEnv).

    The robot is loaded by a second ``PhysicsWorld`` so it has the same model and nominal
    dynamics (robot.yaml ``nominal``) as the env; stepping then uses raw PyBullet calls only.
    Legged robots are reset when the torso falls below the env's healthy height (the env
    terminates there), so both loops spend their time in the same regime.
    """

    def __init__(self, env: Any) -> None:
        from sim2real.sim.world import PhysicsWorld

        robot = env.robot
        self.world = world = PhysicsWorld(robot)
        world.mode = env.world.mode
        world.reset_control()
        self.cid = cid = world.client
        self.body = world.robot_id
        self.joints = [int(j) for j in world.joint_indices]
        self.mode = world.mode
        self.ee = world.ee_index if robot.kind == "arm" else None
        self.torso = world.link_index.get("torso") if robot.kind == "legged" else None
        self.healthy_z = float(robot.model_params.get("healthy_z", 0.0))
        n = len(self.joints)
        self.forces = world.max_effort.tolist()
        self.kp, self.kd = [robot.control.position_gain] * n, [robot.control.velocity_gain] * n
        spec = env.action_spec()
        self.scale, self.low, self.high = np.array(spec["scale"]), np.array(spec["low"]), np.array(spec["high"])
        self.delta = spec["mode"] == "joint_position_delta"
        self.acts = np.random.default_rng(0).uniform(-1, 1, size=(256, n))
        self.i = 0
        self._reset()

    def _reset(self) -> None:
        cid = self.cid
        for j in range(p.getNumJoints(self.body, physicsClientId=cid)):
            p.resetJointState(self.body, j, 0.0, physicsClientId=cid)
        for j, q0 in zip(self.joints, self.world.home):
            p.resetJointState(self.body, j, float(q0), physicsClientId=cid)
        self.q = np.array(self.world.home, dtype=float)

    def run(self, steps: int) -> float:
        cid, body, joints, mode = self.cid, self.body, self.joints, self.mode
        spent = 0.0
        for _ in range(steps):
            t = time.perf_counter()
            cmd = self.acts[self.i % 256] * self.scale
            if mode == "position":
                target = np.clip(self.q + cmd, self.low, self.high) if self.delta else cmd
                p.setJointMotorControlArray(body, joints, p.POSITION_CONTROL, targetPositions=target.tolist(),
                                            forces=self.forces, positionGains=self.kp, velocityGains=self.kd,
                                            physicsClientId=cid)
            elif mode == "velocity":
                p.setJointMotorControlArray(body, joints, p.VELOCITY_CONTROL, targetVelocities=cmd.tolist(),
                                            forces=self.forces, velocityGains=self.kd, physicsClientId=cid)
            for _ in range(self.world.substeps):
                if mode == "torque":
                    p.setJointMotorControlArray(body, joints, p.TORQUE_CONTROL, forces=cmd.tolist(), physicsClientId=cid)
                p.stepSimulation(physicsClientId=cid)
            states = p.getJointStates(body, joints, physicsClientId=cid)
            self.q = np.array([s[0] for s in states])
            if self.ee is not None:
                p.getLinkState(body, self.ee, computeForwardKinematics=1, physicsClientId=cid)
            fallen = False
            if self.torso is not None:
                z = p.getLinkState(body, self.torso, computeLinkVelocity=1, physicsClientId=cid)[0][2]
                fallen = z < self.healthy_z
            spent += time.perf_counter() - t
            self.i += 1
            if fallen or self.i % 100 == 0:  # episode boundary as in the envs
                self._reset()
        return spent

    def close(self) -> None:
        self.world.close()


def compare(env_id: str, profile: str, steps: int, block: int = 100) -> tuple[float, float, float]:
    """Steps/s of the env and of its bare loop, measured in alternating blocks (fair on a loaded machine)."""
    from sim2real.envs.base import SimEnv

    envloop = EnvLoop(env_id, profile)
    base = envloop.env.unwrapped
    bare = BareLoop(base) if isinstance(base, SimEnv) and base.world.mode in ("position", "velocity", "torque") else None
    t_env = t_bare = 0.0
    envloop.run(20)
    if bare:
        bare.run(20)
    envloop.in_world = 0.0
    done = 0
    while done < steps:
        t_env += envloop.run(block)
        if bare:
            t_bare += bare.run(block)
        done += block
    envloop.close()
    if bare:
        bare.close()
    overhead_us = (t_env - envloop.in_world) / done * 1e6
    return done / t_env, (done / t_bare if bare else float("nan")), overhead_us


def reset_cost(env_id: str, profile: Any, resets: int) -> float:
    env = gym.make(env_id, profile=profile)
    env.reset(seed=0)
    t = time.perf_counter()
    for _ in range(resets):
        env.reset()
    cost = (time.perf_counter() - t) / resets
    env.close()
    return cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--resets", type=int, default=200)
    parser.add_argument("--only", default="", help="only env ids containing this text")
    args = parser.parse_args()
    from sim2real.profiles import load_profile

    rows = []
    for env_id, profile in [*PROFILES.items(), *EXTRA]:
        if env_id not in gym.registry or args.only not in env_id:
            continue
        try:
            rate, bare, overhead = compare(env_id, profile, args.steps)
        except Exception as exc:  # noqa: BLE001 - report and go on
            rows.append((env_id, profile, f"error: {exc}", "", "", ""))
            continue
        ok = bare == bare
        rows.append((env_id, profile, f"{rate:8.0f}", f"{bare:8.0f}" if ok else "     n/a",
                     f"{rate / bare:5.2f}" if ok else "  n/a", f"{overhead:8.0f}"))
    print(f"{'env':32s} {'profile':18s} {'env/s':>8s} {'bare/s':>8s} {'ratio':>5s} {'env µs/step outside world.step':>31s}")
    for r in rows:
        print(f"{r[0]:32s} {r[1]:18s} {r[2]:>8s} {r[3]:>8s} {r[4]:>5s} {r[5]:>31s}")

    print()
    print(f"{'reset cost (arm_dynamics_full)':44s} {'ms/reset':>9s}")
    for env_id in ("sim2real/KukaReach-v0", "sim2real/PandaReach-v0"):
        full = load_profile("arm_dynamics_full")
        no_com = full.replace_entry("com_offset", None)
        for label, prof in (("full", full), ("full without com_offset", no_com), ("nominal", "nominal")):
            ms = reset_cost(env_id, prof, args.resets) * 1e3
            print(f"{env_id + ' ' + label:44s} {ms:9.2f}")


if __name__ == "__main__":
    main()
