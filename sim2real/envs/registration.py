"""Env ids of the arm reach and hopper envs and their Gymnasium registration.

Importing :mod:`sim2real.envs` calls :func:`register_envs` (and registers the camera and
quadrotor ids). Gymnasium 1.x loads no plugins, so an id is only known after that import;
without an explicit import, name the module in the id and ``gym.make`` imports it first::

    gym.make("sim2real.envs:sim2real/KukaReach-v0")
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

#: id -> (entry point, constructor kwargs, episode length)
ENV_SPECS: dict[str, tuple[str, dict[str, Any], int]] = {
    "sim2real/KukaReach-v0": ("sim2real.envs.arm_reach:ArmReachEnv",
                              {"robot": "kuka_iiwa", "action_mode": "joint_position_delta"}, 100),
    "sim2real/PandaReach-v0": ("sim2real.envs.arm_reach:ArmReachEnv",
                               {"robot": "franka_panda", "action_mode": "joint_position_delta"}, 100),
    "sim2real/KukaReachVel-v0": ("sim2real.envs.arm_reach:ArmReachEnv",
                                 {"robot": "kuka_iiwa", "action_mode": "joint_velocity"}, 100),
    "sim2real/PandaReachVel-v0": ("sim2real.envs.arm_reach:ArmReachEnv",
                                  {"robot": "franka_panda", "action_mode": "joint_velocity"}, 100),
    "sim2real/Hopper-v0": ("sim2real.envs.hopper:HopperEnv", {"robot": "hopper"}, 1000),
}


#: ``gym.register`` flags of every sim2real id: ``gym.make`` adds Gymnasium's ``TimeLimit`` only.
#: The envs raise :class:`~sim2real.errors.EnvError` on ``step()`` before ``reset()`` themselves
#: (what ``OrderEnforcing`` would check) and pass ``check_env`` (tests), so the passive checker
#: would never warn; each wrapper costs a Python call per step. ``gym.make(id,
#: disable_env_checker=False)`` still adds the checker.
SPEC_FLAGS: dict[str, Any] = {"order_enforce": False, "disable_env_checker": True}


def register_envs() -> None:
    """Register :data:`ENV_SPECS` with Gymnasium (idempotent).

    The episode length is the spec's ``max_episode_steps`` (Gymnasium's ``TimeLimit``, so
    ``gym.make(id, max_episode_steps=N)`` changes it); the env's own limit is switched off.
    """
    for env_id, (entry_point, kwargs, steps) in ENV_SPECS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=entry_point, kwargs={**kwargs, "max_episode_steps": None},
                         max_episode_steps=steps, **SPEC_FLAGS)
