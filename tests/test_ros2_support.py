"""Helpers for the ROS 2 bridge tests: a scripted MLP policy in the export format, and
checks of the helpers themselves."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pytest
import yaml

from sim2real.robots import load_robot

ARM_LAYOUT = [["joint_position", 7], ["joint_velocity", 7], ["ee_position", 3], ["target_position", 3]]


def sidecar_dict(robot: str = "kuka_iiwa", layout: Sequence[Sequence[Any]] = ARM_LAYOUT, history: int = 1,
                 mode: str = "joint_position_delta", scale: float = 0.05, rate: float = 20.0,
                 clip: float | None = 10.0) -> dict[str, Any]:
    """A ``sim2real-policy/1`` sidecar for ``robot`` (docs/interfaces.md "Exported policy")."""
    desc = load_robot(robot)
    n = desc.n_joints if desc.kind == "arm" else 4
    size = sum(int(s) for _, s in layout)
    action: dict[str, Any] = {"size": n, "mode": mode, "joints": desc.joint_names, "scale": [scale] * n,
                              "offset": [0.0] * n}
    if desc.kind == "arm":
        action["low"] = [j.lower for j in desc.joints]
        action["high"] = [j.upper for j in desc.joints]
    obs: dict[str, Any] = {"size": size, "history": history, "layout": [list(x) for x in layout]}
    if clip is not None:
        obs["clip"] = clip
    return {"format": "sim2real-policy/1", "robot": robot, "env_id": "sim2real/KukaReach-v0",
            "control_rate_hz": rate, "observation": obs, "action": action}


def export_mlp(folder: Path, robot: str = "kuka_iiwa", hidden: int = 64, seed: int = 0, **sidecar: Any) -> Path:
    """Script a tanh MLP with ``torch.jit`` and write ``policy.pt`` + ``policy.yaml``; returns the .pt path."""
    import torch

    spec = sidecar_dict(robot, **sidecar)
    torch.manual_seed(seed)
    n_in = spec["observation"]["size"] * spec["observation"]["history"]
    net = torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, hidden),
                              torch.nn.Tanh(), torch.nn.Linear(hidden, spec["action"]["size"]), torch.nn.Tanh())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "policy.pt"
    torch.jit.script(net.eval()).save(str(path))
    (folder / "policy.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_export_mlp_round_trip(tmp_path: Path) -> None:
    from sim2real.ros2.policy import load_policy

    policy, spec = load_policy(export_mlp(tmp_path, history=2))
    assert spec.input_size == 40 and spec.action_size == 7
    action = policy(np.zeros(40))
    assert action.shape == (7,) and np.all(np.abs(action) <= 1.0)


def test_load_policy_rejects_wrong_sidecar_size(tmp_path: Path) -> None:
    from sim2real.errors import CheckpointError
    from sim2real.ros2.policy import load_policy

    export_mlp(tmp_path)
    raw = yaml.safe_load((tmp_path / "policy.yaml").read_text())
    raw["action"]["size"] = 6
    for key in ("scale", "offset", "low", "high"):
        raw["action"][key] = raw["action"][key][:6]
    raw["action"]["joints"] = raw["action"]["joints"][:6]
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(CheckpointError, match="sidecar says"):
        load_policy(tmp_path / "policy.pt")
