"""Run the system-identification experiment on an arm and record it (``sim2real excite``).

    ros2 launch sim2real record_sysid.launch.py robot:=kuka_iiwa bag:=iiwa_sysid_01 \
        excitation:=multisine duration:=60 amplitude:=0.3

Arms (``excite:=true``, the default): starts ``sim2real excite``, which sends the excitation
through the deployment node's safety layer (e-stop: ``ros2 topic pub --once /estop
std_msgs/msg/Bool "{data: true}"``), holds the last measured pose at the end and writes the bag
``bag`` with the joint states and commands ``sim2real calibrate`` reads. ``params_file``
(the deployment node's ``topics.*`` / ``safety.*`` keys, section ``sim2real_excite`` or ``/**``),
``controller``, ``output`` and ``rate`` are passed on. ``extra_topics`` (space separated) are
recorded alongside with ``ros2 bag record`` into ``<bag>_extra``.

``excite:=false`` (and quadrotors): only ``ros2 bag record`` of the identification topics from
robot.yaml ``ros2.topics`` (joint states, command and trajectory topics; quadrotors: odometry,
IMU, pose and setpoint/motor commands) plus ``extra_topics``, while something else drives the robot.
"""

import sys

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


def excite_command(values, python=sys.executable):
    """``sim2real excite`` command line from the launch argument values (a dict of strings)."""
    cmd = [python, "-m", "sim2real", "excite", "--robot", values["robot"], "--out", values["bag"],
           "--excitation", values["excitation"], "--duration", values["duration"],
           "--amplitude", values["amplitude"], "--seed", values["seed"], "--storage", values["storage"],
           "--transport", values["transport"]]
    for flag, key in (("--output", "output"), ("--controller", "controller"), ("--params", "params_file")):
        if values[key]:
            cmd += [flag, values[key]]
    if float(values["rate"] or 0.0) > 0:
        cmd += ["--rate", values["rate"]]
    if values["force"].lower() in ("true", "1"):
        cmd.append("--force")
    return cmd


def bag_record_command(bag, storage, topics, use_sim_time):
    cmd = ["ros2", "bag", "record", "-o", bag, "-s", storage, *topics]
    if use_sim_time:
        cmd.append("--use-sim-time")
    return cmd


def _launch(context):
    names = ("robot", "excite", "bag", "excitation", "duration", "amplitude", "seed", "storage", "transport", "output",
             "controller", "params_file", "rate", "force", "extra_topics", "use_sim_time")
    configs = (LaunchConfiguration("robot"), LaunchConfiguration("excite"), LaunchConfiguration("bag"),
               LaunchConfiguration("excitation"), LaunchConfiguration("duration"), LaunchConfiguration("amplitude"),
               LaunchConfiguration("seed"), LaunchConfiguration("storage"), LaunchConfiguration("transport"),
               LaunchConfiguration("output"), LaunchConfiguration("controller"), LaunchConfiguration("params_file"),
               LaunchConfiguration("rate"), LaunchConfiguration("force"), LaunchConfiguration("extra_topics"),
               LaunchConfiguration("use_sim_time"))
    values = {name: config.perform(context) for name, config in zip(names, configs)}
    extra = values["extra_topics"].split()
    use_sim_time = values["use_sim_time"].lower() in ("true", "1")
    from sim2real.robots import load_robot

    if values["excite"].lower() in ("true", "1") and load_robot(values["robot"]).kind == "arm":
        actions = [ExecuteProcess(cmd=excite_command(values), output="screen", emulate_tty=True)]
        if extra:
            actions.append(ExecuteProcess(cmd=bag_record_command(f"{values['bag']}_extra", values["storage"], extra,
                                                                 use_sim_time), output="screen"))
        return actions
    topics = sysid_topics(values["robot"], values["controller"]) + extra
    return [ExecuteProcess(cmd=bag_record_command(values["bag"], values["storage"], topics, use_sim_time),
                           output="screen")]


def generate_launch_description():
    arguments = [
        DeclareLaunchArgument("robot", default_value="kuka_iiwa", description="robot name under robots/"),
        DeclareLaunchArgument("excite", default_value="true",
                              description="true: run sim2real excite (arms); false: only ros2 bag record"),
        DeclareLaunchArgument("excitation", default_value="multisine", description="multisine | chirp | prbs"),
        DeclareLaunchArgument("duration", default_value="60.0", description="excitation length, s"),
        DeclareLaunchArgument("amplitude", default_value="0.3", description="swing around home per joint, rad"),
        DeclareLaunchArgument("seed", default_value="0", description="excitation seed"),
        DeclareLaunchArgument("transport", default_value="auto", description="auto | rclpy | dds"),
        DeclareLaunchArgument("output", default_value="", description="forward_command | joint_trajectory "
                              "(default forward_command)"),
        DeclareLaunchArgument("policy", default_value="", description="unused here (same arguments as deploy_*)"),
        DeclareLaunchArgument("params_file", default_value="",
                              description="parameter YAML with topics.* / safety.* keys for sim2real excite"),
        DeclareLaunchArgument("controller", default_value="",
                              description="ros2_control controller to command / record (default: robot.yaml)"),
        DeclareLaunchArgument("rate", default_value="0.0", description="command rate, Hz (0: robot.yaml)"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="ros2 bag record stamps with /clock"),
        DeclareLaunchArgument("bag", default_value="sim2real_sysid", description="output bag folder"),
        DeclareLaunchArgument("storage", default_value="sqlite3", description="sqlite3 | mcap"),
        DeclareLaunchArgument("force", default_value="false", description="replace an existing bag (excite)"),
        DeclareLaunchArgument("extra_topics", default_value="", description="more topics, space separated"),
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_launch)])
