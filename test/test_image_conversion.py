"""image_conversion on a real EgoHands frame: encodings, padding, zero-copy, messages, errors."""
import array

import cv2
from hand_tracker_ros.image_conversion import (compressed_to_rgb, image_to_rgb,
                                               ImageConversionError, OUTPUT_ENCODINGS,
                                               rgb_to_image_fields, SUPPORTED_ENCODINGS)
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image


FRAME = '_LABELLED_SAMPLES/CARDS_OFFICE_S_B/frame_0008.jpg'


@pytest.fixture(scope='module')
def rgb(egohands_dir) -> np.ndarray:
    """Return the real frame as read-only RGB, so no test can alter it for the others."""
    bgr = cv2.imread(str(egohands_dir / FRAME))
    assert bgr is not None, f'cannot read {egohands_dir / FRAME}'
    out = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    out.flags.writeable = False
    return out


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _mono16(rgb: np.ndarray) -> np.ndarray:
    """16-bit gray whose high byte is the 8-bit gray and whose low byte is noise."""
    noise = np.random.default_rng(0).integers(0, 256, rgb.shape[:2], dtype=np.uint16)
    return (_gray(rgb).astype(np.uint16) << 8) | noise


def _rgba(rgb: np.ndarray) -> np.ndarray:
    """RGBA with a varying alpha channel, which the conversion must drop."""
    out = cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA)
    out[..., 3] = np.arange(rgb.shape[1], dtype=np.uint8)
    return out


def _pixels(encoding: str, rgb: np.ndarray) -> tuple[np.ndarray, bool]:
    """`rgb` stored as `encoding`: (H, W, bytes per pixel) uint8, and the big-endian flag."""
    h, w = rgb.shape[:2]
    if encoding == 'rgb8':
        return rgb, False
    if encoding in ('bgr8', '8UC3'):
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), False
    if encoding == 'rgba8':
        return _rgba(rgb), False
    if encoding == 'bgra8':
        return cv2.cvtColor(_rgba(rgb), cv2.COLOR_RGBA2BGRA), False
    if encoding in ('mono8', '8UC1'):
        return _gray(rgb)[..., None], False
    if encoding == 'mono16':
        return _mono16(rgb).astype('<u2').view(np.uint8).reshape(h, w, 2), False
    if encoding in ('yuv422', 'uyvy'):
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_UYVY), False
    if encoding in ('yuv422_yuy2', 'yuyv'):
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_YUY2), False
    raise AssertionError(f'test has no builder for {encoding}')


def _padded(pixels: np.ndarray, pad: int, seed: int = 1) -> tuple[bytes, int]:
    """Return the rows of `pixels` each followed by `pad` random garbage bytes, and the step."""
    h = pixels.shape[0]
    row = pixels.reshape(h, -1)
    out = np.random.default_rng(seed).integers(0, 256, (h, row.shape[1] + pad), dtype=np.uint8)
    out[:, :row.shape[1]] = row
    return out.tobytes(), out.shape[1]


def _check_decoded(encoding: str, out: np.ndarray, rgb: np.ndarray) -> None:
    """`out` is what `encoding` can keep of `rgb`: exact for colour, the gray for mono."""
    assert out.dtype == np.uint8 and out.shape == rgb.shape
    if encoding in ('mono8', '8UC1', 'mono16'):
        for c in range(3):
            np.testing.assert_array_equal(out[..., c], _gray(rgb))
    elif encoding in ('yuv422', 'uyvy', 'yuv422_yuy2', 'yuyv'):
        # 4:2:2 halves the chroma resolution: close to the frame on average, not exact.
        err = np.abs(out.astype(np.int16) - rgb)
        assert err.mean() < 1.5, f'{encoding}: mean error {err.mean():.2f}'
        assert np.percentile(err, 99) <= 8, f'{encoding}: 99th percentile {np.percentile(err, 99)}'
    else:
        np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize('encoding', SUPPORTED_ENCODINGS)
def test_every_encoding_round_trips(rgb, encoding):
    pixels, big = _pixels(encoding, rgb)
    h, w = rgb.shape[:2]
    out = image_to_rgb(encoding, h, w, pixels.shape[1] * pixels.shape[2], big, pixels.tobytes())
    _check_decoded(encoding, out, rgb)


@pytest.mark.parametrize('encoding', SUPPORTED_ENCODINGS)
def test_row_padding_with_garbage_gives_the_same_image(rgb, encoding):
    pixels, big = _pixels(encoding, rgb)
    h, w = rgb.shape[:2]
    tight = image_to_rgb(encoding, h, w, pixels.shape[1] * pixels.shape[2], big, pixels.tobytes())
    data, step = _padded(pixels, pad=13)   # odd padding: 16-bit rows start unaligned
    padded = image_to_rgb(encoding, h, w, step, big, data)
    np.testing.assert_array_equal(padded, tight)


