"""px4_msgs releases: the node's PX4 messages, byte for byte, against each release's ``.msg`` files.

``tests/data/px4_msgs/<tag>/`` holds the definitions of px4_msgs v1.14.0 and v1.15.0 verbatim
(see its README). ``OffboardControlMode`` differs between them (v1.14: ``actuator``; v1.15:
``thrust_and_torque`` + ``direct_actuator``), the other message types used are the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("cyclonedds")
pytest.importorskip("rosbags")
from rosbags.typesys import Stores, get_typestore, get_types_from_msg  # noqa: E402

from sim2real.errors import ConfigError  # noqa: E402
from sim2real.ros2 import adapters, dds_types  # noqa: E402
from sim2real.ros2.params import validate_params  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "px4_msgs"
RELEASES = {"1.14": "v1.14.0", "1.15": "v1.15.0"}
TYPES = ("OffboardControlMode", "TrajectorySetpoint", "VehicleRatesSetpoint", "ActuatorMotors")


def release_store(tag: str) -> Any:
    store = get_typestore(Stores.ROS2_HUMBLE)
    found: dict[str, Any] = {}
    for name in TYPES:
        found.update(get_types_from_msg((DATA / tag / f"{name}.msg").read_text(), f"px4_msgs/msg/{name}"))
    store.register(found)
    return store


class Capture:
    """Transport that serialises what the adapters publish with the DDS structs (what goes on the wire)."""

    kind = "capture"

    def __init__(self) -> None:
        self.wire: dict[str, list[tuple[str, bytes]]] = {}

    def advertise(self, topic: str, type_name: str) -> Any:
        cls = dds_types.MESSAGE_TYPES[type_name]
        return lambda fields: self.wire.setdefault(topic, []).append(
            (type_name, cls.serialize(dds_types.build(cls, fields))))


@pytest.mark.parametrize("version", sorted(RELEASES))
def test_wire_bytes_equal_the_release_definitions(version: str) -> None:
    store = release_store(RELEASES[version])
    tr = Capture()
    offboard = adapters.Px4OffboardAdapter(tr, "/sp", "/mode_v", version)
    rates = adapters.Px4RatesAdapter(tr, "/rates", "/mode_r", version)
    motors = adapters.Px4MotorsAdapter(tr, "/motors", "/mode_m", [0, 2, 3, 1], version)
    hold = adapters.DroneCommand(np.zeros(3), 0.0, np.array([1.0, 2.0, 0.5]), 0.3, hold=True)
    fly = adapters.DroneCommand(np.array([0.5, -0.25, 1.0]), 0.2, np.zeros(3), 0.0, hold=False)
    for cmd in (hold, fly):
        offboard.send(cmd, 1_700_000_000_123_456)
    rates.send(adapters.LowLevelCommand(thrust=0.4, rates=np.array([0.1, 0.2, -0.3])), 42_000)
    motors.send(adapters.LowLevelCommand(motors=np.array([0.1, 0.2, 0.3, 0.4])), 43_000)
    for topic, sent in tr.wire.items():
        for type_name, raw in sent:
            ros_type = type_name.split("@", 1)[0]
            msg = store.deserialize_cdr(raw, ros_type)  # decodes with the release's definition ...
            assert bytes(store.serialize_cdr(msg, ros_type)) == raw  # ... and re-encodes to the same bytes
    modes = {t: store.deserialize_cdr(sent[-1][1], "px4_msgs/msg/OffboardControlMode")
             for t, sent in tr.wire.items() if t.startswith("/mode")}
    assert modes["/mode_v"].velocity and not modes["/mode_v"].position and modes["/mode_r"].body_rate
    motor_flag = "actuator" if version == "1.14" else "direct_actuator"
    assert getattr(modes["/mode_m"], motor_flag) is True  # the direct-actuator mode arrives as such
    assert sum(v is True for k, v in vars(modes["/mode_m"]).items() if k != "timestamp") == 1


def test_release_layouts_differ_where_it_matters() -> None:
    """The v1.15 struct read with v1.14 definitions loses direct_actuator: the parameter matters."""
    old = release_store(RELEASES["1.14"])
    new_bytes = dds_types.build(dds_types.OffboardControlMode, {"timestamp": 5, "direct_actuator": True}).serialize()
    assert old.deserialize_cdr(new_bytes, "px4_msgs/msg/OffboardControlMode").actuator is False
    old_bytes = dds_types.build(dds_types.OffboardControlModeV114, {"timestamp": 5, "actuator": True}).serialize()
    assert old.deserialize_cdr(old_bytes, "px4_msgs/msg/OffboardControlMode").actuator is True


def test_px4_msgs_version_parameter() -> None:
    assert validate_params({})["px4_msgs_version"] == "1.15"  # default: the newer layout
    assert validate_params({"px4_msgs_version": 1.14})["px4_msgs_version"] == 1.14  # YAML reads 1.14 as a number
    with pytest.raises(ConfigError, match="px4_msgs_version: expected one of"):
        validate_params({"px4_msgs_version": "1.13"})
