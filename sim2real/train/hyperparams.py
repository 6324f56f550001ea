"""Checks of a run config's stable-baselines3 part: the algorithm class, its constructor
hyperparameters (names and types read off SB3's own signatures), policy keyword arguments and
``lin_<start>`` schedules, through the package's :class:`~sim2real._check.Checker` (raising
:class:`~sim2real.errors.ConfigError` naming the file and key path), which :mod:`sim2real.train.config`
also validates the rest of the run config with.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Mapping

from sim2real._check import Checker
from sim2real.errors import ConfigError

# Constructor arguments the trainer sets itself; users configure them through other keys.
_RESERVED = {"policy", "env", "seed", "verbose", "tensorboard_log", "_init_setup_model", "device",
             "rollout_buffer_class", "rollout_buffer_kwargs"}


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


def _check_policy_kwargs(chk: Checker, cls: type, policy: str, kwargs: dict, path: tuple) -> None:
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
    if "features_extractor_class" in kwargs:
        _check_features_extractor(chk, kwargs, path)
    elif "features_extractor_kwargs" in kwargs:
        chk.fail(path + ("features_extractor_kwargs",), "needs features_extractor_class")


def import_object(spec: str) -> Any:
    """The object named by ``"package.module:Name"``; ValueError saying what is wrong otherwise."""
    import importlib

    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"expected 'module:Name', got {spec!r}")
    try:
        obj = importlib.import_module(module)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module!r}: {exc}") from None
    for part in name.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"module {module!r} has no {name!r}")
        obj = getattr(obj, part)
    return obj


def _check_features_extractor(chk: Checker, kwargs: dict, path: tuple) -> None:
    """``features_extractor_class: "module:Class"`` (an SB3 BaseFeaturesExtractor) and its keyword arguments."""
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    kpath = path + ("features_extractor_class",)
    spec = chk.string(kwargs["features_extractor_class"], kpath)
    try:
        cls = import_object(spec)
    except ValueError as exc:
        chk.fail(kpath, str(exc))
    if not (isinstance(cls, type) and issubclass(cls, BaseFeaturesExtractor)):
        chk.fail(kpath, f"{spec} is not a stable_baselines3 BaseFeaturesExtractor subclass")
    fkw = chk.mapping(kwargs.get("features_extractor_kwargs") or {}, path + ("features_extractor_kwargs",))
    params = inspect.signature(cls.__init__).parameters
    accepted = [k for k in params if k not in ("self", "observation_space")]
    if not any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values()):
        for key in fkw:
            if key not in accepted:
                chk.fail(path + ("features_extractor_kwargs", key),
                         f"unknown keyword of {cls.__name__} (expected one of: {', '.join(accepted)})")


_SCHEDULED = ("learning_rate", "clip_range", "clip_range_vf")


def parse_schedule(value: str, chk: "Checker | None" = None, path: tuple = ()) -> float:
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


def check_hyperparameters(chk: Checker, algo: str, hp: dict, path: tuple, policy: str = "MlpPolicy") -> dict:
    cls = algo_class(algo)
    params = inspect.signature(cls.__init__).parameters
    name = cls.__name__
    for key, value in hp.items():
        kpath = path + (key,)
        if key in _RESERVED:
            chk.fail(kpath, "set by the trainer; use the run config's own keys instead")
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
            elif isinstance(default, int) and key not in _SCHEDULED:
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
        _check_range(chk, key, hp[key], kpath)
    if algo == "ppo" and hp.get("normalize_advantage", True) and hp.get("batch_size", 2) < 2:
        chk.fail(path + ("batch_size",), "expected an integer >= 2 with normalize_advantage (the default): "
                 "advantages are normalised over each mini-batch")
    return hp


# (low, low inclusive, high, high inclusive) of each number SB3 accepts; None = unbounded.
# Open bounds follow SB3's meaning: gamma = 0 or tau = 0 never learns, a zero clip range or gradient
# norm blocks every update. A constant learning rate of 0 is allowed: it keeps the weights fixed
# (e.g. to check a warm start) while the observation statistics still update.
_RANGES: dict[str, tuple[float | None, bool, float | None, bool]] = {
    "learning_rate": (0.0, True, None, False), "gamma": (0.0, False, 1.0, True),
    "gae_lambda": (0.0, True, 1.0, True), "batch_size": (1, True, None, False), "n_steps": (1, True, None, False),
    "n_epochs": (1, True, None, False), "clip_range": (0.0, False, None, False),
    "clip_range_vf": (0.0, False, None, False), "ent_coef": (0.0, True, None, False),
    "vf_coef": (0.0, True, None, False), "max_grad_norm": (0.0, False, None, False),
    "target_kl": (0.0, False, None, False), "buffer_size": (1, True, None, False), "tau": (0.0, False, 1.0, True),
    "learning_starts": (0, True, None, False), "target_update_interval": (1, True, None, False),
    "stats_window_size": (1, True, None, False), "sde_sample_freq": (-1, True, None, False),
}


def _check_range(chk: Checker, key: str, value: Any, path: tuple) -> None:
    """Refuse a value outside what SB3 means by ``key`` (schedules and ``auto`` strings are checked above)."""
    if key == "train_freq":
        if not isinstance(value, tuple) and value < 1:
            chk.fail(path, f"expected an integer >= 1 (env steps between updates), got {value}")
        return
    if key == "gradient_steps":
        if value < 1 and value != -1:
            chk.fail(path, f"expected an integer >= 1, or -1 (as many as env steps collected), got {value}")
        return
    if key == "ent_coef" and isinstance(value, str):
        init = value[5:] if value.startswith("auto_") else ""
        try:
            ok = value == "auto" or float(init) > 0
        except ValueError:
            ok = False
        if not ok:
            chk.fail(path, f"expected 'auto' or 'auto_<init>' with init > 0, got {value!r}")
        return
    if key not in _RANGES or value is None or isinstance(value, (str, bool)):
        return
    low, low_inc, high, high_inc = _RANGES[key]
    ok = math.isfinite(value)
    if low is not None:
        ok = ok and (value >= low if low_inc else value > low)
    if high is not None:
        ok = ok and (value <= high if high_inc else value < high)
    if not ok:
        lo = "" if low is None else f"{'[' if low_inc else '('}{low:g}"
        hi = "inf)" if high is None else f"{high:g}{']' if high_inc else ')'}"
        if low is not None and high is None:
            want = f">= {low:g}" if low_inc else f"> {low:g}"
        else:
            want = f"in {lo}, {hi}"
        chk.fail(path, f"expected {'an integer' if isinstance(value, int) else 'a number'} {want}, got {value}")


#: Largest ``total_timesteps``: a budget beyond it is a typo (10^12 steps is years of simulation).
MAX_TIMESTEPS = 10**12


def check_batch_size(chk: Checker, algo: str, hp: dict, n_envs: int, path: tuple) -> None:
    """PPO's mini-batches come from one rollout of ``n_steps * n_envs`` transitions: a larger ``batch_size``
    (or a rollout of one transition with advantage normalisation) cannot be trained on."""
    if algo != "ppo":
        return
    from stable_baselines3 import PPO

    defaults = inspect.signature(PPO.__init__).parameters
    n_steps = int(hp.get("n_steps", defaults["n_steps"].default))
    batch = int(hp.get("batch_size", defaults["batch_size"].default))
    if batch > n_steps * n_envs:
        chk.fail(path + ("batch_size",), f"expected at most n_steps * n_envs = {n_steps} * {n_envs} = "
                 f"{n_steps * n_envs} (one rollout), got {batch}")
