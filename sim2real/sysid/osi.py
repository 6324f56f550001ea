"""Online system identification, UP-OSI (Yu, Tan, Liu & Turk 2017).

* The **universal policy** π(o, μ) is an SB3 policy trained by ``sim2real train`` on the UP env
  (:mod:`sim2real.sysid.upenv`: observation + previous action + normalised μ), e.g.
  ``configs/sysid/up_kuka.yaml``.
* The **OSI network** maps the last ``H`` observations of the history env (each holds the
  previous action, so these are observation–action pairs) to μ̂ ∈ [-1, 1]^k. It is trained by
  supervised regression on data collected by running π; from the second iteration on the data is
  collected with μ̂ in the loop (π sees the estimate), as in the paper.
* :func:`export_up_osi` writes one TorchScript module ``forward(obs: Tensor[B, H·d]) -> action``
  (the last ``H`` history-env observations, oldest first) + ``policy.yaml`` with
  ``observation.history: H`` — the format the ROS 2 node already runs.

``sim2real osi CONFIG.yaml`` (or ``python -m sim2real.sysid.osi CONFIG.yaml``) runs the OSI loop from a config
(``configs/sysid/osi_kuka.yaml``); a config with ``method: rma`` runs RMA's adaptation phase
(:mod:`sim2real.sysid.rma`) instead. History windows and their rollouts: :mod:`sim2real.sysid.windows`.
"""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from sim2real._io import atomic_write_bytes, atomic_write_text, atomic_write_yaml, read_yaml_file
from sim2real.errors import ConfigError
from sim2real.sysid.online_config import OnlineIDConfig, build_config, read_config
from sim2real.sysid.windows import OSIData, aggregate_and_fit, full_window_errors, rollout_windows

__all__ = ["OSINet", "OSIData", "collect", "fit_osi", "osi_error", "online_error", "UPOSIPolicy", "export_up_osi",
           "OSIConfig", "run_osi", "load_config", "run", "history_sidecar"]

Policy = Callable[[np.ndarray], np.ndarray]  # (obs_with_mu,) -> action


