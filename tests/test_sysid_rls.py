"""RLS thrust-to-mass estimator on the quadrotor UP env: converges within 1 s, beats the mean guess,
truth and μ mappings agree with the physics."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import sim2real.sysid.upenv  # noqa: F401  (registers the UP ids)
from sim2real.errors import EnvError
from sim2real.sysid.rls import ThrustToMassRLS, thrust_to_mass, thrust_to_mass_from_mu

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "sysid"
RATE = 48  # control steps per second


class HoverController:
    """Cascaded hover for ``thrust_rates`` actions: PID on height, tilt toward the target with an
    integral (cancels a centre-of-mass torque), plus exploration noise like a stochastic policy."""

    def __init__(self, hover: float, rng: np.random.Generator, noise: float = 0.05) -> None:
        self.hover, self.rng, self.noise = hover, rng, noise
        self.reset()

    def reset(self) -> None:
        self.iz, self.ia = 0.0, np.zeros(2)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        r = obs[3:12].reshape(3, 3).astype(float)
        v, rel = obs[12:15].astype(float), obs[18:21].astype(float)
        self.iz += rel[2] / RATE
        thrust = self.hover + rel[2] - 0.6 * v[2] + self.iz
        want = np.array([0.4 * (rel[0] - v[0]), 0.4 * (rel[1] - v[1]), 1.0])
        up = r.T @ (want / np.linalg.norm(want))  # wanted thrust direction, body frame
        err = np.array([-up[1], up[0]])
        self.ia += err / RATE
        a = np.array([thrust, *((6.0 * err + 8.0 * self.ia) / 4.0), 0.0]) + self.noise * self.rng.standard_normal(4)
        return np.clip(a, -1.0, 1.0).astype(np.float32)


def _rollouts(env: gym.Env, seeds: range, steps: int, policy, options=None) -> tuple[np.ndarray, np.ndarray]:
    """θ̂ after each step (episodes × steps, NaN after an episode ended) and the true θ per episode."""
    rls = ThrustToMassRLS(env)
    est = np.full((len(seeds), steps), np.nan)
    truth = np.empty(len(seeds))
    for i, seed in enumerate(seeds):
        obs, info = env.reset(seed=seed, options=options)
        truth[i] = thrust_to_mass(env, info["randomization"])
        rls.reset()
        if hasattr(policy, "reset"):
            policy.reset()
        for k in range(steps):
            a = policy(obs)
            nxt, _, term, trunc, _ = env.step(a)
            est[i, k] = rls.update(obs, a, nxt)
            obs = nxt
            if term or trunc:
                break
    return est, truth


def test_rls_identifies_thrust_to_mass_within_one_second() -> None:
    env = gym.make("sim2real/QuadrotorHoverRatesUP-v0")
    try:
        ctrl = HoverController(float(env.unwrapped.hover_action[0]), np.random.default_rng(0))
        est, truth = _rollouts(env, range(8), RATE + 1, ctrl)
        after_1s = est[:, RATE - 1]
        assert not np.any(np.isnan(after_1s))  # every episode still flying at 1 s
        rel = np.abs(after_1s - truth) / truth
        assert np.all(rel < 0.05), rel
        mean_guess = np.abs(truth.mean() - truth) / truth
        assert mean_guess.mean() > 3.0 * rel.mean()
        assert np.ptp(truth) / truth.mean() > 0.3  # the draws differ: there was something to identify
    finally:
        env.close()


def test_rls_with_per_motor_commands() -> None:
    env = gym.make("sim2real/QuadrotorHoverUP-v0")
    try:
        hover = float(env.unwrapped.hover_action[0])
        rng = np.random.default_rng(1)
        state = {"iz": 0.0}

        def equal_motors(obs: np.ndarray) -> np.ndarray:  # vertical only: no COM shift, no wind (pinned)
            state["iz"] += obs[20] / RATE
            u = hover + 0.5 * obs[20] - 0.3 * obs[14] + 0.5 * state["iz"] + 0.03 * rng.standard_normal()
            return np.clip(np.full(4, u), -1.0, 1.0).astype(np.float32)

        calm = {"params": {"com": [0.0, 0.0, 0.0], "wind": [0.0, 0.0, 0.0]}}
        est, truth = _rollouts(env, range(4), RATE, equal_motors, options=calm)
        rel = np.abs(est[:, -1] - truth) / truth
        assert np.all(rel < 0.05), rel
    finally:
        env.close()


def test_truth_and_mu_mapping_match_the_physics() -> None:
    env = gym.make("sim2real/QuadrotorHoverRatesUP-v0")
    try:
        w = env.unwrapped.world
        for seed in range(3):
            _, info = env.reset(seed=seed)
            physical = 4.0 * w.model_params["kf"] * w.model_params["max_rpm"] ** 2 / w.mass()
            assert thrust_to_mass(env, info["randomization"]) == pytest.approx(physical, rel=1e-12)
            assert thrust_to_mass_from_mu(env, info["mu"]) == pytest.approx(physical, rel=1e-9)
        rls = ThrustToMassRLS(env)
        assert rls.nominal_theta == pytest.approx(4 * 3.16e-10 * 21702.0**2 / 0.027)  # 22.05 N/kg
        assert rls.theta == rls.nominal_theta
        # beyond the training range μ is clipped: the μ mapping saturates, the truth does not
        env.get_wrapper_attr("set_profile")(str(CONFIGS / "up_quadrotor_outside.yaml"))
        _, info = env.reset(seed=0)
        truth = thrust_to_mass(env, info["randomization"])
        assert truth == pytest.approx(4.0 * w.model_params["kf"] * w.model_params["max_rpm"] ** 2 / w.mass())
        assert info["mu"][0] == 1.0 and thrust_to_mass_from_mu(env, info["mu"]) > truth
    finally:
        env.close()


def test_rls_rejects_what_it_cannot_estimate() -> None:
    env = gym.make("sim2real/QuadrotorHoverVel-v0")
    with pytest.raises(EnvError, match="thrust_rates or motor"):
        ThrustToMassRLS(env)
    env.close()
    env = gym.make("sim2real/QuadrotorHoverRatesUP-v0")
    try:
        with pytest.raises(EnvError, match="forgetting"):
            ThrustToMassRLS(env, forgetting=1.5)
        rls = ThrustToMassRLS(env, initial=10.0)
        obs, _ = env.reset(seed=0)
        off = np.array([-1.0, 0.0, 0.0, 0.0], dtype=np.float32)  # rotors commanded off: no information
        for _ in range(10):
            nxt, *_ = env.step(off)
            theta = rls.update(obs, off, nxt)
            obs = nxt
        # the lagged thrust of the first steps still informs; once the command is zero θ̂ stops moving
        assert rls.thrust_fraction < 0.05 and rls.update(obs, off, obs) == theta
    finally:
        env.close()
