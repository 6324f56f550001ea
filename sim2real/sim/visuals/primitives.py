"""Visual domain randomization on a PyBullet client: textures, colours, lighting, camera.

Everything here works on a plain physics client id (``p.DIRECT``), so it is usable and
testable without an env. The profile-driven randomizers that call it live in
:mod:`sim2real.sim.visuals.randomizers`.

Images are ``uint8`` arrays of shape ``(H, W, 3)`` (RGB), rendered on the CPU with
PyBullet's TinyRenderer. Pixel coordinates are ``(u, v)``: ``u`` is the column (0 at the
left edge), ``v`` the row (0 at the top edge), both in pixels, pixel centres at ``+0.5``.

Textures
    PyBullet cannot unload or (under TinyRenderer) update a loaded texture, so every
    ``p.loadTexture`` is permanent for the life of the client. To keep memory bounded
    the texture *structure* comes from a finite set (checker cell counts, gradient
    directions, noise fields, quantised second-colour tints) and the continuous base
    colour is applied through the shape's ``rgbaColor``, which TinyRenderer multiplies
    with the texture. Textures are cached by content hash, so at most
    :func:`max_distinct_textures` textures are ever loaded per client.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass, replace
from typing import Sequence

import cv2
import numpy as np
from scipy.spatial.transform import Rotation
import pybullet as p

from sim2real.errors import EnvError

PATTERNS: tuple[str, ...] = ("solid", "checker", "noise", "gradient")
#: per-channel levels of the second colour relative to the base colour (texture tint)
TINT_LEVELS: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
#: checker cells across the texture side
CHECKER_CELLS: tuple[int, ...] = (2, 4, 8, 16)
GRADIENT_DIRECTIONS = 8
NOISE_FIELDS = 8


# ---------------------------------------------------------------------------------------
# Procedural textures
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TextureRecipe:
    """A texture fully described by discrete choices (its cache key).

    Attributes:
        pattern: one of :data:`PATTERNS`.
        tint: RGB of the second colour relative to the base colour, each in :data:`TINT_LEVELS`.
        variant: checker cell index, gradient direction index or noise field index.
        size: texture side in pixels.
    """

    pattern: str
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    variant: int = 0
    size: int = 64


def _n_variants(pattern: str) -> int:
    return {"solid": 1, "checker": len(CHECKER_CELLS), "gradient": GRADIENT_DIRECTIONS, "noise": NOISE_FIELDS}[pattern]


def max_distinct_textures(patterns: Sequence[str] = PATTERNS) -> int:
    """Upper bound on the textures one texture size can ever produce with these patterns."""
    n_tints = len(TINT_LEVELS) ** 3
    return sum(1 if pat == "solid" else n_tints * _n_variants(pat) for pat in set(patterns))


def draw_texture_recipe(rng: np.random.Generator, patterns: Sequence[str] = PATTERNS, size: int = 64) -> TextureRecipe:
    """Draw pattern (uniform over ``patterns``), tint and variant from ``rng`` (fixed draw order)."""
    if not patterns:
        raise EnvError("texture: 'patterns' must name at least one of " + ", ".join(PATTERNS))
    for pat in patterns:
        if pat not in PATTERNS:
            raise EnvError(f"texture: unknown pattern {pat!r}; expected one of {list(PATTERNS)}")
    if int(size) < 2:
        raise EnvError(f"texture: texture_size must be >= 2 pixels, got {size!r}")
    pattern = str(patterns[int(rng.integers(len(patterns)))])
    tint_idx = rng.integers(len(TINT_LEVELS), size=3)
    variant = int(rng.integers(_n_variants(pattern)))
    if pattern == "solid":
        return TextureRecipe("solid", (1.0, 1.0, 1.0), 0, int(size))
    tint = tuple(float(TINT_LEVELS[i]) for i in tint_idx)
    return TextureRecipe(pattern, tint, variant, int(size))  # type: ignore[arg-type]


def _noise_field(variant: int, size: int) -> np.ndarray:
    """Smoothed value noise in [0, 1], shape (size, size); fixed per ``variant``."""
    local = np.random.default_rng(0x5EED + variant)
    coarse = local.random((8, 8)).astype(np.float32)
    fine = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    fine += 0.35 * cv2.resize(local.random((size // 4 or 1, size // 4 or 1)).astype(np.float32), (size, size),
                              interpolation=cv2.INTER_LINEAR)
    fine = cv2.GaussianBlur(fine, (0, 0), sigmaX=max(size / 64.0, 0.5))
    lo, hi = float(fine.min()), float(fine.max())
    return (fine - lo) / max(hi - lo, 1e-6)


def make_texture(recipe: TextureRecipe) -> np.ndarray:
    """Render a recipe to an RGB image, ``uint8`` of shape ``(size, size, 3)``.

    The image blends white (the base colour once modulated by ``rgbaColor``) and the
    tint (the second colour) with a pattern-dependent weight ``t`` in [0, 1].
    """
    n = recipe.size
    if recipe.pattern == "solid":
        t = np.zeros((n, n), np.float32)
    elif recipe.pattern == "checker":
        cells = min(CHECKER_CELLS[recipe.variant], n)  # at most one cell per pixel on tiny textures
        idx = (np.arange(n) * cells) // n
        t = ((idx[:, None] + idx[None, :]) % 2).astype(np.float32)
    elif recipe.pattern == "gradient":
        ang = 2.0 * math.pi * recipe.variant / GRADIENT_DIRECTIONS
        ys, xs = np.mgrid[0:n, 0:n].astype(np.float32) / max(n - 1, 1)
        proj = xs * math.cos(ang) + ys * math.sin(ang)
        t = (proj - proj.min()) / max(float(proj.max() - proj.min()), 1e-6)
    elif recipe.pattern == "noise":
        t = _noise_field(recipe.variant, n)
    else:
        raise EnvError(f"texture: unknown pattern {recipe.pattern!r}; expected one of {list(PATTERNS)}")
    tint = np.asarray(recipe.tint, np.float32)
    rgb = (1.0 - t[..., None]) * 1.0 + t[..., None] * tint
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


class TextureCache:
    """Textures loaded into one client, keyed by the SHA-1 of their pixels.

    PNG files are written to a private temp dir only for ``p.loadTexture`` and deleted
    right after; the dir is removed by :meth:`close` (or when the cache is collected).
    """

    def __init__(self, client: int) -> None:
        self.client = int(client)
        self._ids: dict[str, int] = {}
        self._dir = tempfile.mkdtemp(prefix="sim2real-tex-")
        self._finalizer = weakref.finalize(self, shutil.rmtree, self._dir, True)
        self.loads = 0  # number of p.loadTexture calls (== len(self) unless the client was reset)

    def __len__(self) -> int:
        return len(self._ids)

    def texture_id(self, image: np.ndarray) -> int:
        """PyBullet texture id for an RGB ``uint8`` image ``(H, W, 3)``, loading it on first use."""
        image = np.ascontiguousarray(image, dtype=np.uint8)
        if image.ndim != 3 or image.shape[2] != 3:
            raise EnvError(f"texture image must be (H, W, 3) uint8, got shape {image.shape}")
        key = hashlib.sha1(repr(image.shape).encode() + image.tobytes()).hexdigest()
        tid = self._ids.get(key)
        if tid is None:
            path = os.path.join(self._dir, f"{key}.png")
            if not cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
                raise EnvError(f"could not write texture file {path}")
            try:
                tid = p.loadTexture(path, physicsClientId=self.client)
            finally:
                os.unlink(path)
            if tid < 0:
                raise EnvError(f"PyBullet could not load texture {path}")
            self._ids[key] = tid
            self.loads += 1
        return tid

    def clear(self) -> None:
        """Forget all ids (call after ``p.resetSimulation``, which unloads every texture)."""
        self._ids.clear()

    def close(self) -> None:
        self._ids.clear()
        self._finalizer()


def apply_texture(client: int, cache: TextureCache, body: int, link: int, recipe: TextureRecipe,
                  base_rgb: Sequence[float]) -> int:
    """Put ``recipe`` on every visual shape of ``(body, link)`` with base colour ``base_rgb`` in [0, 1].

    Returns the texture id.
    """
    tid = cache.texture_id(make_texture(recipe))
    rgba = [*np.clip(np.asarray(base_rgb, float)[:3], 0.0, 1.0).tolist(), 1.0]
    p.changeVisualShape(body, link, textureUniqueId=tid, rgbaColor=rgba, physicsClientId=client)
    return tid


def set_link_color(client: int, body: int, link: int, rgba: Sequence[float]) -> None:
    """Set the colour of ``(body, link)``; RGB or RGBA in [0, 1] (alpha defaults to 1)."""
    c = np.clip(np.asarray(rgba, float).ravel(), 0.0, 1.0).tolist()
    if len(c) == 3:
        c.append(1.0)
    if len(c) != 4:
        raise EnvError(f"link_color: expected 3 or 4 values, got {len(c)}")
    p.changeVisualShape(body, link, rgbaColor=c, physicsClientId=client)


# ---------------------------------------------------------------------------------------
# Lighting and camera
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LightSettings:
    """TinyRenderer lighting passed to ``p.getCameraImage``.

    Attributes:
        direction: direction the light comes from (world frame, any length).
        color: light RGB in [0, 1].
        distance: light distance (m), used for shadows.
        ambient, diffuse, specular: shading coefficients in [0, 1].
        shadow: render shadows (slower).
    """

    direction: tuple[float, float, float] = (0.4, -0.3, 1.0)
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    distance: float = 4.0
    ambient: float = 0.6
    diffuse: float = 0.35
    specular: float = 0.05
    shadow: bool = False

    def camera_image_kwargs(self) -> dict:
        return dict(lightDirection=list(self.direction), lightColor=list(self.color),
                    lightDistance=float(self.distance), shadow=int(self.shadow),
                    lightAmbientCoeff=float(self.ambient), lightDiffuseCoeff=float(self.diffuse),
                    lightSpecularCoeff=float(self.specular))


def _unit(v: np.ndarray, what: str) -> np.ndarray:
    n = float(np.linalg.norm(v))
    if not np.isfinite(n) or n < 1e-9:
        raise EnvError(f"camera: {what} must be a non-zero finite vector, got {v.tolist()}")
    return v / n


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation matrix (3, 3) about unit ``axis`` by ``angle`` rad."""
    return Rotation.from_rotvec(np.asarray(axis, dtype=float) * angle).as_matrix()


