"""Actuator networks (Hwangbo et al. 2019): an MLP from a short history of joint position errors and
velocities to the joint torque, evaluated with numpy at the physics rate.

A net's input for one joint is ``[e(t), e(t−Δ), …, e(t−(H−1)Δ), q̇(t), q̇(t−Δ), …, q̇(t−(H−1)Δ)]`` with
``e = q* − q`` (rad) the position error against the commanded position ``q*``, ``q̇`` the measured joint
velocity (rad/s), ``H`` the history length and ``Δ`` the history spacing (s); the output is the joint
torque (N·m). Inputs are standardised with the training set's mean/std and the output is scaled back the
same way, so the stored weights act on normalised values. Hidden layers use softsign ``x / (1 + |x|)``.

One net is shared by every joint of the group (``per_joint = False``, the paper's setting for identical
drives), or each joint has its own net (``per_joint = True``); both are stored as stacked arrays with a
leading ``n_nets`` axis (1 or ``n_joints``).

The file (``.pt``, written by ``sim2real actuator fit``) is a ``torch.save`` dict of tensors and plain
metadata; :func:`load` reads it once with torch and returns an :class:`ActuatorNetModel` holding numpy
arrays only, so the per-step evaluation is a few small matmuls. :class:`ActuatorNetActuator` keeps the
histories and samples them at the spacing ``Δ`` from the physics-rate stream.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sim2real.errors import CheckpointError

FORMAT = "sim2real-actuator-net/1"


def softsign(x: np.ndarray) -> np.ndarray:
    """Elementwise ``x / (1 + |x|)``."""
    return x / (1.0 + np.abs(x))


@dataclass
class ActuatorNetModel:
    """A fitted actuator net as numpy arrays.

    :param joints: joint names (robot.yaml names) the net drives, in input/output order
    :param history: ``H``, samples per input signal
    :param spacing_s: ``Δ``, time between history samples, s
    :param weights: per layer ``(n_nets, fan_in, fan_out)``; the first layer has ``fan_in = 2H``, the last
        ``fan_out = 1``
    :param biases: per layer ``(n_nets, 1, fan_out)``
    :param in_mean, in_std: ``(n_nets, 2H)`` input standardisation (error in rad, velocity in rad/s)
    :param out_mean, out_std: ``(n_nets,)`` output scale, N·m
    :param metadata: robot, fit settings and validation numbers (plain JSON-able values)
    """

    joints: list[str]
    history: int
    spacing_s: float
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    in_mean: np.ndarray
    in_std: np.ndarray
    out_mean: np.ndarray
    out_std: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n_nets = self.in_mean.shape[0]
        if n_nets not in (1, len(self.joints)):
            raise CheckpointError(f"actuator net has {n_nets} nets for {len(self.joints)} joints "
                                  "(expected 1 shared net or one per joint)")
        if self.in_mean.shape[1] != 2 * self.history or self.weights[0].shape[1] != 2 * self.history:
            raise CheckpointError(f"actuator net input size {self.weights[0].shape[1]} does not match "
                                  f"history {self.history} (expected {2 * self.history})")
        # Fold the input standardisation into the first layer and the output scale into the last, so
        # evaluation is matmuls and softsigns only.
        inv = 1.0 / self.in_std
        w0 = self.weights[0] * inv[:, :, None]
        b0 = self.biases[0] - np.einsum("ni,nio->no", self.in_mean * inv, self.weights[0])[:, None, :]
        self._w = [w0] + [np.ascontiguousarray(w) for w in self.weights[1:]]
        self._b = [b0] + [np.ascontiguousarray(b) for b in self.biases[1:]]
        self._w[-1] = self._w[-1] * self.out_std[:, None, None]
        self._b[-1] = self._b[-1] * self.out_std[:, None, None] + self.out_mean[:, None, None]
        self._w2 = [np.ascontiguousarray(w[0]) for w in self._w]  # shared net as plain 2-D layers
        self._b2 = [np.ascontiguousarray(b[0, 0]) for b in self._b]

    @property
    def n_joints(self) -> int:
        return len(self.joints)

    @property
    def per_joint(self) -> bool:
        """True when each joint has its own net."""
        return self.in_mean.shape[0] > 1

    @property
    def lags_s(self) -> np.ndarray:
        """``(H,)`` age of each history column, s: ``0, Δ, 2Δ, …``."""
        return self.spacing_s * np.arange(self.history)

    def features(self, err_hist: np.ndarray, vel_hist: np.ndarray) -> np.ndarray:
        """``(n, 2H)`` network input from ``(n, H)`` error and velocity histories (column 0 newest)."""
        return np.concatenate([err_hist, vel_hist], axis=-1)

    def torque(self, err_hist: np.ndarray, vel_hist: np.ndarray) -> np.ndarray:
        """Joint torques ``(n_joints,)``, N·m.

        :param err_hist: ``(n_joints, H)`` position errors ``q* − q``, rad; column ``k`` is the sample at
            ``t − k·Δ`` (column 0 is the current one)
        :param vel_hist: ``(n_joints, H)`` joint velocities, rad/s, same layout
        """
        x = self.features(np.asarray(err_hist, dtype=float), np.asarray(vel_hist, dtype=float))
        return self.predict(x)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Torques for feature rows ``x``: ``(n_joints, 2H)`` → ``(n_joints,)``, or ``(n_joints, B, 2H)`` →
        ``(n_joints, B)`` for ``B`` samples per joint."""
        batched = x.ndim == 3
        if self.per_joint:
            h = x if batched else x[:, None, :]  # (n_joints, B, 2H): joint j through net j
            ws, bs = self._w, self._b
        else:
            h = x.reshape(-1, x.shape[-1])  # one net: every joint's rows in one 2-D batch
            ws, bs = self._w2, self._b2
        last = len(ws) - 1
        for i, (w, b) in enumerate(zip(ws, bs)):
            h = h @ w + b
            if i < last:
                h = softsign(h)
        out = h.reshape(x.shape[0], -1)
        return out if batched else out[:, 0]

    # -- file format ------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """The dict :func:`save` writes (numpy arrays as float64 tensors once torch converts them)."""
        return {"format": FORMAT, "joints": list(self.joints), "history": int(self.history),
                "spacing_s": float(self.spacing_s), "weights": list(self.weights), "biases": list(self.biases),
                "in_mean": self.in_mean, "in_std": self.in_std, "out_mean": self.out_mean, "out_std": self.out_std,
                "metadata": self.metadata}


