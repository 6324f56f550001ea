"""Deploy an exported policy on a ros2_control arm.

    ros2 launch sim2real deploy_arm.launch.py robot:=kuka_iiwa policy:=/path/to/policy.pt \
        controller:=forward_position_controller output:=forward_command

The node (``deploy_node``, parameters in ``params/deploy_arm.yaml``) reads
``sensor_msgs/JointState``, runs the policy with the safety layer on and publishes to
``/<controller>/commands`` (ForwardCommandController) or ``/<controller>/joint_trajectory``
(``output:=joint_trajectory``). E-stop: ``ros2 topic pub --once /estop std_msgs/msg/Bool "{data: true}"``;
resume after a fault (stale or non-finite state): ``ros2 topic pub --once /sim2real/resume std_msgs/msg/Bool
"{data: true}"``. On shutdown the node publishes a hold (the measured position; zeros for velocity policies).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    default_params = PathJoinSubstitution([FindPackageShare("sim2real"), "launch", "params", "deploy_arm.yaml"])
    arguments = [
        DeclareLaunchArgument("robot", default_value="kuka_iiwa", description="robot name under robots/"),
        DeclareLaunchArgument("policy", description="exported TorchScript policy (sidecar next to it)"),
        DeclareLaunchArgument("params_file", default_value=default_params, description="node parameter YAML"),
        DeclareLaunchArgument("controller", default_value="",
                              description="ros2_control controller the commands go to "
                              "(default: robot.yaml ros2.topics command / trajectory)"),
        DeclareLaunchArgument("output", default_value="forward_command",
                              description="forward_command | joint_trajectory"),
        DeclareLaunchArgument("rate", default_value="0.0", description="control rate, Hz (0: the policy's)"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock"),
    ]
    node = Node(
        package="sim2real",
        executable="deploy_node",
        name="sim2real_deploy",
        output="screen",
        emulate_tty=True,
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "robot": LaunchConfiguration("robot"),
                "policy": LaunchConfiguration("policy"),
                "controller": LaunchConfiguration("controller"),
                "output": LaunchConfiguration("output"),
                "rate_hz": ParameterValue(LaunchConfiguration("rate"), value_type=float),
                "use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool),
            },
        ],
    )
    return LaunchDescription([*arguments, node])
