"""sim2real._check.Checker: the one config checker (error class, file and key path in one line),
and the modules that validate through it."""

from __future__ import annotations

import copy
import math
import subprocess
import sys
from pathlib import Path

import pytest

from sim2real._check import Checker
from sim2real._io import read_yaml_file
from sim2real.errors import ConfigError, ProfileError, RobotError
from sim2real.robots import parse_robot, robots_dir
from sim2real.ros2.params import validate_params


def test_fail_raises_the_given_class_with_file_and_key_path() -> None:
    chk = Checker("robot.yaml", RobotError)
    with pytest.raises(RobotError) as info:
        chk.fail(("joints", 2, "lower"), "expected a number, got 'x'")
    assert str(info.value) == "robot.yaml: joints[2].lower: expected a number, got 'x'"
    assert info.value.file == "robot.yaml" and info.value.key_path == ("joints", 2, "lower")
    assert info.value.detail == "expected a number, got 'x'"
    with pytest.raises(ConfigError) as info:  # default class; no file, no path
        Checker(None).fail((), "bad")
    assert type(info.value) is ConfigError and str(info.value) == "bad"
    with pytest.raises(ProfileError, match=r"^p\.yaml: params\.mass: x$"):
        Checker(Path("p.yaml"), ProfileError).fail(["params", "mass"], "x")  # type: ignore[arg-type]


def test_expect_raises_only_when_the_condition_is_false() -> None:
    chk = Checker("c.yaml")
    chk.expect(True, ("a",), "never")
    chk.expect([1], ("a",), "never")
    with pytest.raises(ConfigError, match=r"^c\.yaml: a: expected a list$"):
        chk.expect([], ("a",), "expected a list")


def test_typed_checks() -> None:
    chk = Checker("c.yaml")
    assert chk.integer(3.0, ("n",)) == 3 and isinstance(chk.integer(3.0, ("n",)), int)
    with pytest.raises(ConfigError, match=r"n: expected an integer, got True"):
        chk.integer(True, ("n",))
    with pytest.raises(ConfigError, match=r"n: expected an integer >= 1, got 0"):
        chk.integer(0, ("n",), 1)
    assert chk.number(2, ("x",)) == 2.0
    with pytest.raises(ConfigError, match=r"x: expected a number, got False"):
        chk.number(False, ("x",))
    with pytest.raises(ConfigError, match=r"x: expected a finite number, got nan"):
        chk.number(math.nan, ("x",))
    with pytest.raises(ConfigError, match=r"x: expected a number in \[0, 1\], got 2"):
        chk.number(2, ("x",), 0, 1)
    with pytest.raises(ConfigError, match=r"b: expected true or false, got 1"):
        chk.boolean(1, ("b",))
    with pytest.raises(ConfigError, match=r"s: expected one of a, b, got 'c'"):
        chk.string("c", ("s",), ("a", "b"))
    with pytest.raises(ConfigError, match=r"^c\.yaml: m\.z: unknown key \(expected one of: x, y\)$"):
        chk.mapping({"x": 1, "z": 2}, ("m",), {"x", "y"})
    with pytest.raises(ConfigError, match=r"^c\.yaml: m: expected a mapping, got list$"):
        chk.section([1], ("m",))
    with pytest.raises(ConfigError, match=r"^c\.yaml: m\.z: unknown key 'z'; expected one of \['x', 'y'\]$"):
        chk.section({"x": 1, "z": 2}, ("m",), {"x", "y"})


def _kuka() -> dict:
    return read_yaml_file(robots_dir() / "kuka_iiwa" / "robot.yaml")


def test_robot_files_are_checked_through_it() -> None:
    parse_robot(_kuka(), Path("robot.yaml"))  # the shipped file is valid
    raw = _kuka()
    raw["joints"][0]["lower"] = float("nan")
    with pytest.raises(RobotError, match=r"^robot\.yaml: joints\[0\]\.lower: expected a finite number, got nan$"):
        parse_robot(raw, Path("robot.yaml"))
    raw = _kuka()
    raw["control"] = ["position"]
    with pytest.raises(RobotError, match=r"^robot\.yaml: control: expected a mapping, got list$"):
        parse_robot(raw, Path("robot.yaml"))
    raw = _kuka()
    raw["actuators"] = [{"model": "pd", "joints": "all", "kp": 100.0, "kd": 1.0, "gravity_ff": 1}]
    with pytest.raises(RobotError, match=r"^robot\.yaml: actuators\[0\]\.gravity_ff: expected true or false, got 1$"):
        parse_robot(copy.deepcopy(raw), Path("robot.yaml"))


def test_deploy_parameters_are_checked_through_it() -> None:
    with pytest.raises(ConfigError) as info:
        validate_params({"rate_hz": -1.0}, "params.yaml")
    assert str(info.value) == "params.yaml: sim2real_deploy.ros__parameters.rate_hz: expected >= 0, got -1.0"
    with pytest.raises(ConfigError, match=r"safety\.resume: expected str, got 3$"):
        validate_params({"safety.resume": 3}, "params.yaml")


def test_imports_with_the_standard_library_only() -> None:
    """The deployment install (no numpy-heavy simulation stack) imports the checker."""
    code = ("import sys; import sim2real._check\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('numpy', 'yaml', 'pybullet', 'torch')]\n"
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
