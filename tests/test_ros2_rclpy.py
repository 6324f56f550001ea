"""The rclpy transport's glue, against a minimal stand-in for rclpy (ROS 2 is not installed here).

The stand-in mimics the rclpy / rosidl Python API the transport uses: message classes
with ``get_fields_and_field_types`` (built from ROS 2 Humble's definitions via rosbags,
``byte`` fields as length-1 ``bytes``), ``create_subscription``/``create_publisher`` with
QoS, parameter overrides, the node clock.
"""

from __future__ import annotations

import enum
import signal
import sys
import threading
import types
from typing import Any

import numpy as np
import pytest

pytest.importorskip("rosbags")
from rosbags.typesys import Stores, get_typestore, get_types_from_msg  # noqa: E402
from rosbags.typesys.base import Nodetype  # noqa: E402

from sim2real.ros2 import transport as transport_mod  # noqa: E402

STORE = get_typestore(Stores.ROS2_HUMBLE)


def _register_extras() -> None:
    from sim2real.ros2.dds_types import EXTRA_MSG_DEFINITIONS

    found: dict[str, Any] = {}
    for name, text in EXTRA_MSG_DEFINITIONS.items():
        found.update(get_types_from_msg(text, name))
    STORE.register(found)


def _default(node: tuple[Any, Any]) -> Any:
    kind, arg = node
    if kind == Nodetype.BASE:
        return {"string": "", "bool": False, "byte": b"\x00"}.get(arg[0], 0.0 if arg[0].startswith("float") else 0)
    if kind == Nodetype.NAME:
        return fake_message(arg)()
    return [] if kind == Nodetype.SEQUENCE else [_default(arg[0]) for _ in range(arg[1])]


def _type_string(node: tuple[Any, Any]) -> str:
    kind, arg = node
    if kind == Nodetype.SEQUENCE and arg[0][0] == Nodetype.NAME:
        return "sequence<" + arg[0][1].replace("/msg/", "/") + ">"
    return str(arg)


_CLASSES: dict[str, type] = {}


def fake_message(type_name: str) -> type:
    if type_name not in _CLASSES:
        fields = STORE.get_msgdef(type_name).fields

        def __init__(self: Any) -> None:
            for name, node in fields:
                setattr(self, name, _default(node))

        _CLASSES[type_name] = type(type_name.rsplit("/", 1)[1], (), {
            "__init__": __init__,
            "get_fields_and_field_types": classmethod(lambda cls: {n: _type_string(nd) for n, nd in fields}),
        })
    return _CLASSES[type_name]


def fake_service(type_name: str) -> type:
    """``crazyflie_interfaces/srv/NotifySetpointsStop`` (the only service the node calls)."""
    assert type_name == "crazyflie_interfaces/srv/NotifySetpointsStop"
    fields = {"group_mask": "uint8", "remain_valid_millisecs": "uint32"}

    def __init__(self: Any) -> None:
        for name in fields:
            setattr(self, name, 0)
    request = type("NotifySetpointsStop_Request", (), {
        "__init__": __init__, "get_fields_and_field_types": classmethod(lambda cls: dict(fields))})
    return type("NotifySetpointsStop", (), {"Request": request})


class FakeNode:
    def __init__(self, name: str, overrides: dict[str, Any], context_ok: Any = lambda: True) -> None:
        self.name, self.subs, self.pubs, self.context_ok = name, {}, {}, context_ok
        self._params = {k: types.SimpleNamespace(value=v) for k, v in overrides.items()}
        self.clock_ns = 5_000_000_123

    def create_subscription(self, cls: type, topic: str, cb: Any, qos: Any) -> None:
        self.subs[topic] = (cls, cb, qos)

    def create_publisher(self, cls: type, topic: str, qos: Any) -> Any:
        sent: list[Any] = []
        self.pubs[topic] = (cls, sent, qos)

        def publish(msg: Any) -> None:
            if not self.context_ok():
                raise RuntimeError("RCLError: failed to publish: publisher's context is invalid")
            sent.append(msg)
        return types.SimpleNamespace(publish=publish)

    def get_clock(self) -> Any:
        return types.SimpleNamespace(now=lambda: types.SimpleNamespace(nanoseconds=self.clock_ns))

    def get_parameters_by_prefix(self, prefix: str) -> dict[str, Any]:
        return dict(self._params)

    def has_parameter(self, name: str) -> bool:
        return name in self._params

    def declare_parameter(self, name: str, value: Any) -> None:
        self._params[name] = types.SimpleNamespace(value=value)

    def set_parameters(self, params: list) -> None:
        pass

    def destroy_node(self) -> None:
        pass

    def create_client(self, cls: type, name: str) -> Any:
        calls = self.__dict__.setdefault("service_calls", [])

        def call_async(request: Any) -> Any:
            calls.append((name, request))
            return types.SimpleNamespace(add_done_callback=lambda cb: cb(None), exception=lambda: None)
        return types.SimpleNamespace(wait_for_service=lambda timeout_sec=None: True, call_async=call_async)

    def destroy_client(self, client: Any) -> None:
        pass


