"""Rapid Motor Adaptation, RMA (Kumar, Fu, Pathak & Malik 2021).

* **Phase 1 — base policy with a privileged encoder.** :class:`PrivilegedEncoder` is an SB3
  features extractor for a UP env observation ``[o, μ]`` (μ = the last ``mu_dim`` entries,
  :mod:`sim2real.sysid.upenv`): it encodes the extrinsics ``z = e(μ)`` with a small MLP and
  outputs ``[o, z]``; PPO learns ``π(o, z)`` and ``e`` end to end. A run config names it::

      hyperparameters:
        policy_kwargs:
          features_extractor_class: sim2real.sysid.rma:PrivilegedEncoder
          features_extractor_kwargs: {mu_dim: 4, z_dim: 8}

* **Phase 2 — adaptation module φ.** :class:`AdaptationModule` maps the last ``H`` observations
  of the history env (observation–action pairs, oldest first) to ``ẑ``: a per-step MLP
  embedding, three 1-D convolutions over time, a linear layer to ``z_dim``. It is trained by
  regression of ``ẑ`` onto ``z = e(μ)`` (e frozen) on the base policy's own rollouts; the first
  iteration rolls out with the true ``z``, later ones with ``ẑ`` in the loop, aggregating the
  data (DAgger-style). :func:`run_rma` runs this from an :class:`RMAConfig` (``sim2real osi
  CONFIG`` with ``method: rma``).
* **Deployment.** :class:`RMAPolicy` is ``forward(obs [B, H·d]) -> action``: ``ẑ = φ(obs)``,
  ``action = π(o_last, ẑ)``; exported as one TorchScript module with the ``observation.history:
  H`` sidecar the ROS 2 node runs.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from sim2real._io import atomic_write_bytes, atomic_write_text, atomic_write_yaml, read_yaml_file
from sim2real.errors import ConfigError
from sim2real.sysid.online_config import OnlineIDConfig, build_config, read_config
from sim2real.sysid.osi import fit_osi, history_sidecar
from sim2real.sysid.windows import OSIData, aggregate_and_fit, error_by_step, full_window_errors, rollout_windows

#: The paper's convolutions for H = 50: (channels, kernel, stride) per layer.
PAPER_CONV: tuple[tuple[int, int, int], ...] = ((32, 8, 4), (32, 5, 1), (32, 5, 1))


def _mlp(n_in: int, hidden: Sequence[int], n_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(n_in, int(h)), nn.ELU()]
        n_in = int(h)
    return nn.Sequential(*layers, nn.Linear(n_in, n_out))


class PrivilegedEncoder(BaseFeaturesExtractor):
    """SB3 features extractor ``[B, n] -> [B, n - mu_dim + z_dim]``: ``[o, μ] -> [o, e(μ)]``.

    :param observation_space: flat Box of the UP env (μ = its last ``mu_dim`` entries)
    :param mu_dim: number of dynamics parameters at the end of the observation
    :param z_dim: size of the extrinsics vector z (8 in the paper)
    :param hidden: hidden layer sizes of the encoder MLP e (ELU)
    """

    def __init__(self, observation_space: Any, mu_dim: int, z_dim: int = 8, hidden: Sequence[int] = (64, 64)) -> None:
        n = int(observation_space.shape[0])
        if not 1 <= int(mu_dim) < n:
            raise ConfigError(f"PrivilegedEncoder: mu_dim {mu_dim} must be in 1..{n - 1} for an observation of size {n}")
        if int(z_dim) < 1:
            raise ConfigError(f"PrivilegedEncoder: z_dim must be >= 1, got {z_dim}")
        super().__init__(observation_space, features_dim=n - int(mu_dim) + int(z_dim))
        self.base_dim = n - int(mu_dim)
        self.z_dim = int(z_dim)
        self.encoder = _mlp(int(mu_dim), hidden, int(z_dim))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        o = observations[:, :self.base_dim]
        return torch.cat([o, self.encoder(observations[:, self.base_dim:])], dim=1)


class AdaptationModule(nn.Module):
    """φ: ``[B, H·d]`` (H steps of d values, oldest first) → ``ẑ [B, z_dim]``.

    Input normalisation (``mean``/``std`` buffers over the ``H·d`` inputs, set by
    :func:`~sim2real.sysid.osi.fit_osi`), per-step MLP embedding ``d -> embed`` (ELU), 1-D
    convolutions over time (``conv``: (channels, kernel, stride) per layer, ELU), flatten, linear.
    """

    def __init__(self, step_dim: int, history: int, z_dim: int, embed: int = 32,
                 conv: Sequence[Sequence[int]] = PAPER_CONV) -> None:
        super().__init__()
        length = conv_length(history, conv)
        if length < 1:
            raise ConfigError(f"history {history} is too short for the conv layers {[list(c) for c in conv]}")
        self.step_dim, self.history = int(step_dim), int(history)
        self.embed = nn.Sequential(nn.Linear(step_dim, embed), nn.ELU())
        layers: list[nn.Module] = []
        ch = embed
        for c, k, s in conv:
            layers += [nn.Conv1d(ch, int(c), int(k), stride=int(s)), nn.ELU()]
            ch = int(c)
        self.conv = nn.Sequential(*layers)
        self.out = nn.Linear(ch * length, z_dim)
        self.register_buffer("mean", torch.zeros(history * step_dim))
        self.register_buffer("std", torch.ones(history * step_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = ((x.float() - self.mean) / self.std).reshape(x.shape[0], self.history, self.step_dim)
        h = self.conv(self.embed(x).transpose(1, 2))
        return self.out(h.flatten(1))


def conv_length(history: int, conv: Sequence[Sequence[int]]) -> int:
    """Time steps left after the convolutions (no padding)."""
    n = int(history)
    for _, k, s in conv:
        n = (n - int(k)) // int(s) + 1 if n >= int(k) else 0
    return n


def base_encoder(pi: nn.Module) -> PrivilegedEncoder:
    """The privileged encoder of an exported base policy (:func:`sim2real.train.export.build_module`)."""
    enc = getattr(pi, "features", None)
    if not isinstance(enc, PrivilegedEncoder):
        raise ConfigError(f"the base policy's features extractor is {type(enc).__name__}, not PrivilegedEncoder "
                          "(train it with features_extractor_class: sim2real.sysid.rma:PrivilegedEncoder)")
    return enc


def true_z(pi: nn.Module, mu: np.ndarray) -> np.ndarray:
    """``z = e(μ)`` ``[N, z_dim]`` for normalised μ ``[N, k]`` as the base policy sees it (after its
    observation normalisation)."""
    enc = base_encoder(pi)
    with torch.no_grad():
        m = torch.as_tensor(np.asarray(mu, dtype=np.float32))
        m = torch.clamp((m - pi.obs_mean[enc.base_dim:]) / pi.obs_std[enc.base_dim:], -pi.clip_obs, pi.clip_obs)
        return enc.encoder(m).numpy()


class RMAPolicy(nn.Module):
    """``obs [B, H·d]`` (last H history-env observations, oldest first) → action:
    ``ẑ = φ(obs)``, ``action = π(o_last, ẑ)`` with π the base policy's layers after its encoder.

    :param pi: :class:`sim2real.train.export.DeterministicPolicy` of the phase-1 run
    """

    def __init__(self, adaptation: nn.Module, pi: nn.Module, history: int, obs_dim: int) -> None:
        super().__init__()
        self.adaptation = adaptation
        self.latent, self.head = pi.latent, pi.head
        self.register_buffer("obs_mean", pi.obs_mean[:obs_dim].clone())
        self.register_buffer("obs_std", pi.obs_std[:obs_dim].clone())
        self.register_buffer("low", pi.low.clone())
        self.register_buffer("high", pi.high.clone())
        self.clip_obs, self.squash = float(pi.clip_obs), bool(pi.squash)
        self.history, self.obs_dim = int(history), int(obs_dim)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        z = self.adaptation(obs)
        last = obs[:, (self.history - 1) * self.obs_dim:].float()
        x = torch.clamp((last - self.obs_mean) / self.obs_std, -self.clip_obs, self.clip_obs)
        a = self.head(self.latent(torch.cat([x, z], dim=1)))
        if self.squash:
            return self.low + 0.5 * (torch.tanh(a) + 1.0) * (self.high - self.low)
        return torch.max(torch.min(a, self.high), self.low)


def collect_rma(env: Any, pi: nn.Module, episodes: int, history: int, *, adaptation: nn.Module | None = None,
                seed: int = 0, every: int = 1) -> tuple[OSIData, list[dict[str, float]]]:
    """Roll out the base policy in the UP env ``env``: with the true ``z = e(μ)`` (``adaptation``
    None) or with ``ẑ = φ(padded window)`` from the first step on (the true μ in the observation
    is then never used). ``Y`` of the data is the true μ; see :func:`~sim2real.sysid.windows.rollout_windows`."""
    k = int(env.get_wrapper_attr("mu_dim"))
    agent = None if adaptation is None else RMAPolicy(adaptation, pi, history, int(env.observation_space.shape[0]) - k)

    def act(obs: np.ndarray, window: np.ndarray, t: int) -> np.ndarray:
        with torch.no_grad():
            if agent is None:
                return pi(torch.as_tensor(obs[None], dtype=torch.float32))[0].numpy()
            return agent(torch.as_tensor(window[None], dtype=torch.float32))[0].numpy()

    return rollout_windows(env, act, episodes, history, seed=seed, every=every)


def z_error(adaptation: nn.Module, pi: nn.Module, data: OSIData, min_step: int = 0,
            reference: np.ndarray | None = None) -> dict[str, Any]:
    """Error of ``ẑ = φ(X)`` against ``z = e(μ)`` on ``data`` (windows with ``step >= min_step``), z units:
    ``rmse`` (over samples and components), ``rmse_per_dim``, ``mean_guess_rmse`` (always guessing
    ``reference``, default the mean z of ``data``), ``samples`` (windows scored; the errors are NaN
    when there is none) and ``by_step`` (RMSE per bin of steps since reset,
    :func:`~sim2real.sysid.windows.error_by_step`, over all windows)."""
    z = true_z(pi, data.Y)
    with torch.no_grad():
        z_hat = adaptation(torch.as_tensor(data.X)).numpy()
    err = z_hat - z
    ref = z.mean(0) if reference is None else np.asarray(reference)
    scored = full_window_errors(err, data.steps(), min_step)
    return {"rmse": scored["rmse"], "rmse_per_dim": scored["rmse_per_dim"],
            "mean_guess_rmse": full_window_errors(z - ref, data.steps(), min_step)["rmse"],
            "samples": scored["samples"], "by_step": error_by_step(err, data.steps(), baseline=z - ref)}


def fit_adaptation(data: OSIData, pi: nn.Module, *, embed: int = 32, conv: Sequence[Sequence[int]] = PAPER_CONV,
                   epochs: int = 50, lr: float = 1e-3, batch_size: int = 256, seed: int = 0) -> AdaptationModule:
    """A new φ fitted (MSE) to ``z = e(μ)`` of ``data`` (``Y`` = true μ)."""
    torch.manual_seed(seed)
    d = data.X.shape[1] // data.window
    net = AdaptationModule(d, data.window, base_encoder(pi).z_dim, embed=embed, conv=conv)
    return fit_osi(data.with_targets(true_z(pi, data.Y)), net=net, epochs=epochs, lr=lr,  # type: ignore[arg-type]
                   batch_size=batch_size, seed=seed)


def export_rma(adaptation: nn.Module, pi: nn.Module, history: int, obs_dim: int, sidecar: dict[str, Any],
               out: str | Path) -> dict[str, Path]:
    """Write ``out`` (TorchScript :class:`RMAPolicy`), ``out.yaml`` (sidecar, ``observation.history = H``)
    and ``out_adaptation.pt`` (φ alone: ``[B, H·d] -> ẑ``)."""
    out = Path(out)
    paths = {"policy": out, "sidecar": out.with_suffix(".yaml"), "adaptation": out.with_name(out.stem + "_adaptation.pt")}
    for path, mod in ((out, RMAPolicy(adaptation, pi, history, obs_dim).eval()), (paths["adaptation"], adaptation.eval())):
        buf = io.BytesIO()
        with warnings.catch_warnings():  # TorchScript is the deployment format (docs/interfaces.md)
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.save(torch.jit.script(mod), buf)
        atomic_write_bytes(path, buf.getvalue())
    atomic_write_yaml(paths["sidecar"], sidecar)
    return paths


def load_rma(out: str | Path) -> tuple[nn.Module, nn.Module, int]:
    """``(φ, π, H)`` of a ``sim2real osi`` RMA output directory: φ from ``rma_adaptation.pt``
    (TorchScript), π the base policy module rebuilt from the run the sidecar names (``source``), H
    from the sidecar — the pieces :func:`collect_rma` and :func:`z_error` take."""
    from sim2real.errors import CheckpointError
    from sim2real.train.export import build_module
    from sim2real.train.policy import load_policy

    out = Path(out)
    if not (out / "rma.yaml").is_file() or not (out / "rma_adaptation.pt").is_file():
        raise CheckpointError(f"{out}: no rma.yaml / rma_adaptation.pt (the output of sim2real osi with method: rma)")
    side = read_yaml_file(out / "rma.yaml", what="policy sidecar")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        phi = torch.jit.load(str(out / "rma_adaptation.pt"), map_location="cpu").eval()
    return phi, build_module(load_policy(side["source"])), int(side["observation"]["history"])


@dataclass(kw_only=True)
class RMAConfig(OnlineIDConfig):
    """``configs/sysid/rma_*.yaml`` (``method: rma``): phase 2 around a phase-1 base policy
    (shared fields: :class:`~sim2real.sysid.online_config.OnlineIDConfig`)."""

    base_policy: str                      # run directory of `sim2real train` with the PrivilegedEncoder
    method: str = "rma"
    history: int = 50
    embed: int = 32
    conv: list[list[int]] = field(default_factory=lambda: [list(c) for c in PAPER_CONV])
    lr: float = 1e-3
    batch_size: int = 256
    out: str = "runs/rma"

    @staticmethod
    def load(path: str | Path) -> "RMAConfig":
        file, raw = read_config(path, RMAConfig)
        if raw.get("method") != "rma":
            raise ConfigError(f"expected rma, got {raw.get('method')!r}", file=file, path=("method",))
        return build_config(RMAConfig, raw, file, policy_key="base_policy",
                            policy_what="run directory of the phase-1 base policy",
                            counts=("history", "iterations", "episodes", "eval_episodes", "epochs", "embed",
                                    "batch_size"), check=_check_networks)


def _check_networks(raw: dict[str, Any], file: str) -> None:
    """``lr`` and ``conv`` of an RMA config, and that ``history`` leaves the convolutions something."""
    if "lr" in raw and (isinstance(raw["lr"], bool) or not isinstance(raw["lr"], (int, float)) or not raw["lr"] > 0):
        raise ConfigError(f"expected a number > 0, got {raw['lr']!r}", file=file, path=("lr",))
    conv = raw.get("conv", [list(c) for c in PAPER_CONV])
    if not (isinstance(conv, list) and conv and all(
            isinstance(c, list) and len(c) == 3 and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                                                        for v in c) for c in conv)):
        raise ConfigError(f"expected a list of [channels, kernel, stride] (integers >= 1), got {conv!r}",
                          file=file, path=("conv",))
    history = raw.get("history", 50)
    if conv_length(history, conv) < 1:
        raise ConfigError(f"history {history} is too short for these conv layers (nothing left after them)",
                          file=file, path=("conv",))


def run_rma(cfg: RMAConfig, progress: bool = True) -> dict[str, Any]:
    """Iterated RMA phase 2; writes ``<out>/rma.pt`` (+ ``rma.yaml``, ``rma_adaptation.pt``) and
    ``<out>/osi.json`` (per iteration: z errors online with ẑ in the loop on held-out draws, vs
    time since reset and vs always guessing the mean z; success with ẑ and with the true z)."""
    from sim2real.sysid.upenv import make_up_env
    from sim2real.train.export import build_module
    from sim2real.train.policy import load_policy

    loaded = load_policy(cfg.base_policy)
    pi = build_module(loaded)
    enc = base_encoder(pi)
    env = make_up_env(cfg.env, profile=cfg.profile, **cfg.env_kwargs)
    n_up = int(env.observation_space.shape[0])
    if n_up != enc.base_dim + int(env.get_wrapper_attr("mu_dim")) or loaded.model.observation_space.shape[0] != n_up:
        env.close()
        raise ConfigError(f"the base policy takes {loaded.model.observation_space.shape[0]} inputs ({enc.base_dim} + μ), "
                          f"the UP env of {cfg.env} with this profile gives {n_up}: use the base policy's env and profile")
    eval_seed = 10_000 + cfg.seed
    _, expert = collect_rma(env, pi, cfg.eval_episodes, 1, seed=eval_seed)

    def evaluate(phi: AdaptationModule, train: OSIData) -> dict[str, Any]:
        # held-out draws (seeds 10000+), ẑ of this φ in the loop; full windows for the headline number
        held, eval_stats = collect_rma(env, pi, cfg.eval_episodes, cfg.history, adaptation=phi, seed=eval_seed)
        err = z_error(phi, pi, held, min_step=cfg.history, reference=true_z(pi, train.Y).mean(0))
        return {"eval_rmse_z": err["rmse"], "eval_rmse_z_per_dim": err["rmse_per_dim"],
                "mean_guess_rmse_z": err["mean_guess_rmse"], "eval_full_windows": err["samples"],
                "eval_rmse_z_by_step": err["by_step"],
                "eval_success_rma": float(np.mean([s["success"] for s in eval_stats]))}

    phi, rows = aggregate_and_fit(
        cfg.iterations, lambda phi, seed: collect_rma(env, pi, cfg.episodes, cfg.history, adaptation=phi, seed=seed),
        lambda train: fit_adaptation(train, pi, embed=cfg.embed, conv=cfg.conv, epochs=cfg.epochs, lr=cfg.lr,
                                     batch_size=cfg.batch_size, seed=cfg.seed),
        evaluate, episodes=cfg.episodes, seed=cfg.seed, desc="RMA", progress=progress,
        show=("eval_rmse_z", "mean_guess_rmse_z"))
    report: dict[str, Any] = {"method": "rma", "z_dim": enc.z_dim, "history": cfg.history,
                              "eval_success_true_z": float(np.mean([s["success"] for s in expert])), "iterations": rows}
    n_base = enc.base_dim
    comps = env.get_wrapper_attr("components")
    side = history_sidecar(env, cfg.env, cfg.history, loaded, "rma", {
        "history": cfg.history, "z_dim": enc.z_dim, "mu": [f"{e}.{t}" for e, t, _, _ in comps],
        "network": "rma_adaptation.pt"})
    paths = export_rma(phi, pi, cfg.history, n_base, side, Path(cfg.out) / "rma.pt")
    report["files"] = {k: str(v) for k, v in paths.items()}
    atomic_write_text(Path(cfg.out) / "osi.json", json.dumps(report, indent=2))
    env.close()
    return report
