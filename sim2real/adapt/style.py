"""Camera-style shift: make a "real camera" look from rendered images.

:class:`StyleShift` applies, in order: a blended procedural texture, lighting (brightness,
contrast, gamma, a directional illumination gradient, vignette), a per-channel colour
cast, Gaussian blur, radial lens distortion, pixel noise and JPEG compression. Every
parameter is either a fixed number (one consistent camera) or ``[low, high]`` drawn
per image; the draws come from ``numpy.random.default_rng([seed, index])``, so image
``i`` is shifted the same way whatever the batch. Lens distortion moves pixels, so
:meth:`StyleShift.map_points` moves pixel labels the same way.

Pixel values are in 0–255 units; blur sigma in pixels; ``lens_k1`` is the radial
coefficient on coordinates normalised so the half-diagonal is 1 (``< 0`` barrel).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Sequence

import numpy as np

from sim2real.errors import ConfigError

Range = tuple[float, float]

PRESETS: dict[str, dict[str, Any]] = {
    # a webcam-like look: warm cast, lower contrast, soft focus, barrel lens, sensor noise, JPEG
    "shifted_camera": {
        "texture": [0.15, 0.3], "brightness": [-25.0, 15.0], "contrast": [0.7, 0.9], "gamma": [1.1, 1.4],
        "lighting_gradient": [0.1, 0.35], "vignette": 0.35, "color_cast": [1.18, 0.98, 0.78],
        "blur_sigma": [0.6, 1.3], "lens_k1": -0.18, "noise_std": [4.0, 9.0], "jpeg_quality": [25, 55],
    },
    "none": {},
}


def _rng_range(value: Any, key: str) -> Range:
    if isinstance(value, bool):
        raise ConfigError(f"expected a number or [low, high], got {value!r}", path=[key])
    if isinstance(value, (int, float)):
        return float(value), float(value)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        lo, hi = float(value[0]), float(value[1])
        if lo > hi:
            raise ConfigError(f"low {lo} > high {hi}", path=[key])
        return lo, hi
    raise ConfigError(f"expected a number or [low, high], got {value!r}", path=[key])


@dataclass(frozen=True)
class StyleShift:
    """Parameters of the shift; each is a ``(low, high)`` range (equal bounds → fixed)."""

    texture: Range = (0.0, 0.0)            # alpha of a multiplicative low-frequency texture
    brightness: Range = (0.0, 0.0)         # added, 0–255 units
    contrast: Range = (1.0, 1.0)           # gain about the image mean
    gamma: Range = (1.0, 1.0)              # out = in ** gamma on [0, 1]
    lighting_gradient: Range = (0.0, 0.0)  # ± relative illumination across the image, random direction
    vignette: Range = (0.0, 0.0)           # relative darkening at the corners
    color_cast: tuple[float, float, float] = (1.0, 1.0, 1.0)  # RGB gains
    blur_sigma: Range = (0.0, 0.0)         # px
    lens_k1: Range = (0.0, 0.0)
    noise_std: Range = (0.0, 0.0)          # 0–255 units
    jpeg_quality: Range = (0.0, 0.0)       # 0 → no JPEG, else 1–100

    @classmethod
    def from_config(cls, spec: str | dict[str, Any]) -> "StyleShift":
        """From a preset name or a mapping (optional ``preset:`` key, then overrides)."""
        if isinstance(spec, str):
            spec = {"preset": spec}
        if not isinstance(spec, dict):
            raise ConfigError(f"expected a preset name or a mapping, got {spec!r}")
        spec = dict(spec)
        preset = spec.pop("preset", None)
        merged: dict[str, Any] = {}
        if preset is not None:
            if preset not in PRESETS:
                raise ConfigError(f"unknown preset {preset!r} (known: {sorted(PRESETS)})", path=["preset"])
            merged.update(PRESETS[preset])
        merged.update(spec)
        names = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in merged.items():
            if key not in names:
                raise ConfigError(f"unknown style key (allowed: preset, {', '.join(sorted(names))})", path=[key])
            if key == "color_cast":
                if not (isinstance(value, (list, tuple)) and len(value) == 3
                        and all(isinstance(v, (int, float)) and v >= 0 for v in value)):
                    raise ConfigError(f"expected 3 non-negative RGB gains, got {value!r}", path=[key])
                kwargs[key] = tuple(float(v) for v in value)
            else:
                kwargs[key] = _rng_range(value, key)
        if "jpeg_quality" in kwargs and kwargs["jpeg_quality"] != (0.0, 0.0):
            lo, hi = kwargs["jpeg_quality"]
            if lo < 1 or hi > 100:
                raise ConfigError("expected qualities in [1, 100]", path=["jpeg_quality"])
        for key in ("contrast", "gamma", "blur_sigma", "noise_std", "texture", "vignette"):
            if key in kwargs and kwargs[key][0] < 0:
                raise ConfigError("expected non-negative values", path=[key])
        return cls(**kwargs)

    def _draw(self, rng: np.random.Generator) -> dict[str, float]:
        out = {}
        for f in fields(self):
            if f.name != "color_cast":
                lo, hi = getattr(self, f.name)
                out[f.name] = float(rng.uniform(lo, hi)) if hi > lo else lo
        return out

    def apply(self, image: np.ndarray, seed: int, index: int) -> np.ndarray:
        """Shift one RGB uint8 image ``(H, W, 3)``; deterministic in ``(seed, index)``."""
        import cv2

        rng = np.random.default_rng([seed, index])
        p = self._draw(rng)
        h, w = image.shape[:2]
        img = image.astype(np.float32) / 255.0
        if p["texture"] > 0:
            coarse = rng.uniform(0.0, 1.0, size=(4, 4, 3)).astype(np.float32)
            fine = rng.uniform(0.0, 1.0, size=(max(2, h // 4), max(2, w // 4), 1)).astype(np.float32)
            tex = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
            tex = 0.6 * tex + 0.4 * cv2.resize(fine, (w, h), interpolation=cv2.INTER_LINEAR)[:, :, None]
            img = img * (1.0 - p["texture"]) + img * tex.clip(0, 1) * p["texture"] * 2.0
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        xn, yn = (xx - (w - 1) / 2) / (w / 2), (yy - (h - 1) / 2) / (h / 2)
        if p["lighting_gradient"] > 0:
            theta = rng.uniform(0, 2 * np.pi)
            img = img * (1.0 + p["lighting_gradient"] * (np.cos(theta) * xn + np.sin(theta) * yn))[:, :, None]
        if p["vignette"] > 0:
            img = img * (1.0 - p["vignette"] * (xn**2 + yn**2) / 2.0)[:, :, None]
        img = (img - img.mean()) * p["contrast"] + img.mean() + p["brightness"] / 255.0
        img = np.clip(img, 0.0, 1.0) ** p["gamma"]
        img = img * np.asarray(self.color_cast, dtype=np.float32)[None, None, :]
        img = np.clip(img * 255.0, 0, 255).astype(np.uint8)
        if p["blur_sigma"] > 0:
            img = cv2.GaussianBlur(img, (0, 0), p["blur_sigma"])
        if p["lens_k1"] != 0:
            img = self._distort(img, p["lens_k1"])
        if p["noise_std"] > 0:
            img = np.clip(img + rng.normal(0.0, p["noise_std"], img.shape), 0, 255).astype(np.uint8)
        if p["jpeg_quality"] > 0:
            ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                                   [cv2.IMWRITE_JPEG_QUALITY, int(round(p["jpeg_quality"]))])
            img = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        return img

    @staticmethod
    def _norm(h: int, w: int) -> float:
        return float(np.hypot(w / 2, h / 2))

    def _distort(self, img: np.ndarray, k1: float) -> np.ndarray:
        import cv2

        h, w = img.shape[:2]
        cx, cy, s = w / 2, h / 2, self._norm(h, w)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5  # pixel centres
        x, y = (xx - cx) / s, (yy - cy) / s
        f = 1.0 - k1 * (x * x + y * y)  # output pixel samples the source at p * f (k1 < 0: barrel)
        map_x, map_y = (x * f * s + cx - 0.5).astype(np.float32), (y * f * s + cy - 0.5).astype(np.float32)
        return cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)

    def map_points(self, uv: np.ndarray, size: tuple[int, int], seed: int, index: int) -> np.ndarray:
        """Where image points ``uv`` ``(..., 2)`` land in the shifted image of size ``(H, W)``.

        Image-plane convention of the camera envs: ``u`` from the left edge, ``v`` from the top
        edge, in pixels; pixel ``i`` spans ``[i, i + 1)``.
        """
        k1 = self._draw(np.random.default_rng([seed, index]))["lens_k1"]
        uv = np.asarray(uv, dtype=np.float64)
        if k1 == 0:
            return uv.copy()
        h, w = size
        cx, cy, s = w / 2, h / 2, self._norm(h, w)
        src = np.stack([(uv[..., 0] - cx) / s, (uv[..., 1] - cy) / s], axis=-1)
        out = src.copy()
        for _ in range(50):  # fixed point of out * (1 - k1 |out|^2) = src
            out = src / (1.0 - k1 * (out**2).sum(-1, keepdims=True))
        return np.stack([out[..., 0] * s + cx, out[..., 1] * s + cy], axis=-1)

    def apply_all(self, images: np.ndarray, seed: int, start: int = 0) -> np.ndarray:
        """Shift a stack ``(N, H, W, 3)``; image ``k`` uses index ``start + k``."""
        return np.stack([self.apply(im, seed, start + k) for k, im in enumerate(images)])


def pixel_label_pairs(names: Sequence[str]) -> list[tuple[int, int]]:
    """Column index pairs ``(u, v)`` for label names ``<x>_u`` / ``<x>_v`` (pixel coordinates)."""
    pairs = []
    for i, n in enumerate(names):
        if n.endswith("_u") and f"{n[:-2]}_v" in names:
            pairs.append((i, list(names).index(f"{n[:-2]}_v")))
    return pairs
