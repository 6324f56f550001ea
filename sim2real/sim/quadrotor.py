"""Quadrotor rotor model for PyBullet: motor lag, thrust, yaw torque, drag and ground effect.

PyBullet knows nothing about propellers, so the rotor forces of the quadrotor in
``robots/quadrotor`` are computed here and applied as external forces, once per physics
step (PyBullet clears external forces after every ``stepSimulation``).

Model (rotor speeds ``ω`` in rpm, as in the Crazyflie identification literature):

- first-order motor lag ``dω/dt = (ω_cmd − ω) / motor_tau``, integrated exactly over each
  physics step for a command held constant during the step;
- thrust ``T_i = kf · ω_i²`` along body +z at rotor ``i``;
- reaction (drag) torque ``τ_z,i = s_i · km · ω_i²`` about body z, ``s = (−1, +1, −1, +1)``
  (rotors 0 and 2 spin counter-clockwise seen from above, 1 and 3 clockwise);
- rotor-induced linear drag ``F = −diag(c_xy, c_xy, c_z) · Σ ω_i[rad/s] · v_body`` at the
  centre of mass (Forster 2015, the Crazyflie 2.0 identification);
- ground effect (Cheeseman & Bennett 1955): ``T_IGE / T_OGE = 1 / (1 − c · (R / 4h)²)`` with
  ``h`` the rotor's height above the ground plane, capped at ``ground_effect_max_gain``.

Motor order and geometry (X configuration, body frame x forward, y left, z up)::

    3 (+x, +y) front-left    0 (+x, −y) front-right
    2 (−x, +y) back-left     1 (−x, −y) back-right

:class:`BodyRateController` is the inner loop of the collective-thrust + body-rate mode:
a PID on body rates plus a mixer that turns (thrust, torque) into rotor speeds.
:class:`VelocityController` is the outer loop of the velocity-setpoint mode, feeding it.
:class:`sim2real.sim.quadrotor_world.QuadrotorWorld` runs them inside a ``PhysicsWorld``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any, Mapping, Sequence

import numpy as np
import pybullet as p
from scipy.spatial.transform import Rotation

from sim2real.errors import RobotError
from sim2real.sim import _quadkernel


def _rotation(quat_xyzw: Sequence[float]) -> np.ndarray:
    """Rotation matrix (3, 3) of a quaternion, xyzw."""
    return Rotation.from_quat(quat_xyzw).as_matrix()

GRAVITY = 9.81
RPM_TO_RAD_S = 2.0 * math.pi / 60.0

#: Rotor x/y signs (times ``arm_length / √2``) in motor order.
ROTOR_XY_SIGNS = np.array([[1.0, -1.0], [-1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
#: Sign of each rotor's reaction torque about body +z (per unit ``km · ω²``).
ROTOR_YAW_SIGNS = np.array([-1.0, 1.0, -1.0, 1.0])


@dataclass(frozen=True)
class RotorParams:
    """Numbers of the rotor model (a robot's ``model_params``, possibly randomized).

    Units: ``kf`` N/rpm², ``km`` N·m/rpm², ``motor_tau`` s, ``arm_length`` m (centre of mass
    to rotor axis), ``max_rpm`` rpm, ``prop_radius`` m, ``drag_coeff``/``drag_coeff_z``
    N/((m/s)·(rad/s)), ``ground_effect_coeff`` dimensionless (0 disables),
    ``ground_effect_max_gain`` ≥ 1.
    """

    kf: float
    km: float
    motor_tau: float
    arm_length: float
    max_rpm: float
    prop_radius: float = 0.0231
    drag_coeff: float = 0.0
    drag_coeff_z: float = 0.0
    ground_effect_coeff: float = 0.0
    ground_effect_max_gain: float = 1.5

    REQUIRED = ("kf", "km", "motor_tau", "arm_length", "max_rpm")

    @classmethod
    def from_mapping(cls, params: Mapping[str, Any], *, file: str | None = None) -> "RotorParams":
        """Read the rotor numbers from a ``model_params`` mapping; other keys are ignored.

        Raises :class:`RobotError` naming ``model_params.<key>`` for a missing, non-numeric
        or out-of-range value.
        """
        values: dict[str, float] = {}
        for f in fields(cls):
            if f.name not in params:
                if f.name in cls.REQUIRED:
                    raise RobotError("missing rotor-model parameter", file=file, path=("model_params", f.name))
                continue
            raw = params[f.name]
            arr = np.asarray(raw, dtype=float) if not isinstance(raw, (str, bool, dict)) else None
            if arr is None or arr.size != 1 or not np.isfinite(arr).all():
                raise RobotError(f"expected a finite number, got {raw!r}", file=file, path=("model_params", f.name))
            values[f.name] = float(arr.reshape(()))
        out = cls(**values)
        checks = {
            "kf": out.kf > 0, "km": out.km >= 0, "motor_tau": out.motor_tau >= 0,
            "arm_length": out.arm_length > 0, "max_rpm": out.max_rpm > 0, "prop_radius": out.prop_radius > 0,
            "drag_coeff": out.drag_coeff >= 0, "drag_coeff_z": out.drag_coeff_z >= 0,
            "ground_effect_coeff": out.ground_effect_coeff >= 0,
            "ground_effect_max_gain": out.ground_effect_max_gain >= 1.0,
        }
        for key, ok in checks.items():
            if not ok:
                raise RobotError(f"value {getattr(out, key)!r} is out of range", file=file, path=("model_params", key))
        return out

    def with_values(self, **changes: float) -> "RotorParams":
        return replace(self, **changes)

    @property
    def max_thrust(self) -> float:
        """Thrust of one rotor at ``max_rpm`` (N)."""
        return self.kf * self.max_rpm**2

    def hover_rpm(self, mass: float, gravity: float = GRAVITY) -> float:
        """Rotor speed (rpm) at which four rotors carry ``mass`` kg out of ground effect."""
        return math.sqrt(mass * gravity / (4.0 * self.kf))


def rotor_positions(arm_length: float) -> np.ndarray:
    """Rotor centres in the body frame, shape (4, 3), metres."""
    d = arm_length / math.sqrt(2.0)
    return np.column_stack([ROTOR_XY_SIGNS * d, np.zeros(4)])


def mixer_matrix(params: RotorParams) -> np.ndarray:
    """Matrix ``A`` (4, 4) with ``[F, τx, τy, τz] = A @ T`` for rotor thrusts ``T`` (N).

    ``F`` is the collective thrust (N) along body z and ``τ`` the body torque (N·m).
    """
    r = rotor_positions(params.arm_length)
    return np.vstack([
        np.ones(4),
        r[:, 1],                                   # τx = Σ y_i T_i
        -r[:, 0],                                  # τy = −Σ x_i T_i
        ROTOR_YAW_SIGNS * (params.km / params.kf),  # τz = Σ s_i km ω² = Σ s_i (km/kf) T_i
    ])


def ground_effect_gain(heights: np.ndarray, params: RotorParams) -> np.ndarray:
    """Thrust ratio in/out of ground effect per rotor (Cheeseman–Bennett), shape like ``heights`` (m)."""
    gain = np.ones_like(heights, dtype=float)
    if params.ground_effect_coeff <= 0.0:
        return gain
    h = np.maximum(heights, 1e-4)
    x = params.ground_effect_coeff * (params.prop_radius / (4.0 * h)) ** 2
    # 1/(1 − x) grows without bound as x → 1; cap it where it reaches the configured maximum
    x_cap = 1.0 - 1.0 / params.ground_effect_max_gain
    return 1.0 / (1.0 - np.minimum(x, x_cap))


#: (position (3,), m, world; rotation (9,), body→world row-major; linear velocity (3,), m/s,
#: world; body rates (3,), rad/s), float tuples
BaseState = tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...], tuple[float, ...]]


class QuadrotorDynamics:
    """Rotor model of one quadrotor body in one PyBullet client.

    Call :meth:`physics_step` once right before every ``p.stepSimulation``: it advances the
    motor lag by ``physics_dt`` towards the held command and applies the resulting forces
    and yaw torque (world frame) for that step.

    :param client: PyBullet physics client id.
    :param body: body unique id of the quadrotor.
    :param params: rotor numbers (swap per episode with :meth:`set_params`).
    :param physics_dt: physics step (s).
    :param ground_z: height of the ground plane (m, world), for the ground effect.
    """

    def __init__(self, client: int, body: int, params: RotorParams, physics_dt: float, ground_z: float = 0.0) -> None:
        if physics_dt <= 0:
            raise ValueError(f"physics_dt must be > 0, got {physics_dt}")
        self.client = client
        self.physics_dt = float(physics_dt)
        self._ground_z = float(ground_z)
        self._params = params
        #: the compiled physics-step loop (``sim2real/sim/_quadkernel.c``): rotor model and controllers
        self.kernel = _quadkernel.Kernel(client, body)
        self._kernel_ctrl: Any = None  # the controllers whose constants the kernel holds
        self._kernel_vctrl: Any = None
        # motor state, read and written by the kernel (lists of floats)
        self._rpm = [0.0] * 4
        self._rpm_cmd = [0.0] * 4
        self._thrusts = (0.0, 0.0, 0.0, 0.0)
        self._yaw_torque = 0.0
        self._com_in_link = np.zeros(3)
        self._com_rot_in_link = np.eye(3)
        self.attach(body)

    def attach(self, body: int) -> None:
        """Fly ``body`` (call again when the body was rebuilt, e.g. after a centre-of-mass shift).

        Rotor positions are relative to the base *link* frame; PyBullet reports the base pose
        at the centre of mass, so the centre-of-mass offset is read here.
        """
        self.body = body
        self.kernel.set_body(body)
        info = p.getDynamicsInfo(body, -1, physicsClientId=self.client)
        self.set_com_frame(info[3], _rotation(info[4]))

    def set_com_frame(self, com_in_link: Sequence[float], com_rot_in_link: np.ndarray) -> None:
        """Pose of the base's centre-of-mass (inertial) frame in its link frame: position (3,), m,
        and rotation (3, 3) (:meth:`attach` reads them from PyBullet)."""
        self._com_in_link = np.asarray(com_in_link, dtype=float).reshape(3)
        self._com_rot_in_link = np.asarray(com_rot_in_link, dtype=float).reshape(3, 3)
        self._cache_params = None  # rebuild the precomputed geometry

    def _precompute(self) -> None:
        """Per-params / per-body constants of the rotor model, handed to the kernel.

        With ``R`` the COM-frame→world rotation PyBullet reports, ``C`` the COM frame's rotation
        in the link frame and ``c`` its position there: the link→world rotation is ``R Cᵀ``, so
        rotor ``i`` sits at ``com + R Cᵀ (r_i − c)``, body z is ``R (Cᵀ e_z)``, and the drag
        force ``R Cᵀ D C Rᵀ v`` (``D`` the diagonal drag) uses ``M = Cᵀ D C``.
        """
        prm = self._params
        cT = self._com_rot_in_link.T
        rel = (rotor_positions(prm.arm_length) - self._com_in_link) @ cT.T  # rows: Cᵀ (r_i − c)
        alpha = 1.0 - math.exp(-self.physics_dt / prm.motor_tau) if prm.motor_tau > 0.0 else 1.0
        drag = cT @ np.diag([prm.drag_coeff, prm.drag_coeff, prm.drag_coeff_z]) @ cT.T
        self._cache_params = prm
        self.kernel.set_rotor((alpha, float(prm.kf), *rel.reshape(12).tolist(), *cT[:, 2].tolist(),
                               *(ROTOR_YAW_SIGNS * prm.km).tolist(), float(prm.ground_effect_coeff > 0.0),
                               prm.ground_effect_coeff * (prm.prop_radius / 4.0) ** 2,  # x = k / h²
                               1.0 - 1.0 / prm.ground_effect_max_gain, self._ground_z,
                               float(prm.drag_coeff > 0.0 or prm.drag_coeff_z > 0.0), *drag.reshape(9).tolist(),
                               float(prm.max_rpm)))

    @property
    def ground_z(self) -> float:
        """Height of the ground plane (m, world), for the ground effect."""
        return self._ground_z

    @ground_z.setter
    def ground_z(self, value: float) -> None:
        self._ground_z = float(value)
        self._cache_params = None  # the kernel holds a copy

    @property
    def params(self) -> RotorParams:
        return self._params

    def set_params(self, params: RotorParams) -> None:
        """Use new rotor numbers from the next physics step on (motor state is kept)."""
        self._params = params

    def prepare(self) -> None:
        """Compute the per-params / per-body constants now (else the next physics step does)."""
        if self._cache_params is not self._params:
            self._precompute()

    @property
    def rpm(self) -> np.ndarray:
        """Current rotor speeds, shape (4,), rpm."""
        return np.array(self._rpm, dtype=float)

    @property
    def rpm_command(self) -> np.ndarray:
        """Held rotor-speed command, shape (4,), rpm."""
        return np.array(self._rpm_cmd, dtype=float)

    @property
    def thrusts(self) -> np.ndarray:
        """Rotor thrusts applied at the last physics step (ground effect included), shape (4,), N."""
        return np.array(self._thrusts, dtype=float)

    @property
    def yaw_torque(self) -> float:
        """Body z reaction torque applied at the last physics step (N·m)."""
        return self._yaw_torque

    def reset(self, rpm: Sequence[float] | float | None = None) -> None:
        """Set rotor speeds and command to ``rpm`` (scalar or (4,), rpm; default 0)."""
        value = np.zeros(4) if rpm is None else np.broadcast_to(np.asarray(rpm, dtype=float), (4,)).copy()
        self._rpm = np.clip(value, 0.0, self._params.max_rpm).tolist()
        self._rpm_cmd = list(self._rpm)
        self._thrusts = (0.0, 0.0, 0.0, 0.0)
        self._yaw_torque = 0.0

    def command_rpm(self, rpm_cmd: Sequence[float]) -> None:
        """Hold a rotor-speed command, shape (4,), rpm; clipped to ``[0, max_rpm]`` (NaN -> 0)."""
        top = self._params.max_rpm
        if type(rpm_cmd) is not list or len(rpm_cmd) != 4:  # the controllers pass lists of 4 floats
            rpm_cmd = np.asarray(rpm_cmd, dtype=float).reshape(4).tolist()
        # pure Python: runs every physics step in the rate/velocity modes; `not x > 0` catches NaN
        c0, c1, c2, c3 = rpm_cmd
        self._rpm_cmd = [0.0 if not c0 > 0.0 else (top if c0 > top else float(c0)),
                         0.0 if not c1 > 0.0 else (top if c1 > top else float(c1)),
                         0.0 if not c2 > 0.0 else (top if c2 > top else float(c2)),
                         0.0 if not c3 > 0.0 else (top if c3 > top else float(c3))]

    def command_normalized(self, action: Sequence[float]) -> None:
        """Hold a per-motor command ``a ∈ [-1, 1]^4``: ``ω² = (a + 1) / 2 · max_rpm²``."""
        a = np.clip(np.asarray(action, dtype=float).reshape(4), -1.0, 1.0)
        self._rpm_cmd = (np.sqrt((a + 1.0) * 0.5) * self._params.max_rpm).tolist()

    def physics_step(self) -> None:
        """Advance the motors by one physics step and apply this step's rotor forces.

        The four thrusts, the yaw reaction torque and the drag act on one rigid body, so they
        are applied as their resultant: one force at the centre of mass and one torque
        ``Σ (p_i − com) × F_i + τ_yaw`` (what PyBullet makes of forces at points anyway).
        """
        self.run(1, advance=False)

    def last_wrench(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """(force N, torque N·m), world frame, applied at the centre of mass in the last physics step
        (rotor resultant plus any extra force / torque)."""
        return self.kernel.last_wrench()

    def base_state(self) -> BaseState:
        """The base state of the body now (:data:`BaseState`: body rates are ``Rᵀ ω``)."""
        return self.kernel.state()

    def run(self, n: int, controller: BodyRateController | None = None, command: Sequence[float] | None = None,
            extra_force: Sequence[float] | None = None, extra_torque: Sequence[float] | None = None,
            read_state: bool = False, velocity_controller: VelocityController | None = None,
            advance: bool = True) -> BaseState | None:
        """Advance ``n`` physics steps in the compiled kernel (:attr:`kernel`): per step read the
        base state, run ``controller`` (if given) on ``command`` = ``[F (N), p, q, r (rad/s)]``
        into a rotor-speed command (clipped to ``[0, max_rpm]``), advance the motor lag, apply
        the rotor resultant plus the world-frame ``extra_force`` (N, at the centre of mass) /
        ``extra_torque`` (N·m), then ``stepSimulation``. With a ``velocity_controller`` (which
        needs ``controller``), ``command`` is ``[vx, vy, vz (m/s, world), yaw rate (rad/s)]``
        and that loop feeds the rate loop. With ``read_state``, return the base state after the
        last step (:meth:`base_state`), else ``None``. ``advance=False`` (``n`` = 1): apply one
        physics step's forces and leave ``stepSimulation`` to the caller.
        """
        if self._cache_params is not self._params:
            self._precompute()
        kernel = self.kernel
        if controller is not None and controller is not self._kernel_ctrl:
            kernel.set_controller(controller.kernel_values())
            self._kernel_ctrl = controller
        if velocity_controller is not None and velocity_controller is not self._kernel_vctrl:
            kernel.set_velocity_controller(velocity_controller.kernel_values())
            self._kernel_vctrl = velocity_controller
        return kernel.run(n, self, controller, command, extra_force, extra_torque, read_state, velocity_controller,
                          advance)


class BodyRateController:
    """Inner loop of the collective-thrust + body-rate mode, run at physics rate.

    ``τ = J (kp·e + ki·∫e − kd·dω/dt) + ω × Jω`` with ``e = ω_cmd − ω`` (body frame), then the
    mixer solves ``[F, τ] = A T`` for rotor thrusts and converts them to rotor speeds. When
    the rotors saturate, the torque is kept and the collective thrust gives way.

    The controller models what runs on the real flight controller, so it is built from the
    *nominal* numbers (robot.yaml), not from the randomized plant.

    :param params: nominal rotor numbers (mixer: ``arm_length``, ``km/kf``, ``max_rpm``).
    :param inertia: nominal body inertia diagonal (3,), kg·m².
    :param kp, ki, kd: gains per body axis (3,), in angular acceleration per rate error.
    :param physics_dt: controller period (s).
    :param integral_limit: bound on each integrated rate error (rad).
    """

    def __init__(self, params: RotorParams, inertia: Sequence[float], kp: Sequence[float],
                 ki: Sequence[float] = (0.0, 0.0, 0.0), kd: Sequence[float] = (0.0, 0.0, 0.0),
                 physics_dt: float = 1.0 / 240.0, integral_limit: float = 0.5) -> None:
        self.params = params
        self.inertia = np.asarray(inertia, dtype=float).reshape(3)
        self.kp = np.asarray(kp, dtype=float).reshape(3)
        self.ki = np.asarray(ki, dtype=float).reshape(3)
        self.kd = np.asarray(kd, dtype=float).reshape(3)
        self.physics_dt = float(physics_dt)
        self.integral_limit = float(integral_limit)
        self._mix_inv = np.linalg.inv(mixer_matrix(params))
        self._values = (*self.inertia.tolist(), *self.kp.tolist(), *self.ki.tolist(), *self.kd.tolist(),
                        self.physics_dt, self.integral_limit, *self._mix_inv[:, 1:].reshape(12).tolist(),
                        float(params.kf), float(params.max_thrust))  # nominal numbers: fixed
        self.reset()

    def reset(self) -> None:
        self._integral = [0.0, 0.0, 0.0]
        self._prev_rate: tuple[float, float, float] | None = None

    def kernel_values(self) -> tuple[float, ...]:
        """The controller's constants for the kernel (28 floats): inertia, kp, ki, kd (3 each),
        period, integral limit, mixer torque columns (4 × 3), kf, max thrust."""
        return self._values

    def rotor_thrusts(self, thrust: float, torque: Sequence[float]) -> np.ndarray:
        """Rotor thrusts (4,), N, in ``[0, kf·max_rpm²]`` for collective ``thrust`` (N) and body torque (3,)."""
        return np.array(_quadkernel.mixer(self._values, float(thrust), np.asarray(torque, dtype=float).tolist()))

    def __call__(self, thrust: float, rate_cmd: Sequence[float], rate: Sequence[float]) -> np.ndarray:
        """Rotor-speed command (4,), rpm, for collective thrust (N) and body rates (rad/s); one
        controller period (the kernel's rate law, as inside :meth:`QuadrotorDynamics.run`)."""
        return np.array(_quadkernel.rate_command(self._values, self, float(thrust),
                                                 np.asarray(rate_cmd, dtype=float).tolist(),
                                                 np.asarray(rate, dtype=float).tolist()))


class VelocityController:
    """Outer loop of the velocity-setpoint mode (what PX4 / the Crazyflie firmware run for velocity setpoints).

    Desired acceleration ``a = kp·e + ki·∫e + g·ẑ`` for the world velocity error ``e``, its
    tilt limited to ``max_tilt``; collective thrust ``m·a·z_body`` and body rates that turn
    ``z_body`` towards ``a`` (``attitude_gain``), the yaw rate passed through. Feeds
    :class:`BodyRateController`; built from nominal numbers like it.

    :param mass: nominal mass (kg).
    :param kp, ki: velocity gains per world axis (3,), 1/s and 1/s².
    :param attitude_gain: body rate per radian of tilt error (1/s).
    :param max_tilt: largest commanded tilt (rad).
    :param physics_dt: controller period (s).
    """

    def __init__(self, mass: float, kp: Sequence[float], ki: Sequence[float], attitude_gain: float,
                 max_tilt: float, physics_dt: float, gravity: float = GRAVITY, integral_limit: float = 1.0) -> None:
        self.mass = float(mass)
        self.kp = np.asarray(kp, dtype=float).reshape(3)
        self.ki = np.asarray(ki, dtype=float).reshape(3)
        self.attitude_gain = float(attitude_gain)
        self.max_tilt = float(max_tilt)
        self.physics_dt = float(physics_dt)
        self.gravity = float(gravity)
        self.integral_limit = float(integral_limit)
        self.reset()

    def reset(self) -> None:
        self._integral = [0.0, 0.0, 0.0]

    def kernel_values(self) -> tuple[float, ...]:
        """The controller's constants for the kernel (12 floats): mass, kp, ki (3 each), attitude
        gain, tan(max_tilt), period, gravity, integral limit."""
        return (self.mass, *self.kp.tolist(), *self.ki.tolist(), self.attitude_gain, math.tan(self.max_tilt),
                self.physics_dt, self.gravity, self.integral_limit)

    def __call__(self, velocity_cmd: Sequence[float], yaw_rate_cmd: float, rotation: np.ndarray,
                 velocity: Sequence[float]) -> tuple[float, np.ndarray]:
        """(collective thrust N, body-rate command (3,) rad/s) for a world velocity command (3,), m/s;
        one controller period (the kernel's velocity law, as inside :meth:`QuadrotorDynamics.run`).

        ``rotation``: body→world (3, 3); ``velocity``: world linear velocity (3,), m/s.
        """
        thrust, roll_rate, pitch_rate = _quadkernel.velocity_command(
            self.kernel_values(), self, np.asarray(velocity_cmd, dtype=float).tolist(),
            np.asarray(rotation, dtype=float).reshape(9).tolist(), np.asarray(velocity, dtype=float).tolist())
        return thrust, np.array([roll_rate, pitch_rate, float(yaw_rate_cmd)])


def configure_body(client: int, body: int) -> None:
    """Remove PyBullet's default velocity damping (0.04) from the quadrotor: drag is modelled here."""
    p.changeDynamics(body, -1, linearDamping=0.0, angularDamping=0.0, physicsClientId=client)


def body_rates(client: int, body: int) -> np.ndarray:
    """Angular velocity of ``body`` in its own frame (3,), rad/s."""
    _, quat = p.getBasePositionAndOrientation(body, physicsClientId=client)
    ang_world = p.getBaseVelocity(body, physicsClientId=client)[1]
    return Rotation.from_quat(quat).inv().apply(ang_world)

