"""UP-OSI env side (Yu et al. 2017): the dynamics parameters μ of the running episode as part
of the observation, and the previous action so an OSI history holds observation–action pairs.

* :class:`PreviousActionWrapper` appends ``previous_action`` (the last action, zeros after reset).
* :class:`DynamicsParamsWrapper` appends ``dynamics_params``: every randomized scalar of the
  profile (per entry and target, from ``info["randomization"]``), normalised to ``[-1, 1]`` over
  the range the profile can produce. With :meth:`DynamicsParamsWrapper.set_estimate` the
  appended μ is an estimate μ̂ instead (OSI in the loop).

Importing this module registers ``sim2real/KukaReachUP-v0`` and ``sim2real/PandaReachUP-v0``
(reach envs + previous action + μ); run configs can name them as
``sim2real.sysid.upenv:sim2real/KukaReachUP-v0`` so Gymnasium imports this module first.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from sim2real.errors import EnvError

_LINK_FIELDS = {"link_mass": "mass", "lateral_friction": "lateral_friction", "spinning_friction": "spinning_friction",
                "rolling_friction": "rolling_friction", "restitution": "restitution"}
_JOINT_FIELDS = {"joint_damping": "damping", "joint_friction": "friction", "armature": "armature",
                 "motor_strength": "strength", "position_gain": "position_gain", "velocity_gain": "velocity_gain",
                 "stall_torque": "stall_torque", "free_speed": "free_speed"}
_GLOBAL = ("action_latency",)


class PreviousActionWrapper(gym.Wrapper):
    """Observation ``[obs, a_{t-1}]``; layout gains ``("previous_action", act_dim)``."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        n = int(np.prod(env.action_space.shape))
        lo = np.concatenate([env.observation_space.low, -np.ones(n)]).astype(np.float32)
        hi = np.concatenate([env.observation_space.high, np.ones(n)]).astype(np.float32)
        self.observation_space = gym.spaces.Box(lo, hi, dtype=np.float32)
        self._n = n

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return np.concatenate([obs, np.zeros(self._n)]).astype(np.float32), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, r, term, trunc, info = self.env.step(action)
        a = np.clip(np.asarray(action, dtype=np.float32).reshape(-1), -1.0, 1.0)
        return np.concatenate([obs, a]).astype(np.float32), r, term, trunc, info

    def observation_layout(self) -> list[tuple[str, int]]:
        return [*self.env.get_wrapper_attr("observation_layout")(), ("previous_action", self._n)]


def dynamics_components(env: gym.Env) -> list[tuple[str, str, float, float]]:
    """``[(entry, target, low, high)]``: the randomized scalars of the env's profile and the range
    of their final values (physical units; ``action_latency`` in seconds)."""
    base = env.unwrapped
    profile, world = base.profile, base.world
    out = []
    for name, entry in profile.entries.items():
        kind = entry.param
        dist = entry.distribution
        if dist.kind == "constant" or (kind not in _LINK_FIELDS and kind not in _JOINT_FIELDS and kind not in _GLOBAL):
            continue
        lo, hi = (np.asarray(x, dtype=float).reshape(-1)[0] for x in dist.support())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            mean, std = float(np.ravel(dist.mean)[0]), float(np.ravel(getattr(dist, "std", 0.0))[0])
            lo, hi = (max(lo, mean - 3 * std) if np.isfinite(lo) else mean - 3 * std,
                      min(hi, mean + 3 * std) if np.isfinite(hi) else mean + 3 * std)
        if kind in _GLOBAL:
            unit = entry.options.get("unit", "physics_steps")
            f = {"physics_steps": world.physics_dt, "control_steps": world.control_dt, "seconds": 1.0}[unit]
            out.append((name, "value", lo * f, hi * f))
            continue
        targets = entry.resolve_targets(base.robot)
        for t in targets:
            if kind in _LINK_FIELDS:
                if t not in world.nominal["links"]:
                    continue
                nominal = float(world.nominal["links"][t][_LINK_FIELDS[kind]])
            else:
                nominal = float(world.nominal["joints"][_JOINT_FIELDS[kind]][base.robot.joint_names.index(t)])
            a = float(np.ravel(entry.apply_op(nominal, lo))[0])
            b = float(np.ravel(entry.apply_op(nominal, hi))[0])
            a, b = max(min(a, b), 0.0), max(a, b)
            if b - a > 1e-12:
                out.append((name, t, a, b))
                if entry.shared:
                    break  # one draw for all targets: one component
    return out


