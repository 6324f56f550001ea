"""Identification flights of the quadrotor in simulation, with known ground truth.

What a real identification flight does: a closed-loop hover/position controller keeps the drone
airborne while an excitation signal is added to every motor command, so thrust, the three body
torques and (through the motors' lag) the rotor dynamics are all excited, and a slow reference
trajectory (a circle with altitude changes) gives the airspeed that reveals rotor drag.

:func:`record_quadrotor` samples a randomization profile once (seeded), flies a
:class:`~sim2real.sim.quadrotor_world.QuadrotorWorld` in ``motor`` mode and returns a
:class:`HardwareLog` with odometry, IMU and the motor commands (thrust fractions
``ω²/max_rpm²``, env rotor order) — the same streams a flight of our deployed drone records —
plus the ground truth.

The controller (:class:`HoverController`) runs at the control rate on the *noisy* measured state
and uses only the nominal robot.yaml numbers, like the firmware on a real drone.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from sim2real.errors import Sim2RealError
from sim2real.robots import RobotDescription
from sim2real.sysid.logs import Commands, HardwareLog, Imu, Odometry

QUAD_EXCITATIONS = ("multisine", "prbs", "chirp")
TRAJECTORIES = ("circle", "hover")
T0_NS = 1_700_000_000_000_000_000  # fixed epoch: recorded bags are reproducible bit for bit
GRAVITY = 9.81


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrix (3, 3) body→world of a quaternion ``(x, y, z, w)`` (normalised here)."""
    return Rotation.from_quat(q).as_matrix()


class HoverController:
    """Position → attitude → body-rate cascade that outputs per-rotor thrust fractions (4,) in [0, 1].

    ``a = a_ref + kp (p_ref − p) + ki ∫(p_ref − p) + kd (v_ref − v) + g ẑ`` (tilt limited; the
    integral absorbs a thrust/mass mismatch of the nominal model), collective thrust
    ``m a·z_body``, geometric attitude error to the desired frame (yaw 0), body rates
    ``−k_att e_R``, torque ``J k_rate (ω_cmd − ω) + ω × Jω``, then the inverse mixer.

    :param model_params: nominal robot.yaml ``model_params`` (kf, km, arm_length, max_rpm)
    :param mass: nominal mass (kg); ``inertia``: nominal inertia diagonal (3,), kg·m²
    """

    def __init__(self, model_params: dict[str, Any], mass: float, inertia: np.ndarray, *, kp: float = 2.5,
                 ki: float = 1.5, kd: float = 3.0, k_att: float = 6.0, k_rate: float = 20.0, max_tilt: float = 0.4,
                 dt: float = 1.0 / 48.0) -> None:
        from sim2real.sim.quadrotor import RotorParams, mixer_matrix

        self.params = RotorParams.from_mapping(model_params)
        self.mass, self.inertia = float(mass), np.asarray(inertia, dtype=float).reshape(3)
        self.kp, self.ki, self.kd, self.k_att, self.k_rate, self.max_tilt = kp, ki, kd, k_att, k_rate, max_tilt
        self.dt, self.integral = float(dt), np.zeros(3)
        self.mix_inv = np.linalg.inv(mixer_matrix(self.params))
        self.t_max = self.params.max_thrust

    def __call__(self, pos: np.ndarray, quat: np.ndarray, vel: np.ndarray, rates: np.ndarray,
                 p_ref: np.ndarray, v_ref: np.ndarray, a_ref: np.ndarray) -> np.ndarray:
        """Thrust fractions (4,) for the measured state (world position m, xyzw, world velocity m/s,
        body rates rad/s) and the reference (position, velocity, acceleration; world)."""
        err = p_ref - pos
        self.integral = np.clip(self.integral + err * self.dt, -2.0, 2.0)
        acc = a_ref + self.kp * err + self.ki * self.integral + self.kd * (v_ref - vel)
        acc[2] = max(acc[2] + GRAVITY, 0.3 * GRAVITY)
        horizontal, limit = float(np.hypot(acc[0], acc[1])), acc[2] * math.tan(self.max_tilt)
        if horizontal > limit:
            acc[:2] *= limit / horizontal
        rot = quat_to_matrix(quat)
        thrust = self.mass * float(acc @ rot[:, 2])
        z_d = acc / np.linalg.norm(acc)
        y_d = np.cross(z_d, [1.0, 0.0, 0.0])
        y_d /= np.linalg.norm(y_d)
        r_d = np.column_stack([np.cross(y_d, z_d), y_d, z_d])
        e = 0.5 * (r_d.T @ rot - rot.T @ r_d)
        rates_cmd = -self.k_att * np.array([e[2, 1], e[0, 2], e[1, 0]])
        torque = self.inertia * self.k_rate * (rates_cmd - rates) + np.cross(rates, self.inertia * rates)
        thrusts = self.mix_inv @ np.concatenate([[thrust], torque])
        return np.clip(thrusts / self.t_max, 0.0, 1.0)


