"""Atomic training checkpoints: everything ``--resume`` needs to continue a killed run.

A checkpoint is a folder ``<out>/checkpoints/step_<N>/`` holding ``model.zip``,
``vecnormalize.pkl`` (if used), ``replay_buffer.pkl`` (off-policy algorithms),
``state.json`` (step count, EPOpt iteration and sampler RNG, ADR ranges and buffers,
evaluation history) and ``rng.pkl`` (Python / NumPy / torch RNG states). It is written
into a hidden temp folder and renamed into place; ``checkpoints/latest.json`` is then
replaced atomically, so a crash at any moment leaves the previous checkpoint usable.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from sim2real._io import atomic_write_text
from sim2real.errors import CheckpointError

KEEP = 2  # checkpoints kept on disk (older ones are deleted)


def save_checkpoint(out_dir: Path, model: Any, vecnorm: Any | None, state: dict[str, Any]) -> Path:
    """Write a checkpoint of ``model`` at ``model.num_timesteps``; returns its folder."""
    root = Path(out_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{int(model.num_timesteps):010d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        model.save(str(tmp / "model.zip"))
        if vecnorm is not None:
            vecnorm.save(str(tmp / "vecnormalize.pkl"))
        if getattr(model, "replay_buffer", None) is not None:
            model.save_replay_buffer(str(tmp / "replay_buffer.pkl"))
        state = dict(state, num_timesteps=int(model.num_timesteps))
        (tmp / "state.json").write_text(json.dumps(state, indent=1, default=_jsonable))
        with open(tmp / "rng.pkl", "wb") as fh:
            pickle.dump(_rng_state(), fh)
        final = root / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_text(root / "latest.json", json.dumps({"dir": name, "num_timesteps": int(model.num_timesteps)}))
    olds = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_") and p.name != name)
    for old in olds[:-(KEEP - 1)] if KEEP > 1 else olds:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(out_dir: Path) -> Path | None:
    """The folder ``latest.json`` points to, or None when the run has no checkpoint."""
    latest = Path(out_dir) / "checkpoints" / "latest.json"
    if not latest.is_file():
        return None
    try:
        ck = Path(out_dir) / "checkpoints" / json.loads(latest.read_text())["dir"]
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"{latest}: unreadable ({exc})") from None
    if not (ck / "model.zip").is_file():
        raise CheckpointError(f"{ck}: checkpoint folder is missing model.zip")
    return ck


def read_state(ck: Path) -> dict[str, Any]:
    try:
        return json.loads((ck / "state.json").read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{ck / 'state.json'}: unreadable ({exc})") from None


def restore_rng(ck: Path) -> None:
    path = ck / "rng.pkl"
    if not path.is_file():
        return
    with open(path, "rb") as fh:
        st = pickle.load(fh)
    import torch

    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])


def _rng_state() -> dict[str, Any]:
    import torch

    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    raise TypeError(f"not JSON-serialisable: {type(x).__name__}")


#: Run-config keys a resumed run must share with the stored ``run.yaml``: they fix the policy's
#: observation/action spaces and network, so a different value cannot continue the same model.
RESUME_KEYS = (("env", "id"), ("robot",), ("algo",), ("policy",), ("net_arch",), ("activation",))


def check_resume_config(out_dir: Path, new: dict[str, Any]) -> None:
    """Refuse to resume the run in ``out_dir`` with a config (``RunConfig.to_dict()``) that differs from
    its stored ``run.yaml`` in any of :data:`RESUME_KEYS`; the error lists each difference."""
    from sim2real._io import read_yaml_file
    from sim2real.errors import ConfigError

    path = Path(out_dir) / "run.yaml"
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; the run cannot be resumed")
    stored = read_yaml_file(path, what="run config")
    if not isinstance(stored, dict):
        raise CheckpointError(f"{path}: not a run config (expected a mapping)")

    def get(d: Any, keys: tuple[str, ...]) -> Any:
        for k in keys:
            d = d.get(k) if isinstance(d, dict) else None
        return d

    diffs = [f"{'.'.join(k)}: {get(stored, k)!r} -> {get(new, k)!r}" for k in RESUME_KEYS if get(stored, k) != get(new, k)]
    if diffs:
        raise ConfigError(f"--resume with a config that differs from the run's run.yaml ({'; '.join(diffs)}); "
                          "use the run's config or another --out", file=str(out_dir))
