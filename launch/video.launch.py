"""
A video file or a folder of images -> hand_detector [-> rviz2]: webcam.launch.py with a file.

Usage::

  ros2 launch hand_tracker video.launch.py video:=/path/to/clip.mp4 [loop:=true] [rviz:=true]
      [model:=...] [namespace:=...] [camera_info_url:=...] [lifecycle:=true [autostart:=false]]
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration


def generate_launch_description():
    share = get_package_share_directory('hand_tracker')
    names = ('model', 'namespace', 'rviz', 'loop', 'params_file', 'camera_info_url', 'lifecycle',
             'autostart')
    return LaunchDescription([
        DeclareLaunchArgument('video', description='video file or folder of images'),
        DeclareLaunchArgument('loop', default_value='true', description='loop the file'),
        DeclareLaunchArgument('model', default_value=''),
        DeclareLaunchArgument('namespace', default_value=''),
        DeclareLaunchArgument('rviz', default_value='false'),
        DeclareLaunchArgument('camera_info_url', default_value='',
                              description='camera calibration YAML; empty = uncalibrated'),
        DeclareLaunchArgument('lifecycle', default_value='false',
                              description='run the detector as a lifecycle node'),
        DeclareLaunchArgument('autostart', default_value='true',
                              description='lifecycle: configure and activate at start-up'),
        DeclareLaunchArgument('params_file',
                              default_value=os.path.join(share, 'config', 'hand_tracker.yaml')),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(os.path.join(share, 'launch', 'webcam.launch.py')),
            launch_arguments=[('device', LaunchConfiguration('video'))]
            + [(n, LaunchConfiguration(n)) for n in names]),
    ])
