"""Checks of a run config's stable-baselines3 part: the algorithm class, its constructor
hyperparameters (names and types read off SB3's own signatures), policy keyword arguments and
``lin_<start>`` schedules. :class:`Checker` raises :class:`~sim2real.errors.ConfigError` naming
the file and key path; :mod:`sim2real.train.config` validates the rest of the run config with it.
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping

from sim2real.errors import ConfigError

# Constructor arguments the trainer sets itself; users configure them through other keys.
_RESERVED = {"policy", "env", "seed", "verbose", "tensorboard_log", "_init_setup_model", "device",
             "rollout_buffer_class", "rollout_buffer_kwargs"}


class Checker:
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
    return hp
