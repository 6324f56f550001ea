"""Robustness evaluation: policies × conditions (nominal, a profile, a 1-/2-parameter grid).

A *condition* is a profile (as a YAML-able dict, so it can travel to worker processes
and Ray tasks). A sweep ``PARAM=LOW:HIGH:STEPS`` sets PARAM to each of ``STEPS``
evenly spaced values, applied on top of the base profile (``--profile`` or nominal):

- an entry name of the base profile: that entry pinned to the value (constant draw);
- ``latency``: action latency in seconds (``action_latency``, ``unit: seconds``);
- a parameter kind (``link_mass``, ``joint_damping``, ``observation_noise``, ...):
  a constant applied to all targets with the kind's default operation (a scale factor
  for physical quantities, an absolute level for noise/latency kinds).

Cells run in local worker processes (``concurrent.futures``) or as Ray tasks; a Ray
task receives the policy files as bytes, so workers need no shared file system.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from sim2real.errors import ConfigError

LATENCY = "latency"
POLICY_FILES = ("model.zip", "vecnormalize.pkl", "run.yaml")


@dataclass(frozen=True)
class SweepAxis:
    """One swept parameter: ``values`` (STEPS evenly spaced numbers from LOW to HIGH)."""

    param: str
    values: tuple[float, ...]

    @staticmethod
    def parse(text: str) -> "SweepAxis":
        """Parse ``PARAM=LOW:HIGH:STEPS`` (e.g. ``link_mass=0.5:2:4``)."""
        where = f"--sweep {text}"
        if "=" not in text:
            raise ConfigError("expected PARAM=LOW:HIGH:STEPS", file=where)
        param, rng = text.split("=", 1)
        parts = rng.split(":")
        if not param or len(parts) != 3:
            raise ConfigError("expected PARAM=LOW:HIGH:STEPS", file=where)
        try:
            low, high, steps = float(parts[0]), float(parts[1]), int(parts[2])
        except ValueError:
            raise ConfigError("LOW and HIGH must be numbers and STEPS an integer", file=where) from None
        if steps < 1 or (steps == 1 and low != high):
            raise ConfigError("STEPS must be >= 1 (1 only when LOW == HIGH)", file=where)
        return SweepAxis(param, tuple(float(v) for v in np.linspace(low, high, steps)))


@dataclass
class Condition:
    """One evaluation world: a label, the profile dict, and the swept values (if a grid cell)."""

    label: str
    profile: dict
    values: dict[str, float] = field(default_factory=dict)


def _sweep_entry(param: str, value: float, base: Any, robot: Any) -> tuple[str, Any]:
    from sim2real.profiles import PARAM_KINDS, load_profile

    if base is not None and param in base.entries:
        return param, base.entries[param].with_bounds(value, value)
    if param == LATENCY:
        raw = {"param": "action_latency", "distribution": "constant", "value": value, "unit": "seconds"}
    elif param in PARAM_KINDS:
        raw = {"param": param, "distribution": "constant", "value": value}
        if not PARAM_KINDS[param].is_global:
            raw["targets"] = "all"
            raw["shared"] = True
    else:
        known = sorted(set(PARAM_KINDS) | {LATENCY} | (set(base.entries) if base is not None else set()))
        raise ConfigError(f"unknown sweep parameter {param!r} (expected an entry of the profile, 'latency' "
                          f"or a parameter kind: {', '.join(known)})", file=f"--sweep {param}")
    name = f"sweep_{param}"
    prof = load_profile({"params": {name: raw}}, robot=robot)
    return name, prof.entries[name]


def build_conditions(profile: Any, axes: Sequence[SweepAxis], robot: Any = None,
                     include_nominal: bool = True) -> list[Condition]:
    """Nominal, the profile (if given) and every grid cell of ``axes`` (at most 2)."""
    from sim2real.profiles import load_profile

    if len(axes) > 2:
        raise ConfigError("at most two --sweep parameters (a line or a heatmap)", file="--sweep")
    if len({a.param for a in axes}) != len(axes):
        raise ConfigError("the same parameter is swept twice", file="--sweep")
    base = load_profile(profile, robot=robot) if profile is not None else None
    nominal = load_profile("nominal", robot=robot)
    conds: list[Condition] = []
    if include_nominal:
        conds.append(Condition("nominal", nominal.to_dict()))
    if base is not None:
        conds.append(Condition(f"profile:{base.name}", base.to_dict()))
    sweep_base = base if base is not None else nominal
    for combo in itertools.product(*[a.values for a in axes]) if axes else []:
        prof = sweep_base
        values = {}
        for axis, v in zip(axes, combo):
            name, entry = _sweep_entry(axis.param, v, sweep_base, robot)
            if name != axis.param:  # a kind sweep replaces the profile's own entries of that kind
                for other in [n for n, e in prof.entries.items() if e.param == entry.param and n != name]:
                    prof = prof.replace_entry(other, None)
            prof = prof.replace_entry(name, entry)
            values[axis.param] = float(v)
        label = ",".join(f"{k}={v:g}" for k, v in values.items())
        conds.append(Condition(label, prof.to_dict(), values))
    return conds


# -- one cell ---------------------------------------------------------------------------------
_POLICY_CACHE: dict[str, Any] = {}


def eval_cell(policy_path: str, env_id: str, env_kwargs: dict, robot: str | None, profile: dict, episodes: int,
              seed: int) -> dict[str, float]:
    """Evaluate one policy on one condition (runs in a worker); summary dict."""
    import torch

    from sim2real.train.policy import load_policy, run_episodes, summarize
    from sim2real.train.vec import create_env

    torch.set_num_threads(1)
    if policy_path not in _POLICY_CACHE:
        _POLICY_CACHE[policy_path] = load_policy(policy_path)
    pol = _POLICY_CACHE[policy_path]
    env = create_env(env_id, env_kwargs, robot, profile)
    try:
        return summarize(run_episodes(pol.act, env, episodes, seed=seed))
    finally:
        env.close()


def _eval_cell_bytes(files: dict[str, bytes], key: str, *args: Any) -> dict[str, float]:
    """Ray entry point: materialise the policy files (sent as bytes) once per worker, then evaluate."""
    folder = Path(tempfile.gettempdir()) / f"sim2real-policy-{os.getpid()}-{key}"
    if not (folder / "model.zip").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
    return eval_cell(str(folder), *args)


def policy_files(path: Path) -> dict[str, bytes]:
    """The files of a policy (model.zip, vecnormalize.pkl, run.yaml) as bytes, for Ray workers."""
    from sim2real.train.policy import _find_model

    model = _find_model(path)
    out = {"model.zip": model.read_bytes()}
    for folder in (model.parent, model.parent.parent, model.parent.parent.parent):
        for name in POLICY_FILES[1:]:
            if name not in out and (folder / name).is_file():
                out[name] = (folder / name).read_bytes()
    return out


@dataclass
class Job:
    policy: str          # label
    path: str
    condition: Condition
    env_id: str
    env_kwargs: dict
    robot: str | None
    episodes: int
    seed: int


def run_jobs(jobs: Sequence[Job], workers: int = 1, ray_address: str | None = None,
             progress: Callable[[int, int], None] | None = None) -> list[dict[str, float]]:
    """Run every job; results in job order. ``ray_address``: ``auto`` or a cluster address."""
    args = [(j.env_id, j.env_kwargs, j.robot, j.condition.profile, j.episodes, j.seed) for j in jobs]
    if ray_address is not None:
        return _run_ray(jobs, args, ray_address)
    if workers <= 1:
        out = []
        for i, (j, a) in enumerate(zip(jobs, args)):
            out.append(eval_cell(j.path, *a))
            if progress:
                progress(i + 1, len(jobs))
        return out
    import multiprocessing as mp

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("forkserver")) as pool:
        futures = [pool.submit(eval_cell, j.path, *a) for j, a in zip(jobs, args)]
        out = []
        for i, f in enumerate(futures):
            out.append(f.result())
            if progress:
                progress(i + 1, len(jobs))
        return out


def init_ray(address: str) -> Any:
    """Connect to the Ray cluster at ``address`` (``auto``: the running one, else a local Ray instance
    started here); returns the ``ray`` module. ConfigError when Ray is missing or unreachable."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray installed (pip install 'sim2real[ray]')", file="--ray") from None
    if not ray.is_initialized():
        try:
            ray.init(address=address, log_to_driver=False)
        except ConnectionError:
            if address != "auto":
                raise ConfigError(f"cannot connect to the Ray cluster at {address!r}", file="--ray") from None
            ray.init(log_to_driver=False)  # no cluster running: start a local Ray instance
    return ray


def _run_ray(jobs: Sequence[Job], args: list, address: str) -> list[dict[str, float]]:
    ray = init_ray(address)
    task = ray.remote(num_cpus=1)(_eval_cell_bytes)
    refs_by_path: dict[str, Any] = {}
    for j in jobs:
        if j.path not in refs_by_path:
            refs_by_path[j.path] = ray.put(policy_files(Path(j.path)))
    keys = {p: f"{i}-{abs(hash(p)) % 10**8}" for i, p in enumerate(refs_by_path)}
    refs = [task.remote(refs_by_path[j.path], keys[j.path], *a) for j, a in zip(jobs, args)]
    return list(ray.get(refs))