#: rotor patterns (env rotor order) of collective thrust, roll, pitch and yaw torque
PATTERNS = np.array([[1.0, 1.0, 1.0, 1.0], [-1.0, -1.0, 1.0, 1.0], [-1.0, 1.0, 1.0, -1.0], [-1.0, 1.0, -1.0, 1.0]])
#: excitation peak per channel relative to ``amplitude`` (collective, roll, pitch, yaw): the
#: Crazyflie's tiny inertia makes roll/pitch ~5x more sensitive than thrust
CHANNEL_GAINS = np.array([1.0, 0.2, 0.2, 0.5])


def motor_excitation(kind: str, steps: int, rate_hz: float, rng: np.random.Generator, amplitude: float, *,
                     f_min: float = 0.3, f_max: float = 12.0, min_hold: int = 2, max_hold: int = 8) -> np.ndarray:
    """Additive motor excitation ``(steps, 4)`` in thrust fraction (env rotor order).

    Four independent signals drive the collective-thrust, roll-, pitch- and yaw-torque rotor
    patterns (:data:`PATTERNS`), with peaks ``amplitude`` × :data:`CHANNEL_GAINS`.
    ``multisine``: 12 log-spaced tones in ``[f_min, f_max]`` Hz, Schroeder phases permuted per
    channel; ``prbs``: random ±1 levels held ``min_hold``–``max_hold`` control steps;
    ``chirp``: log sweep ``f_min``→``f_max`` with a random phase per channel.
    """
    if kind not in QUAD_EXCITATIONS:
        raise Sim2RealError(f"unknown excitation {kind!r} for a quadrotor; expected one of {list(QUAD_EXCITATIONS)}")
    t = np.arange(steps) / rate_hz
    f_max = min(f_max, 0.4 * rate_hz)
    sig = np.zeros((steps, 4))
    if kind == "multisine":
        m = 12
        freqs = np.geomspace(f_min, f_max, m)
        phases = -np.pi * np.arange(m) * (np.arange(m) + 1) / m
        for j in range(4):
            s = np.sin(2 * np.pi * freqs[None, :] * t[:, None] + phases[rng.permutation(m)][None, :]).sum(axis=1)
            sig[:, j] = s / max(np.abs(s).max(), 1e-9)
    elif kind == "prbs":
        for j in range(4):
            k = 0
            while k < steps:
                span = int(rng.integers(min_hold, max_hold + 1))
                sig[k:k + span, j] = rng.choice([-1.0, 1.0])
                k += span
    else:
        duration = max(t[-1], 1e-9) if steps > 1 else 1.0
        rate = (f_max / f_min) ** (1.0 / duration)
        phase_t = 2 * np.pi * f_min * (rate ** t - 1.0) / np.log(rate)
        sig = np.sin(phase_t[:, None] + rng.uniform(0, 2 * np.pi, 4)[None, :])
    return (amplitude * sig * CHANNEL_GAINS[None, :]) @ PATTERNS


