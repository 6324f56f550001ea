"""Per-call latency of an exported (TorchScript) policy vs SB3 ``model.predict`` on one observation.

    python benchmarks/inference.py [--policy RUN_DIR] [--calls 2000]

Without ``--policy`` a policy with the shipped arm-reach architecture (configs/train/kuka_reach.yaml)
is trained for a few hundred steps (latency does not depend on how well it is trained).
Both paths include observation normalisation; the SB3 path is what a deployment without
export would run: ``VecNormalize``-style normalisation + ``model.predict(obs, deterministic=True)``.
Target: export >= 5x faster.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _time_calls(fn, calls: int) -> list[float]:
    for _ in range(50):  # warm-up
        fn()
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", help="trained run folder (default: train a small one)")
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads for both paths")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from sim2real.train.config import load_run_config
    from sim2real.train.export import export_policy
    from sim2real.train.policy import load_policy

    tmp = Path(tempfile.mkdtemp(prefix="s2r-inference-"))
    policy_dir = args.policy
    if policy_dir is None:
        from sim2real.train.trainer import train

        cfg = load_run_config("kuka_reach").with_overrides(
            total_timesteps=512, n_envs=1, hyperparameters={"n_steps": 256, "batch_size": 128, "n_epochs": 1},
            eval=load_run_config("kuka_reach").eval.__class__(freq=0, episodes=1), checkpoint_freq=0)
        policy_dir = tmp / "run"
        train(cfg, policy_dir, progress_bar=False, log=lambda s: None)
    pol = load_policy(policy_dir)
    paths = export_policy(pol, tmp / "policy.pt")
    module = torch.jit.load(str(paths["torchscript"]))
    obs_dim = int(pol.model.observation_space.shape[0])
    obs = np.random.default_rng(0).normal(size=obs_dim).astype(np.float32)
    obs_t = torch.as_tensor(obs).unsqueeze(0)

    def sb3() -> np.ndarray:
        return pol.act(obs, deterministic=True)

    def exported() -> torch.Tensor:
        with torch.inference_mode():
            return module(obs_t)

    np.testing.assert_allclose(exported().numpy()[0], sb3(), atol=1e-5)
    t_sb3 = _time_calls(sb3, args.calls)
    t_exp = _time_calls(exported, args.calls)
    rows = [("SB3 model.predict (+ normalisation)", t_sb3), ("exported TorchScript", t_exp)]
    print(f"\npolicy: {policy_dir}  (obs {obs_dim}, {args.calls} calls, batch 1, {args.threads} torch thread(s))\n")
    print(f"| path | median (µs) | mean (µs) | p95 (µs) |")
    print("|---|---|---|---|")
    for name, t in rows:
        print(f"| {name} | {statistics.median(t) * 1e6:.1f} | {statistics.mean(t) * 1e6:.1f} | "
              f"{np.percentile(t, 95) * 1e6:.1f} |")
    ratio = statistics.median(t_sb3) / statistics.median(t_exp)
    print(f"\nspeed-up (median): {ratio:.1f}x  (target >= 5x: {'met' if ratio >= 5 else 'NOT met'})")


if __name__ == "__main__":
    main()