@pytest.mark.parametrize('wrong, right', [('yuyv', 'uyvy'), ('uyvy', 'yuyv')])
def test_yuv_byte_order_matters(rgb, wrong, right):
    """Reading UYVY bytes as YUYV (or back) must give clearly wrong colours."""
    pixels, _ = _pixels(right, rgb)
    h, w = rgb.shape[:2]
    out = image_to_rgb(wrong, h, w, w * 2, 0, pixels.tobytes())
    assert np.abs(out.astype(np.int16) - rgb).mean() > 10


@pytest.mark.parametrize('big', [True, False, 1, 0])
def test_mono16_both_byte_orders_keep_the_high_byte(rgb, big):
    h, w = rgb.shape[:2]
    g16 = _mono16(rgb)
    data = g16.astype('>u2' if big else '<u2').tobytes()
    out = image_to_rgb('mono16', h, w, w * 2, big, data)
    np.testing.assert_array_equal(out[..., 1], (g16 >> 8).astype(np.uint8))
    # The other byte order reads the noise byte as the high byte: a different image.
    swapped = image_to_rgb('mono16', h, w, w * 2, not big, data)
    assert np.abs(swapped[..., 1].astype(np.int16) - (g16 >> 8)).mean() > 20


def test_rgb8_without_padding_is_a_view_of_the_data(rgb):
    h, w = rgb.shape[:2]
    buf = bytearray(rgb.tobytes())
    out = image_to_rgb('rgb8', h, w, w * 3, 0, buf)
    assert np.shares_memory(out, np.frombuffer(buf, np.uint8))
    buf[0] = (buf[0] + 1) % 256          # a change to the message bytes shows in the view
    assert out[0, 0, 0] == buf[0]
    np.testing.assert_array_equal(out[1:], rgb[1:])


def test_rgb8_with_padding_is_a_strided_view(rgb):
    h, w = rgb.shape[:2]
    data, step = _padded(rgb, pad=64)
    backing = np.frombuffer(data, np.uint8)
    out = image_to_rgb('rgb8', h, w, step, 0, backing)
    assert np.shares_memory(out, backing)
    assert out.strides[0] == step
    np.testing.assert_array_equal(out, rgb)


def test_every_kind_of_buffer_gives_the_same_image(rgb):
    h, w = rgb.shape[:2]
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    raw = bgr.tobytes()
    for data in (raw, bytearray(raw), memoryview(raw), array.array('B', raw),
                 np.frombuffer(raw, np.uint8), bgr):
        np.testing.assert_array_equal(image_to_rgb('bgr8', h, w, w * 3, 0, data), rgb,
                                      err_msg=type(data).__name__)


def test_numpy_data_is_not_copied(rgb):
    h, w = rgb.shape[:2]
    data = np.ascontiguousarray(rgb)
    assert np.shares_memory(image_to_rgb('rgb8', h, w, w * 3, 0, data), data)
    arr = array.array('B', rgb.tobytes())
    assert np.shares_memory(image_to_rgb('rgb8', h, w, w * 3, 0, arr),
                            np.frombuffer(arr, np.uint8))


def test_encoding_names_ignore_case_and_spaces(rgb):
    h, w = rgb.shape[:2]
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR).tobytes()
    for name in ('8uc3', 'BGR8', ' bgr8 '):
        np.testing.assert_array_equal(image_to_rgb(name, h, w, w * 3, 0, bgr), rgb)


@pytest.mark.ros
@pytest.mark.parametrize('encoding', ['bgr8', 'mono8', 'yuv422'])
def test_real_sensor_msgs_image(rgb, encoding):
    """A real Image message: rclpy stores `data` as array.array('B')."""
    pixels, big = _pixels(encoding, rgb)
    h, w = rgb.shape[:2]
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=big,
                step=pixels.shape[1] * pixels.shape[2])
    msg.data = pixels.tobytes()
    assert isinstance(msg.data, array.array)
    out = image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)
    _check_decoded(encoding, out, rgb)


@pytest.mark.ros
@pytest.mark.parametrize('encoding', OUTPUT_ENCODINGS)
def test_rgb_to_image_fields_round_trips_through_a_message(rgb, encoding):
    fields = rgb_to_image_fields(rgb, encoding)
    h, w = rgb.shape[:2]
    assert (fields['encoding'], fields['height'], fields['width'], fields['step'],
            fields['is_bigendian']) == (encoding, h, w, w * 3, 0)
    assert isinstance(fields['data'], bytes) and len(fields['data']) == h * w * 3
    msg = Image(**fields)
    out = image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)
    np.testing.assert_array_equal(out, rgb)


