"""Parallel evaluation of calibration candidates: in-process, across local processes, or on a Ray cluster.

Every backend holds one :class:`~sim2real.sysid.replay.WindowReplay` (one PyBullet client) per
worker, built once from a picklable :class:`ReplaySetup`, and maps a batch of parameter
vectors to costs or residual vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from sim2real.sysid.params import ParamSpec
from sim2real.sysid.replay import WindowReplay, WindowSet

Fixed = Sequence[tuple[ParamSpec, float]]


@dataclass
class ReplaySetup:
    """Everything a worker needs to build its replay (picklable)."""

    robot_file: str
    windows: WindowSet
    specs: list[ParamSpec]
    scales: tuple[np.ndarray, ...]
    w_pos: float
    w_vel: float
    w_tau: float = 1.0

    def build(self) -> WindowReplay:
        from sim2real.robots import load_robot

        return WindowReplay(load_robot(self.robot_file), self.windows, self.specs, self.scales,
                            w_pos=self.w_pos, w_vel=self.w_vel, w_tau=self.w_tau)


def _run(replay: WindowReplay, values: Sequence[float], fixed: Fixed, mode: str) -> Any:
    replay.set_fixed(fixed)
    if mode == "cost":
        return replay.cost(values)
    if mode == "residuals":
        return replay.residuals(values)
    return replay.simulate(values)


class SerialEvaluator:
    """Evaluates in this process."""

    workers = 1

    def __init__(self, setup: ReplaySetup) -> None:
        self.replay = setup.build()

    def map(self, batch: Sequence[Sequence[float]], fixed: Sequence[Fixed], mode: str = "cost") -> list[Any]:
        """``fixed[i]`` are the held-fixed parameters of candidate ``i``."""
        return [_run(self.replay, v, f, mode) for v, f in zip(batch, fixed)]

    def close(self) -> None:
        self.replay.close()


_WORKER: WindowReplay | None = None


def _init_worker(setup: ReplaySetup) -> None:
    global _WORKER
    _WORKER = setup.build()


def _worker_call(args: tuple[Sequence[float], Fixed, str]) -> Any:
    assert _WORKER is not None
    return _run(_WORKER, *args)


class ProcessEvaluator:
    """A ``multiprocessing`` pool (spawn start method: each worker has its own PyBullet client)."""

    def __init__(self, setup: ReplaySetup, workers: int) -> None:
        import multiprocessing as mp

        self.workers = workers
        self.pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(setup,))

    def map(self, batch: Sequence[Sequence[float]], fixed: Sequence[Fixed], mode: str = "cost") -> list[Any]:
        return self.pool.map(_worker_call, [(list(v), list(f), mode) for v, f in zip(batch, fixed)], chunksize=1)

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()


class RayEvaluator:
    """Ray actors, one replay each, on the cluster at ``address`` (``"local"`` starts one here)."""

    def __init__(self, setup: ReplaySetup, workers: int, address: str) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(address=None if address == "local" else address, num_cpus=workers if address == "local" else None,
                     include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)

        @ray.remote(num_cpus=1)
        class _Actor:
            def __init__(self, s: ReplaySetup) -> None:
                self.replay = s.build()

            def run(self, values: Sequence[float], fixed: Fixed, mode: str) -> Any:
                return _run(self.replay, values, fixed, mode)

        self.ray = ray
        self.workers = workers
        ref = ray.put(setup)
        self.actors = [_Actor.remote(ref) for _ in range(workers)]

    def map(self, batch: Sequence[Sequence[float]], fixed: Sequence[Fixed], mode: str = "cost") -> list[Any]:
        from ray.util import ActorPool

        pool = ActorPool(self.actors)
        return list(pool.map(lambda a, vf: a.run.remote(list(vf[0]), list(vf[1]), mode), list(zip(batch, fixed))))

    def close(self) -> None:
        for a in self.actors:
            self.ray.kill(a)


def make_evaluator(setup: ReplaySetup, workers: int = 1, ray_address: str | None = None) -> Any:
    """Serial for ``workers <= 1`` without Ray, else a process pool, or Ray actors when ``ray_address`` is set."""
    if ray_address:
        return RayEvaluator(setup, max(1, workers), ray_address)
    if workers <= 1:
        return SerialEvaluator(setup)
    return ProcessEvaluator(setup, workers)
