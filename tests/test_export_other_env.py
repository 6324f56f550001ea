"""``export --env OTHER``: the other env is built as registered (its own robot, not the run's), so a
policy that does not fit it is refused in one line naming the observation and action sizes (exit 2,
nothing written), and one that fits is exported with the other env's robot, layout and action."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sim2real.cli.main import main

@pytest.fixture(scope="module")
def kuka_run(tiny_kuka_run: Path) -> Path:
    """A tiny plain (non-universal) KUKA reach policy: 20 observations, 7 actions."""
    return tiny_kuka_run


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
