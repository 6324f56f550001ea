"""Deployment node logic with an in-process fake transport (no DDS): observation building,
safety layer, soft start / start gate, outputs for arms and drones, deterministic clock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pytest

from sim2real.errors import ConfigError
from sim2real.robots import load_robot
from sim2real.ros2.observation import JointStateReader, ObservationBuilder, quad_state_from_odometry, quat_to_matrix
from sim2real.ros2.policy import parse_policy_spec
from sim2real.ros2.transport import Transport

from test_ros2_support import sidecar_dict

dds_types = pytest.importorskip("sim2real.ros2.dds_types")


class FakeTransport(Transport):
    """Delivers messages synchronously; records what was published per topic."""

    kind = "fake"

    def __init__(self) -> None:
        self.subs: dict[str, tuple[str, Callable[[Any], None], bool]] = {}
        self.published: dict[str, list[dict[str, Any]]] = {}
        self.clock = 0

    def subscribe(self, topic: str, type_name: str, callback: Callable[[Any], None], *, sensor: bool = False) -> None:
        self.subs[topic] = (type_name, callback, sensor)

    def advertise(self, topic: str, type_name: str) -> Callable[[Mapping[str, Any]], None]:
        self.published.setdefault(topic, [])
        cls = dds_types.MESSAGE_TYPES[type_name]
        return lambda fields: (dds_types.build(cls, fields), self.published[topic].append(dict(fields)))[1]

    def deliver(self, topic: str, fields: Mapping[str, Any]) -> None:
        type_name, callback, _ = self.subs[topic]
        callback(dds_types.build(dds_types.MESSAGE_TYPES[type_name], fields))

    def now_ns(self) -> int:
        return self.clock

    def close(self) -> None:
        pass


KUKA = load_robot("kuka_iiwa")
HOME = np.array([j.home for j in KUKA.joints])
SHUFFLE = [3, 0, 6, 2, 5, 1, 4]


def joint_state(q: np.ndarray, names: list[str] | None = None, extra: bool = True) -> dict[str, Any]:
    """JointState in a shuffled order with an extra uncontrolled joint."""
    ros = list(KUKA.ros2.joint_names)
    order = SHUFFLE if names is None else list(range(len(names)))
    msg_names = [ros[i] for i in order] + (["gripper"] if extra else [])
    pos = [float(q[i]) for i in order] + ([0.04] if extra else [])
    return {"name": msg_names, "position": pos, "velocity": [0.0] * len(pos)}


def make_node(policy: Callable[[np.ndarray], np.ndarray], layout: Any = None, mode: str = "joint_position_delta",
              history: int = 1, **params: Any) -> tuple[Any, FakeTransport]:
    from sim2real.ros2.node import DeployNode

    raw = sidecar_dict(layout=layout or [["joint_position", 7], ["joint_velocity", 7]], mode=mode,
                       history=history, rate=50.0)
    spec = parse_policy_spec(raw, "policy.yaml")
    transport = FakeTransport()
    base = {"robot": "kuka_iiwa", "safety.soft_start_s": 0.2}
    node = DeployNode({**base, **params}, transport=transport, policy=policy, spec=spec)
    node.trace = []
    return node, transport


def feed(node: Any, transport: FakeTransport, q: np.ndarray, t: float, monkeypatch: Any) -> None:
    monkeypatch.setattr("sim2real.ros2.node.time.monotonic", lambda: t)
    transport.deliver("/joint_states", joint_state(q))


COMMANDS = "/forward_position_controller/commands"


def test_joint_state_reader_reorders_by_name() -> None:
    reader = JointStateReader(KUKA.ros2.joint_names)
    q = np.arange(7) * 0.1
    msg = dds_types.build(dds_types.JointState, joint_state(q))
    state = reader.read(msg, arrival=1.0)
    np.testing.assert_allclose(state.q, q)
    missing = dds_types.build(dds_types.JointState, {"name": ["iiwa_joint_1"], "position": [0.0]})
    assert reader.read(missing, 2.0) is None


def test_observation_layout_history_and_fk() -> None:
    from sim2real.ros2.kinematics import UrdfChain
    from sim2real.ros2.observation import ArmState

    raw = sidecar_dict(layout=[["joint_position", 7], ["ee_position", 3], ["target_delta", 3],
                               ["previous_action", 7]], history=3, clip=1.5)
    spec = parse_policy_spec(raw, "policy.yaml")
    fk = UrdfChain(KUKA.model_path())
    builder = ObservationBuilder(spec, n_joints=7, fk=fk, ee_link=KUKA.end_effector_link, joint_names=KUKA.joint_names)
    state = ArmState(q=HOME.copy(), qd=np.zeros(7), stamp_ns=0, arrival=0.0)
    goal = np.array([0.5, 0.0, 0.5])
    frame = builder.frame(state, goal, np.full(7, 0.25))
    ee = fk.link_position(dict(zip(KUKA.joint_names, HOME)), KUKA.end_effector_link)
    np.testing.assert_allclose(frame[7:10], np.clip(ee, -1.5, 1.5))
    np.testing.assert_allclose(frame[10:13], np.clip(goal - ee, -1.5, 1.5))
    np.testing.assert_allclose(frame[13:], 0.25)
    first = builder.push(frame)
    np.testing.assert_allclose(first, np.tile(frame, 3))  # history starts full of the first frame
    second = builder.push(frame + 1.0)
    np.testing.assert_allclose(second[-20:], frame + 1.0)  # newest last
    np.testing.assert_allclose(second[:20], frame)
    with pytest.raises(ValueError):
        builder.frame(state, None, np.zeros(7))


def test_odometry_velocity_rotated_to_world() -> None:
    yaw = np.pi / 2
    odom = dds_types.build(dds_types.Odometry, {"pose": {"pose": {"position": {"x": 1.0, "y": 2.0, "z": 3.0},
                                                                  "orientation": {"z": np.sin(yaw / 2), "w": np.cos(yaw / 2)}}},
                                                "twist": {"twist": {"linear": {"x": 1.0}, "angular": {"z": 0.5}}}})
    state = quad_state_from_odometry(odom, 0.0)
    np.testing.assert_allclose(state.linear_velocity, [0.0, 1.0, 0.0], atol=1e-12)  # body x is world y
    np.testing.assert_allclose(state.angular_velocity, [0.0, 0.0, 0.5])
    np.testing.assert_allclose(quat_to_matrix(state.orientation) @ [1, 0, 0], [0, 1, 0], atol=1e-12)


def test_crazyswarm_odometry_twist_is_world_frame() -> None:
    """Crazyswarm2's /cfX/odom: twist.linear is the world-frame velocity, twist.angular is not filled."""
    def odom_msg(yaw: float, t: float) -> Any:
        return dds_types.build(dds_types.Odometry, {
            "header": {"stamp": {"sec": int(t), "nanosec": int(round((t % 1) * 1e9))}},
            "pose": {"pose": {"orientation": {"z": np.sin(yaw / 2), "w": np.cos(yaw / 2)}}},
            "twist": {"twist": {"linear": {"x": 1.0}}}})

    first = quad_state_from_odometry(odom_msg(np.pi / 2, 10.0), 0.0, "world")
    np.testing.assert_allclose(first.linear_velocity, [1.0, 0.0, 0.0])  # not rotated by the 90 deg yaw
    np.testing.assert_allclose(first.angular_velocity, 0.0)
    second = quad_state_from_odometry(odom_msg(np.pi / 2 + 0.01, 10.01), 0.01, "world", first)
    np.testing.assert_allclose(second.angular_velocity, [0.0, 0.0, 1.0], atol=1e-4)  # from the orientations
    from sim2real.ros2.params import validate_params

    assert validate_params({})["odometry.twist_frame"] == "body"


