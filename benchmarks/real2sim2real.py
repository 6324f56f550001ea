"""The real2sim2real loop, end to end and blind, on the MuJoCo hardware of ``sim2real sim2sim``.

For each hardware seed an arm is drawn from ``configs/hardware/arm_draw.yaml`` by the ``sim2sim``
process itself (its parameters go only to a truth file this script reads after the run, for the
table); the pipeline sees nothing but ROS 2 topics over DDS:

1. every given policy is exported and driven through ``sim2real deploy --transport dds`` to each of
   ``--goals`` fixed goals (one deploy per goal: soft start to the home pose, start gate, then the
   policy for one episode, 100 control steps) → success within 5 cm and within 1 cm, final
   distance, time to reach 5 cm;
2. ``sim2real excite`` sends a multisine through the deploy safety layer and records a rosbag2;
   ``sim2real calibrate`` fits masses, damping, friction, the drive's kp/kd and the delay;
3. the randomized policy is fine-tuned on the narrowed profile (``init_from`` its run's best) →
   exported → deployed to the same goals;
4. one table per seed and a summary: PyBullet success (``sim2real evaluate`` on the nominal world),
   MuJoCo success per policy, precision measures, the calibration's verdict, CPU/wall time per stage.

    python benchmarks/real2sim2real.py --policy nominal=RUN --policy peng2018=RUN [--policy epopt=RUN] \\
        --finetune peng2018 [--seeds 0,1,2] [--goals 20] [--finetune-steps 100000] --out DIR

``RUN`` is a training run folder (``sim2real train --out``). Deploys run in real time; policies of one
seed run side by side on separate DDS domains (``--parallel``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim2real.robots import load_robot  # noqa: E402
from sim2real.sysid.report import table  # noqa: E402

ROBOT = "kuka_iiwa"
DRAW = ROOT / "configs" / "hardware" / "arm_draw.yaml"
EPISODE_S = 5.0  # 100 control steps at 20 Hz, the env's episode
SOFT_START_S = 2.0
GATE_TOLERANCE = 0.05


def sim2real(*argv: str, log: Path | None = None, check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m sim2real ARGV`` and return the finished process (its output goes to ``log``)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = open(log, "a") if log else subprocess.DEVNULL  # noqa: SIM115
    try:
        proc = subprocess.run([sys.executable, "-m", "sim2real", *argv], cwd=ROOT, env=env, stdout=out,
                              stderr=subprocess.STDOUT, timeout=timeout, text=True)
    finally:
        if log:
            out.close()
    if check and proc.returncode != 0:
        raise SystemExit(f"sim2real {argv[0]} failed (exit {proc.returncode}); see {log}")
    return proc


def spawn(*argv: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-m", "sim2real", *argv], cwd=ROOT, env=env,
                            stdout=open(log, "a"), stderr=subprocess.STDOUT, text=True)  # noqa: SIM115


def child_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def fixed_goals(n: int, robot, seed: int = 1234) -> np.ndarray:  # noqa: ANN001
    """``n`` goals (m, base frame) drawn uniformly from the robot's reach workspace, the same for every run."""
    ws = robot.model_params["reach_workspace"]
    return np.random.default_rng(seed).uniform(ws["low"], ws["high"], size=(n, 3))


#: DDS participants of this process are created one at a time (two threads creating them at once
#: on different domains left one of them deaf)
_DDS_CREATE = threading.Lock()


class Monitor:
    """Listens on one DDS domain: joint states (robot joint order) and the deploy node's phase."""

    def __init__(self, robot, domain: int) -> None:  # noqa: ANN001
        self.robot, self.domain = robot, domain
        self.names = list(robot.ros2.joint_names)
        self.lock = threading.Lock()
        self.states: list[tuple[float, np.ndarray]] = []
        self.phases: list[tuple[float, str]] = []
        self.transport = None
        self._connect()

    def _connect(self) -> None:
        from sim2real.ros2.transport_dds import DdsTransport

        with _DDS_CREATE:
            if self.transport is not None:
                self.transport.close()
            self.transport = DdsTransport(f"r2s2r_monitor_{self.domain}", domain_id=self.domain)
            self.transport.subscribe(self.robot.ros2.topics.get("joint_states", "/joint_states"),
                                     "sensor_msgs/msg/JointState", self._on_state, sensor=True)
            self.transport.subscribe("/sim2real/diagnostics", "diagnostic_msgs/msg/DiagnosticArray", self._on_diag)

    def _on_state(self, msg) -> None:  # noqa: ANN001
        index = {n: i for i, n in enumerate(msg.name)}
        if not all(n in index for n in self.names):
            return
        q = np.array([msg.position[index[n]] for n in self.names])
        with self.lock:
            self.states.append((time.monotonic(), q))

    def _on_diag(self, msg) -> None:  # noqa: ANN001
        now = time.monotonic()
        with self.lock:
            for status in msg.status:
                self.phases.append((now, str(status.message)))

    def clear(self) -> None:
        with self.lock:
            self.states.clear()
            self.phases.clear()

    def wait_state(self, timeout: float, tries: int = 3) -> bool:
        """Wait for a joint state; reconnect (a new participant) after each ``timeout`` s without one."""
        for _ in range(tries):
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                with self.lock:
                    if self.states:
                        return True
                time.sleep(0.05)
            self._connect()
        return False

    def close(self) -> None:
        self.transport.close()