class DynamicsParamsWrapper(gym.Wrapper):
    """Observation ``[obs, μ]`` with μ ∈ [-1, 1]^k (k = number of randomized scalars).

    :param components: override :func:`dynamics_components` (e.g. a subset)
    """

    def __init__(self, env: gym.Env, components: list[tuple[str, str, float, float]] | None = None) -> None:
        super().__init__(env)
        self.components = components if components is not None else dynamics_components(env)
        if not self.components:
            raise EnvError("DynamicsParamsWrapper: the env's profile randomizes no supported dynamics parameter "
                           f"(supported kinds: {sorted([*_LINK_FIELDS, *_JOINT_FIELDS, *_GLOBAL])})")
        k = len(self.components)
        lo = np.concatenate([env.observation_space.low, -np.ones(k)]).astype(np.float32)
        hi = np.concatenate([env.observation_space.high, np.ones(k)]).astype(np.float32)
        self.observation_space = gym.spaces.Box(lo, hi, dtype=np.float32)
        self._low = np.array([c[2] for c in self.components])
        self._span = np.array([c[3] - c[2] for c in self.components])
        self.mu = np.zeros(k)
        self._estimate: np.ndarray | None = None
        self._nominal = self._nominal_values()

    def _nominal_values(self) -> np.ndarray:
        """Final value of each component in the unrandomized world (used when an entry is absent)."""
        base = self.env.unwrapped
        world = base.world
        out = []
        for entry, target, _, _ in self.components:
            kind = base.profile.entries[entry].param if entry in base.profile.entries else ""
            if kind in _LINK_FIELDS:
                out.append(float(world.nominal["links"][target][_LINK_FIELDS[kind]]))
            elif kind in _JOINT_FIELDS:
                out.append(float(world.nominal["joints"][_JOINT_FIELDS[kind]][base.robot.joint_names.index(target)]))
            else:
                out.append(0.0)
        return np.array(out)

    @property
    def mu_dim(self) -> int:
        return len(self.components)

    def mu_from_info(self, info: dict[str, Any]) -> np.ndarray:
        """Normalised μ ``(k,)`` of the episode described by ``info["randomization"]``."""
        rnd = info.get("randomization", {})
        vals = np.empty(len(self.components))
        for i, (entry, target, _, _) in enumerate(self.components):
            v = rnd.get(entry, {}).get(target)
            # an entry the current profile does not randomize (e.g. nominal evaluation) is at nominal
            vals[i] = float(np.ravel(v)[0]) if v is not None else self._nominal[i]
        return np.clip(2.0 * (vals - self._low) / self._span - 1.0, -1.0, 1.0)

    def set_estimate(self, mu_hat: np.ndarray | None) -> None:
        """Show ``mu_hat`` (normalised, ``(k,)``) instead of the true μ from now on; ``None`` restores the truth."""
        self._estimate = None if mu_hat is None else np.clip(np.asarray(mu_hat, dtype=float).reshape(-1), -1, 1)

    def _obs(self, obs: np.ndarray) -> np.ndarray:
        mu = self.mu if self._estimate is None else self._estimate
        return np.concatenate([obs, mu]).astype(np.float32)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self.mu = self.mu_from_info(info)
        self._estimate = None
        info["mu"] = self.mu.copy()
        return self._obs(obs), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, r, term, trunc, info = self.env.step(action)
        if "randomization" in info:
            self.mu = self.mu_from_info(info)
        info["mu"] = self.mu.copy()
        return self._obs(obs), r, term, trunc, info

    def observation_layout(self) -> list[tuple[str, int]]:
        return [*self.env.get_wrapper_attr("observation_layout")(), ("dynamics_params", self.mu_dim)]


def make_up_env(base_id: str = "sim2real/KukaReach-v0", previous_action: bool = True, **kwargs: Any) -> gym.Env:
    """The universal-policy env: ``base_id`` (+ previous action) + μ. ``kwargs`` go to the base env."""
    import sim2real.envs  # noqa: F401  (registers the base ids)

    env = gym.make(base_id, **kwargs)
    if previous_action:
        env = PreviousActionWrapper(env)
    return DynamicsParamsWrapper(env)


def make_history_env(base_id: str = "sim2real/KukaReach-v0", **kwargs: Any) -> gym.Env:
    """The base env + previous action (what OSI sees)."""
    import sim2real.envs  # noqa: F401

    return PreviousActionWrapper(gym.make(base_id, **kwargs))


for _robot in ("Kuka", "Panda"):
    _id = f"sim2real/{_robot}ReachUP-v0"
    if _id not in gym.registry:
        gym.register(_id, entry_point="sim2real.sysid.upenv:make_up_env",
                     # a profile that randomizes dynamics, so `gym.make(id)` has a μ to show
                     kwargs={"base_id": f"sim2real/{_robot}Reach-v0", "profile": "peng2018_arm"})
