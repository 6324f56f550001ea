"""Export: TorchScript parity with SB3's deterministic predict, sidecar YAML, torch-only loading, ONNX."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from sim2real.train.config import parse_run_config
from sim2real.train.trainer import train

ENV = {"id": "sim2real/KukaReach-v0", "kwargs": {"max_episode_steps": 20}}


@pytest.fixture(scope="module", params=["ppo", "sac"])
def run_dir(request, tmp_path_factory):
    hp = ({"n_steps": 64, "batch_size": 32, "n_epochs": 1} if request.param == "ppo"
          else {"learning_starts": 16, "batch_size": 16, "buffer_size": 500})
    cfg = parse_run_config({"env": ENV, "robot": "kuka_iiwa", "algo": request.param, "net_arch": [32, 32],
                            "hyperparameters": hp, "total_timesteps": 64, "normalize": {"obs": True, "reward": True},
                            "eval": {"freq": 0, "episodes": 1}})
    out = tmp_path_factory.mktemp(request.param)
    train(cfg, out, progress_bar=False, log=lambda s: None)
    return out


def test_parity_with_sb3_predict(run_dir, tmp_path):
    from sim2real.train.export import export_policy
    from sim2real.train.policy import load_policy

    pol = load_policy(run_dir)
    paths = export_policy(pol, tmp_path / "policy.pt")
    module = torch.jit.load(str(paths["torchscript"]))
    with open(run_dir / "vecnormalize.pkl", "rb") as fh:
        vn = pickle.load(fh)
    rng = np.random.default_rng(0)
    obs = (rng.normal(size=(64, 20)) * 2.0 + vn.obs_rms.mean).astype(np.float32)
    obs[0] = 100.0  # outside the clip range of the normalisation
    expected = np.stack([pol.model.predict(vn.normalize_obs(o), deterministic=True)[0] for o in obs])
    got = module(torch.as_tensor(obs)).detach().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert np.all(np.abs(got) <= 1.0)


def test_sidecar_matches_interface(run_dir, tmp_path):
    from sim2real.cli.main import main

    assert main(["export", "--policy", str(run_dir), "--out", str(tmp_path / "p.pt")]) == 0
    meta = yaml.safe_load((tmp_path / "p.yaml").read_text())
    assert meta["format"] == "sim2real-policy/1"
    assert meta["robot"] == "kuka_iiwa" and meta["env_id"] == "sim2real/KukaReach-v0"
    assert meta["control_rate_hz"] == pytest.approx(20.0)
    obs = meta["observation"]
    assert obs["size"] == 20 and obs["history"] == 1 and obs["clip"] == 10.0
    assert obs["layout"] == [["joint_position", 7], ["joint_velocity", 7], ["ee_position", 3], ["target_position", 3]]
    act = meta["action"]
    assert act["size"] == 7 and act["mode"] == "joint_position_delta" and len(act["joints"]) == 7
    for key in ("scale", "offset", "low", "high"):
        assert len(act[key]) == 7


def test_loads_with_torch_alone(run_dir, tmp_path):
    from sim2real.train.export import export_policy
    from sim2real.train.policy import load_policy

    if yaml.safe_load((run_dir / "run.yaml").read_text())["algo"] != "ppo":
        pytest.skip("one algorithm is enough for the import check")
    export_policy(load_policy(run_dir), tmp_path / "policy.pt")
    code = ("import sys, torch; m = torch.jit.load(sys.argv[1]); a = m(torch.zeros(3, 20)); "
            "assert a.shape == (3, 7); bad = [k for k in sys.modules if k.split('.')[0] in "
            "('stable_baselines3', 'pybullet', 'gymnasium', 'sim2real')]; assert not bad, bad; print('ok')")
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path / "policy.pt")], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


def test_onnx(run_dir, tmp_path):
    onnx = pytest.importorskip("onnx")
    from sim2real.train.export import export_policy
    from sim2real.train.policy import load_policy

    paths = export_policy(load_policy(run_dir), tmp_path / "policy.pt", onnx=True)
    model = onnx.load(str(paths["onnx"]))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["obs"]
    from onnx.reference import ReferenceEvaluator  # pure-Python ONNX runtime

    obs = np.random.default_rng(1).normal(size=(8, 20)).astype(np.float32)
    got = ReferenceEvaluator(model).run(None, {"obs": obs})[0]
    expected = torch.jit.load(str(paths["torchscript"]))(torch.as_tensor(obs)).detach().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_bad_policy_path(tmp_path):
    from sim2real.errors import CheckpointError
    from sim2real.train.policy import load_policy

    with pytest.raises(CheckpointError, match="not found"):
        load_policy(tmp_path / "missing")
    (tmp_path / "model.zip").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="cannot load"):
        load_policy(tmp_path)
