"""Visual domain randomization: procedural textures, colours, lighting, camera jitter, distractors.

* :mod:`~sim2real.sim.visuals.primitives` — works on a bare PyBullet client id: texture
  recipes and the texture cache, :class:`LightSettings`, :class:`CameraSpec` (view,
  projection, jitter, pixel projection), :func:`render_rgb` (TinyRenderer), :class:`DistractorSet`.
* :mod:`~sim2real.sim.visuals.state` — per-world state (:func:`world_visuals`) and the
  functions that apply final values to a :class:`~sim2real.sim.world.PhysicsWorld`.
* :mod:`~sim2real.sim.visuals.randomizers` — one randomizer per visual profile kind,
  registered in :data:`sim2real.sim.randomizers.RANDOMIZERS` when this package is imported.
"""

from sim2real.sim.visuals.distractors import SHAPES, DistractorSet
from sim2real.sim.visuals.primitives import (
    PATTERNS,
    CameraSpec,
    LightSettings,
    TextureCache,
    TextureRecipe,
    apply_texture,
    draw_texture_recipe,
    make_texture,
    max_distinct_textures,
    render_rgb,
    set_link_color,
)
from sim2real.sim.visuals.state import (
    DEFAULT_CAMERAS,
    NOMINAL_LIGHT,
    WorldVisuals,
    current_camera,
    light_settings,
    nominal_camera,
    world_visuals,
)
from sim2real.sim.visuals import randomizers  # noqa: E402,F401  (registers the visual kinds)
from sim2real.sim.visuals.randomizers import restore_visuals

__all__ = [
    "PATTERNS", "SHAPES", "CameraSpec", "DistractorSet", "LightSettings", "TextureCache", "TextureRecipe",
    "apply_texture", "draw_texture_recipe", "make_texture", "max_distinct_textures", "render_rgb",
    "set_link_color", "DEFAULT_CAMERAS", "NOMINAL_LIGHT", "WorldVisuals", "current_camera", "light_settings",
    "nominal_camera", "world_visuals", "restore_visuals",
]
