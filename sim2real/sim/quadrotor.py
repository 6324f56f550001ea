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

from sim2real.errors import RobotError
from sim2real.sim import compiled

def kernel_available() -> bool:
    """Whether the compiled rotor loop (:mod:`sim2real.sim.compiled`) is built and enabled."""
    return compiled.module() is not None


def quadrotor_evaluate() -> Any:
    """The compiled observation + reward of :class:`sim2real.envs.quadrotor.QuadrotorEnv`'s float
    fast path (``sim2real.sim._fastsim.evaluate``), or ``None`` when the kernel is not built or disabled."""
    fast = compiled.module()
    return None if fast is None else fast.evaluate

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


def _rotation(quat_xyzw: Sequence[float], client: int) -> np.ndarray:
    return np.asarray(p.getMatrixFromQuaternion(quat_xyzw, physicsClientId=client), dtype=float).reshape(3, 3)


#: ``p.getMatrixFromQuaternion`` (pure math, touches no client; without the keyword argument the
#: call costs about half): quaternion xyzw -> 9 floats, row-major
_matrix = p.getMatrixFromQuaternion


_WORLD_FRAME = p.WORLD_FRAME


#: (position (3,), m, world; rotation (9,), body→world row-major; linear velocity (3,), m/s,
#: world; body rates (3,), rad/s), float tuples
BaseState = tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...], tuple[float, ...]]


