"""Every dynamics/actuation/sensing kind really changes the simulation, and nothing compounds."""

from __future__ import annotations

import numpy as np
import pybullet as p
import pytest

from sim2real.envs import ArmReachEnv, HopperEnv
from sim2real.errors import ConfigError, EnvError, ProfileError
from sim2real.profiles import load_profile
from sim2real.sim.randomizers import RANDOMIZERS, randomizer_class
from sim2real.sim.randomizers.actuation import to_physics_steps


def _entry(param, **kw):
    return {"param": param, "distribution": "constant", "value": kw.pop("value", 1.0), **kw}


def _arm(params=None, **kw):
    return ArmReachEnv("kuka_iiwa", profile={"params": params or {}}, max_episode_steps=None, **kw)


def _rollout(env, actions, seed=0, options=None):
    obs, _ = env.reset(seed=seed, options=options)
    out = [obs]
    for a in actions:
        out.append(env.step(a)[0])
    return np.array(out)


ACTIONS = [np.full(7, 0.8)] * 6 + [np.full(7, -0.5)] * 6


def test_registry_has_every_dynamics_actuation_sensing_kind():
    kinds = {"link_mass", "link_inertia", "com_offset", "lateral_friction", "spinning_friction",
             "rolling_friction", "restitution", "joint_damping", "joint_friction", "armature", "gravity",
             "motor_strength", "position_gain", "velocity_gain", "action_latency", "observation_latency",
             "action_noise", "observation_noise", "push", "model_param"}
    assert kinds <= set(RANDOMIZERS)
    with pytest.raises(ProfileError, match="no randomizer"):
        randomizer_class("no_such_kind")


def test_heavier_links_change_the_trajectory():
    env = _arm({"link_mass": _entry("link_mass", operation="scale")})
    try:
        ref = _rollout(env, ACTIONS, options={"params": {"link_mass": 1.0}})
        heavy = _rollout(env, ACTIONS, options={"params": {"link_mass": 4.0}})
        assert np.abs(heavy - ref).max() > 1e-3
        m = p.getDynamicsInfo(env.world.robot_id, 3, physicsClientId=env.world.client)
        assert m[0] == pytest.approx(4 * env.world.nominal["links"]["lbr_iiwa_link_4"]["mass"])
        assert m[2][0] == pytest.approx(4 * env.world.nominal["links"]["lbr_iiwa_link_4"]["inertia"][0])
    finally:
        env.close()


def test_no_compounding_across_resets_and_profile_swap():
    env = _arm({"link_mass": _entry("link_mass", value=2.0), "joint_damping": _entry("joint_damping", value=3.0),
                "gravity": _entry("gravity", value=[0.0, 0.0, -1.0])})
    w = env.world
    try:
        for seed in range(3):
            env.reset(seed=seed)
            mass = p.getDynamicsInfo(w.robot_id, 2, physicsClientId=w.client)[0]
            assert mass == pytest.approx(2 * w.nominal["links"]["lbr_iiwa_link_3"]["mass"])
            assert np.allclose(w.current["joints"]["damping"], 1.5)
            assert np.allclose(w.current["gravity"], [0, 0, -10.81])
        env.set_profile("nominal")
        _, info = env.reset(seed=0)
        assert info["randomization"] == {}
        assert p.getDynamicsInfo(w.robot_id, 2, physicsClientId=w.client)[0] == pytest.approx(
            w.nominal["links"]["lbr_iiwa_link_3"]["mass"])
        assert np.allclose(w.current["joints"]["damping"], 0.5) and np.allclose(w.current["gravity"], [0, 0, -9.81])
    finally:
        env.close()


def test_randomize_false_keeps_the_world_and_params_pin_draws():
    env = _arm({"link_mass": {"param": "link_mass", "distribution": "uniform", "low": 0.5, "high": 2.0}})
    try:
        _, info1 = env.reset(seed=1)
        _, info2 = env.reset(options={"randomize": False})
        assert info1["randomization"] == info2["randomization"]
        _, info3 = env.reset()
        assert info3["randomization"] != info1["randomization"]
        _, info4 = env.reset(options={"params": {"link_mass": 1.5}})
        nominal = env.world.nominal["links"]["lbr_iiwa_link_2"]["mass"]
        assert info4["randomization"]["link_mass"]["lbr_iiwa_link_2"] == pytest.approx(1.5 * nominal)
        with pytest.raises(EnvError, match="not in profile"):
            env.reset(options={"params": {"nope": 1.0}})
        with pytest.raises(EnvError, match="unknown reset option"):
            env.reset(options={"bogus": 1})
    finally:
        env.close()


