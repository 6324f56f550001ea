"""Damaged checkpoints: a truncated or empty model.zip / vecnormalize.pkl / rng.pkl is recognised
before it is loaded; ``train --resume``, ``evaluate`` and ``export`` fall back to the newest intact
checkpoint with one warning line, or stop with one error line (exit 2) when none is intact."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from sim2real.cli.main import main
from sim2real.train.checkpoint import checkpoint_problem, latest_checkpoint

CFG = {"env": {"id": "sim2real/KukaReach-v0", "kwargs": {"max_episode_steps": 16}}, "robot": "kuka_iiwa",
       "profile": "nominal", "algo": "ppo", "net_arch": [8],
       "hyperparameters": {"n_steps": 32, "batch_size": 16, "n_epochs": 1}, "total_timesteps": 96,
       "normalize": True, "eval": {"freq": 0, "episodes": 1}, "checkpoint": {"freq": 32}}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained run with two kept checkpoints (steps 64 and 96) and a final policy."""
    d = tmp_path_factory.mktemp("ckrun")
    (d / "cfg.yaml").write_text(yaml.safe_dump(CFG))
    assert main(["train", str(d / "cfg.yaml"), "--out", str(d / "run"), "--no-progress"]) == 0
    return d


@pytest.fixture
def copy(run: Path, tmp_path: Path) -> Path:
    shutil.copytree(run, tmp_path, dirs_exist_ok=True)
    return tmp_path


def _steps(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "checkpoints").iterdir() if p.is_dir())


def _latest_dir(out: Path) -> Path:
    return out / "checkpoints" / json.loads((out / "checkpoints" / "latest.json").read_text())["dir"]


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_intact_checkpoints_have_a_manifest_and_pass(run: Path) -> None:
    out = run / "run"
    assert _steps(out) == ["step_0000000064", "step_0000000096"]
    for name in _steps(out):
        ck = out / "checkpoints" / name
        manifest = json.loads((ck / "manifest.json").read_text())
        assert {"model.zip", "vecnormalize.pkl", "rng.pkl", "state.json"} <= set(manifest)
        assert checkpoint_problem(ck) is None
    assert checkpoint_problem(out) is None  # the final policy


@pytest.mark.parametrize("name,damage", [("model.zip", "truncate"), ("model.zip", "empty"),
                                         ("vecnormalize.pkl", "empty"), ("vecnormalize.pkl", "truncate"),
                                         ("rng.pkl", "empty"), ("state.json", "flip")])
def test_damaged_latest_checkpoint_is_skipped(copy: Path, name: str, damage: str) -> None:
    out = copy / "run"
    latest = _latest_dir(out)
    f = latest / name
    if damage == "truncate":
        _truncate(f)
    elif damage == "empty":
        f.write_bytes(b"")
    else:  # same size, one byte changed: only the checksum sees it
        data = bytearray(f.read_bytes())
        data[len(data) // 2] ^= 0x01
        f.write_bytes(bytes(data))
    assert name in checkpoint_problem(latest)
    warnings: list[str] = []
    assert latest_checkpoint(out, warn=warnings.append) == out / "checkpoints" / "step_0000000064"
    assert len(warnings) == 1 and latest.name in warnings[0] and name in warnings[0]


def test_structural_checks_without_a_manifest(copy: Path) -> None:
    latest = _latest_dir(copy / "run")
    (latest / "manifest.json").unlink()
    assert checkpoint_problem(latest) is None
    _truncate(latest / "model.zip", 0.9)
    assert "model.zip damaged" in checkpoint_problem(latest)


def test_train_resume_falls_back_to_the_previous_checkpoint(copy: Path, capsys) -> None:
    out = copy / "run"
    _truncate(_latest_dir(out) / "model.zip")
    assert main(["train", str(copy / "cfg.yaml"), "--out", str(out), "--resume", "--total-timesteps", "128",
                 "--no-progress"]) == 0
    cap = capsys.readouterr()
    warn = [ln for ln in cap.err.splitlines() if ln.startswith("warning:")]
    assert len(warn) == 1 and "step_0000000096" in warn[0] and "using" in warn[0] and "step_0000000064" in warn[0]
    assert "Traceback" not in cap.err
    assert "from step_0000000064 at 64 steps" in cap.out
    assert json.loads((out / "checkpoints" / "latest.json").read_text())["num_timesteps"] == 128


def test_every_checkpoint_damaged_is_one_error_line(copy: Path, capsys) -> None:
    out = copy / "run"
    for name in _steps(out):
        (out / "checkpoints" / name / "rng.pkl").write_bytes(b"")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main(["train", str(copy / "cfg.yaml"), "--out", str(out), "--resume", "--total-timesteps", "128",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sim2real train: error: no intact checkpoint"), err
    assert "rng.pkl" in err[0]
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_evaluate_and_export_fall_back_from_a_damaged_final_policy(copy: Path, capsys) -> None:
    out = copy / "run"
    _truncate(out / "model.zip")
    assert main(["evaluate", "--policy", str(out), "--episodes", "1", "--workers", "1", "--out",
                 str(copy / "ev")]) == 0
    err = capsys.readouterr().err
    warn = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    assert len(warn) == 1 and "model.zip damaged" in warn[0] and "step_0000000096" in warn[0], err
    (out / "vecnormalize.pkl").write_bytes(b"")
    _truncate(_latest_dir(out) / "vecnormalize.pkl")
    assert main(["export", "--policy", str(out), "--out", str(copy / "p.pt")]) == 0
    err = capsys.readouterr().err
    warn = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    assert len(warn) == 2 and "step_0000000064" in warn[-1], err
    assert (copy / "p.pt").is_file()


def test_evaluate_with_nothing_intact_is_one_error_line(copy: Path, capsys) -> None:
    out = copy / "run"
    for folder in [out] + [out / "checkpoints" / n for n in _steps(out)]:
        (folder / "model.zip").write_bytes(b"")
    assert main(["evaluate", "--policy", str(out), "--episodes", "1", "--out", str(copy / "ev")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sim2real evaluate: error: no intact checkpoint"), err
    assert not (copy / "ev").exists()


@pytest.mark.parametrize("text", ["", "{not json", '{"dir": "step_9999999999"}', "[1, 2]"])
def test_unreadable_latest_json_falls_back_to_the_step_folders(copy: Path, text: str) -> None:
    out = copy / "run"
    (out / "checkpoints" / "latest.json").write_text(text)
    warnings: list[str] = []
    assert latest_checkpoint(out, warn=warnings.append) == out / "checkpoints" / "step_0000000096"
    assert len(warnings) == (1 if "9999" in text else 0)  # a named folder that is gone is reported
