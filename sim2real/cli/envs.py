"""``sim2real envs``: list the registered envs and robots, or run one with random actions.

    sim2real envs                       # env ids (robot, action mode, sizes) and robots
    sim2real envs run sim2real/KukaReach-v0 --profile peng2018_arm --seed 0 --steps 200
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from sim2real.cli import _args


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("envs", help="list envs and robots, or run an env with random actions",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="envs_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=_list)
    lst = sub.add_parser("list", help="list env ids and robots (default)")
    lst.set_defaults(func=_list)
    run = sub.add_parser("run", help="build an env, run random actions, print what was sampled")
    run.add_argument("env_id", help="e.g. sim2real/KukaReach-v0")
    run.add_argument("--profile", default="nominal", help="shipped profile name or path (default: nominal)")
    run.add_argument("--seed", type=_args.seed, default=0)
    run.add_argument("--steps", type=int, default=200, help="control steps to run (default 200)")
    run.add_argument("--episodes-info", action="store_true", help="print info['randomization'] of every episode")
    run.set_defaults(func=_run)


def _env_ids() -> list[str]:
    import gymnasium as gym

    import sim2real.envs  # noqa: F401  (registers)

    return sorted(k for k in gym.registry if k.startswith("sim2real/"))


def _list(args: argparse.Namespace) -> int:
    import gymnasium as gym

    from sim2real.robots import list_robots, load_robot

    from sim2real.errors import Sim2RealError

    rows = []
    for env_id in _env_ids():
        try:
            env = gym.make(env_id).unwrapped
        except Sim2RealError as exc:
            # e.g. an env that needs a randomizing profile to be built; list it, say why
            rows.append((env_id, "-", f"(needs arguments: {exc})"[:60], "-", "-"))
            continue
        try:
            spec = env.action_spec()
            obs = env.observation_space
            obs_size = obs.shape[0] if obs.shape else "dict"
            rows.append((env_id, env.robot.name, spec["mode"], str(obs_size), str(env.action_space.shape[0])))
        finally:
            env.close()
    head = ("id", "robot", "action mode", "obs", "act")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]
    print("Envs:")
    for r in [head, *rows]:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)))
    print("Robots:")
    for name in list_robots():
        r = load_robot(name)
        print(f"  {name:14s} {r.kind:9s} {r.n_joints} joints  {r.description}")
    return 0


def _run(args: argparse.Namespace) -> int:
    import gymnasium as gym
    import numpy as np

    from sim2real.errors import EnvError

    ids = _env_ids()
    if args.env_id not in ids:
        raise EnvError(f"unknown env id {args.env_id!r}; registered: {', '.join(ids)}")
    if args.steps < 1:
        raise EnvError(f"--steps must be >= 1, got {args.steps}")
    env = gym.make(args.env_id, profile=args.profile)
    try:
        env.action_space.seed(args.seed)
        obs, info = env.reset(seed=args.seed)
        base = env.unwrapped
        print(f"{args.env_id}: robot {base.robot.name}, profile {base.profile.name} "
              f"({len(base.profile.entries)} entries), obs {base.observation_layout()}, "
              f"action {base.action_spec()['mode']} x{env.action_space.shape[0]}")
        print("episode 1 randomization:")
        print(_fmt(info["randomization"]))
        episodes, ret, returns, successes = 1, 0.0, [], []
        for _ in range(args.steps):
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            ret += reward
            if terminated or truncated:
                returns.append(ret)
                successes.append(bool(info.get("is_success", False)))
                ret = 0.0
                obs, info = env.reset()
                episodes += 1
                if args.episodes_info:
                    print(f"episode {episodes} randomization:")
                    print(_fmt(info["randomization"]))
        print(f"{args.steps} steps, {episodes} episode(s) started, {len(returns)} finished"
              + (f", mean return {np.mean(returns):.3f}" if returns else "")
              + (f", success rate {np.mean(successes):.2f}" if returns and "is_success" in info else ""))
    finally:
        env.close()
    return 0


def _fmt(randomization: dict[str, Any]) -> str:
    if not randomization:
        return "  (nothing randomized)"

    def short(v: Any) -> Any:
        if isinstance(v, float):
            return float(f"{v:.4g}")  # 4 significant digits: tiny values (kf ~3e-10) stay visible
        if isinstance(v, (list, tuple)):
            return [short(x) for x in v[:6]] + (["..."] if len(v) > 6 else [])
        if isinstance(v, dict):
            return {k: short(x) for k, x in v.items()}
        return v
    return "\n".join(f"  {name}: {json.dumps(short(vals))}" for name, vals in randomization.items())
