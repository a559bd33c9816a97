"""
The one home of the differences between the ROS 2 distributions this package supports.

Humble (rclpy 3.3, Fast DDS 2.6), Jazzy (rclpy 7.1, Fast DDS 2.14) and Kilted (rclpy 9.1,
Fast DDS 3.2). Everything else the nodes use has the same form on all three (the README's
table says what was run and what was read). Code that needs something one distribution lacks
asks here, by feature where rclpy can tell, else by distribution. Importable without rclpy.
"""
from __future__ import annotations

from importlib import metadata
import os
from typing import Callable, Mapping, Optional, TYPE_CHECKING

if TYPE_CHECKING:
    from rclpy.node import Node

#: The environment variables naming a Fast DDS XML profile: 3.x reads the first, 2.x only the
#: second (with the first alone, a Jazzy subscriber got 1 of 30 best-effort 640x480 frames; with
#: the second, 30 of 30). Kilted's rmw reads the second too, but logs a deprecation warning in
#: every process, so each distribution gets its own.
FASTDDS_PROFILE_VARIABLES = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')
_FAST_DDS_2 = ('humble', 'iron', 'jazzy')
#: The PyPI wheels' rclpy major version -> distribution (the pip route sets no ROS_DISTRO).
_RCLPY_MAJOR = {3: 'humble', 4: 'iron', 7: 'jazzy', 9: 'kilted'}


def ros_distro(environ: Optional[Mapping[str, str]] = None) -> str:
    """
    Return the distribution: ``ROS_DISTRO`` (a sourced ROS), else the ros-rclpy wheel's.

    '' when neither tells (an rclpy built from source without ROS_DISTRO set).
    """
    env = os.environ if environ is None else environ
    if env.get('ROS_DISTRO'):
        return env['ROS_DISTRO']
    try:
        major = int(metadata.version('ros-rclpy').split('.')[0])
    except (metadata.PackageNotFoundError, ValueError):
        return ''
    return _RCLPY_MAJOR.get(major, '')


def fastdds_profile_variable_name(environ: Optional[Mapping[str, str]] = None) -> str:
    """Return the variable this distribution's Fast DDS reads its XML profile from."""
    fast_dds_2 = ros_distro(environ) in _FAST_DDS_2
    return FASTDDS_PROFILE_VARIABLES[1] if fast_dds_2 else FASTDDS_PROFILE_VARIABLES[0]


def subscription_event_callbacks(**callbacks):
    """
    Return rclpy's ``SubscriptionEventCallbacks(**callbacks)``.

    It lives in ``rclpy.event_handler`` since Iron; Humble has it in ``rclpy.qos_event`` (which
    Iron and Jazzy keep as a deprecated alias).
    """
    try:
        from rclpy.event_handler import SubscriptionEventCallbacks
    except ImportError:  # Humble
        from rclpy.qos_event import SubscriptionEventCallbacks
    return SubscriptionEventCallbacks(**callbacks)


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
