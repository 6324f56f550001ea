"""The deployment node against an independent robot: the MuJoCo arm (``sim2real sim2sim``).

Three processes on one DDS domain: the MuJoCo KUKA (PD servo, its own physics, JointState
at 250 Hz), ``sim2real deploy`` with ``--trigger state`` and a 20 Hz policy that asks for
more than the joints' velocity limits, and this test as a bystander recording every command
on the controller's topic. Checked from the bystander's record: the node never commands
faster than the policy's rate or a joint faster than its velocity limit, and after SIGINT
the last command is the arm's measured position (the MuJoCo arm's final joint positions).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("cyclonedds")
pytest.importorskip("mujoco")

from sim2real.robots import load_robot  # noqa: E402
from sim2real.ros2.transport_dds import DdsTransport  # noqa: E402

from test_ros2_e2e import domain_id  # noqa: E402
from test_ros2_support import export_mlp  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUN_CLI = "import sys; from sim2real.cli.main import main; sys.exit(main(sys.argv[1:]))"
RATE = 20.0


def test_state_trigger_rate_velocity_limit_and_exit_hold_on_mujoco_arm(tmp_path: Path) -> None:
    robot = load_robot("kuka_iiwa")
    vmax = np.array([j.max_velocity for j in robot.joints])
    hardware = yaml.safe_load((ROOT / "configs" / "hardware" / "kuka_iiwa.yaml").read_text())
    hardware["joint_states_hz"] = 250
    (tmp_path / "hw.yaml").write_text(yaml.safe_dump(hardware))
    # a policy that saturates: delta actions of up to 1 rad per step, far above vmax / 20 Hz
    policy = export_mlp(tmp_path / "policy", layout=[["joint_position", 7], ["joint_velocity", 7]], scale=1.0,
                        rate=RATE, hidden=16, seed=3)
    params = tmp_path / "params.yaml"
    params.write_text("sim2real_deploy:\n  ros__parameters:\n    safety:\n      soft_start_s: 0.5\n"
                      "      start_gate_tolerance: 0.2\n      watchdog_periods: 4.0\n      resume: auto\n")
    domain = domain_id()
    received: list[tuple[float, list[float]]] = []
    lock = threading.Lock()
    bystander = DdsTransport("bystander", domain_id=domain)

    def record(msg: object) -> None:
        with lock:
            received.append((time.monotonic(), list(msg.data)))  # type: ignore[attr-defined]

    command_topic = str(robot.ros2.topics.get("command", "/forward_position_controller/commands"))
    bystander.subscribe(command_topic, "std_msgs/msg/Float64MultiArray", record)
    log = tmp_path / "node.log"
    arm = subprocess.Popen([sys.executable, "-c", RUN_CLI, "sim2sim", "--robot", "kuka_iiwa", "--hardware",
                            str(tmp_path / "hw.yaml"), "--transport", "dds", "--domain-id", str(domain), "--duration",
                            "25", "--summary", str(tmp_path / "arm.json")], cwd=tmp_path,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    node = subprocess.Popen([sys.executable, "-c", RUN_CLI, "deploy", "--policy", str(policy), "--robot", "kuka_iiwa",
                             "--transport", "dds", "--domain-id", str(domain), "--trigger", "state",
                             "--params", str(params)], cwd=tmp_path, stdout=subprocess.PIPE, stderr=log.open("w"),
                            text=True)
    try:
        deadline = time.monotonic() + 90
        while "policy engaged" not in log.read_text() and time.monotonic() < deadline and node.poll() is None:
            time.sleep(0.05)
        assert "policy engaged" in log.read_text(), log.read_text()[-3000:]
        time.sleep(4.0)
        node.send_signal(signal.SIGINT)
        out, _ = node.communicate(timeout=90)
        time.sleep(0.5)  # the last command reaches the arm, which then holds
        arm.send_signal(signal.SIGINT)
        arm.communicate(timeout=60)
    finally:
        for proc in (node, arm):
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)
        bystander.close()
    assert node.returncode == 0, log.read_text()[-3000:]
    with lock:
        times = np.array([t for t, _ in received])
        cmds = np.array([c for _, c in received])
    engaged_at = times[0] + 1.0  # after the soft start and the start gate
    run = (times > engaged_at) & (times < times[-1] - 0.2)
    t_run, c_run = times[run], cmds[run]
    assert len(t_run) > 40
    # never faster than the trained rate (250 states per second arrive)
    span = t_run[-1] - t_run[0]
    assert len(t_run) - 1 <= RATE * span * 1.05 + 1
    # never a joint faster than its limit over any stretch of commands (receiver clock: +- one period)
    for i in range(0, len(t_run) - 5, 5):
        j = min(i + 20, len(t_run) - 1)
        speed = np.abs(c_run[j] - c_run[i]) / (t_run[j] - t_run[i] + 2.0 / RATE)
        assert np.all(speed <= vmax), (speed, vmax)
    assert np.any(np.abs(np.diff(c_run, axis=0)) > 0.5 * vmax / RATE)  # the limit was what bound it
    # the exit hold: the last command is where the arm is
    final = json.loads((tmp_path / "arm.json").read_text())["final_joint_positions"]
    q_end = np.array([final[name] for name in robot.ros2.joint_names])
    np.testing.assert_allclose(cmds[-1], q_end, atol=0.01)
    assert "exit: published the hold command" in log.read_text()
