"""UP-OSI benchmark: OSI estimate error vs history length on held-out dynamics, and reach success of
the universal policy with OSI vs with the true μ vs a plain randomized policy on out-of-range dynamics.

Needs two runs trained on the same profile (``configs/sysid/up_arm_profile.yaml``) and budget:

    sim2real train configs/sysid/up_kuka.yaml --out runs/up_kuka         # universal policy π(o, a_prev, μ)
    sim2real train configs/sysid/plain_kuka.yaml --out runs/plain_kuka   # plain randomized policy π(o)
    python benchmarks/osi.py --up-run runs/up_kuka --plain-run runs/plain_kuka [--histories 1,2,4,8,16]

Part 1 collects OSI training data by running π with the true μ on the training profile (episode
seeds 0..N-1) and, for every history length H, fits an OSI on the last H observation–action pairs,
then iterates (``--iterations``): N more episodes with μ̂ of the current OSI in the loop, refit on
all. Errors are on held-out episodes (seeds ≥ 10000, i.e. unseen parameter draws), windows with
≥ max(H) steps, in normalised μ units ([-1, 1] over the training range), against predicting the
training mean, measured *online* (π sees the OSI's own μ̂, as when deployed) after every
iteration, and once with the true μ shown to π, which is optimistic: π's actions, part of the
history, then depend on the true μ.

Part 2 runs ``--episodes`` paired episodes (same seeds, so the same parameter draws for every
policy) per scenario: the training profile, and the training profile with one parameter moved
out of its range (:data:`SCENARIOS`). Policies: π + true μ (clipped to the training range, as the
UP env does), π + OSI μ̂ (the iterated OSI of ``--osi-history``; from the first step, never the
true μ), π + μ = 0 (the middle of the range: shows how much π uses μ), the plain randomized
policy. Success is ``info["is_success"]`` at the last step (as ``sim2real evaluate``).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# out-of-range scenarios: entry -> new (low, high) of the training profile's uniform distribution
SCENARIOS: dict[str, dict[str, tuple[float, float]]] = {
    "in range (training profile)": {},
    "motor strength x0.12-0.22 (train 0.3-1)": {"motor_strength": (0.12, 0.22)},
    "joint damping x12-20 (train 0.2-8)": {"joint_damping": (12.0, 20.0)},
    "action latency 90-130 ms (train 0-60)": {"action_latency": (0.09, 0.13)},
    "link mass x3-4.5 (train 0.5-2.5)": {"link_mass": (3.0, 4.5)},
}


def scenario_profile(base: dict[str, Any], change: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """``base`` (a profile mapping) with the uniform ranges of ``change`` replaced."""
    out = copy.deepcopy(base)
    for name, (lo, hi) in change.items():
        if name not in out["params"]:
            raise KeyError(f"scenario entry {name!r} not in the training profile ({sorted(out['params'])})")
        out["params"][name].update({"distribution": "uniform", "low": float(lo), "high": float(hi)})
    return out


def main() -> int:
    import torch

    from sim2real._io import read_yaml_file
    from sim2real.profiles.loader import find_profile
    from sim2real.sysid.osi import OSIData, collect, fit_osi, online_error, osi_error
    from sim2real.sysid.report import table
    from sim2real.sysid.upenv import make_up_env
    from sim2real.train.export import build_module
    from sim2real.train.policy import load_policy, run_episodes, summarize
    from sim2real.train.vec import create_env

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--up-run", required=True, help="run dir of the universal policy (configs/sysid/up_kuka.yaml)")
    ap.add_argument("--plain-run", help="run dir of a plain randomized policy on the base env, same profile")
    ap.add_argument("--env", default="sim2real/KukaReach-v0")
    ap.add_argument("--profile", default="configs/sysid/up_arm_profile.yaml",
                    help="training profile of both policies (name or YAML path)")
    ap.add_argument("--histories", default="1,2,4,8,16")
    ap.add_argument("--osi-history", type=int, default=8, help="H of the OSI used in part 2")
    ap.add_argument("--train-episodes", type=int, default=60, help="per OSI iteration")
    ap.add_argument("--test-episodes", type=int, default=20)
    ap.add_argument("--episodes", type=int, default=30, help="episodes per policy and scenario")
    ap.add_argument("--max-steps", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--iterations", type=int, default=3, help="OSI iterations (1: true μ only; later: μ̂ in the loop)")
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t_start, cpu_start = time.time(), time.process_time()
    histories = sorted(int(x) for x in args.histories.split(","))
    if args.osi_history not in histories:
        ap.error(f"--osi-history {args.osi_history} must be one of --histories {histories}")
    h_max = max(histories)

    up = load_policy(args.up_run)
    pi = build_module(up)

    def act(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return pi(torch.as_tensor(obs[None], dtype=torch.float32))[0].numpy()

    base_profile = read_yaml_file(str(find_profile(args.profile)), what="profile")
    env = make_up_env(args.env, profile=base_profile, max_episode_steps=args.max_steps)
    comps = env.get_wrapper_attr("components")
    k = len(comps)
    names = [e if sum(c[0] == e for c in comps) == 1 else f"{e}.{t}" for e, t, _, _ in comps]
    half_span = np.array([(c[3] - c[2]) / 2 for c in comps])
    results: dict[str, Any] = {"mu": [{"entry": e, "target": t, "low": float(lo), "high": float(hi)}
                                      for e, t, lo, hi in comps], "osi_vs_history": [], "scenarios": {}}

    # ---- part 1: OSI error vs history length -------------------------------------------------
    train, st0 = collect(env, act, args.train_episodes, h_max, seed=0)
    test, _ = collect(env, act, args.test_episodes, h_max, seed=10_000)
    results["train_success_true_mu"] = float(np.mean([s["success"] for s in st0]))
    nets = {}
    for h in histories:
        parts = [train.last(h)]
        net = fit_osi(parts[0], epochs=args.epochs)
        # error on held-out draws with the true μ shown to π (π's actions then reveal μ: optimistic)
        e_true = osi_error(net, test.last(h), min_step=h_max)
        online = [online_error(env, act, net, args.test_episodes, seed=10_000, min_step=h_max)]
        for it in range(1, args.iterations):  # later iterations: data collected with μ̂ in the loop
            more, _ = collect(env, act, args.train_episodes, h, osi=net, seed=20_000 + 1_000 * it)
            parts.append(more)
            net = fit_osi(OSIData.concat(parts), epochs=args.epochs)
            online.append(online_error(env, act, net, args.test_episodes, seed=10_000, min_step=h_max))
        full = test.select(test.steps() >= h_max)
        base = float(np.mean((full.Y - train.Y.mean(0)) ** 2))
        results["osi_vs_history"].append({"history": h, "mse_true_mu_in_loop": e_true["mse"],
                                          "mse_online": [o["mse"] for o in online], "mean_baseline_mse": base,
                                          "rmse_per_dim": online[-1]["rmse_per_dim"],
                                          "success_online": online[-1]["success"]})
        nets[h] = net
        print(f"[H={h}] done ({time.time() - t_start:.0f} s)", file=sys.stderr, flush=True)
    print(table([(r["history"], r["mse_true_mu_in_loop"], *r["mse_online"], r["mean_baseline_mse"],
                  *r["rmse_per_dim"], r["success_online"]) for r in results["osi_vs_history"]],
                ("H", "MSE true-mu loop", *[f"MSE online it{i + 1}" for i in range(args.iterations)], "mean MSE",
                 *[f"RMSE {n}" for n in names], "success")))
    best = next(r for r in results["osi_vs_history"] if r["history"] == args.osi_history)
    print(f"OSI RMSE in physical units (H={args.osi_history}, iteration {args.iterations}, online): "
          + ", ".join(f"{n} {v:.3g}" for n, v in zip(names, np.asarray(best["rmse_per_dim"]) * half_span)))

    # ---- part 2: success per scenario --------------------------------------------------------
    net = nets[args.osi_history]
    plain_act = None
    if args.plain_run:
        pm = build_module(load_policy(args.plain_run))

        def plain_act(obs: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return pm(torch.as_tensor(obs[None], dtype=torch.float32))[0].numpy()

    def act_mid(obs: np.ndarray) -> np.ndarray:
        return act(np.concatenate([obs[:-k], np.zeros(k, dtype=np.float32)]))

    seed = 30_000
    for name, change in SCENARIOS.items():
        prof = scenario_profile(base_profile, change)
        env.get_wrapper_attr("set_profile")(prof)
        row: dict[str, Any] = {}
        for label, pol, osi in (("universal + true mu", act, None), ("universal + OSI", act, net),
                                ("universal + mu=0", act_mid, None)):
            _, stats = collect(env, pol, args.episodes, args.osi_history, osi=osi, seed=seed)
            row[label] = {"success": float(np.mean([s["success"] for s in stats])),
                          "return": float(np.mean([s["return"] for s in stats]))}
        if plain_act is not None:
            penv = create_env(args.env, {"max_episode_steps": args.max_steps}, None, prof)
            s = summarize(run_episodes(plain_act, penv, args.episodes, seed=seed))
            row["plain randomized"] = {"success": s["success_rate"], "return": s["mean_return"]}
            penv.close()
        results["scenarios"][name] = row
        print(f"[{name}] done ({time.time() - t_start:.0f} s)", file=sys.stderr, flush=True)
    labels = list(next(iter(results["scenarios"].values())))
    print(table([(n, *[f"{r[label]['success']:.2f} ({r[label]['return']:.0f})" for label in labels])
                 for n, r in results["scenarios"].items()], ("scenario: success (mean return)", *labels)))
    results["wall_s"] = time.time() - t_start
    results["cpu_s"] = time.process_time() - cpu_start
    results["load_avg"] = os.getloadavg()
    results["settings"] = {k2: v for k2, v in vars(args).items()}
    print(f"wall {results['wall_s']:.0f} s, CPU {results['cpu_s']:.0f} s, load average {results['load_avg'][0]:.2f}")
    env.close()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
