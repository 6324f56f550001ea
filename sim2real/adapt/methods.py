"""Adaptation methods: one class per method, each a set of networks + optimizers + a train step.

Every method exposes ``modules`` and ``optimizers`` (for checkpoints), ``train_step``
(one update on a source batch ``xs, ys`` and a target batch ``xt, yt``; images are
``(B, 3, S, S)`` float in [0, 1], ``ys`` class indices ``(B,)`` or regression targets
``(B, K)``), ``predictor()`` (the network evaluated on target images) and, for the
pixel-level methods, ``translate(xs)`` (source → target style).
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from sim2real.adapt.config import AdaptConfig
from sim2real.adapt.nets import (
    DomainClassifier, Encoder, ImageDiscriminator, ImageGenerator, MLPHead, Predictor, dann_lambda, grad_reverse,
)


class TaskHead(MLPHead):
    """:class:`MLPHead` whose output is de-normalised: ``y = net(f) * scale + bias`` (regression units)."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int) -> None:
        super().__init__(in_dim, out_dim, hidden)
        self.register_buffer("scale", torch.ones(out_dim))
        self.register_buffer("bias", torch.zeros(out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) * self.scale + self.bias


def task_loss_fn(cfg: AdaptConfig, head: TaskHead) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Cross-entropy (classification) or MSE on normalised targets (regression)."""
    if cfg.task.type == "classification":
        return lambda out, y: F.cross_entropy(out, y.long().view(-1))
    return lambda out, y: F.mse_loss((out - head.bias) / head.scale, (y - head.bias) / head.scale)


class Method:
    """Base class: builds a task network (encoder + head) and its optimizer."""

    name = "base"
    needs_source_labels = True
    needs_target = True
    uses_target_labels = False
    is_pixel_level = False

    def __init__(self, cfg: AdaptConfig) -> None:
        self.cfg = cfg
        net = cfg.network
        self.encoder = Encoder(net)
        self.head = TaskHead(net.feature_dim, cfg.task.out_dim, net.head_hidden)
        self.loss = task_loss_fn(cfg, self.head)
        self.modules: dict[str, nn.Module] = {"encoder": self.encoder, "head": self.head}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    def _adam(self, params: list[nn.Parameter], lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Adam:
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=self.cfg.train.weight_decay)

    def set_label_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Regression only: targets are learnt as ``(y - mean) / std``."""
        self.head.bias.copy_(mean)
        self.head.scale.copy_(std.clamp_min(1e-6))

    def train(self, mode: bool = True) -> None:
        for m in self.modules.values():
            m.train(mode)

    def predictor(self) -> Predictor:
        return Predictor(self.encoder, self.head)

    def translate(self, xs: torch.Tensor) -> torch.Tensor | None:
        return None

    def finalize(self, xt: torch.Tensor | None) -> None:
        """Called once after the last step with the target training images ``(N, 3, S, S)`` uint8.

        With ``options.adabn`` the predictor's BatchNorm statistics are re-estimated on the
        target images (AdaBN, Li et al. 2016), so evaluation normalises target features
        with target statistics.
        """
        if self.cfg.options.get("adabn") and xt is not None:
            adapt_batchnorm(self.predictor().encoder, xt)

    def train_step(self, step: int, total: int, xs: torch.Tensor, ys: torch.Tensor,
                   xt: torch.Tensor | None, yt: torch.Tensor | None) -> dict[str, float]:
        raise NotImplementedError


@torch.no_grad()
def adapt_batchnorm(module: nn.Module, x: torch.Tensor, batch: int = 256) -> None:
    """Reset and re-estimate every BatchNorm running mean/var of ``module`` on images ``x``.

    :param x: ``(N, 3, S, S)`` uint8 images; statistics are the average over batches of
        ``batch`` images (cumulative average, ``momentum=None``). Weights are not changed.
    """
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    was_training = module.training
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    module.train(True)
    for i in range(0, len(x), batch):
        module(x[i : i + batch].float().div(255.0))
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    module.train(was_training)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean Shannon entropy (nats) of the softmax of ``logits`` ``(B, C)``."""
    logp = F.log_softmax(logits, dim=1)
    return -(logp.exp() * logp).sum(1).mean()


class SourceOnly(Method):
    """Encoder + head trained on labelled source images only (the lower baseline)."""

    name = "source_only"
    needs_target = False

    def __init__(self, cfg: AdaptConfig) -> None:
        super().__init__(cfg)
        self.optimizers["task"] = self._adam([*self.encoder.parameters(), *self.head.parameters()], cfg.train.lr)

    def train_step(self, step, total, xs, ys, xt, yt):
        loss = self.loss(self.head(self.encoder(xs)), ys)
        self.optimizers["task"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["task"].step()
        return {"loss/task": loss.item()}


class Oracle(SourceOnly):
    """Encoder + head trained on labelled *target* images (the upper baseline)."""

    name = "oracle"
    needs_source_labels = False
    needs_target = True
    uses_target_labels = True

    def train_step(self, step, total, xs, ys, xt, yt):
        return super().train_step(step, total, xt, yt, None, None)


class DANN(Method):
    """Domain-adversarial training (Ganin & Lempitsky 2015).

    A domain classifier sees the shared features through a gradient-reversal layer whose
    weight ramps as ``λ = 2 / (1 + exp(-γ p)) - 1``; the learning rate anneals as
    ``lr / (1 + 10 p) ** 0.75`` (``lr_anneal``), ``p`` = training progress in [0, 1].

    Documented options beyond the paper (all off by default): ``separate_bn`` passes the
    source and target batches through the encoder separately, so BatchNorm normalises each
    domain with its own batch statistics (domain-specific normalisation); ``adabn``
    re-estimates the BatchNorm statistics on target images after training (see
    :meth:`Method.finalize`); ``entropy_weight`` adds that weight times the mean entropy of
    the task head's predictions on target images (classification only).
    """

    name = "dann"

    def __init__(self, cfg: AdaptConfig) -> None:
        super().__init__(cfg)
        self.domain = DomainClassifier(cfg.network.feature_dim, cfg.network.disc_hidden)
        self.modules["domain"] = self.domain
        params = [*self.encoder.parameters(), *self.head.parameters(), *self.domain.parameters()]
        self.optimizers["all"] = self._adam(params, cfg.train.lr)

    def train_step(self, step, total, xs, ys, xt, yt):
        opt = self.cfg.options
        p = step / max(1, total)
        lam = dann_lambda(p, opt["gamma"])
        if opt["lr_anneal"]:
            for g in self.optimizers["all"].param_groups:
                g["lr"] = self.cfg.train.lr / (1.0 + 10.0 * p) ** 0.75
        n = xs.shape[0]
        if opt["separate_bn"]:
            feats = torch.cat([self.encoder(xs), self.encoder(xt)])
        else:
            feats = self.encoder(torch.cat([xs, xt]))
        task = self.loss(self.head(feats[:n]), ys)
        logs: dict[str, float] = {}
        if opt["entropy_weight"] > 0:
            ent = entropy(self.head(feats[n:]))
            task = task + opt["entropy_weight"] * ent
            logs["loss/target_entropy"] = ent.item()
        dom_logit = self.domain(grad_reverse(feats, lam))
        dom_label = torch.cat([torch.zeros(n), torch.ones(xt.shape[0])])
        dom = F.binary_cross_entropy_with_logits(dom_logit, dom_label)
        loss = task + opt["domain_weight"] * dom
        self.optimizers["all"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["all"].step()
        acc = ((dom_logit > 0).float() == dom_label).float().mean()
        return {"loss/task": task.item(), "loss/domain": dom.item(), "domain_acc": acc.item(), "lambda": lam, **logs}


class ADDA(Method):
    """Adversarial discriminative domain adaptation (Tzeng et al. 2017).

    Phase 1 (``pretrain_fraction`` of the steps): source encoder + head on labelled source.
    Phase 2: a target encoder, initialised from the source encoder, is trained so a
    feature discriminator cannot tell its target features from the (frozen) source
    encoder's source features; the head stays fixed. Prediction: target encoder + head.
    """

    name = "adda"

    def __init__(self, cfg: AdaptConfig) -> None:
        super().__init__(cfg)
        self.target_encoder = Encoder(cfg.network)
        self.disc = DomainClassifier(cfg.network.feature_dim, cfg.network.disc_hidden)
        self.modules.update(target_encoder=self.target_encoder, disc=self.disc)
        lr = cfg.options["adversarial_lr"]
        self.optimizers["source"] = self._adam([*self.encoder.parameters(), *self.head.parameters()], cfg.train.lr)
        self.optimizers["target"] = self._adam(list(self.target_encoder.parameters()), lr, (0.5, 0.999))
        self.optimizers["disc"] = self._adam(list(self.disc.parameters()), lr, (0.5, 0.999))
        self.phase2_start = int(round(cfg.options["pretrain_fraction"] * cfg.train.steps))

    def predictor(self) -> Predictor:
        return Predictor(self.target_encoder, self.head)

    def train_step(self, step, total, xs, ys, xt, yt):
        if step < self.phase2_start:
            loss = self.loss(self.head(self.encoder(xs)), ys)
            self.optimizers["source"].zero_grad(set_to_none=True)
            loss.backward()
            self.optimizers["source"].step()
            return {"loss/task": loss.item()}
        if step == self.phase2_start:
            self.target_encoder.load_state_dict(self.encoder.state_dict())
        self.encoder.eval()
        with torch.no_grad():
            fs = self.encoder(xs)
        out: dict[str, float] = {}
        for _ in range(self.cfg.options["disc_steps"]):
            ft = self.target_encoder(xt).detach()
            logits = self.disc(torch.cat([fs, ft]))
            labels = torch.cat([torch.ones(len(fs)), torch.zeros(len(ft))])
            d_loss = F.binary_cross_entropy_with_logits(logits, labels)
            self.optimizers["disc"].zero_grad(set_to_none=True)
            d_loss.backward()
            self.optimizers["disc"].step()
            out["loss/disc"] = d_loss.item()
            out["disc_acc"] = ((logits > 0).float() == labels).float().mean().item()
        g_logits = self.disc(self.target_encoder(xt))
        g_loss = F.binary_cross_entropy_with_logits(g_logits, torch.ones(len(g_logits)))  # inverted labels
        self.optimizers["target"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizers["target"].step()
        out["loss/target_encoder"] = g_loss.item()
        return out


def _pmse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise mean squared error (Bousmalis et al.): MSE minus squared mean difference, per image."""
    d = (a - b).flatten(1)
    return (d.pow(2).mean(1) - d.mean(1).pow(2)).mean()


class PixelDA(Method):
    """Pixel-level domain adaptation (Bousmalis et al. 2017).

    Generator ``G(x_s, z)`` makes target-style images; a discriminator tells real target
    images from generated ones; the task network (encoder + head) is trained on generated
    and source images; a PMSE content-similarity loss keeps ``G(x_s)`` close to ``x_s``
    up to a global shift. G and the task network minimise their losses jointly.
    """

    name = "pixelda"
    is_pixel_level = True

    def __init__(self, cfg: AdaptConfig) -> None:
        super().__init__(cfg)
        net, opt = cfg.network, cfg.options
        self.gen = ImageGenerator(net.image_size, net.gen_width, net.gen_blocks, net.noise_dim)
        self.disc = ImageDiscriminator(net.gen_width)
        self.modules.update(generator=self.gen, discriminator=self.disc)
        self.optimizers["disc"] = self._adam(list(self.disc.parameters()), opt["disc_lr"], (0.5, 0.999))
        self.optimizers["gen"] = self._adam(list(self.gen.parameters()), opt["gen_lr"], (0.5, 0.999))
        self.optimizers["task"] = self._adam([*self.encoder.parameters(), *self.head.parameters()], cfg.train.lr)

    def _noise(self, n: int) -> torch.Tensor:
        return torch.rand(n, self.cfg.network.noise_dim) * 2.0 - 1.0

    def translate(self, xs: torch.Tensor) -> torch.Tensor:
        return self.gen(xs, self._noise(xs.shape[0]))

    def train_step(self, step, total, xs, ys, xt, yt):
        opt = self.cfg.options
        fake = self.gen(xs, self._noise(xs.shape[0]))
        d_real, d_fake = self.disc(xt), self.disc(fake.detach())
        d_loss = 0.5 * (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                        + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        self.optimizers["disc"].zero_grad(set_to_none=True)
        d_loss.backward()
        self.optimizers["disc"].step()

        g_logits = self.disc(fake)
        adv = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))
        task_fake = self.loss(self.head(self.encoder(fake)), ys)
        task_src = self.loss(self.head(self.encoder(xs)), ys) if opt["source_task_weight"] > 0 else torch.zeros(())
        content = _pmse(fake, xs)
        loss = (opt["adversarial_weight"] * adv + opt["task_weight"] * task_fake
                + opt["source_task_weight"] * task_src + opt["content_weight"] * content)
        self.optimizers["gen"].zero_grad(set_to_none=True)
        self.optimizers["task"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["gen"].step()
        self.optimizers["task"].step()
        return {"loss/disc": d_loss.item(), "loss/adversarial": adv.item(), "loss/task": task_fake.item(),
                "loss/task_source": task_src.item(), "loss/content": content.item()}


class CycleGAN(Method):
    """Unpaired translation (Zhu et al. 2017): ``G_st``, ``G_ts``, ``D_s``, ``D_t``, LSGAN + L1 cycle loss.

    When source labels exist, a task network is trained on translated source images
    ``G_st(x_s)`` (and, weighted by ``source_task_weight``, on source images) so the
    report can score it on real target images; without labels only the translator trains.

    Option beyond the paper (off by default): ``semantic_weight > 0`` adds CyCADA's
    semantic-consistency loss (Hoffman et al. 2018). For the first
    ``semantic_pretrain_fraction`` of the steps only a separate source task network
    ``f_s`` (encoder + head) trains, on labelled source images; it is then frozen (eval
    mode) and the generators also minimise ``semantic_weight × [L(f_s(G_st(x_s)), f_s(x_s))
    + L(f_s(G_ts(x_t)), f_s(x_t))]``: cross-entropy to ``f_s``'s arg-max label
    (classification) or MSE on normalised outputs (regression). Translation must not
    change what ``f_s`` sees (e.g. a small target must not be washed out).
    """

    name = "cyclegan"
    is_pixel_level = True
    needs_source_labels = False

    def __init__(self, cfg: AdaptConfig) -> None:
        super().__init__(cfg)
        net, opt = cfg.network, cfg.options
        self.g_st = ImageGenerator(net.image_size, net.gen_width, net.gen_blocks)
        self.g_ts = ImageGenerator(net.image_size, net.gen_width, net.gen_blocks)
        self.d_s, self.d_t = ImageDiscriminator(net.gen_width), ImageDiscriminator(net.gen_width)
        self.modules.update(g_st=self.g_st, g_ts=self.g_ts, d_s=self.d_s, d_t=self.d_t)
        gen_params = [*self.g_st.parameters(), *self.g_ts.parameters()]
        self.optimizers["gen"] = self._adam(gen_params, opt["gen_lr"], (0.5, 0.999))
        self.optimizers["disc"] = self._adam([*self.d_s.parameters(), *self.d_t.parameters()], opt["disc_lr"], (0.5, 0.999))
        self.optimizers["task"] = self._adam([*self.encoder.parameters(), *self.head.parameters()], cfg.train.lr)
        self.semantic = opt["semantic_weight"] > 0
        if self.semantic:
            self.sem_encoder = Encoder(net)
            self.sem_head = TaskHead(net.feature_dim, cfg.task.out_dim, net.head_hidden)
            self.modules.update(semantic_encoder=self.sem_encoder, semantic_head=self.sem_head)
            self.optimizers["semantic"] = self._adam([*self.sem_encoder.parameters(), *self.sem_head.parameters()],
                                                     cfg.train.lr)

    def set_label_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().set_label_normalisation(mean, std)
        if self.semantic:
            self.sem_head.bias.copy_(self.head.bias)
            self.sem_head.scale.copy_(self.head.scale)

    def translate(self, xs: torch.Tensor) -> torch.Tensor:
        return self.g_st(xs)

    def _semantic_net(self, x: torch.Tensor) -> torch.Tensor:
        """Frozen source task network ``f_s``: outputs ``(B, out_dim)`` (normalised for regression)."""
        return self.sem_head.net(self.sem_encoder(x))

    def semantic_loss(self, x: torch.Tensor, translated: torch.Tensor) -> torch.Tensor:
        """CyCADA semantic consistency of ``translated`` w.r.t. ``x`` under the frozen ``f_s``."""
        with torch.no_grad():
            ref = self._semantic_net(x)
        out = self._semantic_net(translated)
        if self.cfg.task.type == "classification":
            return F.cross_entropy(out, ref.argmax(1))
        return F.mse_loss(out, ref)

    def semantic_pretrain_steps(self, total: int) -> int:
        return int(round(self.cfg.options["semantic_pretrain_fraction"] * total)) if self.semantic else 0

    def train_step(self, step, total, xs, ys, xt, yt):
        opt = self.cfg.options
        if self.semantic:
            if ys is None:
                raise ValueError("cyclegan semantic_weight > 0 needs source labels")
            if step < self.semantic_pretrain_steps(total):  # phase 1: source task network f_s only
                self.sem_encoder.train(True)
                loss = self.loss(self.sem_head(self.sem_encoder(xs)), ys)
                self.optimizers["semantic"].zero_grad(set_to_none=True)
                loss.backward()
                self.optimizers["semantic"].step()
                return {"loss/semantic_pretrain": loss.item()}
            self.sem_encoder.eval()
            self.sem_head.eval()
            for prm in (*self.sem_encoder.parameters(), *self.sem_head.parameters()):
                prm.requires_grad_(False)
        fake_t, fake_s = self.g_st(xs), self.g_ts(xt)
        p_t, p_s = self.d_t(fake_t), self.d_s(fake_s)
        adv = F.mse_loss(p_t, torch.ones_like(p_t)) + F.mse_loss(p_s, torch.ones_like(p_s))
        cycle = F.l1_loss(self.g_ts(fake_t), xs) + F.l1_loss(self.g_st(fake_s), xt)
        g_loss = adv + opt["cycle_weight"] * cycle
        sem = None
        if self.semantic:
            sem = self.semantic_loss(xs, fake_t) + self.semantic_loss(xt, fake_s)
            g_loss = g_loss + opt["semantic_weight"] * sem
        if opt["identity_weight"] > 0:
            g_loss = g_loss + opt["identity_weight"] * (F.l1_loss(self.g_st(xt), xt) + F.l1_loss(self.g_ts(xs), xs))
        self.optimizers["gen"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizers["gen"].step()

        d_loss = torch.zeros(())
        for d, real, fake in ((self.d_t, xt, fake_t), (self.d_s, xs, fake_s)):
            pr, pf = d(real), d(fake.detach())
            d_loss = d_loss + 0.5 * (F.mse_loss(pr, torch.ones_like(pr)) + F.mse_loss(pf, torch.zeros_like(pf)))
        self.optimizers["disc"].zero_grad(set_to_none=True)
        d_loss.backward()
        self.optimizers["disc"].step()

        out = {"loss/adversarial": adv.item(), "loss/cycle": cycle.item(), "loss/disc": d_loss.item()}
        if sem is not None:
            out["loss/semantic"] = sem.item()
        if ys is not None:
            task = self.loss(self.head(self.encoder(fake_t.detach())), ys)
            if opt["source_task_weight"] > 0:
                task = task + opt["source_task_weight"] * self.loss(self.head(self.encoder(xs)), ys)
            self.optimizers["task"].zero_grad(set_to_none=True)
            task.backward()
            self.optimizers["task"].step()
            out["loss/task"] = task.item()
        return out


METHOD_CLASSES: dict[str, type[Method]] = {
    m.name: m for m in (SourceOnly, Oracle, DANN, ADDA, PixelDA, CycleGAN)
}


def make_method(cfg: AdaptConfig) -> Method:
    """Instantiate the method named by ``cfg.method``."""
    if cfg.method == "selfens" and "selfens" not in METHOD_CLASSES:  # own module; it imports this one
        from sim2real.adapt.selfens import SelfEnsembling

        METHOD_CLASSES["selfens"] = SelfEnsembling
    return METHOD_CLASSES[cfg.method](cfg)


def clone_predictor(method: Method) -> Predictor:
    """Deep copy of the method's predictor in eval mode (for export / evaluation)."""
    pred = copy.deepcopy(method.predictor())
    pred.eval()
    return pred
