"""Shared pytest configuration: every test runs headless, on CPU, with a private temp dir."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# Ray and torch should not grab every core of the shared 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_DISABLE_IMPORT_WARNING", "1")

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def load_benchmark():
    """``load_benchmark("online_id")`` imports ``benchmarks/online_id.py`` as a module (the scripts are not a package)."""
    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load


@pytest.fixture(scope="session")
def tiny_kuka_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny plain KUKA reach policy (PPO, 32 steps, normalised observations): 20 observations, 7 actions."""
    import yaml

    from sim2real.cli.main import main

    cfg = {"env": {"id": "sim2real/KukaReach-v0", "kwargs": {"max_episode_steps": 16}}, "robot": "kuka_iiwa",
           "profile": "nominal", "algo": "ppo", "net_arch": [8],
           "hyperparameters": {"n_steps": 32, "batch_size": 16, "n_epochs": 1}, "total_timesteps": 32,
           "normalize": True, "eval": {"freq": 0, "episodes": 1}}
    d = tmp_path_factory.mktemp("tiny_kuka")
    (d / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", str(d / "cfg.yaml"), "--out", str(d / "run"), "--no-progress"]) == 0
    return d / "run"
