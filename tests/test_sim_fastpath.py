"""Throughput shortcuts give bit-identical results to the general paths they bypass.

* ``PhysicsWorld.step``'s torque fast path (no latency queue, pushes, friction or hook) vs the
  per-physics-step path (forced by a no-op ``physics_step_hook``);
* ``SimEnv.step`` skipping the action clip when ``a·a <= 1``;
* ``QuadrotorDynamics.physics_step_at`` (state read by the caller) vs ``physics_step``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pybullet as p
import pytest

import sim2real.envs  # noqa: F401  (registers)
from sim2real.envs import HopperEnv
from sim2real.robots import load_robot
from sim2real.sim.quadrotor import QuadrotorDynamics, RotorParams, configure_body
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


@pytest.mark.parametrize("profile", ["epopt_hopper", {"params": {"observation_latency": {
    "distribution": "constant", "value": 0.006, "unit": "seconds"}}}])
def test_torque_fast_path_matches_per_physics_step_path(profile):
    """Seeded hopper rollouts (randomized dynamics; observation latency at physics-step
    resolution) are bit-identical with and without the fast path, across resets."""
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1.5, 1.5, size=(120, 3)).astype(np.float32)  # some clipped, some not
    fast, general = HopperEnv(profile=profile, max_episode_steps=50), HopperEnv(profile=profile, max_episode_steps=50)
    try:
        general.world.physics_step_hook = lambda: None  # does nothing, but forces the general loop
        calls = {"fast": 0, "general": 0}
        for name, env in (("fast", fast), ("general", general)):
            inner = env.world._step_per_physics_step

            def counted(*args: Any, _inner=inner, _name=name) -> None:
                calls[_name] += 1
                _inner(*args)
            env.world._step_per_physics_step = counted
        a, b = _rollout(fast, actions), _rollout(general, actions)
        assert calls["fast"] == 0 and calls["general"] >= len(actions)
        if isinstance(profile, dict):
            assert fast.world.observation_delay == 3  # 6 ms at 500 Hz: the capture path ran
        assert sum(1 for r in a if len(r) == 5 and (r[2] or r[3])) >= 2  # resets were exercised
        assert _same(a, b)
    finally:
        fast.close()
        general.close()


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


def test_physics_step_at_matches_physics_step():
    """The rotor step on a state the caller read (the rate-controller path) flies exactly like
    the rotor step reading it itself: same rotor speeds, thrusts and trajectory."""
    robot = load_robot("quadrotor")
    runs = []
    for shared in (False, True):
        world = QuadrotorWorld(robot)
        try:
            cid, body = world.client, world.robot_id
            p.resetBasePositionAndOrientation(body, [0.1, -0.2, 0.15], p.getQuaternionFromEuler([0.2, -0.1, 0.3]),
                                              physicsClientId=cid)  # low: in ground effect
            p.resetBaseVelocity(body, [0.3, -0.2, 0.1], [1.0, -2.0, 3.0], physicsClientId=cid)
            configure_body(cid, body)
            params = RotorParams.from_mapping(robot.model_params)
            assert params.drag_coeff > 0 and params.ground_effect_coeff > 0 and params.motor_tau > 0
            dyn = QuadrotorDynamics(cid, body, params, world.physics_dt)
            hover = params.hover_rpm(1.0 * sum(p.getDynamicsInfo(body, i, physicsClientId=cid)[0]
                                               for i in range(-1, p.getNumJoints(body, physicsClientId=cid))))
            dyn.reset(hover)
            thrusts = []
            for k in range(150):
                dyn.command_rpm([hover * (1.0 + 0.05 * np.sin(k / 7.0 + i)) for i in range(4)])
                if shared:
                    com, quat = p.getBasePositionAndOrientation(body, physicsClientId=cid)
                    lin = p.getBaseVelocity(body, physicsClientId=cid)[0]
                    dyn.physics_step_at(com, p.getMatrixFromQuaternion(quat), lin)
                else:
                    dyn.physics_step()
                thrusts.append(dyn.thrusts)
                p.stepSimulation(physicsClientId=cid)
            pos, orn = p.getBasePositionAndOrientation(body, physicsClientId=cid)
            runs.append((np.array(thrusts), dyn.rpm, np.array(pos + orn),
                         np.array(sum(p.getBaseVelocity(body, physicsClientId=cid), ()))))
        finally:
            world.close()
    assert np.abs(runs[0][3]).max() > 0.1  # it moved
    for x, y in zip(*runs):
        assert np.array_equal(x, y)
