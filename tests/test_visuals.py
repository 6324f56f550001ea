"""Visual randomization primitives on a plain PyBullet DIRECT client (no env needed)."""

from __future__ import annotations

import numpy as np
import pybullet as p
import pybullet_data
import pytest

from sim2real.errors import EnvError
from sim2real.sim.visuals import (
    PATTERNS,
    CameraSpec,
    DistractorSet,
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

W = H = 48
CAM = CameraSpec(position=(1.2, 0.7, 0.9), target=(0.3, 0.0, 0.35), fov=55.0)
TARGET = (0.45, 0.35, 0.6)


@pytest.fixture()
def scene():
    """Plane + KUKA arm + a red target sphere in a private DIRECT client."""
    cid = p.connect(p.DIRECT)
    p.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=cid)
    plane = p.loadURDF("plane.urdf", physicsClientId=cid)
    arm = p.loadURDF("kuka_iiwa/model.urdf", useFixedBase=True, physicsClientId=cid)
    for j, q in enumerate([0.0, 0.4, 0.0, -1.2, 0.0, 0.9, 0.0]):
        p.resetJointState(arm, j, q, physicsClientId=cid)
    vs = p.createVisualShape(p.GEOM_SPHERE, radius=0.04, rgbaColor=[1, 0, 0, 1], physicsClientId=cid)
    target = p.createMultiBody(0.0, -1, vs, basePosition=list(TARGET), physicsClientId=cid)
    yield {"client": cid, "plane": plane, "arm": arm, "target": target}
    p.disconnect(cid)


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def _red_centroid(img: np.ndarray) -> np.ndarray:
    r, g, b = (img[..., i].astype(int) for i in range(3))
    mask = (r > 80) & (g < 0.25 * r) & (b < 0.25 * r)  # pure red, not the iiwa orange
    assert mask.sum() >= 3, "target sphere not visible"
    vs, us = np.nonzero(mask)
    return np.array([us.mean() + 0.5, vs.mean() + 0.5])


# -- textures ---------------------------------------------------------------------------
def test_patterns_are_deterministic_and_distinct():
    rng = np.random.default_rng(3)
    images = {}
    for pat in PATTERNS:
        recipe = draw_texture_recipe(rng, [pat], 32)
        if pat != "solid":  # make sure the second colour is visibly different from white
            recipe = TextureRecipe(pat, (0.25, 0.5, 0.25), recipe.variant, 32)
        img = make_texture(recipe)
        assert img.shape == (32, 32, 3) and img.dtype == np.uint8
        assert np.array_equal(img, make_texture(recipe))
        images[pat] = img
    assert images["solid"].std() == 0
    for a in PATTERNS:
        for b in PATTERNS:
            if a < b:
                assert _diff(images[a], images[b]) > 10, (a, b)
    # checker is two-valued, gradient monotone along its direction, noise smooth but varied
    assert len(np.unique(images["checker"].reshape(-1, 3), axis=0)) == 2
    assert len(np.unique(images["noise"].reshape(-1, 3), axis=0)) > 20


@pytest.mark.parametrize("size", [4, 8, 64])
def test_checker_has_two_colours_at_every_size(size):
    for variant in range(4):
        img = make_texture(TextureRecipe("checker", (0.25, 0.25, 0.25), variant, size))
        assert len(np.unique(img.reshape(-1, 3), axis=0)) == 2, (size, variant)


