"""ROS 2 wire-compatible transport on Cyclone DDS (no ROS installation needed).

ROS 2 topic ``/a/b`` is DDS topic ``rt/a/b``; types are the final/XCDR1 structs of
:mod:`sim2real.ros2.dds_types` named ``pkg::msg::dds_::Type_``, so ROS 2 nodes on the
same domain (``ROS_DOMAIN_ID``) exchange messages with this transport. Network
interfaces and discovery follow the usual ``CYCLONEDDS_URI`` configuration.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, Mapping

from cyclonedds.core import Listener, Policy, Qos
from cyclonedds.domain import DomainParticipant
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader, InvalidSample
from cyclonedds.topic import Topic
from cyclonedds.util import duration

from sim2real.errors import TransportError
from sim2real.ros2 import dds_types
from sim2real.ros2.transport import Publish, Transport

SENSOR_QOS = Qos(Policy.Reliability.BestEffort, Policy.History.KeepLast(5), Policy.Durability.Volatile)
RELIABLE_QOS = Qos(Policy.Reliability.Reliable(duration(milliseconds=100)), Policy.History.KeepLast(10),
                   Policy.Durability.Volatile)


def dds_topic_name(topic: str) -> str:
    """ROS 2 topic name → DDS topic name (``/joint_states`` → ``rt/joint_states``)."""
    name = topic.strip()
    if not name or "//" in name or name.endswith("/") and name != "/":
        raise TransportError(f"invalid ROS 2 topic name {topic!r}")
    return "rt/" + name.lstrip("/")


def message_type(type_name: str) -> type:
    try:
        return dds_types.MESSAGE_TYPES[type_name]
    except KeyError:
        raise TransportError(f"message type {type_name!r} is not available over the DDS transport "
                             f"(known: {sorted(dds_types.MESSAGE_TYPES)})") from None


class DdsTransport(Transport):
    """Cyclone DDS participant on ``domain_id`` (default ``$ROS_DOMAIN_ID`` or 0)."""

    kind = "dds"

    def __init__(self, node_name: str, *, domain_id: int | None = None) -> None:
        if domain_id is None:
            domain_id = int(os.environ.get("ROS_DOMAIN_ID", "0") or 0)
        if not 0 <= domain_id <= 232:
            raise TransportError(f"DDS domain id {domain_id} out of range 0..232")
        self.node_name, self.domain_id = node_name, domain_id
        try:
            self.participant = DomainParticipant(domain_id)
        except Exception as exc:  # cyclonedds raises DDSException with a return code
            raise TransportError(f"cannot create a DDS participant on domain {domain_id}: {exc}") from None
        self._topics: dict[str, Topic] = {}
        self._entities: list[Any] = []
        self._writers: dict[str, DataWriter] = {}
        self._closed = threading.Event()

    def _topic(self, topic: str, type_name: str) -> Topic:
        name = dds_topic_name(topic)
        if name not in self._topics:
            self._topics[name] = Topic(self.participant, name, message_type(type_name))
        return self._topics[name]

    def subscribe(self, topic: str, type_name: str, callback: Callable[[Any], None], *, sensor: bool = False) -> None:
        closed = self._closed

        def on_data(reader: DataReader) -> None:
            for sample in reader.take(N=64):
                if closed.is_set():
                    return
                if not isinstance(sample, InvalidSample):  # dispose/unregister notifications carry no data
                    callback(sample)

        reader = DataReader(self.participant, self._topic(topic, type_name), qos=SENSOR_QOS if sensor else RELIABLE_QOS,
                            listener=Listener(on_data_available=on_data))
        self._entities.append(reader)

    def advertise(self, topic: str, type_name: str) -> Publish:
        cls = message_type(type_name)
        writer = DataWriter(self.participant, self._topic(topic, type_name), qos=RELIABLE_QOS)
        self._entities.append(writer)
        self._writers[dds_topic_name(topic)] = writer
        build = dds_types.build

        def publish(fields: Mapping[str, Any]) -> None:
            writer.write(build(cls, fields))

        return publish

    def subscriber_count(self, topic: str) -> int:
        """Number of matched readers of this transport's publisher on ``topic`` (0 if not advertised)."""
        writer = self._writers.get(dds_topic_name(topic))
        return len(writer.get_matched_subscriptions()) if writer is not None else 0

    def now_ns(self) -> int:
        return time.time_ns()

    def close(self) -> None:
        self._closed.set()
        self._entities.clear()
        self._writers.clear()
        self._topics.clear()
        # Dropping the last reference deletes the participant and everything it owns.
        self.participant = None  # type: ignore[assignment]
