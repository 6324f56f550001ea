"""Per-world visual state and the functions that apply visual profile draws to a world.

A :class:`WorldVisuals` is attached to each :class:`~sim2real.sim.world.PhysicsWorld`
(looked up with :func:`world_visuals`, kept in a weak map so it dies with the world). It
holds what must outlive a reset: the texture cache, the distractor bodies, the original
colours/textures of every shape a randomizer touched (restored by
:meth:`WorldVisuals.restore_nominal`, which is registered in ``world.restore_hooks`` so
``world.restore_nominal()`` undoes the looks with the dynamics) and the nominal camera.

Light and camera draws are written to ``world.render_settings`` (owned by the world), so
anything that renders reads one place: :func:`light_settings` and :func:`current_camera`.
"""

from __future__ import annotations

import weakref
from typing import Any, Sequence

import numpy as np
import pybullet as p

from sim2real.errors import EnvError
from sim2real.sim.visuals.distractors import SHAPES, DistractorSet
from sim2real.sim.visuals.primitives import (
    PATTERNS,
    CameraSpec,
    LightSettings,
    TextureCache,
    TextureRecipe,
    apply_texture,
    draw_texture_recipe,
    set_link_color,
)

#: nominal cameras by robot name: a three-quarter front view of the reach workspace
DEFAULT_CAMERAS: dict[str, CameraSpec] = {
    "kuka_iiwa": CameraSpec(position=(1.35, 0.65, 1.05), target=(0.3, 0.0, 0.45), fov=55.0, near=0.05, far=5.0),
    "franka_panda": CameraSpec(position=(1.35, 0.65, 1.0), target=(0.3, 0.0, 0.4), fov=55.0, near=0.05, far=5.0),
}
FALLBACK_CAMERA = CameraSpec(position=(1.4, 0.8, 1.1), target=(0.3, 0.0, 0.4), fov=55.0)
NOMINAL_LIGHT = LightSettings()


