"""Quadrotor envs: registration, API checks, flight physics through the env, profiles, seeding."""

from __future__ import annotations

import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pybullet as p
import pytest
import yaml
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import sim2real.envs  # noqa: F401  (registers the ids)
from sim2real.envs.quadrotor import QuadrotorEnv
from sim2real.errors import EnvError, RobotError
from sim2real.robots import load_robot
from sim2real.sim.quadrotor import mixer_matrix

IDS = ["sim2real/QuadrotorHover-v0", "sim2real/QuadrotorWaypoint-v0", "sim2real/QuadrotorHoverRates-v0",
       "sim2real/QuadrotorHoverVel-v0", "sim2real/QuadrotorWaypointVel-v0"]
VOCABULARY = {"base_position", "base_rotation", "base_orientation", "base_linear_velocity",
              "base_angular_velocity", "target_relative", "previous_action"}
KF_NOMINAL = 3.16e-10


def kf_profile(scale: float) -> dict:
    return {"params": {"thrust_coefficient": {"param": "model_param", "targets": ["kf"],
                                              "distribution": "constant", "value": scale, "operation": "scale"}}}


def place(env: QuadrotorEnv, pos=(0.0, 0.0, 1.0)) -> None:
    """Put the drone level and at rest at ``pos``, rotors at the nominal hover speed."""
    w = env.world
    p.resetBasePositionAndOrientation(w.robot_id, list(pos), [0, 0, 0, 1], physicsClientId=w.client)
    p.resetBaseVelocity(w.robot_id, [0, 0, 0], [0, 0, 0], physicsClientId=w.client)
    w.rotors.reset(w.nominal_rotor.hover_rpm(0.027))


def z_of(env: QuadrotorEnv) -> float:
    return float(p.getBasePositionAndOrientation(env.world.robot_id, physicsClientId=env.world.client)[0][2])


def geometric_action(obs: np.ndarray, env: QuadrotorEnv) -> np.ndarray:
    """PD position loop + tilt-to-rate loop reading only the observation (layout of the module doc)."""
    rot, vel, rates, rel = obs[3:12].reshape(3, 3), obs[12:15], obs[15:18], obs[18:21]
    acc = 4.0 * rel - 3.0 * vel + np.array([0.0, 0.0, 9.81])
    thrust = 0.027 * float(acc @ rot[:, 2])
    rate_cmd = 8.0 * (rot.T @ np.cross(rot[:, 2], acc / np.linalg.norm(acc)))
    rate_cmd[2] = 0.0
    if env.action_mode == "velocity":
        cmd = np.append(np.clip(1.5 * rel, -1.0, 1.0), 0.0)
    elif env.action_mode == "thrust_rates":
        cmd = np.concatenate([[thrust], rate_cmd])
    else:  # same loop, rates closed here at 48 Hz and mixed into rotor speeds²
        torque = env.world.nominal_inertia() * 10.0 * (rate_cmd - rates)
        thrusts = np.linalg.solve(mixer_matrix(env.world.nominal_rotor), np.concatenate([[thrust], torque]))
        cmd = np.maximum(thrusts, 0.0) / env.world.nominal_rotor.kf
    return np.clip((cmd - env.action_offset) / env.action_scale, -1.0, 1.0)


@pytest.fixture
def make():
    envs = []

    def _make(env_id: str = IDS[0], **kw):
        env = gym.make(env_id, **kw)
        envs.append(env)
        return env

    yield _make
    for env in envs:
        env.close()


@pytest.mark.parametrize("env_id", IDS)
def test_env_passes_gymnasium_and_sb3_checks(env_id, make):
    env = make(env_id)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=True)
    assert env.spec.max_episode_steps == (480 if "Waypoint" in env_id else 240)
    assert env.unwrapped.world.mode == env.unwrapped.action_spec()["mode"]


