"""Quadrotor numbers and conversions for low-level outputs (``thrust_rates`` and ``motor`` policies).

Frames: the policy, the envs and ROS (REP-103) use a body frame x forward, y left, z up
(FLU) and a world frame ENU; PX4 uses a body frame x forward, y right, z down (FRD) and
NED. A body vector converts FLU → FRD as ``(x, -y, -z)`` (the same map back).

Normalised thrust: PX4 takes thrust as a fraction of the maximum (``VehicleRatesSetpoint``
``thrust_body``, ``ActuatorMotors`` ``control``), linear in thrust once ``THR_MDL_FAC``
matches the propulsion. Here the maximum is the robot model's: one rotor
``T_max = kf · max_rpm²`` (N), collective ``4 · T_max``. The envs command rotor speeds
squared (``ω²``, rpm²), so a rotor's fraction is ``ω² / max_rpm²``.

Motor order: the envs number rotors 0 front-right, 1 back-right, 2 back-left, 3 front-left
(``robots/quadrotor/robot.yaml`` ``links``); PX4's quadrotor-X geometry numbers motor 1
front-right, 2 back-left, 3 front-left, 4 back-right (with the same spin directions:
1 and 2 counter-clockwise, 3 and 4 clockwise seen from above). :data:`PX4_QUAD_X_ORDER`
lists, for each PX4 motor, the env rotor that drives it.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from sim2real.errors import ConfigError, RobotError
from sim2real.robots import RobotDescription

GRAVITY = 9.81
#: env rotor index for PX4 motor 1..4 (quadrotor X): FR, BL, FL, BR.
PX4_QUAD_X_ORDER = (0, 2, 3, 1)
#: Rotor x/y signs (times ``arm_length / √2``) and reaction-torque signs in env rotor order,
#: the geometry of ``sim2real.sim.quadrotor`` (not imported: the robot computer has no PyBullet).
ROTOR_XY_SIGNS = np.array([[1.0, -1.0], [-1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
ROTOR_YAW_SIGNS = np.array([-1.0, 1.0, -1.0, 1.0])
FLU_TO_FRD = np.array([1.0, -1.0, -1.0])


def flu_to_frd(v: Sequence[float]) -> np.ndarray:
    """Body vector (3,) FLU → FRD (its own inverse)."""
    return np.asarray(v, dtype=np.float64) * FLU_TO_FRD


def _urdf_base_inertial(path: str) -> tuple[float, np.ndarray]:
    """Total mass (kg) and the base link's inertia diagonal (3,) kg·m² of a URDF."""
    root = ET.parse(path).getroot()
    mass = 0.0
    base_inertia = None
    for link in root.findall("link"):
        m = link.find("inertial/mass")
        if m is not None:
            mass += float(m.get("value", "0"))
        inertia = link.find("inertial/inertia")
        if base_inertia is None and inertia is not None and m is not None and float(m.get("value", "0")) > 0:
            base_inertia = np.array([float(inertia.get(k, "0")) for k in ("ixx", "iyy", "izz")])
    if mass <= 0 or base_inertia is None or np.any(base_inertia <= 0):
        raise RobotError(f"{path}: no positive mass/inertia in the URDF")
    return mass, base_inertia


