"""Online identification benchmark: how fast each method identifies the dynamics of a fresh
episode, and what that buys in control, in range and beyond the training ranges, over seeds.

Task: quadrotor hover with collective thrust + body rates (``sim2real/QuadrotorHoverRates-v0``)
under ``configs/sysid/up_quadrotor_profile.yaml`` (payload mass, centre-of-mass shift, thrust
coefficient, motor lag, constant wind). It needs, for every seed ``s`` (``--train`` makes the
missing ones with these commands, one after the other):

    sim2real train configs/sysid/plain_quadrotor.yaml    --seeds 0,1,2 --out RUNS/plain     # plain DR π(o)
    sim2real train configs/sysid/up_quadrotor.yaml       --seeds 0,1,2 --out RUNS/up        # universal π(o, μ)
    sim2real train configs/sysid/rma_base_quadrotor.yaml --seeds 0,1,2 --out RUNS/rma_base  # RMA phase 1 π(o, e(μ))
    sim2real osi configs/sysid/osi_quadrotor.yaml   # universal_policy RUNS/up/seed_s, seed s, out RUNS/osi/seed_s
    sim2real osi configs/sysid/rma_quadrotor.yaml   # base_policy RUNS/rma_base/seed_s, seed s, out RUNS/rma/seed_s

Then every controller flies the same episodes (episode seeds 30000+i: the same parameter draws for
all) in two scenarios, the training profile ("in range") and
``configs/sysid/up_quadrotor_outside.yaml`` ("out of range", beyond the training ranges; the μ
shown to the universal policy is clipped to the training range there, as the UP env does):

* ``plain DR``: the plain randomized policy;
* ``universal + true μ``: the universal policy shown the episode's μ;
* ``universal + μ̄``: shown the middle of the range (how much it uses μ);
* ``UP-OSI``: shown μ̂ of the iterated OSI network from the first step on (never the true μ);
* ``universal + RLS``: shown μ̂ built from the recursive-least-squares thrust-to-mass estimate
  (the payload mass / thrust coefficient pair nearest the middle of their ranges that implies it,
  the rest at the middle);
* ``RMA``: the exported RMA policy (adaptation module + base policy, one TorchScript module).

Estimation error vs time since reset (in-range episodes): UP-OSI's μ̂ (RMS over components,
normalised units), RMA's ẑ (RMS, extrinsics units) and the thrust-to-mass ratio of RLS and of
UP-OSI's μ̂ (relative error), each against always guessing the mean of the quantity over the
in-range episodes. Per-seed values are aggregated as mean and 95 % t-interval over seeds.
Target: error ≤ ⅓ of the mean-guess error within 1 s; out-of-range success of UP-OSI or RMA
≥ plain DR + 0.15 and within 0.05 of the universal policy with the true μ.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TASK = {
    "env": "sim2real/QuadrotorHoverRates-v0",
    "profile": ROOT / "configs/sysid/up_quadrotor_profile.yaml",
    "outside": ROOT / "configs/sysid/up_quadrotor_outside.yaml",
    "train": {"plain": ROOT / "configs/sysid/plain_quadrotor.yaml", "up": ROOT / "configs/sysid/up_quadrotor.yaml",
              "rma_base": ROOT / "configs/sysid/rma_base_quadrotor.yaml"},
    "osi": {"osi": (ROOT / "configs/sysid/osi_quadrotor.yaml", "universal_policy", "up"),
            "rma": (ROOT / "configs/sysid/rma_quadrotor.yaml", "base_policy", "rma_base")},
}
TIMES_S = (0.25, 0.5, 1.0, 2.0, 4.0)


def _done(run: Path) -> bool:
    return (run / "report.json").is_file() or (run / "osi.json").is_file()


def train_missing(runs: Path, seeds: list[int], log: Callable[[str], None]) -> None:
    """Make the runs the evaluation needs (sequentially; a finished run is kept)."""
    import yaml

    for name, cfg in TASK["train"].items():
        todo = [s for s in seeds if not _done(runs / name / f"seed_{s}")]
        if todo:
            log(f"train {name} seeds {todo}")
            resume = ["--resume"] if (runs / name).exists() else []
            subprocess.run([sys.executable, "-m", "sim2real", "train", str(cfg), "--seeds", ",".join(map(str, todo)),
                            "--out", str(runs / name), "--no-progress", *resume], check=True, cwd=ROOT)
    for name, (cfg, key, policy) in TASK["osi"].items():
        for s in seeds:
            out = runs / name / f"seed_{s}"
            if _done(out):
                continue
            raw = yaml.safe_load(cfg.read_text())
            raw.update({key: str(runs / policy / f"seed_{s}"), "seed": s, "out": str(out)})
            prof = raw.get("profile")
            if isinstance(prof, str) and (cfg.parent / prof).is_file():
                raw["profile"] = str((cfg.parent / prof).resolve())
            (runs / name).mkdir(parents=True, exist_ok=True)
            tmp = runs / name / f"seed_{s}.yaml"
            tmp.write_text(yaml.safe_dump(raw, sort_keys=False))
            log(f"{name} seed {s}")
            subprocess.run([sys.executable, "-m", "sim2real", "osi", str(tmp), "--quiet"], check=True, cwd=ROOT)


def ci95(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95 % t-interval over seeds (half-width NaN for one seed)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return float(v.mean()), float("nan")
    return float(v.mean()), float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def fmt(values: list[float], digits: int = 2) -> str:
    m, h = ci95(values)
    return f"{m:.{digits}f}" if not np.isfinite(h) else f"{m:.{digits}f} ± {h:.{digits}f}"


class Controller:
    """One way of choosing actions from the episode so far. ``act`` gets the newest observation
    of the base env (``base``, without μ) and the μ the UP env reports (true, normalised, clipped);
    ``estimate`` holds what the controller currently believes (for the error curves)."""

    history = 1

    def reset(self, base: np.ndarray) -> None:
        self.hist: deque[np.ndarray] = deque([base] * self.history, maxlen=self.history)
        self.prev: tuple[np.ndarray, np.ndarray] | None = None
        self.estimate: dict[str, Any] = {}

    def observe(self, base: np.ndarray) -> None:
        if self.prev is not None:
            self.hist.append(base)

    def window(self) -> np.ndarray:
        return np.concatenate(self.hist)[None].astype(np.float32)

    def act(self, base: np.ndarray, mu: np.ndarray) -> np.ndarray:
        self.observe(base)
        a = self.choose(base, mu)
        self.prev = (base, a)
        return a

    def choose(self, base: np.ndarray, mu: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _torch_call(module: Any, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return module(torch.as_tensor(x, dtype=torch.float32)).numpy()[0]


class Plain(Controller):
    def __init__(self, pi: Any) -> None:
        self.pi = pi

    def choose(self, base: np.ndarray, mu: np.ndarray) -> np.ndarray:
        return _torch_call(self.pi, base[None])


class Universal(Controller):
    """The universal policy shown ``mu_fn(self, true μ)``."""

    def __init__(self, pi: Any, mu_fn: Callable[["Universal", np.ndarray], np.ndarray], history: int = 1) -> None:
        self.pi, self.mu_fn, self.history = pi, mu_fn, history

    def choose(self, base: np.ndarray, mu: np.ndarray) -> np.ndarray:
        shown = np.clip(self.mu_fn(self, mu), -1.0, 1.0)
        return _torch_call(self.pi, np.concatenate([base, shown])[None])


def osi_mu(osi: Any) -> Callable[[Universal, np.ndarray], np.ndarray]:
    def fn(ctrl: Universal, mu: np.ndarray) -> np.ndarray:
        mu_hat = _torch_call(osi, ctrl.window())
        ctrl.estimate = {"mu": mu_hat}
        return mu_hat
    return fn


class RMAController(Controller):
    """The exported RMA module (``[1, H·d]`` history → action) and its adaptation module (→ ẑ)."""

    def __init__(self, policy: Any, phi: Any, history: int) -> None:
        self.policy, self.phi, self.history = policy, phi, history

    def choose(self, base: np.ndarray, mu: np.ndarray) -> np.ndarray:
        w = self.window()
        self.estimate = {"z": _torch_call(self.phi, w)}
        return _torch_call(self.policy, w)


def run_episode(env: Any, ctrl: Controller, seed: int, k: int) -> dict[str, Any]:
    """One episode of ``ctrl`` on the UP env ``env`` (μ dimension ``k``); per-step estimates."""
    obs, info = env.reset(seed=seed)
    mu_true, drawn = np.asarray(info["mu"], dtype=float), info.get("randomization", {})
    ctrl.reset(obs[:-k])
    log: dict[str, list[np.ndarray]] = {}
    ret, done = 0.0, False
    while not done:
        a = ctrl.act(obs[:-k], obs[-k:])
        for key, value in ctrl.estimate.items():
            log.setdefault(key, []).append(np.atleast_1d(np.asarray(value, dtype=float)))
        obs, r, term, trunc, info = env.step(a)
        ret += float(r)
        done = term or trunc
    return {"return": ret, "success": float(bool(info.get("is_success", False))), "mu": mu_true,
            "randomization": drawn,
            "estimates": {key: np.asarray(v) for key, v in log.items()}}


def error_curve(episodes: list[dict[str, Any]], key: str, truth: Callable[[dict[str, Any]], np.ndarray],
                steps: list[int], relative: bool = False) -> dict[str, Any]:
    """RMS error of estimate ``key`` at each step index of ``steps`` (episodes still flying),
    and of always guessing the mean truth over ``episodes``; ``*_per_dim``: the same per
    component of the estimate."""
    truths = np.asarray([truth(ep) for ep in episodes], dtype=float).reshape(len(episodes), -1)
    mean = truths.mean(0)
    out: dict[str, Any] = {"error": [], "mean_guess": [], "error_per_dim": [], "mean_guess_per_dim": []}
    for n in steps:
        e, b = [], []
        for ep, t in zip(episodes, truths):
            est = ep["estimates"].get(key)
            if est is None or len(est) <= n:
                continue
            scale = np.abs(t) if relative else 1.0
            e.append(((est[n] - t) / scale) ** 2)
            b.append(((mean - t) / scale) ** 2)
        nan = [float("nan")] * truths.shape[1]
        out["error"].append(float(np.sqrt(np.mean(e))) if e else float("nan"))
        out["mean_guess"].append(float(np.sqrt(np.mean(b))) if b else float("nan"))
        out["error_per_dim"].append(np.sqrt(np.mean(e, axis=0)).tolist() if e else nan)
        out["mean_guess_per_dim"].append(np.sqrt(np.mean(b, axis=0)).tolist() if b else nan)
    return out


class RLSUniversal(Universal):
    """The universal policy shown μ̂ from the RLS thrust-to-mass estimate θ̂ = 4·kf·max_rpm²/m:
    of the (payload mass, kf) pairs in the training ranges that imply θ̂, the one nearest the
    middle of both ranges (normalised units); when none does, the pair whose θ is nearest θ̂.
    The other components at the middle."""

    def __init__(self, pi: Any, env: Any) -> None:
        from sim2real.sysid.rls import ThrustToMassRLS

        super().__init__(pi, lambda c, mu: c.mu_hat())
        self.rls = ThrustToMassRLS(env)
        comps = env.get_wrapper_attr("components")
        kinds = {n: e.param for n, e in env.unwrapped.profile.entries.items()}
        self.i_mass = next(i for i, c in enumerate(comps) if kinds[c[0]] == "link_mass")
        self.i_kf = next(i for i, c in enumerate(comps) if kinds[c[0]] == "model_param" and c[1] == "kf")
        self.mass_range, self.kf_range = comps[self.i_mass][2:4], comps[self.i_kf][2:4]
        self.max_rpm = float(env.unwrapped.robot.model_params["max_rpm"])
        self.k = len(comps)
        self._grid = np.linspace(-1.0, 1.0, 401)  # normalised payload mass

    def reset(self, base: np.ndarray) -> None:
        super().reset(base)
        self.rls.reset()

    def mu_hat(self) -> np.ndarray:
        if self.prev is not None:
            self.rls.update(self.prev[0], self.prev[1], self.hist[-1])
        theta = float(self.rls.theta)
        (m_lo, m_hi), (k_lo, k_hi) = self.mass_range, self.kf_range
        mass = m_lo + (self._grid + 1.0) / 2.0 * (m_hi - m_lo)
        mu_kf = 2.0 * (theta * mass / (4.0 * self.max_rpm ** 2) - k_lo) / (k_hi - k_lo) - 1.0
        feasible = np.abs(mu_kf) <= 1.0
        if feasible.any():
            i = int(np.argmin(np.where(feasible, self._grid ** 2 + mu_kf ** 2, np.inf)))
        else:  # beyond the representable ratios: the corner nearest θ̂
            i = int(np.argmin(np.abs(np.abs(mu_kf) - 1.0)))
        mu = np.zeros(self.k)
        mu[self.i_mass], mu[self.i_kf] = self._grid[i], float(np.clip(mu_kf[i], -1.0, 1.0))
        self.estimate = {"theta": theta}
        return mu


def rma_parts(rma: Path, rma_base: Path) -> tuple[RMAController, Callable[[dict[str, Any]], np.ndarray]]:
    """The RMA controller of phase-2 output ``rma`` and the true ``z = e(μ)`` of an episode under
    the phase-1 run ``rma_base``."""
    import torch

    from sim2real.sysid.rma import true_z
    from sim2real.train.export import build_module
    from sim2real.train.policy import load_policy

    import yaml

    files = json.loads((rma / "osi.json").read_text())["files"]
    history = int(yaml.safe_load(Path(files["sidecar"]).read_text())["observation"]["history"])
    ctrl = RMAController(torch.jit.load(files["policy"]), torch.jit.load(files["adaptation"]), history)
    base = build_module(load_policy(rma_base))
    return ctrl, lambda ep: true_z(base, ep["mu"][None])[0]


def load_controllers(runs: Path, seed: int, env: Any) -> tuple[dict[str, Controller], dict[str, Any]]:
    """Controllers of seed ``seed``'s runs under ``runs`` and what the error curves need."""
    d = {name: runs / name / f"seed_{seed}" for name in ("plain", "up", "rma_base", "osi", "rma")}
    import torch
    import yaml

    from sim2real.train.export import build_module
    from sim2real.train.policy import load_policy

    up = build_module(load_policy(d["up"]))
    osi_report = json.loads((d["osi"] / "osi.json").read_text())
    osi = torch.jit.load(osi_report["files"]["osi"])
    h_osi = int(yaml.safe_load(Path(osi_report["files"]["sidecar"]).read_text())["observation"]["history"])
    ctrls: dict[str, Controller] = {
        "plain DR": Plain(build_module(load_policy(d["plain"]))),
        "universal + true μ": Universal(up, lambda c, mu: mu),
        "universal + μ̄": Universal(up, lambda c, mu: np.zeros_like(mu)),
        "UP-OSI": Universal(up, osi_mu(osi), history=h_osi),
    }
    from sim2real.sysid.rls import thrust_to_mass, thrust_to_mass_from_mu

    extra: dict[str, Any] = {"theta": {"truth": lambda ep: thrust_to_mass(env, ep["randomization"]),
                                       "from_mu": lambda mu: thrust_to_mass_from_mu(env, mu)}}
    ctrls["universal + RLS"] = RLSUniversal(up, env)
    ctrls["RMA"], extra["z"] = rma_parts(d["rma"], d["rma_base"])
    return ctrls, extra