def test_damping_slows_motion():
    env = _hopper({"d": _entry("joint_damping", operation="abs")})
    try:
        speeds = []
        for d in (0.0, 20.0):
            env.reset(seed=0, options={"params": {"d": d}})
            for _ in range(6):  # the foot's armature (1.0) sets the damping time constant J/d
                env.step(np.array([0.0, 0.0, 0.2]))
            speeds.append(abs(env.world.joint_state()[1][2]))
        assert speeds[1] < 0.8 * speeds[0]
    finally:
        env.close()


def _hopper(params):
    return HopperEnv(profile={"params": params}, max_episode_steps=None)


def test_floor_friction_changes_sliding():
    """With gravity tilted sideways the hopper slides on ice but not on rubber."""
    tilt = _entry("gravity", value=[3.0, 0.0, 0.0])
    env = _hopper({"tilt": tilt, "floor": _entry("lateral_friction", targets=["floor"], operation="abs")})
    try:
        slide = []
        for mu in (0.02, 2.0):
            env.reset(seed=0, options={"params": {"floor": mu}})
            foot = env.world.link_index["foot"]
            x0 = env.world.link_position(foot)[0]
            for _ in range(40):
                env.step(np.zeros(3))
            slide.append(abs(env.world.link_position(foot)[0] - x0))
        assert slide[0] > 3 * slide[1]
    finally:
        env.close()


def test_contact_coefficients_reach_pybullet():
    env = _arm({k: _entry(k, targets=["floor"], operation="abs", value=v) for k, v in
                (("spinning_friction", 0.03), ("rolling_friction", 0.002), ("restitution", 0.4))})
    try:
        env.reset(seed=0)
        info = p.getDynamicsInfo(env.world.floor_id, -1, physicsClientId=env.world.client)
        assert info[5] == pytest.approx(0.4) and info[6] == pytest.approx(0.002) and info[7] == pytest.approx(0.03)
    finally:
        env.close()


def test_gravity_changes_free_motion():
    env = _arm({"g": _entry("gravity", value=[0.0, 0.0, 0.0])}, action_mode="joint_velocity")
    env.world.mode = "torque"  # free fall: nothing but gravity acts
    try:
        finals = {}
        for gz in (0.0, 9.81):  # add to the nominal -9.81
            env.reset(seed=0, options={"params": {"g": [0.0, 0.0, gz]}})
            q0 = env.world.joint_state()[0]
            for _ in range(5):
                env.world.step(np.zeros(7))
            finals[gz] = np.abs(env.world.joint_state()[0] - q0).max()
        assert finals[9.81] < 1e-9 < 1e-3 < finals[0.0]
    finally:
        env.close()


def test_motor_strength_clips_torque():
    env = _hopper({"s": _entry("motor_strength")})
    w = env.world
    try:
        accel = {}
        for s in (1.0, 0.1):
            env.reset(seed=0, options={"params": {"s": s}})
            assert np.allclose(w.effort_limit, 200 * s)
            _, qd0 = w.joint_state()
            env.step(np.array([0.0, 0.0, 1.0]))
            accel[s] = abs(w.joint_state()[1][2] - qd0[2])
        assert accel[0.1] < 0.5 * accel[1.0]
    finally:
        env.close()


def test_joint_friction_holds_small_torques_in_torque_mode():
    env = _hopper({"f": _entry("joint_friction", operation="abs")})
    w = env.world
    try:
        moved = {}
        for f in (0.0, 150.0):
            env.reset(seed=0, options={"params": {"f": f}})
            q0 = w.joint_state()[0]
            for _ in range(3):
                env.step(np.array([0.0, 0.0, 0.3]))  # 60 N·m on the foot
            moved[f] = abs(w.joint_state()[0][2] - q0[2])
        assert moved[150.0] < 0.1 * moved[0.0]
    finally:
        env.close()


