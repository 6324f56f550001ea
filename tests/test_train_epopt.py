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


def _gae_reference(rewards: np.ndarray, values: np.ndarray, gamma: float, lam: float) -> np.ndarray:
    """GAE(λ) of one complete trajectory (no bootstrap past its last step)."""
    adv = np.zeros_like(rewards)
    last = 0.0
    for t in reversed(range(len(rewards))):
        next_v = values[t + 1] if t + 1 < len(rewards) else 0.0
        last = rewards[t] + gamma * next_v - values[t] + gamma * lam * last
        adv[t] = last
    return adv


@pytest.mark.parametrize("n_envs", [1, 2])
def test_advantages_of_kept_trajectories_match_per_trajectory_gae(n_envs, monkeypatch):
    model = _model(n_envs, n_models=6, epsilon=0.5)
    monkeypatch.setattr(EPOptPPO, "train", lambda self: None)  # collection only: keep the buffer unflattened
    model.learn(total_timesteps=1)
    buf, info = model.rollout_buffer, model.last_epopt
    traj = info["trajectory_of_step"]
    assert len(info["kept_models"]) == 3
    for k in info["kept_models"]:
        steps, envs = np.nonzero(traj == k)
        assert len(steps) == EP_LEN and len(set(envs)) == 1  # one whole trajectory on one env
        env = envs[0]
        # the last step is a time-limit truncation: its reward carries γ·V(terminal obs), so GAE stops there
        ref = _gae_reference(buf.rewards[steps, env], buf.values[steps, env], model.gamma, model.gae_lambda)
        np.testing.assert_allclose(buf.advantages[steps, env], ref, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(buf.returns[steps, env], ref + buf.values[steps, env], rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(buf.mask[steps, env], 1.0)
    assert buf.mask.sum() == 3 * EP_LEN


def test_minibatches_cover_each_kept_transition_once_per_epoch(monkeypatch):
    """batch_size 3 does not divide the 10 kept transitions: every epoch still sees each exactly once."""
    model = _model(2, n_models=8, epsilon=0.25)
    model.n_epochs = 3
    model.batch_size = 3
    batches: list[tuple[int, tuple]] = []
    orig_get = MaskedRolloutBuffer.get

    def spy(self, batch_size=None):
        for batch in orig_get(self, batch_size):
            obs = batch.observations.numpy()
            batches.append((len(obs), tuple(map(tuple, np.round(obs, 5)))))
            yield batch

    monkeypatch.setattr(MaskedRolloutBuffer, "get", spy)
    model.learn(total_timesteps=1)
    assert [n for n, _ in batches] == [3, 3, 3, 1] * 3
    per_epoch = [sorted(sum((list(b) for _, b in batches[4 * e:4 * e + 4]), [])) for e in range(3)]
    assert len(per_epoch[0]) == 2 * EP_LEN and len(set(per_epoch[0])) == 2 * EP_LEN
    assert per_epoch[0] == per_epoch[1] == per_epoch[2]


def test_update_ignores_the_contents_of_dropped_transitions(monkeypatch):
    """Scrambling every masked-out row of the buffer leaves the PPO update bit-for-bit unchanged."""
    import copy

    import torch as th

    model = _model(2, n_models=8, epsilon=0.25)
    model.n_epochs = 2
    real_train = EPOptPPO.train
    monkeypatch.setattr(EPOptPPO, "train", lambda self: None)
    model.learn(total_timesteps=1)
    buf = model.rollout_buffer
    snapshot = {k: copy.deepcopy(getattr(buf, k)) for k in
                ("observations", "actions", "values", "log_probs", "advantages", "returns", "mask")}
    policy0 = copy.deepcopy(model.policy.state_dict())
    opt0 = copy.deepcopy(model.policy.optimizer.state_dict())

    def run(scramble: bool) -> dict:
        for k, v in snapshot.items():
            setattr(buf, k, copy.deepcopy(v))
        buf.generator_ready = False
        if scramble:
            drop = buf.mask == 0
            rng = np.random.default_rng(1)
            for k in ("observations", "actions", "values", "log_probs", "advantages", "returns"):
                arr = getattr(buf, k)
                arr[drop] = rng.normal(0, 100, size=arr[drop].shape)
        model.policy.load_state_dict(policy0)
        model.policy.optimizer.load_state_dict(opt0)
        np.random.seed(0)
        th.manual_seed(0)
        real_train(model)
        return {k: v.clone() for k, v in model.policy.state_dict().items()}

    clean, scrambled = run(False), run(True)
    assert any(not th.equal(clean[k], policy0[k]) for k in clean), "the update must change the policy"
    for k in clean:
        assert th.equal(clean[k], scrambled[k]), k
