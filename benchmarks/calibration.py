"""Calibration benchmark on an arm the fitted model did not produce: MuJoCo hardware, blind draws.

For each drive variant and seed, a KUKA iiwa hardware is drawn from
``configs/hardware/arm_draw_calibration.yaml`` with ``numpy.random.default_rng(seed)`` (per-link masses,
per-joint damping and Coulomb friction, a common error factor on the drive's kp and one on its kd,
transport delay, sensor noise) and simulated by :mod:`sim2real.sim2sim` — MuJoCo with its own
servo — never by the PyBullet model being fitted. The variant fixes the drive's structure, as a
user knows it from the vendor's documentation: ``ramp_ff`` (setpoint ramped over the command period,
gravity feed-forward from the nominal model) and ``step_noff`` (setpoint stepped, no feed-forward).

Each run: a multisine excitation log (``--duration`` s) and a held-out chirp log (``--heldout`` s) are
recorded from the hardware at its joint_states rate with efforts, written as rosbag2 (MCAP) and read
back (the real ingestion path); the model the user would write — the URDF, the drive's datasheet
gains and the motors' reflected inertia from the base hardware file, the variant's interpolation and
feed-forward — is calibrated on the first log; the second log scores nominal vs calibrated replay
error, next to the error with the true parameters (the structural floor: what the PyBullet model
cannot reproduce of MuJoCo at any parameter values). Printed: truth vs estimate per parameter, relative error, 95 % interval coverage, the
identifiable flag, the fit verdict (noise floor, χ²/dof), held-out error ratio, evaluations, CPU time.

    python benchmarks/calibration.py [--seeds 0,1,2] [--variants ramp_ff,step_noff] [--duration 60]
        [--heldout 30] [--budget 1000] [--workers 2] [--json out.json]

Targets: median relative error ≤ 10 % on link masses flagged identifiable and ≤ 20 % on damping and
friction; 95 % intervals cover the truth for ≥ 80 % of parameters; delay within ±2 physics steps;
held-out replay error of the calibrated model ≤ 0.3× the nominal's; no parameter on a bound reported
as identified; ≤ 1000 simulator evaluations and ≤ 5 min CPU per calibration.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim2real.robots import load_robot  # noqa: E402
from sim2real.sim2sim.arm import ArmHardware  # noqa: E402
from sim2real.sim2sim.hardware import ArmHardwareConfig, draw_hardware, load_hardware  # noqa: E402
from sim2real.sysid.bagio import read_bag, write_bag  # noqa: E402
from sim2real.sysid.calibrate import CalibrationConfig, calibrate  # noqa: E402
from sim2real.sysid.excitation import excitation  # noqa: E402
from sim2real.sysid.logs import Commands, HardwareLog, JointStates  # noqa: E402
from sim2real.sysid.params import parse_params  # noqa: E402
from sim2real.sysid.report import table  # noqa: E402
from sim2real.sysid.validate import validate  # noqa: E402

DRAW = ROOT / "configs" / "hardware" / "arm_draw_calibration.yaml"
#: drive structure per variant: hardware (setpoint, gravity_ff) and the model's (interpolation, gravity_ff)
VARIANTS = {"ramp_ff": ("ramp", True, "linear"), "step_noff": ("step", False, "zoh")}
T0_NS = 1_700_000_000_000_000_000


def hardware_log(robot, hw: ArmHardwareConfig, targets: np.ndarray, rate_hz: float, noise_seed: int) -> HardwareLog:  # noqa: ANN001
    """Drive the MuJoCo hardware with ``targets`` ((T, n) position commands at ``rate_hz``) and log
    its JointState stream (positions, velocities, efforts at ``hw.joint_states_hz``) and the commands."""
    arm = ArmHardware(robot, hw, rng=np.random.default_rng(noise_seed))
    arm.reset()
    per_cmd = int(round(hw.physics_hz / rate_hz))
    per_pub = max(1, int(round(hw.physics_hz / hw.joint_states_hz)))
    t, q, qd, tau, cmd_t = [], [], [], [], []
    for target in targets:
        cmd_t.append(arm.time)
        arm.command(target)
        for _ in range(per_cmd):
            if arm.steps % per_pub == 0:
                s = arm.state()
                t.append(s.time), q.append(s.position), qd.append(s.velocity), tau.append(s.effort)
            arm.step()
    return HardwareLog(source="<mujoco hardware>", joint_names=robot.joint_names, t0_ns=T0_NS,
                       joint_states=JointStates(np.array(t), np.array(q), np.array(qd), np.array(tau)),
                       command=Commands(np.array(cmd_t), np.asarray(targets, dtype=float)))


def datasheet_robot(base: ArmHardwareConfig, interpolation: str, gravity_ff: bool, folder: Path):  # noqa: ANN201
    """The robot.yaml a user of this arm would write: the shipped description with the drive's datasheet
    gains and the motors' reflected inertia (the base hardware file), and the variant's drive structure."""
    raw = yaml.safe_load((ROOT / "robots" / "kuka_iiwa" / "robot.yaml").read_text())
    raw["actuators"] = [{"joints": "all", "model": "pd", "kp": list(base.kp), "kd": list(base.kd),
                         "interpolation": interpolation, "gravity_ff": gravity_ff}]
    names = [j["name"] for j in raw["joints"]]
    raw.setdefault("nominal", {})["armature"] = dict(zip(names, base.armature))
    path = folder / "robot.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_robot(path)


def truth_values(specs, hw: ArmHardwareConfig, base: ArmHardwareConfig, robot) -> dict[str, float]:  # noqa: ANN001
    """The true value of each calibrated parameter in the calibration's units."""
    joints = robot.joint_names
    damping0 = robot.nominal.get("joint_damping", 0.0)
    out = {}
    for s in specs:
        name, _, target = s.name.partition(":")
        j = joints.index(target) if target in joints else None
        if name == "mass":
            out[s.name] = hw.mass_factors[target]
        elif name == "damping":
            nominal = damping0[target] if isinstance(damping0, dict) else damping0
            out[s.name] = hw.damping[j] / nominal
        elif name == "friction":
            out[s.name] = hw.friction[j]
        elif name in ("kp", "kd"):
            ratios = np.array(getattr(hw, name)) / np.array(getattr(base, name))
            out[s.name] = float(ratios[j] if j is not None else ratios.mean())
        elif name == "delay":
            out[s.name] = hw.delay * robot.control.physics_hz
        else:
            raise SystemExit(f"benchmark has no truth for parameter {s.name}")
    return out


