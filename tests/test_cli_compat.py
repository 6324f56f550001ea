"""A policy used where it does not fit, and outputs of ``osi`` / ``excite`` that cannot be written:
one error line, exit 2, checked before any rollout, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sim2real.cli.main import main

@pytest.fixture(scope="module")
def kuka_run(tiny_kuka_run: Path) -> Path:
    """A tiny plain (non-universal) KUKA reach policy: 20 observations, 7 actions."""
    return tiny_kuka_run


def _one_error(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"sim2real {command}: error: "), err
    return lines[0]


@pytest.mark.parametrize("env", ["sim2real/QuadrotorHover-v0", "sim2real/Hopper-v0"])
def test_evaluate_on_an_env_the_policy_does_not_fit(kuka_run: Path, tmp_path: Path, capsys, env: str) -> None:
    assert main(["evaluate", "--policy", str(kuka_run), "--env", env, "--episodes", "1",
                 "--out", str(tmp_path / "ev")]) == 2
    line = _one_error(capsys, "evaluate")
    assert f"does not fit {env}" in line and "sim2real/KukaReach-v0" in line and "shape (20,)" in line, line
    assert not (tmp_path / "ev").exists()


def test_evaluate_on_an_env_with_the_same_spaces_runs(kuka_run: Path, tmp_path: Path, capsys) -> None:
    # Panda reach has the same observation/action layout (7 joints): allowed, with a note
    assert main(["evaluate", "--policy", str(kuka_run), "--env", "sim2real/PandaReach-v0", "--episodes", "1",
                 "--workers", "1", "--no-nominal", "--profile", "nominal", "--out", str(tmp_path / "ev")]) == 0
    assert (tmp_path / "ev" / "results.json").is_file()


def _osi_cfg(tmp_path: Path, policy: Path, out: Path) -> Path:
    cfg = {"universal_policy": str(policy), "env": "sim2real/KukaReach-v0", "profile": "peng2018_arm",
           "env_kwargs": {"max_episode_steps": 8}, "history": 2, "iterations": 1, "episodes": 1, "eval_episodes": 1,
           "epochs": 1, "hidden": [4], "out": str(out)}
    (tmp_path / "osi.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path / "osi.yaml"


def test_osi_refuses_a_policy_that_is_not_universal(kuka_run: Path, tmp_path: Path, capsys) -> None:
    cfg = _osi_cfg(tmp_path, kuka_run, tmp_path / "osi_out")
    assert main(["osi", str(cfg), "--quiet"]) == 2
    line = _one_error(capsys, "osi")
    assert "universal policy" in line and "shape (20,)" in line, line
    assert not (tmp_path / "osi_out").exists()


@pytest.mark.parametrize("out,message", [("afile.txt", "afile.txt is a file"),
                                         ("afile.txt/osi", "lies under"),
                                         ("done", "already holds files (osi.json)")])
def test_osi_out_checks(kuka_run: Path, tmp_path: Path, capsys, out: str, message: str) -> None:
    (tmp_path / "afile.txt").write_text("keep\n")
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "osi.json").write_text("{}\n")
    cfg = _osi_cfg(tmp_path, kuka_run, tmp_path / "unused")
    assert main(["osi", str(cfg), "--quiet", "--out", str(tmp_path / out)]) == 2
    assert message in _one_error(capsys, "osi")
    assert (tmp_path / "afile.txt").read_text() == "keep\n" and (tmp_path / "done" / "osi.json").read_text() == "{}\n"


@pytest.mark.parametrize("out,force,message", [("afile.txt", False, "afile.txt is a file"),
                                               ("afile.txt", True, "afile.txt is a file"),
                                               ("afile.txt/bag", True, "lies under"),
                                               ("adir", False, "already exists")])
def test_excite_out_checks(tmp_path: Path, capsys, out: str, force: bool, message: str) -> None:
    (tmp_path / "afile.txt").write_text("keep\n")
    (tmp_path / "adir").mkdir()
    argv = ["excite", "--robot", "kuka_iiwa", "--duration", "1", "--wait-state", "0.1", "--out", str(tmp_path / out)]
    assert main(argv + (["--force"] if force else [])) == 2
    assert message in _one_error(capsys, "excite")
    assert (tmp_path / "afile.txt").read_text() == "keep\n"


def test_export_for_an_env_the_policy_does_not_fit(kuka_run: Path, tmp_path: Path, capsys) -> None:
    assert main(["export", "--policy", str(kuka_run), "--env", "sim2real/KukaReachCamera-v0", "--out",
                 str(tmp_path / "p.pt")]) == 2
    line = _one_error(capsys, "export")
    assert "does not fit sim2real/KukaReachCamera-v0" in line and "the env's is {" in line, line
    assert not list(tmp_path.iterdir())
