"""``sim2real train``: train a policy from a :class:`~sim2real.train.config.RunConfig`.

Output folder layout::

    <out>/run.yaml                 resolved run config (what was trained)
    <out>/tb/                      TensorBoard logs (SB3 scalars, eval/*, adr/*, epopt/*)
    <out>/checkpoints/step_N/      atomic checkpoints (see sim2real.train.checkpoint)
    <out>/evaluations.json         periodic evaluation history
    <out>/best/                    best-evaluated policy (``eval.save_best``; sim2real.train.warmstart)
    <out>/model.zip, vecnormalize.pkl   the final policy (``sim2real evaluate/export --policy <out>``)
    <out>/adr_profile.yaml         final ADR ranges as a profile (ADR runs)
    <out>/report.md, report.json   final report
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from sim2real._io import atomic_write_text, atomic_write_yaml, check_output_path
from sim2real.errors import ConfigError
from sim2real.train.checkpoint import (check_checkpoint_resume, check_resume_config, latest_checkpoint, read_state,
                                       restore_rng, save_checkpoint)
from sim2real.train.config import RunConfig, algo_class, resolve_schedules
from sim2real.train.policy import run_episodes, summarize
from sim2real.train.vec import build_vec_env, create_env
from sim2real.train.warmstart import init_from, maybe_save_best


@dataclass
class TrainResult:
    out_dir: Path
    num_timesteps: int
    final_eval: dict[str, float]
    wall_time_s: float


def _load_profiles(cfg: RunConfig) -> tuple[Any, Any]:
    """Validate the training and evaluation profiles before anything starts."""
    if cfg.profile is None and cfg.eval.profile in (None, "nominal"):
        return None, None
    from sim2real.profiles import load_profile

    robot = cfg.robot
    prof = load_profile(cfg.profile, robot=robot) if cfg.profile is not None else None
    ev = load_profile(cfg.eval.profile, robot=robot) if cfg.eval.profile is not None else None
    return prof, ev


def _policy_kwargs(cfg: RunConfig) -> dict[str, Any]:
    import torch.nn as nn

    kwargs = dict(cfg.hyperparameters.get("policy_kwargs") or {})
    if isinstance(kwargs.get("features_extractor_class"), str):  # "module:Class", checked at config load
        from sim2real.train.hyperparams import import_object

        kwargs["features_extractor_class"] = import_object(kwargs["features_extractor_class"])
    if cfg.net_arch is not None:
        arch = cfg.net_arch
        if cfg.algo == "sac" and isinstance(arch, dict) and "vf" in arch:
            arch = {"pi": arch.get("pi", []), "qf": arch["vf"]}
        kwargs["net_arch"] = arch
    if cfg.activation is not None:
        kwargs["activation_fn"] = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU,
                                   "leaky_relu": nn.LeakyReLU}[cfg.activation]
    return kwargs


def _max_episode_steps(venv: Any, cfg: RunConfig) -> int:
    if "max_episode_steps" in cfg.env_kwargs:
        return int(cfg.env_kwargs["max_episode_steps"])
    spec = venv.get_attr("spec", indices=[0])[0]
    if spec is None or spec.max_episode_steps is None:
        raise ConfigError("epopt_ppo needs a finite episode length: set env.kwargs.max_episode_steps",
                          file=cfg.source, path=("env", "kwargs"))
    return int(spec.max_episode_steps)


def _robot_of(cfg: RunConfig) -> Any:
    if cfg.robot is None:
        probe = create_env(cfg.env_id, cfg.env_kwargs)
        try:
            robot = probe.get_wrapper_attr("robot")
        except AttributeError:
            robot = None
        probe.close()
        return robot
    from sim2real.robots import load_robot

    return load_robot(cfg.robot)


def make_callbacks(cfg: RunConfig, out: Path, venv: Any, vecnorm: Any, eval_profile: Any, history: list,
                   adr_state: Any, log: Callable[[str], None], wall: Callable[[], float]) -> list:
    from stable_baselines3.common.callbacks import BaseCallback

    class PeriodicCallback(BaseCallback):
        """Evaluation every ``eval.freq`` and checkpoint every ``checkpoint.freq`` env steps."""

        def __init__(self) -> None:
            super().__init__()
            self.next_eval = 0
            self.next_ckpt = 0

        def _on_training_start(self) -> None:
            n = self.num_timesteps
            self.next_eval = (n // cfg.eval.freq + 1) * cfg.eval.freq if cfg.eval.freq else -1
            self.next_ckpt = (n // cfg.checkpoint_freq + 1) * cfg.checkpoint_freq if cfg.checkpoint_freq else -1

        def _on_step(self) -> bool:
            n = self.num_timesteps
            if self.next_eval > 0 and n >= self.next_eval:
                self.next_eval += cfg.eval.freq * max(1, (n - self.next_eval) // cfg.eval.freq + 1)
                res = evaluate_model(self.model, cfg, vecnorm, eval_profile, cfg.eval.episodes, seed=10_000)
                res["num_timesteps"] = n
                history.append(res)
                self.logger.record("eval/mean_return", res["mean_return"])
                if not np.isnan(res["success_rate"]):
                    self.logger.record("eval/success_rate", res["success_rate"])
                atomic_write_text(out / "evaluations.json", json.dumps(history, indent=1))
                log(f"[eval @ {n} steps] success {res['success_rate']:.2f}  return {res['mean_return']:.2f}")
                if cfg.eval.save_best and maybe_save_best(out, self.model, vecnorm, res):
                    log(f"[eval @ {n} steps] new best: {out / 'best'}")
            if self.next_ckpt > 0 and n >= self.next_ckpt:
                self.next_ckpt += cfg.checkpoint_freq * max(1, (n - self.next_ckpt) // cfg.checkpoint_freq + 1)
                save_checkpoint(out, self.model, vecnorm, run_state(self.model, history, adr_state, wall()))
            return True

    cbs: list = [PeriodicCallback()]
    if adr_state is not None:
        from sim2real.train.adr import make_adr_callback

        cbs.append(make_adr_callback(adr_state, cfg.seed))
    return cbs


def run_state(model: Any, history: list, adr_state: Any, wall_time_s: float) -> dict[str, Any]:
    state: dict[str, Any] = {"evaluations": history, "wall_time_s": wall_time_s}
    if hasattr(model, "epopt_iteration"):
        state["epopt"] = {"iteration": model.epopt_iteration, "rng": model.epopt_rng.bit_generator.state}
    if adr_state is not None:
        state["adr"] = adr_state.state_dict()
    return state


def evaluate_model(model: Any, cfg: RunConfig, vecnorm: Any, profile: Any, episodes: int, seed: int) -> dict:
    """Run ``episodes`` deterministic episodes on one env with ``profile``; summary dict."""
    env = create_env(cfg.env_id, cfg.env_kwargs, cfg.robot, profile)
    try:
        def act(obs: Any) -> np.ndarray:
            if vecnorm is not None and vecnorm.norm_obs:
                obs = vecnorm.normalize_obs(obs)
            return model.predict(obs, deterministic=cfg.eval.deterministic)[0]

        return summarize(run_episodes(act, env, episodes, seed=seed))
    finally:
        env.close()


def train(cfg: RunConfig, out_dir: str | Path, *, resume: bool = False, progress_bar: bool = True,
          verbose: int = 0, log: Callable[[str], None] = print) -> TrainResult:
    """Train (or resume) a run; writes everything into ``out_dir``; returns the final evaluation."""
    from stable_baselines3.common.utils import set_random_seed
    from stable_baselines3.common.vec_env import VecNormalize

    import torch

    # small MLPs: one intra-op thread is fastest and leaves the cores to the env workers
    torch.set_num_threads(1)
    out = Path(out_dir)
    prof, eval_prof = _load_profiles(cfg)
    check_output_path(out, folder=True)
    check_checkpoint_resume(out, resume)
    if resume:
        check_resume_config(out, cfg.to_dict())
    ck = latest_checkpoint(out) if resume else None  # the newest intact one
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_yaml(out / "run.yaml", cfg.to_dict())
    state = read_state(ck) if ck is not None else {}
    start = time.time()

    def wall() -> float:
        """Training wall time in seconds, including the runs this one resumes."""
        return time.time() - start + float(state.get("wall_time_s", 0.0))

    adr_state = None
    train_profile: Any = cfg.profile
    if cfg.adr is not None:
        from sim2real.train.adr import ADRState

        adr_state = ADRState(prof, cfg.adr, file=cfg.source, robot=_robot_of(cfg))
        if "adr" in state:
            adr_state.load_state_dict(state["adr"])
        train_profile = adr_state.profile()

    seed = cfg.seed + (int(state.get("num_timesteps", 0)) if ck is not None else 0)
    set_random_seed(cfg.seed)
    venv = build_vec_env(cfg.env_id, cfg.env_kwargs, cfg.robot, train_profile, cfg.n_envs, seed, cfg.vec_env)
    vecnorm = None
    try:
        if cfg.normalize.obs or cfg.normalize.reward:
            if ck is not None and (ck / "vecnormalize.pkl").is_file():
                vecnorm = VecNormalize.load(str(ck / "vecnormalize.pkl"), venv)
                vecnorm.training = True
            else:
                gamma = float(cfg.hyperparameters.get("gamma", 0.99))
                vecnorm = VecNormalize(venv, norm_obs=cfg.normalize.obs, norm_reward=cfg.normalize.reward,
                                       clip_obs=cfg.normalize.clip_obs, clip_reward=cfg.normalize.clip_reward,
                                       gamma=gamma)
        env = vecnorm if vecnorm is not None else venv
        cls = algo_class(cfg.algo)
        extra: dict[str, Any] = {}
        if cfg.algo == "epopt_ppo":
            from sim2real.train.epopt import EPOptPPO, profile_model_sampler

            assert cfg.epopt is not None
            extra = {"model_sampler": profile_model_sampler(prof, _robot_of(cfg)), "epsilon": cfg.epopt.epsilon,
                     "n_models": cfg.epopt.n_models, "skip_iters": cfg.epopt.skip_iters, "sampler_seed": cfg.seed}
            n_steps = EPOptPPO.steps_per_env(cfg.epopt.n_models, cfg.n_envs, _max_episode_steps(venv, cfg))
        tb = str(out / "tb")
        if ck is not None:
            model = cls.load(str(ck / "model.zip"), env=env, device=cfg.device, tensorboard_log=tb)
            if (ck / "replay_buffer.pkl").is_file():
                model.load_replay_buffer(str(ck / "replay_buffer.pkl"))
            if cfg.algo == "epopt_ppo":
                model.model_sampler = extra["model_sampler"]
                model.epopt_iteration = int(state["epopt"]["iteration"])
                model.epopt_rng.bit_generator.state = state["epopt"]["rng"]
            restore_rng(ck)
            log(f"resuming {out} from {ck.name} at {model.num_timesteps} steps")
        else:
            hp = resolve_schedules({k: v for k, v in cfg.hyperparameters.items() if k != "policy_kwargs"})
            if cfg.algo == "epopt_ppo":
                hp["n_steps"] = n_steps
                hp.setdefault("batch_size", min(256, n_steps * cfg.n_envs))
            model = cls(cfg.policy, env, policy_kwargs=_policy_kwargs(cfg), seed=cfg.seed, device=cfg.device,
                        tensorboard_log=tb, verbose=verbose, **hp, **extra)
            if cfg.init_from is not None:
                init_from(model, vecnorm, cfg.init_from)
                log(f"initialised the policy from {cfg.init_from}")
        history: list = list(state.get("evaluations", []))
        callbacks = make_callbacks(cfg, out, env, vecnorm, eval_prof if eval_prof is not None else cfg.eval.profile,
                                   history, adr_state, log, wall)
        remaining = max(0, cfg.total_timesteps - int(model.num_timesteps))
        if remaining > 0:
            model.learn(total_timesteps=remaining, callback=callbacks, progress_bar=progress_bar,
                        reset_num_timesteps=ck is None, tb_log_name="run")
        save_checkpoint(out, model, vecnorm, run_state(model, history, adr_state, wall()))
        model.save(str(out / "model.zip"))
        if vecnorm is not None:
            vecnorm.save(str(out / "vecnormalize.pkl"))
        if adr_state is not None:
            adr_state.profile().save(out / "adr_profile.yaml")
        final = evaluate_model(model, cfg, vecnorm, eval_prof if eval_prof is not None else cfg.eval.profile,
                               cfg.eval.episodes, seed=20_000)
        result = TrainResult(out, int(model.num_timesteps), final, wall())
        from sim2real.train.report import write_train_report

        write_train_report(out, cfg, result, history, adr_state)
        return result
    finally:
        env_to_close = vecnorm if vecnorm is not None else venv
        env_to_close.close()