def read_base_state(client: int, body: int) -> BaseState:
    """The base state of ``body`` now (:data:`BaseState`: body rates are ``Rᵀ ω``)."""
    pos, quat = p.getBasePositionAndOrientation(body, physicsClientId=client)
    lin, (ax, ay, az) = p.getBaseVelocity(body, physicsClientId=client)
    r = _matrix(quat)
    rates = (r[0] * ax + r[3] * ay + r[6] * az, r[1] * ax + r[4] * ay + r[7] * az,
             r[2] * ax + r[5] * ay + r[8] * az)  # Rᵀ ω
    return pos, r, lin, rates


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
        #: the compiled loop behind :meth:`run` (``None``: :meth:`run` steps in Python)
        fast = compiled.module()
        self.kernel = None if fast is None else fast.Kernel(client, body)
        self._kernel_ctrl: Any = None  # the controllers whose constants the kernel holds
        self._kernel_vctrl: Any = None
        # motor state as plain floats: physics_step runs every physics step, and numpy's
        # per-call overhead on 4-element arrays would dominate it
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
        if self.kernel is not None:
            self.kernel.set_body(body)
        info = p.getDynamicsInfo(body, -1, physicsClientId=self.client)
        self.set_com_frame(info[3], _rotation(info[4], self.client))

    def set_com_frame(self, com_in_link: Sequence[float], com_rot_in_link: np.ndarray) -> None:
        """Pose of the base's centre-of-mass (inertial) frame in its link frame: position (3,), m,
        and rotation (3, 3) (:meth:`attach` reads them from PyBullet)."""
        self._com_in_link = np.asarray(com_in_link, dtype=float).reshape(3)
        self._com_rot_in_link = np.asarray(com_rot_in_link, dtype=float).reshape(3, 3)
        self._cache_params = None  # rebuild the precomputed geometry

    def _precompute(self) -> None:
        """Per-params / per-body constants of :meth:`physics_step`, as Python floats.

        With ``R`` the COM-frame→world rotation PyBullet reports, ``C`` the COM frame's rotation
        in the link frame and ``c`` its position there: the link→world rotation is ``R Cᵀ``, so
        rotor ``i`` sits at ``com + R Cᵀ (r_i − c)``, body z is ``R (Cᵀ e_z)``, and the drag
        force ``R Cᵀ D C Rᵀ v`` (``D`` the diagonal drag) uses ``M = Cᵀ D C``.
        """
        prm = self._params
        cT = self._com_rot_in_link.T
        rel = (rotor_positions(prm.arm_length) - self._com_in_link) @ cT.T  # rows: Cᵀ (r_i − c)
        self._rotor_rel = [tuple(float(x) for x in row) for row in rel]
        self._rotor_flat = tuple(x for row in self._rotor_rel for x in row)  # a0 b0 c0 a1 ... (12,)
        self._kf = float(prm.kf)
        self._z_com = tuple(float(x) for x in cT[:, 2])
        self._alpha = 1.0 - math.exp(-self.physics_dt / prm.motor_tau) if prm.motor_tau > 0.0 else 1.0
        self._yaw_signs = tuple(float(x) * prm.km for x in ROTOR_YAW_SIGNS)
        self._ge = prm.ground_effect_coeff > 0.0
        self._ge_k = prm.ground_effect_coeff * (prm.prop_radius / 4.0) ** 2  # x = k / h²
        self._ge_cap = 1.0 - 1.0 / prm.ground_effect_max_gain
        self._drag = prm.drag_coeff > 0.0 or prm.drag_coeff_z > 0.0
        drag = cT @ np.diag([prm.drag_coeff, prm.drag_coeff, prm.drag_coeff_z]) @ cT.T
        self._drag_m = tuple(float(x) for x in drag.reshape(9))
        self._cache_params = prm
        if self.kernel is not None:
            self.kernel.set_rotor((self._alpha, self._kf, *self._rotor_flat, *self._z_com, *self._yaw_signs,
                                   float(self._ge), self._ge_k, self._ge_cap, self._ground_z, float(self._drag),
                                   *self._drag_m, float(prm.max_rpm)))

    @property
    def ground_z(self) -> float:
        """Height of the ground plane (m, world), for the ground effect."""
        return self._ground_z

    @ground_z.setter
    def ground_z(self, value: float) -> None:
        self._ground_z = float(value)
        self._cache_params = None  # the compiled loop holds a copy

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
        ``Σ (p_i − com) × F_i + τ_yaw`` (what PyBullet makes of forces at points anyway). Plain
        Python floats on purpose (this runs every physics step; numpy's per-call overhead on
        4-element arrays would dominate); the tests check it against the same model in numpy.
        """
        com, quat = p.getBasePositionAndOrientation(self.body, physicsClientId=self.client)
        self.physics_step_at(com, _matrix(quat))

    def physics_step_at(self, com: Sequence[float], rot: Sequence[float],
                        velocity: Sequence[float] | None = None,
                        extra_force: Sequence[float] | None = None, extra_torque: Sequence[float] | None = None) -> None:
        """:meth:`physics_step` with the base state already read this physics step (a caller
        that reads it anyway, e.g. the rate controller, saves the PyBullet calls).

        :param com: base centre-of-mass position (3,), m, world (``getBasePositionAndOrientation``).
        :param rot: its rotation matrix, 9 floats row-major (``getMatrixFromQuaternion``).
        :param velocity: base linear velocity (3,), m/s, world; read here if ``None`` and drag needs it.
        :param extra_force, extra_torque: other world-frame force at the centre of mass (N) and
            torque (N·m) acting on the base this physics step (e.g. a wind gust), added to the
            rotor resultant and applied with it (PyBullet sums the forces on a body the same way).
        """
        if self._cache_params is not self._params:
            self._precompute()
        alpha = self._alpha
        c0, c1, c2, c3 = self._rpm_cmd
        if alpha == 1.0:
            w0, w1, w2, w3 = c0, c1, c2, c3
        else:  # first-order motor lag, unrolled (w + α (c − w) per rotor)
            w0, w1, w2, w3 = self._rpm
            w0, w1 = w0 + alpha * (c0 - w0), w1 + alpha * (c1 - w1)
            w2, w3 = w2 + alpha * (c2 - w2), w3 + alpha * (c3 - w3)
        self._rpm = [w0, w1, w2, w3]
        m0, m1, m2, m3, m4, m5, m6, m7, m8 = rot
        kf = self._kf
        q0, q1, q2, q3 = w0 * w0, w1 * w1, w2 * w2, w3 * w3  # ω² (rpm²), each used twice
        a0, b0, e0, a1, b1, e1, a2, b2, e2, a3, b3, e3 = self._rotor_flat
        # in the centre-of-mass frame: thrust-weighted sum of rotor offsets S = Σ T_i r_i
        if self._ge:  # ground effect per rotor, unrolled: gain 1 / (1 − min(k / h², cap))
            base_h = com[2] - self._ground_z
            ge_k, ge_cap = self._ge_k, self._ge_cap
            h = base_h + m6 * a0 + m7 * b0 + m8 * e0  # rotor height above the ground
            h = h if h > 1e-4 else 1e-4
            x = ge_k / (h * h)
            t0 = kf * q0 * (1.0 / (1.0 - (x if x < ge_cap else ge_cap)))
            h = base_h + m6 * a1 + m7 * b1 + m8 * e1
            h = h if h > 1e-4 else 1e-4
            x = ge_k / (h * h)
            t1 = kf * q1 * (1.0 / (1.0 - (x if x < ge_cap else ge_cap)))
            h = base_h + m6 * a2 + m7 * b2 + m8 * e2
            h = h if h > 1e-4 else 1e-4
            x = ge_k / (h * h)
            t2 = kf * q2 * (1.0 / (1.0 - (x if x < ge_cap else ge_cap)))
            h = base_h + m6 * a3 + m7 * b3 + m8 * e3
            h = h if h > 1e-4 else 1e-4
            x = ge_k / (h * h)
            t3 = kf * q3 * (1.0 / (1.0 - (x if x < ge_cap else ge_cap)))
        else:
            t0, t1, t2, t3 = kf * q0, kf * q1, kf * q2, kf * q3
        sx = t0 * a0 + t1 * a1 + t2 * a2 + t3 * a3
        sy = t0 * b0 + t1 * b1 + t2 * b2 + t3 * b3
        sz = t0 * e0 + t1 * e1 + t2 * e2 + t3 * e3
        total = t0 + t1 + t2 + t3
        s0, s1, s2, s3 = self._yaw_signs
        yaw = s0 * q0 + s1 * q1 + s2 * q2 + s3 * q3
        za, zb, zc = self._z_com
        # torque (COM frame): S × z + yaw·z; force: total·z (+ drag)
        tx, ty, tz = sy * zc - sz * zb + yaw * za, sz * za - sx * zc + yaw * zb, sx * zb - sy * za + yaw * zc
        fx, fy, fz = total * za, total * zb, total * zc
        cid, body = self.client, self.body
        if self._drag:
            vx, vy, vz = p.getBaseVelocity(body, physicsClientId=cid)[0] if velocity is None else velocity
            # v in the COM frame (Rᵀ v), times M = Cᵀ D C and the rotor spin
            ux, uy, uz = m0 * vx + m3 * vy + m6 * vz, m1 * vx + m4 * vy + m7 * vz, m2 * vx + m5 * vy + m8 * vz
            d0, d1, d2, d3, d4, d5, d6, d7, d8 = self._drag_m
            k = -(w0 + w1 + w2 + w3) * RPM_TO_RAD_S
            fx += k * (d0 * ux + d1 * uy + d2 * uz)
            fy += k * (d3 * ux + d4 * uy + d5 * uz)
            fz += k * (d6 * ux + d7 * uy + d8 * uz)
        fx, fy, fz = m0 * fx + m1 * fy + m2 * fz, m3 * fx + m4 * fy + m5 * fz, m6 * fx + m7 * fy + m8 * fz  # world
        tx, ty, tz = m0 * tx + m1 * ty + m2 * tz, m3 * tx + m4 * ty + m5 * tz, m6 * tx + m7 * ty + m8 * tz
        if extra_force is not None:
            fx, fy, fz = fx + extra_force[0], fy + extra_force[1], fz + extra_force[2]
        if extra_torque is not None:
            tx, ty, tz = tx + extra_torque[0], ty + extra_torque[1], tz + extra_torque[2]
        p.applyExternalForce(body, -1, (fx, fy, fz), com, _WORLD_FRAME, physicsClientId=cid)
        p.applyExternalTorque(body, -1, (tx, ty, tz), _WORLD_FRAME, physicsClientId=cid)
        self._thrusts = (t0, t1, t2, t3)
        self._yaw_torque = yaw

    def run(self, n: int, controller: BodyRateController | None = None, command: Sequence[float] | None = None,
            extra_force: Sequence[float] | None = None, extra_torque: Sequence[float] | None = None,
            read_state: bool = False, velocity_controller: VelocityController | None = None) -> BaseState | None:
        """Advance ``n`` physics steps: per step read the base state, run ``controller`` (if
        given) on ``command`` = ``[F (N), p, q, r (rad/s)]`` into a rotor-speed command, apply
        the rotor forces (:meth:`physics_step_at`, plus the world-frame ``extra_force`` /
        ``extra_torque``), then ``stepSimulation``. With ``read_state``, return the base state
        after the last step (:func:`read_base_state`), else ``None``. With a
        ``velocity_controller`` (which needs ``controller``), ``command`` is ``[vx, vy, vz (m/s,
        world), yaw rate (rad/s)]`` and that loop feeds the rate loop.

        Runs in the compiled loop (:attr:`kernel`) when it is built, else in Python: the same
        operations in the same order, so the two give the same trajectory bit for bit.
        """
        if self._cache_params is not self._params:
            self._precompute()
        kernel = self.kernel
        if kernel is not None:
            if controller is not None and controller is not self._kernel_ctrl:
                kernel.set_controller(controller.kernel_values())
                self._kernel_ctrl = controller
            if velocity_controller is not None and velocity_controller is not self._kernel_vctrl:
                kernel.set_velocity_controller(velocity_controller.kernel_values())
                self._kernel_vctrl = velocity_controller
            return kernel.run(n, self, controller, command, extra_force, extra_torque, read_state,
                              velocity_controller)
        cid, body, step_sim = self.client, self.body, p.stepSimulation
        for _ in range(n):
            com, quat = p.getBasePositionAndOrientation(body, physicsClientId=cid)
            r = _matrix(quat)
            lin = None
            if controller is not None:
                assert command is not None
                lin, (ax, ay, az) = p.getBaseVelocity(body, physicsClientId=cid)
                rates = (r[0] * ax + r[3] * ay + r[6] * az, r[1] * ax + r[4] * ay + r[7] * az,
                         r[2] * ax + r[5] * ay + r[8] * az)  # Rᵀ ω, body frame
                if velocity_controller is not None:
                    thrust, roll_rate, pitch_rate, yaw_rate = velocity_controller.command(command, command[3], r, lin)
                    self.command_rpm(controller.rpm(thrust, (roll_rate, pitch_rate, yaw_rate), rates))
                else:
                    self.command_rpm(controller.rpm(command[0], command[1:], rates))
            self.physics_step_at(com, r, lin, extra_force, extra_torque)
            step_sim(physicsClientId=cid)
        return read_base_state(cid, body) if read_state else None


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
        # plain floats for the per-physics-step path (numpy costs ~10x more on 3-vectors)
        self._f_inertia = tuple(float(x) for x in self.inertia)
        self._f_kp, self._f_ki, self._f_kd = (tuple(float(x) for x in g) for g in (self.kp, self.ki, self.kd))
        self._f_mix = tuple(tuple(float(x) for x in row[1:]) for row in self._mix_inv)  # torque columns
        self._kf, self._t_max = params.kf, params.max_thrust  # fixed: the controller uses nominal numbers
        self.reset()

    def reset(self) -> None:
        self._integral = [0.0, 0.0, 0.0]
        self._prev_rate: tuple[float, float, float] | None = None

    def kernel_values(self) -> tuple[float, ...]:
        """The controller's constants for :meth:`sim2real.sim._fastsim.Kernel.set_controller` (28 floats):
        inertia, kp, ki, kd (3 each), period, integral limit, mixer torque columns (4 × 3), kf, max thrust."""
        return (*self._f_inertia, *self._f_kp, *self._f_ki, *self._f_kd, self.physics_dt, self.integral_limit,
                *(x for row in self._f_mix for x in row), float(self._kf), float(self._t_max))

    def torque(self, rate_cmd: Sequence[float], rate: Sequence[float]) -> np.ndarray:
        """Body torque (3,), N·m, for commanded and measured body rates (3,), rad/s."""
        w_cmd = np.asarray(rate_cmd, dtype=float).reshape(3).tolist()
        w = np.asarray(rate, dtype=float).reshape(3).tolist()
        return np.array(self._torque(w_cmd, w))

    def _torque(self, w_cmd: Sequence[float], w: Sequence[float]) -> tuple[float, float, float]:
        """:meth:`torque` on float sequences (3,) (unrolled: runs every physics step)."""
        dt, lim = self.physics_dt, self.integral_limit
        w0, w1, w2 = w = (float(w[0]), float(w[1]), float(w[2]))
        e0, e1, e2 = w_cmd[0] - w0, w_cmd[1] - w1, w_cmd[2] - w2
        i0, i1, i2 = self._integral
        i0, i1, i2 = i0 + e0 * dt, i1 + e1 * dt, i2 + e2 * dt
        nlim = -lim  # min(max(i, −lim), lim) as conditionals (same result, NaN included; no builtin calls)
        i0 = nlim if nlim > i0 else i0
        i0 = lim if lim < i0 else i0
        i1 = nlim if nlim > i1 else i1
        i1 = lim if lim < i1 else i1
        i2 = nlim if nlim > i2 else i2
        i2 = lim if lim < i2 else i2
        self._integral = [i0, i1, i2]
        prev = self._prev_rate
        self._prev_rate = w
        (j0, j1, j2), (p0, p1, p2), (k0, k1, k2) = self._f_inertia, self._f_kp, self._f_ki
        a0, a1, a2 = p0 * e0 + k0 * i0, p1 * e1 + k1 * i1, p2 * e2 + k2 * i2
        if prev is None:
            d0, d1, d2 = self._f_kd
            a0, a1, a2 = a0 - d0 * 0.0, a1 - d1 * 0.0, a2 - d2 * 0.0
        else:
            d0, d1, d2 = self._f_kd
            a0 = a0 - d0 * ((w0 - prev[0]) / dt)
            a1 = a1 - d1 * ((w1 - prev[1]) / dt)
            a2 = a2 - d2 * ((w2 - prev[2]) / dt)
        h0, h1, h2 = j0 * w0, j1 * w1, j2 * w2  # J ω; then ω × Jω
        return (j0 * a0 + (w1 * h2 - w2 * h1), j1 * a1 + (w2 * h0 - w0 * h2), j2 * a2 + (w0 * h1 - w1 * h0))

    def rotor_thrusts(self, thrust: float, torque: Sequence[float]) -> np.ndarray:
        """Rotor thrusts (4,), N, in ``[0, kf·max_rpm²]`` for collective ``thrust`` (N) and body torque (3,)."""
        return np.array(self._rotor_thrusts(float(thrust), np.asarray(torque, dtype=float).reshape(3).tolist()))

    def _rotor_thrusts(self, thrust: float, torque: Sequence[float]) -> list[float]:
        """:meth:`rotor_thrusts` on floats (unrolled: runs every physics step)."""
        t_max = self._t_max
        t0, t1, t2 = torque
        (m00, m01, m02), (m10, m11, m12), (m20, m21, m22), (m30, m31, m32) = self._f_mix
        d0, d1, d2, d3 = (m00 * t0 + m01 * t1 + m02 * t2, m10 * t0 + m11 * t1 + m12 * t2,
                          m20 * t0 + m21 * t1 + m22 * t2, m30 * t0 + m31 * t1 + m32 * t2)  # A⁻¹ [0, τ]
        # min / max / clipping as conditionals: the builtins' semantics, without their call cost
        lo_d = d0
        lo_d = d1 if d1 < lo_d else lo_d
        lo_d = d2 if d2 < lo_d else lo_d
        lo_d = d3 if d3 < lo_d else lo_d
        hi_d = d0
        hi_d = d1 if d1 > hi_d else hi_d
        hi_d = d2 if d2 > hi_d else hi_d
        hi_d = d3 if d3 > hi_d else hi_d
        spread = hi_d - lo_d
        if spread > t_max:  # even the full range cannot make this torque: scale it down
            k = t_max / spread
            d0, d1, d2, d3 = d0 * k, d1 * k, d2 * k, d3 * k
            lo_d, hi_d = lo_d * k, hi_d * k
        base = thrust / 4.0
        base = -lo_d if -lo_d > base else base
        base = t_max - hi_d if t_max - hi_d < base else base
        out = []
        for d in (d0, d1, d2, d3):
            t = base + d
            t = 0.0 if 0.0 > t else t
            out.append(t_max if t_max < t else t)
        return out

    def rpm(self, thrust: float, rate_cmd: Sequence[float], rate: Sequence[float]) -> list[float]:
        """:meth:`__call__` on floats: rotor-speed command (4,), rpm, as a list."""
        kf, sqrt = self._kf, math.sqrt
        t0, t1, t2, t3 = self._rotor_thrusts(float(thrust), self._torque(rate_cmd, rate))
        return [sqrt(t0 / kf), sqrt(t1 / kf), sqrt(t2 / kf), sqrt(t3 / kf)]

    def __call__(self, thrust: float, rate_cmd: Sequence[float], rate: Sequence[float]) -> np.ndarray:
        """Rotor-speed command (4,), rpm, for collective thrust (N) and body rates (rad/s)."""
        w_cmd = np.asarray(rate_cmd, dtype=float).reshape(3).tolist()
        return np.array(self.rpm(float(thrust), w_cmd, np.asarray(rate, dtype=float).reshape(3).tolist()))

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
        # plain floats for the per-physics-step path (numpy costs ~10x more on 3-vectors)
        self._f_kp = tuple(float(x) for x in self.kp)
        self._f_ki = tuple(float(x) for x in self.ki)
        self._tan_tilt = math.tan(self.max_tilt)

    def kernel_values(self) -> tuple[float, ...]:
        """The controller's constants for ``_fastsim.Kernel.set_velocity_controller`` (12 floats):
        mass, kp, ki (3 each), attitude gain, tan(max_tilt), period, gravity, integral limit."""
        return (self.mass, *self._f_kp, *self._f_ki, self.attitude_gain, self._tan_tilt, self.physics_dt,
                self.gravity, self.integral_limit)

    def command(self, velocity_cmd: Sequence[float], yaw_rate_cmd: float, rot: Sequence[float],
                velocity: Sequence[float]) -> tuple[float, float, float, float]:
        """:meth:`__call__` on floats (runs every physics step): ``rot`` the body→world rotation
        as 9 floats, row-major; returns (thrust N, roll rate, pitch rate, yaw rate rad/s)."""
        dt, lim, g = self.physics_dt, self.integral_limit, self.gravity
        v0, v1, v2 = velocity
        e0, e1, e2 = velocity_cmd[0] - v0, velocity_cmd[1] - v1, velocity_cmd[2] - v2
        i0, i1, i2 = self._integral
        i0, i1, i2 = i0 + e0 * dt, i1 + e1 * dt, i2 + e2 * dt
        nlim = -lim  # clip to [-lim, lim] as conditionals (NaN propagates, as numpy's clip)
        i0 = i0 if i0 != i0 or i0 > nlim else nlim
        i0 = i0 if i0 != i0 or i0 < lim else lim
        i1 = i1 if i1 != i1 or i1 > nlim else nlim
        i1 = i1 if i1 != i1 or i1 < lim else lim
        i2 = i2 if i2 != i2 or i2 > nlim else nlim
        i2 = i2 if i2 != i2 or i2 < lim else lim
        self._integral = [i0, i1, i2]
        (p0, p1, p2), (k0, k1, k2) = self._f_kp, self._f_ki
        a0, a1, a2 = p0 * e0 + k0 * i0, p1 * e1 + k1 * i1, p2 * e2 + k2 * i2
        a2 = a2 + g
        a2 = 0.2 * g if 0.2 * g > a2 else a2  # never ask to push downwards (max(a2, 0.2 g))
        horizontal = math.sqrt(a0 * a0 + a1 * a1)
        limit = a2 * self._tan_tilt
        if horizontal > limit:
            k = limit / horizontal
            a0, a1 = a0 * k, a1 * k
        zx, zy, zz = rot[2], rot[5], rot[8]  # body z in world
        thrust = self.mass * (a0 * zx + a1 * zy + a2 * zz)
        thrust = 0.0 if 0.0 > thrust else thrust
        norm = math.sqrt(a0 * a0 + a1 * a1 + a2 * a2)
        u0, u1, u2 = a0 / norm, a1 / norm, a2 / norm
        c0, c1, c2 = zy * u2 - zz * u1, zz * u0 - zx * u2, zx * u1 - zy * u0  # z_body × â
        gain = self.attitude_gain
        return (thrust, gain * (rot[0] * c0 + rot[3] * c1 + rot[6] * c2),
                gain * (rot[1] * c0 + rot[4] * c1 + rot[7] * c2), float(yaw_rate_cmd))  # Rᵀ (z × â), yaw passed

    def __call__(self, velocity_cmd: Sequence[float], yaw_rate_cmd: float, rotation: np.ndarray,
                 velocity: Sequence[float]) -> tuple[float, np.ndarray]:
        """(collective thrust N, body-rate command (3,) rad/s) for a world velocity command (3,), m/s.

        ``rotation``: body→world (3, 3); ``velocity``: world linear velocity (3,), m/s.
        """
        rot = np.asarray(rotation, dtype=float).reshape(9).tolist()
        cmd = np.asarray(velocity_cmd, dtype=float).reshape(3).tolist()
        thrust, p_, q_, r_ = self.command(cmd, float(yaw_rate_cmd), rot,
                                          np.asarray(velocity, dtype=float).reshape(3).tolist())
        return thrust, np.array([p_, q_, r_])


def configure_body(client: int, body: int) -> None:
    """Remove PyBullet's default velocity damping (0.04) from the quadrotor: drag is modelled here."""
    p.changeDynamics(body, -1, linearDamping=0.0, angularDamping=0.0, physicsClientId=client)


def body_rates(client: int, body: int) -> np.ndarray:
    """Angular velocity of ``body`` in its own frame (3,), rad/s."""
    _, quat = p.getBasePositionAndOrientation(body, physicsClientId=client)
    ang_world = np.asarray(p.getBaseVelocity(body, physicsClientId=client)[1], dtype=float)
    return _rotation(quat, client).T @ ang_world

