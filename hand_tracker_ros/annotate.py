"""
Drawing of detections, tracks and gestures on an RGB image (OpenCV), for the annotated topic.

:func:`draw_annotations` never modifies its input; it returns a new uint8 RGB image. Colours are
stable per track id. Gesture names stay on screen while the caller passes them in: use
:class:`RecentGestures` to keep each hand's last gesture for about a second.
"""
from __future__ import annotations

import colorsys
from typing import Mapping, Optional, Sequence

import cv2
import numpy as np

from .detections import Detections
from .gestures import RecognisedGesture
from .hands import HAND_SKELETON
from .tracking import Track, TrackState


_FONT = cv2.FONT_HERSHEY_SIMPLEX
_DETECTION_COLOUR = (235, 235, 235)
_TEXT_DARK = (0, 0, 0)
_TEXT_LIGHT = (255, 255, 255)
_STATUS_BACKGROUND = (30, 30, 30)


def track_colour(track_id: int) -> tuple[int, int, int]:
    """
    Return a bright RGB colour for a track id: the same for the same id.

    Neighbouring ids far apart in hue (golden-ratio steps).
    """
    hue = (int(track_id) * 0.6180339887498949) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(round(r * 255)), int(round(g * 255)), int(round(b * 255))


class RecentGestures:
    """
    The last gesture of each hand, for `keep_s` seconds of image time (to draw it a while).

    Feed every frame's events; pass the result to :func:`draw_annotations` as ``gestures``.
    """

    def __init__(self, keep_s: float = 1.0) -> None:
        self.keep_s = keep_s
        self._last: dict[int, RecognisedGesture] = {}

    def update(self, events: Sequence[RecognisedGesture], stamp: float) -> list[RecognisedGesture]:
        """
        Add this frame's `events`; return the gestures to show at `stamp`, by hand id.

        A stamp older than the shown events (a looping bag) clears them.
        """
        for ev in events:
            self._last[ev.hand_id] = ev
        self._last = {i: ev for i, ev in self._last.items()
                      if 0.0 <= stamp - ev.end <= self.keep_s}
        return [self._last[i] for i in sorted(self._last)]


def draw_label(img: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int],
               font_scale: float, thickness: int) -> None:
    """
    Draw `text` on a filled box of `colour` with its bottom-left corner at (x, y), in place.

    The label is kept inside the image (moved below y if it would leave the top).
    """
    (tw, th), baseline = cv2.getTextSize(text, _FONT, font_scale, thickness)
    pad = max(1, thickness)
    h, w = img.shape[:2]
    x = int(np.clip(x, 0, max(w - tw - 2 * pad, 0)))
    if y - th - baseline - 2 * pad < 0:
        y = th + baseline + 2 * pad
    y = int(min(y, h - 1))
    cv2.rectangle(img, (x, y - th - baseline - 2 * pad), (x + tw + 2 * pad, y), colour, cv2.FILLED)
    text_colour = _TEXT_DARK if sum(colour) > 3 * 110 else _TEXT_LIGHT
    cv2.putText(img, text, (x + pad, y - baseline - pad), _FONT, font_scale, text_colour,
                thickness, cv2.LINE_AA)


def draw_box(img: np.ndarray, box, colour: tuple[int, int, int], thickness: int,
             text: str = '', font_scale: float = 0.45, font_thickness: int = 1,
             line_type: int = cv2.LINE_AA) -> tuple[int, int, int, int]:
    """
    Draw the pixel box `box` on `img` in place, with `text` on a label at its top left.

    Returns the box rounded to integer pixels ``(x0, y0, x1, y1)``.
    """
    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    cv2.rectangle(img, (x0, y0), (x1, y1), colour, thickness, line_type)
    if text:
        draw_label(img, text, x0, y0, colour, font_scale, font_thickness)
    return x0, y0, x1, y1


def _draw_faint_boxes(img: np.ndarray, tracks: Sequence[Track], alpha: float = 0.4) -> None:
    """Thin boxes of the lost `tracks`, blended at `alpha` into `img` (in place), no label."""
    if not tracks:
        return
    overlay = img.copy()
    for t in tracks:
        draw_box(overlay, t.box, track_colour(t.id), 1, line_type=cv2.LINE_8)
    cv2.addWeighted(overlay, alpha, img, 1.0 - alpha, 0.0, dst=img)


