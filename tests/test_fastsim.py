"""The compiled hot paths (``sim2real/sim/_fastsim.c``) against their Python twins.

The extension runs the quadrotor's rotor model, body-rate and velocity controllers and the env's
observation/reward, and the torque substep loop, in C; these tests run the same worlds and envs
with it switched off
(``sim2real.sim.compiled.ENABLED``) and require the same numbers bit for bit.
"""

from __future__ import annotations

import copy
import math
import os
from typing import Any

import gymnasium as gym
import numpy as np
import pybullet as p
import pytest

import sim2real.envs  # noqa: F401  (registers the ids)
import sim2real.envs.quadrotor as quad_env
import sim2real.sim.quadrotor as quad
from sim2real.robots import load_robot
from sim2real.sim import compiled
from sim2real.sim.quadrotor_world import QuadrotorWorld

needs_kernel = pytest.mark.skipif(not compiled.module(), reason="the compiled code is not built or is switched off")

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


def test_kernel_is_built():
    """CI installs with a C compiler: the compiled loop must be there (a silent fallback to the
    Python loop would only show as a slower benchmark)."""
    if os.environ.get("SIM2REAL_FASTSIM") == "0":
        pytest.skip("switched off by SIM2REAL_FASTSIM=0")
    assert compiled.built() and quad.kernel_available()
    world = QuadrotorWorld(load_robot("quadrotor"))
    try:
        assert world.rotors.kernel is not None
    finally:
        world.close()


def _world_run(mode: str, use_kernel: bool, monkeypatch: Any) -> list[Any]:
    """200 control steps of a QuadrotorWorld in ``mode`` starting 6 cm above the floor (ground
    effect), with action latency, base pushes (force and torque) and random commands."""
    monkeypatch.setattr(compiled, "ENABLED", use_kernel)
    world = QuadrotorWorld(load_robot("quadrotor"), mode=mode)
    try:
        assert (world.rotors.kernel is not None) == use_kernel
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


@needs_kernel
@pytest.mark.parametrize("mode", ["motor", "thrust_rates", "velocity"])
def test_kernel_world_matches_python_world(mode, monkeypatch):
    compiled = _world_run(mode, True, monkeypatch)
    python = _world_run(mode, False, monkeypatch)
    heights = [s[0][2] for s in compiled if isinstance(s, tuple) and len(s) == 8]
    assert min(heights) < 0.3  # part of the flight is in ground effect
    assert max(abs(s[2][0][0]) for s in compiled if isinstance(s, tuple) and len(s) == 8) > 0.05  # it flew
    assert _same(compiled, python)


def _env_run(env_id: str, use_kernel: bool, monkeypatch: Any, *, margin: float | None = None,
             floor_box: bool = False) -> list[Any]:
    """Seeded episodes with resets: hover-ish actions and stretches of wild ones. ``floor_box``:
    the flight box reaches below the floor, so crashes end on the floor contact."""
    monkeypatch.setattr(compiled, "ENABLED", use_kernel)
    if margin is not None:
        monkeypatch.setattr(quad_env, "FLOOR_QUERY_MARGIN", margin)
    if floor_box:
        robot = copy.deepcopy(load_robot("quadrotor"))
        robot.model_params["task"]["bounds_low"] = [-2.0, -2.0, -1.0]
        robot.model_params["task"]["max_tilt"] = 3.2  # never "flipped": falls end on the floor
        env = gym.wrappers.TimeLimit(quad_env.QuadrotorEnv(robot=robot, profile=GUSTY), 240)
    else:
        env = gym.make(env_id, profile=GUSTY)
    try:
        u = env.unwrapped
        assert (u._compiled_eval is not None) == use_kernel
        rng = np.random.default_rng(11)
        hover = u.hover_action

        def action(k: int) -> np.ndarray:
            wild = k % 60 > 25  # stretches of wild commands (falls with floor_box): crashes
            low = -1.0 if wild else -0.2
            a = rng.uniform(low, -low if not floor_box else 0.0, 4) + (0.0 if wild else hover)
            return a.astype(np.float32 if k % 3 else np.float64)
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


@needs_kernel
@pytest.mark.parametrize("env_id", ["sim2real/QuadrotorHover-v0", "sim2real/QuadrotorWaypoint-v0",
                                    "sim2real/QuadrotorHoverRates-v0", "sim2real/QuadrotorWaypointVel-v0"])
def test_kernel_env_matches_python_env(env_id, monkeypatch):
    """Observations, rewards, terminations and infos of whole episodes (crashes included)."""
    compiled = _env_run(env_id, True, monkeypatch)
    python = _env_run(env_id, False, monkeypatch)
    if "Vel" not in env_id:  # (the velocity loop keeps even wild setpoints flying)
        assert sum(1 for r in compiled if len(r) == 5 and r[2]) >= 1  # crashes were exercised
    assert max(abs(float(r[0][15])) for r in compiled if len(r) == 5) > 0.1  # body rates: it manoeuvred
    assert _same(compiled, python)


@pytest.mark.parametrize("use_kernel", [True, False])
def test_skipping_the_floor_query_high_up_changes_nothing(use_kernel, monkeypatch):
    """The floor contact query is skipped while the drone is too high to touch the floor; with
    the query made at every step the episodes are the same, floor touches included."""
    if use_kernel and not compiled.module():
        pytest.skip("the compiled code is not built or is switched off")
    skipped = _env_run("sim2real/QuadrotorHover-v0", use_kernel, monkeypatch, floor_box=True)
    always = _env_run("sim2real/QuadrotorHover-v0", use_kernel, monkeypatch, margin=math.inf, floor_box=True)
    assert any(r[4]["touched_floor"] for r in skipped if len(r) == 5)  # floor touches were exercised
    assert _same(skipped, always)


