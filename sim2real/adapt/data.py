"""Datasets for adaptation runs: build an :class:`ImageSet` from a config ``data`` spec.

Spec types (see ``docs/adapt.md``):

- ``digits``: the offline digits benchmark (:mod:`sim2real.adapt.digits`);
- ``folder``: PNG/JPEG images, optional ``labels.csv``;
- ``rosbag``: a ``sensor_msgs/msg/Image`` or ``CompressedImage`` topic of a ROS 2 bag;
- ``render``: images rendered from a camera env under a randomization profile, with
  labels (:mod:`sim2real.adapt.render`), cached on disk as PNG + ``labels.csv``.

Any spec may add ``style:`` (a :class:`~sim2real.adapt.style.StyleShift` preset or
mapping) and ``style_seed:``; pixel labels (``*_u``/``*_v`` columns) follow the lens
distortion of the shift.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sim2real.adapt.images import DatasetError, ImageSet, load_image_folder, load_rosbag_images, write_image_folder
from sim2real.adapt.style import StyleShift, pixel_label_pairs
from sim2real._io import atomic_write_text

__all__ = [
    "DatasetError", "ImageSet", "build_dataset", "apply_style", "load_image_folder", "load_rosbag_images",
    "write_image_folder", "save_dataset", "load_dataset",
]


def apply_style(data: ImageSet, style: str | dict[str, Any], seed: int = 0) -> ImageSet:
    """Shift ``data`` to another camera style; moves ``*_u``/``*_v`` pixel labels with the lens distortion."""
    shift = StyleShift.from_config(style)
    images = shift.apply_all(data.images, seed)
    labels = None if data.labels is None else data.labels.copy()
    if labels is not None:
        for iu, iv in pixel_label_pairs(data.label_names):
            for i in range(len(labels)):
                labels[i, [iu, iv]] = shift.map_points(labels[i, [iu, iv]], data.size, seed, i)
    meta = dict(data.meta, style=style, style_seed=seed)
    return ImageSet(images, labels, data.label_names, data.files, meta)


def save_dataset(data: ImageSet, folder: str | Path, progress: bool = True) -> Path:
    """Write PNG files + ``labels.csv`` + ``meta.json`` (the spec and seed that made it)."""
    folder = Path(folder)
    write_image_folder(data, folder, progress=progress)
    atomic_write_text(folder / "meta.json", json.dumps(_jsonable(data.meta), indent=2, sort_keys=True))
    return folder


def load_dataset(folder: str | Path) -> ImageSet:
    """Read a folder written by :func:`save_dataset` (or any image folder)."""
    data = load_image_folder(folder)
    meta_file = Path(folder) / "meta.json"
    if meta_file.is_file():
        try:
            data.meta.update(json.loads(meta_file.read_text(encoding="utf-8")))
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{meta_file}: invalid JSON: {exc}") from None
    return data


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def build_dataset(
    spec: dict[str, Any], image_size: int, cache_dir: str | Path | None = None, progress: bool = True, seed: int = 0,
    split_seed: int = 0,
) -> ImageSet:
    """Build the dataset of one validated spec, resized to ``image_size`` × ``image_size``.

    :param cache_dir: where ``render`` specs without their own ``cache:`` write their PNGs.
    :param seed: seed of this set, used where the spec has no ``seed`` of its own.
    :param split_seed: ``digits`` specs without their own ``split_seed``: the digit split, which
        must be the same for every set of a run so that they never share a digit.
    """
    kind = spec["type"]
    if kind == "digits":
        from sim2real.adapt.digits import make_digits_split

        data = make_digits_split(spec["split"], spec.get("domain", "digits"), size=image_size,
                                 repeats=spec.get("repeats", 1), seed=spec.get("seed", seed),
                                 split_seed=spec.get("split_seed", split_seed))
    elif kind == "folder":
        data = load_image_folder(spec["path"], limit=spec.get("limit"))
    elif kind == "rosbag":
        data = load_rosbag_images(spec["path"], spec["topic"], limit=spec.get("limit"), every=spec.get("every", 1))
    elif kind == "render":
        data = _cached_render(spec, cache_dir, progress, seed)
    else:  # validated earlier
        raise DatasetError(f"unknown data type {kind!r}")
    if "style" in spec:
        # style applied before resizing: blur/noise/JPEG act at the camera's resolution
        data = apply_style(data, spec["style"], spec.get("style_seed", seed))
    return _resize_labels(data, image_size)


def _resize_labels(data: ImageSet, size: int) -> ImageSet:
    """Resize images and rescale ``*_u``/``*_v`` pixel labels to the new resolution."""
    h, w = data.size
    out = data.resized(size)
    if out is not data and data.labels is not None:
        labels = data.labels.copy()
        for iu, iv in pixel_label_pairs(data.label_names):
            labels[:, iu] = labels[:, iu] * size / w  # image-plane pixels: pixel i spans [i, i+1)
            labels[:, iv] = labels[:, iv] * size / h
        out.labels = labels
    return out


def _cached_render(spec: dict[str, Any], cache_dir: str | Path | None, progress: bool, seed: int) -> ImageSet:
    from sim2real.adapt.render import RenderSpec, render_dataset

    rspec = RenderSpec.from_spec(spec, default_seed=seed)
    folder = Path(spec["cache"]) if "cache" in spec else (Path(cache_dir) / rspec.key() if cache_dir else None)
    if folder is not None and (folder / "meta.json").is_file():
        data = load_dataset(folder)
        if data.meta.get("render") == _jsonable(rspec.to_dict()) and len(data) == rspec.n:
            return data
    data = render_dataset(rspec, progress=progress)
    if folder is not None:
        save_dataset(data, folder, progress=progress)
    return data
