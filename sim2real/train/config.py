"""Run configs: the YAML file that says what ``sim2real train`` trains, validated at load.

A run config names the env, robot, randomization profile, algorithm and its
stable-baselines3 hyperparameters, the number of parallel envs, the step budget and
the evaluation / checkpoint cadence. Every key is checked before any work starts;
errors are :class:`~sim2real.errors.ConfigError` naming the file and key path, e.g.
``reach.yaml: hyperparameters.n_stepz: unknown hyperparameter of PPO``.

Example::

    env: {id: sim2real/KukaReach-v0, kwargs: {max_episode_steps: 100}}
    robot: kuka_iiwa
    profile: nominal
    algo: ppo
    policy: MlpPolicy
    net_arch: [128, 128]
    hyperparameters: {learning_rate: 3.0e-4, n_steps: 512, batch_size: 128}
    n_envs: 2
    total_timesteps: 200000
    seed: 0
    normalize: {obs: true, reward: true}
    eval: {freq: 20000, episodes: 20, profile: nominal}
    checkpoint: {freq: 20000}
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from sim2real._check import Checker
from sim2real._io import data_dir, read_yaml_file
from sim2real.errors import CheckpointError, ConfigError
from sim2real.train.hyperparams import (MAX_TIMESTEPS, algo_class, check_batch_size,
                                      check_hyperparameters, parse_schedule, resolve_schedules)
from sim2real.train.warmstart import find_init_model

__all__ = ["RunConfig", "EvalConfig", "NormalizeConfig", "EPOptConfig", "ADRConfig", "load_run_config",
           "parse_run_config", "algo_class", "parse_schedule", "resolve_schedules"]

ALGOS = ("ppo", "sac", "epopt_ppo")
POLICIES = ("MlpPolicy", "CnnPolicy", "MultiInputPolicy")
ACTIVATIONS = ("tanh", "relu", "elu", "leaky_relu")
ADR_METRICS = ("success", "return")
_TOP_KEYS = {"description", "env", "robot", "profile", "algo", "policy", "net_arch", "activation",
             "hyperparameters", "n_envs", "vec_env", "total_timesteps", "seed", "normalize", "eval",
             "checkpoint", "epopt", "adr", "device", "init_from"}


@dataclass(frozen=True)
class EvalConfig:
    freq: int = 10000          # env steps (summed over parallel envs) between evaluations; 0 = off
    episodes: int = 10
    profile: str | dict | None = "nominal"
    deterministic: bool = True
    save_best: bool = False    # keep the best-evaluated policy in <out>/best/ (sim2real.train.warmstart)


@dataclass(frozen=True)
class NormalizeConfig:
    obs: bool = False
    reward: bool = False
    clip_obs: float = 10.0
    clip_reward: float = 10.0


@dataclass(frozen=True)
class EPOptConfig:
    epsilon: float = 0.1       # CVaR level: keep trajectories with return <= the epsilon-percentile
    n_models: int = 32         # models (one trajectory each) per iteration
    skip_iters: int = 0        # first iterations use epsilon = 1 (all trajectories)


@dataclass(frozen=True)
class ADRConfig:
    p_b: float = 0.5           # probability an episode pins one parameter to a range boundary
    buffer_size: int = 10      # m: boundary evaluations before a widen/narrow decision
    delta: float = 0.05        # step, as a fraction of the profile's limit span of that parameter
    t_low: float = 0.5         # narrow when mean performance <= t_low
    t_high: float = 0.8        # widen when mean performance >= t_high
    metric: str = "success"    # success (info["is_success"]) or return (episode return)
    entries: tuple[str, ...] | None = None   # entries to adapt (default: all randomized ones)
    nominal: Mapping[str, float] = field(default_factory=dict)  # start value per entry override


@dataclass(frozen=True)
class RunConfig:
    """A validated run config; ``source`` is the file it came from (or None)."""

    env_id: str
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    robot: str | None = None
    profile: str | dict | None = None
    algo: str = "ppo"
    policy: str = "MlpPolicy"
    net_arch: Any = None
    activation: str | None = None
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    n_envs: int = 1
    vec_env: str = "auto"      # auto (subproc when n_envs > 1) | subproc | dummy
    total_timesteps: int = 100000
    seed: int = 0
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint_freq: int = 0   # env steps between checkpoints; 0 = only at the end
    epopt: EPOptConfig | None = None
    adr: ADRConfig | None = None
    device: str = "cpu"
    init_from: str | None = None   # policy folder / model.zip whose weights and normalisation start the run
    description: str = ""
    source: str | None = None

    def with_overrides(self, **kwargs: Any) -> "RunConfig":
        return replace(self, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """YAML-able dict that :func:`load_run_config` accepts back."""
        out: dict[str, Any] = {
            "description": self.description,
            "env": {"id": self.env_id, "kwargs": dict(self.env_kwargs)},
            "robot": self.robot, "profile": self.profile, "algo": self.algo, "policy": self.policy,
            "net_arch": self.net_arch, "activation": self.activation,
            "hyperparameters": dict(self.hyperparameters), "n_envs": self.n_envs, "vec_env": self.vec_env,
            "total_timesteps": self.total_timesteps, "seed": self.seed,
            "normalize": asdict(self.normalize), "eval": asdict(self.eval),
            "checkpoint": {"freq": self.checkpoint_freq}, "device": self.device,
        }
        if self.init_from is not None:
            out["init_from"] = self.init_from
        if self.epopt is not None:
            out["epopt"] = asdict(self.epopt)
        if self.adr is not None:
            adr = asdict(self.adr)
            adr["entries"] = list(adr["entries"]) if adr["entries"] is not None else None
            adr["nominal"] = dict(adr["nominal"])
            out["adr"] = adr
        return {k: v for k, v in out.items() if v is not None}


def parse_run_config(data: Any, file: str | None = None) -> RunConfig:
    """Validate a run-config mapping (as read from YAML) into a :class:`RunConfig`."""
    chk = Checker(file)
    data = chk.mapping(data, (), _TOP_KEYS)
    if "env" not in data:
        chk.fail(("env",), "missing required key (expected {id: ENV_ID, kwargs: {...}})")
    env = data["env"]
    if isinstance(env, str):
        env = {"id": env}
    env = chk.mapping(env, ("env",), {"id", "kwargs"})
    if "id" not in env:
        chk.fail(("env", "id"), "missing required key (a Gymnasium env id such as sim2real/KukaReach-v0)")
    env_id = chk.string(env["id"], ("env", "id"))
    env_kwargs = chk.mapping(env.get("kwargs") or {}, ("env", "kwargs"))
    for key in ("profile", "robot"):
        if key in env_kwargs:
            chk.fail(("env", "kwargs", key), f"set the top-level '{key}' key instead")

    algo = chk.string(data.get("algo", "ppo"), ("algo",), ALGOS)
    policy = chk.string(data.get("policy", "MlpPolicy"), ("policy",), POLICIES)
    robot = chk.string(data["robot"], ("robot",)) if data.get("robot") is not None else None
    profile = data.get("profile")
    if profile is not None and not isinstance(profile, (str, Mapping)):
        chk.fail(("profile",), f"expected a profile name, path or inline mapping, got {profile!r}")
    if isinstance(profile, str) and file and not Path(profile).is_absolute() and Path(profile).suffix in (".yaml", ".yml"):
        rel = Path(file).parent / profile
        if rel.exists():  # paths are relative to the run config file
            profile = str(rel.resolve())

    net_arch = data.get("net_arch")
    if net_arch is not None:
        if isinstance(net_arch, list):
            for i, n in enumerate(net_arch):
                chk.integer(n, ("net_arch", i), 1)
        else:
            arch = chk.mapping(net_arch, ("net_arch",), {"pi", "vf", "qf"})
            for key, layers in arch.items():
                if not isinstance(layers, list):
                    chk.fail(("net_arch", key), f"expected a list of layer sizes, got {layers!r}")
                for i, n in enumerate(layers):
                    chk.integer(n, ("net_arch", key, i), 1)
            net_arch = arch
    activation = data.get("activation")
    if activation is not None:
        chk.string(activation, ("activation",), ACTIVATIONS)

    hp_algo = "ppo" if algo == "epopt_ppo" else algo
    hp = check_hyperparameters(chk, hp_algo, chk.mapping(data.get("hyperparameters") or {}, ("hyperparameters",)),
                                ("hyperparameters",), policy)
    if algo == "epopt_ppo" and "n_steps" in hp:
        chk.fail(("hyperparameters", "n_steps"), "not used by epopt_ppo (set by epopt.n_models and the episode length)")

    n_envs = chk.integer(data.get("n_envs", 1), ("n_envs",), 1)
    vec_env = chk.string(data.get("vec_env", "auto"), ("vec_env",), ("auto", "subproc", "dummy"))
    total = chk.integer(data.get("total_timesteps", 100000), ("total_timesteps",), 1)
    if total > MAX_TIMESTEPS:
        chk.fail(("total_timesteps",), f"expected an integer in 1..{MAX_TIMESTEPS:.0e}, got {total}")
    check_batch_size(chk, algo, hp, n_envs, ("hyperparameters",))
    seed = chk.integer(data.get("seed", 0), ("seed",), 0)
    device = chk.string(data.get("device", "cpu"), ("device",))

    norm = data.get("normalize", False)
    if isinstance(norm, bool):
        normalize = NormalizeConfig(obs=norm, reward=norm)
    else:
        n = chk.mapping(norm, ("normalize",), {"obs", "reward", "clip_obs", "clip_reward"})
        normalize = NormalizeConfig(
            obs=chk.boolean(n.get("obs", True), ("normalize", "obs")),
            reward=chk.boolean(n.get("reward", True), ("normalize", "reward")),
            clip_obs=chk.number(n.get("clip_obs", 10.0), ("normalize", "clip_obs"), 0.0),
            clip_reward=chk.number(n.get("clip_reward", 10.0), ("normalize", "clip_reward"), 0.0))
        if policy != "MlpPolicy" and normalize.obs:
            chk.fail(("normalize", "obs"), f"observation normalisation is only supported with MlpPolicy, not {policy}")

    ev = chk.mapping(data.get("eval") or {}, ("eval",), {"freq", "episodes", "profile", "deterministic",
                                                                 "save_best"})
    ev_profile = ev.get("profile", "nominal")
    if ev_profile is not None and not isinstance(ev_profile, (str, Mapping)):
        chk.fail(("eval", "profile"), f"expected a profile name, path or mapping, got {ev_profile!r}")
    evalc = EvalConfig(freq=chk.integer(ev.get("freq", 10000), ("eval", "freq"), 0),
                       episodes=chk.integer(ev.get("episodes", 10), ("eval", "episodes"), 1),
                       profile=ev_profile,
                       deterministic=chk.boolean(ev.get("deterministic", True), ("eval", "deterministic")),
                       save_best=chk.boolean(ev.get("save_best", False), ("eval", "save_best")))
    if evalc.save_best and evalc.freq == 0:
        chk.fail(("eval", "save_best"), "needs periodic evaluation (eval.freq > 0)")
    ck = chk.mapping(data.get("checkpoint") or {}, ("checkpoint",), {"freq"})
    ck_freq = chk.integer(ck.get("freq", 0), ("checkpoint", "freq"), 0)

    epopt = None
    if "epopt" in data:
        if algo != "epopt_ppo":
            chk.fail(("epopt",), f"only used with algo: epopt_ppo (algo is {algo})")
    if algo == "epopt_ppo":
        e = chk.mapping(data.get("epopt") or {}, ("epopt",), {"epsilon", "n_models", "skip_iters"})
        epopt = EPOptConfig(epsilon=chk.number(e.get("epsilon", 0.1), ("epopt", "epsilon"), 0.0, 1.0),
                            n_models=chk.integer(e.get("n_models", 32), ("epopt", "n_models"), 1),
                            skip_iters=chk.integer(e.get("skip_iters", 0), ("epopt", "skip_iters"), 0))
        if epopt.epsilon <= 0:
            chk.fail(("epopt", "epsilon"), "expected a number in (0, 1]")
    adr = None
    if data.get("adr") is not None:
        a = chk.mapping(data["adr"], ("adr",),
                        {"p_b", "buffer_size", "delta", "t_low", "t_high", "metric", "entries", "nominal"})
        entries = a.get("entries")
        if entries is not None:
            if not isinstance(entries, list) or not entries:
                chk.fail(("adr", "entries"), f"expected a non-empty list of profile entry names, got {entries!r}")
            entries = tuple(chk.string(e, ("adr", "entries", i)) for i, e in enumerate(entries))
        nominal = chk.mapping(a.get("nominal") or {}, ("adr", "nominal"))
        for k, v in nominal.items():
            chk.number(v, ("adr", "nominal", k))
        adr = ADRConfig(p_b=chk.number(a.get("p_b", 0.5), ("adr", "p_b"), 0.0, 1.0),
                        buffer_size=chk.integer(a.get("buffer_size", 10), ("adr", "buffer_size"), 1),
                        delta=chk.number(a.get("delta", 0.05), ("adr", "delta"), 0.0, 1.0),
                        t_low=chk.number(a.get("t_low", 0.5), ("adr", "t_low")),
                        t_high=chk.number(a.get("t_high", 0.8), ("adr", "t_high")),
                        metric=chk.string(a.get("metric", "success"), ("adr", "metric"), ADR_METRICS),
                        entries=entries, nominal=nominal)
        if adr.t_low > adr.t_high:
            chk.fail(("adr", "t_low"), f"expected t_low <= t_high ({adr.t_high}), got {adr.t_low}")
        if adr.delta <= 0:
            chk.fail(("adr", "delta"), "expected a number in (0, 1]")
        if profile is None:
            chk.fail(("adr",), "ADR needs a 'profile' whose entries give the parameter limits")
        if algo == "epopt_ppo":
            chk.fail(("adr",), "ADR is used with algo ppo or sac, not epopt_ppo")
    if epopt is not None and profile is None:
        chk.fail(("profile",), "epopt_ppo samples models from a profile; set 'profile'")

    init_from = None
    if data.get("init_from") is not None:
        init_from = chk.string(data["init_from"], ("init_from",))
        if file and not Path(init_from).is_absolute() and (Path(file).parent / init_from).exists():
            init_from = str((Path(file).parent / init_from).resolve())  # relative to the run config file
        try:
            find_init_model(init_from)
        except CheckpointError:
            chk.fail(("init_from",), f"{init_from}: no trained policy there (expected a run folder, its best/ "
                     f"folder or a model.zip file)")
        if algo == "sac":
            chk.fail(("init_from",), "supported for ppo and epopt_ppo (an off-policy warm start needs a replay buffer)")

    return RunConfig(env_id=env_id, env_kwargs=env_kwargs, robot=robot, profile=profile, algo=algo, policy=policy,
                     net_arch=net_arch, activation=activation, hyperparameters=hp, n_envs=n_envs, vec_env=vec_env,
                     total_timesteps=total, seed=seed, normalize=normalize, eval=evalc, checkpoint_freq=ck_freq,
                     epopt=epopt, adr=adr, device=device, init_from=init_from, description=str(data.get("description") or ""),
                     source=file)


def load_run_config(src: str | Path | Mapping[str, Any]) -> RunConfig:
    """Load and validate a run config from a path, a shipped name (``configs/train/<name>.yaml``) or a dict."""
    if isinstance(src, Mapping):
        return parse_run_config(dict(src))
    path = Path(src)
    if not path.exists() and path.suffix == "" :
        shipped = data_dir("configs") / "train" / f"{src}.yaml"
        if shipped.exists():
            path = shipped
    if not path.exists():
        raise ConfigError("run config not found", file=str(src))
    data = read_yaml_file(path, what="run config")
    return parse_run_config(data, file=str(path))