def save(path: str | os.PathLike[str], model: ActuatorNetModel) -> Path:
    """Write ``model`` to ``path`` (``torch.save`` format), atomically."""
    import torch

    from sim2real._io import atomic_write_bytes

    state = model.to_state()
    for key in ("in_mean", "in_std", "out_mean", "out_std"):
        state[key] = torch.from_numpy(np.ascontiguousarray(state[key], dtype=np.float64))
    for key in ("weights", "biases"):
        state[key] = [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64)) for a in state[key]]
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def load(path: str | os.PathLike[str]) -> ActuatorNetModel:
    """Read a net written by ``sim2real actuator fit`` into numpy arrays.

    :raises CheckpointError: missing, unreadable or not an actuator net file
    """
    import torch

    file = str(path)
    if not Path(file).is_file():
        raise CheckpointError(f"{file}: no such actuator net file")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle/zip/runtime errors of many types
        raise CheckpointError(f"{file}: not a readable actuator net file ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{file}: not an actuator net file (expected format {FORMAT!r})")

    def arr(t: Any) -> np.ndarray:
        return t.detach().cpu().numpy().astype(np.float64)

    try:
        return ActuatorNetModel(
            joints=[str(j) for j in state["joints"]], history=int(state["history"]),
            spacing_s=float(state["spacing_s"]), weights=[arr(w) for w in state["weights"]],
            biases=[arr(b) for b in state["biases"]], in_mean=arr(state["in_mean"]), in_std=arr(state["in_std"]),
            out_mean=arr(state["out_mean"]), out_std=arr(state["out_std"]), metadata=dict(state.get("metadata", {})))
    except CheckpointError as exc:
        raise CheckpointError(f"{file}: {exc}") from None
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        raise CheckpointError(f"{file}: actuator net file is incomplete ({type(exc).__name__}: {exc})") from None


