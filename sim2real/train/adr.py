"""Automatic domain randomization (OpenAI et al. 2019, "Solving Rubik's Cube with a Robot Hand").

Every adapted parameter (one profile entry dimension) starts at its nominal value, a
degenerate range ``[φ_L, φ_H] = [nominal, nominal]``. With probability ``p_b`` an
episode pins one parameter to a boundary of its current range (the others are drawn
from their current ranges); the episode's performance (success or return) goes to
that boundary's buffer ``D_i^{L|H}`` of size ``m``. When a buffer is full its mean
``p̄`` decides: ``p̄ ≥ t_high`` widens the boundary by Δ, ``p̄ ≤ t_low`` narrows it by
Δ; the buffer is then cleared. Ranges never leave the profile's limits (the entry's
distribution support) nor cross the nominal value.

:class:`ADRState` holds the ranges and buffers (pure logic, unit-tested);
:class:`ADRCallback` feeds it from training episodes and pushes new ranges to the
vec-env workers (``set_profile`` + ``PinnedParamsWrapper.set_adr``).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from sim2real.errors import ConfigError
from sim2real.train.config import ADRConfig

Boundary = tuple[str, int, str]  # (entry name, dimension, "low" | "high")


class ADRState:
    """ADR ranges and boundary buffers over the randomized entries of ``profile``.

    :param profile: a loaded :class:`sim2real.profiles.Profile`; its entries' supports are the limits.
    :param cfg: the run config's ``adr`` block.
    """

    def __init__(self, profile: Any, cfg: ADRConfig, file: str | None = None, robot: Any = None) -> None:
        self.base = profile
        self.cfg = cfg
        names = list(cfg.entries) if cfg.entries is not None else [
            n for n, e in profile.entries.items() if _randomized(e)]
        if not names:
            raise ConfigError("the profile has no randomized entry for ADR to adapt", file=file, path=("adr",))
        self.limits: dict[str, np.ndarray] = {}
        self.nominal: dict[str, np.ndarray] = {}
        self.ranges: dict[str, np.ndarray] = {}
        for i, name in enumerate(names):
            if name not in profile.entries:
                raise ConfigError(f"not an entry of the profile (entries: {', '.join(profile.entries)})",
                                  file=file, path=("adr", "entries", i))
            entry = profile.entries[name]
            low, high = (np.asarray(x, dtype=float) for x in entry.distribution.support())
            vmin, vmax = entry.value_range()
            low, high = np.maximum(low, vmin), np.minimum(high, vmax)
            if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
                raise ConfigError(f"entry {name!r} has an unbounded distribution; ADR needs finite limits "
                                  "(give the gaussian low/high)", file=file, path=("adr", "entries"))
            if name in cfg.nominal:
                nom = np.full(entry.dim, float(cfg.nominal[name]))
            elif entry.operation == "scale":
                nom = np.ones(entry.dim)
            elif entry.operation == "add":
                nom = np.zeros(entry.dim)
            elif _robot_nominal(robot, entry) is not None:  # abs kinds the robot gives a value for
                nom = np.full(entry.dim, _robot_nominal(robot, entry))
            elif entry.kind.is_global:  # latency, noise levels, ...: the lowest value (usually 0)
                nom = low.copy()
            else:  # e.g. an absolute friction without a robot nominal: the profile's mean
                nom = np.asarray(entry.distribution.mean(), dtype=float)
            nom = np.clip(nom, low, high)
            self.limits[name] = np.stack([low, high])
            self.nominal[name] = nom
            self.ranges[name] = np.stack([nom, nom])
        self.buffers: dict[Boundary, list[float]] = {b: [] for b in self.boundaries()}

    def boundaries(self) -> list[Boundary]:
        return [(n, d, s) for n in self.ranges for d in range(self.ranges[n].shape[1]) for s in ("low", "high")]

    def step_size(self, name: str, d: int) -> float:
        lim = self.limits[name]
        return float(self.cfg.delta * (lim[1, d] - lim[0, d]))

    def record(self, boundary: Boundary, performance: float) -> bool:
        """Add one boundary episode's performance; True when the range changed."""
        name, d, side = boundary
        if name not in self.ranges:
            return False
        buf = self.buffers[(name, d, side)]
        buf.append(float(performance))
        if len(buf) < self.cfg.buffer_size:
            return False
        mean = float(np.mean(buf))
        buf.clear()
        rng, lim, nom = self.ranges[name], self.limits[name], self.nominal[name]
        old = rng.copy()
        step = self.step_size(name, d)
        if mean >= self.cfg.t_high:
            if side == "high":
                rng[1, d] = min(rng[1, d] + step, lim[1, d])
            else:
                rng[0, d] = max(rng[0, d] - step, lim[0, d])
        elif mean <= self.cfg.t_low:
            if side == "high":
                rng[1, d] = max(rng[1, d] - step, nom[d])
            else:
                rng[0, d] = min(rng[0, d] + step, nom[d])
        return not np.array_equal(old, rng)

    def ranges_dict(self) -> dict[str, list[list[float]]]:
        """``{entry: [[low per dim], [high per dim]]}`` (JSON-able)."""
        return {n: r.tolist() for n, r in self.ranges.items()}

    def profile(self) -> Any:
        """The base profile with every adapted entry drawing uniformly from its current ADR range."""
        prof = self.base
        for name, rng in self.ranges.items():
            prof = prof.replace_entry(name, prof.entries[name].with_bounds(rng[0], rng[1]))
        return prof

    def entropy(self) -> float:
        """Mean log range width over dimensions (OpenAI's ADR entropy, in nats; -inf for a degenerate range)."""
        widths = np.concatenate([r[1] - r[0] for r in self.ranges.values()])
        with np.errstate(divide="ignore"):
            return float(np.mean(np.log(widths)))

    def state_dict(self) -> dict[str, Any]:
        return {"ranges": self.ranges_dict(),
                "buffers": [[n, d, s, list(v)] for (n, d, s), v in self.buffers.items()]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for name, r in state.get("ranges", {}).items():
            if name in self.ranges:
                self.ranges[name] = np.asarray(r, dtype=float)
        for n, d, s, v in state.get("buffers", []):
            if (n, int(d), s) in self.buffers:
                self.buffers[(n, int(d), s)] = [float(x) for x in v]


def _robot_nominal(robot: Any, entry: Any) -> float | None:
    """The robot's nominal value of the entry's kind (mean over the entry's targets), if it has one."""
    nominal = getattr(robot, "nominal", None) or {}
    value = nominal.get(entry.param)
    if value is None:
        return None
    if isinstance(value, Mapping):
        names = list(entry.targets) if entry.targets else list(value)
        vals = [float(value[n]) for n in names if n in value]
        return float(np.mean(vals)) if vals else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _randomized(entry: Any) -> bool:
    low, high = entry.distribution.support()
    return entry.distribution.kind != "constant" and bool(np.any(np.asarray(high) > np.asarray(low)))


def make_adr_callback(state: ADRState, seed: int):
    """An SB3 callback running ADR on the training vec env (imports SB3 lazily)."""
    from stable_baselines3.common.callbacks import BaseCallback

    class ADRCallback(BaseCallback):
        """Feeds boundary episodes to :class:`ADRState` and pushes changed ranges to every env."""

        def __init__(self) -> None:
            super().__init__()
            self.state = state
            self.boundary_episodes = 0

        def push(self) -> None:
            env = self.training_env
            env.env_method("set_profile", self.state.profile())
            for i in range(env.num_envs):
                env.env_method("set_adr", self.state.ranges_dict(), self.state.cfg.p_b, seed + 7919 * (i + 1)
                               + self.num_timesteps, indices=[i])

        def _on_training_start(self) -> None:
            self.push()

        def _on_step(self) -> bool:
            changed = False
            for done, info in zip(self.locals["dones"], self.locals["infos"]):
                tag = info.get("pinned_tag")
                if not done or not isinstance(tag, dict) or "adr" not in tag:
                    continue
                if self.state.cfg.metric == "success":
                    perf = float(bool(info.get("is_success", False)))
                else:
                    perf = float(info.get("episode", {}).get("r", 0.0))
                name, d, side = tag["adr"]
                self.boundary_episodes += 1
                changed |= self.state.record((name, int(d), side), perf)
            if changed:
                self.push()
            return True

        def _on_rollout_end(self) -> None:
            for name, r in self.state.ranges.items():
                for d in range(r.shape[1]):
                    suffix = f"_{d}" if r.shape[1] > 1 else ""
                    self.logger.record(f"adr/{name}{suffix}_low", float(r[0, d]))
                    self.logger.record(f"adr/{name}{suffix}_high", float(r[1, d]))
            self.logger.record("adr/entropy", self.state.entropy())
            self.logger.record("adr/boundary_episodes", self.boundary_episodes)

    return ADRCallback()
