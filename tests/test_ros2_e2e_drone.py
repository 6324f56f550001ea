"""End to end over DDS for a ``thrust_rates`` policy: the node flies a mock PX4 vehicle process.

``python -m sim2real.ros2.mock_drone`` plays the vehicle (odometry out; OffboardControlMode
+ VehicleRatesSetpoint in, rigid-body dynamics with an ideal rate loop). It starts rolled by
0.3 rad; the policy levels it and holds 1 m. A NaN observation and then a silent odometry
stream are injected. Own random DDS domain per test; every wait is bounded.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("cyclonedds")

from sim2real.robots import load_robot  # noqa: E402
from sim2real.ros2.drone import DroneModel  # noqa: E402
from sim2real.ros2.node import DeployNode  # noqa: E402
from sim2real.ros2.policy import parse_policy_spec  # noqa: E402
from sim2real.ros2.transport_dds import DdsTransport  # noqa: E402

from test_ros2_e2e import domain_id  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODEL = DroneModel.from_robot(load_robot("quadrotor"))
RATE = 50.0
LAYOUT = [["base_position", 3], ["base_rotation", 9], ["base_linear_velocity", 3], ["base_angular_velocity", 3],
          ["target_relative", 3], ["previous_action", 4]]
NAN_AT, SILENCE_AT, DURATION, WATCHDOG = 2.0, 3.0, 4.0, 3


def hover_policy(obs: np.ndarray) -> np.ndarray:
    """Level the body (rates from world-up in the body frame) and hold the target height."""
    up = obs[9:12]  # third row of R (body -> world) = world up in the body frame
    vz, dz = obs[14], obs[20]
    force = MODEL.mass * (9.81 + 4.0 * dz - 2.5 * vz) / max(up[2], 0.5)
    return np.clip([force / (MODEL.max_thrust / 2) - 1.0, -4.0 * up[1] / 4.0, 4.0 * up[0] / 4.0, 0.0], -1, 1)


def test_thrust_rates_flight_nan_and_watchdog_over_dds(tmp_path: Path) -> None:
    domain = domain_id()
    t2 = MODEL.max_thrust / 2
    raw = {"format": "sim2real-policy/1", "robot": "quadrotor", "control_rate_hz": RATE,
           "observation": {"size": 25, "layout": LAYOUT},
           "action": {"size": 4, "mode": "thrust_rates", "joints": [], "scale": [t2, 4.0, 4.0, 2.0],
                      "offset": [t2, 0.0, 0.0, 0.0], "low": [0.0, -4.0, -4.0, -2.0], "high": [2 * t2, 4.0, 4.0, 2.0]}}
    spec = parse_policy_spec(raw, "policy.yaml")
    params = {"robot": "quadrotor", "goal": [0.0, 0.0, 1.0], "px4.heartbeat_lead_s": 0.5,
              "safety.watchdog_periods": WATCHDOG, "safety.resume": "auto", "safety.resume_states": 2}
    node = DeployNode(params, transport=DdsTransport("sim2real_deploy", domain_id=domain), policy=hover_policy,
                      spec=spec)
    out = tmp_path / "drone.json"
    proc = subprocess.Popen([sys.executable, "-m", "sim2real.ros2.mock_drone", "--domain-id", str(domain),
                             "--rate", str(RATE), "--duration", str(DURATION), "--roll", "0.3",
                             "--nan-at", str(NAN_AT), "--nan-count", "3", "--silence-at", str(SILENCE_AT),
                             "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    thread = threading.Thread(target=node.run, kwargs={"duration": 30.0}, daemon=True)
    thread.start()
    try:
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
        node.stop()
        thread.join(timeout=10)
        node.close()
    rec: dict[str, Any] = json.loads(out.read_text())
    assert rec["matched"] and rec["nan_sent"] == 3
    start = rec["start"]
    sps = np.array(rec["setpoints"])  # t, roll, pitch, yaw (FRD), thrust_body z
    hbs = np.array(rec["heartbeats"])  # t, body_rate, direct_actuator, position, velocity
    trace = np.array(rec["trace"])  # t, x, y, z, tilt
    assert len(sps) > 0.8 * RATE * SILENCE_AT
    assert np.all(hbs[:, 1] == 1.0) and not np.any(hbs[:, 2:])  # body_rate only
    # heartbeat and setpoints at the control rate (> 2 Hz, no gaps) while the vehicle streams odometry
    flying = hbs[(hbs[:, 0] > start + 0.2) & (hbs[:, 0] < start + SILENCE_AT)]
    assert np.max(np.diff(flying[:, 0])) < 0.4 and len(flying) > 0.7 * RATE * (SILENCE_AT - 0.2)
    # closed loop through the FLU -> FRD conversion: levelled from 0.3 rad and holding 1 m before the faults
    before = trace[(trace[:, 0] > 1.5) & (trace[:, 0] < NAN_AT)]
    assert np.max(before[:, 4]) < 0.03 and np.max(np.abs(before[:, 3] - 1.0)) < 0.1
    # NaN observations never become a command; thrust is never cut mid-air
    assert np.all(np.isfinite(sps[:, 1:])) and np.all(-sps[:, 4] > 0.2)
    assert node.safety.counts["nan_observation"] >= 1
    # the watchdog trips within WATCHDOG periods (+ scheduling margin): heartbeat released, rate hold
    last_hb = hbs[-1, 0] - (start + SILENCE_AT)
    assert 0.0 < last_hb < WATCHDOG / RATE + 0.5
    late = sps[sps[:, 0] > start + SILENCE_AT + 0.6]
    assert len(late) > 5 and np.all(late[:, 1:4] == 0.0)
    assert -late[-1, 4] == pytest.approx(MODEL.hover_fraction, abs=1e-6)
    assert node.safety.counts["stale_observation"] == 1
