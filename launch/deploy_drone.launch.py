"""Deploy an exported quadrotor policy (PX4 offboard or Crazyswarm2).

    ros2 launch sim2real deploy_drone.launch.py policy:=/path/to/policy.pt
    ros2 launch sim2real deploy_drone.launch.py policy:=/path/to/policy.pt controller:=crazyswarm_velocity

``controller`` selects the command stream; ``auto`` (default) follows the policy's action
mode: ``velocity`` → ``px4_offboard`` (OffboardControlMode + TrajectorySetpoint),
``thrust_rates`` → ``px4_rates`` (OffboardControlMode{body_rate} + VehicleRatesSetpoint),
``motor`` → ``px4_motors`` (OffboardControlMode{direct_actuator} + ActuatorMotors).
Velocity policies can also use ``crazyswarm_full_state`` / ``crazyswarm_velocity``
(crazyflie_interfaces FullState / VelocityWorld). Parameters in ``params/deploy_drone.yaml``.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    default_params = PathJoinSubstitution([FindPackageShare("sim2real"), "launch", "params", "deploy_drone.yaml"])
    arguments = [
        DeclareLaunchArgument("robot", default_value="quadrotor", description="robot name under robots/"),
        DeclareLaunchArgument("policy", description="exported TorchScript policy (sidecar next to it)"),
        DeclareLaunchArgument("params_file", default_value=default_params, description="node parameter YAML"),
        DeclareLaunchArgument("controller", default_value="auto",
                              description="auto (from the policy's action mode) | px4_offboard | px4_rates | "
                                          "px4_motors | crazyswarm_full_state | crazyswarm_velocity"),
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
                "output": LaunchConfiguration("controller"),
                "rate_hz": ParameterValue(LaunchConfiguration("rate"), value_type=float),
                "use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool),
            },
        ],
    )
    return LaunchDescription([*arguments, node])