@pytest.mark.parametrize("env_id", IDS)
def test_layout_and_action_spec(env_id, make):
    env = make(env_id).unwrapped
    layout = env.observation_layout()
    assert {name for name, _ in layout} <= VOCABULARY
    assert sum(n for _, n in layout) == env.observation_space.shape[0] == 25
    spec = env.action_spec()
    assert spec["joints"] == [] and len(spec["scale"]) == len(spec["offset"]) == 4
    assert env.action_space.shape == (4,)
    lo, hi = np.array(spec["low"]), np.array(spec["high"])
    assert np.allclose(np.array(spec["offset"]) - spec["scale"], lo)
    if spec["mode"] == "motor":
        assert np.allclose(lo, 0.0) and np.allclose(hi, 21702.0**2)
    elif spec["mode"] == "velocity":  # what the ROS 2 node sends as velocity setpoints: a·scale
        assert np.allclose(spec["offset"], 0.0) and np.allclose(hi, [1.0, 1.0, 1.0, 1.0])
        assert np.allclose(env.hover_action, 0.0)
    else:
        assert spec["mode"] == "thrust_rates"
        assert hi[0] == pytest.approx(4 * KF_NOMINAL * 21702.0**2)
        assert np.allclose(hi[1:], [4.0, 4.0, 2.0]) and np.allclose(lo[1:], [-4.0, -4.0, -2.0])
    # the observation says where the drone is
    obs, _ = env.reset(seed=3)
    pos, quat = p.getBasePositionAndOrientation(env.world.robot_id, physicsClientId=env.world.client)
    assert np.allclose(obs[:3], pos, atol=1e-6)
    assert np.allclose(obs[3:12], np.array(p.getMatrixFromQuaternion(quat)), atol=1e-6)
    assert np.allclose(obs[18:21], env.target - np.array(pos), atol=1e-6)


@pytest.mark.parametrize("env_id", [IDS[0], IDS[2], IDS[3]])
def test_hover_action_holds_altitude(env_id, make):
    env = make(env_id).unwrapped
    env.reset(seed=0)
    place(env)
    for _ in range(48):  # 1 s
        obs, _, terminated, _, _ = env.step(env.hover_action)
        assert not terminated
    assert abs(z_of(env) - 1.0) < 0.02
    assert np.linalg.norm(obs[12:15]) < 0.05


def test_doubled_kf_from_profile_climbs(make):
    nominal = make(IDS[0]).unwrapped
    doubled = make(IDS[0], profile=kf_profile(2.0)).unwrapped
    _, info = doubled.reset(seed=0)
    assert info["randomization"]["thrust_coefficient"]["kf"] == pytest.approx(2 * KF_NOMINAL)
    assert doubled.world.rotors.params.kf == pytest.approx(2 * KF_NOMINAL)
    nominal.reset(seed=0)
    for env in (nominal, doubled):
        place(env)
        for _ in range(24):  # 0.5 s at the hover command of the nominal model
            env.step(env.hover_action)
    assert abs(z_of(nominal) - 1.0) < 0.01
    # twice the thrust: net upward acceleration g, so 0.5·g·t² ≈ 1.2 m
    assert z_of(doubled) - 1.0 == pytest.approx(0.5 * 9.81 * 0.5**2, rel=0.1)


def test_pinned_and_kept_parameters(make):
    env = make(IDS[0], profile="quadrotor").unwrapped
    _, info = env.reset(seed=1, options={"params": {"thrust_coefficient": 1.1}})
    assert info["randomization"]["thrust_coefficient"]["kf"] == pytest.approx(1.1 * KF_NOMINAL)
    assert env.world.rotors.params.kf == pytest.approx(1.1 * KF_NOMINAL)
    tau = env.world.rotors.params.motor_tau
    _, kept = env.reset(seed=2, options={"randomize": False})
    assert env.world.rotors.params.motor_tau == tau
    assert kept["randomization"]["motor_lag"] == info["randomization"]["motor_lag"]
    _, fresh = env.reset(seed=2)
    assert fresh["randomization"]["motor_lag"] != info["randomization"]["motor_lag"]
    assert env.world.rotors.params.motor_tau == pytest.approx(fresh["randomization"]["motor_lag"]["motor_tau"])


def test_seed_reproduces_trajectory_under_randomization(make):
    def rollout(env, seed):
        obs, info = env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        traj, infos = [obs], [info["randomization"]]
        for _ in range(60):
            a = np.clip(env.unwrapped.hover_action + rng.normal(0, 0.05, 4), -1, 1)
            obs, r, term, trunc, info = env.step(a)
            traj.append(np.append(obs, r))
            infos.append(info["randomization"])
            if term or trunc:
                break
        return np.concatenate(traj), infos

    a, b = make(IDS[1], profile="quadrotor"), make(IDS[1], profile="quadrotor")
    ta, ia = rollout(a, 7)
    tb, ib = rollout(b, 7)
    assert np.array_equal(ta, tb) and ia == ib
    tc, _ = rollout(b, 8)
    assert not np.array_equal(ta[:25], tc[:25])


