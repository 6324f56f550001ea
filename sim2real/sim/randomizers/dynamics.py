"""Dynamics randomizers: link masses/inertias/COMs, contact coefficients, joint terms, gravity, model parameters."""

from __future__ import annotations

from typing import Any

import numpy as np

from sim2real.profiles import Sample
from sim2real.sim.randomizers.base import Randomizer, plain, register_randomizer


class _LinkRandomizer(Randomizer):
    """Targets are link names (``base``, robot links; ``floor`` where the kind allows it)."""

    def validate(self) -> None:
        links = self.world.current["links"]
        bad = [t for t in self.targets if t not in links]
        if bad:
            self.fail(f"unknown link(s) {bad} for robot {self.world.robot.name!r}; known: {sorted(links)}")


@register_randomizer("link_mass")
class LinkMassRandomizer(_LinkRandomizer):
    """Mass (kg) = op(nominal mass, draw); ``recompute_inertia`` scales the inertia by the same ratio."""

    def apply(self, sample: Sample, rng: np.random.Generator) -> dict[str, Any]:
        nominal = self.world.nominal["links"]
        recompute = bool(self.entry.options.get("recompute_inertia", True))
        m0s = [nominal[t]["mass"] for t in sample.targets]
        masses = np.maximum(self.entry.apply_op(m0s, sample.values[:, 0]), 0.0).tolist()  # one op for all targets
        out = {}
        set_link = self.world.set_link
        for target, m0, m in zip(sample.targets, m0s, masses):
            set_link(target, mass=m, inertia_scale=m / m0 if (recompute and m0 > 0) else 1.0)
            out[target] = m
        return out


@register_randomizer("link_inertia")
class LinkInertiaRandomizer(_LinkRandomizer):
    """Diagonal local inertia (kg·m², (3,)) = op(nominal diagonal, draw); a 1-dim draw applies to all axes."""

    def apply(self, sample: Sample, rng: np.random.Generator) -> dict[str, Any]:
        nominal = self.world.nominal["links"]
        if not sample.targets:
            return {}
        inertias = np.maximum(self.entry.apply_op(np.array([nominal[t]["inertia"] for t in sample.targets]),
                                                  sample.values), 0.0)  # (n, 3): one op for all targets
        out = {}
        for target, inertia in zip(sample.targets, inertias):
            self.world.set_link(target, inertia=inertia)
            out[target] = tuple(inertia.tolist())
        return out


@register_randomizer("com_offset")
class ComOffsetRandomizer(_LinkRandomizer):
    """Centre-of-mass shift (m, link frame) = op(0, draw); rebuilds the robot body (see ``PhysicsWorld.set_com_offsets``)."""

    order = 0

    def validate(self) -> None:
        super().validate()
        if "floor" in self.targets:
            self.fail("com_offset cannot target the floor")
        if self.world.robot.model.format != "urdf":
            # rebuilding needs getCollisionShapeData, which crashes PyBullet 3.2.x on MJCF bodies
            self.fail(f"com_offset needs a URDF model; robot {self.world.robot.name!r} is "
                      f"{self.world.robot.model.format.upper()}")

    def apply(self, sample: Sample, rng: np.random.Generator) -> dict[str, Any]:
        offsets = {t: self.entry.apply_op(np.zeros(3), d) for t, d in zip(sample.targets, sample.values)}
        self.world.set_com_offsets(offsets)
        return {t: plain(v) for t, v in offsets.items()}


class _ContactRandomizer(_LinkRandomizer):
    field = ""

    def apply(self, sample: Sample, rng: np.random.Generator) -> dict[str, Any]:
        nominal = self.world.nominal["links"]
        field = self.field
        values = np.maximum(self.entry.apply_op([nominal[t][field] for t in sample.targets], sample.values[:, 0]),
                            0.0).tolist()
        out = {}
        set_link = self.world.set_link
        for target, v in zip(sample.targets, values):
            set_link(target, **{field: v})
            out[target] = v
        return out


@register_randomizer("lateral_friction")
class LateralFrictionRandomizer(_ContactRandomizer):
    field = "lateral_friction"


@register_randomizer("spinning_friction")
class SpinningFrictionRandomizer(_ContactRandomizer):
    field = "spinning_friction"


@register_randomizer("rolling_friction")
class RollingFrictionRandomizer(_ContactRandomizer):
    field = "rolling_friction"


@register_randomizer("restitution")
class RestitutionRandomizer(_ContactRandomizer):
    field = "restitution"


class JointRandomizer(Randomizer):
    """Targets are controlled joint names; writes one per-joint array of the world (``field``)."""

    field = ""

    def validate(self) -> None:
        names = self.world.robot.joint_names
        bad = [t for t in self.targets if t not in names]
        if bad:
            self.fail(f"unknown controlled joint(s) {bad} for robot {self.world.robot.name!r}; known: {names}")
        self._index = np.array([names.index(t) for t in self.targets], dtype=int)

    def apply(self, sample: Sample, rng: np.random.Generator) -> dict[str, Any]:
        nominal = self.world.nominal["joints"][self.field]
        values = self.world.current["joints"][self.field].copy()
        final = np.maximum(self.entry.apply_op(nominal[self._index], sample.values[:, 0]), 0.0)
        values[self._index] = final
        self.world.set_joint(self.field, values)
        return dict(zip(sample.targets, final.tolist()))


@register_randomizer("joint_damping")
class JointDampingRandomizer(JointRandomizer):
    """Viscous damping (N·m·s/rad), PyBullet ``jointDamping``."""

    field = "damping"


@register_randomizer("joint_friction")
class JointFrictionRandomizer(JointRandomizer):
    """Coulomb friction torque (N·m): a velocity motor (target 0, max force = friction) in torque mode;
    a smoothed torque -f·tanh(q̇/0.01) added each physics step in position/velocity modes."""

    field = "friction"


@register_randomizer("armature")
class ArmatureRandomizer(JointRandomizer):
    """Rotor inertia (kg·m²), added to the child link's diagonal inertia about the joint axis."""

    field = "armature"


@register_randomizer("gravity")
class GravityRandomizer(Randomizer):
    """World gravity (m/s², (3,)) = op([0, 0, -9.81] or robot nominal, draw)."""

    def apply(self, sample: Sample, rng: np.random.Generator) -> dict[str, Any]:
        g = self.entry.apply_op(self.world.nominal["gravity"], sample.values[0])
        self.world.set_gravity(g)
        return {"value": plain(g)}


@register_randomizer("model_param")
class ModelParamRandomizer(Randomizer):
    """Robot-model numbers: ``world.model_params[name] = op(robot.yaml model_params[name], draw)``."""

    def validate(self) -> None:
        params = self.world.robot.model_params
        bad = [t for t in self.targets if not isinstance(params.get(t), (int, float)) or isinstance(params.get(t), bool)]
        if bad:
            numeric = [k for k, v in params.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
            self.fail(f"unknown or non-numeric model parameter(s) {bad} for robot {self.world.robot.name!r}; "
                      f"numeric ones: {numeric}")

    def apply(self, sample: Sample, rng: np.random.Generator) -> dict[str, Any]:
        out = {}
        for target, draw in zip(sample.targets, sample.values):
            v = float(self.entry.apply_op(float(self.world.robot.model_params[target]), draw)[0])
            self.world.model_params[target] = v
            out[target] = v
        return out
