"""Actuator models (sim2real.sim.actuators) against analytic responses, robot.yaml validation,
profile randomization of drive parameters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pybullet as p
import pytest
import yaml
from scipy import signal
from scipy.interpolate import CubicHermiteSpline

from sim2real.errors import RobotError
from sim2real.robots import load_robot
from sim2real.sim.actuators import Setpoint
from sim2real.sim.world import PhysicsWorld

INERTIA = 0.05  # kg·m² about the joint axis
URDF = f"""<?xml version="1.0"?>
<robot name="rotor">
  <link name="base"><inertial><mass value="0"/><inertia ixx="0" ixy="0" ixz="0" iyy="0" iyz="0" izz="0"/></inertial></link>
  <joint name="spin" type="revolute">
    <parent link="base"/><child link="disc"/><origin xyz="0 0 0.5"/><axis xyz="0 0 1"/>
    <limit lower="-10" upper="10" effort="100" velocity="100"/><dynamics damping="0" friction="0"/>
  </joint>
  <link name="disc">
    <inertial><mass value="2.0"/><origin xyz="0 0 0"/>
      <inertia ixx="0.03" ixy="0" ixz="0" iyy="0.03" iyz="0" izz="{INERTIA}"/></inertial>
    <collision><geometry><cylinder radius="0.2" length="0.02"/></geometry></collision>
  </link>
