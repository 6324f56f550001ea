"""A mock arm on the DDS transport, for dry runs of the bridge without hardware.

Publishes ``sensor_msgs/JointState`` (real joint names from robot.yaml ``ros2.joint_names``,
in a shuffled order plus an extra uncontrolled joint, as real drivers do) at a fixed rate
and tracks the position commands it receives (``Float64MultiArray`` in controller joint
order, or the first point of a ``JointTrajectory``) with a first-order lag. Faults can be
injected: a NaN state, silence (state stream stops while commands are still received).

    python -m sim2real.ros2.mock_robot --robot kuka_iiwa --rate 500 --duration 10 --out mock.json

The JSON written at the end holds send/receive times (``time.monotonic()``, shared by all
processes on one Linux machine) and every received command, for tests and benchmarks.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from typing import Any

import numpy as np

from sim2real._io import atomic_write_text
from sim2real.robots import load_robot


def run_mock_arm(robot_name: str, *, domain_id: int, rate_hz: float, duration: float, tau: float = 0.02,
                 start_offset: float = 0.3, nan_at: float | None = None, nan_count: int = 1, silence_at: float | None = None,
                 output: str = "forward_command", command_topic: str = "", state_topic: str = "",
                 wait_match_s: float = 5.0, linger: float = 0.1, seed: int = 0) -> dict[str, Any]:
    """Run the mock for ``duration`` s after the first subscriber matched; returns the record."""
    from sim2real.ros2.transport_dds import DdsTransport

    robot = load_robot(robot_name)
    names = list(robot.ros2.joint_names)
    rng = np.random.default_rng(seed)
    order = list(rng.permutation(len(names) + 1))  # position of each name in the message (+1 extra joint)
    msg_names = [""] * (len(names) + 1)
    for i, slot in enumerate(order):
        msg_names[slot] = names[i] if i < len(names) else "extra_uncontrolled_joint"
    q = np.array([j.home for j in robot.joints]) + start_offset
    lower = np.array([j.lower for j in robot.joints])
    upper = np.array([j.upper for j in robot.joints])
    q = np.clip(q, lower, upper)
    target = q.copy()
    lock = threading.Lock()
    received: list[tuple[float, list[float]]] = []

    def on_command(msg: Any) -> None:
        now = time.monotonic()
        data = list(msg.data) if output == "forward_command" else list(msg.points[0].positions)
        with lock:
            received.append((now, data))
            if len(data) == len(names) and all(math.isfinite(v) for v in data):
                target[:] = data

    transport = DdsTransport("mock_robot", domain_id=domain_id)
    controller = robot.ros2.controller or "forward_position_controller"
    cmd_topic = command_topic or (f"/{controller}/commands" if output == "forward_command"
                                  else f"/{controller}/joint_trajectory")
    cmd_type = "std_msgs/msg/Float64MultiArray" if output == "forward_command" else "trajectory_msgs/msg/JointTrajectory"
    transport.subscribe(cmd_topic, cmd_type, on_command)
    topic = state_topic or str(robot.ros2.topics.get("joint_states", "/joint_states"))
    publish = transport.advertise(topic, "sensor_msgs/msg/JointState")
    t_wait = time.monotonic()
    while not transport.subscriber_count(topic) and time.monotonic() - t_wait < wait_match_s:
        time.sleep(0.01)
    matched = transport.subscriber_count(topic) > 0
    if matched:  # discovery is asymmetric: give the reader time to match this writer too
        time.sleep(0.3)
    period = 1.0 / rate_hz
    alpha = 1.0 - math.exp(-period / tau)
    sent: list[float] = []
    start = time.monotonic()
    next_t = start
    nan_sent = 0
    while True:
        now = time.monotonic()
        t = now - start
        if t >= duration:
            break
        with lock:
            q_prev = q.copy()
            q += alpha * (target - q)
        if silence_at is None or t < silence_at:
            position = np.zeros(len(names) + 1)
            velocity = np.zeros(len(names) + 1)
            for i in range(len(names)):
                position[order[i]] = q[i]
                velocity[order[i]] = (q[i] - q_prev[i]) / period
            if nan_at is not None and t >= nan_at and nan_sent < nan_count:
                position[order[nan_sent % len(names)]] = float("nan")
                nan_sent += 1
            ns = time.time_ns()
            sent.append(time.monotonic())
            publish({"header": {"stamp": {"sec": ns // 1_000_000_000, "nanosec": ns % 1_000_000_000},
                                "frame_id": robot.ros2.frame_id},
                     "name": msg_names, "position": position, "velocity": velocity, "effort": []})
        next_t += period
        delay = next_t - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_t = time.monotonic()
    time.sleep(linger)  # keep receiving: in-flight commands, holds after the state stream ends
    transport.close()
    with lock:
        return {"robot": robot.name, "joint_names": names, "message_names": msg_names, "matched": matched,
                "start": start, "rate_hz": rate_hz, "sent": sent, "received": received,
                "final_q": q.tolist(), "nan_at": nan_at, "nan_sent": nan_sent, "silence_at": silence_at}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim2real.ros2.mock_robot", description=__doc__.split("\n\n")[0])
    parser.add_argument("--robot", default="kuka_iiwa")
    parser.add_argument("--domain-id", type=int, default=0)
    parser.add_argument("--rate", type=float, default=0.0, help="state rate, Hz (default: robot.yaml control.rate_hz)")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--tau", type=float, default=0.02, help="position tracking time constant, s")
    parser.add_argument("--start-offset", type=float, default=0.3, help="initial offset from home, rad")
    parser.add_argument("--nan-at", type=float, help="send a NaN joint position at this time, s")
    parser.add_argument("--nan-count", type=int, default=1, help="in this many consecutive states")
    parser.add_argument("--silence-at", type=float, help="stop publishing states at this time, s")
    parser.add_argument("--linger", type=float, default=0.1, help="keep receiving commands this long at the end, s")
    parser.add_argument("--output", choices=("forward_command", "joint_trajectory"), default="forward_command")
    parser.add_argument("--rt-priority", type=int, default=0, help="SCHED_FIFO priority (Linux), 0: normal")
    parser.add_argument("--out", help="write the record as JSON here")
    args = parser.parse_args(argv)
    rate = args.rate or load_robot(args.robot).control.rate_hz
    if args.rt_priority > 0:
        from sim2real.ros2.node import set_realtime_priority

        set_realtime_priority(args.rt_priority)
    record = run_mock_arm(args.robot, domain_id=args.domain_id, rate_hz=rate, duration=args.duration, tau=args.tau,
                          start_offset=args.start_offset, nan_at=args.nan_at, nan_count=args.nan_count,
                          silence_at=args.silence_at,
                          output=args.output, linger=args.linger)
    if args.out:
        atomic_write_text(args.out, json.dumps(record))
    print(f"mock robot: sent {len(record['sent'])} states, received {len(record['received'])} commands",
          file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