def episode_measures(monitor: Monitor, chain, ee_link: str, joint_names: list[str], goal: np.ndarray) -> dict:  # noqa: ANN001
    """Distance to the goal over the policy's episode, from the first 'running' diagnostics on."""
    with monitor.lock:
        states = list(monitor.states)
        phases = list(monitor.phases)
    engaged = next((t for t, ph in phases if ph == "running"), None)
    if engaged is None or not states:
        return {"engaged": False, "final_distance": float("nan"), "success_5cm": False, "success_1cm": False,
                "time_to_5cm": float("nan"), "overshoot": float("nan")}
    ts = np.array([t for t, _ in states])
    keep = (ts >= engaged) & (ts <= engaged + EPISODE_S)
    dist = np.array([np.linalg.norm(chain.link_position(dict(zip(joint_names, q)), ee_link) - goal)
                     for (t, q), k in zip(states, keep) if k])
    t_rel = ts[keep] - engaged
    reached = np.flatnonzero(dist < 0.05)
    first = reached[0] if reached.size else None
    return {"engaged": True, "final_distance": float(dist[-1]), "success_5cm": bool(dist[-1] < 0.05),
            "success_1cm": bool(dist[-1] < 0.01),
            "time_to_5cm": float(t_rel[first]) if first is not None else float("nan"),
            # how far it moved back out after first reaching 5 cm (m)
            "overshoot": float(dist[first:].max() - dist[-1]) if first is not None else float("nan")}


def deploy_goals(policy: Path, seed: int, goals: np.ndarray, out: Path, domain: int) -> dict:
    """One MuJoCo hardware (drawn from ``seed``) and one deploy per goal; the per-goal measures."""
    from sim2real.ros2.kinematics import UrdfChain

    done = out / "goals.json"
    if done.exists():  # measured already (a rerun after a later stage failed)
        return json.loads(done.read_text())
    robot = load_robot(ROBOT)
    chain = UrdfChain(robot.model_path())
    out.mkdir(parents=True, exist_ok=True)
    params = out / "deploy_params.yaml"
    params.write_text(yaml.safe_dump({"sim2real_deploy": {"ros__parameters": {
        "diagnostics": {"rate_hz": 20.0},
        "safety": {"soft_start_s": SOFT_START_S, "start_gate_tolerance": GATE_TOLERANCE}}}}))
    per_goal_s = SOFT_START_S + EPISODE_S + 4.0
    hw = spawn("sim2sim", "--robot", ROBOT, "--draw", str(DRAW), "--seed", str(seed), "--truth", str(out / "truth.json"),
               "--transport", "dds", "--domain-id", str(domain), "--duration", "86400",  # stopped below
               "--summary", str(out / "hardware_summary.json"), log=out / "sim2sim.log")
    monitor = Monitor(robot, domain)
    rows = []
    try:
        if not monitor.wait_state(30):
            raise SystemExit(f"no joint states from the MuJoCo hardware on domain {domain}; see {out / 'sim2sim.log'}")
        for i, goal in enumerate(goals):
            monitor.clear()
            sim2real("deploy", "--robot", ROBOT, "--policy", str(policy), "--transport", "dds", "--domain-id", str(domain),
                     "--params", str(params), "--goal", *(f"{g:.4f}" for g in goal), "--duration", f"{per_goal_s:.1f}",
                     log=out / "deploy.log", check=False, timeout=per_goal_s + 60)
            m = episode_measures(monitor, chain, robot.end_effector_link, robot.joint_names, goal)
            rows.append({"goal": goal.tolist(), **m})
    finally:
        monitor.close()
        hw.terminate()
        try:
            hw.wait(30)
        except subprocess.TimeoutExpired:
            hw.kill()
    ok = lambda key: float(np.mean([r[key] for r in rows]))  # noqa: E731
    reach_t = [r["time_to_5cm"] for r in rows if np.isfinite(r["time_to_5cm"])]
    result = {"goals": rows, "success_5cm": ok("success_5cm"), "success_1cm": ok("success_1cm"),
              "median_final_distance": float(np.nanmedian([r["final_distance"] for r in rows])),
              "median_time_to_5cm": float(np.median(reach_t)) if reach_t else float("nan"),
              "engaged": int(sum(r["engaged"] for r in rows))}
    done.write_text(json.dumps(result, indent=1))
    return result


