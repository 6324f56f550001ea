"""The MuJoCo "hardware": robots simulated in a second physics engine behind their real ROS 2 topics."""
