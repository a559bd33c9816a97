"""
`camera` node: publishes a webcam, a video file or a folder of images as sensor_msgs/Image.

Frames are read in a thread of their own (a blocking capture never stalls the executor) and
published as bgr8 (the capture's native order, no conversion) on `image`, stamped with the ROS
clock at capture time, with `camera_info` beside it (same header): the calibration at
`camera_info_url` (camera_calibration YAML), or an uncalibrated one (K = 0) that the log
says is uncalibrated. A file or folder starts playing once `image` has a subscriber. A source
that fails (camera unplugged, file or folder gone) is reopened every second until it is back;
`reconnects` counts the recoveries.
"""
from __future__ import annotations

import sys
import threading

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, Image

from .camera_info import (Calibration, CalibrationError, load_calibration, size_mismatch,
                          uncalibrated)
from .frame_source import FrameSource, Rate, SourceError
from .spin import spin_node


class CameraNode(Node):
    """Publishes the frames of a camera, a video file or a folder of images on ``image``."""

    def __init__(self, **kwargs):
        super().__init__('camera', **kwargs)
        ro = {'read_only': True}
        self.declare_parameter('source', '0', ParameterDescriptor(
            description='camera index ("0"), /dev/videoN, a video file or a folder of images',
            **ro))
        self.declare_parameter('width', 640, ParameterDescriptor(
            description='requested camera width (cameras only)', integer_range=[IntegerRange(
                from_value=0, to_value=7680, step=1)], **ro))
        self.declare_parameter('height', 480, ParameterDescriptor(
            description='requested camera height (cameras only)', integer_range=[IntegerRange(
                from_value=0, to_value=4320, step=1)], **ro))
        self.declare_parameter('fps', 30.0, ParameterDescriptor(
            description='publishing rate in Hz; 0 = as fast as frames come (camera/video native)',
            floating_point_range=[FloatingPointRange(from_value=0.0, to_value=1000.0, step=0.0)],
            **ro))
        self.declare_parameter('loop', False, ParameterDescriptor(
            description='restart a video file or folder at its end', **ro))
        self.declare_parameter('frame_id', 'camera', ParameterDescriptor(
            description='header.frame_id of the published images', **ro))
        self.declare_parameter('camera_info_url', '', ParameterDescriptor(
            description='camera calibration (camera_calibration YAML): file:///path.yaml, '
                        'package://pkg/path.yaml or a path; empty = uncalibrated', **ro))
        g = lambda n: self.get_parameter(n).value  # noqa: E731
        self.frame_id = g('frame_id')
        self.published = 0
        self.read_errors = 0
        self.reconnects = 0
        self.calibration = self._load_calibration(g('camera_info_url'))
        self.pub_info = self.create_publisher(CameraInfo, 'camera_info', QoSProfile(depth=2))
        self.finished = threading.Event()
        self.pub = self.create_publisher(
            Image, 'image', QoSProfile(depth=2),
            qos_overriding_options=QoSOverridingOptions.with_default_policies())
        try:
            self.source = FrameSource(g('source'), g('width'), g('height'), g('fps'), g('loop'))
        except SourceError as exc:
            self.get_logger().error(str(exc))
            raise
        hz = g('fps') if g('fps') > 0 or self.source.kind == 'camera' else self.source.native_fps
        self._rate_hz = hz
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name='camera', daemon=True)
        self._thread.start()
        self.get_logger().info(f'publishing {self.source.kind} {self.source.source!r} on '
                               f'{self.pub.topic_name} at {hz or "native"} Hz')

    def _load_calibration(self, url: str) -> Calibration:
        if not url:
            self.get_logger().info('camera is not calibrated (camera_info_url is empty): '
                                   'publishing an uncalibrated camera_info (K = 0)')
            return uncalibrated(0, 0)
        try:
            cal = load_calibration(url)
        except CalibrationError as exc:
            self.get_logger().error(f'{exc}; publishing an uncalibrated camera_info (K = 0)')
            return uncalibrated(0, 0)
        self.get_logger().info(f'calibration {cal.camera_name!r} ({cal.width}x{cal.height}, '
                               f'{cal.distortion_model}) from {url}')
        return cal

    def _camera_info(self, header, width: int, height: int) -> CameraInfo:
        cal = self.calibration.for_size(width, height)
        if cal is not self.calibration:
            self.calibration = cal
        elif size_mismatch(cal, width, height):
            self.get_logger().warning(size_mismatch(cal, width, height), once=True)
        return CameraInfo(header=header, width=cal.width, height=cal.height,
                          distortion_model=cal.distortion_model, d=cal.d, k=cal.k, r=cal.r,
                          p=cal.p)

    def _reconnect(self, exc: SourceError) -> None:
        self.read_errors += 1
        self.get_logger().error(f'{exc}; retrying [{self.read_errors} read errors]',
                                throttle_duration_sec=5.0)
        if self._stop.wait(1.0):
            return
        if self.source.reopen():
            self.reconnects += 1
            self.get_logger().info(f'{self.source.kind} {self.source.source!r} is back '
                                   f'[{self.reconnects} reconnects]')

    def _loop(self) -> None:
        if self.source.kind != 'camera':
            # recorded data: do not play frames to nobody (a live camera just streams)
            while self.pub.get_subscription_count() == 0 and not self._stop.wait(0.05):
                pass
            self._stop.wait(0.3)  # the subscriber's side of discovery
        rate = Rate(self._rate_hz if self.source.kind != 'camera' else 0)
        while not self._stop.is_set():
            try:
                frame = self.source.read()
            except SourceError as exc:
                self._reconnect(exc)
                continue
            if frame is None:
                self.get_logger().info(
                    f'end of {self.source.source} after {self.published} frames')
                self.finished.set()
                return
            msg = Image(height=frame.shape[0], width=frame.shape[1], encoding='bgr8',
                        is_bigendian=0, step=frame.shape[1] * 3)
            msg.header.stamp = self.get_clock().now().to_msg()
            msg.header.frame_id = self.frame_id
            msg.data = frame.tobytes()
            try:
                self.pub.publish(msg)
                self.pub_info.publish(self._camera_info(msg.header, msg.width, msg.height))
            except Exception:  # noqa: BLE001
                if not self.context.ok():
                    return  # shut down (Ctrl-C) before destroy_node() stopped this thread
                raise
            self.published += 1
            rate.sleep(self._stop)

    def destroy_node(self) -> None:
        if not hasattr(self, '_thread'):  # SIGTERM cut __init__ short: no thread, maybe no source
            if hasattr(self, 'source'):
                self.source.close()
            super().destroy_node()
            return
        self._stop.set()
        self._thread.join(timeout=1.0)
        if self._thread.is_alive():
            # blocked in the driver's read: closing under it is undefined, and the process
            # ends anyway (daemon thread), which releases the device
            self.get_logger().warn(f'{self.source.kind} still blocked in a read at shutdown; '
                                   'not closing it under the reading thread')
        else:
            self.source.close()
        super().destroy_node()


def main(args=None) -> int:
    return spin_node(CameraNode, args, startup_errors=(SourceError,))


if __name__ == '__main__':
    sys.exit(main())
