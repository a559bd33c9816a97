"""
Camera calibration in the `camera_calibration` / `camera_info_manager` YAML format (no rclpy).

The file written by `ros2 run camera_calibration cameracalibrator` and read by
camera_info_manager (C++ and camera_info_manager_py)::

    image_width: 640
    image_height: 480
    camera_name: narrow_stereo
    camera_matrix: {rows: 3, cols: 3, data: [fx, 0, cx, 0, fy, cy, 0, 0, 1]}
    distortion_model: plumb_bob
    distortion_coefficients: {rows: 1, cols: 5, data: [k1, k2, t1, t2, k3]}
    rectification_matrix: {rows: 3, cols: 3, data: [...]}
    projection_matrix: {rows: 3, cols: 4, data: [...]}

:func:`load_calibration` returns the fields of a ``sensor_msgs/CameraInfo`` (``k``, ``d``, ``r``,
``p``, ...); :func:`uncalibrated` the ones camera_info_manager publishes for a camera without
calibration (all-zero K, R and P: "not calibrated" by the CameraInfo convention).
"""
from __future__ import annotations

from dataclasses import dataclass, field
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

import yaml

from .resources import package_share_dir

_MATRICES = {  # CameraInfo field: (YAML key, rows, cols); d has any length
    'k': ('camera_matrix', 3, 3),
    'r': ('rectification_matrix', 3, 3),
    'p': ('projection_matrix', 3, 4),
}


class CalibrationError(ValueError):
    """The calibration URL or file cannot be used (the message says why)."""


@dataclass
class Calibration:
    """The calibrated fields of a sensor_msgs/CameraInfo."""

    width: int
    height: int
    camera_name: str = ''
    distortion_model: str = ''
    d: list = field(default_factory=list)
    k: list = field(default_factory=lambda: [0.0] * 9)
    r: list = field(default_factory=lambda: [0.0] * 9)
    p: list = field(default_factory=lambda: [0.0] * 12)

    @property
    def calibrated(self) -> bool:
        return self.k[0] != 0.0

    def for_size(self, width: int, height: int) -> 'Calibration':
        """
        Return this calibration for images of ``width`` x ``height``.

        An uncalibrated one takes any size; a calibrated one is returned unchanged
        (:func:`size_mismatch` tells).
        """
        if self.calibrated:
            return self
        return uncalibrated(width, height, self.camera_name)


def uncalibrated(width: int, height: int, camera_name: str = '') -> Calibration:
    """Return what camera_info_manager publishes without a calibration: size, K = R = P = 0."""
    return Calibration(width=int(width), height=int(height), camera_name=camera_name)


def url_to_path(url: str) -> Path:
    """``file:///abs/path.yaml``, ``package://pkg/rel/path.yaml`` or a plain path."""
    if url.startswith('file://'):
        return Path(unquote(urlparse(url).path))
    if url.startswith('package://'):
        pkg, _, rel = url[len('package://'):].partition('/')
        share = package_share_dir(pkg)
        if share is None:
            raise CalibrationError(f'cannot resolve {url!r}: package {pkg!r} not found')
        return share / rel
    if '://' in url:
        raise CalibrationError(f'unsupported calibration URL {url!r} (use file://, package:// '
                               f'or a path)')
    return Path(os.path.expanduser(url))


def _matrix(data: dict, key: str, rows: int, cols: int, path: Path) -> list:
    entry = data.get(key)
    if not isinstance(entry, dict) or 'data' not in entry:
        raise CalibrationError(f'{path}: {key} missing or not {{rows, cols, data}}')
    shape = (entry.get('rows', rows), entry.get('cols', cols))
    if rows and shape != (rows, cols):
        raise CalibrationError(f'{path}: {key} is {shape[0]}x{shape[1]}, expected {rows}x{cols}')
    values = [float(v) for v in entry['data']]
    if rows and len(values) != rows * cols:
        raise CalibrationError(f'{path}: {key} has {len(values)} values, expected {rows * cols}')
    return values


def parse_calibration(text: str, path: Path = Path('<string>')) -> Calibration:
    """Parse camera_calibration YAML text."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CalibrationError(f'{path}: not valid YAML: {exc}') from exc
    if not isinstance(data, dict):
        raise CalibrationError(f'{path}: not a camera calibration (expected a mapping)')
    try:
        width, height = int(data['image_width']), int(data['image_height'])
    except (KeyError, TypeError, ValueError) as exc:
        raise CalibrationError(f'{path}: image_width/image_height missing or invalid') from exc
    cal = Calibration(width=width, height=height, camera_name=str(data.get('camera_name', '')),
                      distortion_model=str(data.get('distortion_model', 'plumb_bob')))
    for name, (key, rows, cols) in _MATRICES.items():
        setattr(cal, name, _matrix(data, key, rows, cols, path))
    cal.d = _matrix(data, 'distortion_coefficients', 0, 0, path)
    return cal


def load_calibration(url: str) -> Calibration:
    """Read the calibration at ``url`` (file://, package:// or a path)."""
    path = url_to_path(url)
    try:
        text = path.read_text()
    except OSError as exc:
        raise CalibrationError(f'cannot read calibration {path}: {exc.strerror}') from exc
    return parse_calibration(text, path)


def size_mismatch(cal: Calibration, width: int, height: int) -> str:
    """'' when a calibrated ``cal`` fits images of this size, else what is wrong."""
    if cal.calibrated and (cal.width, cal.height) != (width, height):
        return (f'calibration is for {cal.width}x{cal.height} images but the camera delivers '
                f'{width}x{height}')
    return ''
