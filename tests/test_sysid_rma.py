"""RMA: the privileged encoder extractor, the adaptation module's regression, the exported module
against the Python path, the node running the export, config errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from sim2real.errors import ConfigError
from sim2real.sysid.rma import (AdaptationModule, PrivilegedEncoder, RMAConfig, RMAPolicy, collect_rma,
                                fit_adaptation, load_rma, true_z, z_error)
from sim2real.sysid.upenv import make_up_env
from sim2real.sysid.windows import OSIData
from sysid_fixtures import one_thread, plain_up_run  # noqa: F401 (one_thread: a fixture)

# weak motors: the arm's response to the policy's actions shows mass and motor strength
PROFILE = {"params": {
    "link_mass": {"distribution": "uniform", "low": 0.5, "high": 2.0, "shared": True},
    "motor_strength": {"distribution": "uniform", "low": 0.02, "high": 0.3, "shared": True},
    "observation_noise": {"distribution": "constant", "value": 0.001},
}}
D = 27  # KUKA reach observation (20) + previous action (7)
STEPS = 12


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A phase-1 run directory from `sim2real train` (a few PPO updates, observation normalisation)."""
    from sim2real.cli.main import main

    tmp = tmp_path_factory.mktemp("rma_base")
    (tmp / "profile.yaml").write_text(yaml.safe_dump(PROFILE))
    cfg = {"env": {"id": "sim2real.sysid.upenv:sim2real/KukaReachUP-v0", "kwargs": {"max_episode_steps": STEPS}},
           "robot": "kuka_iiwa", "profile": "profile.yaml", "algo": "ppo", "net_arch": {"pi": [32], "vf": [32]},
           "hyperparameters": {"n_steps": 64, "batch_size": 32, "n_epochs": 2, "policy_kwargs": {
               "ortho_init": False,  # SB3's 0.01 gain would keep the actions, and so what they show, near zero
               "features_extractor_class": "sim2real.sysid.rma:PrivilegedEncoder",
               "features_extractor_kwargs": {"mu_dim": 2, "z_dim": 8, "hidden": [16]}}},
           "n_envs": 1, "vec_env": "dummy", "total_timesteps": 128, "seed": 0,
           "normalize": {"obs": True, "reward": True},
           "eval": {"freq": 0, "episodes": 1, "profile": str(tmp / "profile.yaml")}, "checkpoint": {"freq": 0}}
    (tmp / "base.yaml").write_text(yaml.safe_dump(cfg))
    torch_threads = torch.get_num_threads()
    assert main(["train", str(tmp / "base.yaml"), "--out", str(tmp / "run"), "--no-progress"]) == 0
    torch.set_num_threads(torch_threads)
    return tmp / "run"


def _pi(run: Path) -> tuple[torch.nn.Module, object]:
    from sim2real.train.export import build_module
    from sim2real.train.policy import load_policy

    loaded = load_policy(run)
    return build_module(loaded), loaded


def test_privileged_encoder_outputs_o_and_e_mu() -> None:
    import gymnasium as gym

    space = gym.spaces.Box(-1, 1, (10,))
    enc = PrivilegedEncoder(space, mu_dim=3, z_dim=5, hidden=(8, 8))
    assert enc.features_dim == 7 + 5
    x = torch.randn(4, 10)
    out = enc(x)
    assert out.shape == (4, 12)
    torch.testing.assert_close(out[:, :7], x[:, :7])
    torch.testing.assert_close(out[:, 7:], enc.encoder(x[:, 7:]))
    # z depends on μ only: changing o leaves it, changing μ moves it
    y = x.clone()
    y[:, :7] += 1.0
    torch.testing.assert_close(enc(y)[:, 7:], out[:, 7:])
    y[:, 7:] += 1.0
    assert not torch.allclose(enc(y)[:, 7:], out[:, 7:])
    torch.testing.assert_close(torch.jit.script(enc)(x), out)  # exportable
    with pytest.raises(ConfigError, match="mu_dim 10 must be in 1..9"):
        PrivilegedEncoder(space, mu_dim=10)
    with pytest.raises(ConfigError, match="too short for the conv layers"):
        AdaptationModule(4, 6, 8)  # the paper's convolutions need H >= 16


