"""End to end over the ROS 2 wire-compatible DDS transport.

A separate process (``python -m sim2real.ros2.mock_robot``) plays a KUKA iiwa: it
publishes ``JointState`` (shuffled joint order, one extra joint) at the control rate and
tracks the ``Float64MultiArray`` commands it receives. Each test uses its own random DDS
domain so parallel runs do not see each other; every wait is bounded.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("cyclonedds")

from sim2real.robots import load_robot  # noqa: E402
from sim2real.ros2.node import DeployNode  # noqa: E402
from sim2real.ros2.policy import parse_policy_spec  # noqa: E402
from sim2real.ros2.transport_dds import DdsTransport  # noqa: E402

from test_ros2_support import export_mlp, sidecar_dict  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KUKA = load_robot("kuka_iiwa")
HOME = np.array([j.home for j in KUKA.joints])
LOWER = np.array([j.lower for j in KUKA.joints])
UPPER = np.array([j.upper for j in KUKA.joints])
RATE = 50.0
TARGET = HOME + np.array([0.2, -0.15, 0.1, -0.05, 0.15, -0.1, 0.05])


def domain_id() -> int:
    return random.Random(os.getpid() * 1_000_003 + time.time_ns()).randint(100, 200)


def start_robot(domain: int, tmp: Path, duration: float, **faults: float) -> tuple[subprocess.Popen, Path]:
    out = tmp / f"robot_{domain}.json"
    cmd = [sys.executable, "-m", "sim2real.ros2.mock_robot", "--robot", "kuka_iiwa", "--domain-id", str(domain),
           "--rate", str(RATE), "--duration", str(duration), "--out", str(out)]
    for key, value in faults.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, out


def run_with_robot(node: DeployNode, proc: subprocess.Popen, out: Path, timeout: float = 60.0) -> dict[str, Any]:
    """Run the node until the robot process exits; return the robot's record."""
    thread = threading.Thread(target=node.run, kwargs={"duration": timeout}, daemon=True)
    thread.start()
    try:
        _, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
        node.stop()
        thread.join(timeout=10)
        node.close()
    assert not thread.is_alive()
    record = json.loads(out.read_text())
    assert record["matched"], "the robot never saw the node's joint_states subscription"
    return record


def assert_robot_ends_holding(cmds: np.ndarray, held: np.ndarray) -> None:
    """From the first received command equal to the hold command on, the robot got only that."""
    same = np.all(cmds == held, axis=1)
    assert same.any(), "the hold command never reached the robot"
    first = int(np.argmax(same))
    assert np.all(same[first:]) and len(same) - first > 10


def p_controller(obs: np.ndarray) -> np.ndarray:
    """Drives each joint towards TARGET using q from the observation (robot joint order)."""
    return np.clip((TARGET - obs[:7]) * 5.0, -1.0, 1.0)


def arm_spec() -> Any:
    raw = sidecar_dict(layout=[["joint_position", 7], ["joint_velocity", 7]], rate=RATE)
    return parse_policy_spec(raw, "policy.yaml")