def test_soft_start_gate_and_policy_engagement(monkeypatch: Any) -> None:
    node, tr = make_node(lambda obs: np.full(7, 1.0))
    q0 = HOME + 0.05
    feed(node, tr, q0, 0.0, monkeypatch)
    first = node.tick(0.0)
    assert node.controller.phase == "soft_start" and not first.engaged
    np.testing.assert_allclose(tr.published[COMMANDS][-1]["data"], q0, atol=1e-9)
    feed(node, tr, q0, 0.1, monkeypatch)
    mid = node.tick(0.1).command  # halfway through the 0.2 s cosine
    np.testing.assert_allclose(mid, q0 + 0.5 * (HOME - q0), atol=1e-9)
    feed(node, tr, HOME + 0.01, 0.2, monkeypatch)
    result = node.tick(0.21)  # soft start done, pose within tolerance: engaged on this tick
    assert node.controller.phase == "running" and result.engaged
    # delta action 1.0 * scale 0.05 from the measured pose, limited to max_velocity * period
    # from the previous command (the soft-start midpoint HOME + 0.025)
    step = np.array([j.max_velocity for j in KUKA.joints]) * 0.02
    expected = np.minimum(HOME + 0.01 + 0.05, HOME + 0.025 + step)
    np.testing.assert_allclose(result.command, expected, atol=1e-9)
    assert node.safety.counts["rate_limit"] == 1  # joints 1-2 (1.71 rad/s) were limited


