"""``eval.save_best`` (best-evaluated policy in <out>/best/) and ``init_from`` warm starts."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from sim2real.errors import CheckpointError, ConfigError
from sim2real.train.config import parse_run_config
from sim2real.train.trainer import train
from sim2real.train.warmstart import maybe_save_best

ENV = {"id": "sim2real/KukaReach-v0", "kwargs": {"max_episode_steps": 20}}


def _data(**kw):
    base = {"env": ENV, "robot": "kuka_iiwa", "profile": "nominal", "algo": "ppo", "net_arch": [16],
            "hyperparameters": {"n_steps": 64, "batch_size": 32, "n_epochs": 1}, "total_timesteps": 128,
            "normalize": True, "eval": {"freq": 64, "episodes": 1, "save_best": True}, "checkpoint": {"freq": 64}}
    base.update(kw)
    return base


def _quiet(_msg: str) -> None:
    pass


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("src") / "run"
    train(parse_run_config(_data()), out, progress_bar=False, log=_quiet)
    return out


def test_save_best_writes_the_best_evaluated_policy(trained):
    best = trained / "best"
    assert {"model.zip", "vecnormalize.pkl", "run.yaml", "best.json"} <= {p.name for p in best.iterdir()}
    info = json.loads((best / "best.json").read_text())
    history = json.loads((trained / "evaluations.json").read_text())
    key = [(e["success_rate"], e["mean_return"]) for e in history]
    top = history[key.index(max(key))]
    assert info["num_timesteps"] == top["num_timesteps"] and info["mean_return"] == pytest.approx(top["mean_return"])
    assert not [p for p in trained.iterdir() if p.name.startswith(".best")]  # no temp folders left
    from sim2real.train.policy import load_policy

    pol = load_policy(best)  # a policy folder: run.yaml found, normalisation loaded
    assert pol.run["env"]["id"] == ENV["id"] and pol.obs_mean is not None


class _Saver:
    def __init__(self, tag: str) -> None:
        self.tag = tag

    def save(self, path: str) -> None:
        with open(path, "w") as fh:
            fh.write(self.tag)


def test_best_is_replaced_only_by_a_better_evaluation(tmp_path):
    nan = float("nan")
    assert maybe_save_best(tmp_path, _Saver("a"), None, {"success_rate": nan, "mean_return": 10.0, "num_timesteps": 1})
    assert not maybe_save_best(tmp_path, _Saver("b"), None, {"success_rate": nan, "mean_return": 9.0})
    assert not maybe_save_best(tmp_path, _Saver("b"), None, {"success_rate": nan, "mean_return": 10.0})
    assert (tmp_path / "best" / "model.zip").read_text() == "a"
    assert maybe_save_best(tmp_path, _Saver("c"), None, {"success_rate": nan, "mean_return": 11.0})
    assert (tmp_path / "best" / "model.zip").read_text() == "c"
    assert json.loads((tmp_path / "best" / "best.json").read_text())["mean_return"] == 11.0
    # success rate ranks before return when the env reports it
    d = tmp_path / "s"
    d.mkdir()
    maybe_save_best(d, _Saver("x"), None, {"success_rate": 0.5, "mean_return": 100.0})
    assert maybe_save_best(d, _Saver("y"), None, {"success_rate": 0.6, "mean_return": -5.0})
    assert not maybe_save_best(d, _Saver("z"), None, {"success_rate": 0.6, "mean_return": -6.0})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best", "s"]


def test_save_best_needs_periodic_evaluation():
    with pytest.raises(ConfigError, match=r"eval\.save_best: needs periodic evaluation"):
        parse_run_config(_data(eval={"freq": 0, "save_best": True}))
    with pytest.raises(ConfigError, match=r"eval\.save_best: expected true or false"):
        parse_run_config(_data(eval={"freq": 64, "save_best": "yes"}))


def test_init_from_is_validated_at_load(tmp_path, trained):
    with pytest.raises(ConfigError, match=r"run\.yaml: init_from: .*nowhere.*no trained policy"):
        parse_run_config(_data(init_from=str(tmp_path / "nowhere")), file=str(tmp_path / "run.yaml"))
    with pytest.raises(ConfigError, match=r"init_from: supported for ppo and epopt_ppo"):
        parse_run_config(_data(init_from=str(trained), algo="sac", hyperparameters={}))
    # relative paths are relative to the run config file; run.yaml keeps the resolved path
    cfg = parse_run_config(_data(init_from="run/best"), file=str(trained.parent / "cfg.yaml"))
    assert cfg.init_from == str((trained / "best").resolve())
    assert parse_run_config(cfg.to_dict()).init_from == cfg.init_from


def test_init_from_copies_weights_and_normalisation(tmp_path, trained):
    import torch
    from stable_baselines3 import PPO

    cfg = parse_run_config(_data(init_from=str(trained / "best"), total_timesteps=64, seed=3,
                                 hyperparameters={"n_steps": 64, "batch_size": 32, "n_epochs": 1,
                                                  "learning_rate": 0.0}))
    out = tmp_path / "warm"
    logs: list[str] = []
    train(cfg, out, progress_bar=False, log=logs.append)
    assert any("initialised the policy from" in m for m in logs)
    src = PPO.load(str(trained / "best" / "model.zip"))
    dst = PPO.load(str(out / "model.zip"))
    # learning rate 0: the run's policy is the warm-start policy, not a fresh random one
    for (name, a), b in zip(src.policy.state_dict().items(), dst.policy.state_dict().values()):
        assert torch.equal(a, b), name
    with open(trained / "best" / "vecnormalize.pkl", "rb") as fh:
        vs = pickle.load(fh)
    with open(out / "vecnormalize.pkl", "rb") as fh:
        vd = pickle.load(fh)
    # the statistics continued from the source's (64 steps + the reset observation), not from zero
    assert vs.obs_rms.count > 64 and vd.obs_rms.count == pytest.approx(vs.obs_rms.count + 65)
    fresh = tmp_path / "fresh"
    train(parse_run_config(_data(total_timesteps=64, seed=3, hyperparameters={
        "n_steps": 64, "batch_size": 32, "n_epochs": 1, "learning_rate": 0.0})), fresh, progress_bar=False, log=_quiet)
    other = PPO.load(str(fresh / "model.zip"))
    assert not all(torch.equal(a, b) for a, b in zip(src.policy.state_dict().values(),
                                                     other.policy.state_dict().values()))
    assert np.isfinite(json.loads((out / "report.json").read_text())["final_eval"]["mean_return"])


def test_incompatible_init_from_is_a_checkpoint_error(tmp_path, trained):
    arch = parse_run_config(_data(init_from=str(trained), net_arch=[8, 8]))
    with pytest.raises(CheckpointError, match=r"init_from .*model\.zip: policy does not fit"):
        train(arch, tmp_path / "a", progress_bar=False, log=_quiet)
    nonorm = parse_run_config(_data(init_from=str(trained), normalize=False))
    with pytest.raises(CheckpointError, match=r"init_from .*trained with observation normalisation"):
        train(nonorm, tmp_path / "b", progress_bar=False, log=_quiet)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.zip").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match=r"init_from .*bad.*cannot read an SB3 model"):
        train(parse_run_config(_data(init_from=str(bad))), tmp_path / "c", progress_bar=False, log=_quiet)


def test_epopt_cvar_run_starts_from_a_ppo_policy(tmp_path, trained):
    """The paper's ε = 1 phase done as a separate (PPO) run, the CVaR phase warm-started from it."""
    from stable_baselines3 import PPO

    prof = {"params": {"link_mass": {"targets": "all", "distribution": "uniform", "low": 0.5, "high": 2.0}}}
    cfg = parse_run_config(_data(algo="epopt_ppo", profile=prof, init_from=str(trained / "best"),
                                 hyperparameters={"batch_size": 20, "n_epochs": 1, "learning_rate": 0.0},
                                 epopt={"epsilon": 0.5, "n_models": 4, "skip_iters": 0}, total_timesteps=80,
                                 eval={"freq": 0, "episodes": 1}, checkpoint={"freq": 0}))
    out = tmp_path / "cvar"
    res = train(cfg, out, progress_bar=False, log=_quiet)
    assert res.num_timesteps == 80  # one CVaR iteration: 4 models x 20 steps
    src = PPO.load(str(trained / "best" / "model.zip")).policy.state_dict()
    dst = PPO.load(str(out / "model.zip")).policy.state_dict()
    assert all(np.array_equal(src[k].numpy(), dst[k].numpy()) for k in src)
