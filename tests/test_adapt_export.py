"""Trained encoder reuse: DANN learns on tiny digits, SB3 features extractor, TorchScript export."""

from __future__ import annotations

import copy
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sim2real.adapt.config import parse_config
from sim2real.adapt.export import AdaptedFeaturesExtractor, load_encoder
from sim2real.adapt.trainer import evaluate, load_domains, train

from test_adapt_methods import TINY


@pytest.fixture(scope="module")
def dann_run(tmp_path_factory):
    raw = copy.deepcopy(TINY)
    raw["train"].update(steps=250, batch_size=32, checkpoint_every=0, log_every=50)
    cfg = parse_config(raw)
    out = tmp_path_factory.mktemp("dann")
    domains = load_domains(cfg, None, progress=False)
    method, summary = train(cfg, out, domains, progress=False, log_tensorboard=False)
    return out, method, summary, domains


def test_dann_on_tiny_digits_beats_chance(dann_run):
    _, method, summary, domains = dann_run
    assert summary["metrics"]["accuracy"] > 0.25  # 10 classes: chance is 0.10
    src = evaluate(method.predictor(), domains.xs, domains.ys, "classification")
    assert src["accuracy"] > 0.6  # and it learnt the source task


def test_torchscript_export_matches(dann_run):
    out, method, _, _ = dann_run
    pred = method.predictor().eval()
    x = torch.rand(5, 3, 16, 16)
    enc_ts, pred_ts = torch.jit.load(str(out / "encoder.pt")), torch.jit.load(str(out / "predictor.pt"))
    with torch.no_grad():
        torch.testing.assert_close(enc_ts(x), pred.encoder(x))
        torch.testing.assert_close(pred_ts(x), pred(x))
        big = torch.rand(2, 3, 40, 40)  # other camera resolutions are resized to the training size
        small = F.interpolate(big, size=(16, 16), mode="bilinear", align_corners=False)
        torch.testing.assert_close(pred_ts(big), pred(small))


class _CameraLike(gym.Env):
    """Dict observation like sim2real/KukaReachCamera-v0: uint8 HxWx3 image + state vector."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Dict({
            "image": gym.spaces.Box(0, 255, (24, 24, 3), np.uint8),
            "state": gym.spaces.Box(-1, 1, (4,), np.float32),
        })
        self.action_space = gym.spaces.Box(-1, 1, (2,), np.float32)

    def _obs(self):
        return {"image": self.np_random.integers(0, 256, (24, 24, 3), dtype=np.uint8),
                "state": self.np_random.uniform(-1, 1, 4).astype(np.float32)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        return self._obs(), 0.0, False, False, {}


def test_sb3_features_extractor_uses_the_encoder(dann_run):
    from stable_baselines3 import PPO

    out, method, _, _ = dann_run
    env = _CameraLike()
    model = PPO("MultiInputPolicy", env, n_steps=16, batch_size=16, n_epochs=1, device="cpu",
                policy_kwargs={"features_extractor_class": AdaptedFeaturesExtractor,
                               "features_extractor_kwargs": {"checkpoint": str(out / "checkpoint.pt")},
                               "share_features_extractor": True})
    ext = model.policy.features_extractor
    assert isinstance(ext, AdaptedFeaturesExtractor) and ext.features_dim == 32 + 4
    obs, _ = env.reset(seed=0)
    obs_t, _ = model.policy.obs_to_tensor(obs)
    enc = load_encoder(out / "checkpoint.pt")
    with torch.no_grad():
        img = obs_t["image"].float() / 255.0  # SB3 transposed to CHW; preprocessing scales to [0, 1]
        img = F.interpolate(img, size=(16, 16), mode="bilinear", align_corners=False)
        want = torch.cat([enc(img), obs_t["state"]], dim=1)
    from stable_baselines3.common.preprocessing import preprocess_obs

    with torch.no_grad():
        feats = ext(preprocess_obs(obs_t, model.observation_space))
    torch.testing.assert_close(feats, want)
    before = {k: v.clone() for k, v in ext.encoder.state_dict().items()}
    model.learn(16)  # frozen by default: PPO updates leave the encoder (and its BatchNorm stats) alone
    for k, v in ext.encoder.state_dict().items():
        torch.testing.assert_close(v, before[k])
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (2,)


def test_extractor_rejects_bad_space(dann_run, tmp_path: Path):
    from sim2real.errors import CheckpointError

    out = dann_run[0]
    with pytest.raises(CheckpointError, match="no image key 'camera'"):
        AdaptedFeaturesExtractor(_CameraLike().observation_space, out / "checkpoint.pt", image_key="camera")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        AdaptedFeaturesExtractor(_CameraLike().observation_space, tmp_path / "x.pt")
