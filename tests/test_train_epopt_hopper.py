"""Run-config pieces the EPOpt hopper benchmark relies on: ``lin_<start>`` schedules, gSDE
noise resampling in EPOpt rollouts, and the shipped hopper configs (no training here)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers import TimeLimit

from sim2real.errors import ConfigError
from sim2real.train.config import load_run_config, parse_run_config, parse_schedule, resolve_schedules
from sim2real.train.epopt import EPOptPPO
from sim2real.train.vec import PinnedParamsWrapper


def _cfg(**hp):
    return parse_run_config({"env": "sim2real/Hopper-v0", "hyperparameters": hp}, file="run.yaml")


def test_lin_schedule_decays_linearly_to_zero():
    cfg = _cfg(learning_rate="lin_3e-4", clip_range="lin_0.2", n_epochs=5)
    assert cfg.hyperparameters["learning_rate"] == "lin_3e-4"  # kept as written (run.yaml round trip)
    assert parse_run_config(cfg.to_dict()).hyperparameters == cfg.hyperparameters
    hp = resolve_schedules(cfg.hyperparameters)
    lr, clip = hp["learning_rate"], hp["clip_range"]
    # SB3 passes progress_remaining: 1 at the start of training, 0 at the end
    assert lr(1.0) == pytest.approx(3e-4) and lr(0.5) == pytest.approx(1.5e-4) and lr(0.0) == pytest.approx(0.0)
    assert clip(0.25) == pytest.approx(0.05)
    assert hp["n_epochs"] == 5
    assert resolve_schedules({"learning_rate": 1e-3})["learning_rate"] == 1e-3  # numbers pass through


@pytest.mark.parametrize("bad", ["lin_", "lin_abc", "lin_0", "lin_-1e-3", "lin_inf", "exp_3e-4", "3e-4x"])
def test_bad_schedule_names_file_and_key(bad):
    with pytest.raises(ConfigError, match=r"run\.yaml: hyperparameters\.learning_rate: .*lin_<start>"):
        _cfg(learning_rate=bad)
    with pytest.raises(ConfigError):
        parse_schedule(bad)


def test_schedule_only_for_scheduled_keys():
    with pytest.raises(ConfigError, match=r"hyperparameters\.gamma"):
        _cfg(gamma="lin_0.99")


def test_sde_and_policy_kwargs_are_validated():
    cfg = _cfg(use_sde=True, sde_sample_freq=4, policy_kwargs={"log_std_init": -1.0, "ortho_init": False})
    assert cfg.hyperparameters["use_sde"] is True
    with pytest.raises(ConfigError, match=r"hyperparameters\.use_sde: expected true or false"):
        _cfg(use_sde="yes")
    with pytest.raises(ConfigError, match=r"policy_kwargs\.log_std_initt: unknown keyword"):
        _cfg(policy_kwargs={"log_std_initt": -1.0})


@pytest.mark.parametrize("name", ["hopper_mass6", "epopt_hopper"])
def test_shipped_hopper_configs_build_their_model(name):
    from sim2real.train.trainer import _policy_kwargs

    cfg = load_run_config(name)
    hp = resolve_schedules(cfg.hyperparameters)
    assert cfg.env_id == "sim2real/Hopper-v0" and cfg.normalize.obs and cfg.normalize.reward
    if cfg.algo == "epopt_ppo":
        assert cfg.epopt is not None and cfg.epopt.epsilon == pytest.approx(0.1) and cfg.epopt.skip_iters > 0
    # the hyperparameters are accepted by SB3 (on a stand-in env with the hopper's spaces)
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    obs = gym.spaces.Box(-np.inf, np.inf, (14,), np.float32)
    act = gym.spaces.Box(-1, 1, (3,), np.float32)

    class Stub(gym.Env):
        observation_space, action_space = obs, act

        def reset(self, *, seed=None, options=None):
            return np.zeros(14, np.float32), {}

        def step(self, a):
            return np.zeros(14, np.float32), 0.0, False, False, {}

    hp = {k: v for k, v in hp.items() if k != "policy_kwargs"}
    hp.setdefault("n_steps", 64)
    model = PPO("MlpPolicy", DummyVecEnv([Stub]), policy_kwargs=_policy_kwargs(cfg), **hp)
    assert model.lr_schedule(1.0) > 0


class _Env(gym.Env):
    observation_space = gym.spaces.Box(-10, 10, (2,), np.float32)
    action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([0.0, self.t], np.float32), 1.0, False, False, {}


@pytest.mark.parametrize("freq,expected", [(3, 1 + 4), (-1, 1)])
def test_epopt_resamples_sde_noise_every_sde_sample_freq_steps(freq, expected, monkeypatch):
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    ep_len = 5
    venv = DummyVecEnv([lambda: Monitor(PinnedParamsWrapper(TimeLimit(_Env(), ep_len)))] * 2)
    model = EPOptPPO("MlpPolicy", venv, model_sampler=lambda rng: {}, epsilon=1.0, n_models=4, sampler_seed=0,
                     n_steps=EPOptPPO.steps_per_env(4, 2, ep_len), batch_size=4, n_epochs=1, seed=0,
                     use_sde=True, sde_sample_freq=freq, policy_kwargs={"net_arch": [8]})
    calls: list[int] = []
    orig = model.policy.reset_noise
    monkeypatch.setattr(model.policy, "reset_noise", lambda n_envs=1: (calls.append(n_envs), orig(n_envs))[1])
    model.learn(total_timesteps=1)
    # 10 steps per env: one reset at the rollout start, then one at steps 0, 3, 6, 9 when freq = 3
    assert calls and all(n == 2 for n in calls)
    assert len(calls) == expected
