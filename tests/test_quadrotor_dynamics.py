"""Rotor model of sim2real.sim.quadrotor on a bare PyBullet world (no env, no profile)."""

from __future__ import annotations

import math

import numpy as np
import pybullet as p
import pybullet_data
import pytest

from sim2real.errors import RobotError
from sim2real.robots import load_robot
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