def evaluate_seed(env: Any, runs: Path, s: int, episodes: int, steps: list[int], scenarios: dict[str, Path],
                  log: Callable[[str], None]) -> dict[str, Any]:
    """Every controller of seed ``s`` on the same ``episodes`` episodes per scenario."""
    k = int(env.get_wrapper_attr("mu_dim"))
    ctrls, extra = load_controllers(runs, s, env)
    res: dict[str, Any] = {"success": {}, "return": {}, "errors": {}}
    for scen, prof in scenarios.items():
        env.get_wrapper_attr("set_profile")(str(prof))
        for name, ctrl in ctrls.items():
            eps = [run_episode(env, ctrl, 30_000 + i, k) for i in range(episodes)]
            res["success"][f"{scen}|{name}"] = float(np.mean([e["success"] for e in eps]))
            res["return"][f"{scen}|{name}"] = float(np.mean([e["return"] for e in eps]))
            if scen != "in range":
                continue
            if name == "UP-OSI":
                res["errors"]["UP-OSI μ̂ (RMS, normalised)"] = error_curve(eps, "mu", lambda e: e["mu"], steps)
                res["errors"]["UP-OSI thrust/mass (relative)"] = error_curve(
                    [dict(e, estimates={"theta": np.asarray([extra["theta"]["from_mu"](m) for m in e["estimates"]["mu"]])})
                     for e in eps], "theta", extra["theta"]["truth"], steps, relative=True)
            elif name == "universal + RLS":
                res["errors"]["RLS thrust/mass (relative)"] = error_curve(eps, "theta", extra["theta"]["truth"], steps,
                                                                          relative=True)
            elif name == "RMA":
                res["errors"]["RMA ẑ (RMS)"] = error_curve(eps, "z", extra["z"], steps)
        log(f"seed {s} {scen} done")

    res["controllers"] = list(ctrls)
    return res


