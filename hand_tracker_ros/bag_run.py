"""`hand-tracker run` with bags: the source node (camera or bag player) and the bag recorder."""
from __future__ import annotations

from typing import Callable

from rclpy.node import Node
from rclpy.parameter import Parameter

from .bags import BagError, BagRecorder, is_bag  # noqa: F401 - BagError: for the caller

__all__ = ['BagError', 'make_source_node', 'start_bag_recording']


def make_source_node(args, cam_over: list, det_over: list, detector: Callable[[], Node]) -> Node:
    """
    Return a BagPlayerNode when ``args.source`` is a bag, else the CameraNode with ``cam_over``.

    For a bag with a CompressedImage topic ``use_compressed`` is added to ``det_over``.
    ``detector()`` returns the detector node once it exists (flow control at ``--bag-rate 0``).
    """
    if not is_bag(str(args.source)):
        from .camera_node import CameraNode
        return CameraNode(parameter_overrides=cam_over)
    from .bag_nodes import BagPlayerNode

    def frames_done() -> int:
        st = detector().pipeline.stats
        return st.processed + st.failed + st.dropped_stale

    player = BagPlayerNode(str(args.source), args.bag_topic, args.bag_rate, frames_done,
                           subscribers=2 if args.record_bag else 1)
    det_over.append(Parameter('use_compressed', value=player.source.compressed))
    return player


def start_bag_recording(node: Node, path, det_over: list,
                        compression: str = 'zstd') -> BagRecorder:
    """Record the images the detector sees with its detections, hands and gestures."""
    from sensor_msgs.msg import CompressedImage, Image
    from vision_msgs.msg import Detection2DArray

    from hand_tracker.msg import GestureEvent, TrackedHandArray

    from .bag_nodes import record_topics
    compressed = any(p.name == 'use_compressed' and p.value for p in det_over)
    recorder = BagRecorder(str(path), compression)
    record_topics(node, recorder, {
        'image/compressed' if compressed else 'image': CompressedImage if compressed else Image,
        'detections': Detection2DArray, 'hands': TrackedHandArray, 'gestures': GestureEvent})
    return recorder
