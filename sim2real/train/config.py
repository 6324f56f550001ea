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

import inspect
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping


from sim2real._io import data_dir, read_yaml_file
from sim2real.errors import CheckpointError, ConfigError
from sim2real.train.warmstart import find_init_model

ALGOS = ("ppo", "sac", "epopt_ppo")
POLICIES = ("MlpPolicy", "CnnPolicy", "MultiInputPolicy")
ACTIVATIONS = ("tanh", "relu", "elu", "leaky_relu")
ADR_METRICS = ("success", "return")
# Constructor arguments the trainer sets itself; users configure them through other keys.
_RESERVED = {"policy", "env", "seed", "verbose", "tensorboard_log", "_init_setup_model", "device",
             "rollout_buffer_class", "rollout_buffer_kwargs"}
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


class _Checker:
    """Type checks that raise ConfigError with the file and key path."""

    def __init__(self, file: str | None) -> None:
        self.file = file

    def fail(self, path: tuple, msg: str) -> None:
        raise ConfigError(msg, file=self.file, path=path)

    def mapping(self, value: Any, path: tuple, allowed: set[str] | None = None) -> dict:
        if not isinstance(value, Mapping):
            self.fail(path, f"expected a mapping, got {value!r}")
        for key in value:
            if not isinstance(key, str):
                self.fail(path, f"expected string keys, got {key!r}")
            if allowed is not None and key not in allowed:
                self.fail(path + (key,), f"unknown key (expected one of: {', '.join(sorted(allowed))})")
        return dict(value)

    def integer(self, value: Any, path: tuple, minimum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                self.fail(path, f"expected an integer, got {value!r}")
        if minimum is not None and value < minimum:
            self.fail(path, f"expected an integer >= {minimum}, got {value}")
        return int(value)

    def number(self, value: Any, path: tuple, low: float | None = None, high: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(path, f"expected a number, got {value!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            self.fail(path, f"expected a number in [{low}, {high}], got {value}")
        return float(value)

    def boolean(self, value: Any, path: tuple) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"expected true or false, got {value!r}")
        return value

    def string(self, value: Any, path: tuple, choices: tuple[str, ...] | None = None) -> str:
        if not isinstance(value, str) or not value:
            self.fail(path, f"expected a non-empty string, got {value!r}")
        if choices is not None and value not in choices:
            self.fail(path, f"expected one of {', '.join(choices)}, got {value!r}")
        return value


def algo_class(algo: str) -> type:
    """The SB3 class trained for ``algo`` (``epopt_ppo`` → :class:`EPOptPPO`)."""
    if algo == "ppo":
        from stable_baselines3 import PPO
        return PPO
    if algo == "sac":
        from stable_baselines3 import SAC
        return SAC
    if algo == "epopt_ppo":
        from sim2real.train.epopt import EPOptPPO
        return EPOptPPO
    raise ConfigError(f"unknown algo {algo!r}")


def _check_policy_kwargs(chk: _Checker, cls: type, policy: str, kwargs: dict, path: tuple) -> None:
    """Keys must be keyword arguments of the SB3 policy class (``activation_fn`` etc. via top-level keys)."""
    policy_cls = cls.policy_aliases.get(policy)
    if policy_cls is None:
        return
    params = inspect.signature(policy_cls.__init__).parameters
    settable = [k for k in params if k not in ("self", "observation_space", "action_space", "lr_schedule")]
    for key in kwargs:
        if key in ("net_arch", "activation_fn"):
            chk.fail(path + (key,), f"use the top-level '{'net_arch' if key == 'net_arch' else 'activation'}' key")
        if key not in settable:
            chk.fail(path + (key,), f"unknown keyword of {policy_cls.__name__} (expected one of: {', '.join(settable)})")


_SCHEDULED = ("learning_rate", "clip_range", "clip_range_vf")


def parse_schedule(value: str, chk: "_Checker | None" = None, path: tuple = ()) -> float:
    """Start value of a ``lin_<start>`` schedule string (RL-Zoo syntax: linear from ``start`` to 0
    over the run); raises ConfigError (via ``chk``) for anything else."""
    start = None
    if value.startswith("lin_"):
        try:
            start = float(value[4:])
        except ValueError:
            start = None
    if start is None or not start > 0 or start == float("inf"):
        msg = f"expected a number or 'lin_<start>' (linear decay to 0, start > 0), got {value!r}"
        if chk is None:
            raise ConfigError(msg, path=path)
        chk.fail(path, msg)
    return float(start)


def resolve_schedules(hp: Mapping[str, Any]) -> dict[str, Any]:
    """``hp`` with ``lin_<start>`` strings replaced by SB3 schedules (progress 1 → 0 maps start → 0)."""
    from stable_baselines3.common.utils import LinearSchedule

    out = dict(hp)
    for key in _SCHEDULED:
        if isinstance(out.get(key), str):
            out[key] = LinearSchedule(parse_schedule(out[key], path=(key,)), 0.0, 1.0)
    return out


def _check_hyperparameters(chk: _Checker, algo: str, hp: dict, path: tuple, policy: str = "MlpPolicy") -> dict:
    cls = algo_class(algo)
    params = inspect.signature(cls.__init__).parameters
    name = cls.__name__
    for key, value in hp.items():
        kpath = path + (key,)
        if key in _RESERVED:
            chk.fail(kpath, f"set by the trainer; use the run config's own keys instead")
        if key in ("action_noise", "replay_buffer_class", "replay_buffer_kwargs"):
            chk.fail(kpath, "takes a Python object; not configurable from a run config")
        if key not in params or params[key].kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            chk.fail(kpath, f"unknown hyperparameter of {name} "
                     f"(expected one of: {', '.join(k for k in params if k not in _RESERVED and k != 'self')})")
        default = params[key].default
        if key in _SCHEDULED and isinstance(value, str):
            parse_schedule(value, chk, kpath)
            continue
        if key == "policy_kwargs":
            _check_policy_kwargs(chk, cls, policy, chk.mapping(value, kpath), kpath)
        elif isinstance(default, bool):
            chk.boolean(value, kpath)
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            if key == "train_freq" and isinstance(value, list):
                if len(value) != 2 or value[1] not in ("step", "episode"):
                    chk.fail(kpath, f"expected an integer or [n, 'step'|'episode'], got {value!r}")
                hp[key] = (chk.integer(value[0], kpath + (0,), 1), value[1])
            elif isinstance(default, int) and key not in ("learning_rate", "clip_range", "clip_range_vf"):
                if value is None and key == "target_kl":
                    continue
                hp[key] = chk.integer(value, kpath)
            elif value is None and default is None:
                continue
            else:
                hp[key] = chk.number(value, kpath)
        elif isinstance(default, str) and key != "ent_coef":
            chk.string(value, kpath)
        elif key == "ent_coef" and not (isinstance(value, (int, float)) or (isinstance(value, str) and value.startswith("auto"))):
            chk.fail(kpath, f"expected a number or 'auto' / 'auto_<init>', got {value!r}")
    return hp


def parse_run_config(data: Any, file: str | None = None) -> RunConfig:
    """Validate a run-config mapping (as read from YAML) into a :class:`RunConfig`."""
    chk = _Checker(file)
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
    hp = _check_hyperparameters(chk, hp_algo, chk.mapping(data.get("hyperparameters") or {}, ("hyperparameters",)),
                                ("hyperparameters",), policy)
    if algo == "epopt_ppo" and "n_steps" in hp:
        chk.fail(("hyperparameters", "n_steps"), "not used by epopt_ppo (set by epopt.n_models and the episode length)")

    n_envs = chk.integer(data.get("n_envs", 1), ("n_envs",), 1)
    vec_env = chk.string(data.get("vec_env", "auto"), ("vec_env",), ("auto", "subproc", "dummy"))
    total = chk.integer(data.get("total_timesteps", 100000), ("total_timesteps",), 1)
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
