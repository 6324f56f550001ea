"""``.msg`` text of the message types the toolkit uses that are not in ROS 2 Humble's core set
(px4_msgs, crazyflie_interfaces), in the form ``rosbags.typesys.get_types_from_msg`` reads.

Plain strings, no dependencies: the DDS types (:mod:`sim2real.ros2.dds_types`, which needs
``cyclonedds``) and the quadrotor bag reader (:mod:`sim2real.sysid.quad_bag`) both register them.
"""

from __future__ import annotations

#: ``.msg`` text of the message types that are not in ROS 2 Humble's core set, in the
#: form ``rosbags.typesys.get_types_from_msg`` reads.
EXTRA_MSG_DEFINITIONS: dict[str, str] = {
    "px4_msgs/msg/OffboardControlMode": (
        "uint64 timestamp\nbool position\nbool velocity\nbool acceleration\nbool attitude\n"
        "bool body_rate\nbool thrust_and_torque\nbool direct_actuator\n"
    ),
    "px4_msgs/msg/TrajectorySetpoint": (
        "uint32 MESSAGE_VERSION = 0\nuint64 timestamp\nfloat32[3] position\nfloat32[3] velocity\n"
        "float32[3] acceleration\nfloat32[3] jerk\nfloat32 yaw\nfloat32 yawspeed\n"
    ),
    "px4_msgs/msg/VehicleRatesSetpoint": (
        "uint32 MESSAGE_VERSION = 0\n\nuint64 timestamp\t# time since system start (microseconds)\n\n"
        "# body angular rates in FRD frame\nfloat32 roll\t\t# [rad/s] roll rate setpoint\n"
        "float32 pitch\t\t# [rad/s] pitch rate setpoint\nfloat32 yaw\t\t# [rad/s] yaw rate setpoint\n\n"
        "# For clarification: For multicopters thrust_body[0] and thrust[1] are usually 0 and thrust[2] is the "
        "negative throttle demand.\n# For fixed wings thrust_x is the throttle demand and thrust_y, thrust_z will "
        "usually be zero.\nfloat32[3] thrust_body\t# Normalized thrust command in body NED frame [-1,1]\n\n"
        "bool reset_integral\t# Reset roll/pitch/yaw integrals (navigation logic change)\n"
    ),
    "px4_msgs/msg/ActuatorMotors": (
        "# Motor control message\n\nuint32 MESSAGE_VERSION = 0\n\n"
        "uint64 timestamp\t\t\t# time since system start (microseconds)\n"
        "uint64 timestamp_sample\t    # the timestamp the data this control response is based on was sampled\n\n"
        "uint16 reversible_flags     # bitset which motors are configured to be reversible\n\n"
        "uint8 ACTUATOR_FUNCTION_MOTOR1 = 101\n\nuint8 NUM_CONTROLS = 12\n"
        "float32[12] control # range: [-1, 1], where 1 means maximum positive thrust,\n"
        "                    # -1 maximum negative (if not supported by the output, <0 maps to NaN),\n"
        "                    # and NaN maps to disarmed (stop the motors)\n"
    ),
    "px4_msgs/msg/VehicleOdometry": (
        "uint32 MESSAGE_VERSION = 0\nuint64 timestamp\nuint64 timestamp_sample\n"
        "uint8 POSE_FRAME_UNKNOWN = 0\nuint8 POSE_FRAME_NED = 1\nuint8 POSE_FRAME_FRD = 2\nuint8 pose_frame\n"
        "float32[3] position\nfloat32[4] q\n"
        "uint8 VELOCITY_FRAME_UNKNOWN = 0\nuint8 VELOCITY_FRAME_NED = 1\nuint8 VELOCITY_FRAME_FRD = 2\n"
        "uint8 VELOCITY_FRAME_BODY_FRD = 3\nuint8 velocity_frame\n"
        "float32[3] velocity\nfloat32[3] angular_velocity\n"
        "float32[3] position_variance\nfloat32[3] orientation_variance\nfloat32[3] velocity_variance\n"
        "uint8 reset_counter\nint8 quality\n"
    ),
    "crazyflie_interfaces/msg/FullState": (
        "std_msgs/Header header\ngeometry_msgs/Pose pose\ngeometry_msgs/Twist twist\ngeometry_msgs/Vector3 acc\n"
    ),
    "crazyflie_interfaces/msg/VelocityWorld": (
        "std_msgs/Header header\ngeometry_msgs/Vector3 vel\nfloat32 yaw_rate\n"
    ),
}

#: px4_msgs releases whose message layouts the toolkit speaks, and the layout each uses
#: (``OffboardControlMode`` changed in v1.15: ``actuator`` → ``thrust_and_torque`` + ``direct_actuator``;
#: the other px4_msgs types used here are unchanged from v1.14 to v1.17).
PX4_MSGS_LAYOUTS = {"1.14": "1.14", "1.15": "1.15", "1.16": "1.15", "1.17": "1.15"}
PX4_MSGS_DEFAULT = "1.15"


def px4_type(name: str, version: str = PX4_MSGS_DEFAULT) -> str:
    """ROS type name of px4_msgs message ``name`` in the layout of px4_msgs release ``version``.

    ``px4_type("OffboardControlMode", "1.14")`` is ``px4_msgs/msg/OffboardControlMode@v1.14``
    (the DDS transport's v1.14 struct; rclpy uses whatever px4_msgs is installed).
    """
    layout = PX4_MSGS_LAYOUTS[str(version)]
    base = f"px4_msgs/msg/{name}"
    return f"{base}@v1.14" if layout == "1.14" and name == "OffboardControlMode" else base
