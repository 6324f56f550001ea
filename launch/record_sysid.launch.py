"""Record the topics system identification needs with ``ros2 bag record``.

    ros2 launch sim2real record_sysid.launch.py robot:=kuka_iiwa bag:=iiwa_sysid_01

Arms: joint states, the ForwardCommandController command and the JointTrajectory topic;
quadrotors: odometry, IMU, pose and the setpoint/motor command topics; topic names come
from robot.yaml ``ros2.topics`` (what ``sim2real calibrate`` reads back), plus
``extra_topics`` (space separated). ``policy``/``params_file``/``rate`` are accepted so the
same arguments work for all sim2real launch files; the node is not started here.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.substitutions import LaunchConfiguration

ARM_STREAMS = {"joint_states": "/joint_states", "command": "/forward_position_controller/commands",
               "trajectory": "/joint_trajectory_controller/joint_trajectory"}
QUAD_STREAMS = {"odometry": "/odom", "imu": "/imu", "pose": "", "motor_command": "", "cmd_full_state": "",
                "cmd_vel": "", "cmd_velocity_world": "", "px4_odometry": "", "px4_trajectory_setpoint": "",
                "px4_rates_setpoint": "", "px4_actuator_motors": ""}


def sysid_topics(robot_name, controller=""):
    """Topics to record for ``robot_name`` (robot.yaml ``ros2.topics`` over the defaults)."""
    from sim2real.robots import load_robot

    robot = load_robot(robot_name)
    streams = dict(ARM_STREAMS if robot.kind == "arm" else QUAD_STREAMS)
    streams.update({k: str(v) for k, v in robot.ros2.topics.items() if k in streams})
    if controller and robot.kind == "arm":
        streams["command"] = f"/{controller}/commands"
    return sorted({t for t in streams.values() if t})


def _record(context):
    robot = LaunchConfiguration("robot").perform(context)
    controller = LaunchConfiguration("controller").perform(context)
    topics = sysid_topics(robot, controller) + LaunchConfiguration("extra_topics").perform(context).split()
    cmd = ["ros2", "bag", "record", "-o", LaunchConfiguration("bag").perform(context),
           "-s", LaunchConfiguration("storage").perform(context), *topics]
    if LaunchConfiguration("use_sim_time").perform(context).lower() in ("true", "1"):
        cmd.append("--use-sim-time")
    return [ExecuteProcess(cmd=cmd, output="screen")]


def generate_launch_description():
    arguments = [
        DeclareLaunchArgument("robot", default_value="kuka_iiwa", description="robot name under robots/"),
        DeclareLaunchArgument("policy", default_value="", description="unused here (same arguments as deploy_*)"),
        DeclareLaunchArgument("params_file", default_value="", description="unused here"),
        DeclareLaunchArgument("controller", default_value="",
                              description="ros2_control controller whose commands to record (default: robot.yaml)"),
        DeclareLaunchArgument("rate", default_value="0.0", description="unused here"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="stamp with /clock"),
        DeclareLaunchArgument("bag", default_value="sim2real_sysid", description="output bag folder"),
        DeclareLaunchArgument("storage", default_value="sqlite3", description="sqlite3 | mcap"),
        DeclareLaunchArgument("extra_topics", default_value="", description="more topics, space separated"),
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_record)])
