"""
ROS wiring for bags (hand_tracker_ros.bags does the reading and writing).

- :class:`BagPlayerNode` (node name ``camera``) publishes the image topic of a bag on ``image``
  (sensor_msgs/Image) or ``image/compressed`` (CompressedImage), the recorded bytes unchanged, so
  headers and stamps are the original ones; at the recorded speed (``rate`` 1.0, or any factor)
  or, with ``rate`` 0, each frame once the consumer has finished the previous one (as fast as
  the detector goes). It has the attributes `hand-tracker run` reads from the camera node
  (``source``, ``finished``, ``published``).
- :func:`record_topics` subscribes a node to topics in serialized form and writes what arrives
  to a :class:`~hand_tracker_ros.bags.BagRecorder`.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Optional

from rclpy.node import Node
from rclpy.qos import QoSProfile

from .bags import BagImageSource, BagRecorder, normalize_msgtype


class BagPlayerNode(Node):
    """Replays the images of a bag (see the module docstring)."""

    def __init__(self, path: str, topic: Optional[str] = None, rate: float = 1.0,
                 frames_done: Optional[Callable[[], int]] = None, subscribers: int = 1,
                 **kwargs):
        super().__init__('camera', **kwargs)
        from sensor_msgs.msg import CompressedImage, Image
        self.source = BagImageSource(path, topic)
        self.rate = rate
        self._frames_done = frames_done
        self._subscribers = subscribers  # start once this many subscribed (detector, recorder)
        self.published = 0
        self.finished = threading.Event()
        self.pub = self.create_publisher(CompressedImage if self.source.compressed else Image,
                                         'image/compressed' if self.source.compressed else 'image',
                                         QoSProfile(depth=10))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name='bag_player', daemon=True)
        self._thread.start()
        speed = f'{rate:g}x recorded speed' if rate > 0 else 'as fast as the detector goes'
        self.get_logger().info(f'replaying {len(self.source)} messages of {self.source.topic} '
                               f'({self.source.msgtype}) from {path} on {self.pub.topic_name}, '
                               f'{speed}')

    def _wait_consumer(self) -> None:
        """
        Rate 0: wait until the consumer finished every published frame.

        5 s at most: a frame lost on the way must not stall the replay.
        """
        deadline = time.monotonic() + 5.0
        while self._frames_done() < self.published and time.monotonic() < deadline:
            if self._stop.wait(0.002):
                return

    def _loop(self) -> None:
        while self.pub.get_subscription_count() < self._subscribers and not self._stop.wait(0.05):
            pass
        self._stop.wait(0.3)  # the subscriber's side of discovery
        t_bag0 = t_wall0 = None
        for msg in self.source.messages():
            if self._stop.is_set():
                return
            if self.rate > 0:
                if t_bag0 is None:
                    t_bag0, t_wall0 = msg.timestamp_ns, time.monotonic()
                due = t_wall0 + (msg.timestamp_ns - t_bag0) * 1e-9 / self.rate
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    return
            elif self._frames_done is not None:
                self._wait_consumer()
            self.pub.publish(msg.data)
            self.published += 1
        self.get_logger().info(f'end of {self.source.source} after {self.published} frames')
        self.finished.set()

    def destroy_node(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.source.close()
        super().destroy_node()


def record_topics(node: Node, recorder: BagRecorder, topics: dict) -> list:
    """
    Subscribe ``node`` to ``{topic: message class}`` and record what arrives.

    Serialized, reliable, depth 100; every message is written to ``recorder`` with the receive
    time. Returns the subscriptions.
    """
    subs = []
    for topic, cls in topics.items():
        name = node.resolve_topic_name(topic)  # rclpy >= Galactic (ros2/rclpy#636)
        msgtype = normalize_msgtype(cls)

        def write(data, name=name, msgtype=msgtype):
            recorder.write(name, msgtype, data, node.get_clock().now().nanoseconds)
        subs.append(node.create_subscription(cls, topic, write, QoSProfile(depth=100), raw=True))
    return subs
