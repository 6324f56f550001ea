"""UP-OSI: μ wrapper shapes/normalisation, OSI regression beating the mean, TorchScript export."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from sim2real.errors import EnvError
from sim2real.sysid.osi import (OSIConfig, OSIData, UPOSIPolicy, collect, export_up_osi, fit_osi, online_error,
                                osi_error)
from sim2real.sysid.upenv import make_up_env
from sysid_fixtures import one_thread, plain_up_run  # noqa: F401 (one_thread: a fixture)

PROFILE = {"params": {
    "link_mass": {"distribution": "uniform", "low": 0.5, "high": 2.0, "shared": True},
    "motor_strength": {"distribution": "uniform", "low": 0.02, "high": 0.3, "shared": True},
    "observation_noise": {"distribution": "constant", "value": 0.001},
}}


def test_up_env_appends_normalised_mu() -> None:
    env = make_up_env("sim2real/KukaReach-v0", profile=PROFILE, max_episode_steps=5)
    comps = env.get_wrapper_attr("components")
    assert [(c[0], c[1]) for c in comps] == [("link_mass", "lbr_iiwa_link_1"), ("motor_strength", "lbr_iiwa_joint_1")]
    assert comps[0][2] == pytest.approx(0.5 * 4.0) and comps[0][3] == pytest.approx(2.0 * 4.0)
    obs, info = env.reset(seed=3)
    assert obs.shape == env.observation_space.shape == (20 + 7 + 2,)
    scale = info["randomization"]["link_mass"]["lbr_iiwa_link_1"] / 4.0
    assert obs[-2] == pytest.approx(2 * (scale - 0.5) / 1.5 - 1, abs=1e-5)
    assert np.all(obs[20:27] == 0)  # previous action after reset
    a = env.action_space.sample()
    obs2, *_ = env.step(a)
    np.testing.assert_allclose(obs2[20:27], np.clip(a, -1, 1), atol=1e-6)
    np.testing.assert_allclose(obs2[-2:], obs[-2:])  # μ is per episode
    layout = env.get_wrapper_attr("observation_layout")()
    assert layout[-2:] == [("previous_action", 7), ("dynamics_params", 2)]
    env.get_wrapper_attr("set_estimate")(np.array([0.25, -0.5]))
    obs3, *_ = env.step(a)
    np.testing.assert_allclose(obs3[-2:], [0.25, -0.5])
    env.close()
    with pytest.raises(EnvError, match="randomizes no supported dynamics parameter"):
        make_up_env("sim2real/KukaReach-v0", profile="nominal")
    registered = gym.make("sim2real.sysid.upenv:sim2real/KukaReachUP-v0", profile=PROFILE)
    assert registered.observation_space.shape == (29,)
    registered.close()


def test_osi_regression_beats_mean(tmp_path: Path, one_thread) -> None:
    # with weak motors the arm's response to random actions reveals mass and motor strength
    env = make_up_env("sim2real/KukaReach-v0", profile=PROFILE, max_episode_steps=12)
    train, _ = collect(env, None, 80, history=4, seed=0)
    test, _ = collect(env, None, 20, history=4, seed=1000)
    assert train.X.shape[1] == 4 * 27 and train.Y.shape[1] == 2
    net = fit_osi(train, hidden=(32,), epochs=30, seed=0)
    err = osi_error(net, test)
    baseline = float(np.mean((test.Y - train.Y.mean(0)) ** 2))
    assert err["mse"] < 0.8 * baseline
    # OSI in the loop: the policy sees μ̂ from the first step on (padded history), never the true μ;
    # the recorded target stays the true μ
    seen = []
    data, stats = collect(env, lambda o: (seen.append(o[-2:].copy()), np.zeros(7))[1], 1, history=4, osi=net, seed=5)
    assert len(seen) == 12 and not np.allclose(seen[0], data.Y[0])
    obs0, _ = env.reset(seed=5)
    with torch.no_grad():
        first = net(torch.as_tensor(np.tile(obs0[:27], 4)[None]))[0].numpy()
    np.testing.assert_allclose(seen[0], first, atol=1e-5)
    assert set(stats[0]) == {"return", "success", "reached"}
    # windows are recorded from step 1 on (padded); osi_error(min_step) keeps the full ones
    assert list(data.step) == list(range(1, 13))
    np.testing.assert_allclose(data.X[0, :27 * 3], np.tile(obs0[:27], 3), atol=1e-6)
    assert osi_error(net, test, min_step=12)["mse"] >= 0 and len(err["rmse_per_dim"]) == 2
    late = osi_error(net, test, min_step=13)  # no window that long: no number, and says so
    assert late["samples"] == 0 and np.isnan(late["mse"]) and np.isnan(late["mae"]) and len(late["rmse_per_dim"]) == 2
    assert err["samples"] == len(test) == 20 * 12
    # online error: held-out episodes with the net's own μ̂ in the loop, full windows (step >= H)
    on = online_error(env, lambda o: np.zeros(7), net, 2, seed=1000)
    again, _ = collect(env, lambda o: np.zeros(7), 2, history=4, osi=net, seed=1000)
    assert on["mse"] == pytest.approx(osi_error(net, again, min_step=4)["mse"]) and on["success"] in (0.0, 0.5, 1.0)
    assert on["samples"] == 2 * (12 - 4 + 1)
    never = online_error(env, lambda o: np.zeros(7), net, 2, seed=1000, min_step=13)  # no episode lasts 13 steps
    assert never["samples"] == 0 and np.isnan(never["mse"]) and never["success"] == on["success"]
    # random_mu: π sees one uniform μ per episode, unrelated to the (recorded) true μ
    seen.clear()
    data, _ = collect(env, lambda o: (seen.append(o[-2:].copy()), np.zeros(7))[1], 2, history=4, random_mu=True, seed=7)
    assert len(seen) == 24 and np.allclose(seen[0], seen[11]) and not np.allclose(seen[0], seen[12])
    assert not np.allclose(seen[0], data.Y[0]) and np.allclose(data.Y[0], data.Y[11])
    # export: one TorchScript module over the stacked history
    policy = torch.nn.Sequential(torch.nn.Linear(27 + 2, 7), torch.nn.Tanh())
    paths = export_up_osi(net, policy, 4, 27, {"format": "sim2real-policy/1",
                                                "observation": {"size": 108, "history": 4}}, tmp_path / "up.pt")
    loaded = torch.jit.load(str(paths["policy"]))
    x = torch.as_tensor(test.X[:4])
    expected = UPOSIPolicy(net, policy, 4, 27)(x)
    torch.testing.assert_close(loaded(x), expected)
    assert torch.jit.load(str(paths["osi"]))(x).shape == (4, 2)
    env.close()


def test_osi_config_errors(tmp_path: Path) -> None:
    from sim2real.errors import ConfigError

    f = tmp_path / "osi.yaml"
    f.write_text("universal_policy: runs/up\nhistroy: 4\n")
    with pytest.raises(ConfigError, match="osi.yaml: histroy: unknown key"):
        OSIConfig.load(f)
    f.write_text("history: 4\n")
    with pytest.raises(ConfigError, match="universal_policy: missing required key"):
        OSIConfig.load(f)
    for bad in ("history: 0", "history: true", "epochs: 2.5"):
        f.write_text(f"universal_policy: runs/up\n{bad}\n")
        with pytest.raises(ConfigError, match=f"{bad.split(':')[0]}: expected an integer >= 1"):
            OSIConfig.load(f)
    f.write_text("universal_policy:\n")
    with pytest.raises(ConfigError, match="universal_policy: missing required key"):
        OSIConfig.load(f)
    f.write_text("method: rma\nuniversal_policy: runs/up\n")
    with pytest.raises(ConfigError, match="method: expected up_osi here"):
        OSIConfig.load(f)
    # the run directory and a profile file next to the config resolve against the config's folder
    (tmp_path / "prof.yaml").write_text("params: {}\n")
    f.write_text("universal_policy: runs/up\nprofile: prof.yaml\nhistory: 5\n")
    cfg = OSIConfig.load(f)
    assert cfg.universal_policy == str(tmp_path / "runs" / "up") and cfg.profile == str(tmp_path / "prof.yaml")
    assert (cfg.history, cfg.iterations, cfg.out) == (5, 3, "runs/osi")
    assert len(OSIData.concat([OSIData(np.zeros((2, 3)), np.zeros((2, 1)), np.array([0, 1]))] * 2).episode) == 4


def test_shorter_history_is_the_tail_of_a_longer_one() -> None:
    """`OSIData.last(h)` of H=5 windows equals collecting with H=h (same seeds, random actions)."""
    env = make_up_env("sim2real/KukaReach-v0", profile=PROFILE, max_episode_steps=7)
    long, _ = collect(env, None, 2, history=5, seed=3)
    short, _ = collect(env, None, 2, history=2, seed=3)
    tail = long.last(2)
    assert tail.window == 2 and tail.X.shape == short.X.shape == (14, 2 * 27)
    np.testing.assert_allclose(tail.X, short.X)
    np.testing.assert_allclose(tail.Y, short.Y)
    both = OSIData.concat([long, long])
    assert both.window == 5 and list(both.episode[-7:]) == [3] * 7 and list(both.step[:7]) == list(range(1, 8))
    assert len(long.select(long.steps() >= 5)) == 6
    with pytest.raises(ValueError, match="history 6 not in"):
        long.last(6)
    env.close()


def test_osi_cli_tiny(tmp_path: Path, one_thread, capsys) -> None:
    """`sim2real osi CONFIG` end to end around a (untrained, tiny) universal policy run directory."""
    import yaml

    from sim2real.cli.main import main

    plain_up_run(tmp_path / "up_run", PROFILE)
    cfg = tmp_path / "osi.yaml"
    cfg.write_text(yaml.safe_dump({
        "universal_policy": "up_run", "env": "sim2real/KukaReach-v0", "profile": PROFILE,
        "env_kwargs": {"max_episode_steps": 6}, "history": 3, "iterations": 2, "episodes": 3,
        "eval_episodes": 2, "epochs": 2, "hidden": [16], "seed": 0, "out": str(tmp_path / "unused")}))
    out = tmp_path / "osi_out"
    assert main(["osi", str(cfg), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out.split()
    assert str(out / "up_osi.pt") in printed
    report = __import__("json").loads((out / "osi.json").read_text())
    assert [r["iteration"] for r in report["iterations"]] == [0, 1]
    assert report["iterations"][1]["samples"] > report["iterations"][0]["samples"]
    side = yaml.safe_load((out / "up_osi.yaml").read_text())
    assert side["observation"]["history"] == 3 and side["observation"]["size"] == 27  # one frame; input 3 x 27
    assert side["osi"]["mu"] == ["link_mass.lbr_iiwa_link_1", "motor_strength.lbr_iiwa_joint_1"]
    module = torch.jit.load(str(out / "up_osi.pt"))
    assert module(torch.zeros(2, 81)).shape == (2, 7)
    assert not (tmp_path / "unused").exists()
    assert [r["eval_full_windows"] for r in report["iterations"]] == [2 * 4] * 2  # windows of >= 3 steps, 2 x 6 steps
    # every held-out episode shorter than H (6 steps < 8): the run finishes, its error is no number
    cfg.write_text(yaml.safe_dump({**yaml.safe_load(cfg.read_text()), "history": 8, "iterations": 1}))
    assert main(["osi", str(cfg), "--out", str(tmp_path / "short"), "--quiet"]) == 0
    row = __import__("json").loads((tmp_path / "short" / "osi.json").read_text())["iterations"][0]
    assert row["eval_full_windows"] == 0 and np.isnan(row["eval_mse"]) and np.all(np.isnan(row["eval_rmse_per_dim"]))
    assert row["samples"] == 3 * 6 and np.isfinite(row["mean_baseline_mse"])
    assert torch.jit.load(str(tmp_path / "short" / "up_osi.pt"))(torch.zeros(1, 8 * 27)).shape == (1, 7)
    capsys.readouterr()
    # a bad config is one error line, exit 2
    cfg.write_text("universal_policy: up_run\nhistory: -1\n")
    assert main(["osi", str(cfg)]) == 2
    assert "history: expected an integer >= 1" in capsys.readouterr().err