def test_start_gate_blocks_policy_until_pose_is_reached(monkeypatch: Any) -> None:
    calls = []
    node, tr = make_node(lambda obs: calls.append(1) or np.zeros(7), **{"safety.soft_start_s": 0.0})
    for k in range(100):  # robot far from the start pose, does not move
        feed(node, tr, HOME + 0.5, 0.02 * k, monkeypatch)
        node.tick(0.02 * k)
    assert not calls and node.controller.phase == "gate"
    assert node.safety.counts["start_gate"] == 1  # counted once, after the settle time
    # commands move towards the start pose no faster than the rate limit
    data = np.array([m["data"] for m in tr.published[COMMANDS]])
    step = np.array([j.max_velocity for j in KUKA.joints]) * 0.02
    assert np.all(np.abs(np.diff(data, axis=0)) <= step + 1e-12)


def test_nan_state_and_action_latch_until_operator_resume(monkeypatch: Any) -> None:
    calls: list[int] = []
    outputs = {1: np.full(7, 0.1), 2: np.full(7, np.nan)}
    node, tr = make_node(lambda obs: calls.append(1) or outputs.get(len(calls), np.full(7, 0.1)),
                         **{"safety.soft_start_s": 0.0})
    feed(node, tr, HOME, 0.0, monkeypatch)
    good = node.tick(0.0)
    assert good.engaged
    bad_q = HOME.copy()
    bad_q[2] = np.nan
    feed(node, tr, bad_q, 0.02, monkeypatch)
    held = node.tick(0.02)
    assert held.hold and node.safety.counts["nan_observation"] == 1
    np.testing.assert_array_equal(held.command, good.command)
    for k in range(2, 6):  # finite states again: still holding, the fault waits for the operator
        feed(node, tr, HOME, 0.02 * k, monkeypatch)
        assert node.tick(0.02 * k).hold
    assert len(calls) == 1 and node.phase == "holding: nan_observation (resume on /sim2real/resume)"
    tr.deliver("/sim2real/resume", {"data": True})
    feed(node, tr, HOME, 0.12, monkeypatch)
    held = node.tick(0.12)  # resumed; the policy returns NaN now: hold again
    assert held.hold and node.safety.counts["nan_action"] == 1 and len(calls) == 2
    feed(node, tr, HOME, 0.14, monkeypatch)
    assert node.tick(0.14).hold
    tr.deliver("/sim2real/resume", {"data": True})
    feed(node, tr, HOME, 0.16, monkeypatch)
    assert node.tick(0.16).engaged and node.phase == "running"
    assert all(np.all(np.isfinite(m["data"])) for m in tr.published[COMMANDS])


