"""Actuator-net benchmark: how much of a drive's torque a fitted net explains that a linear PD does not,
on the MuJoCo arm (``sim2real.sim2sim``), and what one evaluation costs.

    python benchmarks/actuator_net.py [--robot kuka_iiwa] [--hardware configs/hardware/kuka_iiwa.yaml]
        [--gravity-ff off] [--duration 60] [--seed 1] [--epochs 60] [--out bench_actuator_net.json]

The arm runs in-process (:class:`~sim2real.sim2sim.arm.ArmHardware`, no real-time pacing) on 20 Hz
position commands: random goals within ±0.4 rad of the start pose every 0.4–1.5 s, reached by a step
or by a 0.03 rad-per-period ramp. Joint states (with measurement noise) are logged at the hardware's
``joint_states_hz``. The fits are ``sim2real actuator fit`` on that log (last 20 % held out) with:
one net per joint and H = 3 (the default), one net per joint and H = 6 (a window of one command
period), one shared net and H = 3. ``--gravity-ff off`` turns the hardware's nominal-model gravity
feed-forward off, so the logged effort is the servo's own output (the net sees no pose, so a
pose-dependent feed-forward is outside what it can learn). Prints per joint the validation RMSE of
the PD baseline and of each net, then the cost of one ``ActuatorNetModel.torque`` call (numpy) and
of the same net's torch forward pass; writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import timeit
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FITS = {"per_joint_h3": dict(per_joint=True, history=3), "per_joint_h6": dict(per_joint=True, history=6),
        "shared_h3": dict(per_joint=False, history=3)}


def record(robot, hardware, duration: float, seed: int):
    """A :class:`HardwareLog` of the MuJoCo arm on 20 Hz steps and ramps."""
    from sim2real.sim2sim.arm import ArmHardware
    from sim2real.sysid.logs import Commands, HardwareLog, JointStates

    arm = ArmHardware(robot, hardware, rng=np.random.default_rng(seed))
    arm.reset()
    rng = np.random.default_rng(seed + 1)
    start = np.array(hardware.start_pose)
    per_cmd = int(round(hardware.physics_hz / 20))
    per_state = int(round(hardware.physics_hz / hardware.joint_states_hz))
    t, q, qd, tau, ct, cv = [], [], [], [], [], []
    target, goal, mode, next_goal = start.copy(), start.copy(), 0, 0
    for k in range(int(duration * 20)):
        if k >= next_goal:
            goal, mode = start + rng.uniform(-0.4, 0.4, start.size), int(rng.integers(2))
            next_goal = k + int(rng.integers(8, 30))
        target = goal if mode == 0 else target + np.clip(goal - target, -0.03, 0.03)
        arm.command(target, t=arm.time)
        ct.append(arm.time)
        cv.append(target.copy())
        for _ in range(per_cmd // per_state):
            arm.step(per_state)
            s = arm.state()
            t.append(s.time)
            q.append(s.position.copy())
            qd.append(s.velocity.copy())
            tau.append(s.effort.copy())
    js = JointStates(np.array(t), np.array(q), np.array(qd), np.array(tau))
    return HardwareLog("mujoco-arm", robot.joint_names, joint_states=js,
                       command=Commands(np.array(ct), np.array(cv), kind="position"))


def eval_cost(model, net) -> dict[str, float]:
    """Microseconds per call (best of 5 × 2000) of the numpy evaluator and of the torch forward pass."""
    import torch

    n, h = model.n_joints, model.history
    e = np.zeros((n, h))
    numpy_us = min(timeit.repeat(lambda: model.torque(e, e), number=2000, repeat=5)) / 2000 * 1e6
    x = torch.zeros(net.weights[0].shape[0], 1 if model.per_joint else n, 2 * h)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            torch_us = min(timeit.repeat(lambda: net(x), number=2000, repeat=5)) / 2000 * 1e6
    finally:
        torch.set_num_threads(threads)
    return {"numpy_us": numpy_us, "torch_us": torch_us}


def main(argv: list[str] | None = None) -> int:
    from sim2real._io import atomic_write_text
    from sim2real.robots import load_robot
    from sim2real.sim2sim.hardware import load_hardware
    from sim2real.sysid.actuator_fit import ActuatorFitConfig, fit_actuator_net
    from sim2real.sysid.report import table

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--robot", default="kuka_iiwa")
    ap.add_argument("--hardware", default=None, help="hardware YAML (default configs/hardware/<robot>.yaml)")
    ap.add_argument("--gravity-ff", choices=("on", "off", "file"), default="off")
    ap.add_argument("--duration", type=float, default=60.0, help="log length, s")
    ap.add_argument("--seed", type=int, default=1, help="commands and measurement noise")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--out", default="bench_actuator_net.json")
    args = ap.parse_args(argv)

    root = Path(__file__).resolve().parents[1]
    robot = load_robot(args.robot)
    hw = load_hardware(args.hardware or root / "configs" / "hardware" / f"{args.robot}.yaml", robot)
    if args.gravity_ff != "file":
        hw = dataclasses.replace(hw, gravity_ff=args.gravity_ff == "on")
    log = record(robot, hw, args.duration, args.seed)
    results, costs = {}, {}
    for name, opts in FITS.items():
        res = fit_actuator_net(log, ActuatorFitConfig(epochs=args.epochs, seed=0, **opts), robot=robot.name)
        results[name] = {r.joint: dataclasses.asdict(r) for r in res.joints}
        costs[name] = eval_cost(res.model, res.net)
    rows = []
    for j in robot.joint_names:
        first = results["per_joint_h3"][j]
        rows.append((j, first["tau_rms"], first["pd_rmse"], *[results[f][j]["net_rmse"] for f in FITS],
                     *[first["pd_rmse"] / results[f][j]["net_rmse"] for f in FITS]))
    print(table(rows, ("joint", "tau_rms", "pd_rmse", *[f"net_{f}" for f in FITS], *[f"pd/{f}" for f in FITS])))
    print(table([(f, c["numpy_us"], c["torch_us"]) for f, c in costs.items()],
                ("net", "numpy_us_per_call", "torch_us_per_call")))
    atomic_write_text(args.out, json.dumps({"args": vars(args), "fits": results, "cost_us": costs,
                                            "hardware": hw.to_dict()}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
