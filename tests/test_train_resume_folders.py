"""``train --resume`` finds the newest intact ``checkpoints/step_*`` folder whether or not
``checkpoints/latest.json`` exists or names it, and without ``--resume`` step folders alone mark
an ``--out`` as holding a run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from sim2real.cli.main import main
from sim2real.train.checkpoint import checkpoint_folders, checkpoint_marker, latest_checkpoint

CFG = {"env": {"id": "sim2real/KukaReach-v0", "kwargs": {"max_episode_steps": 16}}, "robot": "kuka_iiwa",
       "profile": "nominal", "algo": "ppo", "net_arch": [8],
       "hyperparameters": {"n_steps": 32, "batch_size": 16, "n_epochs": 1}, "total_timesteps": 96,
       "normalize": True, "eval": {"freq": 0, "episodes": 1}, "checkpoint": {"freq": 32}}
STEP_64, STEP_96 = "step_0000000064", "step_0000000096"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained run in ``run/`` with the checkpoints of steps 64 and 96 kept."""
    d = tmp_path_factory.mktemp("resume")
    (d / "cfg.yaml").write_text(yaml.safe_dump(CFG))
    assert main(["train", str(d / "cfg.yaml"), "--out", str(d / "run"), "--no-progress"]) == 0
    assert sorted(p.name for p in (d / "run" / "checkpoints").iterdir() if p.is_dir()) == [STEP_64, STEP_96]
    return d


@pytest.fixture
def work(trained: Path, tmp_path: Path) -> Path:
    shutil.copytree(trained, tmp_path, dirs_exist_ok=True)
    return tmp_path


def _resume(work: Path, capsys: pytest.CaptureFixture, *extra: str) -> tuple[int, str, str]:
    code = main(["train", str(work / "cfg.yaml"), "--out", str(work / "run"), "--resume", "--no-progress",
                 "--total-timesteps", "128", *extra])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _latest(work: Path) -> dict:
    return json.loads((work / "run" / "checkpoints" / "latest.json").read_text())


def test_resume_without_latest_json_continues_from_the_newest_step_folder(work: Path, capsys) -> None:
    (work / "run" / "checkpoints" / "latest.json").unlink()
    assert checkpoint_marker(work / "run") == f"checkpoints/{STEP_96}"
    code, out, err = _resume(work, capsys)
    assert code == 0, err
    assert f"from {STEP_96} at 96 steps" in out
    assert _latest(work) == {"dir": "step_0000000128", "num_timesteps": 128}


def test_a_step_folder_newer_than_latest_json_is_the_one_resumed(work: Path, capsys) -> None:
    """A kill between renaming the new step folder into place and updating latest.json."""
    (work / "run" / "checkpoints" / "latest.json").write_text(json.dumps({"dir": STEP_64, "num_timesteps": 64}))
    assert [p.name for p in checkpoint_folders(work / "run")] == [STEP_96, STEP_64]
    code, out, err = _resume(work, capsys)
    assert code == 0, err
    assert f"from {STEP_96} at 96 steps" in out


def test_a_damaged_newest_folder_falls_back_to_the_older_one(work: Path, capsys) -> None:
    (work / "run" / "checkpoints" / "latest.json").unlink()
    zip_path = work / "run" / "checkpoints" / STEP_96 / "model.zip"
    zip_path.write_bytes(zip_path.read_bytes()[:100])
    warnings: list[str] = []
    assert latest_checkpoint(work / "run", warn=warnings.append) == work / "run" / "checkpoints" / STEP_64
    assert len(warnings) == 1 and "model.zip damaged" in warnings[0]
    code, out, err = _resume(work, capsys)
    assert code == 0, err
    assert f"from {STEP_64} at 64 steps" in out and f"using {work / 'run' / 'checkpoints' / STEP_64}" in err


def test_step_folders_alone_mean_the_out_holds_a_run(work: Path, capsys) -> None:
    (work / "run" / "checkpoints" / "latest.json").unlink()
    before = sorted(str(p.relative_to(work)) for p in (work / "run").rglob("*"))
    for extra in ([], ["--dry-run"]):
        assert main(["train", str(work / "cfg.yaml"), "--out", str(work / "run"), "--no-progress", *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"already holds a run (checkpoints/{STEP_96})" in err[0], err
    assert sorted(str(p.relative_to(work)) for p in (work / "run").rglob("*")) == before
    # the per-seed check of --seeds sees them too
    (work / "seeds").mkdir()
    shutil.move(work / "run", work / "seeds" / "seed_1")
    assert main(["train", str(work / "cfg.yaml"), "--seeds", "0,1", "--dry-run", "--out", str(work / "seeds")]) == 2
    assert f"seed_1: already holds a run (checkpoints/{STEP_96})" in capsys.readouterr().err
    # and --dry-run --resume accepts the run it would continue
    assert main(["train", str(work / "cfg.yaml"), "--out", str(work / "seeds" / "seed_1"), "--resume",
                 "--dry-run"]) == 0


def test_resume_with_no_checkpoint_at_all_is_refused(tmp_path: Path, capsys) -> None:
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(CFG))
    (tmp_path / "run" / "checkpoints" / ".step_0000000032.tmp").mkdir(parents=True)  # a temp folder is no checkpoint
    assert checkpoint_marker(tmp_path / "run") is None
    assert main(["train", str(tmp_path / "cfg.yaml"), "--out", str(tmp_path / "run"), "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no checkpoint to resume from (checkpoints/step_* missing)" in err[0], err
    assert not (tmp_path / "run" / "run.yaml").exists()
