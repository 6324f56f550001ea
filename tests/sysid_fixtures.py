"""What the online-identification tests share: one torch thread, and an untrained PPO policy
saved as `sim2real train` lays out a run (``model.zip`` + ``run.yaml``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from sim2real.sysid.upenv import make_up_env


@pytest.fixture
def one_thread():
    """Torch on one thread for the test (the machine's cores are shared)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def plain_up_run(run: Path, profile: Any, env_id: str = "sim2real/KukaReach-v0", max_episode_steps: int = 6) -> Path:
    """An untrained PPO ``MlpPolicy`` (one hidden layer of 8) on the UP env of ``env_id`` with
    ``profile``, saved as the run directory ``run``; returns ``run``."""
    from stable_baselines3 import PPO

    run.mkdir(parents=True)
    env = make_up_env(env_id, profile=profile, max_episode_steps=max_episode_steps)
    PPO("MlpPolicy", env, n_steps=8, batch_size=8, policy_kwargs={"net_arch": [8]}, seed=0).save(str(run / "model.zip"))
    env.close()
    (run / "run.yaml").write_text("algo: ppo\n")
    return run