@pytest.fixture
def fake_rclpy(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    _register_extras()
    state: dict[str, Any] = {"ok": False, "overrides": {"safety.watchdog_periods": 7, "use_sim_time": False}}
    stop = threading.Event()
    rclpy = types.ModuleType("rclpy")
    rclpy.ok = lambda: state["ok"]
    signals = types.ModuleType("rclpy.signals")
    signals.SignalHandlerOptions = enum.Enum("SignalHandlerOptions", {"NO": 0, "SIGINT": 1, "SIGTERM": 2, "ALL": 3})

    def init(args: Any = None, signal_handler_options: Any = None) -> None:
        state.update(ok=True, args=args, signals=signal_handler_options)
        if signal_handler_options != signals.SignalHandlerOptions.NO:  # rclpy's own SIGINT handler
            def shutdown_then_interrupt(signum: int, frame: Any) -> None:
                state["ok"] = False  # the context is shut down, then KeyboardInterrupt
                raise KeyboardInterrupt
            state["previous_sigint"] = signal.signal(signal.SIGINT, shutdown_then_interrupt)

    rclpy.init = init
    rclpy.shutdown = lambda: state.update(ok=False)

    def create_node(name: str, automatically_declare_parameters_from_overrides: bool = False) -> FakeNode:
        assert automatically_declare_parameters_from_overrides
        state["node"] = FakeNode(name, state["overrides"], lambda: state["ok"])
        return state["node"]

    rclpy.create_node = create_node
    executors = types.ModuleType("rclpy.executors")
    executors.SingleThreadedExecutor = lambda: types.SimpleNamespace(
        add_node=lambda n: None, spin=lambda: stop.wait(10), shutdown=lambda timeout_sec=None: stop.set())
    parameter = types.ModuleType("rclpy.parameter")
    parameter.Parameter = type("Parameter", (), {"Type": types.SimpleNamespace(BOOL="bool"),
                                                 "__init__": lambda self, *a: None})
    qos = types.ModuleType("rclpy.qos")
    qos.QoSProfile = lambda **kw: ("profile", kw)
    qos.ReliabilityPolicy = types.SimpleNamespace(RELIABLE="reliable")
    qos.HistoryPolicy = types.SimpleNamespace(KEEP_LAST="keep_last")
    qos.qos_profile_sensor_data = "sensor_data"
    rosidl = types.ModuleType("rosidl_runtime_py")
    utilities = types.ModuleType("rosidl_runtime_py.utilities")
    utilities.get_message = fake_message
    utilities.get_service = fake_service
    for name, mod in {"rclpy": rclpy, "rclpy.executors": executors, "rclpy.parameter": parameter, "rclpy.qos": qos,
                      "rclpy.signals": signals,
                      "rosidl_runtime_py": rosidl, "rosidl_runtime_py.utilities": utilities}.items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr(transport_mod, "rclpy_available", lambda: True)
    yield state
    stop.set()
    if "previous_sigint" in state:
        signal.signal(signal.SIGINT, state["previous_sigint"])


def test_rclpy_transport_runs_the_node(fake_rclpy: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from sim2real.robots import load_robot
    from sim2real.ros2.node import DeployNode
    from sim2real.ros2.policy import parse_policy_spec
    from test_ros2_support import sidecar_dict

    transport = transport_mod.make_transport("auto", "sim2real_deploy", args=["deploy_node", "--ros-args"])
    assert transport.kind == "rclpy" and fake_rclpy["args"] == ["deploy_node", "--ros-args"]
    assert transport.parameters()["safety.watchdog_periods"] == 7
    spec = parse_policy_spec(sidecar_dict(layout=[["joint_position", 7]], rate=50.0), "policy.yaml")
    node = DeployNode({"robot": "kuka_iiwa", "safety.soft_start_s": 0.0, "output": "joint_trajectory"},
                      transport=transport, policy=lambda obs: np.full(7, 0.1), spec=spec)
    fake = fake_rclpy["node"]
    cls, callback, qos = fake.subs["/joint_states"]
    assert qos == "sensor_data" and fake.subs["/estop"][2][0] == "profile"
    robot = load_robot("kuka_iiwa")
    msg = cls()
    msg.name = list(reversed(robot.ros2.joint_names))
    msg.position = [j.home for j in reversed(robot.joints)]
    msg.velocity = [0.0] * 7
    monkeypatch.setattr("sim2real.ros2.node.time.monotonic", lambda: 1.0)
    callback(msg)
    result = node.tick(1.0)
    assert result.engaged
    _, sent, pub_qos = fake.pubs["/joint_trajectory_controller/joint_trajectory"]
    assert pub_qos[1]["reliability"] == "reliable"
    traj = sent[-1]
    assert traj.joint_names == list(robot.ros2.joint_names)
    assert type(traj.points[0]).__name__ == "JointTrajectoryPoint"
    np.testing.assert_allclose(traj.points[0].positions, result.command)
    assert traj.points[0].time_from_start.nanosec == 20_000_000
    node.publish_diagnostics()
    diag = fake.pubs["/sim2real/diagnostics"][1][-1]
    assert diag.header.stamp.sec == 5 and diag.header.stamp.nanosec == 123
    assert diag.status[0].level == b"\x00" and any(kv.key == "trips.estop" for kv in diag.status[0].values)
    node.close()
    assert not fake_rclpy["ok"]


def test_sigint_publishes_hold_and_diagnostics_before_rclpy_shuts_down(
        fake_rclpy: dict[str, Any], tmp_path: Any) -> None:
    """Ctrl-C under rclpy: the exit hold and the diagnostics go out, then the context closes; exit 0."""
    import argparse

    from sim2real.robots import load_robot
    from sim2real.ros2.cli_args import run
    from test_ros2_support import export_mlp

    policy = export_mlp(tmp_path / "policy", layout=[["joint_position", 7], ["joint_velocity", 7]], rate=50.0)
    args = argparse.Namespace(params=None, node_name="sim2real_deploy", verbose=False, robot="kuka_iiwa",
                              policy=str(policy), sidecar=None, transport="rclpy", rate=None, duration=10.0,
                              domain_id=None, trigger=None, output=None, controller=None, goal=None, rt_priority=None)
    robot = load_robot("kuka_iiwa")
    measured = [j.home + 0.01 for j in robot.joints]

    def operator() -> None:
        for _ in range(2000):  # the node subscribes once the policy is loaded
            if "/sim2real/resume" in getattr(fake_rclpy.get("node"), "subs", {}):
                break
            threading.Event().wait(0.01)
        cls, callback, _ = fake_rclpy["node"].subs["/joint_states"]
        msg = cls()
        msg.name, msg.position, msg.velocity = list(robot.ros2.joint_names), measured, [0.0] * 7
        callback(msg)
        threading.Event().wait(0.3)
        signal.raise_signal(signal.SIGINT)

    threading.Thread(target=operator, daemon=True).start()
    assert run(args, []) == 0
    assert fake_rclpy["signals"].name == "NO"
    pubs = fake_rclpy["node"].pubs
    commands = pubs["/forward_position_controller/commands"][1]
    np.testing.assert_allclose(commands[-1].data, measured)  # the exit hold: the measured position
    assert pubs["/sim2real/diagnostics"][1] and not fake_rclpy["ok"]


def test_crazyswarm_exit_hands_over_to_the_high_level_commander(fake_rclpy: dict[str, Any]) -> None:
    """Crazyswarm2 output: on exit a zero-velocity hold, then /<cf>/notify_setpoints_stop."""
    from sim2real.ros2.node import DeployNode
    from sim2real.ros2.policy import parse_policy_spec
    from test_ros2_support import sidecar_dict

    raw = sidecar_dict("quadrotor", layout=[["base_position", 3], ["base_linear_velocity", 3]], mode="velocity",
                       rate=50.0)
    raw["action"]["joints"] = []
    transport = transport_mod.make_transport("rclpy", "sim2real_deploy", args=[])
    node = DeployNode({"robot": "quadrotor", "output": "crazyswarm_velocity", "px4.heartbeat_lead_s": 0.0,
                       "topics.command": "/cf231/cmd_velocity_world"}, transport=transport,
                      policy=lambda obs: np.array([0.5, 0.0, 0.0, 0.0]), spec=parse_policy_spec(raw, "policy.yaml"))
    fake = fake_rclpy["node"]
    cls, callback, _ = fake.subs[node.state_topic]
    msg = cls()
    msg.pose.pose.position.z = 1.0
    msg.pose.pose.orientation.w = 1.0
    callback(msg)
    node.run(duration=0.1)
    sent = fake.pubs["/cf231/cmd_velocity_world"][1]
    assert sent and (sent[-1].vel.x, sent[-1].vel.y, sent[-1].vel.z, sent[-1].yaw_rate) == (0.0, 0.0, 0.0, 0.0)
    (name, request), = fake.service_calls
    assert name == "/cf231/notify_setpoints_stop" and request.remain_valid_millisecs == 100
    node.close()