@needs_kernel
def test_kernel_rejects_bad_input():
    """Misuse raises Python exceptions (no crash, nothing stepped)."""
    kern = compiled.module()
    world = QuadrotorWorld(load_robot("quadrotor"))
    try:
        k = kern.Kernel(world.client, world.robot_id)
        with pytest.raises(RuntimeError, match="set_rotor"):
            k.run(1, world.rotors, None, None, None, None, False, None)
        with pytest.raises(ValueError, match="expected 36 numbers"):
            k.set_rotor([1.0] * 5)
        with pytest.raises(TypeError):
            k.set_rotor([1.0] * 35 + ["x"])
        with pytest.raises(TypeError, match="8 arguments"):
            k.run(1)
        k.set_rotor([0.5, 3e-10, *([0.0] * 12), 0.0, 0.0, 1.0, *([0.0] * 4), 0.0, 0.0, 0.0, 0.0, 0.0,
                     *([0.0] * 9), 20000.0])
        with pytest.raises(RuntimeError, match="controller"):
            k.run(1, world.rotors, world.rotors, [0.0] * 4, None, None, False, None)
        before = world.physics_step_count, p.getBasePositionAndOrientation(world.robot_id, physicsClientId=world.client)
        with pytest.raises(ValueError, match="extra_force"):
            k.run(1, world.rotors, None, None, [1.0, 2.0], None, False, None)
        assert before[1] == p.getBasePositionAndOrientation(world.robot_id, physicsClientId=world.client)
        state = quad.read_base_state(world.client, world.robot_id)
        with pytest.raises(ValueError, match="float32"):
            kern.evaluate(state, [0.0] * 4, 0.0, tuple([0.0] * 20), np.zeros(25), np.zeros(25, np.float32),
                          np.zeros(25, np.float32))
        with pytest.raises(ValueError, match="expected 20 numbers"):
            kern.evaluate(state, [0.0] * 4, 0.0, (0.0,), np.zeros(25, np.float32), np.zeros(25, np.float32),
                          np.zeros(25, np.float32))
        readonly = np.zeros(25, np.float32)
        readonly.flags.writeable = False
        with pytest.raises((ValueError, BufferError)):
            kern.evaluate(state, [0.0] * 4, 0.0, tuple([0.0] * 20), np.zeros(25, np.float32),
                          np.zeros(25, np.float32), readonly)
    finally:
        world.close()


NO_ARMATURE = {"params": {"arm": {"param": "armature", "distribution": "constant", "value": 0.0, "operation": "abs"}}}


def _hopper_run(use_compiled: bool, monkeypatch: Any, profile: Any = "epopt_hopper") -> list[Any]:
    monkeypatch.setattr(compiled, "ENABLED", use_compiled)
    env = gym.make("sim2real/Hopper-v0", profile=profile)
    try:
        assert (env.unwrapped.world._fast is not None) == use_compiled
        rng = np.random.default_rng(5)
        return _episodes(env, 2, 300, lambda k: rng.uniform(-1.2, 1.2, 3).astype(np.float32 if k % 2 else np.float64))
    finally:
        env.close()


@needs_kernel
@pytest.mark.parametrize("profile", ["epopt_hopper", NO_ARMATURE], ids=["armature", "no-armature"])
def test_compiled_torque_loop_matches_python(monkeypatch, profile):
    """The hopper's torque substeps from C and from Python: with armature (randomized 0.5-1.5,
    the joint-space armature solve, ``armature_solve`` / ``world._armature_solve``) and without
    (PhysicsWorld.step's torque fast path, ``torque_steps``)."""
    compiled_run = _hopper_run(True, monkeypatch, profile)
    python_run = _hopper_run(False, monkeypatch, profile)
    assert sum(1 for r in compiled_run if len(r) == 5 and r[2]) >= 2  # falls and resets were exercised
    assert _same(compiled_run, python_run)


@needs_kernel
def test_armature_solve_checks_its_input():
    fast = compiled.module() or compiled._built
    eye = [[1.0, 0.0], [0.0, 1.0]]
    sent, applied = fast.armature_solve(eye, [0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1], [1.0], [2.0], None, 0.002)
    assert sent == [1.0] and applied == [0.0, 1.0]  # (1 + 1)·q̈ = 2 → q̈ = 1, sent 2 − 1·1
    with pytest.raises(ValueError, match="mass matrix"):
        fast.armature_solve([[1.0]], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1], [1.0], [2.0], None, 0.002)
    with pytest.raises(ValueError, match="out of range"):
        fast.armature_solve(eye, [0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [2], [1.0], [2.0], None, 0.002)
    with pytest.raises(ValueError, match="prev"):
        fast.armature_solve(eye, [0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1], [1.0], [2.0], (eye,), 0.002)


@needs_kernel
def test_torque_steps_reports_pybullet_errors():
    world = QuadrotorWorld(load_robot("quadrotor"))
    cid = world.client
    world.close()  # a disconnected client: PyBullet raises, the loop passes it on
    with pytest.raises(p.error):
        compiled.module().torque_steps(2, p.setJointMotorControlArray, p.stepSimulation, 0, [0], p.TORQUE_CONTROL,
                                       [0.0], cid)
