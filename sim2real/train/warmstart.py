"""Best-evaluation checkpoint (``eval.save_best``) and warm starts (``init_from``).

``<out>/best/`` holds ``model.zip``, ``vecnormalize.pkl`` (if the run normalises),
``run.yaml`` and ``best.json`` (the evaluation that made it the best: ``num_timesteps``,
``mean_return``, ``success_rate``, ``mean_length``). It is written into a hidden temp
folder and swapped into place, so a crash leaves the previous best intact. It is a policy
folder: ``sim2real evaluate --policy <out>/best``.

``init_from`` copies a trained policy's weights (and its observation / reward
normalisation statistics) into a new run before training starts, e.g. an EPOpt CVaR run
(ε < 1) started from an ε = 1 run's policy: the paper's first phase done as a separate run.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any

from sim2real.errors import CheckpointError

BEST = "best"


def _score(res: dict[str, Any]) -> tuple[float, float]:
    """Ordering of evaluations: success rate first (when the env reports one), then mean return."""
    sr = float(res.get("success_rate", math.nan))
    return (-math.inf if math.isnan(sr) else sr, float(res["mean_return"]))


def best_score(out_dir: Path) -> tuple[float, float] | None:
    """Score of ``<out>/best`` (None when there is none yet or its best.json is unreadable)."""
    path = Path(out_dir) / BEST / "best.json"
    try:
        return _score(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def maybe_save_best(out_dir: Path, model: Any, vecnorm: Any | None, res: dict[str, Any]) -> bool:
    """Replace ``<out>/best`` with ``model`` if evaluation ``res`` beats the stored best; True if saved."""
    out = Path(out_dir)
    prev = best_score(out)
    if prev is not None and _score(res) <= prev:
        return False
    tmp = Path(tempfile.mkdtemp(prefix=".best.", dir=out))
    try:
        model.save(str(tmp / "model.zip"))
        if vecnorm is not None:
            vecnorm.save(str(tmp / "vecnormalize.pkl"))
        if (out / "run.yaml").is_file():
            shutil.copyfile(out / "run.yaml", tmp / "run.yaml")
        (tmp / "best.json").write_text(json.dumps(res, indent=1, default=float))
        final = out / BEST
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=".best_old.", dir=out))
            os.replace(final, old / BEST)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return True


def find_init_model(path: str | Path) -> Path:
    """``model.zip`` of an ``init_from`` path (a run folder, a ``best/`` or checkpoint folder, or a zip)."""
    p = Path(path)
    if p.is_file() and p.suffix == ".zip":
        return p
    if (p / "model.zip").is_file():
        return p / "model.zip"
    raise CheckpointError(f"init_from {path}: no model.zip there (expected a run folder, its best/ folder "
                          f"or a model.zip file)")


def init_from(model: Any, vecnorm: Any | None, path: str | Path) -> None:
    """Load the policy at ``path`` into ``model`` (and its normalisation stats into ``vecnorm``).

    Raises CheckpointError naming ``path`` when it is missing, unreadable or incompatible
    (observation / action shape, network architecture, observation normalisation).
    """
    import numpy as np
    from stable_baselines3.common.save_util import load_from_zip_file

    zip_path = find_init_model(path)
    try:
        data, params, _ = load_from_zip_file(str(zip_path), device=model.device)
    except Exception as exc:  # corrupt zip, not an SB3 model
        raise CheckpointError(f"init_from {zip_path}: cannot read an SB3 model: {exc}") from None
    data = data or {}
    for key in ("observation_space", "action_space"):
        src, dst = data.get(key), getattr(model, key)
        if src is None or getattr(src, "shape", None) != dst.shape:
            raise CheckpointError(f"init_from {zip_path}: {key} {getattr(src, 'shape', src)} does not match "
                                  f"this run's {dst.shape}")
    try:
        model.set_parameters(params, exact_match=True, device=model.device)
    except (RuntimeError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"init_from {zip_path}: policy does not fit this run's policy "
                              f"(net_arch / algo differ?): {first}") from None
    vn_path = zip_path.parent / "vecnormalize.pkl"
    src_vn = None
    if vn_path.is_file():
        try:
            with open(vn_path, "rb") as fh:
                src_vn = pickle.load(fh)
        except Exception as exc:
            raise CheckpointError(f"init_from {vn_path}: unreadable ({exc})") from None
    norm_obs = bool(vecnorm is not None and vecnorm.norm_obs)
    src_norm_obs = bool(src_vn is not None and getattr(src_vn, "norm_obs", False))
    if norm_obs != src_norm_obs:
        raise CheckpointError(f"init_from {zip_path}: the policy was trained "
                              f"{'with' if src_norm_obs else 'without'} observation normalisation, this run "
                              f"{'normalises' if norm_obs else 'does not normalise'} observations "
                              f"(set normalize.obs to match)")
    if vecnorm is None or src_vn is None:
        return
    if norm_obs:
        if np.shape(src_vn.obs_rms.mean) != np.shape(vecnorm.obs_rms.mean):
            raise CheckpointError(f"init_from {vn_path}: observation statistics of shape "
                                  f"{np.shape(src_vn.obs_rms.mean)}, this run's observations have "
                                  f"{np.shape(vecnorm.obs_rms.mean)}")
        vecnorm.obs_rms = src_vn.obs_rms
    if vecnorm.norm_reward and getattr(src_vn, "norm_reward", False):
        vecnorm.ret_rms = src_vn.ret_rms
