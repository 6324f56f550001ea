"""Arm reach and hopper envs: API checks, seeding, layout/spec, task logic, CLI."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import sim2real.envs  # noqa: F401  (registers)
from sim2real.cli.main import main
from sim2real.envs import ENV_SPECS, ArmReachEnv, HopperEnv
from sim2real.errors import EnvError

MY_IDS = sorted(ENV_SPECS)


@pytest.mark.parametrize("env_id", MY_IDS)
def test_env_passes_gymnasium_and_sb3_checkers(env_id):
    env = gym.make(env_id)
    try:
        check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(env.unwrapped, warn=True)
        assert env.spec.max_episode_steps == ENV_SPECS[env_id][2]
    finally:
        env.close()


@pytest.mark.parametrize("env_id", MY_IDS)
def test_layout_and_action_spec_match_spaces(env_id):
    env = gym.make(env_id).unwrapped
    try:
        layout = env.observation_layout()
        assert sum(n for _, n in layout) == env.observation_space.shape[0]
        spec = env.action_spec()
        assert set(spec) == {"mode", "joints", "scale", "offset", "low", "high"}
        n = env.action_space.shape[0]
        assert all(len(spec[k]) == n for k in ("joints", "scale", "offset", "low", "high"))
        assert spec["joints"] == env.robot.joint_names
    finally:
        env.close()


@pytest.mark.parametrize("env_id,profile", [("sim2real/KukaReach-v0", "arm_dynamics_full"),
                                            ("sim2real/PandaReachVel-v0", "peng2018_arm"),
                                            ("sim2real/Hopper-v0", "epopt_hopper")])
def test_same_seed_reproduces_bit_for_bit(env_id, profile):
    def run(seed):
        env = gym.make(env_id, profile=profile)
        env.action_space.seed(123)
        obs, info = env.reset(seed=seed)
        seq, infos = [obs], [info["randomization"]]
        for i in range(30):
            obs, r, term, trunc, info = env.step(env.action_space.sample())
            seq.append(obs)
            if term or trunc:
                obs, info = env.reset()
                infos.append(info["randomization"])
        obs, info = env.reset()
        infos.append(info["randomization"])
        env.close()
        return np.array(seq), infos

    a, ia = run(7)
    b, ib = run(7)
    c, ic = run(8)
    assert np.array_equal(a, b) and ia == ib
    assert not np.array_equal(a, c) and ia != ic


def test_reseeding_a_used_env_reproduces_a_fresh_one():
    prof = {"params": {"m": {"param": "link_mass", "distribution": "uniform", "low": 0.5, "high": 2.0,
                             "when": "startup"},
                       "d": {"param": "joint_damping", "distribution": "uniform", "low": 0.5, "high": 2.0},
                       "c": {"param": "com_offset", "targets": ["lbr_iiwa_link_3"], "distribution": "uniform",
                             "low": -0.01, "high": 0.01}}}
    actions = [np.full(7, 0.5)] * 5

    def run(env):
        obs, info = env.reset(seed=11)
        return [obs] + [env.step(a)[0] for a in actions], info["randomization"]

    used = ArmReachEnv("kuka_iiwa", profile=prof)
    fresh = ArmReachEnv("kuka_iiwa", profile=prof)
    try:
        used.reset(seed=3)
        for a in actions:
            used.step(a)
        a_obs, a_info = run(used)
        b_obs, b_info = run(fresh)
        assert a_info == b_info
        assert np.array_equal(np.array(a_obs), np.array(b_obs))
    finally:
        used.close()
        fresh.close()


@pytest.mark.parametrize("env_id", ["sim2real/KukaReach-v0", "sim2real/Hopper-v0"])
def test_rgb_array_render(env_id):
    env = gym.make(env_id, render_mode="rgb_array")
    try:
        env.reset(seed=0)
        frame = env.render()
        assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8 and frame.std() > 5
    finally:
        env.close()


def test_nan_action_is_a_clear_error():
    env = ArmReachEnv("kuka_iiwa")
    try:
        env.reset(seed=0)
        bad = np.zeros(7)
        bad[3] = np.nan
        with pytest.raises(EnvError, match="NaN or inf"):
            env.step(bad)
        with pytest.raises(EnvError, match="shape"):
            env.step(np.zeros(3))
    finally:
        env.close()


def test_reach_success_and_reward():
    env = ArmReachEnv("kuka_iiwa", start_noise=0.0, max_episode_steps=None)
    try:
        env.reset(seed=0)
        env.target = env.ee_position().copy()  # target where the ee already is
        obs, reward, term, trunc, info = env.step(np.zeros(7))
        assert info["is_success"] and info["distance"] < 0.05 and reward > 0.9
        env.target = env.ee_position() + np.array([0.3, 0.0, 0.0])
        obs, reward, term, trunc, info = env.step(np.zeros(7))
        assert not info["is_success"] and reward == pytest.approx(-info["distance"], abs=1e-3)
        assert np.allclose(obs[-3:], env.target.astype(np.float32))
    finally:
        env.close()


def test_reach_targets_stay_in_the_workspace_and_start_near_home():
    env = ArmReachEnv("franka_panda")
    try:
        for seed in range(5):
            obs, _ = env.reset(seed=seed)
            assert np.all(env.target >= env.ws_low) and np.all(env.target <= env.ws_high)
            assert np.abs(obs[:7] - env.world.home).max() <= 0.05 + 1e-6
    finally:
        env.close()


def test_reach_delta_action_moves_joints_by_scale():
    env = ArmReachEnv("kuka_iiwa", start_noise=0.0)
    try:
        obs, _ = env.reset(seed=0)
        for _ in range(5):
            obs = env.step(np.array([1.0, 0, 0, 0, 0, 0, 0]))[0]
        moved = obs[0] - env.world.home[0]
        # each target is at most 0.08 rad past the measured position; the PD drive's momentum
        # may carry the joint slightly past the last one
        assert 0.2 < moved <= 5 * 0.08 + 0.02
    finally:
        env.close()


def test_hopper_falls_and_terminates_without_control():
    env = HopperEnv()
    try:
        env.reset(seed=0)
        for t in range(400):
            obs, reward, term, trunc, info = env.step(np.zeros(3))
            if term:
                break
        assert term and not info["is_healthy"]
        assert obs[0] < 0.7 + 0.05 or abs(obs[1]) > 0.2 - 0.05
    finally:
        env.close()


def test_step_after_termination_needs_reset():
    env = HopperEnv()
    try:
        env.reset(seed=0)
        term = False
        while not term:
            term = env.step(np.zeros(3))[2]
        with pytest.raises(EnvError, match="reset"):
            env.step(np.zeros(3))
    finally:
        env.close()


def test_cli_lists_and_runs(capsys):
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    assert "sim2real/KukaReach-v0" in out and "joint_position_delta" in out and "hopper" in out
    assert main(["envs", "run", "sim2real/KukaReach-v0", "--profile", "peng2018_arm", "--steps", "5"]) == 0
    out = capsys.readouterr().out
    assert "link_mass" in out and "lbr_iiwa_link_3" in out
    assert main(["envs", "run", "sim2real/Nope-v0"]) == 2
    assert "unknown env id" in capsys.readouterr().err


def test_cli_run_prints_tiny_randomized_values(capsys):
    """kf (~3e-10 N/rpm²) is printed with significant digits, not rounded to 0.0."""
    import re

    assert main(["envs", "run", "sim2real/QuadrotorHover-v0", "--profile", "quadrotor", "--steps", "2"]) == 0
    out = capsys.readouterr().out
    kf = re.search(r'"kf": ([0-9.e+-]+)', out)
    assert kf is not None and 1e-10 < float(kf.group(1)) < 1e-9, out


def test_gym_make_with_module_prefix():
    """Without a plugin system in Gymnasium 1.x, ``module:id`` imports sim2real.envs first."""
    import gymnasium as gym

    env = gym.make("sim2real.envs:sim2real/Hopper-v0")
    try:
        assert type(env.unwrapped).__name__ == "HopperEnv"
    finally:
        env.close()


@pytest.mark.parametrize("robot", ["kuka_iiwa", "franka_panda"])
def test_reach_is_feasible_with_an_ik_controller(robot):
    """Every workspace target can be reached within the episode (an IK expert succeeds)."""
    import pybullet as p

    env = ArmReachEnv(robot)
    w = env.world
    try:
        for seed in range(3):
            obs, _ = env.reset(seed=seed)
            for _ in range(30):
                ik = p.calculateInverseKinematics(w.robot_id, env._ee, env.target.tolist(), maxNumIterations=100,
                                                  residualThreshold=1e-4, physicsClientId=w.client)
                action = np.clip((np.array(ik[:7]) - obs[:7]) / env.action_scale, -1, 1)
                obs, reward, term, trunc, info = env.step(action)
            assert info["is_success"], info["distance"]
    finally:
        env.close()


def test_ee_position_is_in_the_base_link_frame():
    env = ArmReachEnv("kuka_iiwa")
    try:
        env.reset(seed=0)
        pos, orn = env.world.base_pose()
        assert np.allclose(pos, env.robot.model.base_position) and np.allclose(orn, [0, 0, 0, 1])
    finally:
        env.close()


def test_only_envs_that_render_rebuild_com_bodies_with_renderer_geometry():
    """com_offset rebuilds skip the renderer (``world.headless``) unless the env renders the robot."""
    import pybullet as p

    prof = {"params": {"c": {"param": "com_offset", "targets": ["lbr_iiwa_link_3"], "distribution": "uniform",
                             "low": -0.01, "high": 0.01}}}
    plain = ArmReachEnv("kuka_iiwa", profile=prof)
    shown = ArmReachEnv("kuka_iiwa", profile=prof, render_mode="rgb_array")
    try:
        for env in (plain, shown):
            env.reset(seed=0)
            env.reset()
        assert plain.world.headless and not shown.world.headless
        w = shown.world
        kinds = {v[2] for v in p.getVisualShapeData(w.robot_id, physicsClientId=w.client)}
        assert kinds == {p.GEOM_MESH}  # the renderer still gets the robot's geometry
        frame = shown.render()
        assert frame.shape == (240, 320, 3) and frame.std() > 5
    finally:
        plain.close()
        shown.close()


def test_info_randomization_is_fresh_per_step_and_follows_interval_events():
    prof = {"params": {"m": {"param": "link_mass", "distribution": "uniform", "low": 0.5, "high": 2.0},
                       "push": {"param": "push", "targets": ["end_effector"], "distribution": "uniform",
                                "low": 1.0, "high": 2.0, "when": "interval", "interval": {"steps": 2}}}}
    env = ArmReachEnv("kuka_iiwa", profile=prof)
    try:
        _, info = env.reset(seed=0)
        infos = [info["randomization"]] + [env.step(np.zeros(7))[4]["randomization"] for _ in range(4)]
        for i, a in enumerate(infos):
            for b in infos[i + 1:]:
                assert a is not b and a["m"] is not b["m"]
            assert a["m"] == infos[0]["m"]
        pushes = [x.get("push") for x in infos]
        assert pushes[0] is None and pushes[2] is not None and pushes[4] is not None and pushes[2] != pushes[4]
        infos[2]["m"]["lbr_iiwa_link_2"] = -1.0  # a caller mutating its info changes nothing else
        assert env.step(np.zeros(7))[4]["randomization"]["m"]["lbr_iiwa_link_2"] > 0
    finally:
        env.close()