def export(run: Path, out: Path, log: Path) -> Path:
    pt = out / f"{run.name}.pt"
    if not pt.exists():
        sim2real("export", "--policy", str(run), "--out", str(pt), log=log)
    return pt


def pybullet_success(run: Path, episodes: int, out: Path, log: Path) -> float:
    sim2real("evaluate", "--policy", str(run), "--episodes", str(episodes), "--out", str(out), log=log)
    data = json.loads((out / "results.json").read_text())
    rows = data if isinstance(data, list) else data.get("results", data.get("rows", []))
    for r in rows:
        if r.get("world", r.get("condition", "nominal")) == "nominal":
            return float(r["success_rate"])
    return float("nan")


def finetune(run: Path, calibrated: Path, steps: int, out: Path, log: Path) -> Path:
    """Fine-tune ``run``'s policy on the calibrated (narrowed) profile: the run's config with that profile,
    ``init_from`` the run's best policy and ``steps`` more steps."""
    cfg = yaml.safe_load((run / "run.yaml").read_text())
    cfg = cfg.get("config", cfg)
    cfg["profile"] = str(calibrated)
    cfg["init_from"] = str(run / "best") if (run / "best").exists() else str(run)
    cfg["total_timesteps"] = int(steps)
    cfg["description"] = f"{run.name} fine-tuned on {calibrated.name}"
    path = out / "finetune.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    target = out / "finetuned"
    if not (target / "report.json").exists():
        sim2real("train", str(path), "--out", str(target), "--no-progress", log=log)
    return target