def run(seed: int, variant: str, args: argparse.Namespace) -> dict:
    setpoint, ff, interpolation = VARIANTS[variant]
    shipped = load_robot("kuka_iiwa")
    base = load_hardware(ROOT / "configs" / "hardware" / "kuka_iiwa.yaml", shipped)
    hw = replace(draw_hardware(DRAW, shipped, np.random.default_rng(seed)), setpoint=setpoint, gravity_ff=ff)
    base = replace(base, setpoint=setpoint, gravity_ff=ff)
    rate = shipped.control.rate_hz
    rng = np.random.default_rng(10_000 + seed)
    ident = excitation("multisine", shipped, args.duration, rate, rng, amplitude=args.amplitude)
    held = excitation("chirp", shipped, args.heldout, rate, rng, amplitude=args.amplitude)
    with tempfile.TemporaryDirectory() as tmp:
        robot = datasheet_robot(base, interpolation, ff, Path(tmp))
        logs = []
        for name, targets, noise_seed in (("ident", ident, seed), ("heldout", held, seed + 1)):
            bag = write_bag(Path(tmp) / name, hardware_log(shipped, hw, targets, rate, noise_seed), robot, storage="mcap")
            logs.append(read_bag(bag, robot, require=("joint_states", "command")))
        specs = parse_params(args.params, robot, bounds=parse_bounds(args.bounds))
        truth = truth_values(specs, hw, base, robot)
        # the structural floor: the held-out log replayed with the TRUE parameters (what no fit can beat)
        floor = validate(logs[1], robot, specs, [truth[s.name] for s in specs], horizon=args.horizon,
                         max_windows=args.max_windows)
        floor = {k: v.rms_calibrated_all for k, v in floor.signals.items()}
        cfg = CalibrationConfig(budget=args.budget, workers=args.workers, horizon=args.horizon,
                                max_windows=args.max_windows, seed=seed)
        t0 = time.time()
        res = calibrate(logs[0], robot, specs, cfg, progress=not args.quiet)
        wall = time.time() - t0
        val = validate(logs[1], robot, specs, [p.estimate for p in res.params], horizon=args.horizon,
                       max_windows=args.max_windows)
    rows = []
    for p in res.params:
        true = truth[p.name]
        err = abs(p.estimate - true) / abs(true) if true != 0 else abs(p.estimate - true)
        rows.append({"param": p.name, "true": true, "estimate": p.estimate, "rel_error": err,
                     "abs_error": abs(p.estimate - true), "ci_low": p.ci_low, "ci_high": p.ci_high,
                     "covered": bool(p.ci_low - 1e-9 <= true <= p.ci_high + 1e-9),
                     "identifiable": bool(p.identifiable), "bound": p.bound})
    return {"seed": seed, "variant": variant, "rows": rows, "evaluations": res.evaluations, "cpu_time": res.cpu_time,
            "wall_time": wall, "cost_initial": res.cost_initial, "cost_final": res.cost_final, "fit": res.fit,
            "heldout": {k: {"nominal": v.rms_nominal_all, "calibrated": v.rms_calibrated_all, "ratio": v.ratio,
                            "truth": floor[k]}
                        for k, v in val.signals.items()},
            "heldout_cost": {"nominal": val.cost_nominal, "calibrated": val.cost_calibrated},
            "n_params": len(specs), "physics_hz": robot.control.physics_hz}


def parse_bounds(items: list[str]) -> dict[str, tuple[float, float]]:
    out = {}
    for item in items:
        name, _, rng = item.partition("=")
        lo, _, hi = rng.partition(":")
        out[name] = (float(lo), float(hi))
    return out


