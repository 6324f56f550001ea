"""The quadrotor's compiled physics-step kernel (``sim2real/sim/_quadkernel.c``) in worlds and envs.

The kernel's arithmetic is checked against numpy references in ``tests/test_quadrotor_dynamics.py``;
here: ``QuadrotorWorld`` stepping in runs (``QuadrotorDynamics.run(n)``) flies exactly like one
kernel call per physics step (the hook path that pushes on other links or a replaced hook take),
the env's floor-query shortcut, and misuse of the kernel.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import gymnasium as gym
import numpy as np
import pybullet as p
import pytest

import sim2real.envs  # noqa: F401  (registers the ids)
import sim2real.envs.quadrotor as quad_env
from sim2real.robots import load_robot
from sim2real.sim import _quadkernel
from sim2real.sim.quadrotor_world import QuadrotorWorld

#: frequent gusts with a torque, 3 physics steps of action latency, drag and ground effect (robot.yaml)
GUSTY = {"extends": "quadrotor", "params": {
    "wind_gust": {"param": "push", "targets": ["base"], "distribution": "uniform", "low": 0.0, "high": 0.1,
                  "operation": "abs", "direction": "horizontal", "duration": 0.1, "when": "interval",
                  "interval": {"seconds": [0.1, 0.25]}},
    "action_latency": {"param": "action_latency", "distribution": "constant", "value": 0.0125, "unit": "seconds"}}}


def _same(x: Any, y: Any) -> bool:
    """Exact equality of nested results (arrays: dtype and bits, NaN equal to NaN; floats: bits)."""
    if isinstance(x, dict):
        return isinstance(y, dict) and x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
    if isinstance(x, (tuple, list)):
        return isinstance(y, (tuple, list)) and len(x) == len(y) and all(_same(u, v) for u, v in zip(x, y))
    if isinstance(x, np.ndarray):
        return isinstance(y, np.ndarray) and x.dtype == y.dtype and x.tobytes() == y.tobytes()
    if isinstance(x, float):
        return isinstance(y, float) and (x == y or (math.isnan(x) and math.isnan(y))) and \
            math.copysign(1.0, x) == math.copysign(1.0, y)
    return type(x) is type(y) and x == y


def _world_run(mode: str, per_physics_step: bool) -> list[Any]:
    """200 control steps of a QuadrotorWorld in ``mode`` starting 6 cm above the floor (ground
    effect), with action latency, base pushes (force and torque) and random commands;
    ``per_physics_step``: through the world's per-physics-step hook loop instead of runs."""
    world = QuadrotorWorld(load_robot("quadrotor"), mode=mode)
    try:
        if per_physics_step:  # another hook object: PhysicsWorld's loop, one kernel call per physics step
            world.physics_step_hook = world.push_hook = lambda *a: world._rotor_step(*a)
        world.sync_model()
        hover = world.nominal_rotor.hover_rpm(world.mass())
        world.rotors.reset(hover)
        p.resetBasePositionAndOrientation(world.robot_id, (0.0, 0.0, 0.06), (0.02, -0.01, 0.1, 0.995),
                                          physicsClientId=world.client)
        world.action_delay = 3
        rng = np.random.default_rng(7)
        weight = world.mass() * world.gravity_norm()
        out = []
        for k in range(200):
            if k % 37 == 5:
                world.start_push(-1, rng.uniform(-0.05, 0.05, 3), rng.uniform(-1e-4, 1e-4, 3), int(rng.integers(2, 9)))
            if mode == "motor":
                cmd = hover * (1.0 + rng.uniform(-0.08, 0.1, 4))
            elif mode == "thrust_rates":
                cmd = np.array([weight * rng.uniform(0.8, 1.3), *rng.uniform(-2.0, 2.0, 3)])
            else:
                cmd = np.array([*rng.uniform(-1.0, 1.0, 3), rng.uniform(-1.0, 1.0)])
            world.step(cmd.tolist() if k % 2 else cmd)
            pos, orn = p.getBasePositionAndOrientation(world.robot_id, physicsClientId=world.client)
            out.append((pos, orn, p.getBaseVelocity(world.robot_id, physicsClientId=world.client),
                        world.rotors.rpm, world.rotors.rpm_command, world.rotors.thrusts, world.rotors.yaw_torque,
                        world.physics_step_count))
            if world.rate_controller is not None:
                out.append((list(world.rate_controller._integral), world.rate_controller._prev_rate))
            if world.velocity_controller is not None:
                out.append(list(world.velocity_controller._integral))
        return out
    finally:
        world.close()


@pytest.mark.parametrize("mode", ["motor", "thrust_rates", "velocity"])
def test_runs_match_one_kernel_call_per_physics_step(mode):
    runs = _world_run(mode, False)
    steps = _world_run(mode, True)
    heights = [s[0][2] for s in runs if isinstance(s, tuple) and len(s) == 8]
    assert min(heights) < 0.3  # part of the flight is in ground effect
    assert max(abs(s[2][0][0]) for s in runs if isinstance(s, tuple) and len(s) == 8) > 0.05  # it flew
    assert _same(runs, steps)