def test_commands_rate_order_limits_nan_and_watchdog(tmp_path: Path) -> None:
    domain = domain_id()
    watchdog = 4
    # resume: auto, so the arm goes on to its target after the NaN fault (operator resume: test_ros2_node)
    params = {"robot": "kuka_iiwa", "safety.soft_start_s": 0.4, "safety.watchdog_periods": watchdog,
              "safety.start_gate_tolerance": 0.05, "safety.resume": "auto", "safety.resume_states": 3}
    node = DeployNode(params, transport=DdsTransport("sim2real_deploy", domain_id=domain), policy=p_controller,
                      spec=arm_spec())
    node.trace = []
    # 5 consecutive NaN states (100 ms): the node only reads the latest state, so a single one
    # could legitimately be overwritten before a tick sees it
    proc, out = start_robot(domain, tmp_path, duration=3.0, nan_at=1.8, nan_count=5, silence_at=2.3)
    record = run_with_robot(node, proc, out)

    times = np.array([t for t, _ in record["received"]])
    cmds = np.array([c for _, c in record["received"]], dtype=float)
    start = record["start"]
    assert len(cmds) > 0.7 * RATE * 3.0
    # a NaN observation never becomes a command; every command within limits and rate limits
    assert np.all(np.isfinite(cmds))
    assert np.all(cmds >= LOWER - 1e-12) and np.all(cmds <= UPPER + 1e-12)
    max_step = np.array([j.max_velocity for j in KUKA.joints]) / RATE
    assert np.all(np.abs(np.diff(cmds, axis=0)) <= max_step + 1e-9)
    # commands arrive at the control rate
    steady = np.diff(times[(times > start + 0.5) & (times < start + 2.2)])
    assert abs(np.median(steady) - 1.0 / RATE) < 0.25 / RATE
    # joint order: the policy saw q in robot order (message was shuffled) and the robot, which
    # maps command index i to ros2.joint_names[i], converged to the per-joint targets
    np.testing.assert_allclose(record["final_q"], TARGET, atol=0.01)
    trips = node.safety.report()
    assert record["nan_sent"] == 5
    assert trips["nan_observation"] >= 1 and trips["nan_action"] == 0 and trips["estop"] == 0
    # watchdog: stale exactly once, never before `watchdog` periods without a state, and within
    # a couple of ticks after that; from then on the command is held
    assert trips["stale_observation"] == 1
    trace = node.trace
    first = next(i for i, (_, _, stale, _) in enumerate(trace) if stale)
    now, last_arrival, _, _ = trace[first]
    assert now - last_arrival > watchdog / RATE
    ticks_since_last_state = sum(1 for t, a, _, _ in trace[:first + 1] if a == last_arrival and t > last_arrival)
    assert ticks_since_last_state <= watchdog + 2
    held = [r.command for _, _, stale, r in trace[first:] if r is not None]
    assert held and all(r.hold for _, _, _, r in trace[first:] if r is not None)
    assert all(np.array_equal(h, held[0]) for h in held)
    assert_robot_ends_holding(cmds, held[0])


def test_estop_latches_with_exported_policy(tmp_path: Path) -> None:
    from sim2real.ros2.policy import load_policy

    domain = domain_id()
    policy, spec = load_policy(export_mlp(tmp_path / "policy", rate=RATE))
    params = {"robot": "kuka_iiwa", "trigger": "state", "safety.soft_start_s": 0.2, "goal": [0.5, 0.0, 0.5],
              "safety.start_gate_tolerance": 0.05}
    node = DeployNode(params, transport=DdsTransport("sim2real_deploy", domain_id=domain), policy=policy, spec=spec)
    node.trace = []
    operator = DdsTransport("operator", domain_id=domain)
    estop = operator.advertise("/estop", "std_msgs/msg/Bool")
    proc, out = start_robot(domain, tmp_path, duration=2.5)
    sent_at: list[float] = []

    def press() -> None:
        deadline = time.monotonic() + 30
        while node.stats.commands < RATE * 1.2 and time.monotonic() < deadline:  # ~1.2 s of control first
            time.sleep(0.01)
        while operator.subscriber_count("/estop") == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        sent_at.append(time.monotonic())
        estop({"data": True})
        time.sleep(0.2)
        estop({"data": False})  # releasing the button does not un-latch

    presser = threading.Thread(target=press, daemon=True)
    presser.start()
    try:
        record = run_with_robot(node, proc, out)
    finally:
        presser.join(timeout=30)
        operator.close()
    assert sent_at, "e-stop was never sent"
    assert node.safety.estopped and node.safety.counts["estop"] == 1
    cmds = np.array([c for _, c in record["received"]], dtype=float)
    assert np.all(np.isfinite(cmds)) and np.all(cmds >= LOWER) and np.all(cmds <= UPPER)
    engaged = node.stats.inference.count
    assert engaged > 0, "the exported policy never ran"
    # from the e-stop on every tick holds the same command, and the robot ends up receiving only it
    results = [r for now, _, _, r in node.trace if r is not None and now >= sent_at[0]]
    first_hold = next(i for i, r in enumerate(results) if r.hold)
    assert all(r.hold and np.array_equal(r.command, results[first_hold].command) for r in results[first_hold:])
    assert len(results) - first_hold > 10  # still publishing, never released by the later `false`
    assert_robot_ends_holding(cmds, results[first_hold].command)


