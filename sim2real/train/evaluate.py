"""``sim2real evaluate``: policies × conditions → results.csv/json, PNG plots, report.md."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Sequence

from sim2real.errors import ConfigError
from sim2real.train.sweep import Job, SweepAxis, build_conditions, run_jobs
from sim2real.train.sweep_report import write_results


def evaluate_policies(policies: Sequence[tuple[str | None, str]], env_id: str | None = None, profile: Any = None,
                      episodes: int = 20, sweeps: Sequence[str] = (), out: Path = Path("eval"), workers: int | None = 1,
                      ray_address: str | None = None, seed: int = 0, include_nominal: bool = True) -> dict[str, Path]:
    """Evaluate ``(label, path)`` policies; returns the written files.

    The env (id, kwargs, robot) defaults to the first policy's training env from its ``run.yaml``.
    ``workers=None``: one local process per CPU core (at most one per cell).
    """
    from sim2real.train.policy import load_policy

    loaded = [(label, path, load_policy(path)) for label, path in policies]
    run = loaded[0][2].run
    env_id = env_id or loaded[0][2].env_id
    if env_id is None:
        raise ConfigError("--env: needed (the policy has no run.yaml naming its env)")
    env_cfg = run.get("env") or {}
    env_kwargs = dict(env_cfg.get("kwargs") or {}) if env_cfg.get("id") == env_id else {}
    robot = run.get("robot") if env_cfg.get("id") == env_id else None
    axes = [SweepAxis.parse(s) for s in sweeps]
    from sim2real.train.vec import ensure_registered

    ensure_registered(env_id)
    from sim2real.train.policy import check_policy_fits_env
    from sim2real.train.vec import create_env

    # with the evaluation profile: a UP env's observation has one μ entry per parameter the profile randomizes
    probe = create_env(env_id, env_kwargs, robot, profile)
    try:
        for _, _, pol in loaded:
            check_policy_fits_env(pol, probe, env_id)
    finally:
        probe.close()
    for _, path, pol in loaded:
        if pol.env_id is not None and pol.env_id != env_id:
            print(f"note: {path} was trained on {pol.env_id}, evaluated on {env_id}", file=sys.stderr)
    conds = build_conditions(profile, axes, robot=robot, include_nominal=include_nominal)
    labels = []
    for label, path, pol in loaded:
        name = label or pol.name
        while name in labels:
            name += "'"
        labels.append(name)
    # the model.zip each policy resolved to (a damaged final policy was skipped once, here)
    jobs = [Job(lab, str(pol.model_path), c, env_id, env_kwargs, robot, episodes, seed)
            for lab, (_, _, pol) in zip(labels, loaded) for c in conds]

    def progress(done: int, total: int) -> None:
        print(f"\r{done}/{total} cells", end="" if done < total else "\n", file=sys.stderr, flush=True)

    if workers is None:
        workers = min(os.cpu_count() or 1, len(jobs))
    summaries = run_jobs(jobs, workers=workers, ray_address=ray_address, progress=progress)
    results = [{"policy": j.policy, "condition": j.condition.label, "values": j.condition.values, "summary": s}
               for j, s in zip(jobs, summaries)]
    meta = {"env_id": env_id, "episodes": episodes, "profile": profile, "policies": dict(zip(labels, [p for _, p in policies])),
            "sweeps": [{"param": a.param, "values": list(a.values)} for a in axes], "seed": seed}
    return write_results(out, results, axes, meta)
