"""Actuation and sensing randomizers: motor strength, gains, latencies, noise, pushes, wind."""

from __future__ import annotations

from typing import Any

import numpy as np

from sim2real.profiles import Sample
from sim2real.sim.randomizers.base import Randomizer, plain, register_randomizer
from sim2real.sim.randomizers.dynamics import JointRandomizer, _LinkRandomizer


@register_randomizer("motor_strength")
class MotorStrengthRandomizer(JointRandomizer):
    """Scale of each joint's max effort: torques are clipped to ±strength·max_effort and
    position/velocity motors get that max force."""

    field = "strength"


@register_randomizer("position_gain")
class PositionGainRandomizer(JointRandomizer):
    """Position gain of the joint's drive: kp (N·m/rad) of ``pd`` / ``dc_motor``, PyBullet's
    ``positionGains`` of ``pybullet_position``."""

    field = "position_gain"


@register_randomizer("velocity_gain")
class VelocityGainRandomizer(JointRandomizer):
    """Velocity gain of the joint's drive: kd (N·m·s/rad) of ``pd`` / ``dc_motor``, PyBullet's
    ``velocityGains`` of its motors."""

    field = "velocity_gain"


@register_randomizer("stall_torque")
class StallTorqueRandomizer(JointRandomizer):
    """Stall torque (N·m) of ``dc_motor`` drives (the torque–speed line's value at rest)."""

    field = "stall_torque"


@register_randomizer("free_speed")
class FreeSpeedRandomizer(JointRandomizer):
    """No-load speed (rad/s) of ``dc_motor`` drives (where the torque–speed line reaches zero)."""

    field = "free_speed"


def to_physics_steps(value: float, unit: str, world: Any) -> int:
    """Convert a latency in ``physics_steps`` | ``control_steps`` | ``seconds`` to whole physics steps."""
    if unit == "control_steps":
        value = value * world.substeps
    elif unit == "seconds":
        value = value / world.physics_dt
    return max(0, int(round(float(value))))


@register_randomizer("action_latency")
class ActionLatencyRandomizer(Randomizer):
    """The command issued at physics step t acts from step t + delay (``world.action_delay``)."""

    def apply(self, sample: Sample, rng: np.random.Generator) -> dict[str, Any]:
        steps = to_physics_steps(float(sample.values[0, 0]), self.entry.options.get("unit", "physics_steps"), self.world)
        self.world.action_delay = steps
        return {"value": steps * self.world.physics_dt, "physics_steps": steps}


@register_randomizer("observation_latency")
class ObservationLatencyRandomizer(Randomizer):
    """The observation returned after a step shows the state ``world.observation_delay`` physics steps earlier."""

    def apply(self, sample: Sample, rng: np.random.Generator) -> dict[str, Any]:
        steps = to_physics_steps(float(sample.values[0, 0]), self.entry.options.get("unit", "control_steps"), self.world)
        self.world.observation_delay = steps
        return {"value": steps * self.world.physics_dt, "physics_steps": steps}


@register_randomizer("action_noise")
class ActionNoiseRandomizer(Randomizer):
    """Noise level (std or half-width, normalised action units) added to every action."""

    def apply(self, sample: Sample, rng: np.random.Generator) -> dict[str, Any]:
        level = max(0.0, float(sample.values[0, 0]))
        self.world.action_noise = (self.entry.options.get("noise", "gaussian"), level)
        return {"value": level}


@register_randomizer("observation_noise")
class ObservationNoiseRandomizer(Randomizer):
    """Per-step noise level plus an optional per-episode bias per observation element."""

    def apply(self, sample: Sample, rng: np.random.Generator) -> dict[str, Any]:
        level = max(0.0, float(sample.values[0, 0]))
        bias_dist = self.entry.options.get("bias")
        size = int(getattr(self.world, "observation_size", 0))
        bias = bias_dist.sample(rng, (size,))[:, 0] if (bias_dist is not None and size) else np.zeros(size)
        self.world.observation_noise = (self.entry.options.get("noise", "gaussian"), level, bias)
        out: dict[str, Any] = {"value": level}
        if bias_dist is not None:
            out["bias"] = plain(bias)
        return out


def random_direction(rng: np.random.Generator, horizontal: bool) -> np.ndarray:
    """A unit vector, uniform on the sphere (or on the horizontal circle)."""
    if horizontal:
        a = rng.uniform(0.0, 2.0 * np.pi)
        return np.array([np.cos(a), np.sin(a), 0.0])
    v = rng.normal(size=3)
    return v / max(np.linalg.norm(v), 1e-12)


@register_randomizer("push")
class PushRandomizer(_LinkRandomizer):
    """External force (N, the draw, random direction) held for ``duration`` s on each target link."""

    def validate(self) -> None:
        super().validate()
        if "floor" in self.targets:
            self.fail("push cannot target the floor")

    def apply(self, sample: Sample, rng: np.random.Generator) -> dict[str, Any]:
        w = self.world
        horizontal = self.entry.options.get("direction", "any") == "horizontal"
        duration = float(self.entry.options.get("duration", 0.1))
        torque_dist = self.entry.options.get("torque")
        steps = max(1, int(round(duration / w.physics_dt)))
        out = {}
        for target, draw in zip(sample.targets, sample.values):
            force = float(draw[0]) * random_direction(rng, horizontal)
            torque = np.zeros(3)
            if torque_dist is not None:
                torque = float(torque_dist.sample(rng, ())[0]) * random_direction(rng, False)
            w.start_push(w.link_index[target], force, torque, steps)
            out[target] = plain(force)
        return out


@register_randomizer("wind")
class WindRandomizer(_LinkRandomizer):
    """Constant force (N, world frame, (3,)) = op(0, draw) at each target link's centre of mass,
    applied at every physics step until the next randomized reset (``PhysicsWorld.set_wind``)."""

    def validate(self) -> None:
        super().validate()
        if "floor" in self.targets:
            self.fail("wind cannot target the floor")
        if self.entry.operation == "scale":
            self.fail("wind has no nominal force to scale; use operation abs or add")

    def apply(self, sample: Sample, rng: np.random.Generator) -> dict[str, Any]:
        w = self.world
        out = {}
        for target, draw in zip(sample.targets, sample.values):
            force = self.entry.apply_op(np.zeros(3), draw)
            w.set_wind(w.link_index[target], force)
            out[target] = plain(force)
        return out
