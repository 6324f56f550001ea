"""One run config trained with several seeds: ``sim2real train CONFIG --seeds 0,1,2 [--workers K] [--ray auto]``.

Seed ``n`` trains the config with ``seed: n`` into ``<out>/seed_<n>/`` (the folder layout of
:mod:`sim2real.train.trainer`). Seeds run in local worker processes, at most ``workers`` at a
time (``workers=1``: one after the other in this process), or as Ray tasks: each task trains in a
temporary folder on its node and returns the run folder as a tar archive, which is unpacked into
``<out>/seed_<n>`` (no shared file system needed). ``<out>/seeds.json`` then holds each seed's
final evaluation and the mean over seeds with a 95 % confidence interval (Student's t,
``scipy.stats.t``; none for a single seed).
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from sim2real._io import atomic_write_text, check_output_path, check_resume
from sim2real.errors import Sim2RealError
from sim2real.train.config import RunConfig

#: the per-seed numbers aggregated in seeds.json (keys of the trainer's final evaluation)
METRICS = ("success_rate", "mean_return")


def seed_dir(out: Path, seed: int) -> Path:
    return Path(out) / f"seed_{seed}"


def check_seeds(cfg: RunConfig, out: Path, seeds: Sequence[int], resume: bool) -> dict[int, bool]:
    """Every check a seed's run would make, done for all seeds before any of them starts.

    Returns ``{seed: resume_this_seed}``. Without ``resume`` no seed folder may hold a run and
    ``seeds.json`` must not exist; with ``resume`` a seed with a checkpoint continues (its
    ``run.yaml`` must match the config) and a seed without one starts.
    """
    from sim2real.train.checkpoint import check_resume_config, checkpoint_marker
    from sim2real.train.trainer import _load_profiles

    _load_profiles(cfg)  # a bad profile fails once, here, not once per seed
    check_output_path(out, folder=True)
    if not resume:
        check_resume(out, (Path(out) / "seeds.json").exists(), False, what="seeds.json")
    plan = {}
    for s in seeds:
        run = seed_dir(out, s)
        check_output_path(run, folder=True)
        marker = checkpoint_marker(run)
        has = marker is not None
        if not resume:
            check_resume(run, has, False, what=str(marker))
        elif has:
            check_resume_config(run, cfg.with_overrides(seed=s).to_dict())
        plan[s] = resume and has
    return plan


def _train_one(cfg: RunConfig, seed: int, out: str, resume: bool, progress_bar: bool) -> dict[str, Any]:
    """Train one seed (in a worker process or this one); a summary dict, or ``{"error": ...}``."""
    from sim2real.train.trainer import train

    try:
        res = train(cfg.with_overrides(seed=seed), out, resume=resume, progress_bar=progress_bar,
                    log=lambda msg: print(f"[seed {seed}] {msg}", flush=True))
    except Sim2RealError as exc:
        return {"seed": seed, "error": " ".join(str(exc).split())}
    # NaN (an env without a success signal) is stored as null
    return {"seed": seed, "out": str(out), "num_timesteps": res.num_timesteps, "wall_time_s": res.wall_time_s,
            "episodes": res.final_eval["episodes"],
            **{k: float(res.final_eval[k]) if math.isfinite(res.final_eval[k]) else None for k in METRICS}}


def _pack(folder: Path | None) -> bytes | None:
    if folder is None or not folder.is_dir():
        return None
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder, arcname=".")
    return buf.getvalue()


def _unpack(data: bytes, dest: Path) -> None:
    """Replace ``dest`` with the archive's contents (unpacked next to it first, then renamed)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4: refuse links and paths leaving tmp
                tar.extractall(tmp, filter="data")
            else:
                tar.extractall(tmp)
        old = dest.with_name(f".{dest.name}.old")
        if dest.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _train_remote(cfg: RunConfig, seed: int, packed: bytes | None, resume: bool) -> tuple[dict[str, Any], bytes | None]:
    """Ray task: unpack the seed's run (when resuming), train it in a temporary folder, return it packed."""
    with tempfile.TemporaryDirectory(prefix=f"sim2real_seed_{seed}_") as tmp:
        run = Path(tmp) / "run"
        if packed is not None:
            _unpack(packed, run)
        summary = _train_one(cfg, seed, str(run), resume, progress_bar=False)
        return summary, _pack(run)