GROUPS = (("mass", "link masses"), ("damping", "damping"), ("friction", "friction"), ("kp", "kp"), ("kd", "kd"))


def summarize(results: list[dict]) -> list[tuple]:
    """One row per target of the benchmark: measured value, target, met or not."""
    rows = [x for r in results for x in r["rows"]]
    group = lambda g: [x for x in rows if x["param"].split(":")[0] == g]  # noqa: E731
    out = []
    masses = [x for x in group("mass") if x["identifiable"]]
    med = lambda xs: float(np.median([x["rel_error"] for x in xs])) if xs else float("nan")  # noqa: E731
    out.append(("median rel. error, masses flagged identifiable", f"{100 * med(masses):.1f} % (n={len(masses)})",
                "<= 10 %", med(masses) <= 0.10))
    out.append(("median rel. error, all masses", f"{100 * med(group('mass')):.1f} %", "-", None))
    for g in ("damping", "friction"):
        out.append((f"median rel. error, {g}", f"{100 * med(group(g)):.1f} %", "<= 20 %", med(group(g)) <= 0.20))
    for g in ("kp", "kd"):
        if group(g):
            out.append((f"median rel. error, {g}", f"{100 * med(group(g)):.1f} %", "-", None))
    cover = float(np.mean([x["covered"] for x in rows]))
    out.append(("95 % intervals covering the truth", f"{100 * cover:.0f} %", ">= 80 %", cover >= 0.80))
    delay = [r for r in rows if r["param"] == "delay"]
    if delay:
        worst = max(x["abs_error"] for x in delay)
        out.append(("delay |error| (physics steps), worst", f"{worst:.1f}", "<= 2", worst <= 2))
    ratios = [r["heldout"]["position"]["ratio"] for r in results if "position" in r["heldout"]]
    worst = max(ratios) if ratios else float("nan")
    out.append(("held-out position error calibrated / nominal, worst", f"{worst:.2f}", "<= 0.3", worst <= 0.3))
    bad = sum(1 for x in rows if x["bound"] and x["identifiable"])
    out.append(("parameters on a bound reported identified", str(bad), "0", bad == 0))
    ev, cpu = max(r["evaluations"] for r in results), max(r["cpu_time"] for r in results)
    out.append(("simulator evaluations per calibration, max", str(ev), "<= 1000", ev <= 1000))
    out.append(("CPU time per calibration, max", f"{cpu:.0f} s", "<= 300 s", cpu <= 300))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="mass:*,damping:*,friction:*,kp,kd,delay")
    ap.add_argument("--bounds", nargs="*", default=["friction=0:8"], help="NAME=LOW:HIGH overrides")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated hardware seeds")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {list(VARIANTS)}")
    ap.add_argument("--duration", type=float, default=60.0, help="identification log length (s)")
    ap.add_argument("--heldout", type=float, default=30.0, help="held-out log length (s)")
    ap.add_argument("--amplitude", type=float, default=0.8, help="excitation peak per joint (rad; speed-limited)")
    ap.add_argument("--budget", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--horizon", type=int, default=20)
    ap.add_argument("--max-windows", type=int, default=24)
    ap.add_argument("--json", help="also write the numbers here")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variants {unknown}; expected some of {list(VARIANTS)}")
    results = []
    for variant in variants:
        for seed in (int(s) for s in args.seeds.split(",")):
            r = run(seed, variant, args)
            results.append(r)
            fit = r["fit"] or {}
            print(f"\n{variant} seed {seed}: {r['n_params']} parameters, {r['evaluations']} simulator evaluations, "
                  f"CPU {r['cpu_time']:.0f} s, cost {r['cost_initial']:.4g} -> {r['cost_final']:.4g}, "
                  f"fit: {fit.get('verdict', '?')} (chi2/dof {fit.get('chi2_dof', float('nan')):.3g})")
            print(table([(x["param"], f"{x['true']:.4g}", f"{x['estimate']:.4g}", f"{100 * x['rel_error']:.1f}%",
                          f"[{x['ci_low']:.4g}, {x['ci_high']:.4g}]", "yes" if x["covered"] else "NO",
                          "yes" if x["identifiable"] else "no", x["bound"] or "") for x in r["rows"]],
                        ("param", "true", "estimate", "rel.err", "95% CI", "covers", "identifiable", "bound")))
            print("held-out replay RMS (nominal -> calibrated): " + ", ".join(
                f"{k} {v['nominal']:.4g} -> {v['calibrated']:.4g} (x{v['ratio']:.2f}; true parameters {v['truth']:.4g})"
                for k, v in r["heldout"].items()))
            sys.stdout.flush()
    print(f"\nsummary: {len(results)} calibrations, variants {variants}, seeds {args.seeds}")
    print(table([(a, b, c, "-" if d is None else ("met" if d else "MISSED")) for a, b, c, d in summarize(results)],
                ("measure", "measured", "target", "")))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
