"""ROS 2 nodes of deepracer_rl: the only modules that import rclpy (thin: parameters, topics, timing)."""
