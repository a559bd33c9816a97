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


#: The model's metadata file beside its label map (written by the training export).
MODEL_INFO_NAME = 'model_info.yaml'
#: The score threshold of a model without ``model_info.yaml``.
DEFAULT_SCORE_THRESHOLD = 0.5


def model_score_threshold(model_path: str | Path) -> float | None:
    """The calibrated ``score_threshold`` in the ``model_info.yaml`` beside `model_path`, or None
    when the model has no such file. Raises ValueError for a file without a number in [0, 1]."""
    import yaml

    info = Path(model_path).parent / MODEL_INFO_NAME
    if not info.is_file():
        return None
    try:
        value = (yaml.safe_load(info.read_text()) or {}).get('score_threshold')
    except (yaml.YAMLError, AttributeError, OSError) as exc:
        raise ValueError(f'{info}: not a readable model_info.yaml ({exc})') from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f'{info}: score_threshold must be a number in [0, 1], got {value!r}')
    return float(value)
