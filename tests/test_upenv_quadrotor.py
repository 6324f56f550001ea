"""UP env on the quadrotor: μ layout and values for link_mass / model_param / com_offset / wind, the
registered ids, and that μ's parameters show in the flight (payload, thrust coefficient, wind)."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from sim2real.sysid.upenv import make_up_env

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "sysid"
PROFILE = CONFIGS / "up_quadrotor_profile.yaml"
OUTSIDE = CONFIGS / "up_quadrotor_outside.yaml"
LAYOUT = [("payload", "base"), ("thrust_coefficient", "kf"), ("motor_lag", "motor_tau"), ("com", "base.x"),
          ("com", "base.y"), ("wind", "base.x"), ("wind", "base.y")]
M0, KF0, TAU0 = 0.027, 3.16e-10, 0.02


@pytest.fixture(scope="module")
def env():
    e = make_up_env("sim2real/QuadrotorHoverRates-v0", profile=str(PROFILE))
    yield e
    e.close()


def _physical(info: dict) -> list[float]:
    r = info["randomization"]
    return [r["payload"]["base"], r["thrust_coefficient"]["kf"], r["motor_lag"]["motor_tau"], r["com"]["base"][0],
            r["com"]["base"][1], r["wind"]["base"][0], r["wind"]["base"][1]]


def test_mu_layout_ranges_and_values(env) -> None:
    comps = env.get_wrapper_attr("components")
    assert [(c[0], c[1]) for c in comps] == LAYOUT
    lows = np.array([c[2] for c in comps])
    highs = np.array([c[3] for c in comps])
    np.testing.assert_allclose(lows, [0.7 * M0, 0.7 * KF0, 0.5 * TAU0, -0.002, -0.002, -0.05, -0.05], rtol=1e-9)
    np.testing.assert_allclose(highs, [1.5 * M0, 1.3 * KF0, 2.0 * TAU0, 0.002, 0.002, 0.05, 0.05], rtol=1e-9)
    # the base observation already ends with the previous action: no second copy
    layout = env.get_wrapper_attr("observation_layout")()
    assert [n for n, _ in layout].count("previous_action") == 1
    assert layout[-2:] == [("previous_action", 4), ("dynamics_params", 7)]
    assert env.observation_space.shape == (25 + 7,)
    seen = []
    for seed in range(4):
        obs, info = env.reset(seed=seed)
        phys = np.array(_physical(info))
        expected = 2.0 * (phys - lows) / (highs - lows) - 1.0
        assert np.all(np.abs(expected) <= 1.0)
        np.testing.assert_allclose(obs[-7:], expected, atol=1e-6)
        np.testing.assert_allclose(info["mu"], expected, atol=1e-12)
        # the physics runs with these values
        w = env.unwrapped.world
        assert w.mass() == pytest.approx(phys[0]) and w.model_params["kf"] == pytest.approx(phys[1])
        assert [x.force_list[:2] for x in w.pushes if x.steady] == [pytest.approx(phys[5:7])]
        obs2, *_ = env.step(env.action_space.sample())
        np.testing.assert_allclose(obs2[-7:], obs[-7:])  # μ is per episode
        seen.append(expected)
    assert np.ptp(np.array(seen), axis=0).min() > 0.1  # every component varies between episodes


def test_out_of_range_payload_clips_to_one() -> None:
    e = make_up_env("sim2real/QuadrotorHoverRates-v0", profile=str(PROFILE))
    try:
        e.get_wrapper_attr("set_profile")(str(OUTSIDE))
        for seed in range(3):
            _, info = e.reset(seed=seed)
            assert info["randomization"]["payload"]["base"] > 1.5 * M0
            assert info["mu"][0] == 1.0  # beyond the training range: clipped
            kf = info["randomization"]["thrust_coefficient"]["kf"]
            assert 2.25 * (kf / KF0) / (info["randomization"]["payload"]["base"] / M0) >= 1.15
    finally:
        e.close()


def _vertical_acceleration(env, params: dict, thrust_action: float, steps: int = 6) -> tuple[float, np.ndarray]:
    """Mean world vertical and horizontal acceleration (m/s²) over ``steps`` control steps at a
    constant collective command and zero body rates, from the same start (seed 7)."""
    obs, _ = env.reset(seed=7, options={"params": params})
    v0 = obs[12:15].astype(float)
    a = np.array([thrust_action, 0.0, 0.0, 0.0], dtype=np.float32)
    for _ in range(steps):
        obs, *_ = env.step(a)
    acc = (obs[12:15].astype(float) - v0) / (steps * env.unwrapped.world.control_dt)
    return float(acc[2]), acc[:2]


def test_payload_thrust_coefficient_and_wind_show_in_the_flight(env) -> None:
    calm = {"com": [0.0, 0.0, 0.0], "wind": [0.0, 0.0, 0.0], "motor_lag": 1.0}
    hover = float(env.unwrapped.hover_action[0])
    a_light, _ = _vertical_acceleration(env, {**calm, "payload": 0.8, "thrust_coefficient": 1.0}, hover)
    a_heavy, _ = _vertical_acceleration(env, {**calm, "payload": 1.4, "thrust_coefficient": 1.0}, hover)
    a_strong, _ = _vertical_acceleration(env, {**calm, "payload": 1.4, "thrust_coefficient": 1.2}, hover)
    g = 9.81
    # heavier payload: less upward acceleration at the same command; (a + g) ∝ kf / m
    assert a_heavy < a_light - 2.0
    assert (a_light + g) / (a_heavy + g) == pytest.approx(1.4 / 0.8, rel=0.1)
    assert (a_strong + g) / (a_heavy + g) == pytest.approx(1.2, rel=0.1)
    # a constant wind pushes the drone along it: about F/m more acceleration in +x than without wind
    _, h_calm = _vertical_acceleration(env, {**calm, "payload": 1.0, "thrust_coefficient": 1.0}, hover)
    _, h_wind = _vertical_acceleration(env, {**calm, "payload": 1.0, "thrust_coefficient": 1.0,
                                             "wind": [0.05, 0.0, 0.0]}, hover)
    assert h_wind[0] - h_calm[0] == pytest.approx(0.05 / M0, rel=0.15)
    assert abs(h_wind[1] - h_calm[1]) < 0.2


def test_registered_ids() -> None:
    import sim2real.sysid.upenv  # noqa: F401  (registers)

    for env_id, modes in (("sim2real/QuadrotorHoverRatesUP-v0", "thrust_rates"), ("sim2real/QuadrotorHoverUP-v0", "motor")):
        e = gym.make(env_id)
        try:
            assert e.unwrapped.action_mode == modes
            assert e.observation_space.shape == (32,)
            assert [(c[0], c[1]) for c in e.get_wrapper_attr("components")] == LAYOUT
            obs, info = e.reset(seed=0)
            assert e.observation_space.contains(obs)
            from gymnasium.utils.env_checker import check_env
            from stable_baselines3.common.env_checker import check_env as sb3_check_env
            check_env(e, skip_render_check=True)
            sb3_check_env(e)
        finally:
            e.close()
    # the Kuka UP env keeps adding the previous action
    k = make_up_env("sim2real/KukaReach-v0", profile="peng2018_arm", max_episode_steps=3)
    assert [n for n, _ in k.get_wrapper_attr("observation_layout")()].count("previous_action") == 1
    k.close()
