"""Byte compatibility of the Cyclone DDS message structs with ROS 2 Humble's CDR (via rosbags)."""

from __future__ import annotations

import typing
from typing import Any

import numpy as np
import pytest

pytest.importorskip("cyclonedds")
rosbags_typesys = pytest.importorskip("rosbags.typesys")

from rosbags.typesys import Stores, get_typestore, get_types_from_msg  # noqa: E402
from rosbags.typesys.base import Nodetype  # noqa: E402

from sim2real.ros2 import dds_types  # noqa: E402

NUMERIC = {"float64": np.float64, "float32": np.float32, "int8": np.int8, "int16": np.int16, "int32": np.int32,
           "int64": np.int64, "uint8": np.uint8, "byte": np.uint8, "char": np.uint8, "uint16": np.uint16,
           "uint32": np.uint32, "uint64": np.uint64, "bool": np.bool_}


@pytest.fixture(scope="module")
def store() -> Any:
    ts = get_typestore(Stores.ROS2_HUMBLE)
    types: dict[str, Any] = {}
    for name, text in dds_types.EXTRA_MSG_DEFINITIONS.items():
        types.update(get_types_from_msg(text, name))
    ts.register(types)
    return ts


def _base(kind: str, rng: np.random.Generator) -> Any:
    if kind == "string":
        return "".join(rng.choice(list("abcxyz_/0123"), size=int(rng.integers(0, 9))))
    if kind == "bool":
        return bool(rng.random() < 0.5)
    if kind.startswith("float"):
        return float(np.float32(rng.normal() * 100)) if kind == "float32" else float(rng.normal() * 100)
    if kind == "byte":  # octet on the wire; rosbags packs it signed, so stay in 0..127 (levels are 0..3)
        return int(rng.integers(0, 127))
    info = np.iinfo(NUMERIC[kind])
    return int(rng.integers(max(info.min, -(2**31)), min(info.max, 2**31 - 1), endpoint=True))


def _value(ts: Any, node: tuple[Any, Any], rng: np.random.Generator) -> Any:
    kind, arg = node
    if kind == Nodetype.BASE:
        return _base(arg[0], rng)
    if kind == Nodetype.NAME:
        return random_message(ts, arg, rng)
    sub, length = arg
    n = length if kind == Nodetype.ARRAY else int(rng.integers(0, 4))
    return [_value(ts, sub, rng) for _ in range(n)]


def random_message(ts: Any, type_name: str, rng: np.random.Generator) -> dict[str, Any]:
    """A random message of ``type_name`` as a nested dict of plain Python values."""
    return {name: _value(ts, node, rng) for name, node in ts.get_msgdef(type_name).fields}


def to_rosbags(ts: Any, type_name: str, fields: dict[str, Any]) -> Any:
    msgdef = ts.get_msgdef(type_name)
    kwargs = {}
    for name, (kind, arg) in msgdef.fields:
        value = fields[name]
        if kind == Nodetype.NAME:
            value = to_rosbags(ts, arg, value)
        elif kind in (Nodetype.ARRAY, Nodetype.SEQUENCE):
            sub_kind, sub_arg = arg[0]
            if sub_kind == Nodetype.NAME:
                value = [to_rosbags(ts, sub_arg, v) for v in value]
            elif sub_arg[0] != "string":
                value = np.array(value, dtype=NUMERIC[sub_arg[0]])
        kwargs[name] = value
    return msgdef.cls(**kwargs)


ALL_TYPES = sorted(t for t in dds_types.MESSAGE_TYPES if "@" not in t)  # older px4_msgs layouts:
# tests/test_ros2_px4_versions.py


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_fields_match_ros_definition(store: Any, type_name: str) -> None:
    cls = dds_types.MESSAGE_TYPES[type_name]
    ours = list(typing.get_type_hints(cls, include_extras=True))
    theirs = [name for name, _ in store.get_msgdef(type_name).fields]
    assert ours == theirs
    pkg, _, typ = type_name.split("/")
    assert cls.__idl_typename__ == f"{pkg}::msg::dds_::{typ}_"


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_serialization_is_byte_identical(store: Any, type_name: str) -> None:
    cls = dds_types.MESSAGE_TYPES[type_name]
    rng = np.random.default_rng(len(type_name))
    for _ in range(5):
        fields = random_message(store, type_name, rng)
        ours = cls.serialize(dds_types.build(cls, fields))
        theirs = bytes(store.serialize_cdr(to_rosbags(store, type_name, fields), type_name))
        assert ours == theirs
        # and a ROS 2 publisher's bytes decode into the same values on our side
        assert cls.deserialize(theirs) == dds_types.build(cls, fields)


def test_px4_setpoint_with_nan_round_trips(store: Any) -> None:
    nan = float("nan")
    msg = dds_types.build(dds_types.TrajectorySetpoint, {"timestamp": 123, "position": [nan] * 3,
                                                         "velocity": [0.5, -0.25, 1.0]})
    back = store.deserialize_cdr(msg.serialize(), "px4_msgs/msg/TrajectorySetpoint")
    assert back.timestamp == 123 and np.all(np.isnan(back.position))
    assert back.velocity.tolist() == [0.5, -0.25, 1.0]
    assert back.yaw == 0.0 and np.all(np.isnan(back.acceleration) == [False] * 3)


def test_build_rejects_unknown_field() -> None:
    with pytest.raises(KeyError, match="no field"):
        dds_types.build(dds_types.Bool, {"value": True})


def test_topic_names() -> None:
    from sim2real.errors import TransportError
    from sim2real.ros2.transport_dds import dds_topic_name

    assert dds_topic_name("/joint_states") == "rt/joint_states"
    assert dds_topic_name("/fmu/in/trajectory_setpoint") == "rt/fmu/in/trajectory_setpoint"
    with pytest.raises(TransportError):
        dds_topic_name("/bad//name")


def test_px4_low_level_setpoints_round_trip(store: Any) -> None:
    """VehicleRatesSetpoint / ActuatorMotors as PX4 reads them: FRD rates, NED thrust, NaN = stopped motor."""
    nan = float("nan")
    rates = dds_types.build(dds_types.VehicleRatesSetpoint, {"timestamp": 7, "roll": 0.5, "pitch": -0.25,
                                                             "yaw": 1.0, "thrust_body": [0.0, 0.0, -0.4375]})
    back = store.deserialize_cdr(rates.serialize(), "px4_msgs/msg/VehicleRatesSetpoint")
    assert (back.roll, back.pitch, back.yaw) == (0.5, -0.25, 1.0) and back.thrust_body.tolist() == [0.0, 0.0, -0.4375]
    assert back.reset_integral is False and back.MESSAGE_VERSION == 0
    motors = dds_types.build(dds_types.ActuatorMotors, {"timestamp": 9, "timestamp_sample": 8,
                                                        "control": [0.25, 0.5, 0.75, 1.0] + [nan] * 8})
    back = store.deserialize_cdr(motors.serialize(), "px4_msgs/msg/ActuatorMotors")
    assert back.control[:4].tolist() == [0.25, 0.5, 0.75, 1.0] and np.all(np.isnan(back.control[4:]))
    assert back.NUM_CONTROLS == 12 and back.ACTUATOR_FUNCTION_MOTOR1 == 101 and back.timestamp_sample == 8