def run_seeds(cfg: RunConfig, out: str | Path, seeds: Sequence[int], *, resume: bool = False, workers: int = 1,
              ray_address: str | None = None, progress_bar: bool = True,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train ``cfg`` once per seed into ``<out>/seed_<n>``; write and return ``<out>/seeds.json``'s content.

    Raises :class:`Sim2RealError` naming the seed when a seed's run failed (``seeds.json`` lists
    the runs that finished and each failure).
    """
    out = Path(out)
    plan = check_seeds(cfg, out, seeds, resume)
    out.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    if ray_address is not None:
        from sim2real.train.sweep import init_ray

        ray = init_ray(ray_address)
        task = ray.remote(num_cpus=1)(_train_remote)
        refs = {s: task.remote(cfg, s, _pack(seed_dir(out, s)) if plan[s] else None, plan[s]) for s in seeds}
        for s, ref in refs.items():
            summary, packed = ray.get(ref)
            if packed is not None and "error" not in summary:
                _unpack(packed, seed_dir(out, s))
            summary["out"] = str(seed_dir(out, s))
            results.append(summary)
            log(_line(summary))
    elif workers <= 1 or len(seeds) == 1:
        for s in seeds:
            results.append(_train_one(cfg, s, str(seed_dir(out, s)), plan[s], progress_bar))
            log(_line(results[-1]))
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(workers, len(seeds)), mp_context=mp.get_context("forkserver")) as pool:
            futures = [pool.submit(_train_one, cfg, s, str(seed_dir(out, s)), plan[s], False) for s in seeds]
            for f in futures:
                results.append(f.result())
                log(_line(results[-1]))
    report = {"config": cfg.source, "seeds": results,
              "aggregate": {m: mean_ci([r[m] for r in results if "error" not in r]) for m in METRICS}}
    atomic_write_text(out / "seeds.json", json.dumps(report, indent=1))
    failed = [r for r in results if "error" in r]
    if failed:
        raise Sim2RealError("; ".join(f"seed {r['seed']}: {r['error']}" for r in failed)
                            + f" ({len(results) - len(failed)} of {len(results)} seeds finished; {out / 'seeds.json'})")
    return report


def mean_ci(values: Sequence[float], level: float = 0.95) -> dict[str, Any]:
    """Mean, sample standard deviation and the ``level`` confidence interval of the mean
    (Student's t with n - 1 degrees of freedom) over the finite ``values``; ``ci`` is None for n < 2."""
    from scipy import stats

    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = int(x.size)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "ci": None, "level": level}
    mean = float(x.mean())
    if n < 2:
        return {"n": 1, "mean": mean, "std": None, "ci": None, "level": level}
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci": [mean - half, mean + half], "level": level}


def format_aggregate(report: dict[str, Any]) -> str:
    """``success 0.53 (95 % CI 0.31..0.75, n=3); return -4.10 (95 % CI ...)`` from a seeds.json report."""
    parts = []
    for metric, name in zip(METRICS, ("success", "return")):
        agg = report["aggregate"][metric]
        if agg["mean"] is None:
            parts.append(f"{name} n/a")
        elif agg["ci"] is None:
            parts.append(f"{name} {agg['mean']:.2f} (n=1, no interval)")
        else:
            parts.append(f"{name} {agg['mean']:.2f} ({agg['level']:.0%} CI {agg['ci'][0]:.2f}..{agg['ci'][1]:.2f}, "
                         f"n={agg['n']})")
    return "mean over seeds: " + "; ".join(parts)


def _line(summary: dict[str, Any]) -> str:
    if "error" in summary:
        return f"seed {summary['seed']}: failed: {summary['error']}"
    success = "n/a" if summary["success_rate"] is None else f"{summary['success_rate']:.2f}"
    ret = "n/a" if summary["mean_return"] is None else f"{summary['mean_return']:.2f}"
    return (f"seed {summary['seed']}: {summary['num_timesteps']} steps, final evaluation success {success}, "
            f"return {ret} -> {summary['out']}")
