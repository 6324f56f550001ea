"""UP-OSI env side (Yu et al. 2017): the dynamics parameters μ of the running episode as part
of the observation, and the previous action so an OSI history holds observation–action pairs.

* :class:`PreviousActionWrapper` appends ``previous_action`` (the last action, zeros after reset).
* :class:`DynamicsParamsWrapper` appends ``dynamics_params``: every randomized scalar of the
  profile (per entry and target, from ``info["randomization"]``), normalised to ``[-1, 1]`` over
  the range the profile can produce. With :meth:`DynamicsParamsWrapper.set_estimate` the
  appended μ is an estimate μ̂ instead (OSI in the loop).

Kinds μ can hold: link and joint scalars (``link_mass``, frictions, ``joint_damping``,
``motor_strength``, gains, ...), ``model_param`` (target = model-parameter name, e.g. the
quadrotor's ``kf``), ``action_latency`` (s), and the vectors ``com_offset`` (m, link frame) and
``wind`` (N, world frame), one component per randomized axis with target ``<link>.<axis>``.

Importing this module registers ``sim2real/KukaReachUP-v0`` and ``sim2real/PandaReachUP-v0``
(reach envs + previous action + μ), and ``sim2real/QuadrotorHoverRatesUP-v0`` /
``sim2real/QuadrotorHoverUP-v0`` (hover with collective thrust + body rates / per-motor commands
+ μ; their observation already ends with the previous action) with the shipped profile
``configs/sysid/up_quadrotor_profile.yaml``. Run configs can name them as
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
#: vector kinds (nominal zero, link frame / world frame): one component per randomized axis,
#: target ``<link>.<axis>``
_VECTOR = ("com_offset", "wind")
_AXES = "xyz"
SUPPORTED_KINDS = sorted([*_LINK_FIELDS, *_JOINT_FIELDS, *_GLOBAL, *_VECTOR, "model_param"])


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


def _draw_range(dist: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` per element of a distribution's draws; an unbounded side is cut at mean ± 3 std."""
    lo, hi = (np.asarray(x, dtype=float).reshape(-1) for x in dist.support())
    if np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)):
        return lo, hi
    mean = np.broadcast_to(np.asarray(dist.params["mean"], dtype=float).reshape(-1), lo.shape)  # a gaussian
    std = np.broadcast_to(np.asarray(dist.params["std"], dtype=float).reshape(-1), lo.shape)
    lo = np.where(np.isfinite(lo), lo, mean - 3 * std)
    hi = np.where(np.isfinite(hi), hi, mean + 3 * std)
    return lo, hi


def _nominal(base: Any, kind: str, target: str) -> float:
    """Value of one component in the unrandomized world (physical units)."""
    world = base.world
    if kind in _LINK_FIELDS:
        return float(world.nominal["links"][target][_LINK_FIELDS[kind]])
    if kind in _JOINT_FIELDS:
        return float(world.nominal["joints"][_JOINT_FIELDS[kind]][base.robot.joint_names.index(target)])
    if kind == "model_param":
        return float(base.robot.model_params[target])
    return 0.0  # vector kinds (a COM shift or a wind of zero), a latency of zero