def _draw_tracks(img: np.ndarray, tracks: Sequence[Track], thick: int,
                 fonts: dict) -> dict[int, tuple[int, int, int, int]]:
    """Draw the seen tracks in full and the lost ones faint; return the seen boxes by id."""
    seen = [t for t in tracks if t.state != TrackState.LOST]
    _draw_faint_boxes(img, [t for t in tracks if t.state == TrackState.LOST])
    boxes_by_id = {}
    for t in seen:
        colour = track_colour(t.id)
        if len(t.history) >= 2:
            pts = np.round(np.asarray(t.history)).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(img, [pts], False, colour, max(1, thick // 2), cv2.LINE_AA)
        text = f'#{t.id} {t.score:.2f}' + (f' {t.side}' if t.side else '')
        boxes_by_id[t.id] = draw_box(img, t.box, colour,
                                     thick if t.state == TrackState.CONFIRMED else 1, text,
                                     **fonts)
    return boxes_by_id


def _draw_texts(img: np.ndarray, status: str, gestures: Sequence[RecognisedGesture],
                boxes_by_id: Mapping[int, tuple[int, int, int, int]], font_scale: float,
                font_thick: int) -> None:
    """Draw the status line and the gesture names (under their hand, else at the top left)."""
    line_h = cv2.getTextSize('Ag', _FONT, font_scale, font_thick)[0][1] + 4 * font_thick + 4
    y_text = line_h
    if status:
        draw_label(img, status, 0, y_text, _STATUS_BACKGROUND, font_scale, font_thick)
        y_text += line_h
    for ev in gestures:
        text = f'{ev.name} ({ev.confidence:.2f})'
        if ev.hand_id in boxes_by_id:
            x0, _, _, y1 = boxes_by_id[ev.hand_id]
            draw_label(img, text, x0, y1 + line_h, track_colour(ev.hand_id), font_scale,
                       font_thick)
        else:
            draw_label(img, f'#{ev.hand_id} {text}', 0, y_text, track_colour(ev.hand_id),
                       font_scale, font_thick)
            y_text += line_h


def draw_skeleton(img: np.ndarray, keypoints: np.ndarray, colour: tuple[int, int, int],
                  thickness: int = 2) -> None:
    """Draw one hand's 21 keypoints (pixels; any NaN: nothing) and their bones on `img`."""
    kp = np.asarray(keypoints, np.float64)[:, :2]
    if kp.shape != (21, 2) or not np.isfinite(kp).all() or np.abs(kp).max() > 1e6:
        return
    pts = np.rint(kp).astype(np.int32)
    for a, b in HAND_SKELETON:
        cv2.line(img, tuple(int(v) for v in pts[a]), tuple(int(v) for v in pts[b]), colour,
                 max(1, thickness // 2 + 1), cv2.LINE_AA)
    for p in pts:
        cv2.circle(img, (int(p[0]), int(p[1])), thickness + 1, _TEXT_LIGHT, -1, cv2.LINE_AA)
        cv2.circle(img, (int(p[0]), int(p[1])), thickness, colour, -1, cv2.LINE_AA)


def draw_annotations(rgb: np.ndarray, detections: Optional[Detections] = None,
                     tracks: Optional[Sequence[Track]] = None,
                     gestures: Optional[Sequence[RecognisedGesture]] = None,
                     labels: Optional[Mapping[int, str]] = None, status: str = '',
                     keypoints: Optional[np.ndarray] = None,
                     poses: Optional[Sequence[str]] = None) -> np.ndarray:
    """
    Return a copy of `rgb` (H, W, 3) uint8 with the results drawn on it.

    detections: thin light boxes; with their class name (from `labels`, {class id: name}) and
                score when no `tracks` are given.
    tracks:     the hands seen in this frame (confirmed: thick, tentative: thin) get a box in
                the track's colour, a label "#id score [side]" and the trail of the track's
                recent centres; a lost track (not seen, its box only predicted) gets a thin,
                faint box without label or trail.
    gestures:   each event's name under its hand's box (or at the top left if that hand has no
                track here); pass :meth:`RecentGestures.update` output to keep them ~1 s.
    status:     a line of text at the top left (e.g. "12.5 fps, 2 hands"); '' for none.
    keypoints:  (N, 21, >=2) pixel keypoints of the N detections (NaN rows: none): the hand
                skeleton, in the colour of the track matched to that detection.
    poses:      a text per detection (its static pose, e.g. "thumb_up 0.93"; '' for none),
                inside the top left of its box.
    Raises ValueError if `rgb` is not an (H, W, 3) uint8 array.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(
            f'draw_annotations: expected (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}')
    img = np.array(rgb, copy=True, order='C')
    scale = max(min(img.shape[:2]) / 480.0, 0.5)
    thick = max(1, int(round(2 * scale)))
    font_scale = 0.45 * scale
    font_thick = max(1, int(round(scale)))
    labels = labels or {}

    fonts = {'font_scale': font_scale, 'font_thickness': font_thick}
    for i in range(len(detections) if detections is not None else 0):
        cls = int(detections.classes[i])
        text = '' if tracks is not None else \
            f'{labels.get(cls, str(cls))} {float(detections.scores[i]):.2f}'
        draw_box(img, detections.boxes[i], _DETECTION_COLOUR, 1, text, **fonts)

    if keypoints is not None:
        colours = {t.det_index: track_colour(t.id) for t in tracks or ()
                   if t.det_index is not None}
        for i, kp in enumerate(np.asarray(keypoints, np.float64).reshape(-1, 21, 3)):
            draw_skeleton(img, kp, colours.get(i, _DETECTION_COLOUR), thick)
    boxes_by_id = _draw_tracks(img, tracks or (), thick, fonts)
    if poses is not None and detections is not None:
        line_h = cv2.getTextSize('Ag', _FONT, font_scale, font_thick)[0][1] + 4 * font_thick + 4
        colours = {t.det_index: track_colour(t.id) for t in tracks or ()
                   if t.det_index is not None}
        for i, text in enumerate(poses[:len(detections)]):
            if text:
                x0, y0 = (int(round(float(v))) for v in detections.boxes[i][:2])
                draw_label(img, text, x0, y0 + line_h, colours.get(i, _DETECTION_COLOUR),
                           font_scale, font_thick)
    _draw_texts(img, status, gestures or (), boxes_by_id, font_scale, font_thick)
    return img
