"""UP-OSI benchmark: OSI estimate error vs history length on held-out dynamics, and reach success of
the universal policy with OSI vs with the true μ vs a plain randomized policy on out-of-range dynamics.

Needs two trained runs (``sim2real train``):

    sim2real train configs/sysid/up_kuka.yaml --out runs/up_kuka                 # universal policy π(o, μ)
    sim2real train configs/train/kuka_reach_peng2018.yaml --out runs/peng_kuka   # plain randomized policy
    python benchmarks/osi.py --up-run runs/up_kuka --plain-run runs/peng_kuka [--histories 2,4,8,16]

Part 1 collects OSI training data with π and the true μ on the training profile (seeds 0..N-1)
and evaluates on held-out episodes (seeds ≥ 10000, i.e. unseen parameter draws): MSE of μ̂
(normalised units) vs predicting the training mean. Part 2 runs ``--episodes`` episodes on the
out-of-range profile (``--ood``: masses ×4–6, damping ×20–40, gains ×0.15–0.25) with
(a) π + true μ (clipped to the training range), (b) π + OSI μ̂ (OSI of the largest history,
iterated once with μ̂ in the loop), (c) the plain randomized policy.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

OOD = {"params": {
    "link_mass": {"distribution": "uniform", "low": 4.0, "high": 6.0, "operation": "scale", "recompute_inertia": True},
    "joint_damping": {"distribution": "uniform", "low": 20.0, "high": 40.0, "operation": "scale"},
    "position_gain": {"distribution": "uniform", "low": 0.15, "high": 0.25, "operation": "scale"},
}}


def main() -> int:
    import torch

    from sim2real.sysid.osi import OSIData, collect, fit_osi, osi_error
    from sim2real.sysid.report import table
    from sim2real.sysid.upenv import make_up_env
    from sim2real.train.export import build_module
    from sim2real.train.policy import load_policy
    from sim2real.train.vec import create_env

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--up-run", required=True, help="run dir of the universal policy (configs/sysid/up_kuka.yaml)")
    ap.add_argument("--plain-run", help="run dir of a plain randomized policy on the base env")
    ap.add_argument("--env", default="sim2real/KukaReach-v0")
    ap.add_argument("--profile", default="peng2018_arm", help="training profile of the universal policy")
    ap.add_argument("--histories", default="2,4,8,16")
    ap.add_argument("--train-episodes", type=int, default=60)
    ap.add_argument("--test-episodes", type=int, default=20)
    ap.add_argument("--episodes", type=int, default=30, help="episodes per policy on the out-of-range profile")
    ap.add_argument("--max-steps", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(1)

    up = load_policy(args.up_run)
    pi = build_module(up)

    def act(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return pi(torch.as_tensor(obs[None], dtype=torch.float32))[0].numpy()

    env = make_up_env(args.env, profile=args.profile, max_episode_steps=args.max_steps)
    results: dict = {"osi_vs_history": [], "ood_success": {}}
    nets = {}
    for h in [int(x) for x in args.histories.split(",")]:
        train, _ = collect(env, act, args.train_episodes, h, seed=0)
        test, _ = collect(env, act, args.test_episodes, h, seed=10_000)
        net = fit_osi(train, epochs=args.epochs)
        err = osi_error(net, test)
        base = float(np.mean((test.Y - train.Y.mean(0)) ** 2))
        results["osi_vs_history"].append({"history": h, "mse": err["mse"], "mae": err["mae"], "mean_baseline_mse": base})
        nets[h] = (net, train)
    print(table([(r["history"], r["mse"], r["mae"], r["mean_baseline_mse"]) for r in results["osi_vs_history"]],
                ("history H", "OSI MSE", "OSI MAE", "predict-mean MSE")))

    h_best = max(nets)
    net, train = nets[h_best]
    more, _ = collect(env, act, args.train_episodes, h_best, osi=net, seed=20_000)  # μ̂ in the loop
    net = fit_osi(OSIData.concat([train, more]), epochs=args.epochs)
    env.get_wrapper_attr("set_profile")(OOD)
    _, s_true = collect(env, act, args.episodes, h_best, seed=30_000)
    _, s_osi = collect(env, act, args.episodes, h_best, osi=net, seed=30_000)
    results["ood_success"]["universal + true mu"] = float(np.mean([s["success"] for s in s_true]))
    results["ood_success"]["universal + OSI"] = float(np.mean([s["success"] for s in s_osi]))
    if args.plain_run:
        plain = load_policy(args.plain_run)
        pm = build_module(plain)
        penv = create_env(args.env, {"max_episode_steps": args.max_steps}, None, OOD)
        wins = []
        for ep in range(args.episodes):
            obs, _ = penv.reset(seed=30_000 + ep)
            done, success = False, False
            while not done:
                with torch.no_grad():
                    a = pm(torch.as_tensor(obs[None], dtype=torch.float32))[0].numpy()
                obs, _, term, trunc, info = penv.step(a)
                success = success or bool(info.get("is_success", False))
                done = term or trunc
            wins.append(float(success))
        results["ood_success"]["plain randomized"] = float(np.mean(wins))
    print(table(list(results["ood_success"].items()), ("policy (out-of-range dynamics)", "success")))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