def dynamics_components(env: gym.Env) -> list[tuple[str, str, float, float]]:
    """``[(entry, target, low, high)]``: the randomized scalars of the env's profile and the range
    of their final values (physical units; ``action_latency`` in seconds, ``model_param`` in the
    model parameter's unit, ``com_offset`` in m and ``wind`` in N with target ``<link>.<axis>``,
    one component per randomized axis)."""
    base = env.unwrapped
    profile, world = base.profile, base.world
    out = []
    for name, entry in profile.entries.items():
        kind = entry.param
        dist = entry.distribution
        if dist.kind == "constant" or kind not in SUPPORTED_KINDS:
            continue
        lo_v, hi_v = _draw_range(dist)
        lo, hi = float(lo_v[0]), float(hi_v[0])
        if kind in _GLOBAL:
            unit = entry.options.get("unit", "physics_steps")
            f = {"physics_steps": world.physics_dt, "control_steps": world.control_dt, "seconds": 1.0}[unit]
            out.append((name, "value", lo * f, hi * f))
            continue
        for t in entry.resolve_targets(base.robot):
            if kind in _VECTOR:
                a_v = np.ravel(entry.apply_op(np.zeros(3), np.broadcast_to(lo_v, (3,))))
                b_v = np.ravel(entry.apply_op(np.zeros(3), np.broadcast_to(hi_v, (3,))))
                added = [(name, f"{t}.{_AXES[i]}", float(min(a_v[i], b_v[i])), float(max(a_v[i], b_v[i])))
                         for i in range(3) if abs(b_v[i] - a_v[i]) > 1e-12]
            else:
                if kind in _LINK_FIELDS and t not in world.nominal["links"]:
                    continue
                nominal = _nominal(base, kind, t)
                a = float(np.ravel(entry.apply_op(nominal, lo))[0])
                b = float(np.ravel(entry.apply_op(nominal, hi))[0])
                a, b = max(min(a, b), 0.0), max(a, b)
                added = [(name, t, a, b)] if b - a > 1e-12 else []
            out += added
            if added and entry.shared:
                break  # one draw for all targets: one set of components
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
                           f"(supported kinds: {SUPPORTED_KINDS})")
        k = len(self.components)
        lo = np.concatenate([env.observation_space.low, -np.ones(k)]).astype(np.float32)
        hi = np.concatenate([env.observation_space.high, np.ones(k)]).astype(np.float32)
        self.observation_space = gym.spaces.Box(lo, hi, dtype=np.float32)
        self._low = np.array([c[2] for c in self.components])
        self._span = np.array([c[3] - c[2] for c in self.components])
        self.mu = np.zeros(k)
        self._estimate: np.ndarray | None = None
        self._nominal = self._nominal_values()
        self._keys = [self._split(e, t) for e, t, _, _ in self.components]

    def _nominal_values(self) -> np.ndarray:
        """Final value of each component in the unrandomized world (used when an entry is absent)."""
        base = self.env.unwrapped
        kinds = [base.profile.entries[e].param if e in base.profile.entries else "" for e, _, _, _ in self.components]
        return np.array([_nominal(base, k, t) if k in SUPPORTED_KINDS and k not in _VECTOR else 0.0
                         for k, (_, t, _, _) in zip(kinds, self.components)])

    def _split(self, entry: str, target: str) -> tuple[str, int]:
        """``(key in info["randomization"][entry], element index)`` of a component."""
        profile = self.env.unwrapped.profile
        if entry in profile.entries and profile.entries[entry].param in _VECTOR:
            link, axis = target.rsplit(".", 1)
            return link, _AXES.index(axis)
        return target, 0

    @property
    def mu_dim(self) -> int:
        return len(self.components)

    def mu_from_info(self, info: dict[str, Any]) -> np.ndarray:
        """Normalised μ ``(k,)`` of the episode described by ``info["randomization"]``."""
        rnd = info.get("randomization", {})
        vals = np.empty(len(self.components))
        for i, (entry, target, _, _) in enumerate(self.components):
            key, element = self._keys[i]
            v = rnd.get(entry, {}).get(key)
            # an entry the current profile does not randomize (e.g. nominal evaluation) is at nominal
            vals[i] = float(np.ravel(v)[element]) if v is not None else self._nominal[i]
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


def _has_previous_action(env: gym.Env) -> bool:
    layout = env.get_wrapper_attr("observation_layout")()
    return any(name == "previous_action" for name, _ in layout)


def make_up_env(base_id: str = "sim2real/KukaReach-v0", previous_action: bool | None = None, **kwargs: Any) -> gym.Env:
    """The universal-policy env: ``base_id`` (+ previous action) + μ. ``kwargs`` go to the base env.

    :param previous_action: append the previous action (:class:`PreviousActionWrapper`); ``None``:
        only when the base observation has no ``previous_action`` component (the quadrotor envs have one).
    """
    import sim2real.envs  # noqa: F401  (registers the base ids)

    env = gym.make(base_id, **kwargs)
    if previous_action is None:
        previous_action = not _has_previous_action(env)
    if previous_action:
        env = PreviousActionWrapper(env)
    return DynamicsParamsWrapper(env)


def make_history_env(base_id: str = "sim2real/KukaReach-v0", **kwargs: Any) -> gym.Env:
    """The base env + previous action (what OSI sees); a base observation that already has the
    previous action is returned as it is."""
    import sim2real.envs  # noqa: F401

    env = gym.make(base_id, **kwargs)
    return env if _has_previous_action(env) else PreviousActionWrapper(env)


def _shipped_config(*parts: str) -> str:
    from sim2real._io import data_dir

    return str(data_dir("configs").joinpath(*parts))


for _robot in ("Kuka", "Panda"):
    _id = f"sim2real/{_robot}ReachUP-v0"
    if _id not in gym.registry:
        gym.register(_id, entry_point="sim2real.sysid.upenv:make_up_env",
                     # a profile that randomizes dynamics, so `gym.make(id)` has a μ to show
                     kwargs={"base_id": f"sim2real/{_robot}Reach-v0", "profile": "peng2018_arm"})

#: quadrotor UP envs: the base observation already ends with the previous action
QUADROTOR_UP_IDS = {"sim2real/QuadrotorHoverRatesUP-v0": "sim2real/QuadrotorHoverRates-v0",
                    "sim2real/QuadrotorHoverUP-v0": "sim2real/QuadrotorHover-v0"}
for _id, _base in QUADROTOR_UP_IDS.items():
    if _id not in gym.registry:
        gym.register(_id, entry_point="sim2real.sysid.upenv:make_up_env",
                     kwargs={"base_id": _base, "previous_action": False,
                             "profile": _shipped_config("sysid", "up_quadrotor_profile.yaml")})
