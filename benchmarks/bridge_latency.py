"""Latency of the ROS 2 bridge over DDS on loopback (no ROS installation needed).

A separate process plays a 7-joint KUKA iiwa at 500 Hz (``sim2real.ros2.mock_robot``:
JointState out, Float64MultiArray commands in); this process runs the deployment node on
the Cyclone DDS transport with an exported MLP policy (TorchScript + sidecar; observation:
joint positions, velocities, end-effector position by URDF FK, target; SB3's default
64x64 tanh MLP unless --hidden says otherwise). Measured:

- observation arrival → command publish latency (inside the node), p50 / p99
- robot-side round trip (state sent → command received), p50 / p99
- loop jitter: |tick interval − 2 ms|, p50 / p99
- lost messages: states the robot sent that the node never received, commands the node
  published that the robot never received

In the same run, against the same robot process, a trivial Python DDS echo (subscribe the
JointState, publish its positions as the command from the callback, nothing else) gives the
floor that Python + Cyclone DDS set on this machine: its callback → publish time and round
trip are printed next to the node's figures.

``--policy PATH`` runs a given exported KUKA iiwa policy instead of the MLP (e.g. the RMA export
``runs/rma_kuka/rma.pt``, whose node stacks the last H observations and runs the adaptation
module before the policy), so its cost shows in the "policy inference" rows.

    python benchmarks/bridge_latency.py [--duration 10] [--trigger state|timer|both] [--no-echo] [--policy PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"latency_p99_ms": 0.5, "jitter_p99_ms": 0.5, "lost": 0}


def export_mlp(folder: Path, hidden: list[int], rate: float) -> Path:
    """Script a tanh MLP with torch.jit and write the sim2real-policy/1 sidecar next to it."""
    import torch

    from sim2real.robots import load_robot

    robot = load_robot("kuka_iiwa")
    layout = [["joint_position", 7], ["joint_velocity", 7], ["ee_position", 3], ["target_position", 3]]
    torch.manual_seed(0)
    layers: list[torch.nn.Module] = []
    n = 20
    for h in hidden:
        layers += [torch.nn.Linear(n, h), torch.nn.Tanh()]
        n = h
    layers += [torch.nn.Linear(n, 7), torch.nn.Tanh()]
    folder.mkdir(parents=True, exist_ok=True)
    torch.jit.script(torch.nn.Sequential(*layers).eval()).save(str(folder / "policy.pt"))
    sidecar = {"format": "sim2real-policy/1", "robot": "kuka_iiwa", "env_id": "sim2real/KukaReach-v0",
               "control_rate_hz": rate,
               "observation": {"size": 20, "history": 1, "layout": layout, "clip": 10.0},
               "action": {"size": 7, "mode": "joint_position_delta", "joints": robot.joint_names,
                          "scale": [0.002] * 7, "offset": [0.0] * 7,
                          "low": [j.lower for j in robot.joints], "high": [j.upper for j in robot.joints]}}
    from sim2real.ros2.kinematics import UrdfChain  # FK from the sidecar, as on a robot computer

    sidecar["kinematics"] = UrdfChain(robot.model_path()).describe(robot.end_effector_link)
    (folder / "policy.yaml").write_text(yaml.safe_dump(sidecar, sort_keys=False))
    return folder / "policy.pt"


def check_policy(parser: argparse.ArgumentParser, path: Path) -> str:
    """Validate ``--policy`` (loads with the node's loader; the robot process plays a KUKA iiwa);
    returns its label for the table title."""
    from sim2real.errors import Sim2RealError
    from sim2real.ros2.policy import load_policy

    try:
        _, spec = load_policy(path)
    except Sim2RealError as exc:
        parser.error(f"--policy: {exc}")
    if spec.robot != "kuka_iiwa":
        parser.error(f"--policy: the robot process plays a kuka_iiwa; {path} is a {spec.robot} policy")
    return f"{path.name} (history {spec.history}, input {spec.input_size})"


def start_robot(domain: int, rate: float, duration: float, out: Path, rt_priority: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sim2real.ros2.mock_robot", "--robot", "kuka_iiwa",
                             "--domain-id", str(domain), "--rate", str(rate), "--duration", str(duration),
                             "--start-offset", "0.02", "--linger", "1.0", "--rt-priority", str(rt_priority),
                             "--out", str(out)], cwd=ROOT, stderr=subprocess.PIPE, text=True)


def round_trip_ms(record: dict, t0: float, t1: float) -> np.ndarray:
    """Robot-side state sent → command received (ms) for commands received in [t0, t1]."""
    sent = np.array(record["sent"])
    recv = np.array([t for t, _ in record["received"]])
    idx = np.searchsorted(sent, recv, side="right") - 1
    ok = idx >= 0
    rt = (recv[ok] - sent[idx[ok]]) * 1e3
    return rt[(recv[ok] >= t0) & (recv[ok] <= t1)]


def run_echo(rate: float, duration: float, workdir: Path, rt_priority: int) -> dict:
    """The floor: a callback that publishes the received positions as the command, nothing else."""
    from sim2real.ros2.node import set_realtime_priority
    from sim2real.ros2.transport_dds import DdsTransport

    domain = random.randint(100, 200)
    set_realtime_priority(rt_priority)
    transport = DdsTransport("echo", domain_id=domain)
    publish = transport.advertise("/forward_position_controller/commands", "std_msgs/msg/Float64MultiArray")
    latency: list[float] = []
    states = [0]

    def echo(msg: object) -> None:
        t0 = time.monotonic()
        publish({"data": list(msg.position)[:7]})  # type: ignore[attr-defined]
        latency.append(time.monotonic() - t0)
        states[0] += 1

    transport.subscribe("/joint_states", "sensor_msgs/msg/JointState", echo, sensor=True)
    out = workdir / "robot_echo.json"
    proc = start_robot(domain, rate, duration, out, rt_priority)
    try:
        proc.communicate(timeout=duration + 60)
    finally:
        if proc.poll() is None:
            proc.kill()
        transport.close()
        if rt_priority:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    record = json.loads(out.read_text())
    t0, t1 = record["start"] + 1.0, record["sent"][-1]
    rt = round_trip_ms(record, t0, t1)
    lat = np.array(latency[len(latency) // 10:]) * 1e3  # after the first tenth (discovery, warm-up)
    return {"trigger": "echo", "rt_priority": rt_priority, "rate_hz": rate, "ticks": len(latency),
            "engaged_ticks": len(latency), "states_in_window": 0,
            "latency_p50_ms": float(np.percentile(lat, 50)), "latency_p99_ms": float(np.percentile(lat, 99)),
            "round_trip_p50_ms": float(np.percentile(rt, 50)), "round_trip_p99_ms": float(np.percentile(rt, 99)),
            "jitter_p50_ms": float("nan"), "jitter_p99_ms": float("nan"), "inference_p50_ms": 0.0,
            "inference_p99_ms": 0.0, "lost_states": len(record["sent"]) - states[0],
            "lost_commands": states[0] - len(record["received"]), "states_sent": len(record["sent"]),
            "commands_received": len(record["received"]), "trips": {}}


def run_once(policy_path: Path, trigger: str, rate: float, duration: float, workdir: Path, rt_priority: int) -> dict:
    from sim2real.ros2.node import DeployNode, set_realtime_priority
    from sim2real.ros2.policy import load_policy
    from sim2real.ros2.transport_dds import DdsTransport

    domain = random.randint(100, 200)
    policy, spec = load_policy(policy_path)
    # SCHED_FIFO before the transport exists: its threads and the loop thread inherit it
    set_realtime_priority(rt_priority)
    params = {"robot": "kuka_iiwa", "rate_hz": rate, "trigger": trigger, "goal": [0.5, 0.0, 0.5],
              "safety.soft_start_s": 0.3, "safety.start_gate_tolerance": 0.05, "safety.watchdog_periods": 10,
              "safety.resume": "auto"}  # a scheduling stall on a loaded machine must not end the measurement
    node = DeployNode(params, transport=DdsTransport("sim2real_deploy", domain_id=domain), policy=policy, spec=spec)
    node.trace = []
    out = workdir / f"robot_{trigger}.json"
    proc = start_robot(domain, rate, duration, out, rt_priority)
    thread = threading.Thread(target=node.run, kwargs={"duration": duration + 30}, daemon=True)
    thread.start()
    try:
        # stop the node once the robot's state stream has ended (it keeps listening for 1 s),
        # so every command the node published had a listener: published - received = lost
        deadline = time.monotonic() + duration + 60
        last_count, last_change = -1, time.monotonic()
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            if node.stats.states != last_count:
                last_count, last_change = node.stats.states, time.monotonic()
            elif last_count > 0 and time.monotonic() - last_change > 0.3:
                break
        node.stop()
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        time.sleep(0.05)
        node.stop()
        thread.join(timeout=10)
        node.close()
        if rt_priority:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    record = json.loads(out.read_text())
    sent = np.array(record["sent"])
    # measurement window: after soft start + start gate (1 s) until the robot stops
    t0, t1 = record["start"] + 1.0, sent[-1]
    ticks = [(now, arr, r) for now, arr, _, r in node.trace if t0 <= now <= t1]
    engaged = [(now, arr) for now, arr, r in ticks if r is not None and r.engaged]
    tick_times = np.array([now for now, _, _ in ticks])
    jitter = np.abs(np.diff(tick_times) - 1.0 / rate) * 1e3
    latency = node.stats.latency.values()[-len(engaged):] * 1e3 if engaged else np.array([np.nan])
    window_sent = sent[(sent >= t0) & (sent <= t1)]
    round_trip = round_trip_ms(record, t0, t1)
    lost_states = len(record["sent"]) - node.stats.states
    lost_commands = node.stats.commands - len(record["received"])
    return {
        "trigger": trigger, "rt_priority": rt_priority, "rate_hz": rate, "ticks": len(ticks), "engaged_ticks": len(engaged),
        "states_in_window": int(window_sent.size),
        "latency_p50_ms": float(np.percentile(latency, 50)), "latency_p99_ms": float(np.percentile(latency, 99)),
        "round_trip_p50_ms": float(np.percentile(round_trip, 50)), "round_trip_p99_ms": float(np.percentile(round_trip, 99)),
        "jitter_p50_ms": float(np.percentile(jitter, 50)), "jitter_p99_ms": float(np.percentile(jitter, 99)),
        "inference_p50_ms": node.stats.inference.summary()["p50_ms"],
        "inference_p99_ms": node.stats.inference.summary()["p99_ms"],
        "lost_states": int(lost_states), "lost_commands": int(lost_commands),
        "states_sent": len(record["sent"]), "commands_received": len(record["received"]),
        "trips": node.safety.report(),
    }


def table(results: list[dict]) -> str:
    rows = [("obs->cmd latency p50 (ms)", "latency_p50_ms", None),
            ("obs->cmd latency p99 (ms)", "latency_p99_ms", ("<=", TARGETS["latency_p99_ms"])),
            ("round trip p50 (ms)", "round_trip_p50_ms", None),
            ("round trip p99 (ms)", "round_trip_p99_ms", None),
            ("loop jitter p50 (ms)", "jitter_p50_ms", None),
            ("loop jitter p99 (ms)", "jitter_p99_ms", ("<=", TARGETS["jitter_p99_ms"])),
            ("policy inference p50 (ms)", "inference_p50_ms", None),
            ("policy inference p99 (ms)", "inference_p99_ms", None),
            ("lost states", "lost_states", ("==", 0)),
            ("lost commands", "lost_commands", ("==", 0))]
    names = [("echo floor" if r["trigger"] == "echo" else r["trigger"]) + (f" FIFO{r['rt_priority']}" if r["rt_priority"]
                                                                          else "") for r in results]
    head = f"{'metric':30s}{'target':>10s}" + "".join(f"{n:>22s}" for n in names)
    lines = [head, "-" * len(head)]
    for label, key, target in rows:
        tgt = f"{target[0]} {target[1]}" if target else "-"
        cells = ""
        for r in results:
            v = r[key]
            if isinstance(v, float) and np.isnan(v):
                cells += f"{'-':>22s}"
                continue
            ok = "" if target is None or r["trigger"] == "echo" else (
                " ok" if (v <= target[1] if target[0] == "<=" else v == target[1]) else " MISS")
            cells += f"{(f'{v:.3f}' if isinstance(v, float) else str(v)) + ok:>22s}"
        lines.append(f"{label:30s}{tgt:>10s}{cells}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="robot run time per trigger mode, s")
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--trigger", choices=("state", "timer", "both"), default="both")
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64], help="MLP hidden sizes")
    parser.add_argument("--policy", type=Path, help="exported kuka_iiwa policy (.pt with its .yaml sidecar) to run "
                        "instead of the MLP, e.g. runs/rma_kuka/rma.pt")
    parser.add_argument("--rt-priority", type=int, default=0,
                        help="also run every mode with node and robot under SCHED_FIFO at this priority")
    parser.add_argument("--no-echo", action="store_true", help="skip the trivial DDS echo (the floor)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    label = f"MLP {args.hidden}"
    if args.policy is not None:
        label = check_policy(parser, args.policy)
    with tempfile.TemporaryDirectory() as tmp:
        policy = args.policy if args.policy is not None else export_mlp(Path(tmp) / "policy", args.hidden, args.rate)
        triggers = ["state", "timer"] if args.trigger == "both" else [args.trigger]
        configs = [(t, 0) for t in triggers] + ([(t, args.rt_priority) for t in triggers] if args.rt_priority else [])
        results = []
        for prio in [0] + ([args.rt_priority] if args.rt_priority else []):
            if not args.no_echo:
                results.append(run_echo(args.rate, args.duration, Path(tmp), prio))
            results += [run_once(policy, trig, args.rate, args.duration, Path(tmp), p)
                        for trig, p in configs if p == prio]
    print(f"bridge latency, DDS loopback, 7-joint arm at {args.rate:.0f} Hz, {label}, "
          f"{args.duration:.0f} s per mode")
    print(table(results))
    for r in results:
        print(f"[{r['trigger']}{' FIFO' if r['rt_priority'] else ''}] ticks {r['ticks']} (engaged {r['engaged_ticks']}), states sent {r['states_sent']}, "
              f"commands received {r['commands_received']}, trips {r['trips']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
