"""ROS 2 deployment of exported policies: node, transports, safety layer, message types.

Runs on a robot computer with only numpy/PyYAML (+ torch for TorchScript policies, +
``cyclonedds`` for the DDS transport or ROS 2 Humble's ``rclpy``); never imports the
simulator, the envs or stable-baselines3.

- :class:`~sim2real.ros2.node.DeployNode` — the node; ``deploy_node`` / ``sim2real deploy`` run it.
- :mod:`~sim2real.ros2.policy` — sidecar parsing and policy loading.
- :mod:`~sim2real.ros2.observation`, :mod:`~sim2real.ros2.kinematics` — observation building, URDF FK.
- :mod:`~sim2real.ros2.safety`, :mod:`~sim2real.ros2.controller` — safety layer and control step.
- :mod:`~sim2real.ros2.controller_drone`, :mod:`~sim2real.ros2.drone` — ``thrust_rates`` / ``motor`` drone
  policies: unit and frame conversion (FLU→FRD, ω²→normalised thrust, motor order), level-out safety.
- :mod:`~sim2real.ros2.excite` — identification experiment on a live arm through the safety layer,
  recorded as a rosbag2 (``sim2real excite``).
- :mod:`~sim2real.ros2.mock_robot`, :mod:`~sim2real.ros2.mock_drone` — mock arm / PX4 vehicle processes.
- :mod:`~sim2real.ros2.adapters` — ros2_control, Crazyswarm2 and PX4 outputs.
- :mod:`~sim2real.ros2.transport` — rclpy / Cyclone DDS transports.
"""