class ActuatorNetActuator:
    """Physics-rate torque from an actuator net: keeps the error/velocity stream and samples its history.

    Call :meth:`reset` at every episode start, then :meth:`torque` once per physics step with a constant
    ``dt``. The last ``ceil((H−1)·Δ/dt) + 2`` samples are kept and the history at ``t, t−Δ, …`` is read by
    linear interpolation between them (exact when ``Δ`` is a multiple of ``dt``); samples before the reset
    read the reset state (zero error, the reset velocities). A different ``dt`` re-derives the
    interpolation and treats the stored samples as ``dt`` apart. The output is the net's torque, not
    clipped: the caller applies the joint's effort limit.

    :param model: a loaded net (:func:`load`) or a path to one
    """

    def __init__(self, model: ActuatorNetModel | str | os.PathLike[str]) -> None:
        self.model = model if isinstance(model, ActuatorNetModel) else load(model)
        self._dt = 0.0
        self.reset(np.zeros(self.model.n_joints), np.zeros(self.model.n_joints))

    @property
    def joint_names(self) -> list[str]:
        """The joints this actuator drives (robot.yaml names), the order of every array it takes/returns."""
        return list(self.model.joints)

    def reset(self, q: Sequence[float] | np.ndarray, qd: Sequence[float] | np.ndarray) -> None:
        """Forget the history: the past is the robot at ``q`` (rad) moving at ``qd`` (rad/s), each
        ``(n_joints,)``, on target (zero error)."""
        n = self.model.n_joints
        if np.shape(q) != (n,) or np.shape(qd) != (n,):
            raise ValueError(f"reset: expected q and qd of shape ({n},), got {np.shape(q)} and {np.shape(qd)}")
        self._vel0 = np.array(qd, dtype=float)
        self._filled = False  # buffers are (re)filled with the reset state on the next torque() call

    def _plan(self, dt: float) -> None:
        """Buffer length and interpolation indices/weights for physics step ``dt``."""
        back = self.model.lags_s / dt  # (H,) samples back from the newest, fractional
        i0 = np.floor(back + 1e-9).astype(int)
        self._i0, self._i1 = i0, i0 + 1
        self._w1 = np.clip(back - i0, 0.0, 1.0)[:, None]  # (H, 1)
        self._w0 = 1.0 - self._w1
        size = int(i0[-1]) + 2
        if not self._filled or self._err.shape[0] != size:
            n = self.model.n_joints
            self._err = np.zeros((size, n))
            self._vel = np.tile(self._vel0, (size, 1))
            self._filled = True
        self._dt = dt

    def torque(self, q_target: np.ndarray, q: np.ndarray, qd: np.ndarray, dt: float) -> np.ndarray:
        """Torque ``(n_joints,)`` N·m for this physics step.

        :param q_target: ``(n_joints,)`` commanded positions, rad
        :param q: ``(n_joints,)`` joint positions, rad
        :param qd: ``(n_joints,)`` joint velocities, rad/s
        :param dt: physics step, s
        """
        if not self._filled or dt != self._dt:
            self._plan(float(dt))
        err, vel = self._err, self._vel  # row 0 newest, row k is k physics steps old
        err[1:] = err[:-1]
        vel[1:] = vel[:-1]
        np.subtract(q_target, q, out=err[0])
        vel[0] = qd
        e = err[self._i0] * self._w0 + err[self._i1] * self._w1  # (H, n)
        v = vel[self._i0] * self._w0 + vel[self._i1] * self._w1
        return self.model.torque(e.T, v.T)
