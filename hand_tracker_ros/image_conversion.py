"""
sensor_msgs Image / CompressedImage fields <-> RGB uint8 numpy arrays, without cv_bridge.

cv_bridge's compiled module does not load under NumPy 2, so the node converts images itself.
This module imports neither rclpy nor sensor_msgs: callers pass the message fields
(``msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data``), which keeps
it importable and testable with numpy and OpenCV only.

Raw images are read with ``np.frombuffer`` plus a strided view of the rows, so no bytes are
copied until a colour conversion needs new ones; an ``rgb8`` image comes back as a (possibly
read-only) view of ``data``. Colour conversions are OpenCV's (``cv2.cvtColor``), the same ones
cv_bridge uses, and compressed images are decoded with ``cv2.imdecode``.
"""
from __future__ import annotations

import array
from dataclasses import dataclass
import operator
from typing import Optional, Union

import cv2
import numpy as np


#: Largest image (width * height) accepted by default: a guard against corrupt headers.
DEFAULT_MAX_PIXELS = 50_000_000

#: What ``data`` may be: anything exposing the buffer protocol, as rclpy gives
#: ``array.array('B')`` or ``bytes`` for ``uint8[]`` message fields.
BytesLike = Union[bytes, bytearray, memoryview, array.array, np.ndarray]


class ImageConversionError(ValueError):
    """An image message that cannot be converted (bad fields, truncated or corrupt data)."""


@dataclass(frozen=True)
class _Layout:
    """How one raw encoding stores a pixel and how OpenCV turns it into RGB."""

    bytes_per_pixel: int
    channels: int                      # last axis of the pixel view given to the conversion
    to_rgb: Optional[int]              # cv2.COLOR_* code, None when the pixels already are RGB
    pairs_of_pixels: bool = False      # YUV 4:2:2: chroma shared by two pixels, width must be even
    sixteen_bit: bool = False          # mono16: one pixel is two bytes, scaled to 8 bit


_LAYOUTS: dict[str, _Layout] = {
    'rgb8': _Layout(3, 3, None),
    'bgr8': _Layout(3, 3, cv2.COLOR_BGR2RGB),
    'rgba8': _Layout(4, 4, cv2.COLOR_RGBA2RGB),
    'bgra8': _Layout(4, 4, cv2.COLOR_BGRA2RGB),
    'mono8': _Layout(1, 1, cv2.COLOR_GRAY2RGB),
    'mono16': _Layout(2, 1, cv2.COLOR_GRAY2RGB, sixteen_bit=True),
    '8uc1': _Layout(1, 1, cv2.COLOR_GRAY2RGB),
    '8uc3': _Layout(3, 3, cv2.COLOR_BGR2RGB),
    'yuv422': _Layout(2, 2, cv2.COLOR_YUV2RGB_UYVY, pairs_of_pixels=True),
    'uyvy': _Layout(2, 2, cv2.COLOR_YUV2RGB_UYVY, pairs_of_pixels=True),
    'yuv422_yuy2': _Layout(2, 2, cv2.COLOR_YUV2RGB_YUY2, pairs_of_pixels=True),
    'yuyv': _Layout(2, 2, cv2.COLOR_YUV2RGB_YUY2, pairs_of_pixels=True),
}

#: The raw ``sensor_msgs/Image`` encodings :func:`image_to_rgb` reads (matched ignoring case).
SUPPORTED_ENCODINGS: tuple[str, ...] = (
    'rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', 'mono16', '8UC1', '8UC3',
    'yuv422', 'uyvy', 'yuv422_yuy2', 'yuyv')

#: The encodings :func:`rgb_to_image_fields` writes.
OUTPUT_ENCODINGS: tuple[str, ...] = ('rgb8', 'bgr8')


