"""Rotor model of sim2real.sim.quadrotor on a bare PyBullet world (no env, no profile)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pybullet as p
import pybullet_data
import pytest

from sim2real.errors import RobotError
from sim2real.robots import load_robot
import sim2real.sim.quadrotor as quad
from sim2real.sim.quadrotor import (
    BodyRateController,
    QuadrotorDynamics,
    RotorParams,
    body_rates,
    configure_body,
    ground_effect_gain,
    mixer_matrix,
    rotor_positions,
)

DT = 1.0 / 240.0
MASS = 0.027
INERTIA = (1.4e-5, 1.4e-5, 2.17e-5)


@pytest.fixture(scope="module")
def robot():
    return load_robot("quadrotor")


@pytest.fixture(scope="module")
def nominal(robot) -> RotorParams:
    return RotorParams.from_mapping(robot.model_params, file=str(robot.file))


class Bench:
    """One DIRECT client with a ground plane and the quadrotor."""

    def __init__(self, robot, params: RotorParams, pos=(0.0, 0.0, 1.0), quat=(0.0, 0.0, 0.0, 1.0)) -> None:
        self.c = p.connect(p.DIRECT)
        p.setGravity(0, 0, -9.81, physicsClientId=self.c)
        p.setTimeStep(DT, physicsClientId=self.c)
        p.loadURDF(pybullet_data.getDataPath() + "/plane.urdf", physicsClientId=self.c)
        self.body = p.loadURDF(robot.model_path(), list(pos), list(quat), flags=p.URDF_USE_INERTIA_FROM_FILE,
                               physicsClientId=self.c)
        configure_body(self.c, self.body)
        self.dyn = QuadrotorDynamics(self.c, self.body, params, DT)

    def step(self, n: int = 1) -> None:
        for _ in range(n):
            self.dyn.physics_step()
            p.stepSimulation(physicsClientId=self.c)

    def pos(self) -> np.ndarray:
        return np.asarray(p.getBasePositionAndOrientation(self.body, physicsClientId=self.c)[0])

    def close(self) -> None:
        p.disconnect(self.c)


@pytest.fixture
def bench_factory(robot):
    benches: list[Bench] = []

    def make(params: RotorParams, **kw) -> Bench:
        b = Bench(robot, params, **kw)
        benches.append(b)
        return b

    yield make
    for b in benches:
        b.close()


def test_urdf_matches_model(robot, bench_factory, nominal):
    b = bench_factory(nominal)
    info = p.getDynamicsInfo(b.body, -1, physicsClientId=b.c)
    assert info[0] == pytest.approx(MASS)
    assert np.allclose(info[2], INERTIA)
    assert p.getBodyInfo(b.body, physicsClientId=b.c)[0].decode() == "base"
    names = [p.getJointInfo(b.body, i, physicsClientId=b.c)[12].decode() for i in range(4)]
    assert names == list(robot.links)
    # the URDF's rotor markers sit where the model applies thrust
    for i in range(4):
        marker = np.asarray(p.getLinkState(b.body, i, physicsClientId=b.c)[4]) - b.pos()
        assert np.allclose(marker, rotor_positions(nominal.arm_length)[i], atol=1e-6)


def test_open_loop_hover_holds_altitude(bench_factory, nominal):
    b = bench_factory(nominal)
    rpm = math.sqrt(MASS * 9.81 / (4 * nominal.kf))
    assert rpm == pytest.approx(nominal.hover_rpm(MASS))
    b.dyn.reset(rpm)
    b.dyn.command_rpm([rpm] * 4)
    b.step(240)  # 1 s
    pos = b.pos()
    assert abs(pos[2] - 1.0) < 0.01
    assert np.linalg.norm(pos[:2]) < 1e-3
    assert b.dyn.thrusts.sum() == pytest.approx(MASS * 9.81, rel=1e-3)
    # 10% less thrust: it must fall, at about 0.1 g
    b.dyn.command_rpm([rpm * math.sqrt(0.9)] * 4)
    b.dyn.reset(rpm * math.sqrt(0.9))
    z0 = b.pos()[2]
    b.step(120)
    assert z0 - b.pos()[2] == pytest.approx(0.5 * 0.981 * 0.5**2, rel=0.1)


def test_motor_lag_is_first_order(bench_factory, nominal):
    tau = 6 * DT  # a whole number of physics steps
    b = bench_factory(nominal.with_values(motor_tau=tau))
    b.dyn.reset(0.0)
    cmd = 15000.0
    b.dyn.command_rpm([cmd] * 4)
    speeds = []
    for _ in range(18):
        b.step()
        speeds.append(b.dyn.rpm[0])
    assert speeds[5] / cmd == pytest.approx(1 - math.exp(-1), abs=1e-9)  # 63.2% at t = tau
    expected = cmd * (1 - np.exp(-np.arange(1, 19) * DT / tau))
    assert np.allclose(speeds, expected, rtol=1e-9)
    # no lag at all with motor_tau = 0
    b.dyn.set_params(nominal.with_values(motor_tau=0.0))
    b.dyn.command_rpm([1000.0] * 4)
    b.step()
    assert np.allclose(b.dyn.rpm, 1000.0)


def test_normalized_command_maps_to_rpm_squared(bench_factory, nominal):
    b = bench_factory(nominal)
    b.dyn.command_normalized([-1.0, 0.0, 1.0, 0.5])
    expected = np.sqrt(np.array([0.0, 0.5, 1.0, 0.75])) * nominal.max_rpm
    assert np.allclose(b.dyn.rpm_command, expected)


@pytest.mark.parametrize("fast, sign", [((1, 3), 1.0), ((0, 2), -1.0)])
def test_yaw_torque_sign_and_size(bench_factory, nominal, fast, sign):
    b = bench_factory(nominal.with_values(motor_tau=0.0))
    p.setGravity(0, 0, 0, physicsClientId=b.c)
    hover = nominal.hover_rpm(MASS)
    rpm = np.full(4, hover * 0.95)
    rpm[list(fast)] = hover * 1.05
    b.dyn.command_rpm(rpm)
    b.step(24)
    w = body_rates(b.c, b.body)
    torque = nominal.km * (2 * (1.05 * hover) ** 2 - 2 * (0.95 * hover) ** 2)
    assert np.sign(w[2]) == sign
    assert abs(w[2]) == pytest.approx(torque / INERTIA[2] * 24 * DT, rel=0.02)
    assert np.allclose(w[:2], 0.0, atol=1e-6)
    assert np.allclose(b.pos()[:2], 0.0, atol=1e-6)  # a pure yaw torque: no sideways drift


def test_roll_and_pitch_signs(bench_factory, nominal):
    """Left rotors (2, 3) faster → positive roll; back rotors (1, 2) faster → positive pitch."""
    for fast, axis in (((2, 3), 0), ((1, 2), 1)):
        b = bench_factory(nominal.with_values(motor_tau=0.0))
        p.setGravity(0, 0, 0, physicsClientId=b.c)
        rpm = np.full(4, 10000.0)
        rpm[list(fast)] = 11000.0
        b.dyn.command_rpm(rpm)
        b.step(5)
        w = body_rates(b.c, b.body)
        assert w[axis] > 0.1 and abs(w[1 - axis]) < 1e-6


def test_doubled_kf_climbs_at_one_g(bench_factory, nominal):
    hover = nominal.hover_rpm(MASS)
    climbs = []
    for kf in (nominal.kf, 2 * nominal.kf):
        b = bench_factory(nominal.with_values(kf=kf))
        b.dyn.reset(hover)
        b.dyn.command_rpm([hover] * 4)
        b.step(120)
        climbs.append(b.pos()[2] - 1.0)
    assert abs(climbs[0]) < 0.005
    assert climbs[1] == pytest.approx(0.5 * 9.81 * 0.5**2, rel=0.05)


def test_ground_effect_increases_thrust_near_ground(bench_factory, nominal):
    assert nominal.ground_effect_coeff > 0
    high = bench_factory(nominal, pos=(0, 0, 1.0))
    low = bench_factory(nominal, pos=(0, 0, 0.02))
    for b in (high, low):
        b.dyn.reset(10000.0)
        b.dyn.command_rpm([10000.0] * 4)
        b.step()
    ratio = low.dyn.thrusts / high.dyn.thrusts
    x = (nominal.prop_radius / (4 * 0.02)) ** 2
    assert np.allclose(ratio, 1 / (1 - x), rtol=0.02)
    assert np.all(ratio > 1.05)
    off = bench_factory(nominal.with_values(ground_effect_coeff=0.0), pos=(0, 0, 0.02))
    off.dyn.reset(10000.0)
    off.step()
    assert np.allclose(off.dyn.thrusts, high.dyn.thrusts, rtol=1e-4)
    # capped very close to the ground
    gain = ground_effect_gain(np.array([1e-3, 0.5]), nominal)
    assert gain[0] == pytest.approx(nominal.ground_effect_max_gain)
    assert gain[1] == pytest.approx(1.0, abs=1e-3)


def test_drag_slows_horizontal_motion(bench_factory, nominal):
    hover = nominal.hover_rpm(MASS)
    speeds = []
    for drag in (0.0, nominal.drag_coeff * 50):
        b = bench_factory(nominal.with_values(drag_coeff=drag, drag_coeff_z=0.0))
        p.resetBaseVelocity(b.body, [1.0, 0.0, 0.0], [0, 0, 0], physicsClientId=b.c)
        b.dyn.reset(hover)
        b.step(48)
        speeds.append(p.getBaseVelocity(b.body, physicsClientId=b.c)[0][0])
    assert speeds[0] == pytest.approx(1.0, abs=1e-3)
    spin = 4 * hover * 2 * math.pi / 60
    decay = nominal.drag_coeff * 50 * spin / MASS  # 1/s
    assert speeds[1] == pytest.approx((1 - decay * DT) ** 48, rel=0.01)  # explicit force per physics step


def test_mixer_round_trip_and_saturation(nominal):
    ctrl = BodyRateController(nominal, INERTIA, kp=(1, 1, 1))
    a = mixer_matrix(nominal)
    wrench = np.array([0.3, 1e-3, -5e-4, 2e-5])
    thrusts = ctrl.rotor_thrusts(wrench[0], wrench[1:])
    assert np.allclose(a @ thrusts, wrench, rtol=1e-9, atol=1e-12)
    # zero collective: torque kept, collective raised just enough
    thrusts = ctrl.rotor_thrusts(0.0, [1e-3, 0.0, 0.0])
    assert thrusts.min() == pytest.approx(0.0, abs=1e-12)
    assert np.allclose((a @ thrusts)[1:], [1e-3, 0, 0])
    # full collective: stays within the rotor limit
    thrusts = ctrl.rotor_thrusts(10.0, [1e-3, 0.0, 0.0])
    assert thrusts.max() <= nominal.max_thrust + 1e-12
    assert np.allclose((a @ thrusts)[1:], [1e-3, 0, 0])


def test_rate_controller_tracks_yaw_rate(robot, bench_factory, nominal):
    rc = robot.model_params["rate_controller"]
    b = bench_factory(nominal)
    ctrl = BodyRateController(nominal, INERTIA, rc["kp"], rc["ki"], rc["kd"], physics_dt=DT)
    b.dyn.reset(nominal.hover_rpm(MASS))
    history = []
    for _ in range(240):
        w = body_rates(b.c, b.body)
        history.append(w)
        b.dyn.command_rpm(ctrl(MASS * 9.81, [0.0, 0.0, 1.5], w))
        b.step()
    history = np.asarray(history)
    assert np.all(np.abs(history[-60:, 2] - 1.5) < 0.05)
    assert np.all(np.abs(history[:, :2]) < 1e-3)
    assert abs(b.pos()[2] - 1.0) < 0.02
    # and a roll rate, with the opposite sign
    ctrl.reset()
    for _ in range(48):
        w = body_rates(b.c, b.body)
        b.dyn.command_rpm(ctrl(MASS * 9.81, [-2.0, 0.0, 0.0], w))
        b.step()
    assert body_rates(b.c, b.body)[0] == pytest.approx(-2.0, abs=0.2)


def test_bad_model_params_name_the_key(robot):
    mp = dict(robot.model_params)
    del mp["kf"]
    with pytest.raises(RobotError, match=r"model_params\.kf"):
        RotorParams.from_mapping(mp, file="robot.yaml")
    with pytest.raises(RobotError, match=r"robot\.yaml: model_params\.motor_tau: expected a finite number"):
        RotorParams.from_mapping({**robot.model_params, "motor_tau": "slow"}, file="robot.yaml")
    with pytest.raises(RobotError, match=r"model_params\.max_rpm"):
        RotorParams.from_mapping({**robot.model_params, "max_rpm": -1.0})


def test_velocity_controller_limits_tilt_and_never_pushes_down():
    from sim2real.sim.quadrotor import VelocityController

    ctrl = VelocityController(MASS, kp=(4, 4, 4), ki=(0, 0, 0), attitude_gain=8.0, max_tilt=0.5, physics_dt=DT)
    level = np.eye(3)
    thrust, rates = ctrl([100.0, 0.0, 0.0], 0.3, level, [0.0, 0.0, 0.0])
    # a huge forward command asks for at most max_tilt: thrust·cos(tilt) still carries the weight
    assert thrust == pytest.approx(MASS * 9.81, rel=1e-9)
    assert rates[1] == pytest.approx(8.0 * math.sin(0.5), rel=1e-6)  # pitch forward (nose down) about +y
    assert rates[0] == pytest.approx(0.0) and rates[2] == 0.3
    thrust, _ = ctrl([0.0, 0.0, -100.0], 0.0, level, [0.0, 0.0, 0.0])
    assert thrust == pytest.approx(0.2 * MASS * 9.81)
    upside_down = np.diag([1.0, -1.0, -1.0])
    thrust, _ = ctrl([0.0, 0.0, 0.0], 0.0, upside_down, [0.0, 0.0, 0.0])
    assert thrust == 0.0


def rotor_wrench_reference(params: quad.RotorParams, rpm: np.ndarray, com: Sequence[float], quat: Sequence[float],
                           lin_vel: Sequence[float], com_in_link: Sequence[float], com_rot_in_link: np.ndarray,
                           ground_z: float = 0.0) -> dict[str, np.ndarray]:
    """Forces of :meth:`QuadrotorDynamics.physics_step` computed with numpy (the pre-optimisation
    model, the reference of the compiled kernel): rotor speeds ``rpm`` (4,) after the motor update,
    base COM pose/velocity as PyBullet reports them, COM frame in the link frame.

    Returns ``thrusts`` (4,) N, ``points`` (4, 3) world m, ``forces`` (4, 3) N world,
    ``torque`` (3,) N·m world (yaw reaction), ``drag`` (3,) N world (applied at ``com``), and
    the resultant about the centre of mass: ``net_force`` (3,) N and ``net_torque`` (3,) N·m.
    """
    rot = np.asarray(p.getMatrixFromQuaternion(quat), dtype=float).reshape(3, 3) @ np.asarray(com_rot_in_link).T
    com = np.asarray(com, dtype=float)
    origin = com - rot @ np.asarray(com_in_link, dtype=float)
    points = origin + quad.rotor_positions(params.arm_length) @ rot.T
    omega_sq = np.asarray(rpm, dtype=float) ** 2
    thrusts = params.kf * omega_sq * quad.ground_effect_gain(points[:, 2] - ground_z, params)
    body_z = rot[:, 2]
    yaw = float(np.dot(quad.ROTOR_YAW_SIGNS, params.km * omega_sq))
    spin = float(np.sum(rpm)) * quad.RPM_TO_RAD_S
    drag_diag = np.array([params.drag_coeff, params.drag_coeff, params.drag_coeff_z])
    f_body = -drag_diag * spin * (rot.T @ np.asarray(lin_vel))
    forces = thrusts[:, None] * body_z
    drag = rot @ f_body
    net_torque = np.cross(points - com, forces).sum(axis=0) + yaw * body_z
    return {"thrusts": thrusts, "points": points, "forces": forces, "torque": yaw * body_z, "drag": drag,
            "net_force": forces.sum(axis=0) + drag, "net_torque": net_torque}


def test_kernel_physics_step_matches_the_numpy_reference_on_random_states(bench_factory, nominal):
    """The compiled physics step applies the forces of the numpy model (rotor_wrench_reference):
    random poses, velocities, motor states, parameters and centre-of-mass frames, to 1e-12."""
    rng = np.random.default_rng(7)
    b = bench_factory(nominal)
    for trial in range(60):
        params = nominal.with_values(
            kf=nominal.kf * rng.uniform(0.5, 1.5), km=nominal.km * rng.uniform(0.5, 1.5),
            motor_tau=0.0 if trial % 7 == 0 else rng.uniform(0.005, 0.05), arm_length=rng.uniform(0.03, 0.06),
            drag_coeff=0.0 if trial % 5 == 0 else nominal.drag_coeff * rng.uniform(0.5, 2.0),
            drag_coeff_z=0.0 if trial % 5 == 0 else nominal.drag_coeff_z * rng.uniform(0.5, 2.0),
            ground_effect_coeff=0.0 if trial % 3 == 0 else rng.uniform(0.5, 1.5))
        b.dyn.set_params(params)
        if trial % 2:  # a shifted / rotated centre-of-mass frame (as after a com_offset rebuild)
            com_rot = np.asarray(p.getMatrixFromQuaternion(p.getQuaternionFromEuler(rng.uniform(-0.3, 0.3, 3)))
                                 ).reshape(3, 3)
            b.dyn.set_com_frame(rng.uniform(-0.005, 0.005, 3), com_rot)
        else:
            b.dyn.set_com_frame(np.zeros(3), np.eye(3))
        com = rng.uniform([-1, -1, 0.0], [1, 1, 0.2 if trial % 4 == 0 else 2.0])  # some in ground effect
        quat = p.getQuaternionFromEuler(rng.uniform(-1.0, 1.0, 3))
        lin = rng.uniform(-3, 3, 3)
        p.resetBasePositionAndOrientation(b.body, com.tolist(), quat, physicsClientId=b.c)
        p.resetBaseVelocity(b.body, lin.tolist(), rng.uniform(-5, 5, 3).tolist(), physicsClientId=b.c)
        b.dyn.reset(rng.uniform(0, params.max_rpm, 4))
        before = b.dyn.rpm
        b.dyn.command_rpm(rng.uniform(-100, params.max_rpm * 1.2, 4))
        cmd = b.dyn.rpm_command
        b.dyn.physics_step()
        alpha = 1.0 - math.exp(-DT / params.motor_tau) if params.motor_tau > 0 else 1.0
        rpm = before + alpha * (cmd - before)
        assert np.allclose(b.dyn.rpm, rpm, rtol=1e-12, atol=0)
        ref = rotor_wrench_reference(params, rpm, com, quat, lin, b.dyn._com_in_link, b.dyn._com_rot_in_link)
        # one force at the centre of mass and one torque: the resultant of the rotor forces at
        # their points, the yaw reaction torque and the drag
        force, torque = b.dyn.last_wrench()
        scale_f = np.abs(ref["forces"]).sum() + np.abs(ref["drag"]).sum() + 1e-30
        assert np.allclose(force, ref["net_force"], rtol=0, atol=1e-12 * scale_f)
        scale_t = scale_f * params.arm_length + np.abs(ref["torque"]).sum() + 1e-30
        assert np.allclose(torque, ref["net_torque"], rtol=0, atol=1e-12 * scale_t)
        assert np.allclose(b.dyn.thrusts, ref["thrusts"], rtol=1e-12, atol=0)
        yaw = float(np.dot(quad.ROTOR_YAW_SIGNS, params.km * rpm**2))
        assert b.dyn.yaw_torque == pytest.approx(yaw, rel=1e-12, abs=1e-12 * params.km * rpm.max() ** 2)
        if params.ground_effect_coeff > 0 and com[2] < 0.2 and rpm.max() > 0:
            assert ref["thrusts"].max() > params.kf * rpm.max() ** 2 * (1 + 1e-9)  # the case is covered


def test_resultant_wrench_flies_like_forces_at_the_rotors(bench_factory, nominal):
    """Applying the resultant at the centre of mass is what PyBullet does with forces at points:
    the kernel's flight equals the four rotor forces, yaw torque and drag of the numpy reference
    applied one by one (the reference integrates the motor lag itself)."""
    hover = nominal.hover_rpm(MASS)
    cmd = np.array([hover * 1.05, hover * 0.97, hover * 1.02, hover * 0.99])
    alpha = 1.0 - math.exp(-DT / nominal.motor_tau)
    runs = []
    for resultant in (True, False):
        b = bench_factory(nominal, quat=p.getQuaternionFromEuler([0.2, -0.1, 0.3]))
        p.resetBaseVelocity(b.body, [0.3, -0.2, 0.1], [1.0, -2.0, 3.0], physicsClientId=b.c)
        b.dyn.reset(hover)
        b.dyn.command_rpm(cmd)
        rpm = np.full(4, hover)
        for _ in range(120):
            if resultant:
                b.dyn.physics_step()
            else:
                com, quat = p.getBasePositionAndOrientation(b.body, physicsClientId=b.c)
                lin = p.getBaseVelocity(b.body, physicsClientId=b.c)[0]
                rpm = rpm + alpha * (cmd - rpm)
                ref = rotor_wrench_reference(nominal, rpm, com, quat, lin, b.dyn._com_in_link, b.dyn._com_rot_in_link)
                for force, point in zip(ref["forces"], ref["points"]):
                    p.applyExternalForce(b.body, -1, force.tolist(), point.tolist(), p.WORLD_FRAME, physicsClientId=b.c)
                p.applyExternalTorque(b.body, -1, ref["torque"].tolist(), p.WORLD_FRAME, physicsClientId=b.c)
                p.applyExternalForce(b.body, -1, ref["drag"].tolist(), com, p.WORLD_FRAME, physicsClientId=b.c)
            p.stepSimulation(physicsClientId=b.c)
        runs.append(np.concatenate([b.pos(), *p.getBaseVelocity(b.body, physicsClientId=b.c)]))
    assert nominal.motor_tau > 0 and np.abs(runs[0][3:]).max() > 0.5  # the lag was exercised; it moved
    assert np.allclose(runs[0], runs[1], rtol=0, atol=1e-9)


def _reference_rate_controller(ctrl, rate_cmd, rate, integral, prev):
    """BodyRateController in numpy (the model the kernel implements)."""
    err = rate_cmd - rate
    integral = np.clip(integral + err * ctrl.physics_dt, -ctrl.integral_limit, ctrl.integral_limit)
    dw = np.zeros(3) if prev is None else (rate - prev) / ctrl.physics_dt
    acc = ctrl.kp * err + ctrl.ki * integral - ctrl.kd * dw
    tau = ctrl.inertia * acc + np.cross(rate, ctrl.inertia * rate)
    return tau, integral


def test_rate_controller_matches_numpy_reference(nominal):
    rng = np.random.default_rng(3)
    ctrl = BodyRateController(nominal, INERTIA, kp=(25.0, 25.0, 12.0), ki=(5.0, 5.0, 2.0), kd=(0.1, 0.1, 0.05),
                              physics_dt=DT, integral_limit=0.05)
    t_max = nominal.max_thrust
    mix_inv = np.linalg.inv(mixer_matrix(nominal))
    integral, prev = np.zeros(3), None
    for _ in range(200):
        rate_cmd, rate = rng.uniform(-8, 8, 3), rng.uniform(-8, 8, 3)
        thrust = rng.uniform(-0.1, 4.5 * t_max)
        tau, integral = _reference_rate_controller(ctrl, rate_cmd, rate, integral, prev)
        prev = rate
        delta = mix_inv @ np.concatenate([[0.0], tau])
        spread = delta.max() - delta.min()
        if spread > t_max:
            delta = delta * (t_max / spread)
        base = min(max(thrust / 4.0, -delta.min()), t_max - delta.max())
        expected = np.clip(base + delta, 0.0, t_max)
        got = ctrl(thrust, rate_cmd, rate)  # rpm; compare thrusts (sqrt amplifies rounding near 0)
        assert np.allclose(nominal.kf * got**2, expected, rtol=0, atol=1e-12 * t_max)
