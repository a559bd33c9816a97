"""
SSD-style data augmentation on numpy images with pixel boxes (OpenCV, no TensorFlow).

Boxes are ``float32 (N, 4)`` ``[x_min, y_min, x_max, y_max]`` pixels of the image they go
with. Every transform returns the image and the boxes moved with it, so a box covers the same
pixels before and after.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def _area(boxes: np.ndarray) -> np.ndarray:
    return (np.clip(boxes[:, 2] - boxes[:, 0], 0, None)
            * np.clip(boxes[:, 3] - boxes[:, 1], 0, None))


def crop(image: np.ndarray, boxes: np.ndarray, window: tuple[int, int, int, int],
         min_visible: float = 0.3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Cut ``window = (x0, y0, x1, y1)`` out of `image`.

    Boxes are clipped to the window and shifted into its coordinates; a box is kept if at
    least `min_visible` of its area remains (a hand partly cut by the crop is still a hand).
    Returns ``(image, boxes, keep)`` where `keep` is the boolean mask of the input boxes kept.
    """
    x0, y0, x1, y1 = window
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    clipped = np.stack([np.clip(b[:, 0], x0, x1), np.clip(b[:, 1], y0, y1),
                        np.clip(b[:, 2], x0, x1), np.clip(b[:, 3], y0, y1)], axis=1)
    visible = _area(clipped) / np.maximum(_area(b), 1e-6)
    keep = (visible >= min_visible) & (_area(clipped) > 0)
    out = clipped[keep] - np.array([x0, y0, x0, y0], np.float32)
    return image[y0:y1, x0:x1], out.astype(np.float32), keep


