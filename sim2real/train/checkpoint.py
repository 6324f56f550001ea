"""Atomic training checkpoints: everything ``--resume`` needs to continue a killed run.

A checkpoint is a folder ``<out>/checkpoints/step_<N>/`` holding ``model.zip``,
``vecnormalize.pkl`` (if used), ``replay_buffer.pkl`` (off-policy algorithms),
``state.json`` (step count, EPOpt iteration and sampler RNG, ADR ranges and buffers,
evaluation history) and ``rng.pkl`` (Python / NumPy / torch RNG states). It is written
into a hidden temp folder and renamed into place; ``checkpoints/latest.json`` is then
replaced atomically, so a crash at any moment leaves the previous checkpoint usable; ``--resume``
continues from the newest intact step folder, with or without ``latest.json``.

``manifest.json`` records the size and SHA-256 of every file; :func:`checkpoint_problem` checks
it together with the files' structure (the zip's CRCs, the pickles unpickle), so a checkpoint
damaged after it was written (a full disk, a copy cut short) is recognised before it is loaded and
:func:`latest_checkpoint` falls back to the newest intact one.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from sim2real._io import atomic_write_text
from sim2real.errors import CheckpointError

KEEP = 2  # checkpoints kept on disk (older ones are deleted)
MANIFEST = "manifest.json"  # size and SHA-256 of each file of a checkpoint
STEP_DIR = re.compile(r"step_[0-9]+")  # a checkpoint folder's name (hidden temp folders start with '.')


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
        (tmp / MANIFEST).write_text(json.dumps({f.name: _digest(f) for f in sorted(tmp.iterdir())}, indent=1))
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


def checkpoint_folders(out_dir: Path) -> list[Path]:
    """The run's ``checkpoints/step_*`` folders, newest step first (empty when the run has none).

    The folder ``checkpoints/latest.json`` names is among them even when it is gone (so that a
    missing one is reported, not silently passed over), but it does not come first: a step folder
    only gets its final name once complete, so one newer than ``latest.json`` (a kill between the
    rename and the update of ``latest.json``) is the newest checkpoint. An unreadable or missing
    ``latest.json`` changes nothing.
    """
    root = Path(out_dir) / "checkpoints"
    if not root.is_dir():
        return []
    steps = {p for p in root.iterdir() if p.is_dir() and STEP_DIR.fullmatch(p.name)}
    try:
        named = json.loads((root / "latest.json").read_text())["dir"]
        if isinstance(named, str) and STEP_DIR.fullmatch(named):
            steps.add(root / named)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no or unreadable latest.json: the step folders still say what exists
    return sorted(steps, key=lambda p: int(p.name[len("step_"):]), reverse=True)


def checkpoint_marker(out_dir: Path) -> str | None:
    """What shows that ``out_dir`` holds a run's checkpoints (for ``--out``/``--resume`` messages):
    ``checkpoints/latest.json`` or else the newest ``checkpoints/step_*`` folder, intact or not; None
    when there is neither."""
    root = Path(out_dir) / "checkpoints"
    if (root / "latest.json").exists():
        return "checkpoints/latest.json"
    folders = [p for p in checkpoint_folders(out_dir) if p.is_dir()]
    return f"checkpoints/{folders[0].name}" if folders else None


def check_checkpoint_resume(out_dir: Path, resume: bool) -> None:
    """The ``--out``/``--resume`` rule (:func:`sim2real._io.check_resume`) for a training run: a run
    exists when :func:`checkpoint_marker` finds ``latest.json`` or any step folder."""
    from sim2real._io import check_resume

    marker = checkpoint_marker(out_dir)
    check_resume(out_dir, marker is not None, resume, what=marker or "checkpoints/step_*")


def latest_checkpoint(out_dir: Path, warn: Callable[[str], None] | None = None) -> Path | None:
    """The newest intact checkpoint folder of the run in ``out_dir``, or None when it has none.

    The ``step_*`` folders are tried newest first (see :func:`checkpoint_folders`). A damaged one (see :func:`checkpoint_problem`) is skipped with one line to ``warn``
    (default: stderr); when every checkpoint is damaged, :class:`CheckpointError` lists why.
    """
    folders = checkpoint_folders(out_dir)
    return newest_intact(folders, warn) if folders else None


def newest_intact(folders: list[Path], warn: Callable[[str], None] | None = None) -> Path:
    """The first of ``folders`` without a :func:`checkpoint_problem`; each skipped one is reported to
    ``warn`` in one line. Raises :class:`CheckpointError` naming every problem when none is intact."""
    warn = warn or _warn_stderr
    problems = []
    for folder in folders:
        problem = checkpoint_problem(folder)
        if problem is None:
            for skipped in problems:
                warn(f"{skipped}; using {folder}")
            return folder
        problems.append(f"{folder}: {problem}")
    if len(problems) == 1:
        raise CheckpointError(f"cannot load {problems[0]}")
    raise CheckpointError("no intact checkpoint: " + "; ".join(problems) if problems else "no checkpoint")


def _warn_stderr(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr, flush=True)


def checkpoint_problem(folder: Path) -> str | None:
    """Why the policy files in ``folder`` cannot be loaded, or None when they are intact.

    Checks ``model.zip`` (a zip whose members pass their CRC, holding SB3's ``data`` and
    ``policy.pth``), ``vecnormalize.pkl`` and ``rng.pkl`` (they unpickle), ``state.json`` (JSON)
    and, when the folder has a ``manifest.json``, every file's size and SHA-256.
    """
    folder = Path(folder)
    model = folder / "model.zip"
    if not model.is_file():
        return "model.zip missing"
    manifest = folder / MANIFEST
    if manifest.is_file():
        try:
            files = json.loads(manifest.read_text())
            if not isinstance(files, dict):
                raise ValueError("not a mapping")
        except (OSError, ValueError) as exc:
            return f"{MANIFEST} unreadable ({exc})"
        for name, want in files.items():
            f = folder / str(name)
            if not f.is_file():
                return f"{name} missing"
            if f.stat().st_size != want.get("bytes") or _digest(f) != want:
                return f"{name} damaged ({f.stat().st_size} bytes, {want.get('bytes')} written; checksum differs)"
    try:
        with zipfile.ZipFile(model) as zf:
            bad = zf.testzip()
            names = set(zf.namelist())
        if bad is not None:
            return f"model.zip damaged (member {bad} fails its CRC)"
        if not {"data", "policy.pth"} <= names:
            return "model.zip damaged or not a stable-baselines3 model (no data / policy.pth in it)"
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as exc:
        return f"model.zip damaged ({exc or type(exc).__name__})"
    for name in ("vecnormalize.pkl", "rng.pkl"):
        if (folder / name).is_file():
            try:
                with open(folder / name, "rb") as fh:
                    pickle.load(fh)
            except Exception as exc:  # any unpickling failure: truncated, empty, not a pickle
                return f"{name} damaged ({type(exc).__name__}: {exc or 'empty'})"
    if (folder / "state.json").is_file():
        try:
            json.loads((folder / "state.json").read_text())
        except (OSError, ValueError) as exc:
            return f"state.json damaged ({exc})"
    return None


def _digest(path: Path) -> dict[str, Any]:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return {"bytes": path.stat().st_size, "sha256": h.hexdigest()}


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