def test_rgb_to_image_fields_accepts_a_strided_crop(rgb):
    crop = rgb[100:300:2, 50:451]
    fields = rgb_to_image_fields(crop, 'bgr8')
    out = image_to_rgb('bgr8', fields['height'], fields['width'], fields['step'], 0,
                       fields['data'])
    np.testing.assert_array_equal(out, crop)


# ----------------------------------------------------------------------------- errors
def _raises(match: str, fn, *args, **kwargs) -> str:
    with pytest.raises(ImageConversionError, match=match) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, ValueError)
    return str(info.value)


def test_truncated_data_names_sizes(rgb):
    h, w = rgb.shape[:2]
    _raises(rf'truncated image: {w}x{h} rgb8 with step {w * 3} needs {w * 3 * h} bytes, got 1000',
            image_to_rgb, 'rgb8', h, w, w * 3, 0, rgb.tobytes()[:1000])
    # One byte short of the last row's padding is truncated too.
    data, step = _padded(rgb, pad=8)
    _raises(rf'needs {step * h} bytes, got {step * h - 1}',
            image_to_rgb, 'rgb8', h, w, step, 0, data[:-1])


@pytest.mark.parametrize('encoding, bpp', [('rgb8', 3), ('bgra8', 4), ('mono16', 2),
                                           ('mono8', 1), ('yuyv', 2)])
def test_step_too_small(rgb, encoding, bpp):
    pixels, _ = _pixels(encoding, rgb)
    h, w = rgb.shape[:2]
    _raises(rf'step too small: {w}x{h} {encoding} needs at least {w * bpp} bytes per row '
            rf'\({bpp} per pixel\), got step {w * bpp - 1}',
            image_to_rgb, encoding, h, w, w * bpp - 1, 0, pixels.tobytes())


@pytest.mark.parametrize('h, w', [(0, 640), (480, 0), (0, 0), (-1, 640)])
def test_empty_or_negative_size(h, w):
    _raises(rf'empty image: {w}x{h} rgb8', image_to_rgb, 'rgb8', h, w, 1920, 0, bytes(1920 * 480))


@pytest.mark.parametrize('encoding', ['rgb16', 'bayer_rggb8', '', '16UC1'])
def test_unknown_encoding_lists_the_supported_ones(encoding):
    msg = _raises(rf'unsupported image encoding {encoding!r}', image_to_rgb,
                  encoding, 2, 2, 6, 0, bytes(12))
    assert all(e in msg for e in SUPPORTED_ENCODINGS)


@pytest.mark.parametrize('encoding', ['yuv422', 'uyvy', 'yuv422_yuy2', 'yuyv'])
def test_odd_width_yuv(rgb, encoding):
    pixels, _ = _pixels(encoding, rgb)
    h, w = rgb.shape[:2]
    _raises(rf'odd width: {w - 1}x{h} {encoding}', image_to_rgb,
            encoding, h, w - 1, w * 2, 0, pixels.tobytes())


def test_huge_image_is_refused_before_reading_data(rgb):
    _raises(r'image too large: 100000x100000 rgb8 is 10000000000 pixels, more than '
            r'max_pixels=50000000', image_to_rgb, 'rgb8', 100000, 100000, 300000, 0, bytes(10))
    h, w = rgb.shape[:2]
    _raises(rf'max_pixels={h * w - 1}', image_to_rgb, 'rgb8', h, w, w * 3, 0, rgb.tobytes(),
            max_pixels=h * w - 1)
    assert image_to_rgb('rgb8', h, w, w * 3, 0, rgb.tobytes(), max_pixels=h * w).shape == rgb.shape


@pytest.mark.parametrize('field', ['height', 'width', 'step'])
def test_non_integer_size_fields(rgb, field):
    h, w = rgb.shape[:2]
    args = {'height': h, 'width': w, 'step': w * 3}
    args[field] = float(args[field])
    _raises(rf'{field} must be an integer', image_to_rgb, 'rgb8', args['height'], args['width'],
            args['step'], 0, rgb.tobytes())


@pytest.mark.parametrize('data, match', [
    ([0] * 12, r'data must be bytes-like .* got list'),
    ('abcdefghijkl', r'data must be bytes-like .* got str'),
    (np.zeros(12, np.float32), r'data must be uint8 bytes, got a float32 array'),
])
def test_data_of_the_wrong_type(data, match):
    _raises(match, image_to_rgb, 'rgb8', 2, 2, 6, 0, data)


def test_encoding_of_the_wrong_type():
    _raises(r'encoding must be a string', image_to_rgb, b'rgb8', 2, 2, 6, 0, bytes(12))


