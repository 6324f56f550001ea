"""Run-config validation: clear ConfigError naming file and key path, nothing started."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sim2real._io import data_dir
from sim2real.errors import ConfigError
from sim2real.train.config import load_run_config, parse_run_config

BASE = {"env": {"id": "sim2real/KukaReach-v0"}, "algo": "ppo", "total_timesteps": 1000}


def _err(data, tmp_path: Path) -> ConfigError:
    f = tmp_path / "run.yaml"
    f.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as ei:
        load_run_config(f)
    assert str(f) in str(ei.value)
    return ei.value


@pytest.mark.parametrize("patch, path, words", [
    ({"envv": 1}, "envv", "unknown key"),
    ({"env": {"kwargs": {}}}, "env.id", "missing"),
    ({"algo": "dqn"}, "algo", "expected one of ppo, sac, epopt_ppo"),
    ({"n_envs": 0}, "n_envs", ">= 1"),
    ({"total_timesteps": "many"}, "total_timesteps", "integer"),
    ({"hyperparameters": {"n_stepz": 5}}, "hyperparameters.n_stepz", "unknown hyperparameter of PPO"),
    ({"hyperparameters": {"learning_rate": "fast"}}, "hyperparameters.learning_rate", "number"),
    ({"hyperparameters": {"n_steps": 12.5}}, "hyperparameters.n_steps", "integer"),
    ({"hyperparameters": {"seed": 3}}, "hyperparameters.seed", "set by the trainer"),
    ({"algo": "sac", "hyperparameters": {"n_epochs": 5}}, "hyperparameters.n_epochs", "unknown hyperparameter of SAC"),
    ({"net_arch": [64, "big"]}, "net_arch[1]", "integer"),
    ({"hyperparameters": {"policy_kwargs": {"log_std": 1}}}, "hyperparameters.policy_kwargs.log_std",
     "unknown keyword of ActorCriticPolicy"),
    ({"eval": {"freq": -1}}, "eval.freq", ">= 0"),
    ({"eval": {"episodes": 5, "every": 3}}, "eval.every", "unknown key"),
    ({"normalize": {"obs": "yes"}}, "normalize.obs", "true or false"),
    ({"algo": "epopt_ppo", "profile": "epopt_hopper", "epopt": {"epsilon": 1.5}}, "epopt.epsilon", "[0.0, 1.0]"),
    ({"algo": "epopt_ppo"}, "profile", "samples models from a profile"),
    ({"epopt": {"epsilon": 0.1}}, "epopt", "only used with algo: epopt_ppo"),
    ({"profile": "nominal", "adr": {"t_low": 0.9, "t_high": 0.5}}, "adr.t_low", "t_low <= t_high"),
    ({"adr": {"p_b": 0.5}}, "adr", "needs a 'profile'"),
    ({"env": {"id": "x", "kwargs": {"profile": "a"}}}, "env.kwargs.profile", "top-level"),
])
def test_errors_name_file_and_key(tmp_path, patch, path, words):
    err = _err({**BASE, **patch}, tmp_path)
    assert f": {path}: " in str(err)
    assert words in str(err)


def test_defaults_and_roundtrip():
    cfg = parse_run_config({**BASE, "hyperparameters": {"n_steps": 64.0, "gamma": 0.9}, "normalize": True})
    assert cfg.hyperparameters == {"n_steps": 64, "gamma": 0.9}
    assert cfg.normalize.obs and cfg.normalize.reward and cfg.n_envs == 1
    again = parse_run_config(cfg.to_dict())
    assert again.to_dict() == cfg.to_dict()


def test_sac_train_freq_tuple():
    cfg = parse_run_config({**BASE, "algo": "sac", "hyperparameters": {"train_freq": [2, "episode"]}})
    assert cfg.hyperparameters["train_freq"] == (2, "episode")


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_run_config(tmp_path / "nope.yaml")
    f = tmp_path / "bad.yaml"
    f.write_text("env: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_run_config(f)


def test_shipped_configs_are_valid():
    files = sorted((data_dir("configs") / "train").glob("*.yaml"))
    assert any(f.stem == "quickstart" for f in files)
    from sim2real.profiles import load_profile

    for f in files:
        cfg = load_run_config(f)
        for prof in (cfg.profile, cfg.eval.profile):
            if prof is not None:
                load_profile(prof, robot=cfg.robot)


def test_cli_reports_one_line(tmp_path, capsys):
    from sim2real.cli.main import main

    f = tmp_path / "run.yaml"
    f.write_text(yaml.safe_dump({**BASE, "n_envs": "two"}))
    assert main(["train", str(f), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sim2real train: error: ") and "n_envs" in err and "\n" not in err
    assert not (tmp_path / "out").exists()  # nothing started