def test_motors_off_crashes_with_penalty(make):
    env = make(IDS[0]).unwrapped
    env.reset(seed=0)
    place(env, (0.0, 0.0, 0.5))
    for step in range(100):
        _, reward, terminated, truncated, info = env.step(-np.ones(4))
        if terminated:
            break
    assert terminated and not truncated
    assert info["crashed"] and (info["touched_floor"] or info["out_of_bounds"])
    assert reward < -9.0
    assert 0.3 * 48 < step < 0.4 * 48  # free fall from 0.5 m takes ~0.32 s
    with pytest.raises(EnvError, match="before reset"):
        env.step(env.hover_action)


def test_full_roll_rate_flips(make):
    env = make(IDS[2]).unwrapped
    env.reset(seed=0)
    place(env)
    for _ in range(48):
        _, _, terminated, _, info = env.step(np.array([env.hover_action[0], 1.0, 0.0, 0.0]))
        if terminated:
            break
    assert terminated and info["flipped"] and info["tilt"] > 1.2


def test_rates_env_tracks_commanded_yaw_rate(make):
    env = make(IDS[2]).unwrapped
    env.reset(seed=0)
    place(env)
    for _ in range(24):
        obs, *_ = env.step(np.array([env.hover_action[0], 0.0, 0.0, 0.75]))  # 1.5 rad/s yaw
    assert obs[17] == pytest.approx(1.5, abs=0.08)
    assert np.all(np.abs(obs[15:17]) < 0.02)


@pytest.mark.parametrize("env_id", IDS)
def test_closed_loop_controller_reaches_target(env_id, make):
    """A controller that reads only the observation flies every env to its target."""
    env = make(env_id).unwrapped
    steps = 480 if "Waypoint" in env_id else 240
    obs, _ = env.reset(seed=4)
    total = 0.0
    for _ in range(steps):
        obs, reward, terminated, _, info = env.step(geometric_action(obs, env))
        total += reward
        assert not terminated
    assert info["is_success"] and info["distance"] < 0.02
    assert total > 0.8 * steps  # near-hover steps earn close to 1 each


def test_action_latency_delays_motor_response(make):
    latency = {"params": {"action_latency": {"distribution": "constant", "value": 2, "unit": "control_steps"}}}
    fast, slow = make(IDS[0]).unwrapped, make(IDS[0], profile=latency).unwrapped
    for env in (fast, slow):
        env.reset(seed=0)
        place(env)
        env.step(np.ones(4))
    assert np.all(fast.world.rotors.rpm > 16000)
    assert np.allclose(slow.world.rotors.rpm, slow.world.nominal_rotor.hover_rpm(0.027))
    slow.step(np.ones(4))
    slow.step(np.ones(4))
    assert np.all(slow.world.rotors.rpm > 16000)


def test_set_profile_takes_effect_at_next_reset(make):
    env = make(IDS[0]).unwrapped
    env.reset(seed=0)
    env.set_profile(kf_profile(1.5))
    assert env.world.rotors.params.kf == pytest.approx(KF_NOMINAL)
    _, info = env.reset(seed=0)
    assert env.world.rotors.params.kf == pytest.approx(1.5 * KF_NOMINAL)
    assert "thrust_coefficient" in info["randomization"]


def test_bad_arguments_and_robot_files(tmp_path: Path):
    with pytest.raises(EnvError, match="task"):
        QuadrotorEnv(task="loop")
    with pytest.raises(EnvError, match="action mode"):
        QuadrotorEnv(action_mode="joint_torque")
    with pytest.raises(RobotError, match="not a quadrotor"):
        QuadrotorEnv(robot="kuka_iiwa")
    src = load_robot("quadrotor")
    raw = yaml.safe_load(src.file.read_text())
    raw["model"]["path"] = str(src.model_path())
    raw["model_params"]["task"]["bounds_low"] = [0.0, "low", 0.0]
    bad = tmp_path / "robot.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(RobotError, match=r"robot\.yaml: model_params\.task\.bounds_low: expected 3 number"):
        QuadrotorEnv(robot=str(bad))
    raw["model_params"]["task"]["bounds_low"] = [-2.0, -2.0, 0.03]
    raw["model_params"]["max_rpm"] = 1000.0
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(RobotError, match=r"model_params\.max_rpm"):
        QuadrotorEnv(robot=str(bad))


