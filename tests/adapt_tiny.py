"""The tiny digits adaptation run shared by the adapt tests (a few seconds on CPU)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch

from sim2real.adapt.config import AdaptConfig, parse_config
from sim2real.adapt.methods import Method


def tiny_raw(method: str = "dann", steps: int = 4, checkpoint_every: int = 0) -> dict[str, Any]:
    """A raw config mapping: scikit-learn digits → digits on photos, 16 px images, small nets."""
    return {
        "method": method,
        "seed": 0,
        "task": {"type": "classification", "num_classes": 10},
        "data": {
            "source": {"type": "digits", "split": "source", "domain": "digits"},
            "target": {"type": "digits", "split": "target_train", "domain": "photos"},
            "target_eval": {"type": "digits", "split": "target_test", "domain": "photos"},
        },
        "network": {"image_size": 16, "channels": [8, 16], "feature_dim": 32, "head_hidden": 32,
                    "disc_hidden": 32, "gen_width": 8, "gen_blocks": 1, "noise_dim": 4},
        "train": {"steps": steps, "batch_size": 8, "lr": 0.001, "checkpoint_every": checkpoint_every,
                  "log_every": 1},
    }


def tiny_config(raw: dict[str, Any], file: str, options: dict[str, Any] | None = None, **top: Any) -> AdaptConfig:
    """Parse a copy of ``raw`` with top-level keys replaced by ``top`` and ``options`` set if given."""
    raw = copy.deepcopy(raw)
    raw.update(top)
    if options is not None:
        raw["options"] = options
    return parse_config(raw, file=file)


def interrupt_at_step(monkeypatch, cls: type, step: int, exc: type[BaseException]) -> Callable[[], None]:
    """Make ``cls.train_step`` raise ``exc`` at ``step`` (a run killed there); returns the undo."""
    orig = cls.train_step

    def cut(self, s, *args):
        if s == step:
            raise exc
        return orig(self, s, *args)

    monkeypatch.setattr(cls, "train_step", cut)
    return lambda: monkeypatch.setattr(cls, "train_step", orig)


def assert_same_modules(a: Method, b: Method, what: str = "") -> None:
    """Every module's state dict of method ``a`` equals ``b``'s (e.g. an uncut run and a resumed one)."""
    for name, mod in a.modules.items():
        for (k, x), y in zip(mod.state_dict().items(), b.modules[name].state_dict().values()):
            torch.testing.assert_close(x, y, msg=f"{what}{name}.{k} differs after resume")
