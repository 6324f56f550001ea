"""Documented non-default adaptation options: AdaBN, domain-specific BN, entropy minimisation."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from sim2real.adapt.methods import adapt_batchnorm, entropy, make_method
from sim2real.adapt.nets import Encoder, NetworkConfig
from sim2real.adapt.trainer import load_domains, read_checkpoint, train
from sim2real.errors import ConfigError

from adapt_tiny import assert_same_modules, interrupt_at_step, tiny_config, tiny_raw

RAW: dict[str, Any] = tiny_raw("dann", steps=3)


def cfg_with(options: dict[str, Any] | None = None, **top: Any):
    return tiny_config(RAW, "opts.yaml", options, **top)


@pytest.fixture(scope="module")
def domains():
    return load_domains(cfg_with(), None, progress=False)


def _first_bn_stats(encoder: Encoder, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased variance per channel of the first conv's output on ``x`` uint8."""
    with torch.no_grad():
        h = encoder.conv[0]((x.float() / 255.0 - 0.5) / 0.5)
    return h.mean(dim=(0, 2, 3)), h.var(dim=(0, 2, 3), unbiased=True)


def test_adapt_batchnorm_reestimates_statistics_only():
    torch.manual_seed(0)
    enc = Encoder(NetworkConfig(image_size=16, channels=[4, 8], feature_dim=8))
    x = torch.randint(0, 256, (40, 3, 16, 16), dtype=torch.uint8)
    weights = {k: v.clone() for k, v in enc.state_dict().items() if "running" not in k and "num_batches" not in k}
    enc.eval()
    adapt_batchnorm(enc, x, batch=64)  # one batch → exact statistics of x
    mean, var = _first_bn_stats(enc, x)
    bn = enc.conv[1]
    torch.testing.assert_close(bn.running_mean, mean, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(bn.running_var, var, rtol=1e-4, atol=1e-5)
    assert bn.momentum == 0.1 and not enc.training  # restored
    for k, v in weights.items():
        torch.testing.assert_close(enc.state_dict()[k], v)
    # the old statistics are discarded, not blended in: a second pass on other data forgets x
    y = torch.randint(100, 156, (40, 3, 16, 16), dtype=torch.uint8)
    adapt_batchnorm(enc, y, batch=64)
    torch.testing.assert_close(bn.running_mean, _first_bn_stats(enc, y)[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["dann", "pixelda", "cyclegan"])
def test_adabn_leaves_target_statistics_in_checkpoint(domains, tmp_path, name: str):
    method, _ = train(cfg_with({"adabn": True}, method=name), tmp_path, domains, progress=False, log_tensorboard=False)
    enc = method.predictor().encoder
    mean, _ = _first_bn_stats(enc, domains.xt)
    torch.testing.assert_close(enc.conv[1].running_mean, mean, rtol=1e-3, atol=1e-4)
    saved = read_checkpoint(tmp_path / "checkpoint.pt")["modules"]["encoder"]["conv.1.running_mean"]
    torch.testing.assert_close(saved, mean, rtol=1e-3, atol=1e-4)
    # without the option the statistics are the training running averages, far from target-only ones
    plain, _ = train(cfg_with(method=name), tmp_path / "plain", domains, progress=False, log_tensorboard=False)
    assert not torch.allclose(plain.predictor().encoder.conv[1].running_mean, mean, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("separate", [False, True])
def test_dann_separate_bn_normalises_each_domain_alone(domains, separate: bool):
    method = make_method(cfg_with({"separate_bn": separate}))
    sizes: list[int] = []
    method.encoder.conv[1].register_forward_hook(lambda m, inp, out: sizes.append(inp[0].shape[0]))
    xs, xt = domains.xs[:8].float() / 255, domains.xt[:6].float() / 255
    method.train(True)
    method.train_step(0, 10, xs, domains.ys[:8], xt, None)
    assert sizes == ([8, 6] if separate else [14])


def test_entropy_and_dann_entropy_option(domains):
    assert entropy(torch.zeros(4, 10)).item() == pytest.approx(math.log(10), rel=1e-6)
    assert entropy(torch.tensor([[50.0, 0.0, 0.0]])).item() < 1e-6
    method = make_method(cfg_with({"entropy_weight": 0.5}))
    logs = method.train_step(0, 10, domains.xs[:8].float() / 255, domains.ys[:8], domains.xt[:8].float() / 255, None)
    assert 0.0 < logs["loss/target_entropy"] <= math.log(10)
    assert "loss/target_entropy" not in make_method(cfg_with()).train_step(
        0, 10, domains.xs[:8].float() / 255, domains.ys[:8], domains.xt[:8].float() / 255, None)


def test_option_validation():
    with pytest.raises(ConfigError, match="classification"):
        cfg_with({"entropy_weight": 0.1}, task={"type": "regression", "columns": ["label"]})
    with pytest.raises(ConfigError, match="non-negative"):
        cfg_with({"entropy_weight": -1.0})
    with pytest.raises(ConfigError, match="true/false"):
        cfg_with({"adabn": 1})


def _train_block(**extra: Any) -> dict[str, Any]:
    return {**RAW["train"], **extra}


def test_cosine_lr_schedule_scales_every_optimizer_and_resumes_exactly(domains, tmp_path, monkeypatch):
    from sim2real.adapt.methods import PixelDA
    from sim2real.adapt.trainer import apply_lr_schedule

    cfg = tiny_config(tiny_raw("pixelda", steps=4), "px.yaml", train=_train_block(lr_schedule="cosine", steps=4))
    m = make_method(cfg)
    base = {k: [g["lr"] for g in o.param_groups] for k, o in m.optimizers.items()}
    assert len(base) >= 3  # generator, discriminator and task optimizers all follow the schedule
    for step, factor in ((0, 1.0), (2, 0.5), (3, 0.5 * (1 + math.cos(math.pi * 0.75)))):
        apply_lr_schedule(m, step, 4, "cosine")
        for k, o in m.optimizers.items():
            assert [g["lr"] for g in o.param_groups] == pytest.approx([lr * factor for lr in base[k]])
    constant = make_method(cfg_with())
    apply_lr_schedule(constant, 3, 4, "constant")
    assert constant.optimizers["all"].param_groups[0]["lr"] == RAW["train"]["lr"]

    # a run cut at step 2 and resumed ends with the same weights and learning rates as an uncut one
    undo = interrupt_at_step(monkeypatch, PixelDA, 2, KeyboardInterrupt)
    raw = tiny_raw("pixelda", steps=4, checkpoint_every=1)
    cfg_cut = tiny_config(raw, "px.yaml", train={**raw["train"], "lr_schedule": "cosine"})
    with pytest.raises(KeyboardInterrupt):
        train(cfg_cut, tmp_path / "cut", domains, progress=False, log_tensorboard=False)
    undo()
    uncut, _ = train(cfg_cut, tmp_path / "uncut", domains, progress=False, log_tensorboard=False)
    resumed, _ = train(cfg_cut, tmp_path / "cut", domains, resume=True, progress=False, log_tensorboard=False)
    assert_same_modules(uncut, resumed)
    for k, o in uncut.optimizers.items():
        assert [g["lr"] for g in o.param_groups] == [g["lr"] for g in resumed.optimizers[k].param_groups]
    # and the schedule changed training: a constant-rate run ends elsewhere
    const, _ = train(tiny_config(raw, "px.yaml"), tmp_path / "const", domains, progress=False, log_tensorboard=False)
    assert any(not torch.equal(a, b) for a, b in zip(const.encoder.state_dict().values(),
                                                     uncut.encoder.state_dict().values()))


def test_lr_schedule_validation():
    with pytest.raises(ConfigError, match=r"opts\.yaml: train\.lr_schedule: expected one of constant, cosine"):
        cfg_with(train=_train_block(lr_schedule="step"))
    with pytest.raises(ConfigError, match=r"train\.lr_schedule: dann anneals its own learning rate"):
        cfg_with(train=_train_block(lr_schedule="cosine"))
    assert cfg_with({"lr_anneal": False}, train=_train_block(lr_schedule="cosine")).train.lr_schedule == "cosine"