@dataclass(frozen=True)
class DroneModel:
    """Rotor and body numbers of the real drone (robot.yaml ``model_params`` + URDF inertials).

    ``kf`` N/rpm², ``km`` N·m/rpm², ``max_rpm`` rpm, ``arm_length`` m, ``mass`` kg,
    ``inertia`` (3,) kg·m² (diagonal, body FLU), ``rate_gain`` (3,) 1/s (body-rate P gain
    of the level-out controller), ``hover_fraction`` hover thrust / collective maximum.
    """

    kf: float
    km: float
    max_rpm: float
    arm_length: float
    mass: float
    inertia: np.ndarray
    rate_gain: np.ndarray
    hover_fraction: float

    @property
    def rotor_max_thrust(self) -> float:
        """One rotor at ``max_rpm`` (N)."""
        return self.kf * self.max_rpm**2

    @property
    def max_thrust(self) -> float:
        """All four rotors at ``max_rpm`` (N)."""
        return 4.0 * self.rotor_max_thrust

    def mixer(self) -> np.ndarray:
        """``A`` (4, 4) with ``[F, τx, τy, τz] = A @ T`` for rotor thrusts ``T`` (N), env rotor order, FLU."""
        d = self.arm_length / math.sqrt(2.0)
        xy = ROTOR_XY_SIGNS * d
        return np.vstack([np.ones(4), xy[:, 1], -xy[:, 0], ROTOR_YAW_SIGNS * (self.km / self.kf)])

    @classmethod
    def from_robot(cls, robot: RobotDescription, *, mass: float = 0.0, hover_fraction: float = 0.0) -> "DroneModel":
        """Read the model; ``mass``/``hover_fraction`` > 0 override the URDF mass / computed hover thrust."""
        mp: Mapping[str, Any] = robot.model_params
        values = {}
        for key in ("kf", "km", "max_rpm", "arm_length"):
            v = mp.get(key)
            number = isinstance(v, (int, float)) and not isinstance(v, bool)
            if not number or not (v >= 0 if key == "km" else v > 0):
                raise RobotError(f"expected a positive number, got {v!r}", file=str(robot.file),
                                 path=("model_params", key))
            values[key] = float(v)
        urdf_mass, inertia = _urdf_base_inertial(robot.model_path())
        mass = mass or urdf_mass
        gains = (mp.get("rate_controller") or {}).get("kp", [25.0, 25.0, 12.0])
        model = cls(**values, mass=mass, inertia=inertia, rate_gain=np.asarray(gains, dtype=np.float64),
                    hover_fraction=0.0)
        hover = hover_fraction or mass * GRAVITY / model.max_thrust
        if not 0.0 < hover < 1.0:
            raise RobotError(f"hover needs {hover:.2f} of the maximum thrust: the rotors cannot carry {mass} kg",
                             file=str(robot.file), path=("model_params", "max_rpm"))
        return cls(**values, mass=mass, inertia=inertia, rate_gain=model.rate_gain, hover_fraction=hover)


def motor_order(order: Sequence[int], file: str | None = None) -> tuple[int, ...]:
    """Validate ``px4.motor_order``: a permutation of 0..3 (env rotor for PX4 motor 1..4)."""
    if sorted(order) != [0, 1, 2, 3]:
        raise ConfigError(f"expected a permutation of [0, 1, 2, 3] (env rotor for PX4 motor 1..4), got {list(order)}",
                          file=file, path=("sim2real_deploy", "ros__parameters", "px4", "motor_order"))
    return tuple(int(i) for i in order)


def level_out_rates(orientation: np.ndarray, gain: float, max_rate: np.ndarray) -> np.ndarray:
    """Body rates (3,) rad/s FLU that rotate the body z axis back to world up, no yaw rate.

    :param orientation: body→world quaternion ``(x, y, z, w)``.
    :param gain: rad/s per rad of tilt. The result is clipped to ``±max_rate`` (3,).
    """
    x, y, z, w = orientation / np.linalg.norm(orientation)
    # world up in the body frame: third row of R(q)
    up = np.array([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)])
    axis = np.array([-up[1], up[0], 0.0])  # e_z × up
    s = float(np.linalg.norm(axis))
    tilt = math.atan2(s, float(up[2]))
    rates = axis / s * tilt * gain if s > 1e-9 else (np.array([gain * math.pi, 0.0, 0.0]) if up[2] < 0 else np.zeros(3))
    return np.clip(rates, -max_rate, max_rate)


def level_out_thrust(model: DroneModel, orientation: np.ndarray | None, vz: float | None,
                     vz_gain: float = 1.0) -> float:
    """Collective thrust fraction that holds altitude while levelling: hover / cos(tilt), damping ``vz`` (m/s up)."""
    up_z = 1.0
    if orientation is not None:
        x, y, _, _ = orientation / np.linalg.norm(orientation)
        up_z = 1.0 - 2.0 * (x * x + y * y)
    damping = 1.0 - vz_gain * vz / GRAVITY if vz is not None else 1.0
    return float(np.clip(model.hover_fraction * damping / max(up_z, 0.5), 0.0, 1.0))


def rotor_fractions(model: DroneModel, thrust_fraction: float, rates_cmd: np.ndarray,
                    rates_now: np.ndarray | None) -> np.ndarray:
    """Per-rotor thrust fractions (4,) in [0, 1], env order, for a collective thrust and a body-rate target.

    A body-rate P loop (``model.rate_gain``) gives the torque ``τ = J · k · (ω_cmd − ω)``;
    the inverse mixer turns ``[F, τ]`` into rotor thrusts. ``rates_now`` None: no feedback (τ = 0).
    """
    err = rates_cmd - rates_now if rates_now is not None else np.zeros(3)
    torque = model.inertia * model.rate_gain * err
    wrench = np.concatenate([[thrust_fraction * model.max_thrust], torque])
    thrusts = np.linalg.solve(model.mixer(), wrench)
    return np.clip(thrusts / model.rotor_max_thrust, 0.0, 1.0)
