"""PhysicsWorld: loading, name checks, nominal physics, control modes, latency, COM rebuild."""

from __future__ import annotations

import dataclasses

import numpy as np
import pybullet as p
import pytest
import yaml

from sim2real.actuator_config import default_actuators
from sim2real.errors import RobotError
from sim2real.robots import ControlSpec, load_robot
from sim2real.sim.world import PhysicsWorld


@pytest.fixture(scope="module")
def kuka():
    return load_robot("kuka_iiwa")


@pytest.fixture(scope="module")
def kuka_motor(kuka):
    """The iiwa driven by PyBullet's constraint motors (``pybullet_position``), no armature."""
    return dataclasses.replace(kuka, actuators=default_actuators("position", kuka.joint_names, 0.3, 1.0),
                               nominal={k: v for k, v in kuka.nominal.items() if k != "armature"})


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
        # armature 1.0 on every joint, in joint space (torque mode; tests/test_sim_armature.py)
        assert np.allclose(w.current["joints"]["armature"], 1.0) and w._armature == [1.0, 1.0, 1.0]
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


@pytest.mark.parametrize("mode,delay", [("position", 0), ("position", 5), ("velocity", 17), ("position", 24)])
def test_run_based_step_matches_the_per_physics_step_loop(kuka_motor, mode, delay):
    """Position/velocity control steps in runs of physics steps between queued commands; the
    result must be bit-identical to advancing and checking the queue every physics step."""
    kuka = kuka_motor
    rng = np.random.default_rng(3)
    cmds = [rng.uniform(-0.5, 0.5, 7) * (1.0 if mode == "position" else 2.0) for _ in range(8)]
    traces, counts, captured = [], [], []
    for per_step in (False, True):
        w = PhysicsWorld(kuka)
        w.mode = mode
        w.reset_control()
        w.set_joint_state(w.home)
        w.hold()
        w.action_delay = delay
        trace, seen = [], []
        for k, c in enumerate(cmds):
            cmd = w.home + c if mode == "position" else c
            capture_at = 1 + k % w.substeps

            def capture(w=w, seen=seen):
                seen.append((w.physics_step_count, w.joint_state()[0]))
            if per_step:
                w._queue.append((w.physics_step_count + w.action_delay, cmd))
                w._step_per_physics_step(capture_at, capture)
            else:
                w.step(cmd, capture_at=capture_at, capture=capture)
            trace.append(np.concatenate(w.joint_state()))
        traces.append(np.array(trace))
        counts.append(w.physics_step_count)
        captured.append(seen)
        w.close()
    assert np.array_equal(traces[0], traces[1])
    assert counts[0] == counts[1] == len(cmds) * kuka.control.substeps
    assert [c for c, _ in captured[0]] == [c for c, _ in captured[1]]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(captured[0], captured[1]))
    substeps = kuka.control.substeps
    assert [c for c, _ in captured[0]] == [k * substeps + 1 + k % substeps for k in range(len(cmds))]


def _rollout(w, steps=20):
    w.set_joint_state(w.home + 0.2)
    w.hold()
    out = []
    for _ in range(steps):
        w.step(np.zeros(7))
        out.append(np.concatenate(w.joint_state()))
    return np.array(out)


