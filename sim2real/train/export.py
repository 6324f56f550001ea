"""Export a trained policy as TorchScript (+ ONNX) with a sidecar YAML for deployment.

The exported module maps raw observations ``obs: Tensor[B, obs_dim]`` (float32) to the
deterministic action ``Tensor[B, act_dim]`` in the env's action space (``[-1, 1]`` for
every sim2real env), with the run's observation normalisation baked in. It is built
from the SB3 policy's own layers (feature extractor, actor MLP, action head), so
loading it needs ``torch`` alone. The sidecar ``<name>.yaml`` follows
``docs/interfaces.md`` ("Exported policy").
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from sim2real._io import atomic_write_bytes, atomic_write_yaml
from sim2real.errors import CheckpointError
from sim2real.train.policy import LoadedPolicy

FORMAT = "sim2real-policy/1"


class DeterministicPolicy(nn.Module):
    """``obs -> action``: normalise, actor network, then squash+unscale (SAC) or clip (PPO).

    :param features: feature extractor (``nn.Flatten`` for MlpPolicy)
    :param latent: actor MLP after the features
    :param head: last linear layer giving the action mean (pre-squash for SAC)
    """

    def __init__(self, features: nn.Module, latent: nn.Module, head: nn.Module, obs_mean: np.ndarray,
                 obs_std: np.ndarray, clip_obs: float, low: np.ndarray, high: np.ndarray, squash: bool) -> None:
        super().__init__()
        self.features = features
        self.latent = latent
        self.head = head
        self.register_buffer("obs_mean", torch.as_tensor(obs_mean, dtype=torch.float32))
        self.register_buffer("obs_std", torch.as_tensor(obs_std, dtype=torch.float32))
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.float32))
        self.clip_obs = float(clip_obs)
        self.squash = bool(squash)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = torch.clamp((obs.float() - self.obs_mean) / self.obs_std, -self.clip_obs, self.clip_obs)
        a = self.head(self.latent(self.features(x)))
        if self.squash:
            return self.low + 0.5 * (torch.tanh(a) + 1.0) * (self.high - self.low)
        return torch.max(torch.min(a, self.high), self.low)


def build_module(policy: LoadedPolicy) -> DeterministicPolicy:
    """The deterministic policy of ``policy`` as a plain torch module (CPU, eval mode)."""
    from gymnasium import spaces

    model = policy.model
    obs_space, act_space = model.observation_space, model.action_space
    if not isinstance(obs_space, spaces.Box) or len(obs_space.shape) != 1:
        raise CheckpointError(f"{policy.path}: export needs a flat Box observation space, got {obs_space} "
                              "(image/dict policies are not exportable to the obs-vector interface)")
    if not isinstance(act_space, spaces.Box):
        raise CheckpointError(f"{policy.path}: export needs a Box action space, got {act_space}")
    obs_dim = obs_space.shape[0]
    if policy.obs_mean is not None:
        mean = policy.obs_mean.astype(np.float64)
        std = np.sqrt(policy.obs_var.astype(np.float64) + policy.obs_eps)
        clip = policy.clip_obs
    else:
        mean, std, clip = np.zeros(obs_dim), np.ones(obs_dim), float("inf")
    sb3 = model.policy.to("cpu")
    if policy.algo == "sac":
        actor = sb3.actor
        features, latent, head, squash = actor.features_extractor, actor.latent_pi, actor.mu, True
    else:
        features = sb3.pi_features_extractor if hasattr(sb3, "pi_features_extractor") else sb3.features_extractor
        latent, head, squash = sb3.mlp_extractor.policy_net, sb3.action_net, bool(sb3.squash_output)
    module = DeterministicPolicy(features, latent, head, mean, std, clip, act_space.low, act_space.high, squash)
    return module.eval()


def _env_description(policy: LoadedPolicy, env_id: str | None) -> dict[str, Any]:
    """Layout, action spec, robot and control rate from the env (generic fallback for non-sim2real envs)."""
    from sim2real.train.vec import create_env

    run = policy.run
    env_id = env_id or policy.env_id
    # The run's robot, env kwargs and training profile (a UP env's observation holds one entry per parameter
    # it randomizes) belong to the run's env; another env is built as registered, with its own robot, so a
    # policy that does not fit it is refused for its spaces, not for a robot the other env cannot take.
    own = env_id == policy.env_id
    obs_dim = int(policy.model.observation_space.shape[0])
    act_space = policy.model.action_space
    desc: dict[str, Any] = {"robot": run.get("robot") if own else None, "env_id": env_id, "control_rate_hz": None,
                            "layout": [["observation", obs_dim]],
                            "action": {"mode": "continuous", "joints": [], "scale": [1.0] * act_space.shape[0],
                                       "offset": [0.0] * act_space.shape[0], "low": act_space.low.tolist(),
                                       "high": act_space.high.tolist()}}
    if env_id is None:
        return desc
    kwargs = ((run.get("env") or {}).get("kwargs") or {}) if own else {}
    env = create_env(env_id, kwargs, run.get("robot") if own else None, run.get("profile") if own else None)
    try:
        from sim2real.train.policy import check_policy_fits_env

        check_policy_fits_env(policy, env, env_id)  # observation and action spaces, before any layout is written
        try:
            desc["layout"] = [[str(n), int(k)] for n, k in env.get_wrapper_attr("observation_layout")()]
            spec = dict(env.get_wrapper_attr("action_spec")())
            desc["action"] = {k: (np.asarray(v).tolist() if isinstance(v, (np.ndarray, tuple)) else v)
                              for k, v in spec.items()}
        except AttributeError:
            pass
        try:
            robot = env.get_wrapper_attr("robot")
            desc["robot"] = desc["robot"] or getattr(robot, "name", None)
            desc["control_rate_hz"] = float(robot.control.rate_hz)
        except AttributeError:
            fps = env.metadata.get("render_fps")
            desc["control_rate_hz"] = float(fps) if fps else None
    finally:
        env.close()
    if sum(k for _, k in desc["layout"]) != obs_dim:
        raise CheckpointError(f"observation layout of {env_id} sums to {sum(k for _, k in desc['layout'])} "
                              f"but the policy takes {obs_dim} inputs")
    return desc


def sidecar(policy: LoadedPolicy, env_id: str | None = None) -> dict[str, Any]:
    """The ``policy.yaml`` contents (docs/interfaces.md "Exported policy")."""
    d = _env_description(policy, env_id)
    obs_dim = int(policy.model.observation_space.shape[0])
    action = dict(d["action"])
    action["size"] = int(policy.model.action_space.shape[0])
    order = ["size", "mode", "joints", "scale", "offset", "low", "high"]
    action = {k: action[k] for k in order if k in action} | {k: v for k, v in action.items() if k not in order}
    observation: dict[str, Any] = {"size": obs_dim, "history": 1, "layout": d["layout"]}
    if policy.obs_mean is not None:
        observation["clip"] = float(policy.clip_obs)
    meta = {"format": FORMAT, "robot": d["robot"], "env_id": d["env_id"], "control_rate_hz": d["control_rate_hz"],
            "observation": observation, "action": action}
    if d["robot"] and any(name in ("ee_position", "target_delta") for name, _ in d["layout"]):
        meta["kinematics"] = kinematics(d["robot"])
    return meta | {"algo": policy.algo, "source": str(policy.path)}


def kinematics(robot_name: str) -> dict[str, Any]:
    """The sidecar's ``kinematics``: the robot's URDF chain from the base to ``end_effector_link``
    (joint origins, axes, the link's inertial origin; see :mod:`sim2real.ros2.kinematics`), so
    the deployment node computes the end-effector observation without the URDF file."""
    from sim2real.robots import load_robot
    from sim2real.ros2.kinematics import UrdfChain

    robot = load_robot(robot_name)
    if not robot.end_effector_link:
        raise CheckpointError(f"the policy observes the end effector but robot {robot.name} has no end_effector_link")
    return UrdfChain(robot.model_path()).describe(robot.end_effector_link)


def export_policy(policy: LoadedPolicy, out: str | Path, onnx: bool = False, env_id: str | None = None) -> dict[str, Path]:
    """Write ``out`` (TorchScript), ``out.with_suffix('.yaml')`` and optionally ``.onnx``; returns the paths."""
    out = Path(out)
    module = build_module(policy)
    meta = sidecar(policy, env_id)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # TorchScript is deprecated in recent torch, but it is the deployment format the ROS 2
        # node loads with torch alone (docs/interfaces.md); silence the notice, not errors
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(module), buf)
    atomic_write_bytes(out, buf.getvalue())
    paths = {"torchscript": out, "yaml": out.with_suffix(".yaml")}
    atomic_write_yaml(paths["yaml"], meta)
    if onnx:
        paths["onnx"] = export_onnx(module, int(meta["observation"]["size"]), out.with_suffix(".onnx"))
    return paths


def export_onnx(module: nn.Module, obs_dim: int, path: Path) -> Path:
    """ONNX export (legacy TorchScript-based exporter, opset 17, dynamic batch)."""
    example = torch.zeros(1, obs_dim)
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(module, (example,), buf, input_names=["obs"], output_names=["action"],
                              dynamic_axes={"obs": {0: "batch"}, "action": {0: "batch"}}, opset_version=17,
                              dynamo=False)
    except Exception as exc:  # exporter limitations depend on the torch version and the layers
        raise CheckpointError(f"ONNX export failed: {exc}") from None
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_exported(path: str | Path) -> torch.jit.ScriptModule:
    """Load an exported policy (torch only)."""
    return torch.jit.load(str(path), map_location="cpu")
