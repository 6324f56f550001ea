"""Tiny PPO / SAC runs on the reach env: checkpoints, resume, report, ADR and EPOpt wiring."""

from __future__ import annotations

import json

import pytest

from sim2real.errors import CheckpointError
from sim2real.train.config import parse_run_config
from sim2real.train.trainer import train

ENV = {"id": "sim2real/KukaReach-v0", "kwargs": {"max_episode_steps": 20}}


def _cfg(**kw):
    base = {"env": ENV, "robot": "kuka_iiwa", "profile": "nominal", "algo": "ppo", "net_arch": [16],
            "hyperparameters": {"n_steps": 64, "batch_size": 32, "n_epochs": 1}, "total_timesteps": 128,
            "normalize": True, "eval": {"freq": 64, "episodes": 1}, "checkpoint": {"freq": 64}}
    base.update(kw)
    return parse_run_config(base)


def _latest(out):
    return json.loads((out / "checkpoints" / "latest.json").read_text())


def test_ppo_checkpoints_resume_and_report(tmp_path):
    out = tmp_path / "ppo"
    res = train(_cfg(), out, progress_bar=False, log=lambda s: None)
    assert res.num_timesteps == 128
    for name in ("model.zip", "vecnormalize.pkl", "run.yaml", "report.md", "report.json", "evaluations.json"):
        assert (out / name).is_file(), name
    assert _latest(out)["num_timesteps"] == 128
    ck = out / "checkpoints" / _latest(out)["dir"]
    assert {"model.zip", "vecnormalize.pkl", "state.json", "rng.pkl"} <= {p.name for p in ck.iterdir()}
    assert not list((out / "checkpoints").glob(".*"))  # no temp folder left behind
    with pytest.raises(CheckpointError, match="--resume"):
        train(_cfg(), out, progress_bar=False, log=lambda s: None)
    # continue the run: the step count carries on from the checkpoint, history is kept
    res2 = train(_cfg(total_timesteps=256), out, resume=True, progress_bar=False, log=lambda s: None)
    assert res2.num_timesteps == 256
    assert _latest(out)["num_timesteps"] == 256
    report = json.loads((out / "report.json").read_text())
    assert [e["num_timesteps"] for e in report["evaluations"]] == [64, 128, 192, 256]
    assert report["final_eval"]["episodes"] == 1
    assert len(list((out / "tb").iterdir())) == 1  # same TensorBoard run continued


def test_resume_without_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        train(_cfg(), tmp_path / "empty", resume=True, progress_bar=False)


def test_sac_replay_buffer_survives_resume(tmp_path):
    from stable_baselines3 import SAC

    cfg = _cfg(algo="sac", hyperparameters={"learning_starts": 32, "batch_size": 16, "buffer_size": 1000},
               total_timesteps=64, eval={"freq": 0, "episodes": 1}, checkpoint={"freq": 32})
    out = tmp_path / "sac"
    train(cfg, out, progress_bar=False, log=lambda s: None)
    assert (out / "checkpoints" / _latest(out)["dir"] / "replay_buffer.pkl").is_file()
    train(cfg.with_overrides(total_timesteps=96), out, resume=True, progress_bar=False, log=lambda s: None)
    ck = out / "checkpoints" / _latest(out)["dir"]
    model = SAC.load(ck / "model.zip")
    model.load_replay_buffer(ck / "replay_buffer.pkl")
    assert model.num_timesteps == 96
    assert model.replay_buffer.size() == 96  # 64 restored + 32 new, not 32


def test_adr_run_writes_profile_and_ranges(tmp_path):
    from sim2real.profiles import load_profile

    prof = {"params": {"joint_damping": {"targets": "all", "distribution": "uniform", "low": 0.5, "high": 2.0}}}
    cfg = _cfg(profile=prof, adr={"p_b": 1.0, "buffer_size": 1, "delta": 0.5, "t_low": -1e9, "t_high": -1e9,
                                  "metric": "return"})
    out = tmp_path / "adr"
    train(cfg, out, progress_bar=False, log=lambda s: None)
    # every episode is a boundary episode, every return >= t_high: both boundaries widen to the limits
    adr = load_profile(out / "adr_profile.yaml", robot="kuka_iiwa")
    lo, hi = adr.entries["joint_damping"].distribution.support()
    assert lo[0] < 1.0 < hi[0]
    state = json.loads((out / "checkpoints" / _latest(out)["dir"] / "state.json").read_text())
    assert state["adr"]["ranges"]["joint_damping"] == [[float(lo[0])], [float(hi[0])]]
    assert "adr_ranges" in json.loads((out / "report.json").read_text())


def test_epopt_run_on_reach(tmp_path):
    prof = {"params": {"link_mass": {"targets": "all", "distribution": "uniform", "low": 0.5, "high": 2.0}}}
    cfg = _cfg(algo="epopt_ppo", profile=prof, hyperparameters={"batch_size": 20, "n_epochs": 1},
               epopt={"epsilon": 0.5, "n_models": 4, "skip_iters": 1}, total_timesteps=160,
               eval={"freq": 0, "episodes": 1})
    out = tmp_path / "epopt"
    res = train(cfg, out, progress_bar=False, log=lambda s: None)
    assert res.num_timesteps == 160  # 2 iterations x 4 models x 20 steps
    state = json.loads((out / "checkpoints" / _latest(out)["dir"] / "state.json").read_text())
    assert state["epopt"]["iteration"] == 2


@pytest.mark.slow
def test_killed_run_resumes_from_last_checkpoint(tmp_path):
    """SIGKILL a CLI training run after its first checkpoint; --resume carries on from that step."""
    import subprocess
    import sys
    import time

    import yaml

    cfg = _cfg(total_timesteps=100000, eval={"freq": 0, "episodes": 1}).to_dict()
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "sim2real", "train", str(cfg_file), "--out", str(out),
                             "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (out / "checkpoints" / "latest.json").exists() and time.time() < deadline:
            assert proc.poll() is None, "training exited early"
            time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait()
    steps = _latest(out)["num_timesteps"]
    assert steps > 0 and steps % 64 == 0
    assert not (out / "model.zip").exists()  # the run never finished
    res = train(parse_run_config(dict(cfg, total_timesteps=steps + 64)), out, resume=True, progress_bar=False,
                log=lambda s: None)
    assert res.num_timesteps == steps + 64
