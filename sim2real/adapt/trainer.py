"""Training loop of an adapt run: data, progress bar, TensorBoard, atomic checkpoints, resume.

A run directory holds ``checkpoint.pt`` (everything needed to resume or reload: config,
step, network/optimizer state, RNG state), ``tb/`` (TensorBoard) and, once finished,
``encoder.pt`` / ``predictor.pt`` (TorchScript) and ``metrics.json``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sim2real._io import atomic_open, atomic_write_text
from sim2real.adapt.config import AdaptConfig, parse_config
from sim2real.adapt.data import DatasetError, ImageSet, build_dataset
from sim2real.adapt.methods import Method, make_method
from sim2real.errors import CheckpointError, ConfigError

CHECKPOINT_FORMAT = "sim2real-adapt/1"


@dataclass
class Domains:
    """Tensors of one run. Images ``(N, 3, S, S)`` uint8; labels ``(N,)`` long or ``(N, K)`` float, or None."""

    xs: torch.Tensor | None
    ys: torch.Tensor | None
    xt: torch.Tensor | None
    yt: torch.Tensor | None
    x_eval: torch.Tensor | None
    y_eval: torch.Tensor | None


def _to_tensors(data: ImageSet, cfg: AdaptConfig, where: str, need_labels: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    x = torch.from_numpy(np.ascontiguousarray(data.images.transpose(0, 3, 1, 2)))
    if data.labels is None or (not need_labels and not set(cfg.task.label_columns) <= set(data.label_names)):
        if need_labels:
            data.columns(cfg.task.label_columns, where)  # raises the precise error
        return x, None
    cols = data.columns(cfg.task.label_columns, where)
    keep = np.isfinite(cols).all(axis=1)  # e.g. a point behind the camera has no pixel position
    if not keep.any():
        raise DatasetError(f"{where}: no sample has finite values in label columns {cfg.task.label_columns}")
    if not keep.all():
        x, cols = x[torch.from_numpy(keep)], cols[keep]
    y = torch.from_numpy(cols.copy())
    if cfg.task.type == "classification":
        y = y[:, 0].long()
        bad = (y < 0) | (y >= cfg.task.num_classes)
        if bool(bad.any()):
            raise DatasetError(f"{where}: class labels must be in [0, {cfg.task.num_classes}), got {int(y[bad][0])}")
    return x, y


#: seed of each data set without its own ``seed``: run seed + offset (the digit split is the run seed for all)
SET_SEED_OFFSETS = {"source": 0, "target": 1, "target_eval": 2}


def build_set(cfg: AdaptConfig, name: str, cache_dir: str | Path | None, progress: bool = True) -> ImageSet:
    """Build data set ``name`` (``source``, ``target`` or ``target_eval``) of ``cfg`` at the network's image size."""
    return build_dataset(cfg.data[name], cfg.network.image_size, cache_dir, progress,
                         cfg.seed + SET_SEED_OFFSETS[name], split_seed=cfg.seed)


def load_domains(cfg: AdaptConfig, cache_dir: Path | None, progress: bool = True) -> Domains:
    """Build source / target-train / held-out target tensors from ``cfg.data``.

    The held-out target set is ``data.target_eval`` if given, else (when the target set has
    labels) the last ``holdout_fraction`` (default 0.3) of a seeded shuffle of the target set.
    """
    src, tgt, ev = (build_set(cfg, name, cache_dir, progress) if name in cfg.data else None
                    for name in ("source", "target", "target_eval"))
    if tgt is not None and ev is None and tgt.labels is not None and set(cfg.task.label_columns) <= set(tgt.label_names):
        perm = np.random.default_rng(cfg.seed).permutation(len(tgt))
        n_eval = max(1, int(round(cfg.data.get("holdout_fraction", 0.3) * len(tgt))))
        tgt, ev = tgt.subset(np.sort(perm[n_eval:])), tgt.subset(np.sort(perm[:n_eval]))
    xs = ys = xt = yt = xe = ye = None
    if src is not None:
        xs, ys = _to_tensors(src, cfg, "data.source", need_labels=cfg.method != "cyclegan")
    if tgt is not None:
        xt, yt = _to_tensors(tgt, cfg, "data.target", need_labels=cfg.method == "oracle")
    if ev is not None:
        xe, ye = _to_tensors(ev, cfg, "data.target_eval", need_labels=True)
    return Domains(xs, ys, xt, yt, xe, ye)


