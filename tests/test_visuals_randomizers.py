"""Visual profile kinds applied to a PhysicsWorld through the randomizer registry."""

from __future__ import annotations

import numpy as np
import pytest

from sim2real.errors import ProfileError
from sim2real.profiles import load_profile
from sim2real.robots import load_robot
from sim2real.sim.randomizers import make_randomizer, randomizer_class
from sim2real.sim.visuals import (
    current_camera,
    light_settings,
    max_distinct_textures,
    render_rgb,
    restore_visuals,
    world_visuals,
)
from sim2real.sim.world import PhysicsWorld

W = H = 40


@pytest.fixture(scope="module")
def robot():
    return load_robot("kuka_iiwa")


@pytest.fixture()
def world(robot):
    w = PhysicsWorld(robot)
    w.set_joint_state(w.home)
    yield w
    world_visuals(w).close()
    w.close()


def _render(world) -> np.ndarray:
    return render_rgb(world.client, current_camera(world), W, H, light_settings(world))


def _apply(world, params: dict, seed: int = 0) -> dict:
    profile = load_profile({"params": params}, world.robot)
    rands = sorted((make_randomizer(world, e) for e in profile.entries.values()), key=lambda r: r.order)
    rng = np.random.default_rng(seed)
    draws = profile.sample(rng, world.robot)
    return {r.entry.name: r.apply(draws[r.entry.name], rng) for r in rands if r.entry.name in draws}


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


KIND_CASES = {
    "texture": {"param": "texture", "targets": ["all", "floor"], "distribution": "uniform", "low": 0.1, "high": 0.9,
                "patterns": ["checker"], "texture_size": 16},
    "link_color": {"param": "link_color", "targets": ["all", "floor"], "distribution": "constant",
                   "value": [0.9, 0.2, 0.1]},
    "light_direction": {"param": "light_direction", "distribution": "constant", "value": [-1.0, 1.0, 0.3]},
    "light_color": {"param": "light_color", "distribution": "constant", "value": [1.0, 0.3, 0.2]},
    "light_ambient": {"param": "light_ambient", "distribution": "constant", "value": 0.1},
    "light_diffuse": {"param": "light_diffuse", "distribution": "constant", "value": 0.95},
    "light_specular": {"param": "light_specular", "distribution": "constant", "value": 0.9},
    "camera_position": {"param": "camera_position", "distribution": "constant", "value": [0.1, -0.1, 0.1]},
    "camera_orientation": {"param": "camera_orientation", "distribution": "constant", "value": [0.2, 0.1, 0.1]},
    "camera_fov": {"param": "camera_fov", "distribution": "constant", "value": -10.0},
    "distractors": {"param": "distractors", "distribution": "constant", "value": 6, "size": [0.08, 0.12],
                    "region": {"low": [0.3, -0.3, 0.0], "high": [0.7, 0.3, 0.4]}},
}


@pytest.mark.parametrize("kind", sorted(KIND_CASES))
def test_each_visual_kind_changes_the_image_and_restores(world, kind):
    assert randomizer_class(kind).kind == kind
    nominal = _render(world)
    info = _apply(world, {kind: KIND_CASES[kind]})
    assert kind in info
    assert _diff(_render(world), nominal) > 0.3, kind
    restore_visuals(world)
    assert np.array_equal(_render(world), nominal), "restore_visuals did not give back the nominal image"
    _apply(world, {kind: KIND_CASES[kind]}, seed=1)
    world.restore_nominal()  # the world's own restore runs the visual restore hook
    assert np.array_equal(_render(world), nominal), "world.restore_nominal did not restore the looks"


def test_same_seed_same_image_bytes(robot):
    images = []
    for seed in (4, 4, 5):
        w = PhysicsWorld(robot)
        w.set_joint_state(w.home)
        _apply(w, {k: v for k, v in KIND_CASES.items() if k != "link_color"}
               | {"texture": {**KIND_CASES["texture"], "patterns": ["solid", "checker", "noise", "gradient"]},
                  "light_direction": {"param": "light_direction", "distribution": "uniform",
                                      "low": [-1, -1, 0.2], "high": [1, 1, 1]}}, seed=seed)
        images.append(_render(w).tobytes())
        world_visuals(w).close()
        w.close()
    assert images[0] == images[1]
    assert images[0] != images[2]


def test_info_values(world):
    info = _apply(world, {"tex": KIND_CASES["texture"], "cam": KIND_CASES["camera_fov"],
                          "amb": KIND_CASES["light_ambient"]})
    assert set(info["tex"]) == {"base", *world.robot.links, "floor"}
    assert len(info["tex"]["floor"]) == 3 and all(0.1 <= c <= 0.9 for c in info["tex"]["floor"])
    assert info["cam"]["value"] == pytest.approx(world_visuals(world).camera.fov - 10.0)
    assert current_camera(world).fov == pytest.approx(info["cam"]["value"])
    assert info["amb"] == {"value": pytest.approx(0.1)}


def test_distractor_count_matches_draw_and_does_not_accumulate(world):
    import pybullet as p

    base = p.getNumBodies(physicsClientId=world.client)
    profile = load_profile({"params": {"d": {"param": "distractors", "distribution": "uniform", "low": 0, "high": 6}}},
                           world.robot)
    rand = make_randomizer(world, profile.entries["d"])
    rng = np.random.default_rng(0)
    counts = []
    for _ in range(20):
        draw = profile.sample(rng, world.robot)["d"]
        info = rand.apply(draw, rng)
        n = int(np.rint(draw.values[0, 0]))
        counts.append(n)
        assert info == {"value": float(n)}
        assert len(world_visuals(world).distractors.bodies) == n
        assert p.getNumBodies(physicsClientId=world.client) == base + n
    assert len(set(counts)) > 2
    restore_visuals(world)
    assert p.getNumBodies(physicsClientId=world.client) == base


def test_texture_cache_bounded_over_resets(world):
    entry = {"param": "texture", "targets": ["all", "floor"], "distribution": "uniform", "low": 0.0, "high": 1.0,
             "patterns": ["solid", "gradient"], "texture_size": 8}
    profile = load_profile({"params": {"t": entry}}, world.robot)
    rand = make_randomizer(world, profile.entries["t"])
    rng = np.random.default_rng(1)
    sizes = []
    for _ in range(60):
        rand.apply(profile.sample(rng, world.robot)["t"], rng)
        sizes.append(len(world_visuals(world).textures))
    bound = max_distinct_textures(["solid", "gradient"])
    assert sizes[-1] <= bound
    assert world_visuals(world).textures.loads == sizes[-1]
    assert sizes[-1] < 60 * 9  # textures are shared, not one per target per reset


def test_bad_targets_and_options_fail_at_construction(world):
    profile = load_profile({"params": {"c": {"param": "link_color", "targets": ["floor"], "distribution": "constant",
                                             "value": [1, 0, 0]}}}, world.robot)
    rand = make_randomizer(world, profile.entries["c"])
    assert rand.targets == ["floor"]
    with pytest.raises(ProfileError):
        load_profile({"params": {"c": {"param": "texture", "targets": ["no_such_link"], "distribution": "constant",
                                       "value": 0.5}}}, world.robot)