def test_headless_rebuild_has_identical_physics_and_an_invisible_placeholder(kuka):
    """``headless`` only changes what the renderer gets for a rebuilt body, never the physics."""
    offsets = {"lbr_iiwa_link_3": np.array([0.01, -0.02, 0.005]), "lbr_iiwa_link_6": np.array([0.0, 0.0, 0.02])}
    runs, visuals = {}, {}
    for headless in (False, True):
        w = _torque_world(kuka)
        w.headless = headless
        w.set_com_offsets(offsets)
        runs[headless] = _rollout(w)
        visuals[headless] = p.getVisualShapeData(w.robot_id, physicsClientId=w.client)
        w.set_com_offsets({"lbr_iiwa_link_3": np.array([0.0, 0.0, -0.01])})  # a second rebuild works too
        assert p.getNumJoints(w.robot_id, physicsClientId=w.client) == w.n_model_joints
        w.close()
    assert np.array_equal(runs[False], runs[True])
    # default mode: PyBullet turns the collision meshes into the rendered geometry (slow to build)
    assert visuals[False] and all(v[2] == p.GEOM_MESH and v[4].endswith(b".stl") for v in visuals[False])
    # headless: one invisible 0.1 mm box per link (base included), nothing for the renderer to convert
    assert len(visuals[True]) == len({v[1] for v in visuals[True]}) >= kuka.n_joints + 1
    assert all(v[2] == p.GEOM_BOX and v[7][3] == 0.0 and max(v[3]) <= 2e-4 for v in visuals[True])


def test_flush_skips_unchanged_links_but_pybullet_always_matches_the_world(kuka):
    """``_send_link`` skips a ``changeDynamics`` whose values PyBullet already has; after restores,
    re-draws, partial unbatched sets and rebuilds PyBullet must still hold ``world.current``."""
    w = _torque_world(kuka)

    def check():
        for name in w.link_names:
            d = p.getDynamicsInfo(w.robot_id, w.link_index[name], physicsClientId=w.client)
            c = w.current["links"][name]
            assert d[0] == pytest.approx(c["mass"]) and d[1] == pytest.approx(c["lateral_friction"]), name
            assert np.allclose(d[2], w._effective_inertia(name)), name
    try:
        rng = np.random.default_rng(0)
        for k in range(6):
            with w.batch():
                w.restore_nominal()
                if k == 3:
                    w.set_com_offsets({"lbr_iiwa_link_2": np.array([0.0, 0.01, 0.0])})
                for name in w.link_names[: 2 + k % 3]:  # a varying subset is re-drawn
                    w.set_link(name, mass=w.nominal["links"][name]["mass"] * rng.uniform(0.5, 2.0),
                               lateral_friction=rng.uniform(0.2, 1.0))
            check()
            w.set_link("lbr_iiwa_link_5", lateral_friction=0.33)  # unbatched partial update
            check()
    finally:
        w.close()


def test_physics_step_hook_runs_before_each_physics_step(kuka):
    w = PhysicsWorld(kuka)
    try:
        w.set_joint_state(w.home)
        w.hold()
        seen: list[tuple[int, float]] = []
        w.physics_step_hook = lambda: seen.append(
            (w.physics_step_count, p.getJointState(w.robot_id, 0, physicsClientId=w.client)[0]))
        w.action_delay = 1
        cmd = w.home + 0.3
        w.step(cmd)
        w.step(cmd)
        n = w.substeps
        assert [c for c, _ in seen] == list(range(2 * n))  # before the step that makes count c + 1
        assert len({q for _, q in seen}) > 1  # the physics moved in between
        # the delayed command is issued before the hook of its physics step
        order = []
        w.physics_step_hook = lambda: order.append(w.active.copy())
        w.step(w.home)
        assert np.allclose(order[0], cmd) and np.allclose(order[1], w.home)
        w.physics_step_hook = None  # back to the run-stepping path
        before = w.physics_step_count
        w.step(w.home)
        assert w.physics_step_count == before + n
    finally:
        w.close()


def test_world_without_controlled_joints():
    """A plain PhysicsWorld holds a joint-less robot (the quadrotor): empty joint state, hold, step."""
    robot = load_robot("quadrotor")
    assert robot.n_joints == 0
    w = PhysicsWorld(robot)
    try:
        q, qd = w.joint_state()
        assert q.shape == (0,) and qd.shape == (0,)
        w.hold()
        z0 = w.base_pose()[0][2]
        w.step(np.zeros(0))
        assert w.physics_step_count == w.substeps and w.base_pose()[0][2] < z0  # falls
        for mode in ("torque", "velocity"):
            w.mode = mode
            w.reset_control()
            w.hold()
            w.step(np.zeros(0))
    finally:
        w.close()
