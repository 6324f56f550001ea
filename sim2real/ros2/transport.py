"""Transport interface of the deployment node and the factory choosing one.

The node talks to ROS 2 only through :class:`Transport`: subscriptions deliver message
objects read by attribute (rclpy messages or :mod:`sim2real.ros2.dds_types` structs,
same field names), publishers take nested dicts with the ROS field names. Two
implementations: :class:`~sim2real.ros2.transport_rclpy.RclpyTransport` (ROS 2 installed)
and :class:`~sim2real.ros2.transport_dds.DdsTransport` (Cyclone DDS, ROS 2 wire-compatible).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from abc import ABC, abstractmethod
from typing import Any, Callable, Mapping

from sim2real.errors import TransportError

TRANSPORTS = ("auto", "rclpy", "dds")
LOG = logging.getLogger("sim2real.ros2")

Publish = Callable[[Mapping[str, Any]], None]


class Transport(ABC):
    """Pub/sub, a clock and parameters for one node.

    QoS: ``sensor=True`` subscriptions are best-effort keep-last (ROS ``SensorDataQoS``);
    everything else (commands, e-stop, diagnostics) is reliable keep-last 10.
    Callbacks run on a transport thread; the node synchronises with a lock.
    """

    kind: str = ""

    @abstractmethod
    def subscribe(self, topic: str, type_name: str, callback: Callable[[Any], None], *, sensor: bool = False) -> None:
        """Call ``callback(msg)`` for every message of ROS type ``type_name`` (``pkg/msg/Type``) on ``topic``."""

    @abstractmethod
    def advertise(self, topic: str, type_name: str) -> Publish:
        """Return ``publish(fields)`` sending a ``type_name`` built from a nested dict of its fields."""

    @abstractmethod
    def now_ns(self) -> int:
        """Current ROS time in ns (wall clock, or ``/clock`` with ``use_sim_time`` under rclpy)."""

    def parameters(self) -> dict[str, Any]:
        """Parameters the middleware handed to the node (rclpy: ``--params-file``), flat dotted names."""
        return {}

    def call_service(self, name: str, type_name: str, fields: Mapping[str, Any], timeout: float = 1.0) -> bool:
        """Call ROS 2 service ``name`` of type ``type_name`` (``pkg/srv/Type``) with a request built from
        ``fields``; True when the server answered within ``timeout`` s. Only rclpy calls services."""
        raise TransportError(f"the {self.kind} transport cannot call ROS 2 services")

    @abstractmethod
    def close(self) -> None:
        """Stop delivering callbacks and release the middleware."""


def rclpy_available() -> bool:
    return importlib.util.find_spec("rclpy") is not None


def make_transport(kind: str, node_name: str, *, domain_id: int | None = None, args: list[str] | None = None,
                   use_sim_time: bool = False) -> Transport:
    """Create the transport ``kind`` (``auto`` prefers rclpy when it imports, else DDS)."""
    if kind not in TRANSPORTS:
        raise TransportError(f"unknown transport {kind!r}; expected one of {list(TRANSPORTS)}")
    if kind == "rclpy" or (kind == "auto" and rclpy_available()):
        if not rclpy_available():
            raise TransportError("transport 'rclpy' requested but rclpy does not import (source ROS 2 Humble's "
                                 "setup.bash, or use --transport dds)")
        from sim2real.ros2.transport_rclpy import RclpyTransport

        return RclpyTransport(node_name, args=args, use_sim_time=use_sim_time)
    try:
        from sim2real.ros2.transport_dds import DdsTransport
    except ImportError as exc:
        raise TransportError(f"DDS transport needs the 'cyclonedds' package ({exc}); pip install cyclonedds") from None
    return DdsTransport(node_name, domain_id=domain_id)


def set_realtime_priority(priority: int) -> bool:
    """Run the calling thread, and threads it creates afterwards, under SCHED_FIFO (Linux).

    Call before the transport starts its threads. Returns False (and logs) where not permitted.
    """
    if priority <= 0:
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (AttributeError, OSError) as exc:
        LOG.warning("realtime priority %d not available (%s); normal scheduling", priority, exc)
        return False
    LOG.info("control loop runs under SCHED_FIFO priority %d", priority)
    return True