def nominal_camera(robot: Any) -> CameraSpec:
    """The robot's nominal camera: ``model_params.camera`` if the robot file has one
    (``{position, target, up?, fov?, near?, far?}``), else :data:`DEFAULT_CAMERAS`."""
    spec = getattr(robot, "model_params", {}).get("camera") if robot is not None else None
    if isinstance(spec, dict):
        try:
            return CameraSpec(position=tuple(spec["position"]), target=tuple(spec["target"]),
                              up=tuple(spec.get("up", (0.0, 0.0, 1.0))), fov=float(spec.get("fov", 60.0)),
                              near=float(spec.get("near", 0.05)), far=float(spec.get("far", 5.0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise EnvError(f"{getattr(robot, 'file', '')}: model_params.camera: expected "
                           f"{{position: [x,y,z], target: [x,y,z], fov: deg}}, got {spec!r} ({exc})") from None
    return DEFAULT_CAMERAS.get(getattr(robot, "name", ""), FALLBACK_CAMERA)


class WorldVisuals:
    """Visual bookkeeping of one world (see module docstring)."""

    def __init__(self, world: Any) -> None:
        self.client: int = world.client
        self.textures = TextureCache(world.client)
        self.distractors = DistractorSet(world.client)
        self.camera: CameraSpec = nominal_camera(getattr(world, "robot", None))
        # (body, link) -> [(rgba, texture id) per visual shape] before the first change
        self._original: dict[tuple[int, int], list[tuple[tuple[float, ...], int]]] = {}

    def remember(self, body: int, link: int) -> None:
        """Record the look of ``(body, link)`` before the first randomizer changes it."""
        key = (body, link)
        if key in self._original:
            return
        data = p.getVisualShapeData(body, flags=p.VISUAL_SHAPE_DATA_TEXTURE_UNIQUE_IDS, physicsClientId=self.client)
        self._original[key] = [(tuple(d[7]), int(d[8]) if len(d) > 8 else -1) for d in data if d[1] == link]

    def restore_nominal(self) -> None:
        """Put back every touched shape's colour and texture and remove all distractors."""
        for (body, link), shapes in self._original.items():
            for i, (rgba, tex) in enumerate(shapes):
                try:
                    p.changeVisualShape(body, link, shapeIndex=i, rgbaColor=list(rgba), textureUniqueId=tex,
                                        physicsClientId=self.client)
                except p.error:
                    pass  # the body was rebuilt or removed
        self._original.clear()
        self.distractors.clear()

    def close(self) -> None:
        self.distractors.clear()
        self.textures.close()


_VISUALS: "weakref.WeakKeyDictionary[Any, WorldVisuals]" = weakref.WeakKeyDictionary()


def world_visuals(world: Any) -> WorldVisuals:
    """The :class:`WorldVisuals` of ``world`` (created on first use)."""
    vis = _VISUALS.get(world)
    if vis is None or vis.client != world.client:
        vis = WorldVisuals(world)
        _VISUALS[world] = vis
        hooks = getattr(world, "restore_hooks", None)
        if hooks is not None:  # world.restore_nominal() (every randomized reset) undoes the looks too
            hooks.append(_restore_hook(vis))
    return vis


def _restore_hook(vis: WorldVisuals) -> Any:
    def hook(_world: Any) -> None:
        vis.restore_nominal()
    return hook


def _body_link(world: Any, target: str) -> tuple[int, int]:
    if target == "floor":
        if world.floor_id < 0:
            raise EnvError("visual randomizer targets 'floor' but the world has no floor")
        return world.floor_id, -1
    try:
        return world.robot_id, world.link_index[target]
    except KeyError:
        raise EnvError(f"visual randomizer: unknown link {target!r}; expected one of "
                       f"{sorted(world.link_index)} or 'floor'") from None


# -- appliers (draws -> world) -------------------------------------------------------------
def apply_textures(world: Any, targets: Sequence[str], colors: np.ndarray, rng: np.random.Generator,
                   patterns: Sequence[str] = PATTERNS, texture_size: int = 64) -> list[TextureRecipe]:
    """Give each target link a random procedural texture with base colour ``colors[i]`` (RGB in [0, 1]).

    The pattern, tint and variant of each target are drawn from ``rng`` in target order.
    Returns the recipes used, one per target.
    """
    vis = world_visuals(world)
    recipes = []
    for i, name in enumerate(targets):
        body, link = _body_link(world, name)
        vis.remember(body, link)
        recipe = draw_texture_recipe(rng, patterns, texture_size)
        apply_texture(vis.client, vis.textures, body, link, recipe, colors[min(i, len(colors) - 1)][:3])
        recipes.append(recipe)
    return recipes


def apply_link_colors(world: Any, targets: Sequence[str], colors: np.ndarray) -> None:
    """Set each target's RGB(A) colour (values in [0, 1])."""
    vis = world_visuals(world)
    for i, name in enumerate(targets):
        body, link = _body_link(world, name)
        vis.remember(body, link)
        set_link_color(vis.client, body, link, colors[min(i, len(colors) - 1)])


_LIGHT_FIELDS = {"light_direction": "direction", "light_color": "color", "light_ambient": "ambient",
                 "light_diffuse": "diffuse", "light_specular": "specular"}


def apply_light(world: Any, kind: str, value: np.ndarray) -> None:
    """Write a final light value (``kind`` one of the ``light_*`` kinds) to ``world.render_settings``."""
    if kind not in _LIGHT_FIELDS:
        raise EnvError(f"unknown light kind {kind!r}; expected one of {sorted(_LIGHT_FIELDS)}")
    value = np.asarray(value, float).ravel()
    rs = world.render_settings
    if kind in ("light_direction", "light_color"):
        setattr(rs, kind, value[:3].copy())
    else:
        setattr(rs, kind, float(np.clip(value[0], 0.0, 1.0)))


def nominal_light_value(kind: str) -> np.ndarray:
    """Nominal value of a ``light_*`` kind (what ``scale``/``add`` operate on)."""
    return np.atleast_1d(np.asarray(getattr(NOMINAL_LIGHT, _LIGHT_FIELDS[kind]), float))


def apply_camera(world: Any, kind: str, value: np.ndarray) -> None:
    """Write a camera jitter to ``world.render_settings`` as an offset from the nominal camera.

    ``value`` is the *final* quantity: position (m, world), roll/pitch/yaw offset (rad) or
    fov (deg) for ``camera_position`` / ``camera_orientation`` / ``camera_fov``.
    """
    cam = world_visuals(world).camera
    value = np.asarray(value, float).ravel()
    rs = world.render_settings
    if kind == "camera_position":
        rs.camera_position_offset = value[:3] - np.asarray(cam.position, float)
    elif kind == "camera_orientation":
        rs.camera_orientation_offset = value[:3].copy()
    elif kind == "camera_fov":
        rs.camera_fov_offset = float(value[0]) - cam.fov
    else:
        raise EnvError(f"unknown camera kind {kind!r}")


def nominal_camera_value(world: Any, kind: str) -> np.ndarray:
    """Nominal value of a camera kind: position (3,) m, orientation offset (3,) rad (zeros), fov (1,) deg."""
    cam = world_visuals(world).camera
    return {"camera_position": np.asarray(cam.position, float), "camera_orientation": np.zeros(3),
            "camera_fov": np.array([cam.fov])}[kind]


def apply_distractors(world: Any, count: int, rng: np.random.Generator, shapes: Sequence[str] = SHAPES,
                      size: Sequence[float] = (0.02, 0.08), region: dict | None = None) -> list[int]:
    """Replace the world's distractors by ``count`` new visual-only objects (see :class:`DistractorSet`)."""
    region = region or {"low": [0.2, -0.5, 0.0], "high": [0.9, 0.5, 0.4]}
    return world_visuals(world).distractors.spawn(rng, count, shapes, size, region["low"], region["high"])


# -- readers (world -> renderer) -----------------------------------------------------------
def light_settings(world: Any, shadow: bool = False) -> LightSettings:
    """Lighting of ``world``: its ``render_settings`` over :data:`NOMINAL_LIGHT`."""
    rs = world.render_settings
    base = NOMINAL_LIGHT

    def vec(v: Any, default: tuple) -> tuple:
        return default if v is None else tuple(float(x) for x in np.asarray(v, float).ravel()[:3])

    def num(v: Any, default: float) -> float:
        return default if v is None else float(v)

    return LightSettings(direction=vec(rs.light_direction, base.direction), color=vec(rs.light_color, base.color),
                         distance=base.distance, ambient=num(rs.light_ambient, base.ambient),
                         diffuse=num(rs.light_diffuse, base.diffuse), specular=num(rs.light_specular, base.specular),
                         shadow=shadow)


def current_camera(world: Any) -> CameraSpec:
    """The world's nominal camera moved by the jitter in ``world.render_settings``."""
    rs = world.render_settings
    cam = world_visuals(world).camera
    fov = float(np.clip(cam.fov + float(rs.camera_fov_offset), 1.0, 170.0))
    return cam.jittered(d_position=np.asarray(rs.camera_position_offset, float),
                        d_rpy=np.asarray(rs.camera_orientation_offset, float), d_fov=fov - cam.fov)
