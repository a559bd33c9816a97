"""
`hand_detector_lifecycle`: the hand detector as a managed (lifecycle) node.

The same parameters, topics and processing as ``HandDetectorNode`` (both are
:class:`~hand_tracker_ros.detector_node.DetectorCore`), brought up in steps:

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

import sys

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from .detector_node import DetectorCore
from .spin import spin_node

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class LifecycleHandDetectorNode(DetectorCore, LifecycleNode):
    """Hand detector with configure/activate/deactivate/cleanup/shutdown (module docstring)."""

    def __init__(self, **kwargs):
        super().__init__('hand_detector', **kwargs)
        self._declare_parameters()
        self.declare_parameter('autostart', True, ParameterDescriptor(
            description='configure and activate at start-up (false: wait for a lifecycle '
                        'manager or `ros2 lifecycle set`)', read_only=True))
        self._configured = False
        self.pipeline = self.sub = self.stats_timer = None
        self._publishers_made = []
        self._init_state()

    # ------------------------------------------------------------------ transitions
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load and check the model; create tracker, pipeline and (inactive) publishers."""
        if not self._load_model(self.get_parameter('model_path').value, at_startup=False):
            return FAILURE  # stays unconfigured; the error is logged
        self._init_score_threshold()
        self._publishers_made = self._make_outputs(self.create_lifecycle_publisher)
        self._configured = True
        self.get_logger().info(f'configured: model {self._detector.model_path}')
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Turn the publishers on and subscribe to the camera."""
        result = super().on_activate(state)  # the lifecycle publishers
        if result != SUCCESS:
            return result
        self._subscribe()
        self.get_logger().info(f'active: listening on {self.sub.topic_name}')
        return SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe and finish the frames in flight; the model stays loaded."""
        self._stop_input()
        self.pipeline.wait_idle(timeout=5.0)
        self.get_logger().info('inactive: not processing; the model stays loaded')
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Free model, pipeline and publishers (back to unconfigured)."""
        self._release()
        self.get_logger().info('cleaned up: model and publishers freed')
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Free everything, from any state."""
        self._release()
        return SUCCESS

    def _stop_input(self) -> None:
        if getattr(self, 'sub', None) is not None:  # absent when SIGTERM cut __init__ short
            self.destroy_subscription(self.sub)
            self.sub = None
        if getattr(self, 'stats_timer', None) is not None:
            self.destroy_timer(self.stats_timer)
            self.stats_timer = None

    def _release(self) -> None:
        self._stop_input()
        if getattr(self, 'pipeline', None) is not None:
            self.pipeline.close()
            self.pipeline = None
        for pub in getattr(self, '_publishers_made', ()):
            self.destroy_lifecycle_publisher(pub)
        self._publishers_made = []
        if hasattr(self, '_detector_lock'):
            with self._detector_lock:
                self._detector = None
        self._configured = False

    # ------------------------------------------------------------------ parameters
    def _on_set_parameters(self, params) -> SetParametersResult:
        if self._configured:
            return super()._on_set_parameters(params)
        # unconfigured: values are checked by their descriptors; configure uses them
        return SetParametersResult(successful=True)

    def start(self) -> None:
        """Configure and activate when ``autostart`` is set."""
        if self.get_parameter('autostart').value and self.trigger_configure() == SUCCESS:
            self.trigger_activate()

    def destroy_node(self) -> None:
        """Free everything, then destroy the node."""
        self._release()
        super().destroy_node()


def _make_started() -> LifecycleHandDetectorNode:
    node = LifecycleHandDetectorNode()
    node.start()
    return node


def main(args=None) -> int:
    """Run ``hand_detector_lifecycle`` until Ctrl-C; returns the exit status."""
    return spin_node(_make_started, args)


if __name__ == '__main__':
    sys.exit(main())
