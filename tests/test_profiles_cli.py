"""``sim2real profile validate|sample|show|list``."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from sim2real.cli.main import main
from sim2real.profiles import load_profile, shipped_profiles


@pytest.fixture
def bad_profile(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"params": {"link_mass": {"distribution": "uniform", "low": "heavy", "high": 2}}}))
    return path


def test_validate_ok_and_bad(tmp_path, capsys, bad_profile):
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"extends": "peng2018_arm", "params": {"position_gain": {"high": 1.5}}}))
    assert main(["profile", "validate", str(good), "peng2018_arm", "--robot", "franka_panda"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"OK {good}", "OK peng2018_arm"]

    assert main(["profile", "validate", str(good), str(bad_profile)]) == 2
    cap = capsys.readouterr()
    assert cap.out.splitlines() == [f"OK {good}"]
    assert cap.err.splitlines() == [
        f"sim2real profile validate: error: {bad_profile}: params.link_mass.low: expected a number, got 'heavy'"]


def test_validate_uses_the_profile_robot_key(capsys):
    assert main(["profile", "validate", "quadrotor"]) == 0
    assert capsys.readouterr().out.strip() == "OK quadrotor"
    assert main(["profile", "validate", "quadrotor", "--robot", "kuka_iiwa"]) == 2
    assert "the profile is for robot 'quadrotor', but was loaded for 'kuka_iiwa'" in capsys.readouterr().err


def test_sample_table_and_json(capsys):
    assert main(["profile", "sample", "peng2018_arm", "--robot", "kuka_iiwa", "--seed", "7"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["entry", "param", "target", "op", "draw", "nominal", "result"]
    assert any(line.split()[:3] == ["joint_damping", "joint_damping", "lbr_iiwa_joint_3"] for line in table)

    assert main(["profile", "sample", "peng2018_arm", "--robot", "kuka_iiwa", "--seed", "7", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["robot"] == "kuka_iiwa" and report["seed"] == 7
    samples = report["samples"]
    assert list(samples) == list(load_profile("peng2018_arm").entries)
    # the printed draws are exactly Profile.sample with the same seed
    prof = load_profile("peng2018_arm", robot="kuka_iiwa")
    draws = prof.sample(np.random.default_rng(7))
    jd = samples["joint_damping"]["values"]
    assert list(jd) == [f"lbr_iiwa_joint_{i}" for i in range(1, 8)]
    for i, (target, v) in enumerate(jd.items()):
        assert v["draw"] == float(draws["joint_damping"].values[i, 0])
        assert v["nominal"] == 0.5                                      # robot.yaml nominal.joint_damping
        assert v["result"] == pytest.approx(0.5 * v["draw"])
    gains = samples["position_gain"]["values"]["lbr_iiwa_joint_1"]
    # the iiwa's PD drive: kp of joint 1 from robot.yaml actuators
    assert gains["nominal"] == 1750.0 and gains["result"] == pytest.approx(1750.0 * gains["draw"])
    lat = samples["action_latency"]["values"]["value"]
    assert lat["nominal"] is None and lat["result"] == lat["draw"] and 0 <= lat["draw"] <= 0.04
    assert samples["link_mass"]["values"]["base"]["nominal"] is None     # only the URDF knows masses


def test_sample_when_and_model_params(capsys):
    assert main(["profile", "sample", "quadrotor", "--seed", "1", "--when", "interval", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["samples"]) == ["wind_gust"]
    assert main(["profile", "sample", "quadrotor", "--seed", "1", "--json"]) == 0
    kf = json.loads(capsys.readouterr().out)["samples"]["thrust_coefficient"]["values"]["kf"]
    assert kf["nominal"] == 3.16e-10 and kf["result"] == pytest.approx(3.16e-10 * kf["draw"])
    assert main(["profile", "sample", "quadrotor", "--when", "sometimes"]) == 2
    assert "--when: expected a comma-separated list" in capsys.readouterr().err


def test_sample_needs_a_robot_for_targets(capsys):
    assert main(["profile", "sample", "peng2018_arm"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "give --robot NAME" in err


def test_show_prints_resolved_yaml(capsys):
    assert main(["profile", "show", "tobin2017_visual"]) == 0
    data = yaml.safe_load(capsys.readouterr().out)
    assert "extends" not in data and "link_colors" not in data["params"]
    assert data["params"]["distractors"]["high"] == 10.0
    assert load_profile(data).entries == load_profile("tobin2017_visual").entries


def test_list_shows_every_shipped_profile(capsys):
    assert main(["profile", "list"]) == 0
    out = capsys.readouterr().out
    for name in shipped_profiles():
        assert any(line.startswith(name + " ") for line in out.splitlines()), name
    assert "[robot: quadrotor]" in out


def test_subprocess_error_is_one_line_without_traceback(bad_profile):
    proc = subprocess.run([sys.executable, "-m", "sim2real", "profile", "validate", str(bad_profile)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (f"sim2real profile validate: error: {bad_profile}: "
                                   "params.link_mass.low: expected a number, got 'heavy'")
    proc = subprocess.run([sys.executable, "-m", "sim2real", "profile", "show", str(bad_profile)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("sim2real profile: error: ")
