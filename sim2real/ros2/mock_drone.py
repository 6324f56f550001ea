"""A mock PX4 quadrotor on the DDS transport: takes body-rate setpoints, publishes odometry.

Plays the vehicle side of the ``px4_rates`` output for dry runs and tests: it subscribes to
``px4_msgs/OffboardControlMode`` and ``px4_msgs/VehicleRatesSetpoint`` (FRD rates, body-NED
normalised thrust) and publishes ``nav_msgs/Odometry`` (ENU world, FLU body twist) at a fixed
rate. Dynamics: rigid body with gravity; collective thrust ``−thrust_body[2] · 4·kf·max_rpm²``
along body z, body rates tracking the setpoint with a first-order lag (an ideal PX4 rate loop).
Setpoints are applied only while the heartbeat (``body_rate: true``) is fresh (< 0.5 s), as
PX4 does in offboard mode; otherwise the vehicle holds hover thrust and zero rates.

    python -m sim2real.ros2.mock_drone --rate 100 --duration 5 --roll 0.3 --out drone.json

The JSON record holds send times, every received setpoint and heartbeat (``time.monotonic()``),
and the attitude/position trace.
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

HEARTBEAT_TIMEOUT_S = 0.5


def _quat_mul_rates(q: np.ndarray, w: np.ndarray, dt: float) -> np.ndarray:
    """``q`` (xyzw) advanced by body rates ``w`` (3,) rad/s over ``dt`` s (first order, renormalised;
    numpy: the deployment install has no SciPy)."""
    x, y, z, s = q
    p, qq, r = w
    dq = 0.5 * np.array([s * p + y * r - z * qq, s * qq + z * p - x * r, s * r + x * qq - y * p, -x * p - y * qq - z * r])
    out = q + dq * dt
    return out / np.linalg.norm(out)


def run_mock_drone(robot_name: str = "quadrotor", *, domain_id: int, rate_hz: float, duration: float,
                   roll: float = 0.0, position: tuple[float, float, float] = (0.0, 0.0, 1.0), tau: float = 0.03,
                   nan_at: float | None = None, nan_count: int = 1, silence_at: float | None = None,
                   wait_match_s: float = 5.0, linger: float = 0.2) -> dict[str, Any]:
    """Fly for ``duration`` s after the odometry subscriber matched; returns the record."""
    from sim2real.ros2.drone import DroneModel, GRAVITY
    from sim2real.ros2.observation import quat_to_matrix
    from sim2real.ros2.transport_dds import DdsTransport

    robot = load_robot(robot_name)
    model = DroneModel.from_robot(robot)
    topics = robot.ros2.topics
    lock = threading.Lock()
    setpoints: list[list[float]] = []  # [t, roll, pitch, yaw (FRD), thrust_body z]
    heartbeats: list[list[float]] = []  # [t, body_rate, direct_actuator, position, velocity]
    latest: dict[str, Any] = {"sp": None, "hb": -math.inf}

    def on_rates(msg: Any) -> None:
        with lock:
            row = [time.monotonic(), msg.roll, msg.pitch, msg.yaw, msg.thrust_body[2]]
            setpoints.append(row)
            latest["sp"] = row

    def on_mode(msg: Any) -> None:
        with lock:
            now = time.monotonic()
            heartbeats.append([now, float(msg.body_rate), float(msg.direct_actuator), float(msg.position),
                               float(msg.velocity)])
            if msg.body_rate:
                latest["hb"] = now

    transport = DdsTransport("mock_drone", domain_id=domain_id)
    transport.subscribe(str(topics.get("px4_rates_setpoint", "/fmu/in/vehicle_rates_setpoint")),
                        "px4_msgs/msg/VehicleRatesSetpoint", on_rates)
    transport.subscribe(str(topics.get("px4_offboard_mode", "/fmu/in/offboard_control_mode")),
                        "px4_msgs/msg/OffboardControlMode", on_mode)
    odom_topic = str(topics.get("odometry", "/odom"))
    publish = transport.advertise(odom_topic, "nav_msgs/msg/Odometry")
    t_wait = time.monotonic()
    while not transport.subscriber_count(odom_topic) and time.monotonic() - t_wait < wait_match_s:
        time.sleep(0.01)
    matched = transport.subscriber_count(odom_topic) > 0
    if matched:
        time.sleep(0.3)
    half = roll / 2
    q = np.array([math.sin(half), 0.0, 0.0, math.cos(half)])
    pos, vel, rates = np.array(position, dtype=float), np.zeros(3), np.zeros(3)
    period = 1.0 / rate_hz
    alpha = 1.0 - math.exp(-period / tau)
    sent: list[float] = []
    trace: list[list[float]] = []
    start = next_t = time.monotonic()
    nan_sent = 0
    while True:
        now = time.monotonic()
        t = now - start
        if t >= duration:
            break
        with lock:
            sp, fresh = latest["sp"], now - latest["hb"] < HEARTBEAT_TIMEOUT_S
        if sp is not None and fresh:
            target = np.array([sp[1], -sp[2], -sp[3]])  # FRD -> FLU
            thrust = -sp[4] * model.max_thrust
        else:
            target, thrust = np.zeros(3), model.hover_fraction * model.max_thrust
        rates += alpha * (target - rates)
        q = _quat_mul_rates(q, rates, period)
        rot = quat_to_matrix(q)
        vel += (rot[:, 2] * thrust / model.mass - np.array([0.0, 0.0, GRAVITY])) * period
        pos += vel * period
        trace.append([t, *pos, math.acos(float(np.clip(rot[2, 2], -1, 1)))])
        if silence_at is None or t < silence_at:
            px = float("nan") if nan_at is not None and t >= nan_at and nan_sent < nan_count else float(pos[0])
            nan_sent += int(math.isnan(px))
            body_vel = rot.T @ vel
            ns = time.time_ns()
            sent.append(time.monotonic())
            publish({"header": {"stamp": {"sec": ns // 1_000_000_000, "nanosec": ns % 1_000_000_000},
                                "frame_id": robot.ros2.frame_id or "world"}, "child_frame_id": "base_link",
                     "pose": {"pose": {"position": {"x": px, "y": float(pos[1]), "z": float(pos[2])},
                                       "orientation": dict(zip("xyzw", map(float, q)))}},
                     "twist": {"twist": {"linear": dict(zip("xyz", map(float, body_vel))),
                                         "angular": dict(zip("xyz", map(float, rates)))}}})
        next_t += period
        delay = next_t - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_t = time.monotonic()
    time.sleep(linger)
    transport.close()
    with lock:
        return {"robot": robot.name, "matched": matched, "start": start, "rate_hz": rate_hz, "sent": sent,
                "setpoints": setpoints, "heartbeats": heartbeats, "trace": trace, "nan_at": nan_at,
                "nan_sent": nan_sent, "silence_at": silence_at, "hover_fraction": model.hover_fraction}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim2real.ros2.mock_drone", description=__doc__.split("\n\n")[0])
    parser.add_argument("--robot", default="quadrotor")
    parser.add_argument("--domain-id", type=int, default=0)
    parser.add_argument("--rate", type=float, default=100.0, help="odometry rate, Hz")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--roll", type=float, default=0.0, help="initial roll, rad")
    parser.add_argument("--nan-at", type=float, help="send a NaN position at this time, s")
    parser.add_argument("--nan-count", type=int, default=1, help="in this many consecutive states")
    parser.add_argument("--silence-at", type=float, help="stop publishing odometry at this time, s")
    parser.add_argument("--out", help="write the record as JSON here")
    args = parser.parse_args(argv)
    record = run_mock_drone(args.robot, domain_id=args.domain_id, rate_hz=args.rate, duration=args.duration,
                            roll=args.roll, nan_at=args.nan_at, nan_count=args.nan_count, silence_at=args.silence_at)
    if args.out:
        atomic_write_text(args.out, json.dumps(record))
    print(f"mock drone: sent {len(record['sent'])} odometry messages, received {len(record['setpoints'])} "
          f"setpoints, {len(record['heartbeats'])} heartbeats", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
