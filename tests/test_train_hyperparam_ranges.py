"""Run-config hyperparameters outside what stable-baselines3 means by them are refused at load:
one ConfigError naming the key, and ``sim2real train`` writes nothing (no run.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sim2real.cli.main import main
from sim2real.errors import ConfigError
from sim2real.train.config import parse_run_config

ENV = {"id": "sim2real/KukaReach-v0"}

BAD = [
    ("ppo", {"gamma": 0.0}, "gamma"), ("ppo", {"gamma": 1.01}, "gamma"), ("sac", {"gamma": -0.5}, "gamma"),
    ("ppo", {"gae_lambda": -0.01}, "gae_lambda"), ("ppo", {"gae_lambda": 1.5}, "gae_lambda"),
    ("ppo", {"learning_rate": -1e-4}, "learning_rate"), ("sac", {"learning_rate": -3e-4}, "learning_rate"),
    ("ppo", {"learning_rate": "lin_0"}, "learning_rate"),
    ("ppo", {"learning_rate": ".nan"}, "learning_rate"),
    ("ppo", {"batch_size": 0}, "batch_size"), ("ppo", {"batch_size": 1}, "batch_size"),
    ("ppo", {"n_steps": 8, "batch_size": 64}, "batch_size"), ("sac", {"batch_size": 0}, "batch_size"),
    ("ppo", {"n_steps": 0}, "n_steps"), ("ppo", {"n_epochs": 0}, "n_epochs"),
    ("ppo", {"clip_range": 0.0}, "clip_range"), ("ppo", {"clip_range": "lin_0"}, "clip_range"),
    ("ppo", {"ent_coef": -0.01}, "ent_coef"), ("sac", {"ent_coef": "auto_0"}, "ent_coef"),
    ("ppo", {"vf_coef": -1.0}, "vf_coef"), ("ppo", {"max_grad_norm": 0.0}, "max_grad_norm"),
    ("sac", {"buffer_size": 0}, "buffer_size"), ("sac", {"tau": 0.0}, "tau"), ("sac", {"tau": 1.5}, "tau"),
    ("sac", {"train_freq": 0}, "train_freq"), ("sac", {"train_freq": [0, "episode"]}, "train_freq"),
    ("sac", {"gradient_steps": 0}, "gradient_steps"), ("sac", {"gradient_steps": -2}, "gradient_steps"),
    ("sac", {"learning_starts": -1}, "learning_starts"),
]


def _cfg(algo: str, hp: dict, **top) -> dict:
    hp = {k: float("nan") if v == ".nan" else v for k, v in hp.items()}
    return {"env": ENV, "algo": algo, "hyperparameters": hp, "n_envs": 2, **top}


@pytest.mark.parametrize("algo,hp,key", BAD, ids=[f"{a}-{'-'.join(f'{k}={v}' for k, v in h.items())}" for a, h, _ in BAD])
def test_out_of_range_hyperparameter_is_refused(algo: str, hp: dict, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_run_config(_cfg(algo, hp), file="run.yaml")
    assert err.value.key_path[:2] == ("hyperparameters", key), str(err.value)
    assert len(str(err.value).splitlines()) == 1


GOOD = [("ppo", {"learning_rate": 0.0, "gamma": 1.0, "gae_lambda": 0.0, "ent_coef": 0.0, "vf_coef": 0.0, "n_steps": 16, "batch_size": 32}),
        ("ppo", {"learning_rate": "lin_3e-4", "clip_range": "lin_0.2", "normalize_advantage": False, "batch_size": 1}),
        ("sac", {"tau": 1.0, "gradient_steps": -1, "learning_starts": 0, "buffer_size": 1, "train_freq": [1, "episode"],
                 "ent_coef": "auto_0.1"})]


@pytest.mark.parametrize("algo,hp", GOOD)
def test_boundary_values_sb3_accepts_pass(algo: str, hp: dict) -> None:
    parse_run_config(_cfg(algo, hp), file="run.yaml")


@pytest.mark.parametrize("value,ok", [(1, True), (10**12, True), (1e12, True), (10**12 + 1, False), (0, False),
                                      (2.5, False), (float("inf"), False)])
def test_total_timesteps_is_a_positive_integer_up_to_1e12(value, ok: bool) -> None:
    if ok:
        assert parse_run_config(_cfg("ppo", {}, total_timesteps=value)).total_timesteps == int(value)
    else:
        with pytest.raises(ConfigError, match="total_timesteps"):
            parse_run_config(_cfg("ppo", {}, total_timesteps=value))


@pytest.mark.parametrize("extra,flag", [({"hyperparameters": {"gamma": 0.0}}, []), ({"n_envs": 0}, []),
                                        ({}, ["--total-timesteps", "1000000000001"])])
def test_train_cli_refuses_before_writing_run_yaml(tmp_path: Path, capsys, extra: dict, flag: list) -> None:
    cfg = dict(_cfg("ppo", {}), **extra)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert main(["train", str(tmp_path / "c.yaml"), "--out", str(out), *flag]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sim2real train: error: "), err
    assert not out.exists()
