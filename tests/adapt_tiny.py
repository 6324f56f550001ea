"""The tiny digits adaptation run shared by the adapt tests (a few seconds on CPU)."""

from __future__ import annotations

import copy
from typing import Any

from sim2real.adapt.config import AdaptConfig, parse_config


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
