"""Exported policies: the sidecar YAML (``sim2real-policy/1``) and the policy callable.

An exported policy is ``policy.pt`` (TorchScript, ``forward(obs[B, obs_dim]) -> act[B, act_dim]``)
plus ``policy.yaml`` next to it (see docs/interfaces.md "Exported policy"). Any Python
callable mapping an observation ``(obs_dim,)`` array to an action ``(act_dim,)`` array
works too (:class:`CallablePolicy`). ``torch`` is imported only to load a TorchScript file.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from sim2real._check import Checker
from sim2real._io import read_yaml_file
from sim2real.errors import CheckpointError

POLICY_FORMAT = "sim2real-policy/1"

#: Observation component → size; ``None`` where the size depends on the robot/policy.
OBS_COMPONENTS: dict[str, int | None] = {
    "joint_position": None, "joint_velocity": None, "ee_position": 3, "target_position": 3,
    "target_delta": 3, "previous_action": None, "base_position": 3, "base_orientation": 4,
    "base_rotation": 9, "base_linear_velocity": 3, "base_angular_velocity": 3, "target_relative": 3,
    "dynamics_params": None,
}
#: Action modes the node can execute. Drones: ``velocity`` (world-frame linear velocity setpoint
#: ``a[0:3]·scale`` m/s, optional ``a[3]·scale`` yaw rate rad/s), ``thrust_rates``
#: (``offset + a·scale`` = collective thrust N, body rates p, q, r rad/s FLU) and ``motor``
#: (``offset + a·scale`` = rotor speed squared ω² rpm², env rotor order), see ``sim2real.ros2.drone``.
ACTION_MODES = ("joint_position_delta", "joint_position", "joint_velocity", "velocity", "thrust_rates", "motor")
DRONE_MODES = ("velocity", "thrust_rates", "motor")


@dataclass(frozen=True)
class PolicySpec:
    """Parsed sidecar. Vectors are float arrays of shape ``(action.size,)``."""

    robot: str
    env_id: str
    control_rate_hz: float  # 0.0 when the sidecar does not say
    obs_size: int
    history: int
    layout: tuple[tuple[str, int], ...]
    obs_clip: float | None
    action_size: int
    action_mode: str
    action_joints: tuple[str, ...]
    scale: np.ndarray
    offset: np.ndarray
    low: np.ndarray
    high: np.ndarray
    file: str = ""
    #: forward kinematics from the robot base to the end effector (``sim2real export`` writes it for
    #: ``ee_position``/``target_delta`` layouts); see :mod:`sim2real.ros2.kinematics`
    kinematics: dict[str, Any] | None = None

    @property
    def input_size(self) -> int:
        """Size of the policy input: ``obs_size * history``."""
        return self.obs_size * self.history


def parse_policy_spec(raw: Any, file: str = "<policy.yaml>") -> PolicySpec:
    """Validate a sidecar mapping; raises :class:`ConfigError` naming file and key."""
    chk = Checker(file)
    chk.expect(isinstance(raw, dict), (), "expected a mapping")
    chk.expect(raw.get("format") == POLICY_FORMAT, ("format",),
               f"expected {POLICY_FORMAT!r}, got {raw.get('format')!r}")
    for key in ("robot", "observation", "action"):
        chk.expect(key in raw, (key,), "missing required key")
    obs, act = raw["observation"], raw["action"]
    chk.expect(isinstance(obs, dict), ("observation",), "expected a mapping")
    chk.expect(isinstance(act, dict), ("action",), "expected a mapping")
    layout_raw = obs.get("layout")
    chk.expect(isinstance(layout_raw, list) and layout_raw, ("observation", "layout"),
               "expected a list of [component, size]")
    layout = []
    for i, item in enumerate(layout_raw):
        ok = isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[1], int) and item[1] > 0
        chk.expect(ok, ("observation", "layout", i), "expected [component, size]")
        name, size = str(item[0]), int(item[1])
        chk.expect(name in OBS_COMPONENTS, ("observation", "layout", i),
                   f"unknown component {name!r}; expected one of {sorted(OBS_COMPONENTS)}")
        fixed = OBS_COMPONENTS[name]
        chk.expect(fixed is None or fixed == size, ("observation", "layout", i),
                   f"{name} has size {fixed}, got {size}")
        layout.append((name, size))
    obs_size = int(obs.get("size", sum(s for _, s in layout)))
    chk.expect(obs_size == sum(s for _, s in layout), ("observation", "size"),
               f"size {obs_size} != sum of layout sizes {sum(s for _, s in layout)}")
    history = obs.get("history", 1)
    chk.expect(isinstance(history, int) and history >= 1, ("observation", "history"), "expected an integer >= 1")
    clip = obs.get("clip")
    chk.expect(clip is None or (isinstance(clip, (int, float)) and clip > 0), ("observation", "clip"),
               "expected a positive number")
    mode = act.get("mode")
    chk.expect(mode in ACTION_MODES, ("action", "mode"), f"expected one of {list(ACTION_MODES)}, got {mode!r}")
    size = act.get("size")
    chk.expect(isinstance(size, int) and size > 0, ("action", "size"), "expected a positive integer")
    vectors = {}
    for key, default in (("scale", 1.0), ("offset", 0.0), ("low", -np.inf), ("high", np.inf)):
        value = act.get(key, [default] * size)
        ok = isinstance(value, list) and len(value) == size and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        chk.expect(ok, ("action", key), f"expected a list of {size} numbers")
        vectors[key] = np.asarray(value, dtype=np.float64)
    joints = act.get("joints", [])
    chk.expect(isinstance(joints, list) and all(isinstance(j, str) for j in joints), ("action", "joints"),
               "expected a list of joint names")
    chk.expect(mode in DRONE_MODES or len(joints) == size, ("action", "joints"), f"expected {size} joint names")
    kinematics = parse_kinematics(raw.get("kinematics"), file)
    rate = raw.get("control_rate_hz")  # None/absent: unknown, the node falls back to robot.yaml control.rate_hz
    chk.expect(rate is None or (isinstance(rate, (int, float)) and not isinstance(rate, bool) and rate > 0),
               ("control_rate_hz",), "expected a positive number")
    return PolicySpec(
        robot=str(raw["robot"]), env_id=str(raw.get("env_id") or ""), control_rate_hz=float(rate or 0.0),
        obs_size=obs_size, history=history, layout=tuple(layout), obs_clip=None if clip is None else float(clip),
        action_size=size, action_mode=mode, action_joints=tuple(joints), file=file, kinematics=kinematics, **vectors,
    )


def _vec3(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 3 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in value)


def parse_kinematics(raw: Any, file: str) -> dict[str, Any] | None:
    """Validate the sidecar's ``kinematics`` section (a serial chain root → end-effector link)."""
    if raw is None:
        return None
    chk = Checker(file)
    where = ("kinematics",)
    chk.expect(isinstance(raw, dict), where, "expected a mapping with root, link and joints")
    for key in ("root", "link"):
        chk.expect(isinstance(raw.get(key), str) and raw[key], (*where, key), "expected a link name")
    joints = raw.get("joints")
    chk.expect(isinstance(joints, list), (*where, "joints"), "expected a list of joints, root first")
    parent = raw["root"]
    for i, j in enumerate(joints):
        at = (*where, "joints", i)
        chk.expect(isinstance(j, dict), at, "expected a mapping")
        for key in ("name", "parent", "child"):
            chk.expect(isinstance(j.get(key), str) and j[key], (*at, key), "expected a name")
        chk.expect(j.get("type") in ("revolute", "continuous", "prismatic", "fixed"), (*at, "type"),
                   "expected revolute, continuous, prismatic or fixed")
        for key in ("xyz", "rpy", "axis"):
            chk.expect(_vec3(j.get(key)), (*at, key), "expected three finite numbers")
        chk.expect(j["parent"] == parent, (*at, "parent"),
                   f"expected parent {parent!r} (joints form a chain from the root)")
        parent = j["child"]
    chk.expect(parent == raw["link"], (*where, "link"), f"the chain ends at {parent!r}, not at link {raw['link']!r}")
    com = raw.get("com", {"xyz": [0.0] * 3, "rpy": [0.0] * 3})
    chk.expect(isinstance(com, dict) and _vec3(com.get("xyz")) and _vec3(com.get("rpy")), (*where, "com"),
               "expected {xyz: [3 numbers], rpy: [3 numbers]}")
    return {"root": raw["root"], "link": raw["link"], "joints": joints, "com": com}