def test_nan_action_is_rejected(make):
    env = make(IDS[0]).unwrapped
    env.reset(seed=0)
    with pytest.raises(EnvError, match="NaN"):
        env.step(np.array([0.0, math.nan, 0.0, 0.0]))


def test_env_is_built_by_simenv_with_a_quadrotor_world(make):
    """QuadrotorEnv goes through SimEnv.__init__ (its _make_world hook builds the QuadrotorWorld),
    and the rotor model runs from PhysicsWorld.step's physics_step_hook."""
    from sim2real.sim.world import PhysicsWorld

    env = make(IDS[0], render_mode="rgb_array").unwrapped
    assert type(env.world).__name__ == "QuadrotorWorld" and env.runner.world is env.world
    assert type(env.world).step is PhysicsWorld.step  # no copy of the physics loop
    assert env.world.physics_step_hook == env.world._rotor_step
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8
    calls = []
    hook = env.world.physics_step_hook
    env.world.physics_step_hook = lambda: (calls.append(env.world.physics_step_count), hook())
    env.step(env.hover_action)
    assert calls == list(range(env.world.substeps))  # one rotor update before each physics step


def test_com_offset_tips_the_drone_towards_the_heavy_side(make):
    """Thrust acts at the rotors (link frame), so a forward centre of mass pitches the nose down."""
    shifted = {"params": {"com": {"param": "com_offset", "targets": ["base"], "distribution": "constant",
                                  "value": [0.003, 0.0, 0.0]}}}
    rates = []
    for profile in ("nominal", shifted):
        env = make(IDS[0], profile=profile).unwrapped
        env.reset(seed=0)
        assert env.world.rotors.body == env.world.robot_id
        place(env)
        for _ in range(6):  # 0.125 s
            obs, *_ = env.step(env.hover_action)
        rates.append(obs[15:18])
    assert np.allclose(rates[0], 0.0, atol=1e-3)
    # τ_y = c_x · m g, so q = τ_y / I_yy · t
    assert rates[1][1] == pytest.approx(0.003 * 0.027 * 9.81 / 1.4e-5 * 0.125, rel=0.05)
    assert abs(rates[1][0]) < 1e-3


def test_model_param_targets_all_randomizes_only_rotor_numbers(make):
    profile = {"params": {"rotor": {"param": "model_param", "targets": "all", "distribution": "uniform",
                                    "low": 0.9, "high": 1.1}}}
    env = make(IDS[2], profile=profile).unwrapped
    _, info = env.reset(seed=0)
    drawn = info["randomization"]["rotor"]
    assert set(drawn) == {"kf", "km", "motor_tau", "arm_length", "max_rpm", "prop_radius", "drag_coeff",
                          "drag_coeff_z", "ground_effect_coeff", "ground_effect_max_gain"}
    assert env.world.rotors.params.arm_length == pytest.approx(drawn["arm_length"])
    assert env.world.rotors.params.kf != pytest.approx(KF_NOMINAL, rel=1e-6)


def test_velocity_env_tracks_setpoint_under_randomization(make):
    """The velocity loop's integral absorbs a 20 % thrust-coefficient error; yaw rate passes through."""
    env = make(IDS[3], profile=kf_profile(0.8)).unwrapped
    env.reset(seed=0)
    place(env)
    for _ in range(120):  # 2.5 s
        obs, _, terminated, _, _ = env.step(np.array([0.5, -0.3, 0.2, 0.5]))
        assert not terminated
    assert np.allclose(obs[12:15], [0.5, -0.3, 0.2], atol=0.03)
    assert obs[17] == pytest.approx(0.5, abs=0.05)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_ppo_learns_to_hover_with_body_rates():
    """Learnability: PPO (150k steps, 6-12 min on 2 shared cores) goes from crashing to holding the hover."""
    import torch
    from stable_baselines3 import PPO

    torch.set_num_threads(1)
    env = gym.make(IDS[2])
    model = PPO("MlpPolicy", env, seed=0, n_steps=2048, batch_size=256, device="cpu", verbose=0)
    model.learn(150_000)
    lengths, successes = [], []
    for seed in range(100, 110):
        obs, _ = env.reset(seed=seed)
        for n in range(1, 241):
            obs, _, terminated, truncated, info = env.step(model.predict(obs, deterministic=True)[0])
            if terminated or truncated:
                break
        lengths.append(n)
        successes.append(info["is_success"])
    env.close()
    assert np.mean(lengths) > 200 and np.mean(successes) >= 0.5
