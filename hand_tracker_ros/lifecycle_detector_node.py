"""`hand_detector_lifecycle`: the hand detector as a managed (lifecycle) node.

The same parameters, topics and processing as :class:`~hand_tracker_ros.detector_node.
HandDetectorNode` (its methods are reused, not copied), brought up in steps:

  configure   load and check the model, create tracker, pipeline and (inactive) publishers
  activate    publishers on, subscribe to the camera: detections flow
  deactivate  unsubscribe, finish the frames in flight, publishers off; the model stays loaded
  cleanup     free model, pipeline and publishers (back to unconfigured)
  shutdown    the same, from any state

``autostart`` (default true) configures and activates the node at start-up;
``ros2 launch hand_tracker webcam.launch.py lifecycle:=true autostart:=false`` leaves it
unconfigured for a lifecycle manager (or ``ros2 lifecycle set /hand_detector configure``).
"""
from __future__ import annotations

import collections
import sys
import threading
import time

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CompressedImage, Image
from vision_msgs.msg import Detection2DArray

from hand_tracker.msg import GestureEvent as GestureEventMsg
from hand_tracker.msg import TrackedHandArray

from .annotate import RecentGestures
from .detector_node import HandDetectorNode
from .gestures import GestureParams, GestureRecognizer
from .pipeline import FramePipeline
from .spin import spin_node
from .tracking import HandTracker, TrackerParams

# HandDetectorNode's pieces that work unchanged on a lifecycle node
_REUSED = ('_declare_parameters', '_group_params', '_load_model', '_on_image', '_on_compressed',
           '_count_drop', '_on_error', '_process', '_finish', '_hands_msg', '_log_stats')
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class LifecycleHandDetectorNode(LifecycleNode):
    """Hand detector with configure/activate/deactivate/cleanup/shutdown (module docstring)."""

    def __init__(self, **kwargs):
        super().__init__('hand_detector', **kwargs)
        self._declare_parameters()
        self.declare_parameter('autostart', True, ParameterDescriptor(
            description='configure and activate at start-up (false: wait for a lifecycle '
                        'manager or `ros2 lifecycle set`)', read_only=True))
        self.drop_reasons = collections.Counter()
        self._error_log_times = {}
        self._detector = None
        self._last_model_error = ''
        self._detector_lock = threading.Lock()
        self._configured = False
        self.pipeline = self.sub = self.stats_timer = None
        self._publishers_made = []
        self.add_on_set_parameters_callback(self._on_set_parameters)

    # ------------------------------------------------------------------ transitions
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        p = lambda name: self.get_parameter(name).value  # noqa: E731
        if not self._load_model(p('model_path'), at_startup=False):
            return FAILURE  # stays unconfigured; the error is logged
        self._tracking = bool(p('track'))
        self._tracker = HandTracker(self._group_params(TrackerParams, 'tracker'))
        self._gestures = GestureRecognizer(self._group_params(GestureParams, 'gestures'))
        self._recent_gestures = RecentGestures(keep_s=1.0)
        out_qos = QoSProfile(depth=10)
        pub = self.create_lifecycle_publisher
        self.pub_detections = pub(Detection2DArray, 'detections', out_qos)
        self.pub_annotated = pub(Image, 'detections/image', QoSProfile(depth=2))
        self._publishers_made = [self.pub_detections, self.pub_annotated]
        if self._tracking:
            self.pub_hands = pub(TrackedHandArray, 'hands', out_qos)
            self.pub_gestures = pub(GestureEventMsg, 'gestures', out_qos)
            self._publishers_made += [self.pub_hands, self.pub_gestures]
        self.pipeline = FramePipeline(self._process, self._finish, workers=p('num_workers'),
                                      queue_size=p('queue_size'),
                                      on_drop=lambda f: self._count_drop('stale'),
                                      on_error=self._on_error, name='hand_detector')
        self._configured = True
        self.get_logger().info(f'configured: model {self._detector.model_path}')
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        p = lambda name: self.get_parameter(name).value  # noqa: E731
        result = super().on_activate(state)  # the lifecycle publishers
        if result != SUCCESS:
            return result
        qos_overrides = QoSOverridingOptions.with_default_policies()
        if p('use_compressed'):
            self.sub = self.create_subscription(
                CompressedImage, 'image/compressed', self._on_compressed,
                qos_profile_sensor_data, qos_overriding_options=qos_overrides)
        else:
            self.sub = self.create_subscription(Image, 'image', self._on_image,
                                                qos_profile_sensor_data,
                                                qos_overriding_options=qos_overrides)
        self._last_input = time.monotonic()
        self._warned_silent = False
        self.stats_timer = self.create_timer(p('stats_period'), self._log_stats)
        self.get_logger().info(f'active: listening on {self.sub.topic_name}')
        return SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_input()
        self.pipeline.wait_idle(timeout=5.0)
        self.get_logger().info('inactive: not processing; the model stays loaded')
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.get_logger().info('cleaned up: model and publishers freed')
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return SUCCESS

    def _stop_input(self) -> None:
        if self.sub is not None:
            self.destroy_subscription(self.sub)
            self.sub = None
        if self.stats_timer is not None:
            self.destroy_timer(self.stats_timer)
            self.stats_timer = None

    def _release(self) -> None:
        self._stop_input()
        if self.pipeline is not None:
            self.pipeline.close()
            self.pipeline = None
        for pub in self._publishers_made:
            self.destroy_lifecycle_publisher(pub)
        self._publishers_made = []
        with self._detector_lock:
            self._detector = None
        self._configured = False

    # ------------------------------------------------------------------ parameters
    def _on_set_parameters(self, params) -> SetParametersResult:
        if self._configured:
            return HandDetectorNode._on_set_parameters(self, params)
        # unconfigured: values are checked by their descriptors; configure uses them
        return SetParametersResult(successful=True)

    def start(self) -> None:
        """Configure and activate when ``autostart`` is set."""
        if self.get_parameter('autostart').value and self.trigger_configure() == SUCCESS:
            self.trigger_activate()

    def destroy_node(self) -> None:
        self._release()
        super().destroy_node()


for _name in _REUSED:
    setattr(LifecycleHandDetectorNode, _name, HandDetectorNode.__dict__[_name])


def _make_started() -> LifecycleHandDetectorNode:
    node = LifecycleHandDetectorNode()
    node.start()
    return node


def main(args=None) -> int:
    return spin_node(_make_started, args)


if __name__ == '__main__':
    sys.exit(main())
