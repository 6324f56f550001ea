"""Contract with ``sim2real export``: an exported SB3 policy loads in the bridge, acts like SB3,
and the bridge rebuilds the env's observation from joint states and the sidecar alone (FK from its
``kinematics`` section: no URDF, no PyBullet)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
export_mod = pytest.importorskip("sim2real.train.export")
pytest.importorskip("sim2real.envs")


def test_exported_ppo_policy_matches_env(tmp_path: Path) -> None:
    import gymnasium as gym
    from stable_baselines3 import PPO

    from sim2real.robots import load_robot
    from sim2real.ros2.kinematics import policy_chain
    from sim2real.ros2.observation import ArmState, ObservationBuilder
    from sim2real.ros2.policy import load_policy
    from sim2real.train.policy import load_policy as load_trained

    env = gym.make("sim2real/KukaReach-v0")
    try:
        model = PPO("MlpPolicy", env, n_steps=64, batch_size=32, seed=0, verbose=0)
        model.save(tmp_path / "run" / "model.zip")
        export_mod.export_policy(load_trained(tmp_path / "run" / "model.zip"), tmp_path / "policy.pt",
                                 env_id="sim2real/KukaReach-v0")
        policy, spec = load_policy(tmp_path / "policy.pt")
        robot = load_robot(spec.robot)
        # forward kinematics from the sidecar alone (what the robot computer uses: no URDF there)
        assert spec.kinematics is not None and spec.kinematics["link"] == robot.end_effector_link
        fk, ee_link = policy_chain(spec.kinematics, robot, spec.file)
        assert fk.file == spec.file
        builder = ObservationBuilder(spec, n_joints=robot.n_joints, fk=fk, ee_link=ee_link,
                                     joint_names=robot.joint_names)
        obs, _ = env.reset(seed=1)
        for _ in range(5):
            q, qd = env.unwrapped.world.joint_state()
            frame = builder.frame(ArmState(q=q, qd=qd, stamp_ns=0, arrival=0.0), env.unwrapped.target,
                                  np.zeros(spec.action_size))
            np.testing.assert_allclose(frame, obs, atol=1e-5)
            expected = model.predict(obs, deterministic=True)[0]
            np.testing.assert_allclose(policy(frame), np.clip(expected, -1, 1), atol=1e-5)
            obs, *_ = env.step(expected)
    finally:
        env.close()