def test_run_config_names_the_extractor(base_run: Path, tmp_path: Path, one_thread) -> None:
    """The trained run uses the extractor; resume and export keep it; a bad import path is one ConfigError."""
    import shutil

    from sim2real.cli.main import main
    from sim2real.train.config import parse_run_config

    pi, loaded = _pi(base_run)
    assert isinstance(loaded.model.policy.features_extractor, PrivilegedEncoder)
    assert isinstance(pi.features, PrivilegedEncoder) and pi.features.z_dim == 8
    run = tmp_path / "run"
    shutil.copytree(base_run, run)
    assert main(["train", str(base_run.parent / "base.yaml"), "--out", str(run), "--resume", "--total-timesteps", "192",
                 "--no-progress"]) == 0
    resumed, _ = _pi(run)
    assert isinstance(resumed.features, PrivilegedEncoder)
    assert not torch.allclose(resumed.features.encoder[0].weight, pi.features.encoder[0].weight)  # e trained on
    assert main(["evaluate", "--policy", str(run), "--profile", str(base_run.parent / "profile.yaml"), "--no-nominal",
                 "--episodes", "2", "--out", str(tmp_path / "eval")]) == 0
    (row,) = json.loads((tmp_path / "eval" / "results.json").read_text())["results"]
    assert row["condition"] == "profile:profile" and row["episodes"] == 2 and row["mean_length"] == STEPS
    assert main(["export", "--policy", str(run), "--out", str(tmp_path / "exp" / "policy.pt")]) == 0
    side = yaml.safe_load((tmp_path / "exp" / "policy.yaml").read_text())
    assert side["observation"]["layout"][-1] == ["dynamics_params", 2] and side["observation"]["size"] == D + 2
    x = torch.randn(3, D + 2)
    torch.testing.assert_close(torch.jit.load(str(tmp_path / "exp" / "policy.pt"))(x), resumed(x))
    raw = yaml.safe_load((base_run / "run.yaml").read_text())
    kw = raw["hyperparameters"]["policy_kwargs"]
    for bad, msg in (("sim2real.sysid.rma:NoSuchEncoder", "has no 'NoSuchEncoder'"),
                     ("sim2real.no_such_module:X", "cannot import module 'sim2real.no_such_module'"),
                     ("PrivilegedEncoder", "expected 'module:Name'"),
                     ("sim2real.sysid.rma:RMAPolicy", "is not a stable_baselines3 BaseFeaturesExtractor")):
        with pytest.raises(ConfigError, match=f"policy_kwargs.features_extractor_class: .*{msg}"):
            parse_run_config({**raw, "hyperparameters": {"policy_kwargs": {**kw, "features_extractor_class": bad}}},
                             "run.yaml")
    with pytest.raises(ConfigError, match="features_extractor_kwargs.zdim: unknown keyword of PrivilegedEncoder"):
        parse_run_config({**raw, "hyperparameters": {"policy_kwargs": {**kw, "features_extractor_kwargs": {"zdim": 3}}}},
                         "run.yaml")


def test_adaptation_beats_the_mean_guess(base_run: Path, one_thread) -> None:
    """φ trained on the base policy's rollouts (true z, then ẑ in the loop) predicts z = e(μ) of
    held-out episodes, run with its own ẑ, better than the mean z; the same φ blind to its input does not."""
    pi, _ = _pi(base_run)
    env = make_up_env("sim2real/KukaReach-v0", profile=PROFILE, max_episode_steps=STEPS)
    conv = [[16, 2, 1], [16, 2, 1]]
    first, _ = collect_rma(env, pi, 100, 4, seed=0)
    phi = fit_adaptation(first, pi, embed=16, conv=conv, epochs=40, batch_size=64, seed=0)
    second, _ = collect_rma(env, pi, 50, 4, adaptation=phi, seed=100)
    phi = fit_adaptation(OSIData.concat([first, second]), pi, embed=16, conv=conv, epochs=40, batch_size=64, seed=0)
    held, _ = collect_rma(env, pi, 20, 4, adaptation=phi, seed=5000)
    ref = true_z(pi, first.Y).mean(0)
    err = z_error(phi, pi, held, min_step=4, reference=ref)
    assert err["rmse"] < 0.7 * err["mean_guess_rmse"], err

    class Blind(torch.nn.Module):  # the fitted φ, shown a constant history
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return phi(torch.zeros_like(x) + phi.mean)

    blind = z_error(Blind(), pi, held, min_step=4, reference=ref)
    assert blind["rmse"] >= 0.7 * blind["mean_guess_rmse"], blind
    # error vs time since reset: bins cover every window, counts add up
    assert sum(b["n"] for b in err["by_step"]) == len(held) and err["by_step"][0]["from"] == 1
    full = [b for b in err["by_step"] if b["from"] >= 4]
    assert full and all(b["rmse"] < b["mean_guess_rmse"] for b in full)
    late = z_error(phi, pi, held, min_step=STEPS + 1, reference=ref)  # no window that long: no number
    assert late["samples"] == 0 and np.isnan(late["rmse"]) and late["by_step"] == err["by_step"]
    env.close()