@dataclass(frozen=True)
class CameraSpec:
    """A pinhole camera. Positions in m (world frame), ``fov`` vertical in degrees.

    ``target`` is the point looked at; ``up`` need not be orthogonal to the view direction.
    """

    position: tuple[float, float, float]
    target: tuple[float, float, float]
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    fov: float = 60.0
    near: float = 0.05
    far: float = 5.0

    def __post_init__(self) -> None:
        if not (0.0 < self.fov < 180.0):
            raise EnvError(f"camera: fov must be in (0, 180) degrees, got {self.fov}")
        if not (0.0 < self.near < self.far):
            raise EnvError(f"camera: expected 0 < near < far, got near={self.near}, far={self.far}")
        fwd = _unit(np.subtract(self.target, self.position, dtype=float), "target - position")
        up = _unit(np.asarray(self.up, float), "up")
        if abs(float(fwd @ up)) > 1.0 - 1e-6:
            raise EnvError("camera: up vector is parallel to the view direction")

    def frame(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Orthonormal (forward, right, up) unit vectors of the camera, world frame."""
        fwd = _unit(np.subtract(self.target, self.position, dtype=float), "target - position")
        right = _unit(np.cross(fwd, np.asarray(self.up, float)), "right")
        return fwd, right, np.cross(right, fwd)

    def jittered(self, d_position: Sequence[float] = (0.0, 0.0, 0.0), d_rpy: Sequence[float] = (0.0, 0.0, 0.0),
                 d_fov: float = 0.0) -> "CameraSpec":
        """A camera moved by ``d_position`` (m, world) and turned by ``d_rpy`` (rad).

        Roll turns about the view direction, pitch about the camera's right axis (positive
        looks up), yaw about its up axis (positive looks left); applied roll, then pitch,
        then yaw, each about the camera's current axes. The look-at distance is kept.
        """
        fwd, right, up = self.frame()
        dist = float(np.linalg.norm(np.subtract(self.target, self.position, dtype=float)))
        roll, pitch, yaw = (float(a) for a in d_rpy)
        r_roll = _rotation(fwd, roll)
        up = r_roll @ up
        right = r_roll @ right
        r_pitch = _rotation(right, pitch)
        fwd, up = r_pitch @ fwd, r_pitch @ up
        r_yaw = _rotation(up, yaw)
        fwd = r_yaw @ fwd
        pos = np.asarray(self.position, float) + np.asarray(d_position, float)
        return replace(self, position=tuple(pos.tolist()), target=tuple((pos + dist * fwd).tolist()),
                       up=tuple(up.tolist()), fov=float(self.fov + float(d_fov)))

    def view_matrix(self) -> tuple[float, ...]:
        """PyBullet view matrix (16 floats, column-major)."""
        return p.computeViewMatrix(list(self.position), list(self.target), list(self.up))

    def projection_matrix(self, aspect: float = 1.0) -> tuple[float, ...]:
        """PyBullet projection matrix (16 floats, column-major) for ``aspect`` = width / height."""
        return p.computeProjectionMatrixFOV(float(self.fov), float(aspect), float(self.near), float(self.far))

    def project(self, points: np.ndarray, width: int, height: int) -> np.ndarray:
        """Project world points ``(N, 3)`` (or ``(3,)``) to pixels ``(N, 2)`` as ``(u, v)`` floats.

        Points behind the camera get ``nan``. Points may fall outside ``[0, W] x [0, H]``.
        """
        pts = np.atleast_2d(np.asarray(points, float))
        view = np.asarray(self.view_matrix(), float).reshape(4, 4).T
        proj = np.asarray(self.projection_matrix(width / height), float).reshape(4, 4).T
        hom = np.concatenate([pts, np.ones((len(pts), 1))], axis=1)
        clip = (proj @ view @ hom.T).T
        w = clip[:, 3:4]
        with np.errstate(divide="ignore", invalid="ignore"):
            ndc = clip[:, :2] / w
        uv = np.stack([(ndc[:, 0] + 1.0) * 0.5 * width, (1.0 - ndc[:, 1]) * 0.5 * height], axis=1)
        uv[w[:, 0] <= 0] = np.nan
        return uv


def render_rgb(client: int, camera: CameraSpec, width: int, height: int,
               light: LightSettings | None = None) -> np.ndarray:
    """Render an RGB image ``uint8 (height, width, 3)`` with TinyRenderer on ``client``."""
    if width < 1 or height < 1:
        raise EnvError(f"image size must be positive, got {width}x{height}")
    light = light or LightSettings()
    _, _, rgba, _, _ = p.getCameraImage(
        int(width), int(height), viewMatrix=camera.view_matrix(), projectionMatrix=camera.projection_matrix(width / height),
        renderer=p.ER_TINY_RENDERER, flags=p.ER_NO_SEGMENTATION_MASK, physicsClientId=client,
        **light.camera_image_kwargs())
    img = np.asarray(rgba, dtype=np.uint8).reshape(int(height), int(width), 4)
    return np.ascontiguousarray(img[:, :, :3])


__all__ = [
    "PATTERNS", "TextureRecipe", "draw_texture_recipe", "make_texture", "max_distinct_textures",
    "TextureCache", "apply_texture", "set_link_color", "LightSettings", "CameraSpec", "render_rgb",
]