def test_auto_resume_after_fresh_states(monkeypatch: Any) -> None:
    node, tr = make_node(lambda obs: np.zeros(7), **{"safety.soft_start_s": 0.0, "safety.resume": "auto",
                                                     "safety.resume_states": 3})
    feed(node, tr, HOME, 0.0, monkeypatch)
    node.tick(0.0)
    results = [node.tick(0.02 * k) for k in range(1, 6)]  # no states: stale, fault
    assert node.safety.faulted == "stale_observation" and results[-1].hold
    engaged = []
    for k in range(6, 12):
        feed(node, tr, HOME, 0.02 * k, monkeypatch)
        engaged.append(node.tick(0.02 * k).engaged)
    assert engaged == [False, False, True, True, True, True]  # resumed on the 3rd fresh state


def test_watchdog_default_two_periods_and_no_policy_on_old_state(monkeypatch: Any) -> None:
    """Ticks without a new state repeat the last command; the watchdog trips after 2 periods."""
    calls = []
    node, tr = make_node(lambda obs: calls.append(1) or np.full(7, 0.5), **{"safety.soft_start_s": 0.0})
    assert node.safety.config.watchdog_periods == 2
    feed(node, tr, HOME, 0.0, monkeypatch)
    results = [node.tick(0.02 * k) for k in range(10)]
    assert len(calls) == 1  # the policy ran on the one state it got, never again on it
    assert results[0].engaged and all(r.hold for r in results[1:])
    assert all(np.array_equal(r.command, results[0].command) for r in results)
    stale_ticks = [k for k, (_, _, stale, _) in enumerate(node.trace) if stale]
    assert stale_ticks[0] == 3  # 0.06 s > 2 periods (0.04 s) since the last state
    assert node.safety.counts["stale_observation"] == 1
    feed(node, tr, HOME, 0.2, monkeypatch)
    assert node.tick(0.2).hold and node.safety.faulted == "stale_observation"  # no resume by itself
    tr.deliver("/sim2real/resume", {"data": True})
    feed(node, tr, HOME, 0.22, monkeypatch)
    assert node.tick(0.22).engaged and len(calls) == 2


def test_rate_limit_from_measured_time_between_commands(monkeypatch: Any) -> None:
    """Ticks every half period (state trigger on a fast stream): the velocity limit still holds."""
    node, tr = make_node(lambda obs: np.full(7, 1.0), **{"safety.soft_start_s": 0.0})
    vmax = np.array([j.max_velocity for j in KUKA.joints])
    times = 0.01 * np.arange(40)
    q = HOME.copy()
    for t in times:
        feed(node, tr, q, float(t), monkeypatch)
        q = np.asarray(node.tick(float(t)).command)  # the robot follows its commands exactly
    data = np.array([m["data"] for m in tr.published[COMMANDS]])
    speed = np.abs(np.diff(data, axis=0)) / 0.01
    assert np.all(speed <= vmax + 1e-9) and np.any(speed > 0.99 * vmax)


def test_state_trigger_never_faster_than_policy_rate(monkeypatch: Any) -> None:
    node, tr = make_node(lambda obs: np.zeros(7), **{"safety.soft_start_s": 0.0, "trigger": "state"})
    node._inline, node._due = True, 0.0  # what run() sets up for trigger: state
    for k in range(500):  # 250 Hz state stream for 2 s; the policy runs at 50 Hz
        feed(node, tr, HOME, k / 250.0, monkeypatch)
    ticks = np.array([t for t, *_ in node.trace])
    assert 95 <= len(ticks) <= 101 and np.min(np.diff(ticks)) >= 0.9 * node.period - 1e-9
    jnode, jtr = make_node(lambda obs: np.zeros(7), **{"safety.soft_start_s": 0.0, "trigger": "state"})
    jnode._inline, jnode._due = True, 0.0
    jitter = np.random.default_rng(0).uniform(-0.001, 0.001, 100)
    for k in range(100):  # states at the policy rate with +-1 ms jitter: every state is used
        feed(jnode, jtr, HOME, k / 50.0 + jitter[k] + 0.001, monkeypatch)
    assert len(jnode.trace) == 100


