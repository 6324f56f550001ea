"""The robot-computer install: the deployment node runs with the simulation stack absent.

The node runs in a subprocess whose ``sys.meta_path`` refuses to import every third-party
package ``pip install "sim2real[deploy]"`` does not install (PyBullet, ``pybullet_data``,
Stable-Baselines3, Gymnasium, OpenCV, matplotlib, TensorBoard, tqdm, rich, SciPy, MuJoCo,
rosbags, ...), against the mock arm in another process over DDS. The end-effector observation comes from the sidecar's ``kinematics``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("cyclonedds")

from sim2real.robots import load_robot  # noqa: E402
from sim2real.ros2.kinematics import UrdfChain  # noqa: E402

from test_ros2_e2e import domain_id, start_robot  # noqa: E402
from test_ros2_support import export_mlp  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BLOCKED = ("pybullet", "pybullet_data", "pybullet_envs", "stable_baselines3", "gymnasium", "cv2", "matplotlib",
           "tensorboard", "tqdm", "rich", "scipy", "mujoco", "rosbags", "sklearn", "cma", "onnx", "ray")
RUN_BLOCKED = f"""
import importlib.abc, sys
BLOCKED = {BLOCKED!r}
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"No module named {{name!r}} (not installed on the robot computer)", name=name)
        return None
sys.meta_path.insert(0, Refuse())
from sim2real.cli.main import main
code = main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print("blocked modules loaded:", loaded, flush=True)
sys.exit(code)
"""


def deploy_blocked(args: list[str], cwd: Path, timeout: float = 90.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", RUN_BLOCKED, "deploy", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def arm_policy(folder: Path, kinematics: bool) -> Path:
    path = export_mlp(folder, rate=50.0)  # layout: q, qd, ee_position, target_position
    sidecar = yaml.safe_load(path.with_suffix(".yaml").read_text())
    if kinematics:
        robot = load_robot("kuka_iiwa")
        sidecar["kinematics"] = UrdfChain(robot.model_path()).describe(robot.end_effector_link)
    path.with_suffix(".yaml").write_text(yaml.safe_dump(sidecar, sort_keys=False))
    return path


def test_node_runs_without_simulator_packages(tmp_path: Path) -> None:
    policy = arm_policy(tmp_path / "policy", kinematics=True)
    params = tmp_path / "params.yaml"
    params.write_text("sim2real_deploy:\n  ros__parameters:\n    goal: [0.4, 0.1, 0.6]\n"
                      "    safety:\n      soft_start_s: 0.3\n      start_gate_tolerance: 0.5\n")
    domain = domain_id()
    proc, record_file = start_robot(domain, tmp_path, duration=4.0)
    try:
        done = deploy_blocked(["--policy", str(policy), "--robot", "kuka_iiwa", "--transport", "dds",
                               "--domain-id", str(domain), "--duration", "6", "--params", str(params)], tmp_path)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "blocked modules loaded: []" in done.stdout
    assert "policy engaged" in done.stderr and "final phase" in done.stdout
    record = json.loads(record_file.read_text())
    assert len(record["received"]) > 50


def test_sidecar_without_kinematics_is_one_clear_error(tmp_path: Path) -> None:
    policy = arm_policy(tmp_path / "policy", kinematics=False)
    done = deploy_blocked(["--policy", str(policy), "--robot", "kuka_iiwa", "--transport", "dds", "--domain-id",
                           str(domain_id()), "--duration", "0.2"], tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "sim2real export" in lines[0] and "kinematics" in lines[0], done.stderr