def _float(x: torch.Tensor) -> torch.Tensor:
    return x.float().div_(255.0)


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, task_type: str, batch: int = 256) -> dict[str, float]:
    """Classification → ``accuracy``; regression → ``error`` = mean Euclidean norm of the error vector."""
    was_training = model.training
    model.eval()
    outs = [model(_float(x[i : i + batch])) for i in range(0, len(x), batch)]
    model.train(was_training)
    out = torch.cat(outs)
    if task_type == "classification":
        return {"accuracy": float((out.argmax(1) == y).float().mean())}
    err = (out - y).norm(dim=1)
    return {"error": float(err.mean()), "error_median": float(err.median())}


def save_checkpoint(path: Path, method: Method, step: int, batch_gen: torch.Generator, extra: dict[str, Any]) -> None:
    """Atomically write everything needed to resume or reload a run."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "method": method.name,
        "config": method.cfg.raw,
        "config_file": method.cfg.source,
        "step": step,
        "total_steps": method.cfg.train.steps,
        "network": asdict(method.cfg.network),
        "task": asdict(method.cfg.task),
        "modules": {k: m.state_dict() for k, m in method.modules.items()},
        "optimizers": {k: o.state_dict() for k, o in method.optimizers.items()},
        "rng": {"torch": torch.get_rng_state(), "batches": batch_gen.get_state()},
        **extra,
    }
    with atomic_open(path, "wb") as fh:
        torch.save(state, fh)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint dict; :class:`CheckpointError` naming the file if missing or not ours."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a sim2real adapt checkpoint (format {CHECKPOINT_FORMAT})")
    return state


def method_from_checkpoint(path: str | Path, with_optimizers: bool = False) -> tuple[Method, dict[str, Any]]:
    """Rebuild the method of a checkpoint with its trained weights."""
    state = read_checkpoint(path)
    try:
        cfg = parse_config(state["config"], file=state.get("config_file"))
    except ConfigError as exc:
        raise CheckpointError(f"{path}: stored config invalid: {exc}") from None
    method = make_method(cfg)
    for k, m in method.modules.items():
        m.load_state_dict(state["modules"][k])
    if with_optimizers:
        for k, o in method.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
    return method, state


def _batch(x: torch.Tensor, y: torch.Tensor | None, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    idx = torch.randint(len(x), (n,), generator=gen)
    return _float(x[idx]), (None if y is None else y[idx])


def apply_lr_schedule(method: Method, step: int, total: int, schedule: str) -> None:
    """Set every optimizer's learning rate for ``step`` of ``total``: ``constant`` leaves it,
    ``cosine`` scales each group's initial rate by ``0.5 (1 + cos(π step / total))``."""
    if schedule == "constant":
        return
    factor = 0.5 * (1.0 + math.cos(math.pi * step / total))
    for opt in method.optimizers.values():
        for group in opt.param_groups:
            group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor


def train(cfg: AdaptConfig, run_dir: str | Path, domains: Domains, resume: bool = False,
          progress: bool = True, log_tensorboard: bool = True) -> tuple[Method, dict[str, Any]]:
    """Train ``cfg.method`` in ``run_dir``; with ``resume`` continue from ``run_dir/checkpoint.pt``.

    A finished run (checkpoint at the last step) is loaded, not retrained, when resuming.
    Returns the method and a summary dict (``metrics`` on the held-out target set if labelled).
    """
    from tqdm.auto import tqdm

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = run_dir / "checkpoint.pt"
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.seed)
    method = make_method(cfg)
    _check_domains(cfg, method, domains)
    y = domains.yt if cfg.method == "oracle" else domains.ys
    if cfg.task.type == "regression" and y is not None:
        method.set_label_normalisation(y.mean(0), y.std(0))
    batch_gen = torch.Generator().manual_seed(cfg.seed)
    start, elapsed, cpu_elapsed = 0, 0.0, 0.0
    if resume and ckpt.is_file():
        method, state = method_from_checkpoint(ckpt, with_optimizers=True)
        if state["config"] != cfg.raw:
            raise CheckpointError(f"{ckpt}: was trained with a different config; use another --out or drop --resume")
        start, elapsed = int(state["step"]), float(state.get("elapsed_s", 0.0))
        cpu_elapsed = float(state.get("cpu_s", 0.0))
        torch.set_rng_state(state["rng"]["torch"])
        batch_gen.set_state(state["rng"]["batches"])
    total = cfg.train.steps
    writer = None
    if log_tensorboard and start < total:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir / "tb"), purge_step=start if start else None)
    method.train(True)
    t0 = time.perf_counter() - elapsed
    c0 = time.process_time() - cpu_elapsed  # CPU seconds of this process: comparable across machine loads
    bs = cfg.train.batch_size
    bar = tqdm(range(start, total), initial=start, total=total, desc=f"adapt {cfg.method}", disable=not progress,
               dynamic_ncols=True, leave=False)
    for step in bar:
        xs = ys = xt = yt = None
        if domains.xs is not None:
            xs, ys = _batch(domains.xs, domains.ys, bs, batch_gen)
        if domains.xt is not None and (method.needs_target or cfg.method == "oracle"):
            xt, yt = _batch(domains.xt, domains.yt, bs, batch_gen)
        apply_lr_schedule(method, step, total, cfg.train.lr_schedule)
        logs = method.train_step(step, total, xs, ys, xt, yt)
        done = step + 1
        if writer is not None and (done % max(1, cfg.train.log_every) == 0 or done == total):
            for k, v in logs.items():
                writer.add_scalar(k, v, done)
            if progress:
                bar.set_postfix({k.split("/")[-1]: f"{v:.3g}" for k, v in list(logs.items())[:3]})
        if cfg.train.eval_every and done % cfg.train.eval_every == 0 and domains.x_eval is not None:
            for k, v in evaluate(method.predictor(), domains.x_eval, domains.y_eval, cfg.task.type).items():
                if writer is not None:
                    writer.add_scalar(f"eval/{k}", v, done)
            method.train(True)
        if done == total:
            method.finalize(domains.xt)
        if done == total or (cfg.train.checkpoint_every and done % cfg.train.checkpoint_every == 0):
            save_checkpoint(ckpt, method, done, batch_gen, {"elapsed_s": time.perf_counter() - t0,
                                                            "cpu_s": time.process_time() - c0})
    bar.close()
    if writer is not None:
        writer.close()
    if start >= total and not ckpt.is_file():  # steps == 0 is rejected by validation; defensive
        save_checkpoint(ckpt, method, total, batch_gen, {})
    state = read_checkpoint(ckpt)
    summary: dict[str, Any] = {"method": cfg.method, "steps": total, "train_time_s": round(float(state.get("elapsed_s", 0.0)), 1),
                               "train_cpu_s": round(float(state.get("cpu_s", 0.0)), 1)}
    if domains.x_eval is not None:
        summary["metrics"] = evaluate(method.predictor(), domains.x_eval, domains.y_eval, cfg.task.type)
    method.train(False)
    from sim2real.adapt.export import export_run

    export_run(method, run_dir)
    atomic_write_text(run_dir / "metrics.json", json.dumps(summary, indent=2))
    return method, summary


def _check_domains(cfg: AdaptConfig, method: Method, d: Domains) -> None:
    if method.needs_source_labels and (d.xs is None or d.ys is None):
        raise DatasetError(f"{cfg.source or 'config'}: data.source: method {cfg.method} needs labelled source images")
    if method.needs_target and d.xt is None:
        raise DatasetError(f"{cfg.source or 'config'}: data.target: method {cfg.method} needs target images")
    if method.uses_target_labels and d.yt is None:
        raise DatasetError(f"{cfg.source or 'config'}: data.target: method {cfg.method} needs labelled target images")