def main() -> int:
    import torch

    from sim2real.sysid.report import table
    from sim2real.sysid.upenv import make_up_env

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="runs/online_id", help="folder with {plain,up,rma_base,osi,rma}/seed_<s>")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--train", action="store_true", help="train / fit the missing runs first (hours of CPU)")
    ap.add_argument("--episodes", type=int, default=30, help="episodes per controller, scenario and seed")
    ap.add_argument("--fresh", action="store_true",
                    help="evaluate every seed again (default: reuse RUNS/online_id_seed_<s>.json written by an "
                         "earlier evaluation with the same --episodes)")
    ap.add_argument("--json", help="write all results here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0, c0 = time.time(), time.process_time()
    runs = Path(args.runs).resolve()

    def log(msg: str) -> None:
        print(f"[{time.time() - t0:6.0f} s] {msg}", file=sys.stderr, flush=True)

    if args.train:
        train_missing(runs, args.seeds, log)
    env = make_up_env(TASK["env"], previous_action=False, profile=str(TASK["profile"]))
    rate = float(env.get_wrapper_attr("robot").control.rate_hz)
    steps = [int(round(tau * rate)) for tau in TIMES_S]
    scenarios = {"in range": TASK["profile"], "out of range": TASK["outside"]}
    per_seed: dict[int, Any] = {}
    for s in args.seeds:
        cache = runs / f"online_id_seed_{s}.json"
        cached = json.loads(cache.read_text()) if cache.is_file() and not args.fresh else None
        if cached is not None and cached.get("episodes") == args.episodes:
            log(f"seed {s}: results from {cache}")
            per_seed[s] = cached["result"]
            continue
        per_seed[s] = evaluate_seed(env, runs, s, args.episodes, steps, scenarios, log)
        cache.write_text(json.dumps({"episodes": args.episodes, "result": per_seed[s]}, default=float))

    names = per_seed[args.seeds[0]]["controllers"]
    print(f"\nsuccess (mean ± 95 % CI over seeds {args.seeds}, {args.episodes} episodes each)")
    print(table([(scen, *[fmt([per_seed[s]["success"][f"{scen}|{n}"] for s in args.seeds]) for n in names])
                 for scen in scenarios], ("scenario", *names)))
    print("\nreturn")
    print(table([(scen, *[fmt([per_seed[s]["return"][f"{scen}|{n}"] for s in args.seeds], 0) for n in names])
                 for scen in scenarios], ("scenario", *names)))
    print("\nestimation error / mean-guess error vs time since reset (in range; target ≤ 0.33 at 1 s)")
    rows = []
    for key in per_seed[args.seeds[0]]["errors"]:
        ratios = [[_ratio(per_seed[s]["errors"][key]["error"][i], per_seed[s]["errors"][key]["mean_guess"][i])
                   for s in args.seeds] for i in range(len(steps))]
        rows.append((key, *[fmt(r) for r in ratios]))
    print(table(rows, ("estimate", *[f"{tau:g} s" for tau in TIMES_S])))
    key = "UP-OSI μ̂ (RMS, normalised)"
    comps = [f"{e}.{t}" for e, t, _, _ in env.get_wrapper_attr("components")]
    i1 = TIMES_S.index(1.0)
    print("\nUP-OSI per μ component at 1 s: error / mean-guess error")
    print(table([(c, fmt([_ratio(per_seed[s]["errors"][key]["error_per_dim"][i1][j],
                                 per_seed[s]["errors"][key]["mean_guess_per_dim"][i1][j]) for s in args.seeds]))
                 for j, c in enumerate(comps)], ("component", "1 s")))
    out = {"seeds": args.seeds, "episodes": args.episodes, "times_s": list(TIMES_S), "per_seed": per_seed,
           "wall_s": time.time() - t0, "cpu_s": time.process_time() - c0, "load_avg": os.getloadavg()}
    print(f"\nwall {out['wall_s']:.0f} s, CPU {out['cpu_s']:.0f} s, load average {out['load_avg'][0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=float))
    env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
