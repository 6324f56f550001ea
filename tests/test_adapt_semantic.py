"""CycleGAN's CyCADA semantic-consistency option (``options.semantic_weight``)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from sim2real.adapt.methods import make_method
from sim2real.adapt.trainer import load_domains, read_checkpoint, train
from sim2real.errors import ConfigError

from adapt_tiny import tiny_config, tiny_raw

RAW: dict[str, Any] = tiny_raw("cyclegan", steps=4)


def cfg_with(options: dict[str, Any] | None = None, **top: Any):
    return tiny_config(RAW, "sem.yaml", options, **top)


@pytest.fixture(scope="module")
def domains():
    return load_domains(cfg_with(), None, progress=False)


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(b, p.detach()) for b, p in zip(before, module.parameters()))


def _batch(domains, n: int = 8):
    return domains.xs[:n].float() / 255, domains.ys[:n], domains.xt[:n].float() / 255


def test_pretrain_phase_trains_only_the_source_network(domains):
    method = make_method(cfg_with({"semantic_weight": 1.0, "semantic_pretrain_fraction": 0.5}))
    method.train(True)
    xs, ys, xt = _batch(domains)
    watched = {name: _params(m) for name, m in method.modules.items()}
    logs = method.train_step(0, 10, xs, ys, xt, None)  # step 0 < 5 pretrain steps
    assert set(logs) == {"loss/semantic_pretrain"}
    changed = {name for name, m in method.modules.items() if _changed(watched[name], m)}
    assert changed == {"semantic_encoder", "semantic_head"}


def test_after_pretrain_source_network_is_frozen_and_loss_reaches_generators(domains):
    method = make_method(cfg_with({"semantic_weight": 1.0, "semantic_pretrain_fraction": 0.5}))
    method.train(True)
    xs, ys, xt = _batch(domains)
    enc_before, head_before = _params(method.sem_encoder), _params(method.sem_head)
    gen_before = _params(method.g_st)
    bn_before = method.sem_encoder.conv[1].running_mean.clone()
    logs = method.train_step(5, 10, xs, ys, xt, None)
    assert logs["loss/semantic"] > 0
    assert not _changed(enc_before, method.sem_encoder) and not _changed(head_before, method.sem_head)
    assert _changed(gen_before, method.g_st)
    assert torch.equal(method.sem_encoder.conv[1].running_mean, bn_before)  # eval mode: statistics fixed
    # the semantic term alone gives the generator a gradient
    method.g_st.zero_grad(set_to_none=True)
    method.semantic_loss(xs, method.g_st(xs)).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.g_st.parameters())


def test_semantic_loss_measures_what_translation_changes(domains):
    reg = make_method(cfg_with({"semantic_weight": 1.0}, task={"type": "regression", "columns": ["label"]}))
    reg.train(False)
    xs, _, _ = _batch(domains)
    assert reg.semantic_loss(xs, xs).item() == pytest.approx(0.0, abs=1e-10)
    assert reg.semantic_loss(xs, torch.zeros_like(xs)).item() > 1e-6
    cls = make_method(cfg_with({"semantic_weight": 1.0}))
    cls.train(False)
    # cross-entropy of f_s(translated) to f_s's own arg-max label on x
    blank = torch.full_like(xs, 0.5)
    with torch.no_grad():
        ref, out = cls._semantic_net(xs).argmax(1), cls._semantic_net(blank)
    expected = torch.nn.functional.cross_entropy(out, ref)
    assert cls.semantic_loss(xs, blank).item() == pytest.approx(expected.item(), rel=1e-5)


def test_default_is_plain_cyclegan_and_checkpoint_keeps_semantic_net(domains, tmp_path):
    plain = make_method(cfg_with())
    assert "semantic_encoder" not in plain.modules
    xs, ys, xt = _batch(domains)
    assert "loss/semantic" not in plain.train_step(0, 10, xs, ys, xt, None)
    method, _ = train(cfg_with({"semantic_weight": 0.5}), tmp_path, domains, progress=False, log_tensorboard=False)
    saved = read_checkpoint(tmp_path / "checkpoint.pt")["modules"]
    assert "semantic_encoder" in saved and "semantic_head" in saved


def test_semantic_option_validation():
    with pytest.raises(ConfigError, match="non-negative"):
        cfg_with({"semantic_weight": -1.0})
    with pytest.raises(ConfigError, match=r"\(0, 1\)"):
        cfg_with({"semantic_weight": 1.0, "semantic_pretrain_fraction": 1.0})
    with pytest.raises(ConfigError, match="unknown option"):
        cfg_with({"semantic_weight": 1.0}, method="pixelda")
