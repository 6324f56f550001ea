"""rclpy transport: a real ROS 2 node (used when ROS 2 Humble is sourced).

QoS: state topics use ``qos_profile_sensor_data`` (best effort, keep last 5); commands,
e-stop and diagnostics are reliable keep-last 10. Parameters given with
``--ros-args --params-file FILE`` (what ``launch_ros`` does with ``parameters=[...]``) are
declared automatically and returned flat by :meth:`RclpyTransport.parameters`. rclpy is
initialised without its signal handlers (``SignalHandlerOptions.NO``): Ctrl-C reaches the node
as ``KeyboardInterrupt``, so the exit hold and the last diagnostics are published while the
context is still valid, and the node exits 0 under ``ros2 launch``.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Mapping

from sim2real.errors import TransportError
from sim2real.ros2.transport import Publish, Transport


class RclpyTransport(Transport):
    kind = "rclpy"

    def __init__(self, node_name: str, *, args: list[str] | None = None, use_sim_time: bool = False) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter
        from rclpy.qos import QoSProfile, ReliabilityPolicy, HistoryPolicy, qos_profile_sensor_data
        from rosidl_runtime_py.utilities import get_message

        self._rclpy, self._get_message = rclpy, get_message
        self._sensor_qos = qos_profile_sensor_data
        self._reliable_qos = QoSProfile(reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                                        depth=10)
        if not rclpy.ok():
            # No rclpy signal handlers: on SIGINT rclpy would shut the context down before the node
            # publishes its exit hold and diagnostics; the node handles SIGINT / SIGTERM itself and
            # shuts rclpy down in close()
            try:
                from rclpy.signals import SignalHandlerOptions
            except ImportError:  # rclpy before Humble has no such option
                rclpy.init(args=args)
            else:
                rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(node_name, automatically_declare_parameters_from_overrides=True)
        if use_sim_time and not self.node.has_parameter("use_sim_time"):
            self.node.declare_parameter("use_sim_time", True)
        elif use_sim_time:
            self.node.set_parameters([Parameter("use_sim_time", Parameter.Type.BOOL, True)])
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, name="rclpy-spin", daemon=True)
        self._thread.start()

    def _type(self, type_name: str) -> Any:
        type_name = type_name.split("@", 1)[0]  # the installed package decides the layout (px4_msgs_version)
        try:
            return self._get_message(type_name)
        except (AttributeError, ModuleNotFoundError, ValueError) as exc:
            raise TransportError(f"message type {type_name!r} is not installed: {exc}") from None

    def subscribe(self, topic: str, type_name: str, callback: Callable[[Any], None], *, sensor: bool = False) -> None:
        self.node.create_subscription(self._type(type_name), topic, callback,
                                      self._sensor_qos if sensor else self._reliable_qos)

    def advertise(self, topic: str, type_name: str) -> Publish:
        cls = self._type(type_name)
        pub = self.node.create_publisher(cls, topic, self._reliable_qos)

        def publish(fields: Mapping[str, Any]) -> None:
            pub.publish(self._fill(cls(), fields))

        return publish

    def _fill(self, msg: Any, fields: Mapping[str, Any]) -> Any:
        """Set ``msg``'s fields from a nested dict (sequences of messages given as lists of dicts)."""
        types = msg.get_fields_and_field_types()
        for name, value in fields.items():
            if name not in types:
                raise TransportError(f"{type(msg).__name__} has no field {name!r}: the installed message package "
                                     "has another layout (px4_msgs: set px4_msgs_version to its release)")
            if isinstance(value, Mapping):
                self._fill(getattr(msg, name), value)
                continue
            if isinstance(value, (list, tuple)) and value and isinstance(value[0], Mapping):
                inner = types[name].split("<", 1)[1].split(">", 1)[0].split(",")[0]  # sequence<pkg/Type, N>
                pkg, typ = inner.split("/")
                elem = self._type(f"{pkg}/msg/{typ}")
                value = [self._fill(elem(), v) for v in value]
            elif isinstance(getattr(msg, name), bytes) and isinstance(value, int):
                value = bytes([value])  # ROS `byte` fields are length-1 bytes in rclpy
            else:
                value = _plain(value)
            setattr(msg, name, value)
        return msg

    def call_service(self, name: str, type_name: str, fields: Mapping[str, Any], timeout: float = 1.0) -> bool:
        from rosidl_runtime_py.utilities import get_service

        try:
            cls = get_service(type_name)
        except (AttributeError, ModuleNotFoundError, ValueError) as exc:
            raise TransportError(f"service type {type_name!r} is not installed: {exc}") from None
        client = self.node.create_client(cls, name)
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                return False
            future = client.call_async(self._fill(cls.Request(), fields))
            answered = threading.Event()
            future.add_done_callback(lambda _: answered.set())  # the executor thread completes it
            return answered.wait(timeout) and future.exception() is None
        finally:
            self.node.destroy_client(client)

    def now_ns(self) -> int:
        return int(self.node.get_clock().now().nanoseconds)

    def parameters(self) -> dict[str, Any]:
        return {name: param.value for name, param in self.node.get_parameters_by_prefix("").items()}

    def close(self) -> None:
        self._executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        if self._rclpy.ok():
            self._rclpy.shutdown()


def _plain(value: Any) -> Any:
    """numpy arrays/scalars → lists/floats so ``set_message_fields`` accepts them."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
