"""EPOpt-ε (Rajeswaran et al. 2017, "EPOpt: Learning Robust Neural Network Policies Using Model Ensembles").

Each iteration samples ``n_models`` models (physics parameter sets) from the source
distribution (the run's profile), rolls out one trajectory per model with the current
policy, and takes the policy update only on the trajectories whose return is at or
below the ε-percentile of the batch (the CVaR_ε objective). For the first
``skip_iters`` iterations ε = 1 (every trajectory), as in the paper.

Built on stable-baselines3's PPO: :class:`EPOptPPO` overrides ``collect_rollouts`` to
run whole episodes per pinned model (the models are queued on each env's
:class:`~sim2real.train.vec.PinnedParamsWrapper`, which passes them as
``reset(options={"params": ...})``), computes GAE per trajectory over the whole batch,
then masks the transitions of the kept trajectories in :class:`MaskedRolloutBuffer`,
whose ``get()`` (what ``PPO.train`` iterates) yields only those transitions.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Generator, Mapping

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.type_aliases import RolloutBufferSamples
from stable_baselines3.common.utils import obs_as_tensor

ModelSampler = Callable[[np.random.Generator], Mapping[str, Any]]


class MaskedRolloutBuffer(RolloutBuffer):
    """A rollout buffer that may be partly filled and yields only masked-in transitions.

    ``mask`` has shape ``(buffer_size, n_envs)``; ``1`` marks a transition of a kept
    trajectory. ``compute_returns_and_advantage`` runs GAE over the ``pos`` filled steps.
    """

    mask: np.ndarray

    def reset(self) -> None:
        super().reset()
        self.mask = np.zeros((self.buffer_size, self.n_envs), dtype=np.float32)

    def compute_returns_and_advantage(self, last_values: th.Tensor, dones: np.ndarray) -> None:
        """GAE(λ) over steps ``[0, pos)``; episode starts cut the recursion, so it is per trajectory."""
        n = self.pos if self.pos > 0 else self.buffer_size
        last_values = last_values.clone().cpu().numpy().flatten()
        last_gae = 0.0
        for step in reversed(range(n)):
            if step == n - 1:
                next_non_terminal = 1.0 - dones.astype(np.float32)
                next_values = last_values
            else:
                next_non_terminal = 1.0 - self.episode_starts[step + 1]
                next_values = self.values[step + 1]
            delta = self.rewards[step] + self.gamma * next_values * next_non_terminal - self.values[step]
            last_gae = delta + self.gamma * self.gae_lambda * next_non_terminal * last_gae
            self.advantages[step] = last_gae
        self.returns = self.advantages + self.values

    def kept_indices(self) -> np.ndarray:
        """Flat indices (``env * buffer_size + step``, SB3's flattened order) of masked-in transitions."""
        return np.flatnonzero(self.mask.swapaxes(0, 1).reshape(-1))

    def get(self, batch_size: int | None = None) -> Generator[RolloutBufferSamples, None, None]:
        indices = np.random.permutation(self.kept_indices())
        if not self.generator_ready:
            for name in ("observations", "actions", "values", "log_probs", "advantages", "returns"):
                self.__dict__[name] = self.swap_and_flatten(self.__dict__[name])
            self.generator_ready = True
        if batch_size is None:
            batch_size = len(indices)
        start = 0
        while start < len(indices):
            yield self._get_samples(indices[start:start + batch_size])
            start += batch_size


def cvar_keep(returns: np.ndarray, epsilon: float) -> tuple[np.ndarray, float]:
    """Boolean mask of trajectories with return ≤ the ε-quantile (inverted CDF), and that threshold.

    With N returns this keeps the ⌈εN⌉ worst (more on ties); ε = 1 keeps all.
    """
    returns = np.asarray(returns, dtype=float)
    if epsilon >= 1.0:
        return np.ones(len(returns), dtype=bool), float(np.max(returns))
    threshold = float(np.quantile(returns, epsilon, method="inverted_cdf"))
    return returns <= threshold, threshold


class EPOptPPO(PPO):
    """PPO whose update uses only the worst-ε trajectories of models sampled per iteration.

    :param model_sampler: ``rng -> {entry: value}`` drawing one model (pinned profile entries).
    :param epsilon: CVaR level ε in (0, 1].
    :param n_models: models (one trajectory each) per iteration; ``n_steps`` must be at least
        ``ceil(n_models / n_envs) * max_episode_steps`` so every trajectory completes.
    :param skip_iters: iterations that use ε = 1 first. An iteration holds ``n_models`` whole
        trajectories, so its size in steps grows with the episode length; choose ``skip_iters``
        so that the warm-up covers enough *steps* for the policy to do the task, or the ε-tail
        is made of the shortest early-falling trajectories and the update has almost no data
        (docs/training.md, "Choosing skip_iters").
    """

    def __init__(self, policy: Any, env: Any, *, model_sampler: ModelSampler | None = None, epsilon: float = 0.1,
                 n_models: int = 32, skip_iters: int = 0, sampler_seed: int | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("rollout_buffer_class", MaskedRolloutBuffer)
        with warnings.catch_warnings():
            # SB3 warns when batch_size does not divide n_steps * n_envs; EPOpt fills the buffer
            # only partly (whole trajectories, then the ε filter), so that advice does not apply
            warnings.filterwarnings("ignore", message=".*mini-batch size.*")
            super().__init__(policy, env, **kwargs)
        self.model_sampler = model_sampler
        self.epsilon = float(epsilon)
        self.n_models = int(n_models)
        self.skip_iters = int(skip_iters)
        self.epopt_iteration = 0
        self.epopt_rng = np.random.default_rng(sampler_seed)
        self.last_epopt: dict[str, Any] = {}

    def _excluded_save_params(self) -> list[str]:
        return super()._excluded_save_params() + ["model_sampler"]

    @staticmethod
    def steps_per_env(n_models: int, n_envs: int, max_episode_steps: int) -> int:
        return int(math.ceil(n_models / n_envs)) * int(max_episode_steps)

    def current_epsilon(self) -> float:
        return 1.0 if self.epopt_iteration < self.skip_iters else self.epsilon

    def collect_rollouts(self, env: Any, callback: Any, rollout_buffer: RolloutBuffer, n_rollout_steps: int) -> bool:
        assert isinstance(rollout_buffer, MaskedRolloutBuffer), "EPOptPPO needs a MaskedRolloutBuffer"
        if self.model_sampler is None:
            raise RuntimeError("EPOptPPO.model_sampler is not set (set it after loading a saved model)")
        n_envs = env.num_envs
        models = [dict(self.model_sampler(self.epopt_rng)) for _ in range(self.n_models)]
        assigned = [list(range(i, self.n_models, n_envs)) for i in range(n_envs)]
        for i in range(n_envs):
            env.env_method("queue_params", [models[k] for k in assigned[i]], assigned[i], indices=[i])
        # every iteration starts fresh episodes, so each queued model gets a whole trajectory
        self._last_obs = env.reset()
        self._last_episode_starts = np.ones((n_envs,), dtype=bool)

        self.policy.set_training_mode(False)
        rollout_buffer.reset()
        if self.use_sde:
            self.policy.reset_noise(n_envs)
        callback.on_rollout_start()

        traj = np.full((n_rollout_steps, n_envs), -1, dtype=np.int64)
        returns = np.full(self.n_models, np.nan)
        remaining = np.array([len(a) for a in assigned])
        n_steps = 0
        dones = np.zeros(n_envs, dtype=bool)
        new_obs = self._last_obs
        while n_steps < n_rollout_steps and remaining.sum() > 0:
            if self.use_sde and self.sde_sample_freq > 0 and n_steps % self.sde_sample_freq == 0:
                self.policy.reset_noise(n_envs)  # gSDE: new exploration matrix every sde_sample_freq steps (as PPO)
            with th.no_grad():
                actions, values, log_probs = self.policy(obs_as_tensor(self._last_obs, self.device))
            actions = actions.cpu().numpy()
            clipped = actions
            if isinstance(self.action_space, spaces.Box):
                clipped = (self.policy.unscale_action(actions) if self.policy.squash_output
                           else np.clip(actions, self.action_space.low, self.action_space.high))
            new_obs, rewards, dones, infos = env.step(clipped)
            self.num_timesteps += n_envs
            callback.update_locals(locals())
            if not callback.on_step():
                return False
            self._update_info_buffer(infos, dones)
            for i, info in enumerate(infos):
                tag = info.get("pinned_tag")
                if isinstance(tag, (int, np.integer)) and not isinstance(tag, bool):
                    traj[n_steps, i] = int(tag)
                    if dones[i]:
                        returns[int(tag)] = float(info["episode"]["r"]) if "episode" in info else np.nan
                        remaining[i] -= 1
                if (dones[i] and info.get("terminal_observation") is not None
                        and info.get("TimeLimit.truncated", False)):
                    terminal_obs = self.policy.obs_to_tensor(info["terminal_observation"])[0]
                    with th.no_grad():
                        rewards[i] += self.gamma * self.policy.predict_values(terminal_obs)[0]
            if isinstance(self.action_space, spaces.Discrete):
                actions = actions.reshape(-1, 1)
            rollout_buffer.add(self._last_obs, actions, rewards, self._last_episode_starts, values, log_probs)
            self._last_obs = new_obs
            self._last_episode_starts = dones
            n_steps += 1

        with th.no_grad():
            last_values = self.policy.predict_values(obs_as_tensor(new_obs, self.device))
        rollout_buffer.compute_returns_and_advantage(last_values=last_values, dones=dones)

        complete = np.flatnonzero(~np.isnan(returns))
        eps = self.current_epsilon()
        kept_models: np.ndarray = np.array([], dtype=int)
        threshold = float("nan")
        if len(complete):
            keep, threshold = cvar_keep(returns[complete], eps)
            kept_models = complete[keep]
        rollout_buffer.mask[:n_steps] = np.isin(traj[:n_steps], kept_models).astype(np.float32)
        self.last_epopt = {"iteration": self.epopt_iteration, "epsilon": eps, "returns": returns.copy(),
                           "kept_models": kept_models.copy(), "threshold": threshold,
                           "trajectory_of_step": traj[:n_steps].copy()}
        self.logger.record("epopt/epsilon", eps)
        self.logger.record("epopt/threshold_return", threshold)
        self.logger.record("epopt/kept_trajectories", len(kept_models))
        self.logger.record("epopt/complete_trajectories", len(complete))
        self.logger.record("epopt/kept_transitions", int(rollout_buffer.mask.sum()))
        if len(complete):
            self.logger.record("epopt/mean_model_return", float(np.mean(returns[complete])))
        self.epopt_iteration += 1

        callback.update_locals(locals())
        callback.on_rollout_end()
        return True


def profile_model_sampler(profile: Any, robot: Any = None) -> ModelSampler:
    """``rng -> {entry: {target: value}}``: one model drawn from ``profile`` (startup + reset entries)."""

    def sample(rng: np.random.Generator) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, s in profile.sample(rng, robot, when=("startup", "reset")).items():
            if s.targets:
                out[name] = {t: s.values[i].tolist() for i, t in enumerate(s.targets)}
            else:
                out[name] = s.values[0].tolist()
        return out

    return sample