@pytest.fixture(scope="module")
def rma_export(base_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """An RMA export (H = 5, φ briefly fitted) of the phase-1 run, with the histories it was fitted on."""
    from sim2real.sysid.osi import history_sidecar
    from sim2real.sysid.rma import export_rma

    torch.set_num_threads(1)
    pi, loaded = _pi(base_run)
    env = make_up_env("sim2real/KukaReach-v0", profile=PROFILE, max_episode_steps=STEPS)
    data, _ = collect_rma(env, pi, 4, 5, seed=7)
    phi = fit_adaptation(data, pi, embed=8, conv=[[8, 2, 1]], epochs=2, seed=0)
    side = history_sidecar(env, "sim2real/KukaReach-v0", 5, loaded, "rma", {"history": 5, "z_dim": 8})
    paths = export_rma(phi, pi, 5, D, side, tmp_path_factory.mktemp("rma_export") / "rma.pt")
    env.close()
    return {"paths": paths, "data": data, "phi": phi, "pi": pi, "loaded": loaded}


def test_export_matches_python_path_and_runs_in_the_node_loader(rma_export: dict, one_thread) -> None:
    from sim2real.ros2.policy import load_policy as load_deployed

    data, phi, pi, loaded, paths = (rma_export[k] for k in ("data", "phi", "pi", "loaded", "paths"))
    # the split policy π(o, z) with the true z is SB3's own deterministic action on [o, μ]
    obs = np.concatenate([data.X[:, -D:], data.Y], axis=1)
    z = torch.as_tensor(true_z(pi, data.Y))

    class TrueZ(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return z

    split = RMAPolicy(TrueZ(), pi, 5, D)(torch.as_tensor(data.X)).detach().numpy()
    sb3 = np.stack([loaded.act(o) for o in obs])
    np.testing.assert_allclose(split, sb3, atol=1e-5)
    # the exported module through the node's policy loader == the Python path (φ then π) on the same history
    policy, spec = load_deployed(paths["policy"])
    assert spec.history == 5 and spec.input_size == 5 * D and spec.layout[-1] == ("previous_action", 7)
    with torch.no_grad():
        python = RMAPolicy(phi, pi, 5, D)(torch.as_tensor(data.X)).numpy()
    deployed = np.stack([policy(x) for x in data.X])
    np.testing.assert_allclose(deployed, python, atol=1e-5)
    assert not np.allclose(python, split)  # φ's ẑ, not the true z, drives the export
    adapt = torch.jit.load(str(paths["adaptation"]))
    torch.testing.assert_close(adapt(torch.as_tensor(data.X)), phi(torch.as_tensor(data.X)))


def test_node_runs_the_rma_export_against_the_mock_arm(rma_export: dict, tmp_path: Path) -> None:
    """The deployment node runs the export unchanged over DDS against the mock KUKA process."""
    pytest.importorskip("cyclonedds")
    from test_ros2_e2e import LOWER, UPPER, domain_id, run_with_robot, start_robot

    from sim2real.ros2.node import DeployNode
    from sim2real.ros2.policy import load_policy as load_deployed
    from sim2real.ros2.transport_dds import DdsTransport

    domain = domain_id()
    policy, spec = load_deployed(rma_export["paths"]["policy"])
    params = {"robot": "kuka_iiwa", "trigger": "state", "safety.soft_start_s": 0.2, "goal": [0.5, 0.0, 0.5],
              "safety.start_gate_tolerance": 0.05}
    node = DeployNode(params, transport=DdsTransport("sim2real_deploy", domain_id=domain), policy=policy, spec=spec)
    node.trace = []
    proc, out = start_robot(domain, tmp_path, duration=2.5)
    record = run_with_robot(node, proc, out)
    assert node.stats.inference.count > 10, "the exported RMA policy never ran"
    cmds = np.array([c for _, c in record["received"]], dtype=float)
    assert len(cmds) > 10 and np.all(np.isfinite(cmds)) and np.all(cmds >= LOWER) and np.all(cmds <= UPPER)
    assert node.safety.counts["nan_observation"] == node.safety.counts["nan_action"] == 0


def test_rma_cli_tiny_and_config_errors(base_run: Path, tmp_path: Path, one_thread, capsys) -> None:
    """`sim2real osi CONFIG` with method: rma end to end; bad configs exit 2 with one line."""
    from sim2real.cli.main import main

    (tmp_path / "profile.yaml").write_text(yaml.safe_dump(PROFILE))
    raw = {"method": "rma", "base_policy": str(base_run), "env": "sim2real/KukaReach-v0", "profile": "profile.yaml",
           "env_kwargs": {"max_episode_steps": 6}, "history": 3, "conv": [[8, 2, 1]], "embed": 8, "iterations": 2,
           "episodes": 3, "eval_episodes": 2, "epochs": 2, "seed": 0, "out": str(tmp_path / "unused")}
    cfg = tmp_path / "rma.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    out = tmp_path / "rma_out"
    assert main(["osi", str(cfg), "--out", str(out), "--quiet"]) == 0
    assert str(out / "rma.pt") in capsys.readouterr().out.split()
    report = json.loads((out / "osi.json").read_text())
    assert report["method"] == "rma" and report["z_dim"] == 8 and 0.0 <= report["eval_success_true_z"] <= 1.0
    rows = report["iterations"]
    assert [r["iteration"] for r in rows] == [0, 1] and rows[1]["samples"] == 2 * rows[0]["samples"] == 36
    assert all(r["eval_rmse_z"] > 0 and r["mean_guess_rmse_z"] > 0 and r["eval_rmse_z_by_step"] for r in rows)
    side = yaml.safe_load((out / "rma.yaml").read_text())
    assert side["observation"]["history"] == 3 and side["observation"]["size"] == D  # one frame; input 3 x D
    assert side["rma"]["mu"] == ["link_mass.lbr_iiwa_link_1", "motor_strength.lbr_iiwa_joint_1"]
    assert "kinematics" in side  # the node computes ee_position from it
    assert torch.jit.load(str(out / "rma.pt"))(torch.zeros(2, 3 * D)).shape == (2, 7)
    assert not (tmp_path / "unused").exists()
    phi, pi, history = load_rma(out)  # the pieces for scoring ẑ elsewhere (benchmarks)
    env = make_up_env("sim2real/KukaReach-v0", profile=PROFILE, max_episode_steps=6)
    data, _ = collect_rma(env, pi, 2, history, adaptation=phi, seed=10_000)
    env.close()
    again = z_error(phi, pi, data, min_step=3, reference=np.zeros(8))
    assert history == 3 and again["samples"] == 2 * 4  # windows of >= 3 steps in two 6-step episodes
    assert again["rmse"] == pytest.approx(rows[-1]["eval_rmse_z"], rel=1e-4)  # the report's held-out episodes
    for change, msg in (({"method": "rmaa"}, "method: expected one of up_osi, rma, got 'rmaa'"),
                        ({"history": 1}, "conv: history 1 is too short for these conv layers"),
                        ({"conv": [[8, 2]]}, "conv: expected a list of [channels, kernel, stride]"),
                        ({"hidden": [8]}, "hidden: unknown key"),
                        ({"lr": 0}, "lr: expected a number > 0"),
                        ({"base_policy": None}, "base_policy: missing required key")):
        cfg.write_text(yaml.safe_dump({**raw, **change}))
        assert main(["osi", str(cfg)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], err
    # a base policy without the privileged encoder
    plain = plain_up_run(tmp_path / "plain", PROFILE)
    cfg.write_text(yaml.safe_dump({**raw, "base_policy": str(plain)}))
    assert main(["osi", str(cfg)]) == 2
    assert "not PrivilegedEncoder" in capsys.readouterr().err
    assert isinstance(RMAConfig.load(Path(__file__).parents[1] / "configs/sysid/rma_quadrotor.yaml"), RMAConfig)


def test_train_refuses_an_unknown_extractor(tmp_path: Path, capsys) -> None:
    from sim2real.cli.main import main

    cfg = {"env": {"id": "sim2real/KukaReach-v0"}, "algo": "ppo", "total_timesteps": 64,
           "hyperparameters": {"policy_kwargs": {"features_extractor_class": "sim2real.sysid.rma:Nope"}}}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "features_extractor_class" in err[0] and "has no 'Nope'" in err[0]
    assert not (tmp_path / "run").exists()
