"""Use a trained adaptation encoder elsewhere: TorchScript export and an SB3 features extractor.

``encoder.pt``: TorchScript, ``forward(images: Tensor[B, 3, H, W] float in [0, 1]) ->
Tensor[B, feature_dim]``; images of another size are resized (bilinear) to the training
size. ``predictor.pt``: same input → task outputs ``Tensor[B, out_dim]`` (class logits,
or regression values in label units, e.g. pixels).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
import torch.nn.functional as F
from torch import nn

from sim2real._io import atomic_open
from sim2real.errors import CheckpointError

try:  # SB3 is a core dependency, but keep the export usable without it
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
except ImportError:  # pragma: no cover
    BaseFeaturesExtractor = nn.Module  # type: ignore[misc,assignment]


class ResizeInput(nn.Module):
    """Resize ``(B, 3, H, W)`` images to ``size × size`` before ``inner`` (no-op at the right size)."""

    def __init__(self, inner: nn.Module, size: int) -> None:
        super().__init__()
        self.inner = inner
        self.size = int(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return self.inner(x)


def _script(module: nn.Module, size: int, path: Path) -> None:
    import copy

    import warnings

    wrapped = ResizeInput(copy.deepcopy(module).eval(), size).eval()
    with warnings.catch_warnings():  # torch >= 2.9 flags TorchScript as deprecated; policies export it too
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(wrapped)
        with atomic_open(path, "wb") as fh:
            torch.jit.save(scripted, fh)


def export_run(method: Any, run_dir: str | Path) -> dict[str, Path]:
    """Write ``encoder.pt`` and ``predictor.pt`` (TorchScript) for a trained method."""
    run_dir = Path(run_dir)
    pred = method.predictor()
    size = method.cfg.network.image_size
    paths = {"encoder": run_dir / "encoder.pt", "predictor": run_dir / "predictor.pt"}
    _script(pred.encoder, size, paths["encoder"])
    _script(pred, size, paths["predictor"])
    return paths


def load_encoder(checkpoint: str | Path) -> nn.Module:
    """The encoder a run evaluates target images with (ADDA: the target encoder), in eval mode."""
    from sim2real.adapt.trainer import method_from_checkpoint

    method, _ = method_from_checkpoint(checkpoint)
    enc = method.predictor().encoder
    enc.eval()
    return enc


class AdaptedFeaturesExtractor(BaseFeaturesExtractor):
    """stable-baselines3 features extractor built from an adapt checkpoint.

    Works with a ``Box`` image observation space (uint8 ``H×W×3`` or ``3×H×W``) or a
    ``Dict`` space with an image key (default ``"image"``); other ``Dict`` entries are
    flattened and concatenated after the image features (``features_dim = feature_dim +
    their sizes``). SB3 hands images in as float ``[0, 1]`` (``normalize_images=True``).

    Use: ``policy_kwargs=dict(features_extractor_class=AdaptedFeaturesExtractor,
    features_extractor_kwargs=dict(checkpoint="runs/dann/checkpoint.pt"))``.

    :param checkpoint: a ``checkpoint.pt`` written by ``sim2real adapt``.
    :param freeze: keep the encoder's weights and BatchNorm statistics fixed (default).
    :param image_key: the image entry of a ``Dict`` observation space.
    :param input_scale: multiplies the image before the encoder: 1.0 when SB3 already scaled
        it to [0, 1] (``normalize_images=True``, the default), 1/255 for raw uint8 values.
    """

    def __init__(self, observation_space: gym.Space, checkpoint: str | Path, freeze: bool = True,
                 image_key: str = "image", input_scale: float = 1.0) -> None:
        encoder = load_encoder(checkpoint)
        other_keys: list[str] = []
        extra = 0
        if isinstance(observation_space, gym.spaces.Dict):
            if image_key not in observation_space.spaces:
                raise CheckpointError(f"{checkpoint}: observation space has no image key {image_key!r}")
            other_keys = [k for k in observation_space.spaces if k != image_key]
            for k in other_keys:
                extra += int(gym.spaces.flatdim(observation_space.spaces[k]))
            img_space = observation_space.spaces[image_key]
        else:
            img_space = observation_space
        shape = tuple(img_space.shape or ())
        if len(shape) != 3 or 3 not in (shape[0], shape[-1]):
            raise CheckpointError(f"{checkpoint}: image observation must be HxWx3 or 3xHxW, got shape {shape}")
        super().__init__(observation_space, features_dim=encoder.feature_dim + extra)
        self.image_key, self.other_keys, self.input_scale = image_key, other_keys, float(input_scale)
        self.encoder = ResizeInput(encoder, encoder.image_size)
        self.freeze = freeze
        if freeze:
            for p in self.encoder.parameters():
                p.requires_grad_(False)
            self.encoder.eval()

    def apply(self, fn: Any) -> "AdaptedFeaturesExtractor":
        """Skip the pretrained encoder: SB3's policies call ``apply(init_weights)`` on their
        features extractor (``ortho_init``), which would overwrite the loaded weights."""
        fn(self)
        return self

    def train(self, mode: bool = True) -> "AdaptedFeaturesExtractor":
        super().train(mode)
        if self.freeze:
            self.encoder.eval()
        return self

    def forward(self, observations: Any) -> torch.Tensor:
        img = observations[self.image_key] if isinstance(observations, dict) else observations
        if img.shape[1] != 3 and img.shape[-1] == 3:  # channel-last (no VecTransposeImage)
            img = img.permute(0, 3, 1, 2)
        img = img.float() * self.input_scale
        feats = [self.encoder(img)]
        for k in self.other_keys:
            feats.append(observations[k].float().flatten(1))
        return torch.cat(feats, dim=1)
