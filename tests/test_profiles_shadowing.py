"""One rule for profile arguments: a path when it contains a path separator or ends in .yaml/.yml,
otherwise a shipped profile name, so files in the working directory never shadow a shipped profile;
a YAML file that is not a profile (e.g. an export sidecar) is named as such."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sim2real.cli.main import main
from sim2real.errors import ProfileError
from sim2real.profiles.loader import find_profile, is_profile_path, load_profile, profiles_dir

SHADOW = {"description": "a local file named like a shipped profile",
          "params": {"gravity": {"distribution": "constant", "value": [0.0, 0.0, -1.0]}}}


@pytest.mark.parametrize("ref,is_path", [("nominal", False), ("peng2018_arm", False), ("nominal.yaml", True),
                                         ("x.yml", True), ("./nominal", True), ("dir/p", True),
                                         (Path("nominal"), True)])
def test_the_rule(ref, is_path: bool) -> None:
    assert is_profile_path(ref) is is_path


@pytest.fixture
def shadowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("nominal", "nominal.yaml"):
        (tmp_path / name).write_text(yaml.safe_dump(SHADOW))
    return tmp_path


def test_bare_name_is_the_shipped_profile_even_with_a_local_file(shadowed: Path) -> None:
    assert find_profile("nominal") == profiles_dir() / "nominal.yaml"
    assert "gravity" not in load_profile("nominal").entries
    assert "gravity" in load_profile("nominal.yaml").entries  # a path: the local file
    assert "gravity" in load_profile("./nominal").entries


def test_cli_uses_the_shipped_profile(shadowed: Path, capsys) -> None:
    assert main(["profile", "show", "nominal"]) == 0
    shown = capsys.readouterr().out
    assert "gravity" not in shown and "a local file" not in shown
    assert main(["profile", "show", "./nominal.yaml"]) == 0
    assert "gravity" in capsys.readouterr().out


def test_bare_name_of_a_local_file_says_how_to_use_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(SHADOW))
    with pytest.raises(ProfileError, match=r"'mine' not found: not a shipped profile.*give it as ./mine.yaml"):
        load_profile("mine")
    with pytest.raises(ProfileError, match=r"'peng2018.yaml' not found: no such file.*named without .yaml"):
        load_profile("peng2018.yaml")


def test_export_sidecar_is_not_a_profile(tmp_path: Path, capsys) -> None:
    side = tmp_path / "policy.yaml"
    side.write_text(yaml.safe_dump({"format": "sim2real-policy/1", "robot": "kuka_iiwa", "env_id": "sim2real/KukaReach-v0",
                                    "observation": {"size": 20}, "action": {"size": 7}}))
    assert main(["profile", "validate", str(side)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a randomization profile: an exported policy's sidecar (sim2real-policy/1)" in err[0]
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({"env": {"id": "x"}, "algo": "ppo"}))
    with pytest.raises(ProfileError, match="not a randomization profile: a YAML file with keys algo, env"):
        load_profile(other)