def hflip(image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror the image left-right and its boxes with it."""
    w = image.shape[1]
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    return image[:, ::-1], np.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], axis=1)


def expand(image: np.ndarray, boxes: np.ndarray, ratio: float, offset: tuple[float, float],
           fill: tuple[int, int, int] = (124, 116, 104)) -> tuple[np.ndarray, np.ndarray]:
    """
    Zoom out: place `image` on a `ratio` times larger canvas of `fill`.

    `fill` is the ImageNet mean, the image goes at fractional `offset` (x, y in [0, 1]); hands
    get smaller, boxes move with the image.
    """
    h, w = image.shape[:2]
    cw, ch = int(round(w * ratio)), int(round(h * ratio))
    x0, y0 = int(offset[0] * (cw - w)), int(offset[1] * (ch - h))
    canvas = np.empty((ch, cw, 3), np.uint8)
    canvas[:] = fill
    canvas[y0:y0 + h, x0:x0 + w] = image
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    return canvas, b + np.array([x0, y0, x0, y0], np.float32)


def photometric(image: np.ndarray, rng: np.random.Generator, brightness: float = 32,
                contrast: tuple[float, float] = (0.7, 1.3),
                saturation: tuple[float, float] = (0.7, 1.3), hue: float = 8) -> np.ndarray:
    """Random brightness, contrast, saturation and hue (OpenCV HSV, hue in degrees / 2)."""
    img = image.astype(np.float32)
    img = img * rng.uniform(*contrast) + rng.uniform(-brightness, brightness)
    hsv = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.int16)
    hsv[..., 0] = (hsv[..., 0] + int(rng.uniform(-hue, hue))) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(*saturation), 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


def motion_blur(image: np.ndarray, length: float, angle: float) -> np.ndarray:
    """
    Blur as a straight camera or hand motion would: ``length`` pixels along ``angle`` degrees.

    The kernel is a line of that length through its centre (``cv2.line``, anti-aliased),
    normalised to sum 1, applied with ``cv2.filter2D``; boxes do not move. A length below 2
    pixels returns the image unchanged.
    """
    if length < 2:
        return image
    size = int(np.ceil(length)) | 1
    c = size // 2
    dx, dy = np.cos(np.radians(angle)) * length / 2, np.sin(np.radians(angle)) * length / 2
    kernel = np.zeros((size, size), np.float32)
    shift = 4  # sub-pixel end points, in 1 / 2**shift px
    scale = 1 << shift
    cv2.line(kernel, (round((c - dx) * scale), round((c - dy) * scale)),
             (round((c + dx) * scale), round((c + dy) * scale)), 1.0, 1, cv2.LINE_AA, shift)
    kernel /= kernel.sum()
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT)


@dataclass
class SSDAugmenter:
    """
    The SSD recipe (OD API ``ssd_random_crop`` / zoom-out + flip + colour jitter).

    An image is either zoomed out (``expand_probability``, canvas up to ``max_expand`` times
    the image: smaller hands than in the data) or else, with ``crop_probability``, cropped
    (larger hands). A crop keeps a patch of ``area`` fraction of the image with aspect ratio
    (relative to the image's) in ``aspect``, drawn until the patch covers at least a randomly
    chosen ``min_object_covered`` fraction of some hand (or the original image is kept after
    ``max_attempts``); hands with less than ``min_visible`` of their area left are dropped.
    With ``blur_probability`` the result is motion-blurred (:func:`motion_blur`, a random
    direction, length up to ``max_blur`` of the image's diagonal), as a head-worn or hand-held
    camera blurs moving hands.
    """

    expand_probability: float = 0.3
    max_expand: float = 2.0
    crop_probability: float = 0.7
    min_object_covered: tuple[float, ...] = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)
    area: tuple[float, float] = (0.2, 1.0)
    aspect: tuple[float, float] = (0.5, 2.0)
    min_visible: float = 0.3
    max_attempts: int = 30
    flip_probability: float = 0.5
    photometric_probability: float = 0.8
    blur_probability: float = 0.0
    max_blur: float = 0.03

    def random_window(self, width: int, height: int, boxes: np.ndarray,
                      rng: np.random.Generator) -> tuple[int, int, int, int]:
        """Return a crop window ``(x0, y0, x1, y1)`` satisfying the coverage constraint."""
        b = np.asarray(boxes, np.float32).reshape(-1, 4)
        need = float(rng.choice(self.min_object_covered))
        for _ in range(self.max_attempts):
            area = rng.uniform(*self.area)
            ar = np.exp(rng.uniform(*np.log(self.aspect)))
            w = min(1.0, np.sqrt(area * ar))
            h = min(1.0, np.sqrt(area / ar))
            cw, ch = max(int(w * width), 2), max(int(h * height), 2)
            x0 = int(rng.integers(0, width - cw + 1))
            y0 = int(rng.integers(0, height - ch + 1))
            win = np.array([x0, y0, x0 + cw, y0 + ch], np.float32)
            if len(b) == 0:
                return x0, y0, x0 + cw, y0 + ch
            lo = np.maximum(b[:, :2], win[:2])
            hi = np.minimum(b[:, 2:], win[2:])
            covered = np.prod(np.clip(hi - lo, 0, None), axis=1) / np.maximum(_area(b), 1e-6)
            if covered.max() >= need:
                return x0, y0, x0 + cw, y0 + ch
        return 0, 0, width, height

    def __call__(self, image: np.ndarray, boxes: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One random augmentation of ``(image, boxes)``."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        if rng.random() < self.expand_probability:
            image, boxes = expand(image, boxes, rng.uniform(1.0, self.max_expand),
                                  (rng.random(), rng.random()))
        elif rng.random() < self.crop_probability:
            win = self.random_window(image.shape[1], image.shape[0], boxes, rng)
            image, boxes, _ = crop(image, boxes, win, self.min_visible)
        if rng.random() < self.flip_probability:
            image, boxes = hflip(image, boxes)
        if rng.random() < self.photometric_probability:
            image = photometric(image, rng)
        if self.blur_probability > 0 and rng.random() < self.blur_probability:
            diagonal = float(np.hypot(image.shape[0], image.shape[1]))
            image = motion_blur(image, rng.uniform(0.0, self.max_blur) * diagonal,
                                rng.uniform(0.0, 180.0))
        return np.ascontiguousarray(image), boxes


# ----------------------------------------------------------------------------- composition
@dataclass
class Cutout:
    """
    A hand to paste: the RGB pixels of its box and a same-sized uint8 mask (1 = hand).

    A polygon hand (EgoHands) has its exact mask; a hand cut from a box has a full mask.
    """

    rgb: np.ndarray
    mask: np.ndarray


def polygon_cutout(image: np.ndarray, polygon: np.ndarray) -> Cutout | None:
    """
    Return the hand inside `polygon` (``(N, 2)`` x, y pixels of `image`), cut to its box.

    None when the polygon has no pixel in the image.
    """
    h, w = image.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1)
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    return Cutout(image[y0:y1, x0:x1].copy(), mask[y0:y1, x0:x1])


def box_cutout(image: np.ndarray, box: np.ndarray) -> Cutout:
    """Return the pixels of `box` ([x_min, y_min, x_max, y_max]) with a full mask."""
    x0, y0 = int(np.floor(box[0])), int(np.floor(box[1]))
    x1, y1 = int(np.ceil(box[2])), int(np.ceil(box[3]))
    rgb = image[max(y0, 0):y1, max(x0, 0):x1].copy()
    return Cutout(rgb, np.ones(rgb.shape[:2], np.uint8))


def paste(canvas: np.ndarray, boxes: np.ndarray, patch: np.ndarray, mask: np.ndarray,
          x0: int, y0: int, min_visible: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """
    Paste `patch` where `mask` is set at ``(x0, y0)`` of `canvas` (it must fit inside).

    Canvas boxes of which less than `min_visible` of the area stays uncovered are dropped
    (a hand hidden by the patch is no longer a visible hand). Returns the new canvas and the
    kept boxes; the patch's own boxes are the caller's (see :func:`paste_cutout`).
    """
    ph, pw = patch.shape[:2]
    full = np.zeros(canvas.shape[:2], np.uint8)
    full[y0:y0 + ph, x0:x0 + pw] = mask
    out = canvas.copy()
    region = out[y0:y0 + ph, x0:x0 + pw]
    region[mask > 0] = patch[mask > 0]
    kept = [k for k in (_visible_box(full, box, min_visible)
                        for box in np.asarray(boxes, np.float32).reshape(-1, 4)) if k is not None]
    return out, np.array(kept, np.float32).reshape(-1, 4)


def _visible_box(covered: np.ndarray, box: np.ndarray, min_visible: float) -> np.ndarray | None:
    """
    Shrink `box` to the box of its pixels not `covered`.

    None when less than `min_visible` of it stays visible.
    """
    h, w = covered.shape
    xa, ya, xb, yb = np.clip(np.round(box).astype(int), 0, [w, h, w, h])
    free = covered[ya:yb, xa:xb] == 0
    if free.size == 0 or free.mean() < min_visible:
        return None
    if free.all():
        return box
    ys, xs = np.nonzero(free)
    return np.array([max(box[0], xa + xs.min()), max(box[1], ya + ys.min()),
                     min(box[2], xa + xs.max() + 1), min(box[3], ya + ys.max() + 1)],
                    np.float32)


def paste_cutout(canvas: np.ndarray, boxes: np.ndarray, cutout: Cutout, height: float,
                 position: tuple[float, float],
                 min_visible: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """
    Paste a hand scaled to `height` pixels at fractional `position` (x, y in [0, 1]).

    Its box is the box of its scaled mask (so it stays exactly on the hand pixels).
    """
    ch, cw = canvas.shape[:2]
    scale = height / cutout.rgb.shape[0]
    pw = int(np.clip(round(cutout.rgb.shape[1] * scale), 1, cw))
    ph = int(np.clip(round(height), 1, ch))
    rgb = cv2.resize(cutout.rgb, (pw, ph), interpolation=cv2.INTER_AREA)
    mask = cv2.resize(cutout.mask, (pw, ph), interpolation=cv2.INTER_NEAREST)
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return canvas, np.asarray(boxes, np.float32).reshape(-1, 4)
    x0, y0 = int(position[0] * (cw - pw)), int(position[1] * (ch - ph))
    out, kept = paste(canvas, boxes, rgb, mask, x0, y0, min_visible)
    new = np.array([[x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1]],
                   np.float32)
    return out, np.concatenate([kept, new])


def _fit(image: np.ndarray, boxes: np.ndarray, width: int, height: int,
         rng: np.random.Generator, min_visible: float) -> tuple[np.ndarray, np.ndarray]:
    """Scale `image` to cover ``width x height`` (aspect kept), then a random crop of that size."""
    h, w = image.shape[:2]
    s = max(width / w, height / h)
    nw, nh = max(width, round(w * s)), max(height, round(h * s))
    img = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    b = np.asarray(boxes, np.float32).reshape(-1, 4) * np.array([nw / w, nh / h] * 2, np.float32)
    x0, y0 = int(rng.integers(0, nw - width + 1)), int(rng.integers(0, nh - height + 1))
    img, b, _ = crop(img, b, (x0, y0, x0 + width, y0 + height), min_visible)
    return img, b


def mosaic(tiles: list[tuple[np.ndarray, np.ndarray]], width: int, height: int,
           rng: np.random.Generator, min_visible: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """
    Put real images side by side on a ``width x height`` canvas.

    ``len(tiles)`` must be a square (4: 2 x 2, 9: 3 x 3); the grid lines are jittered, each tile is
    scaled to cover its cell and cropped to it (hands cut to less than `min_visible` of their area
    are dropped).
    """
    n = int(round(np.sqrt(len(tiles))))
    if n * n != len(tiles) or n < 1:
        raise ValueError(f'mosaic needs a square number of tiles, got {len(tiles)}')
    cuts_x = _grid_cuts(width, n, rng)
    cuts_y = _grid_cuts(height, n, rng)
    canvas = np.empty((height, width, 3), np.uint8)
    out = []
    for k, (img, b) in enumerate(tiles):
        (xa, xb), (ya, yb) = cuts_x[k % n], cuts_y[k // n]
        tile, tb = _fit(img, b, xb - xa, yb - ya, rng, min_visible)
        canvas[ya:yb, xa:xb] = tile
        out.append(tb + np.array([xa, ya, xa, ya], np.float32))
    return canvas, np.concatenate(out).reshape(-1, 4).astype(np.float32)


def _grid_cuts(size: int, n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """`n` consecutive intervals covering ``[0, size)``, each 0.5-1.5 times ``size / n``."""
    widths = rng.uniform(0.5, 1.5, n)
    edges = np.round(np.concatenate([[0], np.cumsum(widths)]) / widths.sum() * size).astype(int)
    return [(int(edges[i]), int(edges[i + 1])) for i in range(n)]


def zoom_out_onto(image: np.ndarray, boxes: np.ndarray, background: np.ndarray,
                  bg_boxes: np.ndarray, ratio: float, offset: tuple[float, float],
                  min_visible: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """
    Zoom out with real context.

    `image` is shrunk by `ratio` and pasted at fractional `offset` onto `background` stretched to
    the image's size; the background's hands that stay visible are kept.
    """
    h, w = image.shape[:2]
    bh, bw = background.shape[:2]
    canvas = cv2.resize(background, (w, h), interpolation=cv2.INTER_AREA)
    cb = np.asarray(bg_boxes, np.float32).reshape(-1, 4) * np.array([w / bw, h / bh] * 2,
                                                                    np.float32)
    pw, ph = max(2, round(w / ratio)), max(2, round(h / ratio))
    small = cv2.resize(image, (pw, ph), interpolation=cv2.INTER_AREA)
    x0, y0 = int(offset[0] * (w - pw)), int(offset[1] * (h - ph))
    out, kept = paste(canvas, cb, small, np.ones((ph, pw), np.uint8), x0, y0, min_visible)
    b = np.asarray(boxes, np.float32).reshape(-1, 4) * np.array([pw / w, ph / h] * 2, np.float32)
    return out, np.concatenate([kept, b + np.array([x0, y0, x0, y0], np.float32)])


def negative_window(width: int, height: int, boxes: np.ndarray, rng: np.random.Generator,
                    around: np.ndarray | None = None, attempts: int = 30
                    ) -> tuple[int, int, int, int] | None:
    """
    Return a window of the image that touches no hand box.

    Around the box `around` (a mined false positive, with 1.2-3x context) when given, else
    anywhere (side 25-60 % of the image). None when no such window is found.
    """
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    for _ in range(attempts):
        if around is not None:
            k = rng.uniform(1.2, 3.0)
            cx, cy = (around[0] + around[2]) / 2, (around[1] + around[3]) / 2
            hw, hh = (around[2] - around[0]) * k / 2, (around[3] - around[1]) * k / 2
            win = np.array([cx - hw, cy - hh, cx + hw, cy + hh])
        else:
            cw, ch = rng.uniform(0.25, 0.6) * width, rng.uniform(0.25, 0.6) * height
            x0, y0 = rng.uniform(0, width - cw), rng.uniform(0, height - ch)
            win = np.array([x0, y0, x0 + cw, y0 + ch])
        win = np.round(np.clip(win, 0, [width, height, width, height])).astype(int)
        if win[2] - win[0] < 8 or win[3] - win[1] < 8:
            continue
        lo, hi = np.maximum(b[:, :2], win[:2]), np.minimum(b[:, 2:], win[2:])
        if not (np.clip(hi - lo, 0, None).prod(axis=1) > 0).any():
            return tuple(int(v) for v in win)
    return None
