"""
The one home of the differences between the ROS 2 distributions this package supports.

Humble (rclpy 3.3, Fast DDS 2.6), Jazzy (rclpy 7.1, Fast DDS 2.14) and Kilted (rclpy 9.1,
Fast DDS 3.2). Everything else the nodes use has the same form on all three (the README's
table says what was run and what was read). Code that needs something one distribution lacks
asks here, by feature, not by version. Importable without rclpy.
"""
from __future__ import annotations

from typing import Callable, TYPE_CHECKING

if TYPE_CHECKING:
    from rclpy.node import Node

#: The environment variables naming a Fast DDS XML profile. Fast DDS 2.x (Humble, Jazzy) reads
#: only the second; 3.x (Kilted) reads the first and, when it is unset, the second. Set both.
#: (Measured with the PyPI wheels: with only the first set, a Jazzy subscriber got 1 of 30
#: best-effort 640x480 frames; with the second, 30 of 30, as Kilted did with either.)
FASTDDS_PROFILE_VARIABLES = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')


def add_pre_set_parameters_callback(node: Node, callback: Callable[[list], list]) -> bool:
    """
    Register `callback` to rewrite parameter lists before they are set; False if unsupported.

    rclpy has the pre-set hook since Iron (ros2/rclpy#966), so Jazzy and Kilted have it and
    Humble does not: there a caller must cope with the values as the user gave them.
    """
    add = getattr(node, 'add_pre_set_parameters_callback', None)
    if add is None:
        return False
    add(callback)
    return True
