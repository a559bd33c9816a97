"""
Webcam -> hand_detector (detections, tracks, gestures) [-> rviz2].

Usage::

  ros2 launch hand_tracker webcam.launch.py [device:=0] [model:=/path/model.tflite]
      [namespace:=left_cam] [rviz:=true] [params_file:=/path/hand_tracker.yaml]
      [camera_info_url:=file:///path/calibration.yaml] [lifecycle:=true [autostart:=false]]
"""
import os

from ament_index_python.packages import get_package_share_directory
from hand_tracker_ros.resources import fastdds_profile_variable
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, SetEnvironmentVariable
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node, PushRosNamespace
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description():
    share = get_package_share_directory('hand_tracker')
    args = [
        DeclareLaunchArgument(
            'device', default_value='0',
            description='camera index, /dev/videoN, a video file or an image folder'),
        DeclareLaunchArgument(
            'model', default_value='',
            description='model file (.tflite or OD API frozen .pb); empty = shipped model'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='namespace of all nodes and topics'),
        DeclareLaunchArgument('rviz', default_value='false', description='start rviz2'),
        DeclareLaunchArgument('loop', default_value='false',
                              description='loop a video file or folder'),
        DeclareLaunchArgument(
            'params_file', default_value=os.path.join(share, 'config', 'hand_tracker.yaml'),
            description='parameters of camera and hand_detector'),
        DeclareLaunchArgument(
            'camera_info_url', default_value='',
            description='camera calibration YAML (file:///..., package://... or a path); '
                        'empty = uncalibrated'),
        DeclareLaunchArgument('lifecycle', default_value='false',
                              description='run the detector as a lifecycle (managed) node'),
        DeclareLaunchArgument('autostart', default_value='true',
                              description='lifecycle: configure and activate it at start-up'),
    ]
    lifecycle = LaunchConfiguration('lifecycle')
    model = ParameterValue(LaunchConfiguration('model'), value_type=str)
    params = LaunchConfiguration('params_file')
    nodes = GroupAction([
        PushRosNamespace(LaunchConfiguration('namespace')),
        Node(package='hand_tracker', executable='camera', name='camera', output='screen',
             # typed: launch would YAML-parse device:=0 into an integer
             parameters=[params, {
                 'source': ParameterValue(LaunchConfiguration('device'), value_type=str),
                 'loop': ParameterValue(LaunchConfiguration('loop'), value_type=bool),
                 'camera_info_url': ParameterValue(LaunchConfiguration('camera_info_url'),
                                                   value_type=str)}]),
        Node(package='hand_tracker', executable='hand_detector', name='hand_detector',
             output='screen', condition=UnlessCondition(lifecycle),
             parameters=[params, {'model_path': model}]),
        Node(package='hand_tracker', executable='hand_detector_lifecycle', name='hand_detector',
             output='screen', condition=IfCondition(lifecycle),
             parameters=[params, {'model_path': model, 'autostart': ParameterValue(
                 LaunchConfiguration('autostart'), value_type=bool)}]),
        Node(package='rviz2', executable='rviz2', name='rviz2', output='screen',
             arguments=['-d', os.path.join(share, 'rviz', 'hand_tracker.rviz')],
             condition=IfCondition(LaunchConfiguration('rviz'))),
    ])
    # Images need a large shared-memory segment with Fast DDS; keep the user's own profile if set.
    env = []
    variable = fastdds_profile_variable()
    if variable is not None:
        env.append(SetEnvironmentVariable(variable,
                                          os.path.join(share, 'config', 'fastdds_shm.xml')))
    return LaunchDescription(args + env + [nodes])