def _as_bytes(data: BytesLike, what: str) -> np.ndarray:
    """Return `data` as a 1-D uint8 array, sharing its memory where the buffer is contiguous."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise ImageConversionError(
                f'{what}: data must be uint8 bytes, got a {data.dtype} array')
        return data.reshape(-1)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError) as exc:
        raise ImageConversionError(
            f'{what}: data must be bytes-like (bytes, bytearray, memoryview, array.array or a '
            f'uint8 numpy array), got {type(data).__name__} ({exc})') from None


def _as_int(value, name: str, encoding: str) -> int:
    try:
        return operator.index(value)
    except TypeError:
        raise ImageConversionError(
            f'{encoding} image: {name} must be an integer, got {value!r}') from None


def _checked_geometry(encoding: str, height, width, step, max_pixels: int):
    """
    Return (layout, height, width, step) of an Image message's fields, checked.

    Raises ImageConversionError for an unknown encoding or an impossible size or step.
    """
    if not isinstance(encoding, str):
        raise ImageConversionError(f'image encoding must be a string, got {encoding!r}')
    layout = _LAYOUTS.get(encoding.strip().lower())
    if layout is None:
        raise ImageConversionError(
            f'unsupported image encoding {encoding!r}; supported: '
            f'{", ".join(SUPPORTED_ENCODINGS)}')
    height = _as_int(height, 'height', encoding)
    width = _as_int(width, 'width', encoding)
    step = _as_int(step, 'step', encoding)
    if height <= 0 or width <= 0:
        raise ImageConversionError(f'empty image: {width}x{height} {encoding} (width and height '
                                   'must be positive)')
    if width * height > max_pixels:
        raise ImageConversionError(
            f'image too large: {width}x{height} {encoding} is {width * height} pixels, more than '
            f'max_pixels={max_pixels}')
    if layout.pairs_of_pixels and width % 2:
        raise ImageConversionError(
            f'odd width: {width}x{height} {encoding} packs pixels in pairs (YUV 4:2:2), so the '
            'width must be even')
    row_bytes = width * layout.bytes_per_pixel
    if step < row_bytes:
        raise ImageConversionError(
            f'step too small: {width}x{height} {encoding} needs at least {row_bytes} bytes per '
            f'row ({layout.bytes_per_pixel} per pixel), got step {step}')
    return layout, height, width, step


def image_to_rgb(encoding: str, height: int, width: int, step: int,
                 is_bigendian: Union[int, bool], data: BytesLike, *,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """
    Convert the fields of a ``sensor_msgs/Image`` to an RGB image.

    Args:
        encoding: one of :data:`SUPPORTED_ENCODINGS` (case is ignored). ``8UC1``/``8UC3`` are
            read as ``mono8``/``bgr8``; ``yuv422``/``uyvy`` are UYVY and
            ``yuv422_yuy2``/``yuyv`` are YUYV (4:2:2, width must be even).
        height, width: image size in pixels, both > 0 and ``height * width <= max_pixels``.
        step: bytes per row, at least ``width * bytes_per_pixel``; any padding is skipped.
        is_bigendian: byte order of ``mono16`` pixels (ignored by the 8-bit encodings).
        data: the pixel bytes, at least ``step * height`` of them (any beyond are ignored).
        max_pixels: the largest ``height * width`` accepted.

    Returns
    -------
        uint8 array of shape (height, width, 3) in RGB order. For ``rgb8`` it is a view of
        ``data`` (read-only when ``data`` is immutable, with row strides of ``step``); copy it
        before writing into it. ``mono16`` keeps the high byte of each pixel (``>> 8``).

    Raises
    ------
        ImageConversionError: unknown encoding, bad size/step, truncated data, odd YUV width.

    """
    layout, height, width, step = _checked_geometry(encoding, height, width, step, max_pixels)
    row_bytes = width * layout.bytes_per_pixel
    buf = _as_bytes(data, f'{width}x{height} {encoding} image')
    needed = step * height
    if buf.size < needed:
        raise ImageConversionError(
            f'truncated image: {width}x{height} {encoding} with step {step} needs {needed} bytes, '
            f'got {buf.size}')

    # Rows of `step` bytes, padding cut off: still a view of `data`.
    rows = buf[:needed].reshape(height, step)[:, :row_bytes]
    if layout.sixteen_bit:
        # Scaling 16 -> 8 bit by >> 8 keeps the most significant byte of each pixel: the first
        # byte of a big-endian pair, the second of a little-endian one.
        pixels = rows[:, 0::2] if is_bigendian else rows[:, 1::2]
    else:
        pixels = rows.reshape(height, width, layout.channels)
    if layout.to_rgb is None:
        return pixels
    return cv2.cvtColor(pixels, layout.to_rgb)


def compressed_to_rgb(format: str, data: BytesLike, *,  # noqa: A002 (the msg field)
                      max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """
    Decode the fields of a ``sensor_msgs/CompressedImage`` (JPEG or PNG) to RGB.

    Args:
        format: the message's ``format``: ``'jpeg'``, ``'png'`` or image_transport's
            ``'<encoding>; <jpeg|png> compressed <bgr8|rgb8|...>'``. The codec itself is read
            from the data; the format only says whether the colour channels were stored
            swapped (``compressed rgb8``). ``compressedDepth`` (depth images) is refused.
        data: the encoded bytes (bytes, array.array('B'), ...).
        max_pixels: the largest decoded ``height * width`` accepted. It is checked after
            decoding; OpenCV's ``OPENCV_IO_MAX_IMAGE_PIXELS`` bounds the decoding itself.

    Returns
    -------
        uint8 (H, W, 3) RGB. Grayscale images are replicated to three channels, alpha is
        dropped, 16-bit PNGs are scaled to 8 bit.

    Raises
    ------
        ImageConversionError: empty, corrupt or undecodable data, depth formats, huge images.

    """
    if not isinstance(format, str):
        raise ImageConversionError(f'compressed image format must be a string, got {format!r}')
    fmt = format.strip().lower()
    if 'compresseddepth' in fmt:
        raise ImageConversionError(
            f'compressed image format {format!r} is a depth image (compressedDepth), not a '
            'camera image')
    buf = _as_bytes(data, f'compressed image ({format!r})')
    if buf.size == 0:
        raise ImageConversionError(f'empty compressed image data (format {format!r})')
    # image_transport writes 'rgb8; jpeg compressed rgb8' when it encoded an RGB-ordered
    # matrix, so the file's "BGR" channels are really RGB: decode without swapping then.
    stored_rgb = 'compressed rgb' in fmt
    flags = cv2.IMREAD_COLOR_BGR if stored_rgb else cv2.IMREAD_COLOR_RGB
    try:
        rgb = cv2.imdecode(buf, flags)
    except cv2.error as exc:
        raise ImageConversionError(f'cannot decode compressed image (format {format!r}, '
                                   f'{buf.size} bytes): {exc}') from None
    if rgb is None or rgb.size == 0:
        raise ImageConversionError(
            f'cannot decode compressed image (format {format!r}, {buf.size} bytes, starting '
            f'{bytes(buf[:8]).hex()}): corrupt data or not a JPEG/PNG')
    height, width = rgb.shape[:2]
    if width * height > max_pixels:
        raise ImageConversionError(
            f'image too large: {width}x{height} ({format!r}) is {width * height} pixels, more '
            f'than max_pixels={max_pixels}')
    return rgb


def rgb_to_image_fields(rgb: np.ndarray, encoding: str = 'rgb8') -> dict:
    """
    Return the ``sensor_msgs/Image`` fields (less the header) for publishing an RGB image.

    Args:
        rgb: uint8 (H, W, 3) RGB image, any strides.
        encoding: ``'rgb8'`` or ``'bgr8'`` (see :data:`OUTPUT_ENCODINGS`).

    Returns
    -------
        ``dict(encoding, height, width, step, is_bigendian, data)`` with ``data`` the tightly
        packed pixel bytes (``step == width * 3``, ``is_bigendian == 0``).

    Raises
    ------
        ImageConversionError: not a non-empty uint8 (H, W, 3) array, or an unknown encoding.

    """
    if encoding not in OUTPUT_ENCODINGS:
        raise ImageConversionError(
            f'cannot publish encoding {encoding!r}; supported: {", ".join(OUTPUT_ENCODINGS)}')
    if not isinstance(rgb, np.ndarray):
        raise ImageConversionError(f'rgb must be a numpy array, got {type(rgb).__name__}')
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageConversionError(
            f'rgb must be a uint8 (H, W, 3) array, got {rgb.dtype} {rgb.shape}')
    height, width = rgb.shape[:2]
    if height == 0 or width == 0:
        raise ImageConversionError(f'empty image: {width}x{height}')
    pixels = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if encoding == 'bgr8' else rgb
    return {'encoding': encoding, 'height': int(height), 'width': int(width),
            'step': int(width) * 3, 'is_bigendian': 0, 'data': pixels.tobytes()}
