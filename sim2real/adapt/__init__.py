"""Domain adaptation for sim→real perception: feature-level (DANN, ADDA), pixel-level
(PixelDA, CycleGAN) and consistency-based (self-ensembling / mean teacher) methods, image
datasets, reports, and export of the adapted encoder.

Entry points: :func:`sim2real.adapt.config.load_config`,
:func:`sim2real.adapt.report.run_experiment`, :class:`sim2real.adapt.export.AdaptedFeaturesExtractor`,
:func:`sim2real.adapt.data.build_dataset`. Heavy modules (torch) are imported lazily.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "load_config": "sim2real.adapt.config",
    "parse_config": "sim2real.adapt.config",
    "AdaptConfig": "sim2real.adapt.config",
    "run_experiment": "sim2real.adapt.report",
    "train": "sim2real.adapt.trainer",
    "AdaptedFeaturesExtractor": "sim2real.adapt.export",
    "load_encoder": "sim2real.adapt.export",
    "build_dataset": "sim2real.adapt.data",
    "ImageSet": "sim2real.adapt.images",
    "DatasetError": "sim2real.adapt.images",
    "StyleShift": "sim2real.adapt.style",
    "make_digits_split": "sim2real.adapt.digits",
    "GradientReversal": "sim2real.adapt.nets",
    "grad_reverse": "sim2real.adapt.nets",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sim2real.adapt' has no attribute {name!r}")