def test_joint_friction_in_position_mode_slows_tracking():
    env = _arm({"f": _entry("joint_friction", operation="abs")}, action_mode="joint_velocity")
    try:
        speed = {}
        for f in (0.0, 30.0):
            obs = _rollout(env, [np.full(7, 0.5)] * 3, options={"params": {"f": f}})
            speed[f] = np.abs(obs[-1, 7:14]).sum()
        assert speed[30.0] < speed[0.0]
    finally:
        env.close()


def test_armature_slows_acceleration():
    env = _hopper({"a": _entry("armature", operation="abs")})
    w = env.world
    try:
        accel = {}
        for a in (0.0, 5.0):
            env.reset(seed=0, options={"params": {"a": a}})
            assert w.current["joints"]["armature"] == pytest.approx([a] * 3)
            qd0 = w.joint_state()[1][2]
            env.step(np.array([0.0, 0.0, 0.2]))
            accel[a] = abs(w.joint_state()[1][2] - qd0)
        assert accel[5.0] < 0.7 * accel[0.0]
    finally:
        env.close()


def test_gains_change_tracking():
    env = _arm({"kp": _entry("position_gain")})
    try:
        ref = _rollout(env, ACTIONS[:4], options={"params": {"kp": 1.0}})
        soft = _rollout(env, ACTIONS[:4], options={"params": {"kp": 0.2}})
        assert np.abs(soft - ref).max() > 1e-3
    finally:
        env.close()


def test_latency_units():
    class W:
        substeps, physics_dt = 12, 1 / 240
    assert to_physics_steps(3, "physics_steps", W) == 3
    assert to_physics_steps(2, "control_steps", W) == 24
    assert to_physics_steps(0.05, "seconds", W) == 12


def test_action_latency_delays_the_env_response():
    env = _arm({"lat": _entry("action_latency", value=24, unit="physics_steps")})  # two control steps
    try:
        obs = _rollout(env, [np.ones(7)] * 4)
        ref = _rollout(env, [np.ones(7)] * 4, options={"params": {"lat": 0}})
        still = np.abs(obs[1:3, :7] - obs[0, :7]).max()
        assert still < 0.01 < np.abs(ref[2, :7] - ref[0, :7]).max()
        assert np.abs(obs[3, :7] - obs[0, :7]).max() > 0.01
    finally:
        env.close()


def test_pushes_move_the_end_effector_and_the_hopper():
    push = {"param": "push", "targets": ["end_effector"], "distribution": "constant", "value": 3000.0,
            "when": "interval", "interval": {"steps": 1}, "duration": 0.05}
    env = _arm({"push": push})
    quiet = _arm({})
    try:
        pushed = _rollout(env, [np.zeros(7)] * 4)
        calm = _rollout(quiet, [np.zeros(7)] * 4)
        assert np.abs(pushed[-1, 14:17] - calm[-1, 14:17]).max() > 0.005
    finally:
        env.close()
        quiet.close()
    hop = _hopper({"push": {**push, "targets": ["torso"], "direction": "horizontal", "value": 500.0}})
    try:
        hop.reset(seed=0)
        x0 = hop.world.link_position(hop.world.link_index["torso"])
        hop.step(np.zeros(3))
        hop.step(np.zeros(3))
        assert np.linalg.norm(hop.world.link_position(hop.world.link_index["torso"])[:1] - x0[:1]) > 1e-3
    finally:
        hop.close()


def test_observation_noise_statistics_and_bias():
    noise = {"param": "observation_noise", "distribution": "constant", "value": 0.02,
             "bias": {"distribution": "uniform", "low": -0.05, "high": 0.05}}
    env = _arm({"n": noise})
    try:
        obs, info = env.reset(seed=3)
        bias = np.array(info["randomization"]["n"]["bias"])
        assert bias.shape == (20,) and np.abs(bias).max() <= 0.05 and np.std(bias) > 0.005
        diffs = []
        for _ in range(300):
            noisy = env.step(np.zeros(7))[0]
            diffs.append(noisy - env._observe().astype(np.float32))
        d = np.array(diffs)
        assert np.allclose(d.mean(0), bias, atol=4 * 0.02 / np.sqrt(300) + 1e-4)
        assert np.allclose(d.std(0), 0.02, rtol=0.2)
    finally:
        env.close()


