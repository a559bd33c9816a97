"""
Results -> ROS messages (hand_tracker_ros.messages), without DDS: real tracker output.

Real message classes, serialised and read back with rclpy's own (de)serialiser.
"""
from __future__ import annotations

from hand_tracker.msg import GestureEvent, TrackedHand, TrackedHandArray
from hand_tracker_ros import messages
from hand_tracker_ros.detections import Detections
from hand_tracker_ros.gestures import Gesture, RecognisedGesture
from hand_tracker_ros.tracking import HandTracker, TRACK_SIDES, TrackState
import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray

pytestmark = pytest.mark.ros  # rclpy, messages or ROS tools: run on Jazzy too


HEADER = Header(frame_id='cam')
HEADER.stamp.sec, HEADER.stamp.nanosec = 12, 500_000_000


def roundtrip(msg):
    return deserialize_message(serialize_message(msg), type(msg))


def test_bounding_box_is_centre_and_size():
    b = messages.bounding_box(np.float32([10, 20, 50, 100]))
    assert (b.center.position.x, b.center.position.y, b.size_x, b.size_y) == (30, 60, 40, 80)


def test_detections_carry_header_labels_scores_and_track_ids():
    dets = Detections(np.float32([[10, 20, 50, 100], [0, 0, 8, 8]]), np.float32([0.9, 0.4]),
                      np.float32([1, 7]))
    msg = roundtrip(messages.detections_to_msg(HEADER, dets, {1: 'hand'}, ['3', '']))
    assert msg.header == HEADER and [d.header for d in msg.detections] == [HEADER] * 2
    assert [d.id for d in msg.detections] == ['3', '']
    assert [d.results[0].hypothesis.class_id for d in msg.detections] == ['hand', '7']
    assert [d.results[0].hypothesis.score for d in msg.detections] == pytest.approx([0.9, 0.4])
    assert msg.detections[0].bbox.size_x == 40.0
    empty = messages.detections_to_msg(HEADER, Detections(), {1: 'hand'})
    assert isinstance(empty, Detection2DArray) and empty.detections == []


def test_tracks_map_states_and_sides_by_enum():
    tracker = HandTracker()
    boxes = np.float32([[100, 100, 160, 170], [400, 120, 470, 200]])
    for k in range(3):
        tracker.update(Detections(boxes, np.float32([0.9, 0.8]), np.ones(2)), k / 30,
                       ['own_left', 'other_right'])
    tracks = tracker.update(Detections(boxes[:1], np.float32([0.9]), np.ones(1)), 3 / 30,
                            ['own_left'])
    assert [t.state for t in tracks] == [TrackState.CONFIRMED, TrackState.LOST]
    msg = roundtrip(messages.tracks_to_msg(HEADER, tracks, 640, 480))
    assert isinstance(msg, TrackedHandArray) and msg.header == HEADER
    assert (msg.image_width, msg.image_height) == (640, 480)
    assert [h.state for h in msg.hands] == [TrackedHand.STATE_CONFIRMED, TrackedHand.STATE_LOST]
    assert [h.side for h in msg.hands] == [TrackedHand.SIDE_OWN_LEFT,
                                           TrackedHand.SIDE_OTHER_RIGHT]
    assert [h.id for h in msg.hands] == [t.id for t in tracks]
    x0, y0, x1, y1 = tracks[0].box
    assert msg.hands[0].bbox.size_x == pytest.approx(float(x1 - x0), abs=1e-3)
    assert set(messages.SIDE_CONSTANTS) == set(TRACK_SIDES)
    assert set(messages.TRACK_STATE_CONSTANTS) == set(TrackState)
    assert ids_by_detection(tracks, 1) == [str(tracks[0].id)]


def ids_by_detection(tracks, n):
    return messages.track_ids_by_detection(tracks, n)


def test_gesture_event_keeps_image_stamps():
    msg = roundtrip(messages.gesture_to_msg(HEADER, RecognisedGesture(4, Gesture.SWIPE_UP, 0.75,
                                                                      11.25, 12.5)))
    assert isinstance(msg, GestureEvent) and msg.header == HEADER
    assert (msg.hand_id, msg.gesture, msg.name) == (4, GestureEvent.SWIPE_UP, 'swipe_up')
    assert (msg.start.sec, msg.start.nanosec, msg.end.sec, msg.end.nanosec) == \
        (11, 250_000_000, 12, 500_000_000)
    assert messages.stamp_to_sec(msg.end) == 12.5


def test_image_message_is_packed_rgb8():
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    msg = roundtrip(messages.rgb_to_image_msg(HEADER, rgb))
    assert (msg.encoding, msg.height, msg.width, msg.step) == ('rgb8', 4, 5, 15)
    assert bytes(msg.data) == rgb.tobytes() and msg.header == HEADER