def calibrate_on_hardware(seed: int, domain: int, out: Path, args: argparse.Namespace) -> dict:
    """``sim2real excite`` against the seed's hardware, then ``sim2real calibrate`` on the bag."""
    out.mkdir(parents=True, exist_ok=True)
    log = out / "calibration.log"
    cpu0, wall0 = child_cpu(), time.time()
    bag = out / "excite_bag"
    if not bag.exists():
        hw = spawn("sim2sim", "--robot", ROBOT, "--draw", str(DRAW), "--seed", str(seed), "--truth", str(out / "truth.json"),
                   "--transport", "dds", "--domain-id", str(domain), "--duration", str(args.excite_s + 60),
                   log=out / "sim2sim.log")
        try:
            # exit 1: the safety layer stopped the experiment early (e.g. the watchdog on a late state); the
            # bag holds what was recorded until then and is calibrated as it is, as on a real robot
            proc = sim2real("excite", "--robot", ROBOT, "--transport", "dds", "--domain-id", str(domain), "--excitation",
                            "multisine", "--duration", str(args.excite_s), "--out", str(bag), log=log, check=False)
            if proc.returncode not in (0, 1) or not bag.exists():
                raise SystemExit(f"sim2real excite failed (exit {proc.returncode}); see {log}")
        finally:
            hw.terminate()
            hw.wait(30)
    excite_wall = time.time() - wall0
    calibrated = out / "calibrated.yaml"
    if not calibrated.exists():
        sim2real("calibrate", "--log", str(bag), "--robot", ROBOT, "--params", args.params, "--profile", args.prior,
                 "--budget", str(args.budget), "--workers", str(args.workers), "--out", str(calibrated), log=log)
    report = json.loads(calibrated.with_suffix(".json").read_text())
    params = report.get("params", [])
    fit = report.get("fit", {})
    stops = [line.split('"')[3] for line in log.read_text().splitlines() if '"stop_reason"' in line]
    return {"profile": calibrated, "excite_wall_s": excite_wall, "excite_stop": stops[-1] if stops else "?", "calibrate_cpu_s": child_cpu() - cpu0,
            "identified": sum(1 for p in params if p.get("identifiable")), "n_params": len(params),
            "verdict": fit.get("verdict", "?"), "chi2_dof": fit.get("chi2_dof", float("nan")),
            "estimates": {p["name"]: p["estimate"] for p in params}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", action="append", required=True, metavar="NAME=RUN", help="a training run folder")
    ap.add_argument("--finetune", required=True, help="NAME of the --policy fine-tuned on the calibrated profile")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated hardware seeds")
    ap.add_argument("--goals", type=int, default=20)
    ap.add_argument("--episodes", type=int, default=20, help="PyBullet evaluation episodes per policy")
    ap.add_argument("--excite-s", type=float, default=60.0)
    ap.add_argument("--params", default="mass:*,damping,friction,kp,kd,delay")
    ap.add_argument("--prior", default="peng2018_arm", help="profile whose ranges bound the calibration and stay for "
                    "parameters it cannot identify")
    ap.add_argument("--budget", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--finetune-steps", type=int, default=100_000)
    ap.add_argument("--parallel", type=int, default=2, help="policies deployed side by side (separate DDS domains)")
    ap.add_argument("--domain", type=int, help="first DDS domain id of this run (it uses 3 per seed)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = {}
    for item in args.policy:
        name, _, path = item.partition("=")
        if not name or not Path(path).is_dir():
            ap.error(f"--policy {item!r}: expected NAME=RUN_FOLDER")
        runs[name] = Path(path).resolve()
    if args.finetune not in runs:
        ap.error(f"--finetune {args.finetune!r} is not one of the --policy names {sorted(runs)}")
    robot = load_robot(ROBOT)
    goals = fixed_goals(args.goals, robot)
    base_domain = args.domain if args.domain is not None else random.Random(os.getpid()).randint(20, 150)
    log = out / "pipeline.log"
    pts = {name: export(run, out, log) for name, run in runs.items()}
    pyb = {name: pybullet_success(run, args.episodes, out / f"pybullet_{name}", log) for name, run in runs.items()}
    results = []
    for seed in (int(s) for s in args.seeds.split(",")):
        sdir = out / f"seed{seed}"
        t0 = time.time()
        with ThreadPoolExecutor(args.parallel) as pool:
            futures = {name: pool.submit(deploy_goals, pts[name], seed, goals, sdir / name, base_domain + 3 * seed + k)
                       for k, name in enumerate(pts)}
            mujoco = {name: f.result() for name, f in futures.items()}
        deploy_wall = time.time() - t0
        cal = calibrate_on_hardware(seed, base_domain + 3 * seed + 2, sdir / "calibration", args)
        cpu0, t1 = child_cpu(), time.time()
        tuned = finetune(runs[args.finetune], cal["profile"], args.finetune_steps, sdir, log)
        train_cpu, train_wall = child_cpu() - cpu0, time.time() - t1
        tuned_pt = export(tuned, sdir, log)
        name = f"{args.finetune}+calibrated"
        mujoco[name] = deploy_goals(tuned_pt, seed, goals, sdir / "finetuned_deploy", base_domain + 3 * seed)
        pyb_tuned = pybullet_success(tuned, args.episodes, sdir / "pybullet_finetuned", log)
        truth = json.loads((sdir / "calibration" / "truth.json").read_text())
        r = {"seed": seed, "mujoco": mujoco, "pybullet": {**pyb, name: pyb_tuned}, "calibration":
             {k: v for k, v in cal.items() if k != "profile"}, "deploy_wall_s": deploy_wall,
             "finetune_cpu_s": train_cpu, "finetune_wall_s": train_wall, "truth": truth}
        results.append(r)
        (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
        print(f"\nseed {seed}: excitation {cal['excite_stop']}; calibration {cal['identified']}/{cal['n_params']} "
              f"identified, verdict {cal['verdict']} "
              f"(chi2/dof {cal['chi2_dof']:.3g}), excite {cal['excite_wall_s']:.0f} s wall, calibrate "
              f"{cal['calibrate_cpu_s']:.0f} s CPU, fine-tune {train_cpu:.0f} s CPU; deploys {deploy_wall:.0f} s wall")
        print(table([(p, f"{r['pybullet'][p]:.2f}", f"{m['success_5cm']:.2f}", f"{m['success_1cm']:.2f}",
                      f"{1000 * m['median_final_distance']:.1f}", f"{m['median_time_to_5cm']:.2f}", f"{m['engaged']}/{len(goals)}")
                     for p, m in mujoco.items()],
                    ("policy", "PyBullet success", "MuJoCo 5 cm", "MuJoCo 1 cm", "final dist (mm, median)",
                     "time to 5 cm (s, median)", "engaged")))
        sys.stdout.flush()
    print(f"\nsummary over seeds {args.seeds} ({args.goals} goals each)")
    names = list(results[0]["mujoco"])
    rows = []
    for p in names:
        s5 = [r["mujoco"][p]["success_5cm"] for r in results]
        s1 = [r["mujoco"][p]["success_1cm"] for r in results]
        rows.append((p, f"{np.mean([r['pybullet'][p] for r in results]):.2f}", " / ".join(f"{v:.2f}" for v in s5),
                     " / ".join(f"{v:.2f}" for v in s1)))
    print(table(rows, ("policy", "PyBullet success (mean)", "MuJoCo 5 cm per seed", "MuJoCo 1 cm per seed")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
