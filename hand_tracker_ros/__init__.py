"""ROS 2 nodes and the run-time algorithms of hand_tracker (importable without rclpy)."""