def test_observation_clip_is_not_applied_to_raw_values() -> None:
    """The sidecar's clip bounds *normalised* inputs; the exported module normalises and clips."""
    spec = parse_policy_spec(sidecar_dict(layout=[["joint_position", 7], ["joint_velocity", 7]], clip=1.0), "p.yaml")
    builder = ObservationBuilder(spec, n_joints=7)
    from sim2real.ros2.observation import ArmState

    frame = builder.frame(ArmState(q=np.full(7, 2.5), qd=np.full(7, -30.0), stamp_ns=0, arrival=0.0), None,
                          np.zeros(7))
    np.testing.assert_array_equal(frame, np.concatenate([np.full(7, 2.5), np.full(7, -30.0)]))


def test_nan_state_during_soft_start_holds(monkeypatch: Any) -> None:
    node, tr = make_node(lambda obs: np.zeros(7), **{"safety.soft_start_s": 1.0})
    feed(node, tr, HOME + 0.3, 0.0, monkeypatch)
    first = node.tick(0.0)
    assert node.controller.phase == "soft_start"
    bad = HOME + 0.3
    bad[4] = np.inf
    for k in range(1, 6):
        feed(node, tr, bad, 0.02 * k, monkeypatch)
        result = node.tick(0.02 * k)
        assert result.hold and np.array_equal(result.command, first.command)
    assert node.safety.counts["nan_observation"] == 1 and node.phase.startswith("holding: nan_observation")


def test_exit_publishes_hold(monkeypatch: Any) -> None:
    """Position: the measured position; velocity: zeros; also when the loop ends on an error."""
    node, tr = make_node(lambda obs: np.full(7, 1.0), **{"safety.soft_start_s": 0.0})
    measured = HOME + 0.02
    tr.deliver("/joint_states", joint_state(measured))
    node.run(duration=0.1)
    assert node.stats.commands > 0
    np.testing.assert_allclose(tr.published[COMMANDS][-1]["data"], measured)
    vnode, vtr = make_node(lambda obs: np.full(7, 1.0), mode="joint_velocity")
    vtr.deliver("/joint_states", joint_state(HOME))
    vnode.run(duration=0.1)
    assert any(np.any(np.array(m["data"]) != 0.0) for m in vtr.published[COMMANDS][:-1])
    assert vtr.published[COMMANDS][-1]["data"] == [0.0] * 7


def test_phase_in_reports_is_truthful(monkeypatch: Any) -> None:
    layout = [["joint_position", 7], ["joint_velocity", 7], ["target_position", 3]]
    node, tr = make_node(lambda obs: np.zeros(7), layout=layout, **{"safety.soft_start_s": 0.0})
    feed(node, tr, HOME, 0.0, monkeypatch)
    node.tick(0.0)
    assert node.controller.phase == "running" and node.phase == "waiting_for_goal"
    assert "final phase: waiting_for_goal" in node.format_report()
    tr.deliver("/estop", {"data": True})
    assert node.report()["phase"] == "estopped"
    node.publish_diagnostics()
    status = tr.published["/sim2real/diagnostics"][-1]["status"][0]
    assert status["level"] == 2 and {"key": "phase", "value": "estopped"} in status["values"]


def test_estop_latches(monkeypatch: Any) -> None:
    node, tr = make_node(lambda obs: np.full(7, 1.0), **{"safety.soft_start_s": 0.0})
    feed(node, tr, HOME, 0.0, monkeypatch)
    node.tick(0.0)
    tr.deliver("/estop", {"data": True})
    held = [node.tick(0.02 * k) for k in range(1, 5)]
    tr.deliver("/estop", {"data": False})
    feed(node, tr, HOME, 0.1, monkeypatch)
    held.append(node.tick(0.1))
    assert all(r.hold for r in held) and node.safety.estopped and node.safety.counts["estop"] == 1
    assert len({tuple(r.command) for r in held}) == 1


