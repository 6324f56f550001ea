"""Loading the configs of online identification (``configs/sysid/osi_*.yaml``, ``rma_*.yaml``).

Both config dataclasses (:class:`~sim2real.sysid.osi.OSIConfig`,
:class:`~sim2real.sysid.rma.RMAConfig`, on :class:`OnlineIDConfig`) are read the same way: a mapping with only the
dataclass's fields, a required policy run directory, positive integer counts; relative paths
are resolved against the config file's folder. Each class adds its own checks (its ``method:``
value, RMA's network settings) between :func:`read_config` and :func:`build_config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from sim2real._io import read_yaml_file
from sim2real.errors import ConfigError

C = TypeVar("C")


@dataclass(kw_only=True)
class OnlineIDConfig:
    """The fields both methods share: the env the policy was trained on and the iterated
    collect-fit-evaluate loop. Subclasses add the policy run directory, ``method``, ``history``,
    ``out`` and their network settings."""

    env: str = "sim2real/KukaReach-v0"    # base env id (the UP env adds previous action + μ)
    profile: str | dict = "peng2018_arm"  # the policy's training profile (same μ layout)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    iterations: int = 3
    episodes: int = 40                    # per iteration
    eval_episodes: int = 20               # held-out draws (seeds 10000 + seed), estimate in the loop
    epochs: int = 60
    seed: int = 0


def read_config(path: str | Path, cls: type) -> tuple[str, dict[str, Any]]:
    """``(file, raw)``: the YAML mapping of ``path``; a key that is not a field of the dataclass
    ``cls`` is a :class:`~sim2real.errors.ConfigError` naming it."""
    file = str(path)
    raw = read_yaml_file(file, what="config")
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping", file=file)
    known = set(cls.__dataclass_fields__)
    for key in raw:
        if key not in known:
            raise ConfigError(f"unknown key; expected one of {sorted(known)}", file=file, path=(key,))
    return file, raw


def build_config(cls: Callable[..., C], raw: dict[str, Any], file: str, *, policy_key: str, policy_what: str,
                 counts: Sequence[str], check: Callable[[dict[str, Any], str], None] | None = None) -> C:
    """The dataclass ``cls(**raw)`` after the shared checks.

    :param policy_key: the required key naming the policy run directory (a string); relative to
        the working directory if that exists, else to the config's folder
    :param policy_what: what that run directory is, for the missing-key message
    :param counts: keys that must be integers >= 1 when present
    :param check: further checks ``check(raw, file)`` run before the dataclass is built
    A ``profile`` that names a ``.yaml``/``.yml`` file next to the config resolves to it (as in
    run configs); other profile names are left to the profile loader.
    """
    if not isinstance(raw.get(policy_key), str):
        raise ConfigError(f"missing required key ({policy_what})", file=file, path=(policy_key,))
    for key in counts:
        if key in raw and (isinstance(raw[key], bool) or not isinstance(raw[key], int) or raw[key] < 1):
            raise ConfigError(f"expected an integer >= 1, got {raw[key]!r}", file=file, path=(key,))
    if check is not None:
        check(raw, file)
    cfg = cls(**raw)
    base = Path(file).parent
    run = getattr(cfg, policy_key)
    if not Path(run).is_absolute() and not Path(run).exists():
        setattr(cfg, policy_key, str((base / run).resolve()))
    prof = getattr(cfg, "profile")
    if isinstance(prof, str) and Path(prof).suffix in (".yaml", ".yml") and not Path(prof).is_absolute() \
            and (base / prof).is_file():
        setattr(cfg, "profile", str((base / prof).resolve()))
    return cfg
