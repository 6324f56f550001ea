"""EPOpt-ε: the PPO update sees only the transitions of the worst-ε trajectories."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers import TimeLimit

from sim2real.train.epopt import EPOptPPO, MaskedRolloutBuffer, cvar_keep
from sim2real.train.vec import PinnedParamsWrapper

EP_LEN = 5


class ParamEnv(gym.Env):
    """Reward k per step, k pinned by reset(options={"params": {"k": k}}); obs = [k, t]."""

    observation_space = gym.spaces.Box(-10, 10, (2,), np.float32)
    action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        params = (options or {}).get("params")
        self.k = float(params["k"]) if params else float(self.np_random.uniform(5, 6))
        self.t = 0
        return self._obs(), {}

    def _obs(self):
        return np.array([self.k, self.t], dtype=np.float32)

    def step(self, action):
        self.t += 1
        return self._obs(), self.k, False, False, {}


def _model(n_envs: int, n_models: int, epsilon: float, skip_iters: int = 0) -> EPOptPPO:
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    venv = DummyVecEnv([lambda: Monitor(PinnedParamsWrapper(TimeLimit(ParamEnv(), EP_LEN)))] * n_envs)
    n_steps = EPOptPPO.steps_per_env(n_models, n_envs, EP_LEN) + 3  # slack: collection must stop early
    return EPOptPPO("MlpPolicy", venv, model_sampler=lambda rng: {"k": float(rng.uniform(0, 1))}, epsilon=epsilon,
                    n_models=n_models, skip_iters=skip_iters, sampler_seed=0, n_steps=n_steps, batch_size=4,
                    n_epochs=1, seed=0, policy_kwargs={"net_arch": [8]})


def test_cvar_keep_counts():
    r = np.arange(10.0)
    keep, thr = cvar_keep(r, 0.1)
    assert keep.sum() == 1 and thr == 0.0
    keep, _ = cvar_keep(r, 0.25)
    assert list(np.flatnonzero(keep)) == [0, 1, 2]
    assert cvar_keep(r, 1.0)[0].all()


@pytest.mark.parametrize("n_envs", [1, 2])
def test_update_uses_only_worst_trajectories(n_envs, monkeypatch):
    model = _model(n_envs, n_models=8, epsilon=0.25)
    seen: list[np.ndarray] = []
    orig_get = MaskedRolloutBuffer.get

    def spy(self, batch_size=None):
        for batch in orig_get(self, batch_size):
            seen.append(batch.observations.numpy().copy())
            yield batch

    monkeypatch.setattr(MaskedRolloutBuffer, "get", spy)
    model.learn(total_timesteps=1)  # one iteration: collect 8 trajectories, one PPO update
    info = model.last_epopt
    returns = info["returns"]
    assert not np.isnan(returns).any(), "every model must give a complete trajectory"
    worst = np.argsort(returns)[:2]  # ceil(0.25 * 8)
    assert sorted(info["kept_models"]) == sorted(worst)
    ks_worst = np.sort(returns[worst] / EP_LEN)
    obs = np.concatenate(seen)
    assert len(obs) == 2 * EP_LEN  # all transitions of the 2 kept trajectories, nothing else
    np.testing.assert_allclose(np.unique(obs[:, 0]), ks_worst, rtol=1e-5)
    # each kept trajectory appears whole (t = 0..EP_LEN-1)
    for k in ks_worst:
        assert sorted(obs[np.isclose(obs[:, 0], k), 1]) == list(range(EP_LEN))
    # the unpinned episodes run after the queue emptied (k in [5, 6]) never reach the update
    assert obs[:, 0].max() < 1.0


def test_skip_iters_use_all_trajectories():
    model = _model(2, n_models=6, epsilon=0.2, skip_iters=1)
    model.learn(total_timesteps=1)
    assert model.last_epopt["epsilon"] == 1.0
    assert len(model.last_epopt["kept_models"]) == 6
    assert model.rollout_buffer.mask.sum() == 6 * EP_LEN
    model.learn(total_timesteps=1, reset_num_timesteps=False)
    assert model.last_epopt["epsilon"] == 0.2
    assert len(model.last_epopt["kept_models"]) == 2  # ceil(0.2 * 6)


def test_advantages_are_per_trajectory():
    """GAE is cut at episode starts: the last step of each kept trajectory bootstraps only its own value."""
    model = _model(1, n_models=4, epsilon=1.0)
    model.learn(total_timesteps=1)
    buf = model.rollout_buffer
    n = len(model.last_epopt["trajectory_of_step"])
    starts = np.flatnonzero(buf.episode_starts[:n, 0])
    assert list(starts[:4]) == [0, EP_LEN, 2 * EP_LEN, 3 * EP_LEN]
