"""Online identification on a drone: quadrotor RMA and UP-OSI exports (``thrust_rates``, a
history of H observation–action frames) run by the deployment node over DDS against the mock
PX4 vehicle process.

The policies come from the shipped quadrotor configs at a tiny budget (``sim2real train
configs/sysid/rma_base_quadrotor.yaml`` / ``up_quadrotor.yaml`` for 2048 steps, then ``sim2real
osi`` with H = 5), so they fly badly; what is checked is the deployment path: the export loads,
the node stacks H frames oldest first with the previous action the way the UP env does, and
every command the vehicle receives is finite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

from test_ros2_e2e import domain_id, run_with_robot

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "sysid"
H = 5
D = 25  # one frame: position 3, rotation 9, linear velocity 3, angular velocity 3, target 3, previous action 4
DURATION = 2.5


@pytest.fixture(scope="module")
def drone_exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"rma": rma.pt, "up_osi": up_osi.pt}`` from the shipped quadrotor configs at a tiny budget."""
    from sim2real.cli.main import main

    tmp = tmp_path_factory.mktemp("drone_id")
    threads, cwd = torch.get_num_threads(), os.getcwd()
    torch.set_num_threads(1)
    os.chdir(ROOT)  # the configs' eval profile is relative to the repository root
    try:
        for name, config in (("base", "rma_base_quadrotor.yaml"), ("up", "up_quadrotor.yaml")):
            assert main(["train", str(CONFIGS / config), "--out", str(tmp / name), "--no-progress",
                         "--total-timesteps", "2048"]) == 0
        common = {"env": "sim2real/QuadrotorHoverRates-v0", "profile": str(CONFIGS / "up_quadrotor_profile.yaml"),
                  "history": H, "iterations": 1, "episodes": 2, "eval_episodes": 1, "epochs": 2, "seed": 0}
        (tmp / "rma.yaml").write_text(yaml.safe_dump({**common, "method": "rma", "base_policy": str(tmp / "base"),
                                                      "conv": [[8, 3, 1]], "embed": 8}))
        (tmp / "osi.yaml").write_text(yaml.safe_dump({**common, "universal_policy": str(tmp / "up"), "hidden": [16]}))
        for name in ("rma", "osi"):
            assert main(["osi", str(tmp / f"{name}.yaml"), "--out", str(tmp / name), "--quiet"]) == 0
    finally:
        os.chdir(cwd)
        torch.set_num_threads(threads)
    return {"rma": tmp / "rma" / "rma.pt", "up_osi": tmp / "osi" / "up_osi.pt"}


def test_drone_exports_carry_a_history_sidecar(drone_exports: dict[str, Path]) -> None:
    """The node's spec of each export: thrust_rates, H frames of the hover env's layout."""
    from sim2real.ros2.policy import load_policy

    for kind, path in drone_exports.items():
        side = yaml.safe_load(path.with_suffix(".yaml").read_text())
        assert side["robot"] == "quadrotor" and kind.split("_")[-1] in side
        policy, spec = load_policy(path)
        assert spec.action_mode == "thrust_rates" and spec.history == H and spec.obs_size == D
        assert [name for name, _ in spec.layout][-1] == "previous_action" and spec.input_size == H * D
        action = policy(np.zeros(H * D))
        assert action.shape == (4,) and np.all(np.isfinite(action)) and np.all(np.abs(action) <= 1.0)


@pytest.mark.parametrize("kind", ["rma", "up_osi"])
def test_node_flies_the_export_against_the_mock_drone(drone_exports: dict[str, Path], kind: str,
                                                      tmp_path: Path) -> None:
    pytest.importorskip("cyclonedds")
    from sim2real.ros2.node import DeployNode
    from sim2real.ros2.transport_dds import DdsTransport

    domain = domain_id()
    # a generous watchdog: a busy machine delays odometry, and a stale-state hold would end the flight
    params = {"robot": "quadrotor", "policy": str(drone_exports[kind]), "goal": [0.0, 0.0, 1.0],
              "px4.heartbeat_lead_s": 0.3, "safety.watchdog_periods": 10}
    node = DeployNode(params, transport=DdsTransport("sim2real_deploy", domain_id=domain))
    seen: list[tuple[np.ndarray, np.ndarray]] = []  # (policy input, policy output) as the controller calls it
    inner = node.controller.policy

    def spy(x: np.ndarray) -> np.ndarray:
        a = inner(x)
        seen.append((np.array(x, dtype=np.float64), np.array(a, dtype=np.float64)))
        return a

    node.controller.policy = spy
    out = tmp_path / "drone.json"
    proc = subprocess.Popen([sys.executable, "-m", "sim2real.ros2.mock_drone", "--domain-id", str(domain),
                             "--rate", "100", "--duration", str(DURATION), "--out", str(out)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rec = run_with_robot(node, proc, out, timeout=30.0)  # the vehicle matched the node and exited cleanly
    # the policy flew most of the flight (a stale-state hold mid-flight would end it early)
    assert len(seen) > 0.5 * node.rate_hz * DURATION, f"the {kind} policy stopped"
    sps = np.array(rec["setpoints"])  # t, roll, pitch, yaw (FRD), thrust_body z
    assert len(sps) > 10 and np.all(np.isfinite(sps[:, 1:]))
    assert node.safety.counts["nan_observation"] == node.safety.counts["nan_action"] == 0
    assert node.safety.counts["stale_observation"] <= 1  # once the vehicle's stream ends
    # the node feeds H frames, oldest first: the first input after engaging is the first frame H
    # times (as the windows are padded with the reset observation), then the window slides by one
    # frame a tick and the newest frame ends with the previous action in [-1, 1], as in the UP env
    inputs = np.stack([x for x, _ in seen])
    assert inputs.shape[1] == H * D
    frames = inputs.reshape(len(inputs), H, D)
    np.testing.assert_array_equal(frames[0], np.tile(frames[0, -1], (H, 1)))
    hover_env = gym.make("sim2real/QuadrotorHoverRates-v0", profile="nominal")
    reset_obs, _ = hover_env.reset(seed=0)
    hover_env.close()
    np.testing.assert_allclose(frames[0, -1, -4:], reset_obs[-4:], atol=1e-6)  # the hover command, as at reset
    slid = [np.array_equal(frames[i + 1, :-1], frames[i, 1:]) for i in range(len(frames) - 1)]
    assert all(slid), f"the history restarted at ticks {[i + 1 for i, s in enumerate(slid) if not s]}"
    assert not np.array_equal(frames[-1, 0], frames[-1, -1])  # the vehicle moved: distinct frames
    for i in range(len(seen) - 1):
        np.testing.assert_allclose(frames[i + 1, -1, -4:], np.clip(seen[i][1], -1.0, 1.0), atol=1e-12)
