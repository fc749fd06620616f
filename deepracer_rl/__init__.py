"""deepracer_rl: DeepRacer-style reinforcement learning on ROS 2, fast on a laptop.

The core (track, car, camera, sim, reward, action_space, env) never imports rclpy;
everything that talks ROS lives in `deepracer_rl.ros`.
"""

__version__ = "0.1.0"