class OSINet(nn.Module):
    """MLP ``[B, H·d] -> μ̂ [B, k]`` (tanh, normalised units) with input normalisation buffers."""

    def __init__(self, in_dim: int, mu_dim: int, hidden: Sequence[int] = (256, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        last = in_dim
        for h in hidden:
            layers += [nn.Linear(last, h), nn.Tanh()]
            last = h
        layers += [nn.Linear(last, mu_dim), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("std", torch.ones(in_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x.float() - self.mean) / self.std)


def collect(env: Any, policy: Policy | None, episodes: int, history: int, *, osi: OSINet | None = None,
            random_mu: bool = False, seed: int = 0, every: int = 1,
            rng: np.random.Generator | None = None) -> tuple[OSIData, list[dict[str, float]]]:
    """Run ``policy`` in the UP env ``env`` and record (history of the last ``history`` base observations, μ).

    Windows are recorded from the first step on; before ``history`` steps they are padded with the
    reset observation (``OSIData.step`` says how many steps a window holds).

    :param env: a UP env (:func:`~sim2real.sysid.upenv.make_up_env`); the history observations are
        the observation without the trailing μ
    :param policy: maps the UP observation to an action; ``None`` = uniform random actions
    :param osi: if given, π sees μ̂ = OSI(padded history) from the first step on, never the true μ
        (OSI in the loop; the recorded target stays the true μ)
    :param random_mu: π sees a μ drawn uniformly from [-1, 1]^k per episode, independent of the true
        μ (its actions then carry no information about the true μ, so OSI has to identify it from
        the dynamics; ignored when ``osi`` is given)
    :param every: keep one sample every ``every`` steps
    :returns: data and per-episode stats: ``return``, ``success`` (``info["is_success"]`` at the
        last step, as ``sim2real evaluate``), ``reached`` (at any step)
    """
    rng = rng or np.random.default_rng(seed)
    # own stream for the shown random μ: the env draws its parameters from `seed` too, and the same
    # generator would show π exactly the true μ in the first episode
    mu_rng = np.random.default_rng([seed, 0x6D75])
    dyn = env.get_wrapper_attr("set_estimate")
    k = int(env.get_wrapper_attr("mu_dim"))

    def act(obs: np.ndarray, window: np.ndarray, t: int) -> np.ndarray:
        if osi is not None:
            with torch.no_grad():
                mu_hat = osi(torch.as_tensor(window[None], dtype=torch.float32))[0].numpy()
            dyn(mu_hat)
            obs = np.concatenate([obs[:-k], np.clip(mu_hat, -1.0, 1.0)]).astype(np.float32)
        elif random_mu and t == 0:
            dyn(mu_rng.uniform(-1.0, 1.0, k))
            obs = np.concatenate([obs[:-k], env.get_wrapper_attr("_estimate")]).astype(np.float32)
        return rng.uniform(-1, 1, env.action_space.shape) if policy is None else policy(obs)

    return rollout_windows(env, act, episodes, history, seed=seed, every=every)


def fit_osi(data: OSIData, *, net: OSINet | None = None, hidden: Sequence[int] = (256, 128), epochs: int = 50,
            lr: float = 1e-3, batch_size: int = 256, weight_decay: float = 1e-5, seed: int = 0) -> OSINet:
    """Supervised regression (MSE) of μ on the histories; sets the input normalisation from ``data``."""
    torch.manual_seed(seed)
    X = torch.as_tensor(data.X, dtype=torch.float32)
    Y = torch.as_tensor(data.Y, dtype=torch.float32)
    if net is None:
        net = OSINet(X.shape[1], Y.shape[1], hidden)
    net.mean.copy_(X.mean(0))
    net.std.copy_(X.std(0).clamp_min(1e-3))
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(X.shape[0], generator=gen)
        for i in range(0, X.shape[0], batch_size):
            idx = perm[i:i + batch_size]
            loss = torch.mean((net(X[idx]) - Y[idx]) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def osi_error(net: OSINet, data: OSIData, min_step: int = 0) -> dict[str, Any]:
    """Error of μ̂ on ``data`` (windows with ``step >= min_step``), normalised units: ``mse``,
    ``mae`` (scalars), ``rmse_per_dim`` (list, one per μ component) and ``samples`` (windows
    scored; the errors are NaN when there is none), :func:`~sim2real.sysid.windows.full_window_errors`."""
    with torch.no_grad():
        pred = net(torch.as_tensor(data.X)).numpy()
    out = full_window_errors(pred - data.Y, data.steps(), min_step)
    return {k: out[k] for k in ("mse", "mae", "rmse_per_dim", "samples")}


def online_error(env: Any, policy: Policy, net: OSINet, episodes: int, seed: int = 10_000,
                 min_step: int | None = None) -> dict[str, Any]:
    """Error of ``net`` where it is used: episodes run with its own μ̂ in the loop (π never sees the
    true μ). Data collected with the true μ shown to π overstate OSI accuracy, because π's actions
    (part of the history) then depend on the true μ and OSI can read μ off them.

    :param min_step: score windows with at least this many steps (default: the net's history)
    :returns: :func:`osi_error` keys (NaN errors and ``samples`` 0 when no episode lasts
        ``min_step`` steps) + ``success`` (last-step success rate of those episodes)
    """
    hist = net.net[0].in_features // (int(env.observation_space.shape[0]) - int(env.get_wrapper_attr("mu_dim")))
    data, stats = collect(env, policy, episodes, hist, osi=net, seed=seed)
    out = osi_error(net, data, min_step=hist if min_step is None else min_step)
    out["success"] = float(np.mean([st["success"] for st in stats]))
    return out


class UPOSIPolicy(nn.Module):
    """``obs [B, H·d]`` (last H history-env observations, oldest first) → action: μ̂ = OSI(obs),
    action = π([obs_last, μ̂])."""

    def __init__(self, osi: OSINet, policy: nn.Module, history: int, obs_dim: int) -> None:
        super().__init__()
        self.osi = osi
        self.policy = policy
        self.history = int(history)
        self.obs_dim = int(obs_dim)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        mu = self.osi(obs)
        last = obs[:, (self.history - 1) * self.obs_dim:]
        return self.policy(torch.cat([last.float(), mu], dim=1))


def export_up_osi(osi: OSINet, policy_module: nn.Module, history: int, obs_dim: int, sidecar: dict[str, Any],
                  out: str | Path) -> dict[str, Path]:
    """Write ``out`` (TorchScript UP-OSI), ``out.yaml`` (policy sidecar with ``observation.history = H``)
    and ``out_osi.pt`` (the OSI net alone: ``[B, H·d] -> μ̂``)."""
    out = Path(out)
    module = UPOSIPolicy(osi, policy_module, history, obs_dim).eval()
    paths = {"policy": out, "sidecar": out.with_suffix(".yaml"), "osi": out.with_name(out.stem + "_osi.pt")}
    if "osi" in sidecar:
        sidecar = {**sidecar, "osi": {**sidecar["osi"], "network": paths["osi"].name}}
    for path, mod in ((out, module), (paths["osi"], osi.eval())):
        buf = io.BytesIO()
        torch.jit.save(torch.jit.script(mod), buf)
        atomic_write_bytes(path, buf.getvalue())
    atomic_write_yaml(paths["sidecar"], sidecar)
    return paths


def history_sidecar(env: Any, env_id: str, history: int, loaded: Any, block: str, extra: dict[str, Any]) -> dict[str, Any]:
    """Sidecar (``sim2real-policy/1``) of a policy over the last ``history`` observations of the
    history env of the UP env ``env`` (its layout without ``dynamics_params``), with ``extra``
    under the key ``block`` (``osi``, ``rma``)."""
    n_base = env.observation_space.shape[0] - int(env.get_wrapper_attr("mu_dim"))
    robot = env.get_wrapper_attr("robot")
    spec = dict(env.get_wrapper_attr("action_spec")())
    hist_env_layout = [[str(n), int(k)] for n, k in env.get_wrapper_attr("observation_layout")()[:-1]]
    side: dict[str, Any] = {
        "format": "sim2real-policy/1", "robot": robot.name, "env_id": env_id,
        "control_rate_hz": float(robot.control.rate_hz),
        "observation": {"size": n_base, "history": history, "layout": hist_env_layout},  # size: one frame
        "action": {"size": int(env.action_space.shape[0]),
                   **{k: (np.asarray(v).tolist() if isinstance(v, (np.ndarray, tuple)) else v) for k, v in spec.items()}},
        "algo": loaded.algo, "source": str(loaded.path), block: extra,
    }
    if any(name in ("ee_position", "target_delta") for name, _ in hist_env_layout):
        from sim2real.train.export import kinematics  # the node's end-effector observation, as `sim2real export`

        side["kinematics"] = kinematics(robot.name)
    return json.loads(json.dumps(side, default=float))  # plain floats for YAML


@dataclass(kw_only=True)
class OSIConfig(OnlineIDConfig):
    """``configs/sysid/osi_*.yaml``: the UP-OSI loop around a trained universal policy (shared
    fields: :class:`~sim2real.sysid.online_config.OnlineIDConfig`)."""

    universal_policy: str                 # run directory (or model zip) of `sim2real train` on a UP env
    method: str = "up_osi"                # `rma`: sim2real.sysid.rma.RMAConfig (see load_config)
    history: int = 8
    hidden: list[int] = field(default_factory=lambda: [256, 128])
    out: str = "runs/osi"

    @staticmethod
    def load(path: str | Path) -> "OSIConfig":
        file, raw = read_config(path, OSIConfig)
        if raw.get("method", "up_osi") != "up_osi":
            raise ConfigError(f"expected up_osi here, got {raw['method']!r} (load_config reads every method)",
                              file=file, path=("method",))
        return build_config(OSIConfig, raw, file, policy_key="universal_policy",
                            policy_what="run directory of the universal policy",
                            counts=("history", "iterations", "episodes", "eval_episodes", "epochs"))


def run_osi(cfg: OSIConfig, progress: bool = True) -> dict[str, Any]:
    """Iterated UP-OSI training; writes ``<out>/osi.pt``, ``<out>/up_osi.pt`` (+ ``.yaml``) and ``<out>/osi.json``."""
    from sim2real.sysid.upenv import make_up_env
    from sim2real.train.export import build_module
    from sim2real.train.policy import load_policy

    loaded = load_policy(cfg.universal_policy)
    pi = build_module(loaded)

    def act(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return pi(torch.as_tensor(obs[None], dtype=torch.float32))[0].numpy()

    env = make_up_env(cfg.env, profile=cfg.profile, **cfg.env_kwargs)
    out = Path(cfg.out)
    eval_seed = 10_000 + cfg.seed
    eval_mu = np.asarray([env.reset(seed=eval_seed + e)[1]["mu"] for e in range(cfg.eval_episodes)])

    def evaluate(net: OSINet, train: OSIData) -> dict[str, Any]:
        # held-out draws (seeds 10000+), μ̂ of this net in the loop, full windows only (NaN if none)
        err = online_error(env, act, net, cfg.eval_episodes, seed=eval_seed)
        return {"eval_mse": err["mse"], "eval_rmse_per_dim": err["rmse_per_dim"], "eval_full_windows": err["samples"],
                "eval_success_osi": err["success"],
                "mean_baseline_mse": float(np.mean((eval_mu - train.Y.mean(0)) ** 2))}

    net, rows = aggregate_and_fit(
        cfg.iterations, lambda net, seed: collect(env, act, cfg.episodes, cfg.history, osi=net, seed=seed),
        lambda train: fit_osi(train, hidden=cfg.hidden, epochs=cfg.epochs, seed=cfg.seed), evaluate,
        episodes=cfg.episodes, seed=cfg.seed, desc="UP-OSI", progress=progress, show=("eval_mse", "mean_baseline_mse"))
    report: dict[str, Any] = {"iterations": rows}
    n_base = env.observation_space.shape[0] - int(env.get_wrapper_attr("mu_dim"))
    comps = env.get_wrapper_attr("components")
    side = history_sidecar(env, cfg.env, cfg.history, loaded, "osi", {
        "history": cfg.history, "mu": [f"{e}.{t}" for e, t, _, _ in comps],
        "mu_low": [float(c[2]) for c in comps], "mu_high": [float(c[3]) for c in comps], "network": "up_osi_osi.pt"})
    paths = export_up_osi(net, pi, cfg.history, n_base, side, out / "up_osi.pt")
    report["files"] = {k: str(v) for k, v in paths.items()}
    atomic_write_text(out / "osi.json", json.dumps(report, indent=2))
    env.close()
    return report


METHODS = ("up_osi", "rma")


def load_config(path: str | Path) -> Any:
    """The config of ``path`` by its ``method:`` key: ``up_osi`` (default) → :class:`OSIConfig`,
    ``rma`` → :class:`sim2real.sysid.rma.RMAConfig`."""
    raw = read_yaml_file(str(path), what="config")
    method = raw.get("method", "up_osi") if isinstance(raw, dict) else "up_osi"
    if method not in METHODS:
        raise ConfigError(f"expected one of {', '.join(METHODS)}, got {method!r}", file=str(path), path=("method",))
    if method == "rma":
        from sim2real.sysid.rma import RMAConfig

        return RMAConfig.load(path)
    return OSIConfig.load(path)


def run(cfg: Any, progress: bool = True) -> dict[str, Any]:
    """Run a config of :func:`load_config` (UP-OSI or RMA adaptation); returns its report."""
    if isinstance(cfg, OSIConfig):
        return run_osi(cfg, progress=progress)
    from sim2real.sysid.rma import run_rma

    return run_rma(cfg, progress=progress)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m sim2real.sysid.osi CONFIG.yaml", file=sys.stderr)
        return 1
    from sim2real.errors import Sim2RealError

    try:
        report = run(load_config(argv[0]))
    except Sim2RealError as exc:
        print(f"sim2real osi: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
