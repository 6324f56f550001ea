"""``sim2real train CONFIG --seeds ...``: one run per seed under OUT/seed_<n>, seeds.json with each
seed's final evaluation and the mean with a Student-t 95 % interval; local processes or Ray tasks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from sim2real.cli.main import main
from sim2real.train.seeds import mean_ci

CFG = {"env": {"id": "sim2real/KukaReach-v0", "kwargs": {"max_episode_steps": 8}}, "robot": "kuka_iiwa",
       "algo": "ppo", "net_arch": [8], "hyperparameters": {"n_steps": 16, "batch_size": 16, "n_epochs": 1},
       "total_timesteps": 16, "normalize": True, "eval": {"freq": 0, "episodes": 2}}


def _cfg(tmp_path: Path, **kw) -> str:
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump({**CFG, **kw}))
    return str(tmp_path / "cfg.yaml")


def test_mean_ci_is_students_t() -> None:
    x = [0.2, 0.5, 0.9, 0.4]
    agg = mean_ci(x)
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert agg["n"] == 4 and agg["mean"] == pytest.approx(np.mean(x)) and agg["ci"] == pytest.approx([lo, hi])
    assert mean_ci([0.3, 0.3])["ci"] == pytest.approx([0.3, 0.3])  # no spread, no width
    assert mean_ci([0.7]) == {"n": 1, "mean": 0.7, "std": None, "ci": None, "level": 0.95}
    assert mean_ci([None, float("nan")])["mean"] is None


def _check_report(out: Path, seeds: list[int]) -> dict:
    report = json.loads((out / "seeds.json").read_text())
    assert [r["seed"] for r in report["seeds"]] == seeds
    for r in report["seeds"]:
        run = out / f"seed_{r['seed']}"
        assert yaml.safe_load((run / "run.yaml").read_text())["seed"] == r["seed"]
        final = json.loads((run / "report.json").read_text())["final_eval"]
        assert r["mean_return"] == pytest.approx(final["mean_return"]) and r["num_timesteps"] == 16
    agg = mean_ci([r["mean_return"] for r in report["seeds"]])
    assert report["aggregate"]["mean_return"] == agg  # JSON keeps floats exactly
    return report


def test_seeds_in_local_processes_then_resume(tmp_path: Path, capsys) -> None:
    out = tmp_path / "runs"
    assert main(["train", _cfg(tmp_path), "--seeds", "3,1", "--workers", "2", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    report = _check_report(out, [3, 1])
    assert "mean over seeds: success" in printed and "95% CI" in printed
    returns = [r["mean_return"] for r in report["seeds"]]
    assert returns[0] != returns[1]  # different seeds, different runs
    # the same command again is refused (the runs exist); --resume continues each seed, adds a new one
    before = (out / "seeds.json").read_bytes()
    assert main(["train", _cfg(tmp_path), "--seeds", "3,1", "--out", str(out)]) == 2
    assert "already holds a run (seeds.json)" in capsys.readouterr().err
    assert (out / "seeds.json").read_bytes() == before
    assert main(["train", _cfg(tmp_path, total_timesteps=32), "--seeds", "3,1,5", "--out", str(out), "--resume",
                 "--no-progress"]) == 0
    report = json.loads((out / "seeds.json").read_text())
    assert [r["num_timesteps"] for r in report["seeds"]] == [32, 32, 32]
    assert "resuming" in capsys.readouterr().out


def test_same_seed_sequentially_reproduces(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["train", _cfg(tmp_path), "--seeds", "2", "--out", str(a), "--no-progress"]) == 0
    assert main(["train", _cfg(tmp_path), "--seed", "2", "--out", str(b), "--no-progress"]) == 0
    ra = json.loads((a / "seeds.json").read_text())["seeds"][0]["mean_return"]
    rb = json.loads((b / "report.json").read_text())["final_eval"]["mean_return"]
    assert ra == pytest.approx(rb)


@pytest.mark.parametrize("argv,message", [
    (["--seeds", "0,0"], "a seed is given twice"), (["--seeds", "0,-1"], "--seeds"), (["--seeds", "0,,1"], "--seeds"),
    (["--seed", "1", "--seeds", "0,1"], "not allowed with argument"), (["--workers", "2"], "--workers: only used with --seeds"),
    (["--ray", "auto"], "--ray: only used with --seeds"), (["--seeds", "0", "--workers", "2", "--ray", "auto"], "not both"),
])
def test_bad_seed_arguments(tmp_path: Path, capsys, argv: list, message: str) -> None:
    try:
        code = main(["train", _cfg(tmp_path), "--out", str(tmp_path / "o"), *argv])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "o").exists()


def test_bad_profile_fails_once_before_any_seed(tmp_path: Path, capsys) -> None:
    assert main(["train", _cfg(tmp_path, profile="no_such_profile"), "--seeds", "0,1", "--out",
                 str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no_such_profile" in err[0]
    assert not (tmp_path / "o").exists()


def test_seeds_as_ray_tasks(tmp_path: Path, capsys) -> None:
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'sim2real[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        out = tmp_path / "runs"
        assert main(["train", _cfg(tmp_path), "--seeds", "0,1", "--ray", "auto", "--out", str(out)]) == 0
        report = _check_report(out, [0, 1])
        assert main(["train", _cfg(tmp_path, total_timesteps=32), "--seeds", "0,1", "--ray", "auto", "--resume",
                     "--out", str(out)]) == 0
    finally:
        ray.shutdown()
    assert [r["num_timesteps"] for r in json.loads((out / "seeds.json").read_text())["seeds"]] == [32, 32]
    # Ray and local processes train the same runs
    local = tmp_path / "local"
    assert main(["train", _cfg(tmp_path), "--seeds", "0,1", "--out", str(local), "--no-progress"]) == 0
    assert [r["mean_return"] for r in _check_report(local, [0, 1])["seeds"]] == \
        pytest.approx([r["mean_return"] for r in report["seeds"]])


def test_dry_run_checks_and_writes_nothing(tmp_path: Path, capsys) -> None:
    out = tmp_path / "o"
    assert main(["train", _cfg(tmp_path), "--dry-run", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert yaml.safe_load(printed)["env"]["id"] == "sim2real/KukaReach-v0" and "nothing written" in printed
    assert not out.exists()
    # what training would refuse, the dry run refuses: a bad env kwarg, a seed folder holding a run
    assert main(["train", _cfg(tmp_path, env={"id": "sim2real/KukaReach-v0", "kwargs": {"bogus": 1}}),
                 "--dry-run", "--out", str(out)]) == 2
    assert "bogus" in capsys.readouterr().err
    (out / "seed_1" / "checkpoints").mkdir(parents=True)
    (out / "seed_1" / "checkpoints" / "latest.json").write_text("{}")
    assert main(["train", _cfg(tmp_path), "--seeds", "0,1", "--dry-run", "--out", str(out)]) == 2
    assert "seed_1: already holds a run" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["seed_1"]
