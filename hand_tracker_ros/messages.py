"""
Results as ROS messages: detections, tracks, gestures and images (no rclpy, no DDS).

The one place where the detector node's results become messages: every box becomes a
``vision_msgs/BoundingBox2D`` in :func:`bounding_box`, track states and sides are mapped from
:class:`~hand_tracker_ros.tracking.TrackState` and :data:`~hand_tracker_ros.tracking.TRACK_SIDES`
to the ``TrackedHand`` constants, and every message carries the input image's header.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point
from hand_tracker.msg import GestureEvent, TrackedHand, TrackedHandArray
import numpy as np
from sensor_msgs.msg import Image
from vision_msgs.msg import BoundingBox2D, Detection2D, Detection2DArray, ObjectHypothesisWithPose

from .detections import Detections
from .gestures import RecognisedGesture
from .hands import Hands
from .image_conversion import rgb_to_image_fields
from .poses import PoseResult
from .tracking import Track, TRACK_SIDES, TrackState


#: ``TrackedHand.state`` of each track state.
TRACK_STATE_CONSTANTS = {TrackState.TENTATIVE: TrackedHand.STATE_TENTATIVE,
                         TrackState.CONFIRMED: TrackedHand.STATE_CONFIRMED,
                         TrackState.LOST: TrackedHand.STATE_LOST}

#: ``TrackedHand.side`` of each side label (TRACK_SIDES: unknown first, then the vocabulary's).
SIDE_CONSTANTS = dict(zip(TRACK_SIDES, (TrackedHand.SIDE_UNKNOWN, TrackedHand.SIDE_OWN_LEFT,
                                        TrackedHand.SIDE_OWN_RIGHT, TrackedHand.SIDE_OTHER_LEFT,
                                        TrackedHand.SIDE_OTHER_RIGHT)))


def stamp_to_sec(stamp) -> float:
    """Return a ``builtin_interfaces/Time`` in seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


def sec_to_stamp(t: float) -> Time:
    """Seconds as a ``builtin_interfaces/Time`` (nanoseconds rounded)."""
    sec = int(t // 1)
    return Time(sec=sec, nanosec=int(round((t - sec) * 1e9)) % 1_000_000_000)


def bounding_box(box) -> BoundingBox2D:
    """Return a pixel ``[x_min, y_min, x_max, y_max]`` box as a centre-size ``BoundingBox2D``."""
    x0, y0, x1, y1 = (float(v) for v in box)
    bbox = BoundingBox2D()
    bbox.center.position.x = (x0 + x1) / 2.0
    bbox.center.position.y = (y0 + y1) / 2.0
    bbox.size_x = x1 - x0
    bbox.size_y = y1 - y0
    return bbox


def detections_to_msg(header, detections: Detections, labels: Mapping[int, str],
                      track_ids: Optional[Sequence[str]] = None) -> Detection2DArray:
    """
    Return the detections of one image as a ``Detection2DArray`` (empty when nothing was found).

    labels:    {class id: name}; an unknown id is published as its number.
    track_ids: ``Detection2D.id`` per detection (the id of the track it was matched to, '' for
               none); all '' when not given.
    """
    ids = list(track_ids) if track_ids is not None else [''] * len(detections)
    out = Detection2DArray(header=header)
    for i in range(len(detections)):
        det = Detection2D(header=header, id=ids[i], bbox=bounding_box(detections.boxes[i]))
        cls = int(detections.classes[i])
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id = labels.get(cls, str(cls))
        hyp.hypothesis.score = float(detections.scores[i])
        det.results.append(hyp)
        out.detections.append(det)
    return out


def track_ids_by_detection(tracks: Sequence[Track], num_detections: int) -> list[str]:
    """``Detection2D.id`` per detection: the id of the track matched to it, '' for none."""
    ids = [''] * num_detections
    for t in tracks:
        if t.det_index is not None and 0 <= t.det_index < num_detections:
            ids[t.det_index] = str(t.id)
    return ids


def tracked_hand(track: Track, hands: Optional[Hands] = None,
                 min_handedness: float = 0.8, poses: Optional[PoseResult] = None) -> TrackedHand:
    """
    One track as a ``TrackedHand``.

    With `hands` (the detections the track was matched against, as Hands), a track matched in
    this frame carries its hand's keypoints, presence and handedness (unknown below
    `min_handedness`), and with `poses` (one per hand of `hands`) its static pose.
    """
    msg = TrackedHand(
        id=int(track.id), bbox=bounding_box(track.box), score=float(track.score),
        velocity_x=float(track.velocity[0]), velocity_y=float(track.velocity[1]),
        age=float(track.age), hits=int(track.hits),
        state=TRACK_STATE_CONSTANTS[TrackState(track.state)],
        side=SIDE_CONSTANTS.get(track.side, TrackedHand.SIDE_UNKNOWN),
        handedness=TrackedHand.HANDEDNESS_UNKNOWN, handedness_score=0.0, presence=-1.0,
        pose=TrackedHand.POSE_UNKNOWN, pose_name='unknown', finger_count=-1)
    i = track.det_index
    if hands is None or i is None or not 0 <= i < len(hands):
        return msg
    if not np.isnan(hands.presence[i]):
        msg.presence = float(hands.presence[i])
    label, conf = hands.take([i]).handedness(min_handedness)
    msg.handedness = int(label[0])
    msg.handedness_score = float(conf[0]) if label[0] else 0.0
    kp = hands.keypoints[i]
    if np.isfinite(kp).all():
        msg.keypoints = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in kp]
    if poses is not None and i < len(poses.pose):
        msg.pose, msg.pose_name = int(poses.pose[i]), poses.names()[i]
        msg.pose_confidence = float(poses.confidence[i])
        msg.finger_count = int(poses.count[i])
        msg.finger_count_confidence = float(poses.count_confidence[i])
    return msg


def tracks_to_msg(header, tracks: Sequence[Track], width: int, height: int,
                  hands: Optional[Hands] = None,
                  min_handedness: float = 0.8,
                  poses: Optional[PoseResult] = None) -> TrackedHandArray:
    """
    Return the tracks of one image (`width` x `height` pixels) as a ``TrackedHandArray``.

    `hands`, `min_handedness`, `poses`: see :func:`tracked_hand`.
    """
    return TrackedHandArray(header=header, image_width=int(width), image_height=int(height),
                            hands=[tracked_hand(t, hands, min_handedness, poses)
                                   for t in tracks])


def gesture_to_msg(header, gesture: RecognisedGesture) -> GestureEvent:
    """Return a recognised gesture as a ``hand_tracker/GestureEvent`` (image stamps)."""
    return GestureEvent(header=header, hand_id=int(gesture.hand_id),
                        gesture=int(gesture.gesture), name=gesture.name,
                        pose=int(gesture.pose),
                        confidence=float(gesture.confidence), start=sec_to_stamp(gesture.start),
                        end=sec_to_stamp(gesture.end))


def rgb_to_image_msg(header, rgb: np.ndarray) -> Image:
    """Return an RGB uint8 (H, W, 3) image as an ``rgb8`` ``sensor_msgs/Image``."""
    fields = rgb_to_image_fields(rgb, 'rgb8')
    img = Image(header=header, height=fields['height'], width=fields['width'],
                encoding=fields['encoding'], is_bigendian=fields['is_bigendian'],
                step=fields['step'])
    img.data = fields['data']
    return img
