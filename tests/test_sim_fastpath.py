"""Throughput shortcuts give bit-identical results to the general paths they bypass.

* ``PhysicsWorld.step``'s torque fast path (no latency queue, pushes, friction or hook) vs the
  per-physics-step path (forced by a no-op ``physics_step_hook``);
* ``SimEnv.step`` skipping the action clip when ``a·a <= 1``;
* ``QuadrotorDynamics.physics_step_at`` (state read by the caller) vs ``physics_step``;
* the float fast paths of ``HopperEnv.step`` and ``QuadrotorEnv.step`` vs ``SimEnv.step``;
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


def _env_rollouts(envs: list[Any], actions: np.ndarray, monkeypatch: Any) -> tuple[list[Any], list[Any]]:
    """Seeded rollouts with resets of ``envs[0]`` with float32 array actions (the float fast path)
    and ``envs[1]`` with the same actions as lists (the general ``SimEnv.step``), counting
    ``SimEnv.step`` calls: none for the first, one per step for the second."""
    from sim2real.envs.base import SimEnv

    counts = [0, 0]
    general = SimEnv.step

    def counted(self: Any, action: Any) -> Any:
        counts[envs.index(self)] += 1
        return general(self, action)
    monkeypatch.setattr(SimEnv, "step", counted)
    runs = []
    for env, as_list in zip(envs, (False, True)):
        out: list[Any] = [env.reset(seed=11)]
        for a in actions:
            res = env.step(a.tolist() if as_list else a)
            out.append(res)
            if res[2] or res[3]:
                out.append(env.reset())
        runs.append(out)
    assert counts == [0, len(actions)]
    return runs[0], runs[1]


def test_hopper_float_step_matches_general_step(monkeypatch):
    """HopperEnv.step's float path (float32 array actions, some out of range) gives what the
    general SimEnv path gives (list actions), bit for bit, info included; it does not touch
    the caller's array and leaves ``world.active`` equal to the general path's command."""
    rng = np.random.default_rng(2)
    actions = rng.uniform(-1.3, 1.3, size=(150, 3)).astype(np.float32)
    kept = actions.copy()
    envs = [HopperEnv(profile="epopt_hopper", max_episode_steps=60) for _ in range(2)]
    try:
        a, b = _env_rollouts(envs, actions, monkeypatch)
        assert np.array_equal(actions, kept)
        assert sum(1 for r in a if len(r) == 5 and (r[2] or r[3])) >= 2  # resets were exercised
        assert _same(a, b)
        assert envs[0].world._active is None  # the float path left a list, built on demand:
        assert np.array_equal(envs[0].world.active, envs[1].world.active)
        assert envs[0].world.active.dtype == np.float64
    finally:
        for env in envs:
            env.close()


@pytest.mark.parametrize("env_id", ["sim2real/QuadrotorHover-v0", "sim2real/QuadrotorWaypoint-v0",
                                    "sim2real/QuadrotorHoverRates-v0", "sim2real/QuadrotorHoverVel-v0"])
def test_quadrotor_float_step_matches_general_step(env_id, monkeypatch):
    """QuadrotorEnv.step's float path (action latency, frequent wind gusts, every action mode)
    gives what the general path gives, bit for bit."""
    import gymnasium as gym

    profile = {"extends": "quadrotor", "params": {"wind_gust": {
        "param": "push", "targets": ["base"], "distribution": "uniform", "low": 0.0, "high": 0.1,
        "operation": "abs", "direction": "horizontal", "duration": 0.1, "when": "interval",
        "interval": {"seconds": [0.15, 0.3]}}}}
    rng = np.random.default_rng(3)
    envs = [gym.make(env_id, profile=profile).unwrapped for _ in range(2)]
    try:
        hover = envs[0].hover_action
        actions = (hover + rng.uniform(-0.15, 0.15, size=(150, 4))).astype(np.float32)
        actions[::17] = rng.uniform(-1.4, 1.4, size=(len(actions[::17]), 4))  # some clipped
        a, b = _env_rollouts(envs, actions, monkeypatch)
        assert envs[0].runner.has_interval
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
    """PhysicsWorld.step with a list of floats (torque fast path and general path) equals the array
    command; ``active`` is an array either way."""
    from sim2real.sim.world import PhysicsWorld

    robot = load_robot("hopper")
    cmds = np.random.default_rng(4).uniform(-250.0, 250.0, size=(20, 3))  # some beyond the effort limit
    runs = []
    for as_list, delay in ((False, 0), (True, 0), (False, 2), (True, 2)):
        world = PhysicsWorld(robot)
        try:
            world.mode = "torque"
            world.reset_control()
            world.action_delay = delay  # 2: the queue (general path) takes the list
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
