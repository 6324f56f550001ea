"""Throughput shortcuts give bit-identical results to the general paths they bypass.

* ``SimEnv.step`` skipping the action clip when ``a·a <= 1``;
* a base push added to the rotor resultant (``PhysicsWorld.push_hook``) vs applied on its own;
* ``PhysicsWorld.step`` with a list command vs an array; the wrappers ``gym.make`` adds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pybullet as p
import pytest

import sim2real.envs  # noqa: F401  (registers)
from sim2real.envs import HopperEnv
from sim2real.robots import load_robot
from sim2real.sim.quadrotor_world import QuadrotorWorld


def _same(x: Any, y: Any) -> bool:
    """Exact equality of nested step results (arrays: dtype and bits; floats: ==)."""
    if isinstance(x, dict):
        return isinstance(y, dict) and x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
    if isinstance(x, (tuple, list)):
        return len(x) == len(y) and all(_same(u, v) for u, v in zip(x, y))
    if isinstance(x, np.ndarray):
        return isinstance(y, np.ndarray) and x.dtype == y.dtype and np.array_equal(x, y)
    return type(x) is type(y) and x == y


def _rollout(env: HopperEnv, actions: np.ndarray) -> list[Any]:
    out: list[Any] = [env.reset(seed=5)]
    for a in actions:
        res = env.step(a)
        out.append(res)
        if res[2] or res[3]:
            out.append(env.reset())
    return out


def test_unclipped_actions_skip_the_clip_without_changing_results():
    """Actions with a·a <= 1 go through unclipped, others are clipped: both give what a
    pre-clipped action gives, and the caller's array is never modified."""
    rng = np.random.default_rng(1)
    raw = rng.uniform(-2.0, 2.0, size=(60, 3))
    raw[::3] *= 0.2  # a·a <= 1: the no-clip branch
    envs = [HopperEnv(profile="epopt_hopper", max_episode_steps=40) for _ in range(2)]
    try:
        kept = raw.copy()
        a = _rollout(envs[0], raw)  # float64 arrays: np.asarray does not copy them
        b = _rollout(envs[1], np.clip(raw, -1.0, 1.0))
        assert np.array_equal(raw, kept)
        assert _same(a, b)
    finally:
        for env in envs:
            env.close()


def test_quadrotor_world_merged_push_matches_separate_push():
    """With the rotor model as ``push_hook``, a single base push is added to the rotor resultant
    (one applyExternalForce); with another hook object the push is applied on its own
    (``_apply_pushes``). Same trajectory bit for bit, with a push torque too."""
    robot = load_robot("quadrotor")
    runs = []
    for merged in (True, False):
        world = QuadrotorWorld(robot)
        try:
            world.sync_model()
            world.rotors.reset(world.nominal_rotor.hover_rpm(world.mass()))
            if not merged:
                world.physics_step_hook = lambda: world._rotor_step()  # not world.push_hook: pushes on their own
            calls = {"n": 0}
            inner = world._apply_pushes

            def counted() -> None:
                calls["n"] += 1
                inner()
            world._apply_pushes = counted
            rpm = world.nominal_rotor.hover_rpm(world.mass())
            states = []
            for k in range(40):
                if k in (3, 20):
                    world.start_push(-1, np.array([0.05, -0.03, 0.01]), np.array([0.0, 0.0, 1e-4]), 12)
                world.step(np.full(4, rpm * (1.0 + 0.01 * np.sin(k))))
                pos, orn = p.getBasePositionAndOrientation(world.robot_id, physicsClientId=world.client)
                states.append(np.array(pos + orn + sum(p.getBaseVelocity(world.robot_id,
                                                                         physicsClientId=world.client), ())))
            assert (calls["n"] == 0) == merged  # the merged path never calls _apply_pushes
            runs.append(np.array(states))
        finally:
            world.close()
    assert np.abs(runs[0][-1, 7:10]).max() > 0.01  # the pushes moved it
    assert np.array_equal(runs[0], runs[1])


def test_world_step_accepts_a_float_list():
    """PhysicsWorld.step with a list of floats equals the array command, with and without action
    latency; ``active`` is an array either way."""
    from sim2real.sim.world import PhysicsWorld

    robot = load_robot("hopper")
    cmds = np.random.default_rng(4).uniform(-250.0, 250.0, size=(20, 3))  # some beyond the effort limit
    runs = []
    for as_list, delay in ((False, 0), (True, 0), (False, 2), (True, 2)):
        world = PhysicsWorld(robot)
        try:
            world.mode = "torque"
            world.reset_control()
            world.action_delay = delay
            for c in cmds:
                world.step(c.tolist() if as_list else c.copy())
                assert isinstance(world.active, np.ndarray) and world.active.dtype == np.float64
            runs.append((world.active.copy(), np.array(world.joint_state()), list(world._torque)))
        finally:
            world.close()
    for x, y in ((runs[0], runs[1]), (runs[2], runs[3])):
        assert np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1]) and x[2] == y[2]
    assert max(abs(t) for t in runs[0][2]) == 200.0  # clipped to the effort limit


def test_gym_make_adds_only_the_time_limit():
    """Registered ids come with Gymnasium's TimeLimit only (the envs enforce reset-before-step
    themselves); gym.make(..., disable_env_checker=False) still adds the checker."""
    import gymnasium as gym

    from sim2real.errors import EnvError

    for env_id in ("sim2real/Hopper-v0", "sim2real/QuadrotorHover-v0", "sim2real/KukaReach-v0"):
        env = gym.make(env_id)
        try:
            assert isinstance(env, gym.wrappers.TimeLimit) and env.env is env.unwrapped
            with pytest.raises(EnvError, match="reset"):
                env.step(env.action_space.sample())
        finally:
            env.close()
    env = gym.make("sim2real/Hopper-v0", disable_env_checker=False)
    try:
        assert isinstance(env.env, gym.wrappers.PassiveEnvChecker)
    finally:
        env.close()