def test_recipe_draw_is_seeded_and_validated():
    a = [draw_texture_recipe(np.random.default_rng(5)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    many = {draw_texture_recipe(np.random.default_rng(s)).pattern for s in range(40)}
    assert many == set(PATTERNS)
    with pytest.raises(EnvError, match="unknown pattern"):
        draw_texture_recipe(np.random.default_rng(0), ["plaid"])


@pytest.mark.parametrize("pattern", PATTERNS)
def test_texture_changes_render(scene, pattern):
    cid = scene["client"]
    nominal = render_rgb(cid, CAM, W, H)
    cache = TextureCache(cid)
    recipe = draw_texture_recipe(np.random.default_rng(1), [pattern], 32)
    apply_texture(cid, cache, scene["plane"], -1, recipe, (0.2, 0.7, 0.3))
    assert _diff(render_rgb(cid, CAM, W, H), nominal) > 5
    cache.close()


def test_texture_same_seed_same_bytes():
    def run(seed: int) -> bytes:
        cid = p.connect(p.DIRECT)
        try:
            p.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=cid)
            plane = p.loadURDF("plane.urdf", physicsClientId=cid)
            cache = TextureCache(cid)
            rng = np.random.default_rng(seed)
            apply_texture(cid, cache, plane, -1, draw_texture_recipe(rng, ["noise", "checker"], 32), rng.random(3))
            return render_rgb(cid, CAM, W, H).tobytes()
        finally:
            p.disconnect(cid)

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_texture_cache_is_bounded(scene):
    cid = scene["client"]
    cache = TextureCache(cid)
    rng = np.random.default_rng(0)
    patterns = ["solid", "checker"]
    for _ in range(400):
        apply_texture(cid, cache, scene["plane"], -1, draw_texture_recipe(rng, patterns, 8), rng.random(3))
    assert 1 < len(cache) <= max_distinct_textures(patterns)
    assert cache.loads == len(cache)
    before = cache.loads
    img = make_texture(TextureRecipe("checker", (0.5, 0.5, 0.5), 1, 8))
    assert cache.texture_id(img) == cache.texture_id(img.copy())
    assert cache.loads <= before + 1
    cache.close()


def test_link_color_changes_render(scene):
    cid = scene["client"]
    nominal = render_rgb(cid, CAM, W, H)
    for link in range(-1, 7):
        set_link_color(cid, scene["arm"], link, (0.0, 1.0, 0.0))
    img = render_rgb(cid, CAM, W, H)
    assert _diff(img, nominal) > 0.5
    with pytest.raises(EnvError):
        set_link_color(cid, scene["arm"], 0, (1.0, 0.0))


# -- lighting ---------------------------------------------------------------------------
@pytest.mark.parametrize("change", [
    {"direction": (-1.0, 0.8, 0.2)}, {"color": (1.0, 0.4, 0.2)}, {"ambient": 0.1},
    {"diffuse": 0.9}, {"specular": 0.9}, {"shadow": True},
])
def test_light_settings_change_render(scene, change):
    cid = scene["client"]
    nominal = render_rgb(cid, CAM, W, H, LightSettings())
    changed = render_rgb(cid, CAM, W, H, LightSettings(**change))
    assert _diff(changed, nominal) > 0.3, change
    assert np.array_equal(nominal, render_rgb(cid, CAM, W, H, LightSettings()))


# -- camera -----------------------------------------------------------------------------
def test_render_shape_and_nominal_projection(scene):
    img = render_rgb(scene["client"], CAM, 64, 48)
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8
    uv = CAM.project(np.array(TARGET), 64, 48)[0]
    assert np.linalg.norm(_red_centroid(img) - uv) < 1.5


@pytest.mark.parametrize("jitter", [
    dict(d_position=(0.0, 0.15, 0.0)), dict(d_position=(0.0, 0.0, -0.1)),
    dict(d_rpy=(0.3, 0.0, 0.0)), dict(d_rpy=(0.0, 0.08, 0.0)), dict(d_rpy=(0.0, 0.0, -0.08)),
    dict(d_fov=-15.0),
])
def test_camera_jitter_moves_target_consistently(scene, jitter):
    cid = scene["client"]
    cam = CAM.jittered(**jitter)
    uv_nom = CAM.project(np.array(TARGET), W, H)[0]
    uv = cam.project(np.array(TARGET), W, H)[0]
    assert np.linalg.norm(uv - uv_nom) > 1.5, "jitter did not move the projected target"
    assert np.linalg.norm(_red_centroid(render_rgb(cid, cam, W, H)) - uv) < 1.5


def test_camera_jitter_directions():
    target = np.array(TARGET)
    u0, v0 = CAM.project(target, W, H)[0]
    u, _ = CAM.jittered(d_rpy=(0, 0, 0.05)).project(target, W, H)[0]  # yaw left: scene moves right
    assert u > u0
    _, v = CAM.jittered(d_rpy=(0, 0.05, 0)).project(target, W, H)[0]  # pitch up: scene moves down
    assert v > v0
    zoom = CAM.jittered(d_fov=-10).project(target, W, H)[0]
    centre = np.array([W / 2, H / 2])
    assert np.linalg.norm(zoom - centre) > np.linalg.norm(np.array([u0, v0]) - centre)
    assert CAM.jittered().view_matrix() == pytest.approx(CAM.view_matrix(), abs=1e-6)


def test_camera_validation():
    with pytest.raises(EnvError, match="fov"):
        CameraSpec((1, 0, 1), (0, 0, 0), fov=0.0)
    with pytest.raises(EnvError, match="parallel"):
        CameraSpec((0, 0, 1), (0, 0, 0), up=(0, 0, 1))
    with pytest.raises(EnvError, match="near"):
        CameraSpec((1, 0, 1), (0, 0, 0), near=2.0, far=1.0)


# -- distractors ------------------------------------------------------------------------
def test_distractors_count_and_no_leak(scene):
    cid = scene["client"]
    nominal = render_rgb(cid, CAM, W, H)
    base_bodies = p.getNumBodies(physicsClientId=cid)
    ds = DistractorSet(cid)
    rng = np.random.default_rng(0)
    for i in range(20):
        n = int(rng.integers(0, 6))
        bodies = ds.spawn(rng, n, size=(0.05, 0.12), region_low=(0.3, -0.4, 0.0), region_high=(0.8, 0.4, 0.3))
        assert len(bodies) == n == len(ds.bodies)
        assert p.getNumBodies(physicsClientId=cid) == base_bodies + n
        for b in bodies:  # visual only: no collision shape
            assert p.getCollisionShapeData(b, -1, physicsClientId=cid) == ()
    ds.spawn(rng, 8, size=(0.08, 0.12), region_low=(0.3, -0.3, 0.0), region_high=(0.6, 0.3, 0.3))
    assert _diff(render_rgb(cid, CAM, W, H), nominal) > 0.3
    ds.clear()
    assert p.getNumBodies(physicsClientId=cid) == base_bodies
    assert np.array_equal(render_rgb(cid, CAM, W, H), nominal)
    with pytest.raises(EnvError, match="unknown shape"):
        ds.spawn(rng, 1, shapes=["torus"])
