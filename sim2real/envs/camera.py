"""Camera-observation arm reach: the reach task seen through a (randomizable) RGB camera.

Observation (``gymnasium.spaces.Dict``):

* ``image``: ``uint8`` ``(H, W, 3)`` RGB from PyBullet's TinyRenderer, rendered with the
  world's current camera (nominal camera + ``camera_*`` jitter) and lighting
  (``light_*`` draws); the target is a coloured visual-only sphere of radius
  ``success_radius``;
* ``state``: ``float32`` ``(2n,)``: ``joint_position`` (rad) then ``joint_velocity``
  (rad/s), robot.yaml joint order (observation noise/latency of the profile apply).

Actions, reward, success and episode length are those of
:class:`~sim2real.envs.arm_reach.ArmReachEnv` in ``joint_position_delta`` mode.
:meth:`ArmReachCameraEnv.camera_labels` gives the target's and the end effector's pixel
coordinates and base-frame positions for the current frame (datasets for domain
adaptation). The image is rendered when the observation is made; with observation
latency only ``state`` is delayed.
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import gymnasium as gym
import numpy as np
import pybullet as p

from sim2real.envs.arm_reach import ArmReachEnv
from sim2real.envs.registration import SPEC_FLAGS
from sim2real.errors import EnvError
from sim2real.profiles import Profile
from sim2real.robots import RobotDescription
from sim2real.sim.visuals import (
    CameraSpec,
    current_camera,
    light_settings,
    render_rgb,
    restore_visuals,
    world_visuals,
)

CAMERA_ENV_IDS = {"sim2real/KukaReachCamera-v0": "kuka_iiwa", "sim2real/PandaReachCamera-v0": "franka_panda"}


def _camera_from(value: CameraSpec | dict) -> CameraSpec:
    if isinstance(value, CameraSpec):
        return value
    if isinstance(value, dict):
        try:
            return CameraSpec(**{k: (tuple(v) if isinstance(v, (list, tuple)) else float(v)) for k, v in value.items()})
        except TypeError as exc:
            raise EnvError(f"camera: expected keys position, target, up, fov, near, far ({exc})") from None
    raise EnvError(f"camera: expected a CameraSpec or a dict, got {type(value).__name__}")


class ArmReachCameraEnv(ArmReachEnv):
    """Arm reach with a ``{"image", "state"}`` observation.

    Args:
        robot: an arm (``kuka_iiwa``, ``franka_panda`` or a path).
        profile: randomization profile (visual kinds act on the image).
        image_size: ``int`` (square) or ``(height, width)`` in pixels (default 64).
        render_mode: ``None`` or ``"rgb_array"`` (:meth:`render` returns the camera image).
        camera: nominal camera (``CameraSpec`` or dict of its fields); default from the
            robot (``model_params.camera`` or :data:`~sim2real.sim.visuals.DEFAULT_CAMERAS`).
        target_color: RGB in [0, 1] of the target sphere.
        shadow: render shadows (slower).
        max_episode_steps, position_delta_scale, success_bonus, terminate_on_success,
        start_noise: as :class:`ArmReachEnv`.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, robot: str | RobotDescription = "kuka_iiwa", profile: str | dict | Profile = "nominal",
                 image_size: int | Sequence[int] = 64, render_mode: str | None = None,
                 camera: CameraSpec | dict | None = None, target_color: Sequence[float] = (1.0, 0.0, 0.0),
                 shadow: bool = False, max_episode_steps: int | None = 100, position_delta_scale: float = 0.08,
                 success_bonus: float = 1.0, terminate_on_success: bool = False, start_noise: float = 0.05) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise EnvError(f"unsupported render_mode {render_mode!r}; expected None or 'rgb_array'")
        size = (int(image_size), int(image_size)) if np.isscalar(image_size) else tuple(int(s) for s in image_size)
        if len(size) != 2 or min(size) < 1:
            raise EnvError(f"image_size must be a positive int or (height, width), got {image_size!r}")
        super().__init__(robot, profile, action_mode="joint_position_delta", max_episode_steps=max_episode_steps,
                         position_delta_scale=position_delta_scale, success_bonus=success_bonus,
                         terminate_on_success=terminate_on_success, start_noise=start_noise)
        self.render_mode = render_mode
        self.image_height, self.image_width = size
        self.shadow = bool(shadow)
        w = self.world
        vis = world_visuals(w)
        if camera is not None:
            vis.camera = _camera_from(camera)
        self.nominal_camera = vis.camera
        n = self.robot.n_joints
        self._n_state = 2 * n
        self._state_layout = self._layout[:2]
        color = [*np.clip(np.asarray(target_color, float)[:3], 0, 1).tolist(), 1.0]
        shape = p.createVisualShape(p.GEOM_SPHERE, radius=self.success_radius, rgbaColor=color,
                                    physicsClientId=w.client)
        self._marker = p.createMultiBody(baseMass=0.0, baseCollisionShapeIndex=-1, baseVisualShapeIndex=shape,
                                         basePosition=self._to_world(self.target).tolist(), physicsClientId=w.client)
        self.observation_space = gym.spaces.Dict({
            "image": gym.spaces.Box(0, 255, shape=(self.image_height, self.image_width, 3), dtype=np.uint8),
            "state": gym.spaces.Box(self._obs_low[:self._n_state].astype(np.float32),
                                    self._obs_high[:self._n_state].astype(np.float32), dtype=np.float32),
        })
        self._last_image: np.ndarray | None = None

    # ------------------------------------------------------------------ geometry
    def _to_world(self, pos_base: np.ndarray) -> np.ndarray:
        base_pos, base_orn = self.world.base_pose()
        return np.asarray(p.multiplyTransforms(base_pos.tolist(), base_orn.tolist(),
                                               np.asarray(pos_base, float).tolist(), (0, 0, 0, 1))[0])

    def camera(self) -> CameraSpec:
        """The camera of the current episode (nominal + jitter), world frame."""
        return current_camera(self.world)

    def render_image(self, height: int | None = None, width: int | None = None) -> np.ndarray:
        """Render the current scene: ``uint8 (H, W, 3)``, by default at the observation size."""
        h = self.image_height if height is None else int(height)
        wd = self.image_width if width is None else int(width)
        return render_rgb(self.world.client, self.camera(), wd, h, light_settings(self.world, self.shadow))

    def camera_labels(self) -> dict[str, Any]:
        """Labels of the current frame, projected with the current (possibly jittered) camera.

        Returns:
            ``target_px`` / ``ee_px``: ``(u, v)`` floats in pixels of the observation image
            (``u`` column from the left, ``v`` row from the top; may lie outside the image);
            ``target_pos`` / ``ee_pos``: ``(3,)`` m in the robot base frame;
            ``target_in_image`` / ``ee_in_image``: whether the point projects inside the image.
        """
        target_pos = np.asarray(self.target, float).copy()
        ee_pos = self.ee_position()
        uv = self.camera().project(np.stack([self._to_world(target_pos), self._to_world(ee_pos)]),
                                   self.image_width, self.image_height)

        def inside(x: np.ndarray) -> bool:
            return bool(np.all(np.isfinite(x)) and 0 <= x[0] < self.image_width and 0 <= x[1] < self.image_height)

        return {"target_px": (float(uv[0, 0]), float(uv[0, 1])), "ee_px": (float(uv[1, 0]), float(uv[1, 1])),
                "target_pos": target_pos, "ee_pos": ee_pos,
                "target_in_image": inside(uv[0]), "ee_in_image": inside(uv[1])}

    # ------------------------------------------------------------------ env API
    def observation_layout(self) -> list[tuple[str, int]]:
        """Layout of ``obs["state"]`` (the image is ``obs["image"]``, shape ``(H, W, 3)``)."""
        return list(self._state_layout)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        opts = options or {}
        keeps_world = (opts.get("randomize", True) is False and not opts.get("params")
                       and self._pending_runner is None and self.runner.episodes > 0)
        if not keeps_world:
            # world.restore_nominal() (run by the randomization runner) undoes the looks as well,
            # but only after a com_offset draw has rebuilt the robot body from the current one:
            # undo the last episode's looks first so a rebuild starts from the nominal look.
            restore_visuals(self.world)
        return super().reset(seed=seed, options=options)

    def _reset_task(self) -> None:
        super()._reset_task()
        p.resetBasePositionAndOrientation(self._marker, self._to_world(self.target).tolist(), (0, 0, 0, 1),
                                          physicsClientId=self.world.client)

    def _sense(self, obs: np.ndarray) -> dict[str, np.ndarray]:  # type: ignore[override]
        state = super()._sense(obs)[:self._n_state]
        image = self.render_image()
        self._last_image = image
        return {"image": image, "state": state}

    def render(self) -> np.ndarray | None:
        """``rgb_array``: the camera image of the current state, ``uint8 (H, W, 3)``."""
        if self.render_mode != "rgb_array":
            return None
        return self.render_image()

    def close(self) -> None:
        if self.world.client >= 0:
            world_visuals(self.world).close()
        super().close()


def register_camera_envs() -> None:
    """Register ``sim2real/KukaReachCamera-v0`` and ``sim2real/PandaReachCamera-v0`` (idempotent).

    As the other envs: the episode length (100 steps) is Gymnasium's ``TimeLimit``
    (``gym.make(id, max_episode_steps=N)`` changes it); the env's own limit is off.
    """
    for env_id, robot in CAMERA_ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point="sim2real.envs.camera:ArmReachCameraEnv",
                         kwargs={"robot": robot, "max_episode_steps": None}, max_episode_steps=100,
                         **SPEC_FLAGS)


register_camera_envs()
