"""Source datasets rendered from the toolkit's camera envs, with pose labels.

Sample ``i`` of a dataset with seed ``s`` is made by ``rng = default_rng([s, i])``:
reset the env with a seed drawn from ``rng`` (which draws the visual randomization and
the target), take ``k ~ U{0..max_random_steps}`` uniformly random actions so the arm is
in varied poses, then keep the observation image and ``env.unwrapped.camera_labels()``.
So sample ``i`` does not depend on how many samples are made, and a seed reproduces
the dataset exactly.

Label columns: ``target_u, target_v, ee_u, ee_v`` (image-plane position of the target and
the end effector, pixels from the left / top edge; pixel ``i`` spans ``[i, i + 1)``) and
``target_x, target_y, target_z, ee_x, ee_y, ee_z`` (m, robot base frame), plus
``target_visible``/``ee_visible`` (1 when the point projects inside the image).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from sim2real.adapt.images import DatasetError, ImageSet
from sim2real.errors import EnvError

LABEL_COLUMNS = ("target_u", "target_v", "ee_u", "ee_v", "target_x", "target_y", "target_z",
                 "ee_x", "ee_y", "ee_z", "target_visible", "ee_visible")


@dataclass
class RenderSpec:
    """What to render: env id, profile, number of images, seed, env keywords."""

    env: str = "sim2real/KukaReachCamera-v0"
    profile: Any = "cad2rl_visual"
    n: int = 1000
    seed: int = 0
    max_random_steps: int = 10
    robot: str | None = None
    image_size: int | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: dict[str, Any], default_seed: int = 0) -> "RenderSpec":
        keys = {"env", "profile", "n", "seed", "max_random_steps", "robot", "image_size"}
        kw = {k: v for k, v in spec.items() if k in keys}
        kw.setdefault("seed", default_seed)
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def key(self) -> str:
        """Short stable name for a cache folder."""
        digest = hashlib.sha1(json.dumps(self.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:10]
        return f"render-{self.env.split('/')[-1]}-{self.n}-{digest}"

    def make_env(self) -> Any:
        import gymnasium as gym

        import sim2real.envs  # noqa: F401  (registers the env ids)

        kwargs = dict(self.env_kwargs)
        kwargs["profile"] = self.profile
        if self.robot is not None:
            kwargs["robot"] = self.robot
        if self.image_size is not None:
            kwargs["image_size"] = self.image_size
        try:
            return gym.make(self.env, **kwargs)
        except gym.error.Error as exc:
            raise EnvError(f"cannot make env {self.env!r}: {exc}") from None


def _labels_row(labels: dict[str, Any]) -> list[float]:
    """Flatten the env's ``camera_labels()`` dict into :data:`LABEL_COLUMNS` order."""
    try:
        row = [float(v) for key in ("target_px", "ee_px") for v in np.asarray(labels[key], float).reshape(2)]
        row += [float(v) for key in ("target_pos", "ee_pos") for v in np.asarray(labels[key], float).reshape(3)]
        row += [float(bool(labels["target_in_image"])), float(bool(labels["ee_in_image"]))]
    except (KeyError, ValueError, TypeError) as exc:
        raise EnvError(f"camera_labels() returned an unexpected dict ({exc}); keys: {sorted(labels)}") from None
    return row


def render_dataset(spec: RenderSpec, progress: bool = True) -> ImageSet:
    """Render ``spec.n`` labelled images ``(n, H, W, 3)`` uint8 (see module docstring)."""
    from tqdm.auto import tqdm

    env = spec.make_env()
    base = env.unwrapped
    if not hasattr(base, "camera_labels"):
        env.close()
        raise EnvError(f"env {spec.env!r} has no camera_labels(); it cannot make a labelled image dataset")
    images, rows = [], []
    try:
        for i in tqdm(range(spec.n), desc=f"rendering {spec.env}", disable=not progress, leave=False):
            rng = np.random.default_rng([spec.seed, i])
            obs, _ = env.reset(seed=int(rng.integers(2**31 - 1)))
            for _ in range(int(rng.integers(0, spec.max_random_steps + 1))):
                obs, _, terminated, truncated, _ = env.step(rng.uniform(-1.0, 1.0, env.action_space.shape).astype(np.float32))
                if terminated or truncated:
                    break
            img = obs["image"] if isinstance(obs, dict) else obs
            img = np.asarray(img)
            if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
                raise DatasetError(f"env {spec.env!r}: observation image must be HxWx3 uint8, got {img.dtype} {img.shape}")
            images.append(img.copy())
            rows.append(_labels_row(base.camera_labels()))
    finally:
        env.close()
    meta = {"render": spec.to_dict(), "env": spec.env, "profile": spec.profile if isinstance(spec.profile, str) else "<dict>"}
    return ImageSet(np.stack(images), np.asarray(rows, dtype=np.float32), LABEL_COLUMNS, meta=meta)
