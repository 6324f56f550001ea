"""Reach policies on the MuJoCo arm of ``sim2real sim2sim``, in process (no ROS 2, no real time).

For each hardware (a hardware file, or a blind draw of ``configs/hardware/arm_draw.yaml`` by
seed) and each policy (a ``sim2real train`` run folder), ``--goals`` episodes: the MuJoCo arm
(:class:`sim2real.sim2sim.arm.ArmHardware`, its own masses, friction, armature, delay, sensor noise
and PD servo) starts at rest at the home pose; every 50 ms the policy sees the observation the
PyBullet env builds from the arm's *measured* joint state (the env is used for the goal and the
forward kinematics only, its physics is not stepped) and its joint-position delta is sent as the
arm's position command; after 100 control steps the end effector's distance to the goal decides
success (< 5 cm, as the env). Goals are the env's, drawn with seeds 1000 + k, the same for every
policy and hardware.

    python benchmarks/reach_on_mujoco.py --policy pd=runs/kuka_reach --policy motor=runs/old \\
        [--hardware configs/hardware/kuka_iiwa.yaml] [--draws 0,1,2] [--goals 20]

Prints one row per (hardware, policy): successes, median and 90th-percentile final distance.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim2real.envs.arm_reach import ArmReachEnv  # noqa: E402
from sim2real.robots import load_robot  # noqa: E402
from sim2real.sim2sim.arm import ArmHardware  # noqa: E402
from sim2real.sim2sim.hardware import draw_hardware, load_hardware  # noqa: E402
from sim2real.train.policy import load_policy  # noqa: E402

DRAW = ROOT / "configs" / "hardware" / "arm_draw.yaml"
STEPS = 100  # the env's episode: 5 s at 20 Hz


def reach(policy: object, arm: ArmHardware, env: ArmReachEnv, goals: int) -> np.ndarray:
    """Final end-effector distances (goals,) m of ``policy`` driving ``arm`` to the env's goals."""
    w = env.world
    n = env.robot.n_joints
    per_command = int(round(arm.hardware.physics_hz / env.robot.control.rate_hz))
    out = np.empty(goals)
    for g in range(goals):
        env.reset(seed=1000 + g)
        arm.reset(w.home)
        for _ in range(STEPS):
            s = arm.state()
            w.set_joint_state(s.position, s.velocity)  # kinematics only: the observation's FK
            obs = env._observe()
            a = np.clip(policy.act(obs.astype(np.float32)), -1.0, 1.0)  # type: ignore[attr-defined]
            arm.command(np.minimum(np.maximum(s.position + a * env.action_scale, w.lower), w.upper))
            arm.step(per_command)
        s = arm.state()
        w.set_joint_state(s.position, s.velocity)
        out[g] = float(np.linalg.norm(env._observe()[2 * n:2 * n + 3] - env.target))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", action="append", required=True, metavar="NAME=RUN", help="a training run folder")
    ap.add_argument("--robot", default="kuka_iiwa")
    ap.add_argument("--hardware", action="append", default=[], help="hardware file (repeatable)")
    ap.add_argument("--draws", default="", help="comma-separated seeds of blind draws of arm_draw.yaml")
    ap.add_argument("--goals", type=int, default=20)
    args = ap.parse_args()
    robot = load_robot(args.robot)
    hardware = [(h, load_hardware(h, robot)) for h in args.hardware]
    hardware += [(f"draw seed {s}", draw_hardware(DRAW, robot, np.random.default_rng(int(s))))
                 for s in args.draws.split(",") if s.strip()]
    if not hardware:
        hardware = [(f"configs/hardware/{robot.name}.yaml", load_hardware(ROOT / "configs" / "hardware" / f"{robot.name}.yaml", robot))]
    policies = [(spec.split("=", 1)[0], load_policy(spec.split("=", 1)[1])) for spec in args.policy]
    env = ArmReachEnv(robot, start_noise=0.0)
    print(f"{'hardware':40s} {'policy':12s} {'success':>8s} {'median cm':>9s} {'p90 cm':>7s}")
    try:
        for label, hw in hardware:
            for name, policy in policies:
                # a fresh arm per policy: the same sensor-noise sequence (its default seed) for every policy
                d = reach(policy, ArmHardware(robot, hw), env, args.goals)
                print(f"{label:40s} {name:12s} {int((d < 0.05).sum()):>4d}/{args.goals:<3d} "
                      f"{np.median(d) * 100:9.1f} {np.percentile(d, 90) * 100:7.1f}", flush=True)
    finally:
        env.close()


if __name__ == "__main__":
    main()
