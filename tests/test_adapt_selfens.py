"""Self-ensembling / mean teacher (``method: selfens``, sim2real.adapt.selfens)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from sim2real.adapt.config import load_config
from sim2real.adapt.methods import make_method
from sim2real.adapt.selfens import SelfEnsembling, augment, fourier_style
from sim2real.adapt.trainer import load_domains, read_checkpoint, train
from sim2real.errors import ConfigError

from adapt_tiny import assert_same_modules, interrupt_at_step, tiny_config, tiny_raw

RAW: dict[str, Any] = tiny_raw("selfens", steps=4, checkpoint_every=2)


def cfg_with(options: dict[str, Any] | None = None, **top: Any):
    return tiny_config(RAW, "selfens.yaml", options, **top)


@pytest.fixture(scope="module")
def domains():
    return load_domains(cfg_with(), None, progress=False)


def _batch(domains, n: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return domains.xs[:n].float() / 255, domains.ys[:n], domains.xt[:n].float() / 255


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def test_teacher_is_ema_of_student_and_changes(domains):
    torch.manual_seed(0)
    m = make_method(cfg_with({"teacher_alpha": 0.9}))
    assert isinstance(m, SelfEnsembling)
    for pt, ps in zip(m.teacher_encoder.parameters(), m.encoder.parameters()):
        assert torch.equal(pt, ps) and not pt.requires_grad  # starts as a copy, never trained directly
    before = _params(m.teacher_encoder) + _params(m.teacher_head)
    xs, ys, xt = _batch(domains)
    m.train(True)
    m.train_step(0, 4, xs, ys, xt, None)
    after = _params(m.teacher_encoder) + _params(m.teacher_head)
    student = _params(m.encoder) + _params(m.head)
    assert any(not torch.equal(a, b) for a, b in zip(before, after))
    for old, new, s in zip(before, after, student):
        torch.testing.assert_close(new, 0.9 * old + 0.1 * s)
    # the predictor (evaluation, export) is the teacher by default, the student on request
    assert m.predictor().encoder is m.teacher_encoder
    assert make_method(cfg_with({"predict_with": "student"})).predictor().encoder is not m.teacher_encoder


def test_zero_consistency_weight_equals_source_only_update(domains):
    torch.manual_seed(0)
    se = make_method(cfg_with({"consistency_weight": 0.0, "source_augment": False}))
    so = make_method(cfg_with(method="source_only"))
    so.encoder.load_state_dict(se.encoder.state_dict())
    so.head.load_state_dict(se.head.state_dict())
    xs, ys, xt = _batch(domains)
    se.train(True)
    so.train(True)
    se.train_step(0, 4, xs, ys, xt, None)
    so.train_step(0, 4, xs, ys, None, None)
    # weights only: the student's BatchNorm running statistics also saw the target batch
    for (k, a), b in zip(se.encoder.named_parameters(), so.encoder.parameters()):
        torch.testing.assert_close(a, b, msg=k)
    for a, b in zip(se.head.parameters(), so.head.parameters()):
        torch.testing.assert_close(a, b)
    assert not all(torch.equal(a, b) for a, b in zip(se.head.parameters(), se.teacher_head.parameters()))
    # the target batch still goes through the student (without autograd): its BatchNorm layers counted both batches
    bn = [m for m in se.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bn and all(int(m.num_batches_tracked) == 2 for m in bn)


def test_consistency_gradient_comes_from_the_teacher(domains):
    """Same student, batch and RNG; only the teacher differs → the student's update differs."""
    opts = {"confidence_threshold": 0.0, "consistency_weight": 10.0, "class_balance": 0.0}
    xs, ys, xt = _batch(domains)
    results = []
    for perturb in (False, True):
        torch.manual_seed(0)
        m = make_method(cfg_with(opts))
        if perturb:
            with torch.no_grad():
                for p in m.teacher_head.parameters():
                    p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
        m.train(True)
        torch.manual_seed(1)
        logs = m.train_step(0, 4, xs, ys, xt, None)
        assert logs["loss/consistency"] > 0 and logs["teacher_confident"] == 1.0
        results.append(_params(m.head))
    assert any(not torch.allclose(a, b) for a, b in zip(*results))