# ----------------------------------------------------------------------------- compressed
def _encode(ext: str, image: np.ndarray, *params: int) -> bytes:
    ok, buf = cv2.imencode(ext, image, list(params))
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize('fmt', ['jpeg', 'JPEG', 'rgb8; jpeg compressed bgr8',
                                 'bgr8; jpeg compressed bgr8'])
def test_jpeg_round_trip(rgb, fmt):
    data = _encode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), cv2.IMWRITE_JPEG_QUALITY, 95)
    out = compressed_to_rgb(fmt, data)
    assert out.dtype == np.uint8 and out.shape == rgb.shape
    err = np.abs(out.astype(np.int16) - rgb)
    assert err.mean() < 3, f'mean error {err.mean():.2f}'
    # Swapped red and blue would be far off: the colours really are RGB.
    assert np.abs(out[..., ::-1].astype(np.int16) - rgb).mean() > 3 * err.mean()


def test_jpeg_stored_as_rgb_by_image_transport(rgb):
    """'... compressed rgb8': image_transport encoded the RGB matrix as if it were BGR."""
    data = _encode('.jpg', rgb, cv2.IMWRITE_JPEG_QUALITY, 95)
    out = compressed_to_rgb('rgb8; jpeg compressed rgb8', data)
    assert np.abs(out.astype(np.int16) - rgb).mean() < 3


@pytest.mark.ros
def test_png_round_trip_is_exact_from_a_real_message(rgb):
    msg = CompressedImage(format='png')
    msg.data = _encode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert isinstance(msg.data, array.array)
    np.testing.assert_array_equal(compressed_to_rgb(msg.format, msg.data), rgb)


def test_png_gray_alpha_and_16_bit_become_rgb(rgb):
    gray = _gray(rgb)
    out = compressed_to_rgb('png', _encode('.png', gray))
    np.testing.assert_array_equal(out, cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB))
    bgra = cv2.cvtColor(_rgba(rgb), cv2.COLOR_RGBA2BGRA)
    np.testing.assert_array_equal(compressed_to_rgb('png', _encode('.png', bgra)), rgb)
    g16 = _mono16(rgb)
    out16 = compressed_to_rgb('mono16; png compressed mono16', _encode('.png', g16))
    np.testing.assert_array_equal(out16[..., 2], (g16 >> 8).astype(np.uint8))


@pytest.fixture(scope='module')
def jpeg(rgb) -> bytes:
    return _encode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


@pytest.mark.parametrize('corrupt', ['first_half', 'header_only', 'no_start_marker', 'noise'])
def test_corrupt_compressed_data(jpeg, corrupt):
    data = {'first_half': jpeg[:len(jpeg) // 2],
            'header_only': jpeg[:200],
            'no_start_marker': b'\0\0' + jpeg[2:],
            'noise': np.random.default_rng(2).integers(0, 256, 5000, np.uint8).tobytes()}[corrupt]
    _raises(rf"cannot decode compressed image \(format 'jpeg', {len(data)} bytes",
            compressed_to_rgb, 'jpeg', data)


@pytest.mark.parametrize('empty', [b'', array.array('B'), np.zeros(0, np.uint8)])
def test_empty_compressed_data(empty):
    _raises(r"empty compressed image data \(format 'jpeg'\)", compressed_to_rgb, 'jpeg', empty)


def test_compressed_depth_and_huge_images_are_refused(rgb, jpeg):
    _raises(r'depth image', compressed_to_rgb, '16UC1; compressedDepth png', jpeg)
    h, w = rgb.shape[:2]
    _raises(rf'image too large: {w}x{h} .* more than max_pixels=1000', compressed_to_rgb,
            'jpeg', jpeg, max_pixels=1000)


@pytest.mark.parametrize('image, encoding, match', [
    (np.zeros((4, 4, 3), np.float32), 'rgb8', r'uint8 \(H, W, 3\) array, got float32'),
    (np.zeros((4, 4), np.uint8), 'rgb8', r'got uint8 \(4, 4\)'),
    (np.zeros((4, 4, 4), np.uint8), 'rgb8', r'got uint8 \(4, 4, 4\)'),
    (np.zeros((0, 4, 3), np.uint8), 'rgb8', r'empty image: 4x0'),
    ([[[0, 0, 0]]], 'rgb8', r'must be a numpy array, got list'),
    (np.zeros((4, 4, 3), np.uint8), 'mono8', r"cannot publish encoding 'mono8'"),
])
def test_rgb_to_image_fields_rejects_bad_input(image, encoding, match):
    _raises(match, rgb_to_image_fields, image, encoding)
