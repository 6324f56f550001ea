"""Fitting actuator networks (:mod:`sim2real.sim.actuators.net`) to a hardware log with measured efforts.

Samples are the log's joint-state stamps ``t``; each sample's input is the position error ``q* − q``
and the velocity ``q̇`` at ``t, t−Δ, …, t−(H−1)Δ`` (joint states linearly interpolated with numpy, the
commanded position ``q*`` zero-order held: the last command stamped at or before the time), its target
the measured effort at ``t``. Samples whose history window touches a hole in either stream are dropped.
The last ``val_fraction`` of the log (by time) is held out; the net is trained on the rest with Adam
(seeded, minibatches, cosine learning-rate decay) on standardised inputs and outputs. A linear PD
``τ ≈ kp·e + kd·(−q̇)`` fitted by least squares per joint on the same training samples is the baseline
the validation RMSE is compared against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from sim2real.errors import ConfigError, LogError
from sim2real.sim.actuators.net import ActuatorNetModel
from sim2real.sysid.align import finite_difference_velocity, gap_free_pieces
from sim2real.sysid.logs import HardwareLog


@dataclass
class ActuatorFitConfig:
    """Settings of one fit.

    :param joints: robot.yaml joint names to fit (default: every joint of the log)
    :param history: ``H`` samples per input signal (≥ 1)
    :param spacing_s: ``Δ`` between history samples, s (> 0)
    :param hidden: hidden layer widths
    :param per_joint: one net per joint (default); False shares one net (identical drives)
    :param epochs: passes over the training samples
    :param batch_size: samples per joint in one Adam step
    :param lr: Adam learning rate (cosine-decayed to 0 over the run)
    :param seed: seeds weight init and minibatch order
    :param val_fraction: trailing fraction of the log held out for validation, in (0, 1)
    """

    joints: Sequence[str] | None = None
    history: int = 3
    spacing_s: float = 0.01
    hidden: tuple[int, ...] = (32, 32, 32)
    per_joint: bool = True
    epochs: int = 60
    batch_size: int = 128
    lr: float = 3e-3
    seed: int = 0
    val_fraction: float = 0.2

    def validate(self) -> None:
        """:raises ConfigError: a setting out of range, naming the option."""
        checks = [("--history", self.history >= 1, f"expected an integer >= 1, got {self.history}"),
                  ("--spacing-s", self.spacing_s > 0 and math.isfinite(self.spacing_s),
                   f"expected a time > 0 s, got {self.spacing_s}"),
                  ("--epochs", self.epochs >= 1, f"expected an integer >= 1, got {self.epochs}"),
                  ("--batch-size", self.batch_size >= 1, f"expected an integer >= 1, got {self.batch_size}"),
                  ("--lr", self.lr > 0, f"expected a rate > 0, got {self.lr}"),
                  ("--val-fraction", 0 < self.val_fraction < 1, f"expected a fraction in (0, 1), got {self.val_fraction}"),
                  ("--hidden", len(self.hidden) >= 1 and all(h >= 1 for h in self.hidden),
                   f"expected widths >= 1, got {list(self.hidden)}")]
        for opt, ok, msg in checks:
            if not ok:
                raise ConfigError(msg, path=(opt,))


@dataclass
class Samples:
    """Training rows of one log.

    :param t: ``(N,)`` sample times, s
    :param x: ``(n_joints, N, 2H)`` inputs: errors (rad) then velocities (rad/s), newest first
    :param tau: ``(n_joints, N)`` measured efforts, N·m
    """

    t: np.ndarray
    x: np.ndarray
    tau: np.ndarray


@dataclass
class JointReport:
    """Validation numbers of one joint (torques in N·m, gains in N·m/rad and N·m·s/rad)."""

    joint: str
    n_train: int
    n_val: int
    tau_rms: float
    net_rmse: float
    pd_rmse: float
    kp: float
    kd: float


@dataclass
class ActuatorFitResult:
    """A fitted net (numpy), the per-joint validation report, the torch module it came from and the
    samples (``samples.t[split:]`` are the validation part)."""

    model: ActuatorNetModel
    joints: list[JointReport]
    net: Any = None  # the trained torch module (ActuatorNet)
    samples: Samples | None = None
    split: int = 0  # first validation sample index


def build_samples(log: HardwareLog, joints: Sequence[int], history: int, spacing_s: float) -> Samples:
    """Input/target rows at the joint-state stamps of ``log`` for the joint columns ``joints``.

    :raises LogError: no joint states, commands or efforts; commands that are not positions; no stamp
        with a full history window inside a gap-free stretch
    """
    js, cmd = log.require_joint_states(), log.require_command()
    if cmd.kind != "position":
        raise LogError(f"{log.source}: topic {cmd.topic}: {cmd.kind} commands; an actuator net maps position "
                       "errors to torque and needs position commands")
    cols = list(joints)
    tau_all = js.effort[:, cols]
    if np.isnan(tau_all).all():
        raise LogError(f"{log.source}: topic {js.topic}: no joint efforts (JointState.effort / tau_<joint> "
                       "columns); an actuator net is fitted to measured torques")
    q = js.position[:, cols]
    qd = js.velocity[:, cols]
    if np.isnan(qd).any():
        qd = finite_difference_velocity(js.t, q)
    cmd_dt = float(np.median(np.diff(cmd.t))) if len(cmd) > 1 else spacing_s
    _, pieces = gap_free_pieces(js.t, cmd.t, cmd_dt)
    window = (history - 1) * spacing_s
    t = js.t
    keep = ~np.isnan(tau_all).any(axis=1)
    inside = np.zeros(t.size, dtype=bool)
    for a, b in pieces:
        inside |= (t - window >= a - 1e-12) & (t <= b + 1e-12)
    keep &= inside
    if not keep.any():
        raise LogError(f"{log.source}: no joint-state sample with efforts and a full {window:.3f} s history "
                       f"inside a gap-free stretch of states and commands ({len(pieces)} stretch(es))")
    t = t[keep]
    when = t[:, None] - spacing_s * np.arange(history)[None, :]  # (N, H)
    k = np.searchsorted(cmd.t, when, side="right") - 1
    target = cmd.values[:, cols][np.maximum(k, 0)]  # (N, H, n)
    q_at = np.stack([np.interp(when, js.t, q[:, j]) for j in range(len(cols))], axis=-1)
    v_at = np.stack([np.interp(when, js.t, qd[:, j]) for j in range(len(cols))], axis=-1)
    x = np.concatenate([target - q_at, v_at], axis=1)  # (N, 2H, n)
    return Samples(t=t, x=np.ascontiguousarray(x.transpose(2, 0, 1)), tau=np.ascontiguousarray(tau_all[keep].T))


def fit_pd(x: np.ndarray, tau: np.ndarray, history: int) -> tuple[float, float]:
    """Least-squares ``(kp, kd)`` of ``τ ≈ kp·e(t) + kd·(−q̇(t))`` for one joint's rows ``x`` ``(N, 2H)``."""
    a = np.stack([x[:, 0], -x[:, history]], axis=1)
    (kp, kd), *_ = np.linalg.lstsq(a, tau, rcond=None)
    return float(kp), float(kd)


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def make_net(n_nets: int, n_in: int, hidden: Sequence[int], generator: Any) -> Any:
    """The torch MLP (:class:`ActuatorNet`), initialised like ``nn.Linear`` from ``generator``."""
    import torch

    class ActuatorNet(torch.nn.Module):
        """``n_nets`` stacked MLPs ``2H → hidden… → 1`` with softsign; input ``(n_nets, B, 2H)``, output
        ``(n_nets, B)``, both standardised."""

        def __init__(self) -> None:
            super().__init__()
            sizes = [n_in, *hidden, 1]
            self.weights = torch.nn.ParameterList()
            self.biases = torch.nn.ParameterList()
            for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
                bound = 1.0 / math.sqrt(fan_in)
                w = (torch.rand(n_nets, fan_in, fan_out, generator=generator) * 2 - 1) * bound
                b = (torch.rand(n_nets, 1, fan_out, generator=generator) * 2 - 1) * bound
                self.weights.append(torch.nn.Parameter(w))
                self.biases.append(torch.nn.Parameter(b))

        def forward(self, x: Any) -> Any:
            h = x
            last = len(self.weights) - 1
            for i, (w, b) in enumerate(zip(self.weights, self.biases)):
                h = torch.baddbmm(b, h, w)
                if i < last:
                    h = torch.nn.functional.softsign(h)
            return h[..., 0]

    return ActuatorNet()