def test_px4_offboard_stream_over_dds() -> None:
    """Quadrotor over the wire: heartbeat (> 2 Hz) precedes any velocity setpoint; NED setpoints."""
    domain = domain_id()
    raw = sidecar_dict("quadrotor", layout=[["base_position", 3], ["base_linear_velocity", 3],
                                            ["target_relative", 3]], mode="velocity", scale=0.5, rate=RATE)
    raw["action"]["joints"] = []
    spec = parse_policy_spec(raw, "policy.yaml")
    params = {"robot": "quadrotor", "output": "px4_offboard", "goal": [0.0, 0.0, 1.0], "px4.heartbeat_lead_s": 0.5,
              "topics.odometry": "/vehicle/odom", "safety.max_accel": 50.0,
              # the test's odometry comes from a sleep loop in this process: tolerate its jitter under load
              "safety.watchdog_periods": 5.0, "safety.resume": "auto"}
    node = DeployNode(params, transport=DdsTransport("sim2real_deploy", domain_id=domain),
                      policy=lambda obs: np.append(np.clip(obs[6:9] * 2.0, -1, 1), 0.0), spec=spec)
    vehicle = DdsTransport("vehicle", domain_id=domain)
    got: dict[str, list] = {"mode": [], "setpoint": []}
    lock = threading.Lock()

    def keep(key: str) -> Any:
        def cb(msg: Any) -> None:
            with lock:
                got[key].append((time.monotonic(), msg))
        return cb

    vehicle.subscribe("/fmu/in/offboard_control_mode", "px4_msgs/msg/OffboardControlMode", keep("mode"))
    vehicle.subscribe("/fmu/in/trajectory_setpoint", "px4_msgs/msg/TrajectorySetpoint", keep("setpoint"))
    odom = vehicle.advertise("/vehicle/odom", "nav_msgs/msg/Odometry")
    thread = threading.Thread(target=node.run, kwargs={"duration": 20.0}, daemon=True)
    try:
        deadline = time.monotonic() + 10
        while vehicle.subscriber_count("/vehicle/odom") == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)
        thread.start()
        for _ in range(int(1.5 * RATE)):  # vehicle at (1, 2, 0.5) m ENU, at rest, 1.5 s
            odom({"pose": {"pose": {"position": {"x": 1.0, "y": 2.0, "z": 0.5}, "orientation": {"w": 1.0}}}})
            time.sleep(1.0 / RATE)
        time.sleep(0.2)
    finally:
        node.stop()
        thread.join(timeout=10)
        node.close()
        vehicle.close()
    modes = [m for _, m in got["mode"]]
    setpoints = [m for _, m in got["setpoint"]]
    assert len(modes) > 10 and len(setpoints) > 10
    engaged = [i for i, m in enumerate(modes) if m.velocity]
    assert engaged, "the policy never engaged"
    lead = [t for t, m in got["mode"][:engaged[0]]]
    assert len(lead) >= 0.5 * RATE * 0.8 and lead[-1] - lead[0] >= 0.4  # heartbeat stream before engaging
    assert np.max(np.diff(lead)) < 0.5  # never a gap that would drop PX4 below 2 Hz
    assert all(m.position and not m.velocity for m in modes[:engaged[0]])
    hold = setpoints[0]
    np.testing.assert_allclose(hold.position, [2.0, 1.0, -0.5], atol=1e-6)  # ENU (1, 2, 0.5) -> NED
    fly = [s for s in setpoints if np.all(np.isnan(s.position))]
    # target_relative = (0, 0, 1) - (1, 2, 0.5) -> clipped action (-1, -1, 1) * 0.5 m/s ENU -> NED (y, x, -z)
    np.testing.assert_allclose(fly[-1].velocity, [-0.5, -0.5, -0.5], atol=1e-6)