def reference(kind: str, t: np.ndarray, centre: np.ndarray, radius: float = 0.5,
              period: float = 6.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference position, velocity, acceleration ``(T, 3)`` (world): a circle of ``radius`` (m) with
    a ±0.2 m altitude wave, faded in over the first 2 s, or a fixed hover point."""
    n = t.size
    if kind not in TRAJECTORIES:
        raise Sim2RealError(f"unknown trajectory {kind!r}; expected one of {list(TRAJECTORIES)}")
    if kind == "hover":
        return np.tile(centre, (n, 1)), np.zeros((n, 3)), np.zeros((n, 3))
    w = 2 * np.pi / period
    ramp = np.clip(t / 2.0, 0.0, 1.0)
    ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep
    phase = w * t
    offs = np.stack([radius * (np.cos(phase) - 1.0), radius * np.sin(phase), 0.2 * np.sin(0.7 * phase)], axis=1)
    vel = np.stack([-radius * w * np.sin(phase), radius * w * np.cos(phase), 0.14 * w * np.cos(0.7 * phase)], axis=1)
    acc = np.stack([-radius * w * w * np.cos(phase), -radius * w * w * np.sin(phase),
                    -0.098 * w * w * np.sin(0.7 * phase)], axis=1)
    return centre + ramp[:, None] * offs, ramp[:, None] * vel, ramp[:, None] * acc


def quad_truth(world: Any) -> dict[str, Any]:
    """The world's dynamics in physical units and as the calibration's parameters (``params``)."""
    robot = world.robot
    cur, nom = world.current["links"]["base"], world.nominal["links"]["base"]
    mp = world.model_params
    keys = ("kf", "km", "motor_tau", "arm_length", "drag_coeff", "drag_coeff_z")
    inertia = np.asarray(cur["inertia"], dtype=float) * float(world._inertia_scale.get("base", 1.0))
    iscale = inertia / np.asarray(nom["inertia"], dtype=float)
    names = {"kf": "kf", "km": "km", "motor_tau": "motor_tau", "arm_length": "arm_length", "drag_coeff": "drag",
             "drag_coeff_z": "drag_z"}
    params = {"mass": float(cur["mass"] / nom["mass"]), "inertia": float(np.mean(iscale))}
    params.update({names[k]: float(mp[k]) / float(robot.model_params[k]) for k in keys
                   if float(robot.model_params.get(k, 0.0)) > 0})
    params["delay"] = float(world.action_delay)
    return {"mass": float(cur["mass"]), "inertia": inertia.tolist(), "inertia_scale_per_axis": iscale.tolist(),
            **{k: float(mp[k]) for k in keys}, "action_delay_physics_steps": int(world.action_delay),
            "params": params}


def _noisy_quat(q: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """``q`` (xyzw) turned by a small random rotation (rotation vector ~ N(0, std²) per axis, rad) in the body frame."""
    if std <= 0:
        return q
    return (Rotation.from_quat(q) * Rotation.from_rotvec(rng.normal(0.0, std, 3))).as_quat()


def record_quadrotor(robot: RobotDescription, profile: Any, seed: int, kind: str, duration: float, *,
                     amplitude: float = 0.06, trajectory: str = "circle", warmup: float = 4.0, pos_noise: float = 0.0,
                     vel_noise: float = 0.0, att_noise: float = 0.0, rate_noise: float = 0.0,
                     truth_override: Any = None) -> tuple[HardwareLog, dict[str, Any]]:
    """Fly an identification flight in a randomized world and log it like the real drone would.

    :param profile: a loaded :class:`~sim2real.profiles.Profile` (sampled once with ``seed``;
        interval entries such as wind gusts are not applied: they would be unlogged disturbances)
    :param kind: per-motor excitation, ``multisine`` | ``prbs`` | ``chirp``
    :param duration: flight length (s); ``amplitude``: excitation peak per motor (thrust fraction)
    :param trajectory: ``circle`` (r = 0.5 m, 6 s period, ±0.2 m altitude) or ``hover``
    :param warmup: seconds of unlogged hover before the log starts (take-off settling)
    :param pos_noise, vel_noise, att_noise, rate_noise: std of the odometry/IMU noise (m, m/s,
        rad, rad/s); the controller flies on the noisy state
    :param truth_override: optional callable ``world -> None`` applied after the profile
    :returns: ``(log, truth)``; states are stamped at the control rate and the command computed
        from a state carries its stamp
    :raises Sim2RealError: not a quadrotor, or the flight left the safe envelope (crash)
    """
    import pybullet as p

    from sim2real.sim.quadrotor_world import QuadrotorWorld
    from sim2real.sysid.record import _plain, apply_profile

    if robot.kind != "quadrotor":
        raise Sim2RealError(f"a quadrotor identification flight needs a quadrotor; {robot.name} is a {robot.kind}")
    if not 0.0 <= amplitude < 0.5:
        raise Sim2RealError(f"--motor-amplitude must be in [0, 0.5) (thrust fraction), got {amplitude}")
    rng = np.random.default_rng(seed)
    world = QuadrotorWorld(robot, mode="motor")
    try:
        nominal_mass, nominal_inertia = world.mass(), world.nominal_inertia()
        applied = apply_profile(world, profile, rng)
        if truth_override is not None:
            truth_override(world)
        world.sync_model()
        rate, steps = robot.control.rate_hz, max(2, int(round(duration * robot.control.rate_hz)))
        ctrl = HoverController(robot.model_params, nominal_mass, nominal_inertia, dt=1.0 / robot.control.rate_hz)
        max_rpm = float(robot.model_params["max_rpm"])
        centre = np.asarray(robot.model_params.get("task", {}).get("hover_target", [0.0, 0.0, 1.0]), dtype=float)
        t = np.arange(steps + 1) / rate
        p_ref, v_ref, a_ref = reference(trajectory, t, centre)
        fade = np.clip(t[:-1] / 1.0, 0.0, 1.0)[:, None]
        excite = motor_excitation(kind, steps, rate, rng, amplitude) * fade
        cid, rid = world.client, world.robot_id
        p.resetBasePositionAndOrientation(rid, centre.tolist(), [0, 0, 0, 1], physicsClientId=cid)
        p.resetBaseVelocity(rid, [0, 0, 0], [0, 0, 0], physicsClientId=cid)
        hover = ctrl.params.hover_rpm(nominal_mass)
        world.rotors.reset(hover)
        world.hold()
        world.active = np.full(4, hover)
        # take-off settling, not logged: the controller's integrator absorbs the nominal model's
        # thrust/mass mismatch before the identification manoeuvres start
        zero = np.zeros(3)
        for _ in range(int(round(warmup * rate))):
            com, q = p.getBasePositionAndOrientation(rid, physicsClientId=cid)
            lin, ang = p.getBaseVelocity(rid, physicsClientId=cid)
            rot = quat_to_matrix(np.asarray(q))
            frac = ctrl(np.asarray(com), np.asarray(q, dtype=float), np.asarray(lin), rot.T @ np.asarray(ang), centre,
                        zero, zero)
            world.step(np.sqrt(frac) * max_rpm)
        pos, quat = np.zeros((steps + 1, 3)), np.zeros((steps + 1, 4))
        vel, rates, acc = np.zeros((steps + 1, 3)), np.zeros((steps + 1, 3)), np.zeros((steps + 1, 3))
        cmd = np.zeros((steps, 4))
        v_prev = np.zeros(3)
        for k in range(steps + 1):
            com, q = p.getBasePositionAndOrientation(rid, physicsClientId=cid)
            lin, ang = p.getBaseVelocity(rid, physicsClientId=cid)
            rot = quat_to_matrix(np.asarray(q))
            v_w = np.asarray(lin)
            tilt = math.acos(min(max(rot[2, 2], -1.0), 1.0))
            if com[2] < 0.1 or tilt > 1.0 or not np.isfinite(com).all():
                raise Sim2RealError(f"the identification flight left the safe envelope at t = {k / rate:.2f} s "
                                    f"(height {com[2]:.2f} m, tilt {tilt:.2f} rad); lower --motor-amplitude")
            pos[k] = np.asarray(com) + rng.normal(0.0, pos_noise, 3) if pos_noise > 0 else com
            quat[k] = _noisy_quat(np.asarray(q, dtype=float), att_noise, rng)
            vel[k] = v_w + (rng.normal(0.0, vel_noise, 3) if vel_noise > 0 else 0.0)
            rates[k] = rot.T @ np.asarray(ang) + (rng.normal(0.0, rate_noise, 3) if rate_noise > 0 else 0.0)
            acc[k] = rot.T @ ((v_w - v_prev) * rate + np.array([0.0, 0.0, GRAVITY])) if k else rot.T @ [0, 0, GRAVITY]
            v_prev = v_w
            if k == steps:
                break
            frac = np.clip(ctrl(pos[k], quat[k], vel[k], rates[k], p_ref[k], v_ref[k], a_ref[k]) + excite[k], 0.0, 1.0)
            cmd[k] = frac
            world.step(np.sqrt(frac) * max_rpm)
        truth = {"robot": robot.name, "profile": getattr(profile, "name", str(profile)), "seed": int(seed),
                 "excitation": kind, "trajectory": trajectory, "motor_amplitude": float(amplitude),
                 "duration": float(steps / rate), "rate_hz": float(rate), "physics_hz": float(robot.control.physics_hz),
                 "sensor_noise": {"position_std": float(pos_noise), "velocity_std": float(vel_noise),
                                  "attitude_std": float(att_noise), "rate_std": float(rate_noise)},
                 "randomization": _plain(applied), "values": quad_truth(world)}
    finally:
        world.close()
    rots = np.stack([quat_to_matrix(q) for q in quat])
    vel_body = np.einsum("kji,kj->ki", rots, vel)  # Rᵀ v: nav_msgs/Odometry twist is in the body frame
    log = HardwareLog(source="<simulation>", joint_names=[], t0_ns=T0_NS,
                      odometry=Odometry(t, pos, quat, vel_body, rates), imu=Imu(t, quat.copy(), rates.copy(), acc),
                      motor_command=Commands(t[:-1], cmd, kind="motor", topic="motor"))
    log.meta.update(truth=truth)
    return log, _plain(truth)
