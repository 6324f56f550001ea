"""PhysicsWorld: loading, name checks, nominal physics, control modes, latency, COM rebuild."""

from __future__ import annotations

import dataclasses

import numpy as np
import pybullet as p
import pytest
import yaml

from sim2real.errors import RobotError
from sim2real.robots import ControlSpec, load_robot
from sim2real.sim.world import PhysicsWorld


@pytest.fixture(scope="module")
def kuka():
    return load_robot("kuka_iiwa")


def _torque_world(robot, rate_hz=None, gravity=True):
    if rate_hz is not None:
        robot = dataclasses.replace(robot, control=ControlSpec(mode="torque", rate_hz=rate_hz,
                                                               physics_hz=robot.control.physics_hz))
    w = PhysicsWorld(robot)
    w.mode = "torque"
    w.reset_control()
    if not gravity:
        w.set_gravity(np.zeros(3))
    w.set_joint_state(w.home)
    w.hold()
    return w


def test_loads_robots_and_maps_names(kuka):
    w = PhysicsWorld(kuka)
    try:
        assert list(w.joint_indices) == list(range(7))
        assert w.link_index["base"] == -1 and w.link_index["lbr_iiwa_link_7"] == 6
        assert w.substeps == 12
        q, qd = w.joint_state()
        assert q.shape == (7,) and qd.shape == (7,)
    finally:
        w.close()


def test_unknown_link_in_robot_yaml_is_a_robot_error(kuka, tmp_path):
    raw = yaml.safe_load(kuka.file.read_text())
    raw["links"] = [*raw["links"], "no_such_link"]
    f = tmp_path / "robot.yaml"
    f.write_text(yaml.safe_dump(raw))
    with pytest.raises(RobotError, match="no_such_link"):
        PhysicsWorld(load_robot(f))


def test_nominal_from_robot_yaml_is_applied():
    hopper = load_robot("hopper")
    w = PhysicsWorld(hopper)
    try:
        cid = w.client
        torso = p.getDynamicsInfo(w.robot_id, w.link_index["torso"], physicsClientId=cid)
        assert torso[0] == pytest.approx(6.0)
        assert p.getDynamicsInfo(w.floor_id, -1, physicsClientId=cid)[1] == pytest.approx(2.0)
        assert np.allclose(w.current["joints"]["damping"], 2.5)
        # armature 1.0 sits on the thigh's inertia about the joint axis (y)
        thigh = p.getDynamicsInfo(w.robot_id, w.link_index["thigh"], physicsClientId=cid)[2]
        assert thigh[1] == pytest.approx(w.nominal["links"]["thigh"]["inertia"][1] + 1.0, rel=1e-4)
    finally:
        w.close()


def test_torque_mode_disables_default_motors(kuka):
    w = _torque_world(kuka)
    try:
        q0, _ = w.joint_state()
        for _ in range(5):
            w.step(np.zeros(7))
        q1, qd1 = w.joint_state()
        assert np.abs(q1 - q0).max() > 1e-3  # falls under gravity: nothing holds it
    finally:
        w.close()


def test_position_mode_tracks_target(kuka):
    w = PhysicsWorld(kuka)
    try:
        w.set_joint_state(w.home)
        w.hold()
        target = w.home + 0.2
        for _ in range(40):
            w.step(target)
        assert np.abs(w.joint_state()[0] - target).max() < 0.02
    finally:
        w.close()


@pytest.mark.parametrize("delay", [1, 5, 13])
def test_action_latency_is_exact_in_physics_steps(kuka, delay):
    """Without gravity the arm rests until the command arrives, so the delayed run is the
    undelayed one shifted by exactly ``delay`` physics steps."""
    cmd = np.array([30.0, -20.0, 10.0, 5.0, 2.0, 1.0, 1.0])
    traces = []
    for d in (0, delay):
        w = _torque_world(kuka, rate_hz=kuka.control.physics_hz, gravity=False)  # 1 physics step per control step
        w.action_delay = d
        trace = []
        for _ in range(30):
            w.step(cmd)
            trace.append(w.joint_state()[0])
        traces.append(np.array(trace))
        w.close()
    undelayed, delayed = traces
    assert np.array_equal(delayed[delay:], undelayed[:-delay])
    assert np.allclose(delayed[:delay], delayed[0]) and not np.allclose(undelayed[delay], undelayed[0])


def test_com_rebuild_keeps_dynamics_and_offset_changes_them(kuka):
    def run(w):
        w.set_joint_state(w.home + 0.2)
        w.hold()
        out = []
        for _ in range(3):
            w.step(np.zeros(7))
            out.append(w.joint_state()[0])
        return np.array(out)

    w = _torque_world(kuka)
    try:
        ref = run(w)
        w.set_com_offsets({"lbr_iiwa_link_4": np.array([0.0, 0.0, 1e-9])})  # rebuilt body, ~same COM
        assert np.abs(run(w) - ref).max() < 1e-4
        moved = w.link_index["lbr_iiwa_link_4"]
        w.set_com_offsets({"lbr_iiwa_link_4": np.array([0.0, 0.08, 0.0])})
        moved_com = p.getDynamicsInfo(w.robot_id, moved, physicsClientId=w.client)[3]
        assert moved_com[1] == pytest.approx(0.067 + 0.08, abs=1e-6)
        assert np.abs(run(w) - ref).max() > 1e-3
        w.set_com_offsets({})
        assert np.abs(run(w) - ref).max() < 1e-4
        # masses survive the rebuild
        assert p.getDynamicsInfo(w.robot_id, moved, physicsClientId=w.client)[0] == pytest.approx(2.7)
    finally:
        w.close()


def test_set_command_queue_primes_in_flight_commands(kuka):
    w = _torque_world(kuka, rate_hz=kuka.control.physics_hz, gravity=False)
    try:
        w.action_delay = 3  # commands issued from now on arrive after the primed one
        now = w.physics_step_count
        w.set_command_queue(np.zeros(7), [(now + 2, np.full(7, 20.0))])
        w.step(np.zeros(7))  # step 0: zero torque acting
        w.step(np.zeros(7))  # step 1
        assert np.allclose(w.joint_state()[1], 0.0)
        w.step(np.zeros(7))  # step 2: the queued torque arrives
        assert np.all(np.abs(w.joint_state()[1]) > 1e-4)
    finally:
        w.close()