def test_confidence_threshold_masks_unconfident_teacher():
    m = make_method(cfg_with({"class_balance": 0.0}))
    student = torch.zeros(2, 10)
    teacher = torch.zeros(2, 10)
    teacher[0, 3] = 20.0  # confident (p ≈ 1)
    loss, logs = m.unsupervised_loss(student, teacher)
    assert logs["teacher_confident"] == 0.5
    p = torch.softmax(teacher[0], 0)
    torch.testing.assert_close(loss, ((0.1 - p) ** 2).sum() / 2)  # only sample 0 counts, mean over batch
    # class balance: zero for uniform mean prediction, positive when one class dominates
    mb = make_method(cfg_with({"confidence_threshold": 0.0}))
    _, uni = mb.unsupervised_loss(torch.zeros(4, 10), torch.zeros(4, 10))
    skew = torch.zeros(4, 10)
    skew[:, 0] = 5.0
    _, bad = mb.unsupervised_loss(skew, skew)
    assert bad["loss/class_balance"] > uni["loss/class_balance"] + 0.5


def test_photometric_augmentation_keeps_pixel_positions():
    """With the regression-forced options (no geometric keys), a bright pixel stays where it was."""
    cfg = cfg_with({"intensity_scale": [0.8, 1.2], "colour_gain": 0.3, "blur_sigma": 1.0, "noise_std": 0.0},
                   task={"type": "regression", "columns": ["label"]})
    opt = cfg.options
    assert opt["translate"] == 0.0 and opt["affine_std"] == 0.0 and opt["hflip"] is False
    assert opt["class_balance"] == 0.0
    x = torch.zeros(6, 3, 16, 16)
    x[torch.arange(6), :, torch.arange(6) + 3, 12 - torch.arange(6)] = 1.0
    torch.manual_seed(0)
    y = augment(x, opt)
    assert not torch.equal(x, y)
    flat = y.mean(1).flatten(1).argmax(1)
    assert torch.equal(flat // 16, torch.arange(6) + 3) and torch.equal(flat % 16, 12 - torch.arange(6))
    # the classification defaults do move pixels (translation + affine)
    torch.manual_seed(0)
    assert not torch.equal(augment(x, cfg_with().options).mean(1).flatten(1).argmax(1), flat)


@pytest.mark.parametrize("combine", [False, True])
def test_trains_checkpoints_and_resumes_exactly(domains, tmp_path: Path, monkeypatch, combine: bool):
    cfg = cfg_with({"intensity_flip": True, "intensity_scale": [0.5, 1.5], "blur_sigma": 0.5, "colour_field": 0.1,
                    "combine_batches": combine})
    full, summary = train(cfg, tmp_path / "full", domains, progress=False, log_tensorboard=False)
    state = read_checkpoint(tmp_path / "full" / "checkpoint.pt")
    assert state["step"] == 4 and {"teacher_encoder", "teacher_head"} <= set(state["modules"])
    assert 0.0 <= summary["metrics"]["accuracy"] <= 1.0

    class Interrupt(Exception):
        pass

    undo = interrupt_at_step(monkeypatch, SelfEnsembling, 2, Interrupt)
    with pytest.raises(Interrupt):
        train(cfg, tmp_path / "cut", domains, progress=False, log_tensorboard=False)
    undo()
    resumed, _ = train(cfg, tmp_path / "cut", domains, resume=True, progress=False, log_tensorboard=False)
    assert_same_modules(full, resumed)


def test_cli_runs_from_config_and_reports(tmp_path: Path):
    from sim2real.cli.main import main

    raw = copy.deepcopy(RAW)
    raw["train"]["steps"] = 3
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "run"
    assert main(["adapt", str(path), "--out", str(out), "--no-progress"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["results"]) == {"selfens", "source_only", "oracle"} and "gap_closed" in report
    import warnings

    with warnings.catch_warnings():  # torch >= 2.9 flags TorchScript as deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        pred, enc = torch.jit.load(str(out / "predictor.pt")), torch.jit.load(str(out / "encoder.pt"))
    assert pred(torch.rand(2, 3, 20, 20)).shape == (2, 10)
    assert enc(torch.rand(2, 3, 16, 16)).shape == (2, 32)
    assert list((out / "tb").iterdir())


@pytest.mark.parametrize(
    ("options", "task", "match"),
    [
        ({"teacher_alpha": 1.0}, None, r"options\.teacher_alpha: expected a number in \[0, 1\)"),
        ({"confidence_threshold": 1.5}, None, r"options\.confidence_threshold: expected a number in \[0, 1\]"),
        ({"consistency_weight": -1.0}, None, r"options\.consistency_weight: expected a non-negative"),
        ({"intensity_scale": [1.5, 0.5]}, None, r"options\.intensity_scale: expected \[low, high\]"),
        ({"intensity_offset": [0.1]}, None, r"options\.intensity_offset: expected \[low, high\]"),
        ({"predict_with": "both"}, None, r"options\.predict_with: expected teacher or student"),
        ({"hflip": "yes"}, None, r"options\.hflip: expected true/false"),
        ({"consistency": 1.0}, None, r"options\.consistency: unknown option for method selfens"),
        ({"translate": 2.0}, "regression", r"options\.translate: geometric augmentation"),
        ({"class_balance": 0.01}, "regression", r"options\.class_balance: class balance needs a classification"),
        ({"fourier_beta": 0.7}, None, r"options\.fourier_beta: expected a number in \[0, 0\.5\]"),
        ({"hue_shift": 0.6}, None, r"options\.hue_shift: expected a number in \[0, 0\.5\]"),
        ({"fourier_prob": -0.1}, None, r"options\.fourier_prob: expected a number in \[0, 1\.0\]"),
    ],
)
def test_bad_options_name_file_and_key(tmp_path: Path, options, task, match):
    raw = copy.deepcopy(RAW)
    raw["options"] = options
    if task:
        raw["task"] = {"type": "regression", "columns": ["label"]}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"bad\.yaml: " + match):
        load_config(path)


def test_shipped_selfens_configs_validate():
    root = Path(__file__).resolve().parents[1] / "configs" / "adapt"
    digits, arm = load_config(root / "digits_selfens.yaml"), load_config(root / "arm_selfens.yaml")
    assert digits.method == arm.method == "selfens"
    assert arm.options["translate"] == 0.0 and arm.options["affine_std"] == 0.0


def test_equivariant_shift_moves_pixel_labels_with_the_image():
    from sim2real.adapt.selfens import shift_images

    x = torch.zeros(1, 3, 16, 16)
    x[0, :, 5, 7] = 1.0  # pixel (u=7, v=5)
    y = shift_images(x, torch.tensor([[3.0, -2.0]]))
    flat = int(y.mean(1).flatten().argmax())
    assert (flat % 16, flat // 16) == (10, 3)
    cfg = cfg_with({"equivariant_shift": 3.0}, task={"type": "regression", "columns": ["target_v", "target_u"]})
    m = make_method(cfg)
    torch.testing.assert_close(m._label_offset(torch.tensor([[3.0, -2.0]])), torch.tensor([[-2.0, 3.0]]))
    with pytest.raises(ConfigError, match=r"options\.equivariant_shift: needs a regression task"):
        cfg_with({"equivariant_shift": 3.0}, task={"type": "regression", "columns": ["label"]})
    with pytest.raises(ConfigError, match=r"options\.equivariant_shift: needs a regression task"):
        cfg_with({"equivariant_shift": 3.0})


def test_equivariant_consistency_is_zero_for_a_shift_equivariant_teacher_and_student(monkeypatch):
    """If both networks output exactly the pixel label of the shifted image, the consistency is zero."""
    cfg = cfg_with({"equivariant_shift": 2.0, "noise_std": 0.0, "consistency_weight": 1.0},
                   task={"type": "regression", "columns": ["target_u", "target_v"]})
    m = make_method(cfg)

    def raw(encoder, head, x):  # "perfect" networks: the bright pixel's (u, v), normalised
        flat = x.mean(1).flatten(1).argmax(1)
        return torch.stack([(flat % 16).float() + 0.5, (flat // 16).float() + 0.5], 1)

    monkeypatch.setattr(m, "_raw", raw)
    monkeypatch.setattr(m, "_random_shift", lambda n: torch.randint(-2, 3, (n, 2)).float())
    x = torch.zeros(4, 3, 16, 16)
    for i in range(4):
        x[i, :, 4 + i, 6 + i] = 1.0
    m.loss = lambda out, y: out.sum() * 0.0 + (y - y).sum()
    torch.manual_seed(0)
    logs = {}

    def grab(student, teacher):
        logs["diff"] = (student - teacher).abs().max()
        return (student - teacher).pow(2).mean() + 0.0 * student.sum(), {}

    monkeypatch.setattr(m, "unsupervised_loss", grab)
    m.train_step(0, 1, x, torch.zeros(4, 2), x, None)
    assert float(logs["diff"]) == 0.0


def _smooth_images(n: int, seed: int, level: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return level + 0.05 * torch.randn(n, 3, 16, 16, generator=g)  # stays inside [0, 1]: no clamping


def test_fourier_style_takes_low_band_amplitude_from_target_and_keeps_source_phase():
    xs, xt = _smooth_images(4, 0, 0.5), _smooth_images(1, 1, 0.3)  # one target image: every pick is it
    band = 2  # floor(0.15 * 16)
    out = fourier_style(xs, xt, 0.15)
    k = (torch.fft.fftfreq(16) * 16).abs()
    low = (k.view(16, 1) <= band) & (k.view(1, 16) <= band)
    fo, fs, ft = torch.fft.fft2(out), torch.fft.fft2(xs), torch.fft.fft2(xt)
    torch.testing.assert_close(fo.abs()[..., low], ft.abs().expand_as(fs)[..., low], atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(fo.abs()[..., ~low], fs.abs()[..., ~low], atol=1e-3, rtol=1e-4)
    phase_err = torch.angle(fo * fs.conj())  # phase difference, wrapped to (-pi, pi]
    assert phase_err.abs().max() < 1e-3
    # the mean colour (DC) is now the target's: a cast moves with it
    torch.testing.assert_close(out.mean((2, 3)), xt.mean((2, 3)).expand(4, 3), atol=1e-5, rtol=0)
    assert not torch.allclose(out, xs, atol=1e-2)


def test_fourier_style_probability_and_training_step(domains):
    xs, xt = _smooth_images(6, 2, 0.5), _smooth_images(3, 3, 0.2)
    assert torch.equal(fourier_style(xs, xt, 0.1, prob=0.0), xs)
    torch.manual_seed(0)
    mixed = fourier_style(xs, xt, 0.1, prob=0.5)
    changed = [not torch.equal(a, b) for a, b in zip(mixed, xs)]
    assert any(changed) and not all(changed)
    # in training, the source batch is translated before augmentation: a different update
    updates = []
    for beta in (0.0, 0.1):
        torch.manual_seed(0)
        m = make_method(cfg_with({"fourier_beta": beta, "consistency_weight": 0.0, "source_augment": False}))
        m.train(True)
        a, y, t = _batch(domains)
        m.train_step(0, 4, a, y, t, None)
        updates.append(_params(m.encoder))
    assert any(not torch.equal(a, b) for a, b in zip(*updates))


def test_hue_shift_rotates_colour_and_keeps_luma():
    from sim2real.adapt.selfens import _RGB_TO_YIQ, _rotate_hue

    g = torch.Generator().manual_seed(4)
    x = 0.25 + 0.5 * torch.rand(3, 3, 5, 5, generator=g)
    luma = torch.einsum("j,bjhw->bhw", _RGB_TO_YIQ[0], x)
    for turns in (0.1, 0.25, 0.5):
        y = _rotate_hue(x, torch.full((3,), turns * 2 * torch.pi))
        torch.testing.assert_close(torch.einsum("j,bjhw->bhw", _RGB_TO_YIQ[0], y), luma, atol=1e-5, rtol=0)
        assert (y - x).abs().max() > 0.01
    torch.testing.assert_close(_rotate_hue(x, torch.zeros(3)), x, atol=1e-6, rtol=0)
    red = torch.tensor([0.9, 0.1, 0.1]).view(1, 3, 1, 1)
    half = _rotate_hue(red, torch.tensor([torch.pi]))[0, :, 0, 0]  # half a turn: red → cyan-ish
    assert half[0] < half[1] and half[0] < half[2]
    torch.manual_seed(0)  # through augment(): per-image random angles, pixel layout untouched
    opts = {**make_method(cfg_with({"hue_shift": 0.2})).cfg.options}
    out = augment(x, {**opts, "translate": 0.0, "affine_std": 0.0, "noise_std": 0.0})
    torch.testing.assert_close(torch.einsum("j,bjhw->bhw", _RGB_TO_YIQ[0], out), luma, atol=1e-5, rtol=0)
    assert not torch.allclose(out, x, atol=1e-3)