def _env_run(*, margin: float | None = None, monkeypatch: Any) -> list[Any]:
    """Seeded episodes with resets, hover-ish actions and stretches of wild ones; the flight box
    reaches below the floor, so crashes end on the floor contact."""
    if margin is not None:
        monkeypatch.setattr(quad_env, "FLOOR_QUERY_MARGIN", margin)
    robot = copy.deepcopy(load_robot("quadrotor"))
    robot.model_params["task"]["bounds_low"] = [-2.0, -2.0, -1.0]
    robot.model_params["task"]["max_tilt"] = 3.2  # never "flipped": falls end on the floor
    env = gym.wrappers.TimeLimit(quad_env.QuadrotorEnv(robot=robot, profile=GUSTY), 240)
    try:
        rng = np.random.default_rng(11)
        hover = env.unwrapped.hover_action

        def action(k: int) -> np.ndarray:
            wild = k % 60 > 25  # stretches of falling commands: crashes
            low = -1.0 if wild else -0.2
            return (rng.uniform(low, 0.0, 4) + (0.0 if wild else hover)).astype(np.float32)
        return _episodes(env, 3, 400, action)
    finally:
        env.close()


def _episodes(env: Any, seed: int, steps: int, action: Any) -> list[Any]:
    """Reset with ``seed``, then ``steps`` steps of ``action(k)``, resetting after each episode end;
    every reset and step result in order."""
    out: list[Any] = [env.reset(seed=seed)]
    for k in range(steps):
        res = env.step(action(k))
        out.append(res)
        if res[2] or res[3]:
            out.append(env.reset())
    return out


def test_skipping_the_floor_query_high_up_changes_nothing(monkeypatch):
    """The floor contact query is skipped while the drone is too high to touch the floor; with
    the query made at every step the episodes are the same, floor touches included."""
    skipped = _env_run(monkeypatch=monkeypatch)
    always = _env_run(margin=math.inf, monkeypatch=monkeypatch)
    assert any(r[4]["touched_floor"] for r in skipped if len(r) == 5)  # floor touches were exercised
    assert _same(skipped, always)


def test_kernel_rejects_bad_input():
    """Misuse raises Python exceptions (no crash, nothing stepped)."""
    world = QuadrotorWorld(load_robot("quadrotor"))
    try:
        k = _quadkernel.Kernel(world.client, world.robot_id)
        with pytest.raises(RuntimeError, match="set_rotor"):
            k.run(1, world.rotors, None, None, None, None, False, None, True)
        with pytest.raises(ValueError, match="expected 36 numbers"):
            k.set_rotor([1.0] * 5)
        with pytest.raises(TypeError):
            k.set_rotor([1.0] * 35 + ["x"])
        with pytest.raises(TypeError, match="9 arguments"):
            k.run(1)
        k.set_rotor([0.5, 3e-10, *([0.0] * 12), 0.0, 0.0, 1.0, *([0.0] * 4), 0.0, 0.0, 0.0, 0.0, 0.0,
                     *([0.0] * 9), 20000.0])
        with pytest.raises(RuntimeError, match="controller"):
            k.run(1, world.rotors, world.rotors, [0.0] * 4, None, None, False, None, True)
        with pytest.raises(ValueError, match="n must be 1"):
            k.run(2, world.rotors, None, None, None, None, False, None, False)
        before = world.physics_step_count, p.getBasePositionAndOrientation(world.robot_id, physicsClientId=world.client)
        with pytest.raises(ValueError, match="extra_force"):
            k.run(1, world.rotors, None, None, [1.0, 2.0], None, False, None, True)
        assert before[1] == p.getBasePositionAndOrientation(world.robot_id, physicsClientId=world.client)
        with pytest.raises(ValueError, match="expected 28 numbers"):
            _quadkernel.mixer((1.0,), 0.0, [0.0, 0.0, 0.0])
    finally:
        world.close()


def test_observation_after_a_reset_is_read_after_the_reset():
    """The kernel's state read after the last physics step of an episode is not reused for the
    next episode's first observation (a reset moves the body without a physics step)."""
    env = gym.make("sim2real/QuadrotorHoverRates-v0")
    try:
        u = env.unwrapped
        env.reset(seed=1)
        for _ in range(5):
            env.step(u.hover_action.astype(np.float32))
        obs, _ = env.reset(seed=2)
        pos, rot, lin, rates = u.world.rotors.base_state()
        np.testing.assert_allclose(obs[:18], np.float32([*pos, *rot, *lin, *rates]), rtol=0, atol=1e-6)
    finally:
        env.close()
