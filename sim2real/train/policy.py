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
from sim2real._io import read_yaml_file
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
    model_path: Path | None = None  # the model.zip loaded (``path`` may be its run or checkpoint folder)

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
    """``model.zip`` of ``path``: the file itself, or in a folder the final policy (``model.zip``,
    ``final/model.zip``) and then the run's checkpoints, newest first. A damaged candidate
    (:func:`~sim2real.train.checkpoint.checkpoint_problem`) is skipped with a one-line warning."""
    from sim2real.train.checkpoint import checkpoint_folders, newest_intact

    if path.is_file():
        return path
    candidates = [d for d in (path, path / "final") if (d / "model.zip").is_file()] + checkpoint_folders(path)
    if not candidates:
        raise CheckpointError(f"{path}: no model.zip found (expected a run directory, a checkpoint or a model.zip)")
    return newest_intact(candidates) / "model.zip"


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
            run = read_yaml_file(folder / "run.yaml", what="run config") or {}
            if not isinstance(run, dict):
                raise CheckpointError(f"{folder / 'run.yaml'}: not a run config (expected a mapping)")
            break
    algo = run.get("algo", "ppo")
    cls = algo_class("ppo" if algo == "epopt_ppo" else algo)
    try:
        model = cls.load(str(model_path), device=device)
    except Exception as exc:  # corrupt zip, wrong algorithm, ...
        raise CheckpointError(f"{model_path}: cannot load a {cls.__name__} model: {exc}") from None
    policy = LoadedPolicy(model=model, algo=algo, path=path, run=run, model_path=model_path)
    vn = model_path.parent / "vecnormalize.pkl"
    if vn.is_file():
        try:
            with open(vn, "rb") as fh:
                stats = pickle.load(fh)
        except Exception as exc:  # truncated, empty or not a pickle
            raise CheckpointError(f"{vn}: cannot load the observation normalisation "
                                  f"({type(exc).__name__}: {exc or 'empty'})") from None
        if getattr(stats, "norm_obs", False) and not isinstance(stats.obs_rms, dict):
            policy.obs_mean = stats.obs_rms.mean.astype(np.float32)
            policy.obs_var = stats.obs_rms.var.astype(np.float32)
            policy.obs_eps = float(stats.epsilon)
            policy.clip_obs = float(stats.clip_obs)
    return policy


def space_mismatch(policy_space: Any, env_space: Any, what: str) -> str | None:
    """Why a policy trained on ``policy_space`` cannot act in ``env_space`` (``what``: observation or
    action), or None. Compares the space type and shape (Dict spaces key by key), not the bounds."""
    import gymnasium.spaces as sp

    def describe(space: Any) -> str:
        if isinstance(space, sp.Dict):
            return "{" + ", ".join(f"{k}: {describe(v)}" for k, v in space.spaces.items()) + "}"
        if isinstance(space, sp.Discrete):
            return f"{space.n} choices"
        return f"{type(space).__name__} of shape {tuple(space.shape or ())}"

    def same(a: Any, b: Any) -> bool:
        if isinstance(a, sp.Dict) or isinstance(b, sp.Dict):
            return (isinstance(a, sp.Dict) and isinstance(b, sp.Dict) and a.spaces.keys() == b.spaces.keys()
                    and all(same(a[k], b[k]) for k in a.spaces))
        if isinstance(a, sp.Discrete) or isinstance(b, sp.Discrete):
            return type(a) is type(b) and a.n == b.n
        return type(a) is type(b) and tuple(a.shape or ()) == tuple(b.shape or ())

    if same(policy_space, env_space):
        return None
    return f"the policy's {what} is {describe(policy_space)}, the env's is {describe(env_space)}"


def check_policy_fits_env(policy: "LoadedPolicy", env: Any, env_id: str) -> None:
    """Raise :class:`CheckpointError` when ``policy`` cannot act in ``env`` (observation or action
    space of another type or shape), naming every mismatched space and the env the policy was trained on."""
    problems = [p for what, ps, es in (("observation", policy.model.observation_space, env.observation_space),
                                       ("action", policy.model.action_space, env.action_space))
                if (p := space_mismatch(ps, es, what)) is not None]
    if problems:
        trained = f" (trained on {policy.env_id})" if policy.env_id else ""
        raise CheckpointError(f"{policy.path}{trained} does not fit {env_id}: {'; '.join(problems)}")


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
