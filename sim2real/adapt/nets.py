"""Small CNNs for domain adaptation, sized for CPU training.

Images enter every network as float tensors ``(B, 3, H, W)`` in ``[0, 1]`` (RGB);
generators return the same. The encoder maps images to features ``(B, feature_dim)``;
heads map features to ``(B, out_dim)`` (class logits or regression outputs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, lambd: float) -> torch.Tensor:  # type: ignore[override]
        ctx.lambd = lambd
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return -ctx.lambd * grad, None


def grad_reverse(x: torch.Tensor, lambd: float = 1.0) -> torch.Tensor:
    """Identity in the forward pass; multiplies the gradient by ``-lambd`` in the backward pass."""
    return _GradReverse.apply(x, float(lambd))


class GradientReversal(nn.Module):
    """Gradient-reversal layer (Ganin & Lempitsky 2015); set ``lambd`` during training."""

    def __init__(self, lambd: float = 1.0) -> None:
        super().__init__()
        self.lambd = float(lambd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.lambd)


def dann_lambda(progress: float, gamma: float = 10.0) -> float:
    """DANN schedule ``2 / (1 + exp(-gamma * p)) - 1`` for training progress ``p`` in [0, 1]."""
    return 2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0


@dataclass
class NetworkConfig:
    """Sizes of the networks (the ``network:`` block of an adapt config)."""

    image_size: int = 32
    channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    feature_dim: int = 128
    head_hidden: int = 128
    disc_hidden: int = 256
    gen_width: int = 32
    gen_blocks: int = 3
    noise_dim: int = 10
    input_norm: str = "fixed"  # fixed: (x-0.5)/0.5 | image: per-image, per-channel standardisation
    dropout: float = 0.0


class Encoder(nn.Module):
    """Conv feature extractor: ``(B, 3, S, S)`` in [0, 1] → ``(B, feature_dim)``.

    Each stage is conv3×3 → BatchNorm → ReLU → max-pool 2; the last map is flattened
    (keeping spatial layout, which pixel-position regression needs) into a linear layer.
    """

    def __init__(self, cfg: NetworkConfig) -> None:
        super().__init__()
        self.image_size = int(cfg.image_size)
        self.feature_dim = int(cfg.feature_dim)
        self.per_image_norm = cfg.input_norm == "image"
        layers: list[nn.Module] = []
        c_in, side = 3, self.image_size
        for c in cfg.channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c_in, side = c, side // 2
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Sequential(
            nn.Flatten(), nn.Dropout(cfg.dropout), nn.Linear(c_in * side * side, self.feature_dim), nn.ReLU(inplace=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.per_image_norm:
            mean = x.mean(dim=(2, 3), keepdim=True)
            std = x.std(dim=(2, 3), keepdim=True) + 1e-3
            x = (x - mean) / std
        else:
            x = (x - 0.5) / 0.5
        return self.fc(self.conv(x))


class MLPHead(nn.Module):
    """``(B, in_dim)`` → ``(B, out_dim)`` with one hidden ReLU layer."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DomainClassifier(nn.Module):
    """Features ``(B, in_dim)`` → domain logit ``(B,)`` (1 = target / real)."""

    def __init__(self, in_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


class Predictor(nn.Module):
    """Encoder + head: images ``(B, 3, S, S)`` in [0, 1] → outputs ``(B, out_dim)``."""

    def __init__(self, encoder: Encoder, head: MLPHead) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


class _ResBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1), nn.InstanceNorm2d(c, affine=True), nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, padding=1), nn.InstanceNorm2d(c, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


class ImageGenerator(nn.Module):
    """Image translator at full resolution: ``(B, 3, S, S)`` (+ noise ``(B, noise_dim)``) → ``(B, 3, S, S)``.

    With ``noise_dim > 0`` (PixelDA) the noise vector is mapped by a linear layer to one
    extra ``S×S`` input channel, as in Bousmalis et al. (2017). Output is in [0, 1].
    """

    def __init__(self, image_size: int, width: int, blocks: int, noise_dim: int = 0) -> None:
        super().__init__()
        self.image_size = int(image_size)
        self.noise_dim = int(noise_dim)
        self.noise_fc = nn.Linear(noise_dim, image_size * image_size) if noise_dim > 0 else None
        c_in = 3 + (1 if noise_dim > 0 else 0)
        self.stem = nn.Sequential(nn.Conv2d(c_in, width, 3, padding=1), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*[_ResBlock(width) for _ in range(blocks)])
        self.out = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        h = (x - 0.5) / 0.5
        if self.noise_fc is not None:
            if z is None:
                z = torch.zeros(x.shape[0], self.noise_dim, device=x.device)
            noise = self.noise_fc(z).view(x.shape[0], 1, self.image_size, self.image_size)
            h = torch.cat([h, noise], dim=1)
        return (torch.tanh(self.out(self.blocks(self.stem(h)))) + 1.0) / 2.0


class ImageDiscriminator(nn.Module):
    """PatchGAN-style critic: ``(B, 3, S, S)`` in [0, 1] → logits ``(B, P)`` (one per patch)."""

    def __init__(self, width: int = 32, layers: int = 3) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        c_in = 3
        for i in range(layers):
            c = width * (2**i)
            mods += [nn.Conv2d(c_in, c, 4, stride=2, padding=1)]
            if i > 0:
                mods += [nn.InstanceNorm2d(c, affine=True)]
            mods += [nn.LeakyReLU(0.2, inplace=True)]
            c_in = c
        mods += [nn.Conv2d(c_in, 1, 3, padding=1)]
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - 0.5) / 0.5).flatten(1)