def test_joint_trajectory_output_and_velocity_mode(monkeypatch: Any) -> None:
    node, tr = make_node(lambda obs: np.full(7, 0.2), output="joint_trajectory", controller="jtc",
                         **{"safety.soft_start_s": 0.0})
    feed(node, tr, HOME, 0.0, monkeypatch)
    node.tick(0.0)
    msg = tr.published["/jtc/joint_trajectory"][-1]
    assert msg["joint_names"] == list(KUKA.ros2.joint_names)
    assert msg["points"][0]["time_from_start"] == {"sec": 0, "nanosec": 20_000_000}
    with pytest.raises(ConfigError, match="position policy"):
        make_node(lambda obs: np.zeros(7), mode="joint_velocity", output="joint_trajectory")
    vnode, vtr = make_node(lambda obs: np.full(7, 1.0), mode="joint_velocity", **{"safety.max_accel": 1.0})
    feed(vnode, vtr, HOME, 0.0, monkeypatch)
    first = vnode.tick(0.0)  # velocity policies skip soft start; acceleration-limited from rest
    np.testing.assert_allclose(first.command, np.full(7, 0.02))
    repeat = vnode.tick(0.02)  # no new state: the last velocity command again (not a jump to zero)
    assert repeat.hold and np.array_equal(repeat.command, first.command)
    stale = [vnode.tick(0.02 * k) for k in range(2, 5)]  # the watchdog trips: zero velocity
    assert stale[-1].hold and np.array_equal(stale[-1].command, np.zeros(7))


def test_node_rejects_mismatched_policy() -> None:
    with pytest.raises(ConfigError, match="joint_velocity has size 6"):
        make_node(lambda obs: np.zeros(7), layout=[["joint_position", 7], ["joint_velocity", 6]])
    with pytest.raises(ConfigError, match="for quadrotors"):
        make_node(lambda obs: np.zeros(7), output="px4_offboard")


def quad_node(output: str, **params: Any) -> tuple[Any, FakeTransport]:
    from sim2real.ros2.node import DeployNode

    raw = sidecar_dict("quadrotor", layout=[["base_position", 3], ["base_orientation", 4],
                                             ["base_linear_velocity", 3], ["target_relative", 3]],
                       mode="velocity", scale=2.0, rate=50.0)
    raw["action"]["joints"] = []
    spec = parse_policy_spec(raw, "policy.yaml")
    transport = FakeTransport()
    node = DeployNode({"robot": "quadrotor", "output": output, "goal": [0.0, 0.0, 1.0], **params},
                      transport=transport, policy=lambda obs: np.array([1.0, -1.0, 0.5, 0.25]), spec=spec)
    return node, transport


def odom(t: float, transport: FakeTransport, monkeypatch: Any) -> None:
    monkeypatch.setattr("sim2real.ros2.node.time.monotonic", lambda: t)
    transport.deliver(load_robot("quadrotor").ros2.topics.get("odometry", "/odom"), {"pose": {"pose": {"position": {"x": 1.0, "y": 2.0, "z": 0.5},
                                                        "orientation": {"w": 1.0}}}})


def test_px4_heartbeat_before_engaging_and_ned(monkeypatch: Any) -> None:
    node, tr = quad_node("px4_offboard", **{"px4.heartbeat_lead_s": 0.5, "safety.max_accel": 100.0,
                                            "safety.max_speed": 1.0})
    for k in range(40):
        odom(0.02 * k, tr, monkeypatch)
        tr.clock = int(0.02 * k * 1e9)
        node.tick(0.02 * k)
    topics = load_robot("quadrotor").ros2.topics
    modes = tr.published[topics.get("px4_offboard_mode", "/fmu/in/offboard_control_mode")]
    setpoints = tr.published[topics.get("px4_trajectory_setpoint", "/fmu/in/trajectory_setpoint")]
    assert len(modes) == 40  # heartbeat every tick
    engaged = [k for k, m in enumerate(modes) if m["velocity"]]
    assert engaged[0] >= 25 and all(m["position"] for m in modes[:25])  # 0.5 s of heartbeat first
    np.testing.assert_allclose(setpoints[0]["position"], [2.0, 1.0, -0.5])  # hold, ENU -> NED
    last = setpoints[-1]
    # velocity ENU (1, -1, 0.5) * scale 2 clipped to 1 m/s -> NED (y, x, -z)
    np.testing.assert_allclose(last["velocity"], [-1.0, 1.0, -1.0])
    assert np.all(np.isnan(last["position"])) and last["yawspeed"] == pytest.approx(-0.5)
    assert modes[-1]["timestamp"] == int(0.02 * 39 * 1e6)


