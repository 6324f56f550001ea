"""The shared pieces: error formatting, atomic writes, robot descriptions, CLI dispatch, README/CI agreement."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from sim2real._io import atomic_write_text, data_dir
from sim2real.cli.main import main
from sim2real.errors import ConfigError, RobotError
from sim2real.robots import list_robots, load_robot, parse_robot

ROOT = Path(__file__).resolve().parents[1]


def test_config_error_names_file_and_key_path():
    err = ConfigError("expected a number, got 'x'", file="a.yaml", path=("params", "link_mass", "low"))
    assert str(err) == "a.yaml: params.link_mass.low: expected a number, got 'x'"
    err = ConfigError("expected a mapping", file="r.yaml", path=("joints", 2, "lower"))
    assert str(err) == "r.yaml: joints[2].lower: expected a mapping"


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "report.txt"
    atomic_write_text(target, "first")
    from sim2real._io import atomic_open

    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as fh:
            fh.write("half")
            raise RuntimeError("crash")
    assert target.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["report.txt"]  # no temp file left behind


def test_shipped_robots_load():
    names = list_robots()
    for expected in ("kuka_iiwa", "franka_panda"):
        assert expected in names
    for name in names:
        robot = load_robot(name)
        assert robot.name == name
        assert len(robot.ros2.joint_names) == robot.n_joints
        assert Path(robot.model_path()).is_file()


def test_unknown_robot_lists_known_ones():
    with pytest.raises(RobotError, match="unknown robot 'ur5'.*kuka_iiwa"):
        load_robot("ur5")


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda r: r.update(kind="tank"), "kind: expected one of"),
        (lambda r: r["joints"][0].update(lower=1.0, upper=-1.0), "joints[0]: lower (1.0) must be below upper"),
        (lambda r: r["joints"][0].update(max_effort="lots"), "joints[0].max_effort: expected a number"),
        (lambda r: r.update(colour="red"), "colour: unknown key"),
        (lambda r: r["ros2"].update(joint_names=["a"]), "ros2.joint_names: expected a list of 7 names"),
    ],
)
def test_robot_validation_errors(mutate, fragment):
    import yaml

    file = data_dir("robots") / "kuka_iiwa" / "robot.yaml"
    raw = yaml.safe_load(file.read_text())
    mutate(raw)
    with pytest.raises(RobotError) as info:
        parse_robot(raw, file)
    assert fragment in str(info.value)
    assert str(file) in str(info.value)


def test_cli_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("envs", "profile"):
        assert command in out


def test_cli_error_is_one_line_without_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "sim2real", "profile", "validate", str(ROOT / "does_not_exist.yaml")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def _readme_block(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- {title} -->\s*```(?:bash|sh)\n(.*?)```", text, re.S)
    assert match, f"README has no '{title}' command block"
    return match.group(1).strip()


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    for line in _readme_block("test-command").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            assert line in ci, f".ci/run does not run the README's test command line: {line}"