def load_policy_spec(path: str | Path) -> PolicySpec:
    """Read a sidecar file (``policy.yaml``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: policy sidecar not found")
    raw = read_yaml_file(path, what="policy sidecar")
    return parse_policy_spec(raw, str(path))


class CallablePolicy:
    """Wrap ``fn(obs (input_size,) float32) -> action (action_size,)`` and check shapes."""

    def __init__(self, fn: Callable[[np.ndarray], Any], spec: PolicySpec) -> None:
        self.fn, self.spec = fn, spec

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        out = np.asarray(self.fn(obs.astype(np.float32)), dtype=np.float64).reshape(-1)
        if out.shape != (self.spec.action_size,):
            raise CheckpointError(f"policy returned shape {out.shape}, expected ({self.spec.action_size},)")
        return out


class TorchScriptPolicy:
    """A TorchScript module run on CPU, batch of one, under ``torch.inference_mode``."""

    def __init__(self, path: str | Path, spec: PolicySpec, threads: int = 1) -> None:
        import torch  # deployment-only dependency, imported here on purpose

        self._torch = torch
        torch.set_num_threads(threads)
        try:
            with warnings.catch_warnings():  # torch >= 2.9 deprecates TorchScript; the export format is TorchScript
                warnings.simplefilter("ignore", DeprecationWarning)
                self.module = torch.jit.load(str(path), map_location="cpu").eval()
        except (RuntimeError, ValueError, OSError) as exc:
            raise CheckpointError(f"{path}: cannot load TorchScript policy: {exc}") from None
        self.spec = spec
        self._buf = torch.zeros((1, spec.input_size), dtype=torch.float32)
        with torch.inference_mode():
            out = self.module(self._buf)
        if tuple(out.shape) != (1, spec.action_size):
            raise CheckpointError(f"{path}: policy maps (1, {spec.input_size}) to {tuple(out.shape)}, "
                                  f"sidecar says (1, {spec.action_size})")

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        torch = self._torch
        self._buf[0] = torch.from_numpy(np.ascontiguousarray(obs, dtype=np.float32))
        with torch.inference_mode():
            return self.module(self._buf)[0].numpy().astype(np.float64)


def load_policy(path: str | Path, sidecar: str | Path | None = None) -> tuple[Callable[[np.ndarray], np.ndarray], PolicySpec]:
    """Load ``policy.pt`` and its sidecar (default: same stem, ``.yaml``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: policy file not found")
    spec = load_policy_spec(sidecar if sidecar is not None else path.with_suffix(".yaml"))
    return TorchScriptPolicy(path, spec), spec