def _train(net: Any, xs: Any, ys: Any, epochs: Any, batch: int, steps_per_epoch: int, lr: float,
           gen: Any) -> None:
    """Adam on the mean squared standardised error, minibatches drawn from ``gen``, cosine-decayed rate.

    :param xs: ``(n_nets, rows, 2H)`` standardised inputs; ``ys``: ``(n_nets, rows)`` standardised torques
    :param epochs: iterable over epochs (a tqdm bar shows the mean loss)
    """
    import torch

    rows = xs.shape[1]
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=len(epochs) * steps_per_epoch)
    for _ in epochs:
        order = torch.randperm(rows, generator=gen)
        total = 0.0
        for k in range(steps_per_epoch):
            idx = order[k * batch:(k + 1) * batch]
            loss = torch.mean((net(xs[:, idx]) - ys[:, idx]) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        if hasattr(epochs, "set_postfix"):
            epochs.set_postfix(loss=f"{total / steps_per_epoch:.4f}")


def fit_actuator_net(log: HardwareLog, config: ActuatorFitConfig, *, robot: str = "",
                     progress: bool = False) -> ActuatorFitResult:
    """Fit a net and the PD baseline to ``log``; the returned model carries its metadata.

    :raises ConfigError: bad settings or joint names
    :raises LogError: see :func:`build_samples`; too few samples for a train/validation split
    """
    import torch

    config.validate()
    names = list(config.joints) if config.joints else list(log.joint_names)
    unknown = [j for j in names if j not in log.joint_names]
    if unknown:
        raise ConfigError(f"joints {unknown} are not in the log; it has {list(log.joint_names)}", path=("--joints",))
    if len(set(names)) != len(names):
        raise ConfigError(f"joint listed twice in {names}", path=("--joints",))
    H, dt = int(config.history), float(config.spacing_s)
    s = build_samples(log, [log.joint_names.index(j) for j in names], H, dt)
    t_split = s.t[0] + (1.0 - config.val_fraction) * (s.t[-1] - s.t[0])
    split = int(np.searchsorted(s.t, t_split))
    if split < 10 or s.t.size - split < 10:
        raise LogError(f"{log.source}: {s.t.size} usable samples ({s.t[-1] - s.t[0]:.2f} s): too few for a "
                       f"train/validation split at {config.val_fraction:.2f} (need 10 on each side)")
    n = len(names)
    n_nets = n if config.per_joint else 1
    x_tr, y_tr = s.x[:, :split], s.tau[:, :split]
    pooled_x = x_tr.reshape(n_nets, -1, 2 * H)
    pooled_y = y_tr.reshape(n_nets, -1)
    in_mean, in_std = pooled_x.mean(axis=1), pooled_x.std(axis=1)
    in_std = np.where(in_std > 1e-9, in_std, 1.0)
    out_mean, out_std = pooled_y.mean(axis=1), pooled_y.std(axis=1)
    out_std = np.where(out_std > 1e-9, out_std, 1.0)

    gen = torch.Generator().manual_seed(int(config.seed))
    net = make_net(n_nets, 2 * H, config.hidden, gen)
    xs = torch.as_tensor((x_tr.reshape(n_nets, -1, 2 * H) - in_mean[:, None]) / in_std[:, None], dtype=torch.float32)
    ys = torch.as_tensor((y_tr.reshape(n_nets, -1) - out_mean[:, None]) / out_std[:, None], dtype=torch.float32)
    rows = xs.shape[1]
    batch = min(rows, int(config.batch_size) * (n // n_nets))
    steps_per_epoch = max(1, rows // batch)
    from tqdm.auto import tqdm

    bar = tqdm(range(config.epochs), desc="actuator net", unit="epoch", disable=not progress, dynamic_ncols=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 32-wide MLP is fastest on one thread; restored below
    try:
        _train(net, xs, ys, bar, batch, steps_per_epoch, config.lr, gen)
    finally:
        torch.set_num_threads(threads)

    model = ActuatorNetModel(
        joints=names, history=H, spacing_s=dt,
        weights=[w.detach().double().numpy().copy() for w in net.weights],
        biases=[b.detach().double().numpy().copy() for b in net.biases],
        in_mean=in_mean, in_std=in_std, out_mean=out_mean, out_std=out_std)
    pred = model.predict(s.x[:, split:])  # the numpy evaluator is what simulation runs
    reports = []
    for j, name in enumerate(names):
        kp, kd = fit_pd(s.x[j, :split], s.tau[j, :split], H)
        xv, yv = s.x[j, split:], s.tau[j, split:]
        pd_pred = kp * xv[:, 0] - kd * xv[:, H]
        reports.append(JointReport(joint=name, n_train=split, n_val=int(s.t.size - split),
                                   tau_rms=float(np.sqrt(np.mean(yv ** 2))), net_rmse=rmse(pred[j], yv),
                                   pd_rmse=rmse(pd_pred, yv), kp=kp, kd=kd))
    model.metadata = {
        "robot": robot, "source": str(log.source), "joints": names, "history": H, "spacing_s": dt,
        "hidden": [int(h) for h in config.hidden], "per_joint": bool(config.per_joint), "epochs": int(config.epochs),
        "batch_size": int(config.batch_size), "lr": float(config.lr), "seed": int(config.seed),
        "val_fraction": float(config.val_fraction), "t_split_s": float(t_split),
        "state_period_s": float(np.median(np.diff(log.require_joint_states().t))),
        "input": "position error q*-q (rad) at t, t-spacing, ...; then joint velocity (rad/s), same times",
        "output": "joint torque (N m)",
        "validation": {r.joint: {"net_rmse": r.net_rmse, "pd_rmse": r.pd_rmse, "tau_rms": r.tau_rms,
                                 "pd_kp": r.kp, "pd_kd": r.kd, "n_train": r.n_train, "n_val": r.n_val}
                       for r in reports},
    }
    return ActuatorFitResult(model=model, joints=reports, net=net, samples=s, split=split)
