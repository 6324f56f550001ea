"""Randomizers of the visual profile kinds, registered in :data:`sim2real.sim.randomizers.RANDOMIZERS`.

Kinds: ``texture``, ``link_color``, ``light_direction``, ``light_color``,
``light_ambient``, ``light_diffuse``, ``light_specular``, ``camera_position``,
``camera_orientation``, ``camera_fov``, ``distractors`` (see ``docs/profiles.md`` and
``docs/visuals.md``). Each computes the final value ``entry.apply_op(nominal, draw)``
against the nominal look (white base colour, :data:`~sim2real.sim.visuals.state.NOMINAL_LIGHT`,
the world's nominal camera) and writes it through :mod:`sim2real.sim.visuals.state`.
Extra randomness (texture pattern/tint/variant, distractor shapes, sizes, poses and
colours) comes from the env's generator passed to :meth:`apply`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim2real.profiles import Sample
from sim2real.sim.randomizers.base import Randomizer, plain, register_randomizer
from sim2real.sim.visuals.state import (
    apply_camera,
    apply_distractors,
    apply_light,
    apply_link_colors,
    apply_textures,
    nominal_camera_value,
    nominal_light_value,
    world_visuals,
)
from sim2real.sim.visuals.distractors import SHAPES
from sim2real.sim.visuals.primitives import PATTERNS

#: visual changes run after every dynamics randomizer (``com_offset`` rebuilds the body)
VISUAL_ORDER = 90


class _VisualLinkRandomizer(Randomizer):
    """Targets are robot link names, ``base`` and ``floor``."""

    order = VISUAL_ORDER

    def validate(self) -> None:
        known = set(self.world.link_index) | ({"floor"} if self.world.floor_id >= 0 else set())
        bad = [t for t in self.targets if t not in known]
        if bad:
            self.fail(f"unknown link(s) {bad} for robot {self.world.robot.name!r}; known: {sorted(known)}")

    def _colors(self, sample: Sample) -> np.ndarray:
        dim = sample.values.shape[1]
        return np.clip(np.stack([self.entry.apply_op(np.ones(dim), row) for row in sample.values]), 0.0, 1.0)


@register_randomizer("texture")
class TextureRandomizer(_VisualLinkRandomizer):
    """Procedural texture per target; the draw is its base RGB colour in [0, 1].

    Options: ``patterns`` (subset of solid/checker/noise/gradient, chosen uniformly per
    target), ``texture_size`` (pixels).
    """

    def validate(self) -> None:
        super().validate()
        bad = [x for x in self.entry.options.get("patterns", PATTERNS) if x not in PATTERNS]
        if bad:
            self.fail(f"unknown texture pattern(s) {bad}; expected a subset of {list(PATTERNS)}")

    def apply(self, sample: Sample, rng: np.random.Generator) -> dict[str, Any]:
        colors = self._colors(sample)
        opts = self.entry.options
        recipes = apply_textures(self.world, sample.targets, colors, rng,
                                 patterns=list(opts.get("patterns", PATTERNS)),
                                 texture_size=int(opts.get("texture_size", 64)))
        self.last_recipes = dict(zip(sample.targets, recipes))  # patterns etc. of this episode, for inspection
        return {t: plain(c) for t, c in zip(sample.targets, colors)}


@register_randomizer("link_color")
class LinkColorRandomizer(_VisualLinkRandomizer):
    """RGB(A) colour in [0, 1] of every visual shape of each target."""

    def apply(self, sample: Sample, rng: np.random.Generator) -> dict[str, Any]:
        colors = self._colors(sample)
        apply_link_colors(self.world, sample.targets, colors)
        return {t: plain(c) for t, c in zip(sample.targets, colors)}


class _LightRandomizer(Randomizer):
    order = VISUAL_ORDER

    def apply(self, sample: Sample, rng: np.random.Generator) -> dict[str, Any]:
        value = self.entry.apply_op(nominal_light_value(self.kind), sample.values[0])
        if self.kind == "light_direction" and not np.linalg.norm(value) > 1e-9:
            value = nominal_light_value(self.kind)  # a zero direction has no meaning; keep the nominal light
        if self.kind != "light_direction":
            value = np.clip(value, 0.0, 1.0)
        apply_light(self.world, self.kind, value)
        return {"value": plain(value)}


@register_randomizer("light_direction")
class LightDirectionRandomizer(_LightRandomizer):
    """Direction the light comes from (world frame, (3,), any length)."""


@register_randomizer("light_color")
class LightColorRandomizer(_LightRandomizer):
    """Light RGB in [0, 1]."""


@register_randomizer("light_ambient")
class LightAmbientRandomizer(_LightRandomizer):
    """TinyRenderer ambient coefficient in [0, 1]."""


@register_randomizer("light_diffuse")
class LightDiffuseRandomizer(_LightRandomizer):
    """TinyRenderer diffuse coefficient in [0, 1]."""


@register_randomizer("light_specular")
class LightSpecularRandomizer(_LightRandomizer):
    """TinyRenderer specular coefficient in [0, 1]."""


class _CameraRandomizer(Randomizer):
    order = VISUAL_ORDER

    def apply(self, sample: Sample, rng: np.random.Generator) -> dict[str, Any]:
        value = self.entry.apply_op(nominal_camera_value(self.world, self.kind), sample.values[0])
        apply_camera(self.world, self.kind, value)
        return {"value": plain(value)}


@register_randomizer("camera_position")
class CameraPositionRandomizer(_CameraRandomizer):
    """Camera eye position (m, world); ``add`` (default) jitters the nominal position."""


@register_randomizer("camera_orientation")
class CameraOrientationRandomizer(_CameraRandomizer):
    """Roll/pitch/yaw (rad) of the view about the camera's own axes (see ``CameraSpec.jittered``)."""


@register_randomizer("camera_fov")
class CameraFovRandomizer(_CameraRandomizer):
    """Vertical field of view (deg); ``add`` (default) jitters the nominal fov."""


@register_randomizer("distractors")
class DistractorRandomizer(Randomizer):
    """The draw (rounded) is the number of visual-only objects placed in ``region``.

    Options: ``shapes`` (subset of box/sphere/cylinder), ``size`` ``[low, high]`` (m),
    ``region`` ``{low: [x, y, z], high: [x, y, z]}`` (m, world).
    """

    order = VISUAL_ORDER

    def validate(self) -> None:
        bad = [x for x in self.entry.options.get("shapes", SHAPES) if x not in SHAPES]
        if bad:
            self.fail(f"unknown distractor shape(s) {bad}; expected a subset of {list(SHAPES)}")

    def apply(self, sample: Sample, rng: np.random.Generator) -> dict[str, Any]:
        count = max(0, int(np.rint(self.entry.apply_op(0.0, sample.values[0])[0])))
        opts = self.entry.options
        apply_distractors(self.world, count, rng, shapes=list(opts.get("shapes", SHAPES)),
                          size=opts.get("size", (0.02, 0.08)), region=opts.get("region"))
        return {"value": float(count)}


def restore_visuals(world: Any) -> None:
    """Undo every visual randomization of ``world``: shape colours/textures, distractors, light, camera."""
    world_visuals(world).restore_nominal()
    world.render_settings.reset()
