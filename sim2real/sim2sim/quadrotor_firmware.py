"""The onboard flight controller of the MuJoCo quadrotor: a Crazyflie/PX4-like cascade.

Setpoint → rotor speed commands, at the physics rate, from the *nominal* airframe (the
firmware knows the datasheet, not the true mass or rotor constants; its integrators absorb
the difference, as on a real vehicle):

position P (+ velocity feed-forward) → velocity PI (+ acceleration feed-forward) → thrust
vector ``m(a + g·e_z)``, tilt-limited → desired attitude (thrust direction + heading) →
attitude P on SO(3) → body-rate PI → torque ``J·α + ω × Jω`` → mixer → rotor thrusts →
rotor speeds ``√(T/kf)``.

Setpoint kinds (:class:`Setpoint`): ``position`` (world ENU m, with optional velocity and
acceleration feed-forward), ``velocity`` (world ENU m/s), ``level`` (level attitude at the
current heading, zero vertical speed), ``rates`` (body FLU rad/s + collective thrust
fraction of the maximum, PX4 body-rate offboard), ``motors`` (per-rotor thrust fractions,
NaN = stopped, PX4 direct actuator; thrust linear in the command, ``THR_MDL_FAC = 1``) and
``off`` (motors stopped). Heading: ``yaw`` rad ENU (absolute) or ``yaw_rate`` rad/s ENU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sim2real.sim2sim.quadrotor_model import GRAVITY, ROTOR_SPIN, Airframe, QuadState

E_Z = np.array([0.0, 0.0, 1.0])


@dataclass
class Setpoint:
    """What the vehicle is asked to do; see the module docstring for ``kind``.

    ``position``/``velocity``/``acceleration`` (3,) world ENU (m, m/s, m/s²), ``yaw`` rad ENU or
    None, ``yaw_rate`` rad/s ENU, ``rates`` (3,) rad/s body FLU, ``thrust`` collective fraction
    [0, 1], ``motors`` (4,) rotor thrust fractions in rotor order.
    """

    kind: str
    position: np.ndarray = field(default_factory=lambda: np.zeros(3))
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))
    acceleration: np.ndarray = field(default_factory=lambda: np.zeros(3))
    yaw: float | None = None
    yaw_rate: float = 0.0
    rates: np.ndarray = field(default_factory=lambda: np.zeros(3))
    thrust: float = 0.0
    motors: np.ndarray = field(default_factory=lambda: np.zeros(4))


@dataclass(frozen=True)
class Gains:
    """Cascade gains (per axis x, y, z or roll, pitch, yaw) and limits, SI units."""

    position_kp: tuple[float, float, float] = (1.8, 1.8, 2.5)       # (m/s)/m
    velocity_kp: tuple[float, float, float] = (4.0, 4.0, 6.0)       # (m/s²)/(m/s)
    velocity_ki: tuple[float, float, float] = (4.0, 4.0, 8.0)       # (m/s²)/m
    velocity_i_limit: float = 6.0                                    # m/s², bound of the integral term
    attitude_kp: tuple[float, float, float] = (8.0, 8.0, 4.0)       # (rad/s)/rad
    rate_kp: tuple[float, float, float] = (20.0, 20.0, 10.0)        # (rad/s²)/(rad/s)
    rate_ki: tuple[float, float, float] = (15.0, 15.0, 5.0)          # (rad/s²)/rad
    rate_i_limit: float = 80.0                                       # rad/s², bound of the integral term
    max_velocity: tuple[float, float, float] = (2.0, 2.0, 1.0)      # m/s (horizontal per axis, vertical)
    max_tilt: float = 0.6                                            # rad
    max_rates: tuple[float, float, float] = (6.0, 6.0, 3.0)         # rad/s


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of two 3-vectors (``np.cross`` costs ten times more at this size)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _vee(m: np.ndarray) -> np.ndarray:
    return np.array([m[2, 1], m[0, 2], m[1, 0]])


def yaw_of(rot: np.ndarray) -> float:
    """Heading (rad, ENU) of a body→world rotation: the body x axis projected on the ground."""
    return math.atan2(rot[1, 0], rot[0, 0])


def wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


class FlightController:
    """The cascade of the module docstring for the nominal airframe ``frame``.

    ``update(setpoint, state, dt)`` → rotor speed commands (4,) rpm.
    """

    def __init__(self, frame: Airframe, gains: Gains = Gains()) -> None:
        self.frame, self.g = frame, gains
        pos = frame.rotor_positions
        # [F, τx, τy, τz] = A @ T for rotor thrusts T (N), body FLU
        self.mix = np.vstack([np.ones(4), pos[:, 1], -pos[:, 0], ROTOR_SPIN * frame.km / frame.kf])
        self.unmix = np.linalg.inv(self.mix)
        self.rotor_max = frame.kf * frame.max_rpm**2
        self.reset()

    def reset(self, yaw: float = 0.0) -> None:
        self.vel_i = np.zeros(3)
        self.rate_i = np.zeros(3)
        self.yaw_sp = yaw
        self.kind = ""

    # --- loops ---------------------------------------------------------------------------
    def _velocity_to_accel(self, v_sp: np.ndarray, state: QuadState, dt: float, axes: np.ndarray) -> np.ndarray:
        g = self.g
        lim = np.asarray(g.max_velocity)
        v_sp = np.clip(v_sp, -lim, lim)
        err = (v_sp - state.velocity) * axes
        self.vel_i = self.vel_i + err * dt
        ki = np.asarray(g.velocity_ki)
        bound = g.velocity_i_limit / np.maximum(ki, 1e-9)
        self.vel_i = np.clip(self.vel_i, -bound, bound)
        return np.asarray(g.velocity_kp) * err + ki * self.vel_i

    def _attitude_rates(self, accel: np.ndarray, state: QuadState, yaw_rate_ff: float) -> tuple[float, np.ndarray]:
        """Collective thrust (N) and body-rate setpoint (3,) rad/s for a world acceleration (3,) m/s²."""
        f = self.frame.total_mass * (accel + GRAVITY * E_Z)
        if f[2] < 0.1 * self.frame.total_mass * GRAVITY:  # never ask to fly upside down
            f[2] = 0.1 * self.frame.total_mass * GRAVITY
        horizontal = math.hypot(f[0], f[1])
        max_h = f[2] * math.tan(self.g.max_tilt)
        if horizontal > max_h:
            f[:2] *= max_h / horizontal
        b3 = f / np.linalg.norm(f)
        heading = np.array([math.cos(self.yaw_sp), math.sin(self.yaw_sp), 0.0])
        b2 = _cross(b3, heading)
        b2 /= np.linalg.norm(b2)
        r_des = np.column_stack([_cross(b2, b3), b2, b3])
        rot = state.rotation
        e_r = 0.5 * _vee(r_des.T @ rot - rot.T @ r_des)
        rates = -np.asarray(self.g.attitude_kp) * e_r + rot.T @ (E_Z * yaw_rate_ff)
        thrust = max(float(f @ rot[:, 2]), 0.0)
        return thrust, rates

    def _rates_to_rpm(self, thrust: float, rates_sp: np.ndarray, state: QuadState, dt: float) -> np.ndarray:
        g = self.g
        lim = np.asarray(g.max_rates)
        err = np.clip(rates_sp, -lim, lim) - state.body_rates
        ki = np.asarray(g.rate_ki)
        self.rate_i = np.clip(self.rate_i + err * dt, -g.rate_i_limit / ki, g.rate_i_limit / ki)
        alpha = np.asarray(g.rate_kp) * err + ki * self.rate_i
        inertia = self.frame.inertia
        w = state.body_rates
        torque = inertia * alpha + _cross(w, inertia * w)
        thrusts = self.unmix @ np.concatenate([[thrust], torque])
        thrusts = np.clip(thrusts, 0.0, self.rotor_max)
        return np.sqrt(thrusts / self.frame.kf)

    # --- entry point ---------------------------------------------------------------------
    def update(self, sp: Setpoint, state: QuadState, dt: float) -> np.ndarray:
        """Rotor speed commands (4,) rpm for setpoint ``sp`` at true state ``state`` after ``dt`` s."""
        rot = state.rotation
        if sp.kind != self.kind:  # mode switch: start from the current heading, keep no stale integrals
            self.yaw_sp = yaw_of(rot)
            if sp.kind in ("off", "motors", "rates"):  # the velocity integral (hover thrust, wind) survives
                self.vel_i[:] = 0.0                      # switches between the position-like modes
            if sp.kind in ("off", "motors"):
                self.rate_i[:] = 0.0
            self.kind = sp.kind
        if sp.kind == "off":
            return np.zeros(4)
        if sp.kind == "motors":
            frac = np.nan_to_num(np.asarray(sp.motors, dtype=np.float64), nan=0.0)
            return self.frame.max_rpm * np.sqrt(np.clip(frac, 0.0, 1.0))
        if sp.kind == "rates":
            thrust = float(np.clip(sp.thrust, 0.0, 1.0)) * 4.0 * self.rotor_max
            return self._rates_to_rpm(thrust, np.asarray(sp.rates, dtype=np.float64), state, dt)
        if sp.yaw is not None:
            self.yaw_sp = sp.yaw
        else:  # integrate the yaw-rate command, never running more than 0.5 rad ahead of the body
            self.yaw_sp = yaw_of(rot) + float(np.clip(wrap(self.yaw_sp + sp.yaw_rate * dt - yaw_of(rot)), -0.5, 0.5))
        if sp.kind == "position":
            v_sp = np.asarray(self.g.position_kp) * (sp.position - state.position) + sp.velocity
            accel = self._velocity_to_accel(v_sp, state, dt, np.ones(3)) + sp.acceleration
        elif sp.kind == "velocity":
            accel = self._velocity_to_accel(np.asarray(sp.velocity, dtype=np.float64), state, dt, np.ones(3))
        elif sp.kind == "level":
            accel = self._velocity_to_accel(np.zeros(3), state, dt, E_Z)
            accel[:2] = 0.0
        else:
            raise ValueError(f"unknown setpoint kind {sp.kind!r}")
        thrust, rates = self._attitude_rates(accel, state, sp.yaw_rate if sp.yaw is None else 0.0)
        return self._rates_to_rpm(thrust, rates, state, dt)
