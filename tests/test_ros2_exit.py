"""Exit paths over DDS, seen by a separate robot process: the last command it receives is the hold.

``sim2real deploy`` runs a joint-velocity policy (a scripted MLP, non-zero output) against the
mock arm (``python -m sim2real.ros2.mock_robot``) in its own process; the node is stopped
with SIGINT (Ctrl-C) or SIGTERM (``ros2 launch`` shutdown). A ForwardCommandController keeps
the last command it received, so that command must be zero velocity.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cyclonedds")

from test_ros2_e2e import domain_id, start_robot  # noqa: E402
from test_ros2_support import export_mlp  # noqa: E402

RUN_CLI = "import sys; from sim2real.cli.main import main; sys.exit(main(sys.argv[1:]))"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_velocity_commands_end_with_zeros(tmp_path: Path, signum: int) -> None:
    policy = export_mlp(tmp_path / "policy", layout=[["joint_position", 7], ["joint_velocity", 7]],
                        mode="joint_velocity", scale=0.5, rate=50.0)
    params = tmp_path / "params.yaml"  # the mock's states come at the policy rate: tolerate jitter under load
    params.write_text("sim2real_deploy:\n  ros__parameters:\n    safety:\n      watchdog_periods: 5.0\n"
                      "      resume: auto\n      start_gate_tolerance: 1.0\n")  # the mock starts 0.3 rad off
    domain, log = domain_id(), tmp_path / "node.log"
    robot, record_file = start_robot(domain, tmp_path, duration=8.0)  # after the node matched
    node = subprocess.Popen([sys.executable, "-c", RUN_CLI, "deploy", "--policy", str(policy), "--robot", "kuka_iiwa",
                             "--transport", "dds", "--domain-id", str(domain), "--params", str(params)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
    try:
        deadline = time.monotonic() + 60
        while "policy engaged" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # a second of policy commands
        node.send_signal(signum)
        out, _ = node.communicate(timeout=90)
        robot.communicate(timeout=90)
    finally:
        for proc in (node, robot):
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)
    err = log.read_text()
    assert node.returncode == 0, err[-3000:]
    assert "exit: published the hold command" in err and "final phase" in out
    received = [np.array(data) for _, data in json.loads(record_file.read_text())["received"]]
    assert len(received) > 20 and any(np.any(cmd != 0.0) for cmd in received)
    np.testing.assert_array_equal(received[-1], np.zeros(7))