def test_observation_latency_returns_older_states():
    env = _arm({"lat": _entry("observation_latency", value=1, unit="control_steps")})
    try:
        env.reset(seed=0)
        truth, seen = [env._observe()], []
        for a in ACTIONS[:6]:
            seen.append(env.step(a)[0])
            truth.append(env._observe())
        assert np.allclose(np.array(seen), np.array(truth[:-1]).astype(np.float32), atol=1e-6)
    finally:
        env.close()


def test_observation_latency_in_physics_steps():
    """12 physics steps = one control step; 6 lands between two control-step observations."""
    seqs = {}
    for value, unit in ((1, "control_steps"), (12, "physics_steps"), (6, "physics_steps"), (0, "physics_steps")):
        env = _arm({"lat": _entry("observation_latency", value=value, unit=unit)})
        try:
            seqs[(value, unit)] = _rollout(env, ACTIONS[:6])
        finally:
            env.close()
    one, twelve, six, none = (seqs[k] for k in ((1, "control_steps"), (12, "physics_steps"), (6, "physics_steps"),
                                               (0, "physics_steps")))
    assert np.array_equal(one, twelve)
    q = slice(0, 7)
    lo, hi = np.minimum(none[1:-1, q], none[2:, q]), np.maximum(none[1:-1, q], none[2:, q])
    assert np.all((six[2:, q] >= lo - 1e-4) & (six[2:, q] <= hi + 1e-4))  # between the step before and after
    assert not np.allclose(six[2:, q], none[1:-1, q]) and not np.allclose(six[2:, q], none[2:, q])


def test_action_noise_perturbs_commands():
    env = _arm({"an": _entry("action_noise", value=0.5)})
    try:
        a = _rollout(env, [np.zeros(7)] * 3, seed=0)
        b = _rollout(env, [np.zeros(7)] * 3, seed=1)
        assert np.abs(a[1:, :7] - b[1:, :7]).max() > 1e-3
    finally:
        env.close()


def test_model_param_is_stored_on_the_world():
    env = _arm({"r": {"param": "model_param", "targets": ["success_radius"], "distribution": "constant",
                      "value": 2.0}})
    try:
        env.reset(seed=0)
        assert env.world.model_params["success_radius"] == pytest.approx(0.1)
        env.set_profile("nominal")
        env.reset()
        assert env.world.model_params["success_radius"] == pytest.approx(0.05)
    finally:
        env.close()


def test_startup_entries_hold_for_the_env_and_interval_entries_fire_and_reset():
    env = _arm({"m": {"param": "link_mass", "distribution": "uniform", "low": 0.5, "high": 2.0, "when": "startup"},
                "g": {"param": "gravity", "distribution": "uniform", "low": [0, 0, -3.0], "high": [0, 0, -1.0],
                      "when": "interval", "interval": {"steps": 3}}})
    w = env.world
    try:
        _, info = env.reset(seed=0)
        first = info["randomization"]["m"]
        assert "g" not in info["randomization"] and np.allclose(w.current["gravity"], [0, 0, -9.81])
        for _ in range(2):
            env.step(np.zeros(7))
        assert np.allclose(w.current["gravity"], [0, 0, -9.81])
        info = env.step(np.zeros(7))[-1]  # third step: the interval entry fires
        assert w.current["gravity"][2] < -9.81 - 0.9 and "g" in info["randomization"]
        _, info = env.reset()
        assert info["randomization"]["m"] == first  # startup draw kept
        assert np.allclose(w.current["gravity"], [0, 0, -9.81])  # interval effect undone at reset
    finally:
        env.close()


def test_unknown_link_in_profile_fails_at_construction():
    with pytest.raises(ConfigError, match="no_such_link"):
        _arm({"m": {"param": "link_mass", "targets": ["no_such_link"], "distribution": "constant", "value": 1.0}})


def test_com_offset_on_mjcf_robot_fails_at_construction():
    with pytest.raises(ConfigError, match="needs a URDF"):
        _hopper({"c": {"param": "com_offset", "targets": ["torso"], "distribution": "constant", "value": 0.01}})


def test_profile_kinds_build_without_a_robot_bound():
    prof = load_profile({"params": {"m": _entry("link_mass")}})
    env = ArmReachEnv("franka_panda", profile=prof)
    try:
        _, info = env.reset(seed=0)
        assert set(info["randomization"]["m"]) >= {"base", "panda_link1"}
    finally:
        env.close()