def test_crazyswarm_outputs(monkeypatch: Any) -> None:
    node, tr = quad_node("crazyswarm_full_state", **{"px4.heartbeat_lead_s": 0.0, "safety.max_accel": 100.0})
    odom(0.0, tr, monkeypatch)
    node.tick(0.0)
    msg = tr.published[load_robot("quadrotor").ros2.topics.get("cmd_full_state", "/cf1/cmd_full_state")][-1]
    assert msg["twist"]["linear"] == {"x": 1.0, "y": -1.0, "z": 1.0}
    assert msg["pose"]["position"]["x"] == pytest.approx(1.0 + 0.02)
    node, tr = quad_node("crazyswarm_velocity", **{"px4.heartbeat_lead_s": 0.0})
    odom(0.0, tr, monkeypatch)
    node.tick(0.0)
    odom(1.0, tr, monkeypatch)
    node.tick(1.0)  # stale? no: the state just arrived
    topic = load_robot("quadrotor").ros2.topics.get("cmd_velocity_world", "/cf1/cmd_velocity_world")
    sent = tr.published[topic][-1]["yaw_rate"]
    # the policy asks 0.25 * scale 2 = 0.5 rad/s counter-clockwise; Crazyswarm2 hands the field to the
    # firmware's velocity-world decoder unchanged, which reads deg/s and negates it (attitudeRate.yaw = -yawrate)
    assert sent == pytest.approx(-np.degrees(0.5))
    assert np.radians(-sent) == pytest.approx(0.5)  # what the firmware then flies: CCW 0.5 rad/s


def test_ros2_package_imports_no_simulator() -> None:
    code = ("import sys, sim2real.ros2.node, sim2real.ros2.transport_dds, sim2real.ros2.mock_robot, "
            "sim2real.ros2.mock_drone, sim2real.ros2.controller_drone, sim2real.cli.deploy\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('pybullet', 'stable_baselines3', 'gymnasium', "
            "'torch') or m.startswith(('sim2real.sim', 'sim2real.envs'))]\nprint(bad)\nsys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_sidecar_errors_name_file_and_key() -> None:
    raw = sidecar_dict()
    raw["observation"]["layout"][2] = ["ee_pos", 3]
    with pytest.raises(ConfigError, match=r"policy\.yaml: observation\.layout\[2\]: unknown component 'ee_pos'"):
        parse_policy_spec(raw, "policy.yaml")
    raw = sidecar_dict(mode="joint_torque")  # motor / thrust_rates are valid (drone low-level modes)
    with pytest.raises(ConfigError, match=r"action\.mode: expected one of"):
        parse_policy_spec(raw, "policy.yaml")
    raw = sidecar_dict()
    raw["observation"]["size"] = 21
    with pytest.raises(ConfigError, match=r"observation\.size: size 21 != sum"):
        parse_policy_spec(raw, "policy.yaml")
    raw = sidecar_dict()
    raw["action"]["scale"] = [0.1] * 6
    with pytest.raises(ConfigError, match=r"action\.scale: expected a list of 7 numbers"):
        parse_policy_spec(raw, "policy.yaml")
    raw = sidecar_dict()
    raw["control_rate_hz"] = None  # exporter could not tell: the node uses robot.yaml's rate
    assert parse_policy_spec(raw, "policy.yaml").control_rate_hz == 0.0


def test_policy_error_stops_the_loop() -> None:
    from sim2real.errors import CheckpointError

    node, tr = make_node(lambda obs: np.zeros(3), **{"safety.soft_start_s": 0.0})  # wrong action size
    tr.deliver("/joint_states", joint_state(HOME))
    with pytest.raises(CheckpointError, match="policy returned shape"):
        node.run(duration=5.0)
    assert node.stats.ticks == 1
    np.testing.assert_allclose(tr.published[COMMANDS][-1]["data"], HOME)  # exit hold on the error path too
