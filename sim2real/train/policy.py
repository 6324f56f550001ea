"""Loading a trained policy (model + observation normalisation) and running episodes with it.

A run directory written by ``sim2real train`` holds ``model.zip`` (SB3), optionally
``vecnormalize.pkl`` (observation statistics) and ``run.yaml`` (the resolved run
config, which names the algorithm and env). :func:`load_policy` accepts the run
directory, its ``model.zip`` or a checkpoint directory.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from sim2real.errors import CheckpointError


@dataclass
class LoadedPolicy:
    """An SB3 model with the observation normalisation it was trained with.

    ``obs_mean``/``obs_var`` are ``None`` when the run did not normalise observations.
    """

    model: Any
    algo: str
    path: Path
    run: dict
    obs_mean: np.ndarray | None = None
    obs_var: np.ndarray | None = None
    obs_eps: float = 1e-8
    clip_obs: float = 10.0

    @property
    def env_id(self) -> str | None:
        env = self.run.get("env")
        return env.get("id") if isinstance(env, dict) else None

    def normalize(self, obs: Any) -> Any:
        if self.obs_mean is None or isinstance(obs, dict):
            return obs
        return np.clip((np.asarray(obs, dtype=np.float32) - self.obs_mean) / np.sqrt(self.obs_var + self.obs_eps),
                       -self.clip_obs, self.clip_obs).astype(np.float32)

    def act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        """Action for one raw (unnormalised) observation, shape ``(act_dim,)``, in the env's action space."""
        action, _ = self.model.predict(self.normalize(obs), deterministic=deterministic)
        return action

    @property
    def name(self) -> str:
        return self.path.name if self.path.name not in ("model.zip", "model") else self.path.parent.name


def _find_model(path: Path) -> Path:
    if path.is_file():
        return path
    for cand in (path / "model.zip", path / "final" / "model.zip"):
        if cand.is_file():
            return cand
    latest = path / "checkpoints" / "latest.json"
    if latest.is_file():
        import json
        ck = path / "checkpoints" / json.loads(latest.read_text())["dir"] / "model.zip"
        if ck.is_file():
            return ck
    raise CheckpointError(f"{path}: no model.zip found (expected a run directory, a checkpoint or a model.zip)")


def load_policy(path: str | Path, device: str = "cpu") -> LoadedPolicy:
    """Load ``model.zip`` (+ ``vecnormalize.pkl`` and ``run.yaml`` next to it or in parent folders)."""
    from sim2real.train.config import algo_class

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: policy not found")
    model_path = _find_model(path)
    run: dict = {}
    for folder in (model_path.parent, model_path.parent.parent, model_path.parent.parent.parent):
        if (folder / "run.yaml").is_file():
            run = yaml.safe_load((folder / "run.yaml").read_text()) or {}
            break
    algo = run.get("algo", "ppo")
    cls = algo_class("ppo" if algo == "epopt_ppo" else algo)
    try:
        model = cls.load(str(model_path), device=device)
    except Exception as exc:  # corrupt zip, wrong algorithm, ...
        raise CheckpointError(f"{model_path}: cannot load a {cls.__name__} model: {exc}") from None
    policy = LoadedPolicy(model=model, algo=algo, path=path, run=run)
    vn = model_path.parent / "vecnormalize.pkl"
    if vn.is_file():
        with open(vn, "rb") as fh:
            stats = pickle.load(fh)
        if getattr(stats, "norm_obs", False) and not isinstance(stats.obs_rms, dict):
            policy.obs_mean = stats.obs_rms.mean.astype(np.float32)
            policy.obs_var = stats.obs_rms.var.astype(np.float32)
            policy.obs_eps = float(stats.epsilon)
            policy.clip_obs = float(stats.clip_obs)
    return policy


def run_episodes(act: Callable[[Any], np.ndarray], env: Any, episodes: int, seed: int = 0,
                 reset_options: dict | None = None) -> dict[str, list[float]]:
    """Run ``episodes`` episodes of ``env`` (a Gymnasium env) with ``act(obs) -> action``.

    Episode ``k`` is reset with seed ``seed + k``. Returns lists ``returns``, ``lengths``
    and ``successes`` (``info["is_success"]`` at the last step, NaN where the env has none).
    """
    out: dict[str, list[float]] = {"returns": [], "lengths": [], "successes": []}
    for k in range(episodes):
        obs, info = env.reset(seed=seed + k, options=reset_options)
        ret, length, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(act(obs))
            ret += float(reward)
            length += 1
            done = terminated or truncated
        out["returns"].append(ret)
        out["lengths"].append(length)
        out["successes"].append(float(bool(info["is_success"])) if "is_success" in info else float("nan"))
    return out


def summarize(result: dict[str, list[float]]) -> dict[str, float]:
    """Mean/std return, success rate (NaN if the env reports no success), mean length."""
    succ = np.asarray(result["successes"], dtype=float)
    rets = np.asarray(result["returns"], dtype=float)
    return {"episodes": int(len(rets)),
            "success_rate": float(np.mean(succ)) if len(succ) and not np.all(np.isnan(succ)) else float("nan"),
            "mean_return": float(np.mean(rets)) if len(rets) else float("nan"),
            "std_return": float(np.std(rets)) if len(rets) else float("nan"),
            "mean_length": float(np.mean(result["lengths"])) if len(rets) else float("nan")}
