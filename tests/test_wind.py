"""The ``wind`` profile kind: a constant world-frame force on a link, held at every physics step."""

from __future__ import annotations

import numpy as np
import pybullet as p
import pytest

from sim2real.errors import ProfileError
from sim2real.profiles import load_profile
from sim2real.robots import load_robot
from sim2real.sim.quadrotor_world import QuadrotorWorld
from sim2real.sim.runner import RandomizationRunner


def _wind_profile(value: list[float], **extra) -> dict:
    return {"params": {"wind": {"distribution": "constant", "value": value, **extra}}}


def _hover(value: list[float] | None, steps: int = 48, generic: bool = False, seed: int = 0):
    """Fly the nominal quadrotor level at hover rpm (drag and ground effect off) for ``steps``
    control steps; returns (positions (steps+1, 3), velocities (steps+1, 3), mass, dt, info)."""
    robot = load_robot("quadrotor")
    world = QuadrotorWorld(robot, mode="motor")
    try:
        profile = load_profile(_wind_profile(value) if value is not None else {"params": {}}, robot=robot)
        runner = RandomizationRunner(world, profile)
        applied = runner.reset(np.random.default_rng(seed))
        world.model_params.update(drag_coeff=0.0, drag_coeff_z=0.0, ground_effect_coeff=0.0)
        world.sync_model()
        if generic:  # another hook object: the wind goes through PhysicsWorld._apply_pushes
            world.physics_step_hook = lambda: world._rotor_step()
        rpm = world.nominal_rotor.hover_rpm(world.mass(), world.gravity_norm())
        world.rotors.reset(rpm)
        cid, rid = world.client, world.robot_id
        pos, vel = [], []
        for k in range(steps + 1):
            if k:
                world.step(np.full(4, rpm))
            pos.append(p.getBasePositionAndOrientation(rid, physicsClientId=cid)[0])
            vel.append(p.getBaseVelocity(rid, physicsClientId=cid)[0])
        return np.array(pos), np.array(vel), world.mass(), world.control_dt, applied
    finally:
        world.close()


def test_wind_accelerates_a_hovering_drone_by_force_over_mass() -> None:
    pos, vel, m, dt, applied = _hover([0.05, 0.0, 0.0])
    assert applied["wind"]["base"] == pytest.approx((0.05, 0.0, 0.0))
    a = 0.05 / m  # 1.85 m/s²
    t = dt * (len(pos) - 1)
    assert vel[-1, 0] == pytest.approx(a * t, rel=0.02)
    assert pos[-1, 0] - pos[0, 0] == pytest.approx(0.5 * a * t**2, rel=0.03)
    assert abs(pos[-1, 1] - pos[0, 1]) < 1e-3 and abs(pos[-1, 2] - pos[0, 2]) < 5e-3
    # the compiled single-push path and the generic per-physics-step path apply the same force
    pos_g, vel_g, *_ = _hover([0.05, 0.0, 0.0], generic=True)
    np.testing.assert_allclose(pos_g, pos, atol=1e-9)


def test_zero_wind_changes_nothing() -> None:
    pos0, vel0, *_ = _hover(None, steps=24)
    pos1, vel1, _, _, applied = _hover([0.0, 0.0, 0.0], steps=24)
    assert applied["wind"]["base"] == (0.0, 0.0, 0.0)
    np.testing.assert_array_equal(pos0, pos1)
    np.testing.assert_array_equal(vel0, vel1)
    assert np.max(np.abs(pos0[-1] - pos0[0])) < 1e-3  # it hovers


def test_wind_holds_while_the_world_is_kept_and_is_redrawn_at_a_randomized_reset() -> None:
    robot = load_robot("quadrotor")
    world = QuadrotorWorld(robot)
    try:
        profile = load_profile({"params": {"wind": {"distribution": "uniform", "low": [-0.05, -0.05, 0.0],
                                                    "high": [0.05, 0.05, 0.0]}}}, robot=robot)
        runner = RandomizationRunner(world, profile)
        rng = np.random.default_rng(1)
        first = runner.reset(rng)["wind"]["base"]
        assert [(x.link, x.steady, x.force_list) for x in world.pushes] == [(-1, True, list(first))]
        runner.reset(rng, randomize=False)  # the same world: the same wind
        assert [x.force_list for x in world.pushes] == [list(first)]
        second = runner.reset(rng)["wind"]["base"]
        assert second != first and [x.force_list for x in world.pushes] == [list(second)]
    finally:
        world.close()


def test_wind_on_an_arm_link_deflects_it() -> None:
    import gymnasium as gym

    import sim2real.envs  # noqa: F401

    finals = []
    for force in ([0.0, 0.0, 0.0], [0.0, 0.0, -40.0]):
        env = gym.make("sim2real/KukaReach-v0", profile=_wind_profile(force, targets=["end_effector"]))
        env.reset(seed=0)
        zero = np.zeros(env.action_space.shape)
        for _ in range(30):
            env.step(zero)
        w = env.unwrapped.world
        finals.append(np.array(p.getLinkState(w.robot_id, w.ee_index, physicsClientId=w.client)[0]))
        env.close()
    assert finals[1][2] < finals[0][2] - 1e-3  # pushed down


def test_wind_profile_validation() -> None:
    robot = load_robot("quadrotor")
    with pytest.raises(ProfileError, match=r"must lie in \[-100, 100\]"):
        load_profile(_wind_profile([500.0, 0.0, 0.0]), robot=robot)
    with pytest.raises(ProfileError, match="wind"):
        world = QuadrotorWorld(robot)
        try:
            RandomizationRunner(world, load_profile(_wind_profile([1.0, 1.0, 1.0], operation="scale"), robot=robot))
        finally:
            world.close()
    entry = load_profile(_wind_profile([0.01, 0.0, 0.0]), robot=robot).entries["wind"]
    assert entry.resolve_targets(robot) == ["base"]
    assert entry.operation == "abs"