</robot>
"""


def _rotor(tmp_path: Path, actuator: dict, *, rate_hz: float = 1000.0, physics_hz: float = 1000.0,
           effort: float = 50.0, **extra) -> Path:
    """robot.yaml of a one-joint robot: a disc spinning about the vertical axis (gravity exerts
    no torque on it), driven by ``actuator``. ``rate_hz == physics_hz``: one step() per physics step."""
    (tmp_path / "rotor.urdf").write_text(URDF)
    doc = {
        "name": "rotor", "kind": "arm",
        "model": {"path": "rotor.urdf", "source": "local", "format": "urdf", "fixed_base": True},
        "control": {"mode": "position", "rate_hz": rate_hz, "physics_hz": physics_hz},
        "joints": [{"name": "spin", "lower": -10, "upper": 10, "max_velocity": 50, "max_effort": effort, "home": 0.0}],
        "links": ["disc"],
        "nominal": {"joint_damping": 0.0},
        "actuators": [{"joints": "all", **actuator}],
        **extra,
    }
    path = tmp_path / "robot.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _world(path: Path) -> PhysicsWorld:
    w = PhysicsWorld(load_robot(path), floor=False)
    # PyBullet's default link damping would add a drag the analytic model does not have
    p.changeDynamics(w.robot_id, 0, linearDamping=0.0, angularDamping=0.0, physicsClientId=w.client)
    w.set_joint_state([0.0])
    w.hold()
    return w


def _step_response(w: PhysicsWorld, target: float, n: int) -> np.ndarray:
    q = []
    for _ in range(n):
        w.step(np.array([target]))
        q.append(w.joint_state()[0][0])
    return np.array(q)


# ---------------------------------------------------------------------------- pd


def test_pd_step_response_is_the_second_order_system(tmp_path):
    """I q̈ = kp (q* − q) − kd q̇: the joint follows the continuous step response (1 ms physics
    steps), with the overshoot and the peak time of ζ = kd / (2 √(kp I)), ωn = √(kp / I)."""
    kp, kd = 20.0, 0.4  # ωn = 20 rad/s, ζ = 0.2
    w = _world(_rotor(tmp_path, {"model": "pd", "kp": kp, "kd": kd, "interpolation": "zoh"}))
    try:
        target, n = 0.3, 600
        q = _step_response(w, target, n)
        t = np.arange(1, n + 1) * w.physics_dt
        _, y = signal.step(([kp], [INERTIA, kd, kp]), T=t)
        assert np.abs(q - target * y).max() < 0.03 * target  # semi-implicit Euler leads by ~h/2
        zeta, wn = kd / (2 * np.sqrt(kp * INERTIA)), np.sqrt(kp / INERTIA)
        assert q.max() / target - 1.0 == pytest.approx(np.exp(-zeta * np.pi / np.sqrt(1 - zeta**2)), abs=0.02)
        assert t[q.argmax()] == pytest.approx(np.pi / (wn * np.sqrt(1 - zeta**2)), rel=0.02)
        # the drive torque is the PD law on the last state
        q1, qd1 = w.joint_state()
        w.step(np.array([target]))
        assert w.drive_torque[0] == pytest.approx(kp * (target - q1[0]) - kd * qd1[0], rel=1e-9, abs=1e-12)
    finally:
        w.close()


def test_effort_limit_saturates_the_torque_and_follows_motor_strength(tmp_path):
    w = _world(_rotor(tmp_path, {"model": "pd", "kp": 1000.0, "kd": 1.0}, effort=3.0))
    try:
        w.step(np.array([1.0]))
        assert w.drive_torque[0] == pytest.approx(3.0)
        # constant torque: q = ½ (τ/I) t² while saturated
        q = _step_response(w, 1.0, 49)[-1]
        assert q == pytest.approx(0.5 * 3.0 / INERTIA * (50 * w.physics_dt) ** 2, rel=0.03)
        w.set_joint("strength", np.array([0.5]))
        w.reset_control()
        w.step(np.array([-5.0]))
        assert w.drive_torque[0] == pytest.approx(-1.5)
    finally:
        w.close()


def test_dc_motor_torque_speed_line(tmp_path):
    stall, free = 4.0, 10.0
    w = _world(_rotor(tmp_path, {"model": "dc_motor", "kp": 1000.0, "kd": 0.0, "stall_torque": stall,
                                 "free_speed": free}, effort=3.0))
    try:
        motor = w.drive.groups[0]
        for speed in (0.0, 2.0, 5.0, 9.0, 12.0, -5.0):
            w.set_joint_state([0.0], [speed])
            w.hold()
            w.step(np.array([5.0]))  # far target: the demand saturates
            measured = w.joint_state()[1][0]
            # the last physics step's limit: τ_stall (1 − |ω|/ω_free), clipped to [0, effort]
            tau = w.drive_torque[0]
            assert 0.0 <= tau <= 3.0 + 1e-12
            assert motor.torque_limit(np.array([speed]))[0] == pytest.approx(
                min(max(stall * (1 - abs(speed) / free), 0.0), 3.0))
        # accelerating from rest the joint approaches the speed where the line meets the demand,
        # never the free speed: ω(t) → ω_free while τ > 0, here bounded by ω_free
        w.set_joint_state([0.0], [0.0])
        w.hold()
        v = []
        for _ in range(1500):
            w.step(np.array([9.0]))
            v.append(w.joint_state()[1][0])
        assert max(v) < free
        assert max(v) > 0.9 * free  # 1.5 s at a time constant I ω_free / τ_stall = 0.125 s
    finally:
        w.close()


def test_velocity_mode_pd_tracks_the_commanded_speed(tmp_path):
    w = PhysicsWorld(load_robot(_rotor(tmp_path, {"model": "pd", "kp": 20.0, "kd": 0.5})), floor=False)
    try:
        p.changeDynamics(w.robot_id, 0, linearDamping=0.0, angularDamping=0.0, physicsClientId=w.client)
        w.mode = "velocity"
        w.reset_control()
        w.hold()
        for _ in range(1000):  # time constant I / kd = 0.1 s: 10 time constants
            w.step(np.array([2.0]))
        assert w.joint_state()[1][0] == pytest.approx(2.0, rel=1e-3)
    finally:
        w.close()


# ---------------------------------------------------------------------------- setpoints


@pytest.mark.parametrize("kind", ["zoh", "linear", "cubic"])
def test_setpoint_interpolation_values_at_substeps(kind):
    n, h = 5, 0.01
    period = n * h
    sp = Setpoint(kind, n, h, 1)
    sp.reset(np.array([0.0]))
    got = []
    for c in (1.0, 3.0):
        sp.command(np.array([c]))
        got += [sp.advance() for _ in range(n)]
    got.append(sp.advance())  # past the segment: hold the command
    q = np.array([g[0][0] for g in got])
    qd = np.array([g[1][0] for g in got])
    s = np.arange(1, n + 1) / n
    if kind == "zoh":
        assert np.allclose(q, [1.0] * n + [3.0] * (n + 1)) and np.allclose(qd, 0.0)
    elif kind == "linear":
        assert np.allclose(q[:n], s * 1.0) and np.allclose(q[n:2 * n], 1.0 + s * 2.0)
        assert np.allclose(qd[:n], 1.0 / period) and np.allclose(qd[n:2 * n], 2.0 / period)
    else:  # Hermite through (0, 0) -> (1, 1/T) -> (3, 2/T), as a joint trajectory controller with velocities
        spline = CubicHermiteSpline([0.0, period, 2 * period], [0.0, 1.0, 3.0], [0.0, 1.0 / period, 2.0 / period])
        t = np.arange(1, 2 * n + 1) * h
        assert np.allclose(q[:2 * n], spline(t)) and np.allclose(qd[:2 * n], spline(t, 1))
    assert q[-1] == 3.0 and qd[-1] == 0.0


def test_linear_setpoint_in_the_world_ramps_over_the_control_period(tmp_path):
    """20 Hz commands, 1 kHz physics: the linear drive's first-step torque is the PD law on the
    ramp's first sample, zoh's on the full step."""
    torques = {}
    for kind in ("zoh", "linear"):
        w = _world(_rotor(tmp_path, {"model": "pd", "kp": 20.0, "kd": 0.4, "interpolation": kind}, rate_hz=20.0))
        try:
            w.step(np.array([0.5]), capture_at=1, capture=lambda w=w, kind=kind: torques.setdefault(kind, w.drive_torque[0]))
        finally:
            w.close()
    assert torques["zoh"] == pytest.approx(20.0 * 0.5)
    assert torques["linear"] == pytest.approx(20.0 * 0.5 / 50 + 0.4 * 0.5 / 0.05)


# ---------------------------------------------------------------------------- delay


def test_action_delay_holds_the_previous_command_for_delay_physics_steps(tmp_path):
    w = _world(_rotor(tmp_path, {"model": "pd", "kp": 20.0, "kd": 0.4}))
    try:
        w.action_delay = 7
        q = _step_response(w, 0.3, 12)
        assert np.all(q[:7] == 0.0)  # the hold command (0) acts until the delayed one arrives
        assert q[7] > 0.0
    finally:
        w.close()


# ---------------------------------------------------------------------------- gravity feed-forward


def _kuka_step_sag(masses: float, gravity_ff: bool) -> float:
    import dataclasses

    robot = load_robot("kuka_iiwa")
    acts = tuple(dataclasses.replace(a, gravity_ff=gravity_ff) for a in robot.actuators)
    w = PhysicsWorld(dataclasses.replace(robot, actuators=acts), floor=False)
    try:
        for name in robot.links:
            w.set_link(name, mass=w.nominal["links"][name]["mass"] * masses, inertia_scale=masses)
        w.set_joint_state(w.home)
        w.hold()
        for _ in range(40):  # 2 s: settled
            w.step(w.home)
        return float((w.home - w.joint_state()[0])[1])  # joint 2 carries the arm's weight
    finally:
        w.close()


def test_gravity_feedforward_uses_the_nominal_model():
    robot = load_robot("kuka_iiwa")
    kp2 = robot.actuator_value("position_gain", robot.joint_names[1])
    nominal = _kuka_step_sag(1.0, True)
    assert abs(nominal) < 1e-3  # nominal masses: the feed-forward holds the arm on target
    heavy = _kuka_step_sag(1.5, True)
    without = _kuka_step_sag(1.0, False)
    # heavier than nominal: the drive holds the extra half of the gravity torque with its kp alone
    assert heavy == pytest.approx(0.5 * without, rel=0.1)
    assert abs(without) == pytest.approx(29.7 / kp2, rel=0.15)  # |G2| ≈ 29.7 N·m at the home pose


def test_nominal_gravity_ignores_randomized_masses():
    from sim2real.sim.actuators.pd import NominalGravity

    w = PhysicsWorld(load_robot("kuka_iiwa"), floor=False)
    try:
        g = NominalGravity(w)
        before = g.torques(w.home)
        w.set_link("lbr_iiwa_link_4", mass=10.0)
        assert np.array_equal(g.torques(w.home), before)
        q = [float(x) for x in w.home]
        ref = p.calculateInverseDynamics(w.robot_id, q, [0.0] * 7, [0.0] * 7, physicsClientId=w.client)
        assert not np.allclose(ref, before)  # the world's own body is heavier now (its mirror is not)
        g.close()
    finally:
        w.close()


def test_mass_matrix_follows_mass_randomization():
    """The armature solve's mass matrix comes from a mirror rebuilt after mass changes (PyBullet's
    own inverse-dynamics model keeps the masses of its first use)."""
    w = PhysicsWorld(load_robot("kuka_iiwa"), floor=False)
    try:
        q = [float(x) for x in w.home]
        light = np.array(w._mirror.mass_matrix(q))
        w.set_link("lbr_iiwa_link_4", mass=30.0)
        heavy = np.array(w._mirror.mass_matrix(q))
        # reference: a body that had the heavy link before PyBullet's first mass-matrix call
        cid = p.connect(p.DIRECT)
        try:
            body = p.loadURDF(w.robot.model_path(), useFixedBase=True, flags=p.URDF_USE_INERTIA_FROM_FILE,
                              physicsClientId=cid)
            for name in w.robot.links:
                link = w.current["links"][name]
                p.changeDynamics(body, w.link_index[name], mass=link["mass"],
                                 localInertiaDiagonal=w._effective_inertia(name), physicsClientId=cid)
            ref = np.array(p.calculateMassMatrix(body, q, physicsClientId=cid))
        finally:
            p.disconnect(cid)
        assert np.allclose(heavy, ref) and not np.allclose(heavy, light)
        w.set_link("lbr_iiwa_link_4", mass=w.nominal["links"]["lbr_iiwa_link_4"]["mass"])
        assert np.allclose(np.array(w._mirror.mass_matrix(q)), light)
    finally:
        w.close()


# ---------------------------------------------------------------------------- robot.yaml


@pytest.mark.parametrize("actuator,key,message", [
    ({"model": "servo"}, "actuators[0].model", "expected one of"),
    ({"model": "pd", "kp": 1.0}, "actuators[0].kd", "missing required key"),
    ({"model": "pd", "kp": [1.0, 2.0], "kd": 1.0}, "actuators[0].kp", "one per joint of the group"),
    ({"model": "pd", "kp": 1.0, "kd": -1.0}, "actuators[0].kd", "non-negative"),
    ({"model": "pd", "kp": 1.0, "kd": 1.0, "gain": 2}, "actuators[0].gain", "unknown key"),
    ({"model": "pd", "kp": 1.0, "kd": 1.0, "interpolation": "spline"}, "actuators[0].interpolation", "zoh"),
    ({"model": "pd", "kp": 1.0, "kd": 1.0, "gravity_ff": "yes"}, "actuators[0].gravity_ff", "true or false"),
    ({"model": "dc_motor", "kp": 1.0, "kd": 1.0, "stall_torque": 2.0, "free_speed": 0},
     "actuators[0].free_speed", "positive"),
    ({"model": "pd", "kp": 1.0, "kd": 1.0, "joints": ["elbow"]}, "actuators[0].joints", "unknown controlled joint"),
    ({"model": "actuator_net", "net": "missing.pt"}, "actuators[0].net", "not found"),
    ({"model": "pybullet_velocity"}, "actuators[0].model", "cannot follow control.mode"),
])
def test_robot_yaml_actuator_errors_name_file_and_key(tmp_path, actuator, key, message):
    path = _rotor(tmp_path, actuator)
    with pytest.raises(RobotError) as err:
        load_robot(path)
    text = str(err.value)
    assert str(path) in text and key in text and message in text


def test_every_joint_needs_exactly_one_group(tmp_path):
    path = _rotor(tmp_path, {"model": "pd", "kp": 1.0, "kd": 1.0})
    doc = yaml.safe_load(path.read_text())
    doc["actuators"].append({"joints": ["spin"], "model": "torque"})
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(RobotError, match=r"actuators\[1\]\.joints: joint 'spin' is already driven"):
        load_robot(path)
    doc["actuators"] = []
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(RobotError, match="non-empty list"):
        load_robot(path)


def test_bad_actuator_exits_2_from_the_cli_with_one_line(tmp_path):
    path = _rotor(tmp_path, {"model": "pd", "kp": "stiff", "kd": 1.0})
    proc = subprocess.run([sys.executable, "-m", "sim2real", "profile", "validate", "nominal", "--robot", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "actuators[0].kp" in lines[0] and "Traceback" not in proc.stderr


def test_per_joint_lists_follow_the_groups_joint_order():
    robot = load_robot("kuka_iiwa")
    assert robot.actuators[0].model == "pd" and robot.actuators[0].gravity_ff
    names = robot.joint_names
    kp = [robot.actuator_value("position_gain", n) for n in names]
    assert kp == [1750, 3300, 720, 780, 140, 130, 120]
    from sim2real.actuator_config import parse_actuators

    groups = parse_actuators([{"joints": [names[1], names[0]], "model": "pd", "kp": [2.0, 1.0], "kd": 0.0},
                              {"joints": names[2:], "model": "pd", "kp": 3.0, "kd": 0.0}], names, "position",
                             Path("robot.yaml"))
    assert groups[0].joints == tuple(names[:2]) and groups[0].values["position_gain"] == (1.0, 2.0)


# ---------------------------------------------------------------------------- randomization


def test_profile_randomization_of_kp_changes_the_response(tmp_path):
    from sim2real.envs.arm_reach import ArmReachEnv

    def first_period(profile):
        env = ArmReachEnv("kuka_iiwa", profile=profile, start_noise=0.0)
        try:
            env.reset(seed=0)
            kp = env.world.drive.groups[0].kp.copy()
            q0 = env.world.joint_state()[0]
            env.step(np.array([1.0, 0, 0, 0, 0, 0, 0]))
            return kp, env.world.joint_state()[0][0] - q0[0]
        finally:
            env.close()

    kp_nom, moved_nom = first_period("nominal")
    soft = {"params": {"position_gain": {"distribution": "constant", "value": 0.25, "operation": "scale"},
                       "velocity_gain": {"distribution": "constant", "value": 0.25, "operation": "scale"}}}
    kp_soft, moved_soft = first_period(soft)
    assert np.allclose(kp_soft, 0.25 * kp_nom)
    assert moved_soft < 0.8 * moved_nom  # a softer servo lags further behind the same command


def test_stall_torque_and_free_speed_are_profile_kinds(tmp_path):
    from sim2real.profiles import load_profile
    from sim2real.sim.runner import RandomizationRunner

    path = _rotor(tmp_path, {"model": "dc_motor", "kp": 100.0, "kd": 1.0, "stall_torque": 4.0, "free_speed": 10.0})
    robot = load_robot(path)
    w = PhysicsWorld(robot, floor=False)
    try:
        prof = load_profile({"params": {
            "stall_torque": {"distribution": "constant", "value": 0.5, "operation": "scale"},
            "free_speed": {"distribution": "constant", "value": 3.0, "operation": "abs"}}}, robot=robot)
        RandomizationRunner(w, prof).reset(np.random.default_rng(0))
        motor = w.drive.groups[0]
        assert motor.stall_torque[0] == pytest.approx(2.0) and motor.free_speed[0] == pytest.approx(3.0)
        assert motor.torque_limit(np.array([1.5]))[0] == pytest.approx(1.0)
        w.restore_nominal()
        w.reset_control()
        assert motor.stall_torque[0] == pytest.approx(4.0)
    finally:
        w.close()


def test_pybullet_position_model_is_todays_motor(tmp_path):
    """Selecting ``pybullet_position`` reproduces the world's PyBullet position motor bit for bit."""
    path = _rotor(tmp_path, {"model": "pybullet_position", "position_gain": 0.3, "velocity_gain": 1.0}, rate_hz=20.0)
    doc = yaml.safe_load(path.read_text())
    del doc["actuators"]
    (tmp_path / "plain.yaml").write_text(yaml.safe_dump(doc))
    traces = []
    for f in (path, tmp_path / "plain.yaml"):
        w = PhysicsWorld(load_robot(f), floor=False)
        assert w.drive.kind == "motor"
        w.set_joint_state([0.0])
        w.hold()
        traces.append(_step_response(w, 0.5, 5))
        w.close()
    assert np.array_equal(traces[0], traces[1]) and traces[0][0] > 0.4  # the stiff constraint motor


