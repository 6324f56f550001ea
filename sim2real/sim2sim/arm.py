"""The arm "hardware": a MuJoCo arm behind a servo drive, usable in-process or behind ROS 2 topics.

:class:`ArmHardware` is transport-free: a caller (the ROS 2 loop of :mod:`sim2real.sim2sim.arm_node`,
or a benchmark writing logs fast) hands it position commands stamped with their arrival time and
steps it. Per physics step the drive computes

    tau = kp * (q* - q) + kd * (qd* - qd) [+ g_nominal(q)],  clipped to +-effort_limit

on the setpoint ``q*`` (velocity ``qd*``) in force at that instant, and MuJoCo integrates it with
the joints' own viscous damping, Coulomb friction (``frictionloss``) and armature. ``g_nominal``
is the gravity torque of the NOMINAL URDF (mass factors 1), as vendor controllers compute it.

Setpoints: a command arriving at ``t`` takes effect at ``t + delay``. ``step`` holds it from then
on; ``ramp`` moves linearly from the setpoint in force to it over one command period (the
interval since the previous command, clipped to [dt, 2 / robot.yaml control.rate_hz]), with
``qd*`` its slope. A trajectory (JointTrajectoryController) replaces the setpoint by its points
at ``time_from_start`` after activation: linear between points, cubic Hermite when every point
has velocities; after the last point the last position is held. The e-stop acts at once (no
transport delay) and holds the position measured then until :meth:`ArmHardware.reset`.

This module also provides the registry functions of the ``arm`` kind (``load_hardware``,
``draw_hardware``, ``run``).
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from sim2real.errors import ConfigError
from sim2real.robots import RobotDescription
from sim2real.sim2sim.hardware import ArmHardwareConfig, draw_hardware, load_hardware  # noqa: F401  (registry API)
from sim2real.sim2sim.model import build_arm, require_mujoco

LIMIT_MARGIN = 1e-3  # rad: a joint this close to a URDF stop counts as on the limit


@dataclass
class ArmState:
    """What the arm's sensors report at ``time`` (s since reset).

    Attributes:
        position: (n,) joint angles, rad, with measurement noise.
        velocity: (n,) joint velocities, rad/s, with measurement noise.
        effort: (n,) servo torque applied during the last step, N·m, with measurement noise.
        ee_position: (3,) end-effector link origin in the world frame, m (exact).
    """

    time: float
    position: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray
    ee_position: np.ndarray


class _Setpoint:
    """Piecewise setpoint over knots ``times`` (k,), ``positions`` (k, n), optional ``velocities`` (k, n)."""

    __slots__ = ("times", "positions", "velocities")

    def __init__(self, times: np.ndarray, positions: np.ndarray, velocities: np.ndarray | None = None) -> None:
        self.times, self.positions, self.velocities = times, positions, velocities

    def __call__(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        times, pos = self.times, self.positions
        if t >= times[-1]:
            return pos[-1], np.zeros(pos.shape[1])
        i = max(int(np.searchsorted(times, t, side="right")) - 1, 0)
        h = times[i + 1] - times[i]
        s = (t - times[i]) / h
        p0, p1 = pos[i], pos[i + 1]
        if self.velocities is None:
            return p0 + s * (p1 - p0), (p1 - p0) / h
        m0, m1 = self.velocities[i] * h, self.velocities[i + 1] * h  # cubic Hermite basis
        s2, s3 = s * s, s * s * s
        q = (2 * s3 - 3 * s2 + 1) * p0 + (s3 - 2 * s2 + s) * m0 + (-2 * s3 + 3 * s2) * p1 + (s3 - s2) * m1
        dq = ((6 * s2 - 6 * s) * p0 + (3 * s2 - 4 * s + 1) * m0 + (-6 * s2 + 6 * s) * p1 + (3 * s2 - 2 * s) * m1) / h
        return q, dq


class ArmHardware:
    """A MuJoCo arm with a servo drive, driven in-process.

    :param robot: the robot description (joints in robot.yaml order; n joints).
    :param hardware: the physical truth (:class:`~sim2real.sim2sim.hardware.ArmHardwareConfig`).
    :param rng: generator of the measurement noise (default: ``numpy.random.default_rng(0)``).
    """

    def __init__(self, robot: RobotDescription, hardware: ArmHardwareConfig,
                 rng: np.random.Generator | None = None) -> None:
        require_mujoco()
        import mujoco

        self._mj = mujoco
        self.robot, self.hardware = robot, hardware
        self.n = robot.n_joints
        arm = build_arm(robot, physics_hz=hardware.physics_hz, mass_factors=hardware.mass_factors,
                        damping=hardware.damping, friction=hardware.friction, armature=hardware.armature)
        self.model, self.data = arm.model, mujoco.MjData(arm.model)
        self._qpos, self._dofs, self._ee = arm.qpos, arm.dofs, arm.ee_body
        nominal = build_arm(robot, physics_hz=hardware.physics_hz)  # vendor model: URDF masses
        self._nominal, self._nominal_data = nominal.model, mujoco.MjData(nominal.model)
        self.dt = float(self.model.opt.timestep)
        self.kp, self.kd = np.array(hardware.kp), np.array(hardware.kd)
        self.effort_limit = np.array(hardware.effort_limit)
        joints = self.model.dof_jntid[self._dofs]
        stops, limited = self.model.jnt_range[joints], self.model.jnt_limited[joints].astype(bool)
        self._stop_lo = np.where(limited, stops[:, 0] + LIMIT_MARGIN, -np.inf)
        self._stop_hi = np.where(limited, stops[:, 1] - LIMIT_MARGIN, np.inf)
        self._ramp_max = 2.0 / robot.control.rate_hz
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.reset()

    # ------------------------------------------------------------------ set-up
    def reset(self, q: Sequence[float] | None = None) -> None:
        """Put the arm at rest at ``q`` (n,) rad (default: the hardware's start pose), time 0,
        setpoint = ``q``, no pending commands, e-stop released, statistics cleared."""
        mj, d = self._mj, self.data
        mj.mj_resetData(self.model, d)
        q0 = np.array(self.hardware.start_pose if q is None else q, dtype=float)
        if q0.shape != (self.n,):
            raise ValueError(f"reset pose must have shape ({self.n},), got {q0.shape}")
        d.qpos[self._qpos] = q0
        mj.mj_forward(self.model, d)
        self._setpoint = _Setpoint(np.array([0.0]), q0[None, :].copy())
        self._pending: list[tuple[float, int, str, Any]] = []
        self._seq = itertools.count()
        self._last_arrival: float | None = None
        self.estopped_at: float | None = None
        self._tau = np.zeros(self.n)
        self.ee_start = d.xpos[self._ee].copy()
        self._ee_prev = self.ee_start.copy()
        self.ee_path_length = 0.0
        self.counts = {"commands": 0, "trajectories": 0, "rejected_nan": 0, "rejected_size": 0,
                       "rejected_trajectory": 0, "ignored_estopped": 0}
        self.max_abs_effort = np.zeros(self.n)
        self.saturated_steps = np.zeros(self.n, dtype=int)
        self.limit_steps = np.zeros(self.n, dtype=int)
        self.steps = 0

    @property
    def time(self) -> float:
        """Simulated time since reset, s."""
        return float(self.data.time)

    # ------------------------------------------------------------------ inputs
    def _accept(self, t: float | None) -> float | None:
        t = self.time if t is None else float(t)
        if self.estopped_at is not None:
            self.counts["ignored_estopped"] += 1
            return None
        return t

    def command(self, positions: Sequence[float], t: float | None = None) -> bool:
        """A position command (n,) rad (robot.yaml joint order) arriving at ``t`` s (default: now).

        It takes effect at ``t + delay`` (``t`` may lie ahead of :attr:`time`: commands can be
        queued for a whole log in advance, in increasing ``t``). Returns False when rejected: wrong length, a non-finite
        value, or the e-stop latched (each counted in :attr:`counts`).
        """
        q = np.asarray(positions, dtype=float).ravel()
        if q.shape != (self.n,):
            self.counts["rejected_size"] += 1
            return False
        if not np.all(np.isfinite(q)):
            self.counts["rejected_nan"] += 1
            return False
        t = self._accept(t)
        if t is None:
            return False
        period = 1.0 / self.robot.control.rate_hz if self._last_arrival is None else t - self._last_arrival
        self._last_arrival = t
        self.counts["commands"] += 1
        heapq.heappush(self._pending, (t + self.hardware.delay, next(self._seq), "command",
                                       (q, float(np.clip(period, self.dt, self._ramp_max)))))
        return True

    def trajectory(self, times_from_start: Sequence[float], positions: Sequence[Sequence[float]],
                   velocities: Sequence[Sequence[float]] | None = None, t: float | None = None) -> bool:
        """A joint trajectory arriving at ``t`` s: points (k,) s after activation, positions (k, n) rad,
        optional velocities (k, n) rad/s. Replaces the setpoint at ``t + delay``.

        Returns False when rejected: no points, shapes, non-finite values, times not increasing.
        """
        tfs = np.asarray(times_from_start, dtype=float).ravel()
        pos = np.asarray(positions, dtype=float)
        vel = None if velocities is None else np.asarray(velocities, dtype=float)
        k = len(tfs)
        ok = k > 0 and pos.shape == (k, self.n) and (vel is None or vel.shape == (k, self.n))
        if ok and not (np.all(np.isfinite(pos)) and np.all(np.isfinite(tfs)) and (vel is None or np.all(np.isfinite(vel)))):
            self.counts["rejected_nan"] += 1
            return False
        if not ok or np.any(tfs < 0) or np.any(np.diff(tfs) <= 0):
            self.counts["rejected_trajectory"] += 1
            return False
        t = self._accept(t)
        if t is None:
            return False
        self.counts["trajectories"] += 1
        heapq.heappush(self._pending, (t + self.hardware.delay, next(self._seq), "trajectory", (tfs, pos, vel)))
        return True

    def estop(self) -> None:
        """Latch the e-stop now: hold the current position, drop pending commands, ignore new ones."""
        if self.estopped_at is not None:
            return
        self.estopped_at = self.time
        self._pending.clear()
        self._setpoint = _Setpoint(np.array([self.time]), self.data.qpos[self._qpos][None, :].copy())

    def _activate(self, t_act: float, kind: str, payload: Any) -> None:
        q_now, v_now = self._setpoint(t_act)
        if kind == "command":
            target, period = payload
            if self.hardware.setpoint == "step":
                self._setpoint = _Setpoint(np.array([t_act]), target[None, :])
            else:
                self._setpoint = _Setpoint(np.array([t_act, t_act + period]), np.stack([q_now, target]))
            return
        tfs, pos, vel = payload
        if tfs[0] == 0.0:  # the first point is due at once: it replaces the current setpoint
            times, knots_q = t_act + tfs, pos
            knots_v = vel
        else:
            times = np.concatenate([[t_act], t_act + tfs])
            knots_q = np.vstack([q_now, pos])
            knots_v = None if vel is None else np.vstack([v_now, vel])
        self._setpoint = _Setpoint(times, knots_q, knots_v)

    # ------------------------------------------------------------------ physics
    def gravity_nominal(self, q: np.ndarray) -> np.ndarray:
        """Gravity torque (n,) N·m of the nominal URDF model at joint angles ``q`` (n,) rad."""
        mj, m, d = self._mj, self._nominal, self._nominal_data
        d.qpos[self._qpos] = q
        mj.mj_kinematics(m, d)
        mj.mj_comPos(m, d)
        out = np.zeros(m.nv)
        mj.mj_rne(m, d, 0, out)  # qvel = 0: the bias force is gravity alone
        return out[self._dofs]

    def step(self, n_steps: int = 1) -> None:
        """Advance ``n_steps`` physics steps of ``dt`` s, the drive torque recomputed every step.

        Raises :class:`~sim2real.errors.ConfigError` if MuJoCo flags the simulation as unstable
        (gains too stiff for the physics rate) instead of letting it silently reset the state.
        """
        mj, m, d = self._mj, self.model, self.data
        qa, dofs, hw = self._qpos, self._dofs, self.hardware
        bad_qacc = mj.mjtWarning.mjWARN_BADQACC
        for _ in range(n_steps):
            t = d.time
            pending = self._pending
            while pending and pending[0][0] <= t + 1e-12:
                t_act, _, kind, payload = heapq.heappop(pending)
                self._activate(t_act, kind, payload)
            q_ref, v_ref = self._setpoint(t)
            q, v = d.qpos[qa], d.qvel[dofs]
            tau = self.kp * (q_ref - q) + self.kd * (v_ref - v)
            if hw.gravity_ff:
                tau += self.gravity_nominal(q)
            lim = self.effort_limit
            saturated = np.abs(tau) > lim
            tau = np.clip(tau, -lim, lim)
            d.qfrc_applied[dofs] = tau
            mj.mj_step(m, d)
            if d.warning[bad_qacc].number:  # MuJoCo reset the state: the run is meaningless from here
                raise ConfigError(f"the MuJoCo arm diverged at {t:.4f} s (unstable acceleration at "
                                  f"{self.robot.name} dof {d.warning[bad_qacc].lastinfo}): the drive is too stiff "
                                  f"for physics_hz = {hw.physics_hz:g}; raise physics_hz or lower kp/kd")
            self._tau = tau
            self.steps += 1
            self.saturated_steps += saturated
            np.maximum(self.max_abs_effort, np.abs(tau), out=self.max_abs_effort)
            q = d.qpos[qa]
            self.limit_steps += (q <= self._stop_lo) | (q >= self._stop_hi)
            ee = d.xpos[self._ee]
            self.ee_path_length += float(np.linalg.norm(ee - self._ee_prev))
            self._ee_prev = ee.copy()

    # ------------------------------------------------------------------ outputs
    def setpoint(self) -> tuple[np.ndarray, np.ndarray]:
        """The drive's setpoint now: positions (n,) rad and velocities (n,) rad/s."""
        q, v = self._setpoint(self.time)
        return q.copy(), v.copy()

    def true_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact joint positions (n,) rad and velocities (n,) rad/s (no noise)."""
        return self.data.qpos[self._qpos].copy(), self.data.qvel[self._dofs].copy()

    def state(self) -> ArmState:
        """The sensors' reading now (noise from the hardware's std values)."""
        hw, rng, n = self.hardware, self.rng, self.n
        q, v = self.true_state()
        return ArmState(
            time=self.time,
            position=q + rng.normal(0.0, hw.noise_position, n) if hw.noise_position else q,
            velocity=v + rng.normal(0.0, hw.noise_velocity, n) if hw.noise_velocity else v,
            effort=self._tau + rng.normal(0.0, hw.noise_effort, n) if hw.noise_effort else self._tau.copy(),
            ee_position=self.data.xpos[self._ee].copy(),
        )


def run(robot: RobotDescription, hardware: ArmHardwareConfig, transport: Any, options: Any) -> dict[str, Any]:
    """Registry entry: the arm behind its ROS 2 topics (see :func:`sim2real.sim2sim.arm_node.run_arm`)."""
    from sim2real.sim2sim.arm_node import run_arm

    return run_arm(robot, hardware, transport, options)
