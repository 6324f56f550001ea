"""Classical online identification on the quadrotor: recursive least squares (RLS) with a
forgetting factor for the thrust-to-mass ratio.

The estimated quantity is

    θ = 4 · kf · max_rpm² / m    (N/kg: the collective thrust at full command per kg of mass,
                                  = the vertical acceleration at full command, level, before gravity)

with the plant's thrust coefficient ``kf`` (N/rpm²), top rotor speed ``max_rpm`` and mass ``m``
(kg). Nominal quadrotor (robots/quadrotor): 4 · 3.16e-10 · 21702² / 0.027 = 22.05 N/kg
(thrust/weight 2.25). The model behind it, per control step ``k → k+1`` (``dt`` s):

    (v_z[k+1] − v_z[k]) / dt + g = θ · φ_k,    φ_k = ū_k · R̄_zz

* ``v_z`` the observed world vertical velocity (m/s), ``g`` the gravity (m/s²);
* ``ū_k`` the commanded collective thrust as a fraction of full command, ``[0, 1]`` — ``(a_0 + 1)/2``
  with ``thrust_rates`` actions (the thrust command is scaled by the controller's *nominal*
  full thrust, so the plant delivers ``ū · 4·kf·max_rpm²``), ``mean_i (a_i + 1)/2`` with ``motor``
  actions (rotor ``i`` gets ``ω_i² = (a_i + 1)/2 · max_rpm²``) — passed through the nominal
  first-order motor lag and averaged over the step (the thrust the rotors actually gave);
* ``R̄_zz`` the world-z component of the body z axis (mean of its values at ``k`` and ``k+1``).

Only the env's observations and actions go in (no privileged information). Rotor drag, ground
effect and vertical wind are left out of the model (small at hover).
:func:`thrust_to_mass` gives the true θ of an episode from ``info["randomization"]``,
:func:`thrust_to_mass_from_mu` from the UP env's normalised μ.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import gymnasium as gym
import numpy as np

from sim2real.errors import EnvError


def _nominal(robot: Any) -> dict[str, float]:
    mp = robot.model_params
    return {"kf": float(mp["kf"]), "max_rpm": float(mp["max_rpm"]), "motor_tau": float(mp["motor_tau"])}


def _theta(kf: float, max_rpm: float, mass: float) -> float:
    return 4.0 * kf * max_rpm**2 / mass


class ThrustToMassRLS:
    """RLS estimate of θ (N/kg, module docstring) from a quadrotor env's observations and actions.

    :param env: a quadrotor env (``sim2real/QuadrotorHoverRates-v0``, ``...Hover-v0``, their UP
        variants; any wrappers) with ``thrust_rates`` or ``motor`` actions; read once for the
        nominal model (robot.yaml), the action mapping, the control period, gravity and the
        observation layout.
    :param forgetting: λ ∈ (0, 1]; past steps are weighted λ^age (0.99: ~100 steps, 2 s at 48 Hz).
    :param initial: θ before the first step (N/kg; default the nominal θ).
    :param initial_std: prior standard deviation of θ (N/kg); large = trust the data at once.
    :param min_excitation: steps with ``φ`` below this (rotors nearly off, or upside down) are skipped.
    """

    def __init__(self, env: gym.Env, forgetting: float = 0.99, initial: float | None = None,
                 initial_std: float = 30.0, min_excitation: float = 0.05) -> None:
        if not 0.0 < forgetting <= 1.0:
            raise EnvError(f"forgetting must be in (0, 1], got {forgetting!r}")
        base = env.unwrapped
        mode = getattr(base, "action_mode", None)
        if getattr(base.robot, "kind", None) != "quadrotor" or mode not in ("thrust_rates", "motor"):
            raise EnvError(f"ThrustToMassRLS needs a quadrotor env with thrust_rates or motor actions; got robot "
                           f"{base.robot.name!r} with action mode {mode!r}")
        self.mode = mode
        nominal = _nominal(base.robot)
        world = base.world
        self.dt = float(world.control_dt)
        self.gravity = float(np.linalg.norm(world.nominal["gravity"]))
        self.nominal_theta = _theta(nominal["kf"], nominal["max_rpm"], float(world.nominal["links"]["base"]["mass"]))
        # lag of the thrust behind the command: e^(−dt/τ) per control step, at the nominal τ
        tau = nominal["motor_tau"]
        self._decay = math.exp(-self.dt / tau) if tau > 0 else 0.0
        # mean over one step of a first-order response, as the weight of its starting value
        self._start_weight = (tau / self.dt) * (1.0 - self._decay) if tau > 0 else 0.0
        offsets, size = {}, 0
        for name, n in env.get_wrapper_attr("observation_layout")():
            offsets[name] = size
            size += n
        self._rzz = offsets["base_rotation"] + 8  # row-major R: element (2, 2)
        self._vz = offsets["base_linear_velocity"] + 2
        self._hover_fraction = float(np.mean((np.asarray(base.hover_action, dtype=float) + 1.0) / 2.0))
        self.forgetting = float(forgetting)
        self.initial = self.nominal_theta if initial is None else float(initial)
        self.initial_var = float(initial_std) ** 2
        self.min_excitation = float(min_excitation)
        self.reset()

    def reset(self) -> None:
        """Start a new episode: θ̂ back to the prior; the rotors at the nominal hover speed (as the env resets them)."""
        self.theta = self.initial
        self.variance = self.initial_var
        self.thrust_fraction = self._hover_fraction
        self.steps = 0

    def command_fraction(self, action: Any) -> float:
        """Commanded collective thrust as a fraction of full command, in [0, 1]."""
        a = np.clip(np.asarray(action, dtype=float).reshape(-1), -1.0, 1.0)
        if self.mode == "thrust_rates":
            return float((a[0] + 1.0) / 2.0)
        return float(np.mean((a + 1.0) / 2.0))

    def update(self, obs: np.ndarray, action: Any, next_obs: np.ndarray) -> float:
        """One control step: ``obs`` before, ``action`` taken, ``next_obs`` after (the env's
        observations, μ appended or not). Returns θ̂ (N/kg)."""
        u = self.command_fraction(action)
        start = self.thrust_fraction
        mean_u = u + (start - u) * self._start_weight  # the lagged thrust's mean over the step
        self.thrust_fraction = u + (start - u) * self._decay
        phi = mean_u * 0.5 * (float(obs[self._rzz]) + float(next_obs[self._rzz]))
        y = (float(next_obs[self._vz]) - float(obs[self._vz])) / self.dt + self.gravity
        self.steps += 1
        if phi < self.min_excitation:
            return self.theta
        lam, p = self.forgetting, self.variance
        gain = p * phi / (lam + phi * p * phi)
        self.theta += gain * (y - phi * self.theta)
        self.variance = (p - gain * phi * p) / lam
        return self.theta


def _entry_kinds(env: gym.Env) -> dict[str, str]:
    return {name: e.param for name, e in env.unwrapped.profile.entries.items()}


def thrust_to_mass(env: gym.Env, randomization: Mapping[str, Mapping[str, Any]]) -> float:
    """True θ (N/kg) of the episode described by ``randomization`` (``info["randomization"]`` of
    ``env``, whose current profile names the entries' kinds): base ``link_mass``, ``model_param``
    ``kf`` / ``max_rpm``; what the profile does not randomize is nominal (robot.yaml)."""
    base = env.unwrapped
    values = {**_nominal(base.robot), "mass": float(base.world.nominal["links"]["base"]["mass"])}
    for name, kind in _entry_kinds(env).items():
        drawn = randomization.get(name, {})
        if kind == "link_mass" and "base" in drawn:
            values["mass"] = float(drawn["base"])
        elif kind == "model_param":
            for key in ("kf", "max_rpm"):
                if key in drawn:
                    values[key] = float(drawn[key])
    return _theta(values["kf"], values["max_rpm"], values["mass"])


def thrust_to_mass_from_mu(env: gym.Env, mu: np.ndarray) -> float:
    """θ (N/kg) implied by the UP env's normalised μ ``(k,)`` (its ``components``: base
    ``link_mass``, ``model_param`` ``kf`` / ``max_rpm``; the rest nominal). μ is clipped to [-1, 1],
    so beyond the training ranges this is the θ of the nearest in-range parameters."""
    base = env.unwrapped
    kinds = _entry_kinds(env)
    values = {**_nominal(base.robot), "mass": float(base.world.nominal["links"]["base"]["mass"])}
    mu = np.clip(np.asarray(mu, dtype=float).reshape(-1), -1.0, 1.0)
    for m, (entry, target, low, high) in zip(mu, env.get_wrapper_attr("components")):
        v = low + (m + 1.0) / 2.0 * (high - low)
        if kinds.get(entry) == "link_mass" and target == "base":
            values["mass"] = v
        elif kinds.get(entry) == "model_param" and target in ("kf", "max_rpm"):
            values[target] = v
    return _theta(values["kf"], values["max_rpm"], values["mass"])
