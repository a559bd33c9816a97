"""Where the package's installed files are: share dir (colcon) or the source tree (pip -e)."""
from __future__ import annotations

import sys
from pathlib import Path

PACKAGE = 'hand_tracker'
_SOURCE_ROOT = Path(__file__).resolve().parents[1]


def share_dir() -> Path:
    """The package's share directory, or the source tree when it is not installed by colcon."""
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory(PACKAGE))
    except (ImportError, LookupError, OSError):  # not installed / AMENT_PREFIX_PATH unset
        pass
    # colcon installed into this very venv (the pip route) without AMENT_PREFIX_PATH set
    marker = Path(sys.prefix) / 'share' / 'ament_index' / 'resource_index' / 'packages' / PACKAGE
    if marker.is_file():
        return Path(sys.prefix) / 'share' / PACKAGE
    return _SOURCE_ROOT


def default_model_path() -> Path:
    """The shipped model: the TFLite file (fast CPU path) when present, else the frozen graph."""
    models = share_dir() / 'models'
    for name in ('model.tflite', 'frozen_inference_graph.pb'):
        if (models / name).is_file():
            return models / name
    return models / 'model.tflite'


def default_params_file() -> Path:
    return share_dir() / 'config' / 'hand_tracker.yaml'


def fastdds_profile() -> Path:
    """Fast DDS profile with a 16 MiB shared-memory segment (images need it, see README)."""
    return share_dir() / 'config' / 'fastdds_shm.xml'