def test_actuator_net_group_drives_the_joint_with_the_nets_torque(tmp_path):
    """A robot.yaml ``actuator_net`` group: each physics step's torque is the net's output for the
    history of (command − q, q̇) the joint produced, clipped to the effort limit."""
    from sim2real.sim.actuators.net import ActuatorNetActuator, ActuatorNetModel, save

    rng = np.random.default_rng(0)
    h = 3
    sizes = [2 * h, 8, 1]
    model = ActuatorNetModel(
        joints=["spin"], history=h, spacing_s=0.002,
        weights=[rng.normal(0, 0.5, (1, a, b)) for a, b in zip(sizes[:-1], sizes[1:])],
        biases=[rng.normal(0, 0.1, (1, 1, b)) for b in sizes[1:]],
        in_mean=np.zeros((1, 2 * h)), in_std=np.full((1, 2 * h), 0.2), out_mean=np.zeros(1), out_std=np.full(1, 2.0))
    save(tmp_path / "net.pt", model)
    w = _world(_rotor(tmp_path, {"model": "actuator_net", "net": "net.pt"}, effort=1.5))
    try:
        assert w.drive.kind == "computed"
        ref = ActuatorNetActuator(model)
        ref.reset([0.0], [0.0])
        for k in range(60):
            target = np.array([0.4 * np.sin(0.1 * k)])
            q, qd = w.joint_state()
            expected = np.clip(ref.torque(target, q, qd, w.physics_dt), -1.5, 1.5)
            w.step(target)
            assert w.drive_torque == pytest.approx(expected, abs=1e-12)
        assert np.abs(w.joint_state()[0]).max() > 0.0
    finally:
        w.close()


def test_calibration_parameters_reach_the_drive(tmp_path):
    """``--params kp,stall`` scale the drive's kp and stall torque in the replay world; ``stall``
    needs a dc_motor joint."""
    from sim2real.errors import ConfigError
    from sim2real.sysid.params import apply_params, parse_params

    robot = load_robot(_rotor(tmp_path, {"model": "dc_motor", "kp": 100.0, "kd": 1.0, "stall_torque": 4.0,
                                         "free_speed": 10.0}))
    specs = parse_params("kp,stall,free_speed", robot)
    assert [s.targets for s in specs] == [("spin",)] * 3
    w = PhysicsWorld(robot, floor=False)
    try:
        apply_params(w, specs, [0.5, 2.0, 0.5])
        motor = w.drive.groups[0]
        assert (motor.kp[0], motor.stall_torque[0], motor.free_speed[0]) == (50.0, 8.0, 5.0)
    finally:
        w.close()
    with pytest.raises(ConfigError, match="stall needs joints driven by a dc_motor"):
        parse_params("stall", load_robot("kuka_iiwa"))
