"""Building the (vectorised) training and evaluation envs of a run config.

``make_env_fn`` returns a picklable thunk (for ``SubprocVecEnv``) that creates one env
with the run's profile and robot, wraps it in :class:`PinnedParamsWrapper` (pins
profile entries for queued episodes: EPOpt models, ADR boundaries) and SB3's
``Monitor`` (episode return/length in ``info["episode"]``).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Mapping, Sequence

import gymnasium as gym
import numpy as np

from sim2real.errors import EnvError


def ensure_registered(env_id: str) -> None:
    """Import the module that registers ``env_id`` (``sim2real/...`` ids need ``sim2real.envs``)."""
    if env_id.startswith("sim2real/"):
        import sim2real.envs  # noqa: F401  (registers the ids)


def create_env(env_id: str, env_kwargs: Mapping[str, Any] | None = None, robot: str | None = None,
               profile: Any = None) -> gym.Env:
    """``gym.make`` with the toolkit's ``profile=`` / ``robot=`` keywords (passed only when set)."""
    ensure_registered(env_id)
    kwargs = dict(env_kwargs or {})
    if robot is not None:
        kwargs["robot"] = robot
    if profile is not None:
        kwargs["profile"] = profile
    try:
        return gym.make(env_id, **kwargs)
    except gym.error.Error as exc:
        raise EnvError(f"cannot create env {env_id!r}: {exc}") from None
    except TypeError as exc:  # a keyword the env's constructor does not take (env.kwargs of a run config)
        if "keyword argument" not in str(exc):
            raise
        raise EnvError(f"cannot create env {env_id!r}: {str(exc).split(' was raised from')[0]}") from None


class PinnedParamsWrapper(gym.Wrapper):
    """Pins profile entries for upcoming episodes, one queued parameter set per reset.

    ``queue_params([{entry: value}, ...])`` (called through ``VecEnv.env_method``) makes
    the next resets call the env with ``options={"params": ...}``; the pinned set of the
    running episode is reported in ``info["pinned"]`` (``None`` when not pinned) with
    ``info["pinned_tag"]`` (an opaque label given with the set, e.g. the EPOpt model index).
    Auto-resets of SB3 vec envs pass no options, which is why the queue lives here.

    ``set_adr(ranges, p_b, seed)`` switches on ADR boundary sampling: with probability
    ``p_b`` an episode pins one parameter (entry, dimension) to a boundary of its current
    range; the others are drawn by the env from its profile (whose ranges the trainer
    keeps equal to the ADR ranges via ``set_profile``).
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._queue: deque[tuple[Any, dict]] = deque()
        self._current: tuple[Any, dict] | None = None
        self._adr: dict[str, Any] | None = None
        self._adr_rng = np.random.default_rng()

    def queue_params(self, params: Sequence[Mapping[str, Any]], tags: Sequence[Any] | None = None,
                     clear: bool = True) -> None:
        if clear:
            self._queue.clear()
        tags = list(tags) if tags is not None else [None] * len(params)
        self._queue.extend((t, dict(p)) for t, p in zip(tags, params))

    def queued(self) -> int:
        return len(self._queue)

    def set_adr(self, ranges: Mapping[str, Any] | None, p_b: float = 0.5, seed: int | None = None) -> None:
        """``ranges``: ``{entry: [[low per dim...], [high per dim...]]}`` (current ADR ranges); None = off."""
        if ranges is None:
            self._adr = None
            return
        self._adr = {"ranges": {k: np.asarray(v, dtype=float) for k, v in ranges.items()}, "p_b": float(p_b)}
        if seed is not None:
            self._adr_rng = np.random.default_rng(seed)

    def _adr_draw(self) -> tuple[Any, dict] | None:
        adr = self._adr
        if not adr or not adr["ranges"] or self._adr_rng.random() >= adr["p_b"]:
            return None
        names = sorted(adr["ranges"])
        name = names[int(self._adr_rng.integers(len(names)))]
        lohi = adr["ranges"][name]  # (2, dim)
        dim = lohi.shape[1]
        d = int(self._adr_rng.integers(dim))
        side = int(self._adr_rng.integers(2))
        # other dimensions of the pinned entry are drawn uniformly from their current range
        value = self._adr_rng.uniform(lohi[0], lohi[1])
        value[d] = lohi[side, d]
        return ({"adr": [name, d, "low" if side == 0 else "high"]}, {name: value.tolist()})

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if options is None or "params" not in options:
            pinned = self._queue.popleft() if self._queue else self._adr_draw()
            if pinned is not None:
                options = dict(options or {})
                options["params"] = pinned[1]
            self._current = pinned
        else:
            self._current = (None, options["params"])
        obs, info = self.env.reset(seed=seed, options=options)
        return obs, self._tag(info)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, self._tag(info)

    def _tag(self, info: dict) -> dict:
        info = dict(info)
        info["pinned_tag"] = self._current[0] if self._current is not None else None
        return info


def make_env_fn(env_id: str, env_kwargs: Mapping[str, Any] | None, robot: str | None, profile: Any,
                seed: int | None) -> Callable[[], gym.Env]:
    """Picklable thunk creating one monitored, pinnable env (seeded through its first reset)."""

    def _init() -> gym.Env:
        from stable_baselines3.common.monitor import Monitor

        env = PinnedParamsWrapper(create_env(env_id, env_kwargs, robot, profile))
        env = Monitor(env)
        if seed is not None:
            env.action_space.seed(seed)
        return env

    return _init


def build_vec_env(env_id: str, env_kwargs: Mapping[str, Any] | None, robot: str | None, profile: Any,
                  n_envs: int, seed: int, kind: str = "auto"):
    """``SubprocVecEnv`` of ``n_envs`` envs (``DummyVecEnv`` when ``n_envs == 1`` or ``kind == 'dummy'``).

    Env ``i`` is seeded with ``seed + i`` at its first reset.
    """
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    # fail early, in this process, with a clear error (bad id, bad profile)
    probe = create_env(env_id, env_kwargs, robot, profile)
    probe.close()
    fns = [make_env_fn(env_id, env_kwargs, robot, profile, seed + i) for i in range(n_envs)]
    use_subproc = kind == "subproc" or (kind == "auto" and n_envs > 1)
    venv = SubprocVecEnv(fns, start_method="forkserver") if use_subproc else DummyVecEnv(fns)
    venv.seed(seed)
    return venv
