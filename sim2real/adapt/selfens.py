"""Self-ensembling / mean teacher for domain adaptation (French, Mackiewicz & Fisher, ICLR 2018).

A *student* network (encoder + head) is trained with the supervised loss on labelled,
augmented source images plus a *consistency* loss on unlabelled target images: the
student's prediction on one random augmentation of ``x_t`` must match the prediction of a
*teacher* network on another augmentation of the same ``x_t``. The teacher's weights are an
exponential moving average (EMA) of the student's, ``θ_T ← α θ_T + (1 − α) θ_S``, updated
after every optimizer step; the teacher never receives gradients.

As in the paper:

- source and target batches go through the student separately, so each BatchNorm layer
  normalises each domain with its own batch statistics. The teacher only ever sees target
  batches (in training mode), so its running BatchNorm statistics are target statistics;
- classification: consistency = squared difference of the softmax probabilities, summed
  over classes (the authors' code averages over the C classes instead, so their weight
  ``unsup_weight`` corresponds to ``C × consistency_weight`` here), kept only where the
  teacher's top probability is at least ``confidence_threshold`` (0.968); plus the class-balance loss, a binary cross-entropy between
  the student's mean target class probabilities and the uniform distribution, scaled by the
  fraction of confident samples;
- the prediction network (evaluation, ``predictor.pt``) is the teacher (``predict_with``).
- ``combine_batches: true`` (the reference code's ``--combine_batches``) instead passes source
  and target images through each network as one batch, so BatchNorm statistics mix both
  domains; the teacher then also sees (another augmentation of) the source batch. The
  consistency is still computed on the target images only.

Regression (e.g. a target's pixel position): the consistency is the MSE between student
and teacher outputs in normalised label units, with no confidence masking and no class
balance. Geometric augmentation would move the pixel label, so for regression it must stay
off (validated in :mod:`sim2real.adapt.config`); only photometric augmentation is used.

Option beyond the paper (off by default): ``equivariant_shift: s`` (pixels, regression of
pixel-position columns ``*_u`` / ``*_v`` only) translates each image by a random offset
``d`` uniform in ±``s`` and moves the labels with it: source labels become ``y + d``, and the
student's and the teacher's target predictions, made on differently shifted copies, are
compared after subtracting their own offsets. Position predictions must then *follow* the
image content, which a prediction that ignores the target image cannot do.

Option beyond the paper (off by default): ``fourier_beta: β`` applies Fourier domain
adaptation (FDA; Yang & Soatto, CVPR 2020) to the source images before augmentation: each
source image (with probability ``fourier_prob``) takes the low-frequency amplitude spectrum
of a random image of the current target batch, keeping its own phase
(:func:`fourier_style`). The low band is every frequency with ``|k_y|, |k_x| ≤
⌊β·min(H, W)⌋``; it carries the target's global colour, lighting and vignetting, while the
phase (edges, the object positions the labels refer to) stays the source's.

Augmentation (:func:`augment`, per image, on ``(B, 3, S, S)`` float in [0, 1]): random
affine (identity + N(0, ``affine_std``) on the 2×2 part), translation uniform in
±``translate`` pixels, optional horizontal flip, intensity scale and offset drawn per image
from ``intensity_scale`` / ``intensity_offset`` ranges, per-channel colour gain
``1 + U(±colour_gain)``, a hue rotation by ``U(±hue_shift)`` turns of the colour wheel
(in YIQ space, keeping luma), an additive smooth random RGB field (a 4×4 grid of
N(0, ``colour_field``) values, bicubically upsampled), intensity flip ``x → 1 − x`` with
probability 0.5 (``intensity_flip``), Gaussian blur with sigma ``U(0, blur_sigma)``, and Gaussian noise of
std ``noise_std``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from sim2real.adapt.config import AdaptConfig
from sim2real.adapt.methods import Method, TaskHead
from sim2real.adapt.nets import Encoder, Predictor

def shift_images(x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Translate images ``(B, C, H, W)`` by ``d`` ``(B, 2)`` = (right, down) pixels (sub-pixel, bilinear, border padding).

    A point at pixel coordinates ``(u, v)`` moves to ``(u + d[:, 0], v + d[:, 1])``.
    """
    b, _, h, w = x.shape
    theta = torch.zeros(b, 2, 3, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = -2.0 * d[:, 0] / w  # grid_sample reads input at (p - d)
    theta[:, 1, 2] = -2.0 * d[:, 1] / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _uniform(n: int, lo: float, hi: float) -> torch.Tensor:
    return torch.rand(n) * (hi - lo) + lo


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-image separable Gaussian blur; ``sigma`` ``(B,)`` in pixels (0: unchanged)."""
    radius = max(1, int(math.ceil(3.0 * float(sigma.max()))))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    s = sigma.clamp_min(1e-3).view(-1, 1)
    k = torch.exp(-0.5 * (t.view(1, -1) / s) ** 2)
    k = k / k.sum(1, keepdim=True)  # (B, K)
    b, c, h, w = x.shape
    y = x.reshape(1, b * c, h, w)
    kh = k.repeat_interleave(c, 0).view(b * c, 1, 1, -1)
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="replicate"), kh, groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="replicate"), kh.transpose(2, 3), groups=b * c)
    return y.view(b, c, h, w)


_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def _rotate_hue(x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotate the hue of images ``(B, 3, H, W)`` by ``angle`` ``(B,)`` radians: RGB → YIQ, rotate
    the (I, Q) chroma plane, back to RGB. Luma (Y) and saturation are kept; angle 0 is the identity."""
    c, s = torch.cos(angle), torch.sin(angle)
    rot = torch.zeros(len(angle), 3, 3)
    rot[:, 0, 0] = 1.0
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = c, -s, s, c
    m = torch.linalg.inv(_RGB_TO_YIQ) @ rot @ _RGB_TO_YIQ  # (B, 3, 3)
    return torch.einsum("bij,bjhw->bihw", m, x)


def augment(x: torch.Tensor, opt: dict[str, Any]) -> torch.Tensor:
    """Random augmentation of images ``(B, 3, S, S)`` float in [0, 1] (see module docstring).

    Uses torch's global RNG (saved in checkpoints, so resumed runs are bit-exact). The
    output is not clamped: intensity changes may leave [0, 1], as in the paper.
    """
    b, _, h, w = x.shape
    if opt["translate"] > 0 or opt["affine_std"] > 0 or opt["hflip"]:
        theta = torch.zeros(b, 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0
        if opt["affine_std"] > 0:
            theta[:, :, :2] += torch.randn(b, 2, 2) * opt["affine_std"]
        if opt["hflip"]:
            flip = (torch.rand(b) < 0.5).float() * -2.0 + 1.0
            theta[:, :, 0] *= flip.view(b, 1)
        if opt["translate"] > 0:  # pixels → normalised [-1, 1] coordinates
            theta[:, 0, 2] = _uniform(b, -1, 1) * opt["translate"] * 2.0 / w
            theta[:, 1, 2] = _uniform(b, -1, 1) * opt["translate"] * 2.0 / h
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    lo, hi = opt["intensity_scale"]
    if (lo, hi) != (1.0, 1.0):
        x = (x - 0.5) * _uniform(b, lo, hi).view(b, 1, 1, 1) + 0.5
    lo, hi = opt["intensity_offset"]
    if (lo, hi) != (0.0, 0.0):
        x = x + _uniform(b, lo, hi).view(b, 1, 1, 1)
    if opt["colour_gain"] > 0:
        g = opt["colour_gain"]
        x = (x - 0.5) * (1.0 + (torch.rand(b, 3, 1, 1) * 2 - 1) * g) + 0.5
    if opt["hue_shift"] > 0:  # rotate the chroma plane of YIQ by U(±hue_shift) turns of the colour wheel
        x = _rotate_hue(x, _uniform(b, -1, 1) * opt["hue_shift"] * 2.0 * math.pi)
    if opt["colour_field"] > 0:  # smooth random RGB field (uneven lighting / colour blotches), 4×4 upsampled
        field = torch.randn(b, 3, 4, 4) * opt["colour_field"]
        x = x + F.interpolate(field, size=(h, w), mode="bicubic", align_corners=False)
    if opt["intensity_flip"]:
        flip = (torch.rand(b) < 0.5).view(b, 1, 1, 1)
        x = torch.where(flip, 1.0 - x, x)
    if opt["blur_sigma"] > 0:
        x = _blur(x, torch.rand(b) * opt["blur_sigma"])
    if opt["noise_std"] > 0:
        x = x + torch.randn_like(x) * opt["noise_std"]
    return x


def fourier_style(xs: torch.Tensor, xt: torch.Tensor, beta: float, prob: float = 1.0) -> torch.Tensor:
    """FDA: source images ``(B, C, H, W)`` with the low-frequency FFT amplitude of random images of ``xt``.

    Per channel, the amplitude at integer frequencies ``|k_y| ≤ b`` and ``|k_x| ≤ b``, ``b =
    ⌊beta·min(H, W)⌋``, is replaced by that of a target image drawn uniformly from ``xt``
    ``(N, C, H, W)``; the phase is kept. Each image is translated with probability ``prob``
    (torch's global RNG). Output clamped to [0, 1].
    """
    b, _, h, w = xs.shape
    band = int(math.floor(beta * min(h, w)))
    ky = (torch.fft.fftfreq(h) * h).abs().round().view(h, 1)
    kx = (torch.fft.fftfreq(w) * w).abs().round().view(1, w)
    low = (ky <= band) & (kx <= band)  # (H, W)
    pick = torch.randint(len(xt), (b,))
    fs, ft = torch.fft.fft2(xs), torch.fft.fft2(xt[pick])
    amplitude = torch.where(low, ft.abs(), fs.abs())
    out = torch.fft.ifft2(torch.polar(amplitude, fs.angle())).real.clamp(0.0, 1.0)
    if prob < 1.0:
        out = torch.where((torch.rand(b) < prob).view(b, 1, 1, 1), out, xs)
    return out


def _bce(p: torch.Tensor, target: float) -> torch.Tensor:
    """Element-wise binary cross-entropy of probabilities ``p`` against a constant target."""
    return -(target * torch.log(p + 1e-6) + (1.0 - target) * torch.log(1.0 - p + 1e-6))


class SelfEnsembling(Method):
    """Mean-teacher self-ensembling (French et al. 2018); see the module docstring.

    Modules: ``encoder``/``head`` (student), ``teacher_encoder``/``teacher_head`` (EMA).
    One Adam optimizer (``task``) over the student's parameters.
    """

    name = "selfens"

    def __init__(self, cfg: AdaptConfig) -> None:
        super().__init__(cfg)
        net = cfg.network
        self.teacher_encoder = Encoder(net)
        self.teacher_head = TaskHead(net.feature_dim, cfg.task.out_dim, net.head_hidden)
        self.teacher_encoder.load_state_dict(self.encoder.state_dict())
        self.teacher_head.load_state_dict(self.head.state_dict())
        for p in (*self.teacher_encoder.parameters(), *self.teacher_head.parameters()):
            p.requires_grad_(False)
        self.modules.update(teacher_encoder=self.teacher_encoder, teacher_head=self.teacher_head)
        self.optimizers["task"] = self._adam([*self.encoder.parameters(), *self.head.parameters()], cfg.train.lr)
        # equivariant shift: which label column moves with a horizontal (0) / vertical (1) image shift
        cols = cfg.task.columns if cfg.task.type == "regression" else []
        self._shift_axis = torch.tensor([0 if c.endswith("_u") else 1 for c in cols], dtype=torch.long)

    def _random_shift(self, n: int) -> torch.Tensor:
        """``(n, 2)`` pixel offsets uniform in ±``equivariant_shift``."""
        return (torch.rand(n, 2) * 2.0 - 1.0) * self.cfg.options["equivariant_shift"]

    def _label_offset(self, d: torch.Tensor) -> torch.Tensor:
        """Image shift ``d`` ``(B, 2)`` → change of each pixel label column ``(B, K)``."""
        return d[:, self._shift_axis]

    def set_label_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().set_label_normalisation(mean, std)
        self.teacher_head.bias.copy_(self.head.bias)
        self.teacher_head.scale.copy_(self.head.scale)

    def predictor(self) -> Predictor:
        if self.cfg.options["predict_with"] == "student":
            return Predictor(self.encoder, self.head)
        return Predictor(self.teacher_encoder, self.teacher_head)

    @torch.no_grad()
    def update_teacher(self) -> None:
        """EMA of the student's parameters: ``θ_T ← α θ_T + (1 − α) θ_S`` (BatchNorm buffers stay the teacher's own)."""
        a = self.cfg.options["teacher_alpha"]
        for mod_t, mod_s in ((self.teacher_encoder, self.encoder), (self.teacher_head, self.head)):
            for pt, ps in zip(mod_t.parameters(), mod_s.parameters()):
                pt.mul_(a).add_(ps.detach(), alpha=1.0 - a)

    def consistency_weight(self, step: int, total: int) -> float:
        """``consistency_weight``, times the sigmoid ramp ``exp(-5 (1 - t)²)`` over the first ``rampup_fraction``."""
        opt = self.cfg.options
        n = opt["rampup_fraction"] * total
        if n <= 0 or step >= n:
            return opt["consistency_weight"]
        t = step / n
        return opt["consistency_weight"] * math.exp(-5.0 * (1.0 - t) ** 2)

    def unsupervised_loss(self, student_out: torch.Tensor, teacher_out: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Consistency (+ class balance) between raw outputs ``(B, out_dim)`` of student and teacher.

        Classification: logits; regression: normalised outputs (``head.net``, before de-normalisation).
        """
        opt = self.cfg.options
        if self.cfg.task.type != "classification":
            cons = F.mse_loss(student_out, teacher_out)
            return cons, {"loss/consistency": cons.item()}
        ps, pt = F.softmax(student_out, 1), F.softmax(teacher_out, 1)
        conf = pt.max(1).values
        mask = (conf >= opt["confidence_threshold"]).float()
        cons = (((ps - pt) ** 2).sum(1) * mask).mean()
        logs = {"loss/consistency": cons.item(), "teacher_confident": mask.mean().item()}
        loss = cons
        if opt["class_balance"] > 0:
            c = ps.shape[1]
            bal = _bce(ps.mean(0), 1.0 / c).mean() * c
            if opt["rampup_fraction"] <= 0:  # paper: with thresholding, scale by the confident fraction
                bal = bal * mask.mean()
            loss = loss + opt["class_balance"] * bal
            logs["loss/class_balance"] = bal.item()
        return loss, logs

    def _raw(self, encoder: Encoder, head: TaskHead, x: torch.Tensor) -> torch.Tensor:
        return head.net(encoder(x))

    def train_step(self, step, total, xs, ys, xt, yt):
        opt = self.cfg.options
        if opt["fourier_beta"] > 0:
            xs = fourier_style(xs, xt, opt["fourier_beta"], opt["fourier_prob"])
        xs_aug = augment(xs, opt) if opt["source_augment"] else xs
        xt_student, xt_teacher = augment(xt, opt), augment(xt, opt)
        equi = opt["equivariant_shift"] > 0
        if equi:  # shift images and move the pixel labels with them (source) / undo the shift (target)
            ds, da, db = (self._random_shift(len(x)) for x in (xs, xt, xt))
            xs_aug, ys = shift_images(xs_aug, ds), ys + self._label_offset(ds)
            xt_student, xt_teacher = shift_images(xt_student, da), shift_images(xt_teacher, db)
        n = xs.shape[0]
        w = self.consistency_weight(step, total)
        self.teacher_encoder.train(True)  # batch statistics; running stats track the batches it sees
        if opt["combine_batches"]:  # one batch of source + target: BatchNorm statistics of both domains
            out = self._raw(self.encoder, self.head, torch.cat([xs_aug, xt_student]))
            sup = self.loss(out[:n] * self.head.scale + self.head.bias, ys)
            student_t = out[n:]
            xs_teacher = augment(xs, opt) if opt["source_augment"] else xs
            with torch.no_grad():
                teacher_t = self._raw(self.teacher_encoder, self.teacher_head, torch.cat([xs_teacher, xt_teacher]))[n:]
        else:
            sup = self.loss(self.head(self.encoder(xs_aug)), ys)  # source batch alone: its own BN statistics
            # target batch alone (it still updates the student's BatchNorm running statistics); with a zero
            # consistency weight its gradient is exactly zero, so it is computed without autograd
            with torch.set_grad_enabled(w > 0):
                student_t = self._raw(self.encoder, self.head, xt_student)
            with torch.no_grad():  # the teacher only sees target batches
                teacher_t = self._raw(self.teacher_encoder, self.teacher_head, xt_teacher)
        if equi:  # both predictions back in the unshifted frame (normalised units)
            scale = self.head.scale
            student_t = student_t - self._label_offset(da) / scale
            teacher_t = teacher_t - self._label_offset(db) / scale
        unsup, logs = self.unsupervised_loss(student_t, teacher_t)
        loss = sup + w * unsup if w > 0 else sup
        self.optimizers["task"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["task"].step()
        self.update_teacher()
        return {"loss/task": sup.item(), **logs, "consistency_weight": w}
