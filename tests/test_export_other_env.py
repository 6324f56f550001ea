"""``export --env OTHER``: the other env is built as registered (its own robot, not the run's), so a
policy that does not fit it is refused in one line naming the observation and action sizes (exit 2,
nothing written), and one that fits is exported with the other env's robot, layout and action."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sim2real.cli.main import main

CFG = {"env": {"id": "sim2real/KukaReach-v0", "kwargs": {"max_episode_steps": 16}}, "robot": "kuka_iiwa",
       "profile": "nominal", "algo": "ppo", "net_arch": [8],
       "hyperparameters": {"n_steps": 32, "batch_size": 16, "n_epochs": 1}, "total_timesteps": 32,
       "eval": {"freq": 0, "episodes": 1}}


@pytest.fixture(scope="module")
def kuka_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny KUKA reach policy: 20 observations, 7 actions."""
    d = tmp_path_factory.mktemp("export_other")
    (d / "cfg.yaml").write_text(yaml.safe_dump(CFG))
    assert main(["train", str(d / "cfg.yaml"), "--out", str(d / "run"), "--no-progress"]) == 0
    return d / "run"


@pytest.mark.parametrize("env,obs,act", [("sim2real/Hopper-v0", 14, 3), ("sim2real/QuadrotorHover-v0", 25, 4)])
def test_a_policy_that_does_not_fit_the_other_env_is_refused_for_its_sizes(kuka_run, tmp_path, capsys, env, obs, act):
    assert main(["export", "--policy", str(kuka_run), "--env", env, "--out", str(tmp_path / "p.pt")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("sim2real export: error: "), err
    line = err[0]
    assert f"(trained on sim2real/KukaReach-v0) does not fit {env}" in line, line
    assert "the policy's observation is Box of shape (20,)" in line and f"the env's is Box of shape ({obs},)" in line
    assert "the policy's action is Box of shape (7,)" in line and f"the env's is Box of shape ({act},)" in line
    assert "robot" not in line and "kuka_iiwa" not in line, line
    assert not list(tmp_path.iterdir())


def test_a_policy_that_fits_is_exported_with_the_other_envs_robot(kuka_run, tmp_path, capsys):
    out = tmp_path / "panda.pt"
    assert main(["export", "--policy", str(kuka_run), "--env", "sim2real/PandaReach-v0", "--out", str(out)]) == 0
    assert "was trained on sim2real/KukaReach-v0; the sidecar describes sim2real/PandaReach-v0" in capsys.readouterr().err
    meta = yaml.safe_load(out.with_suffix(".yaml").read_text())
    assert meta["env_id"] == "sim2real/PandaReach-v0" and meta["robot"] == "franka_panda"
    assert all(j.startswith("panda_joint") for j in meta["action"]["joints"]) and len(meta["action"]["joints"]) == 7
    # the run's own env (no --env): its robot, no note
    own = tmp_path / "kuka.pt"
    assert main(["export", "--policy", str(kuka_run), "--out", str(own)]) == 0
    assert "note" not in capsys.readouterr().err
    meta = yaml.safe_load(own.with_suffix(".yaml").read_text())
    assert meta["env_id"] == "sim2real/KukaReach-v0" and meta["robot"] == "kuka_iiwa"
