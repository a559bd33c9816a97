"""Where the package's installed files are: share dir (colcon) or the source tree (pip -e)."""
from __future__ import annotations

import os
from pathlib import Path
import sys
from typing import Mapping, Optional

from .ros_compat import fastdds_profile_variable_name, FASTDDS_PROFILE_VARIABLES


PACKAGE = 'hand_tracker'
_SOURCE_ROOT = Path(__file__).resolve().parents[1]


def package_share_dir(package: str) -> Optional[Path]:
    """
    Return an installed ROS package's share directory, or None.

    The ament index first (a sourced ROS workspace); then this interpreter's prefix, where
    colcon installed into the venv itself on the pip route, with AMENT_PREFIX_PATH unset.
    """
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory(package))
    except (ImportError, LookupError, OSError):  # not installed / AMENT_PREFIX_PATH unset
        pass
    marker = Path(sys.prefix) / 'share' / 'ament_index' / 'resource_index' / 'packages' / package
    return Path(sys.prefix) / 'share' / package if marker.is_file() else None


def share_dir() -> Path:
    """Return the package's share directory, or the source tree when colcon did not install it."""
    return package_share_dir(PACKAGE) or _SOURCE_ROOT


def default_model_path() -> Path:
    """Return the shipped model: the TFLite file (fast on CPUs), else the frozen graph."""
    models = share_dir() / 'models'
    for name in ('model.tflite', 'frozen_inference_graph.pb'):
        if (models / name).is_file():
            return models / name
    return models / 'model.tflite'


#: The sample recording the README's first command runs on: a held-out webcam session
#: (``sample:`` in config/data_splits.yaml; samples/README.md says where it comes from).
SAMPLE_VIDEO = Path('samples') / 'hands_webcam.mp4'


def sample_video() -> Optional[Path]:
    """Return the shipped sample recording (source tree, else share dir); None without it."""
    for root in (_SOURCE_ROOT, share_dir()):
        if (root / SAMPLE_VIDEO).is_file():
            return root / SAMPLE_VIDEO
    return None


def default_params_file() -> Path:
    """Return the shipped parameter file of camera and hand_detector (config/hand_tracker.yaml)."""
    return share_dir() / 'config' / 'hand_tracker.yaml'


def fastdds_profile() -> Path:
    """Fast DDS profile with a 16 MiB shared-memory segment (images need it, see README)."""
    return share_dir() / 'config' / 'fastdds_shm.xml'


def fastdds_profile_variable(environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """
    Return the variable to set to :func:`fastdds_profile`, None when the user chose a profile.

    `environ` defaults to ``os.environ``. Fast DDS 2.x (Humble, Jazzy) and 3.x (Kilted) name it
    differently: :func:`~hand_tracker_ros.ros_compat.fastdds_profile_variable_name`.
    """
    env = os.environ if environ is None else environ
    if any(name in env for name in FASTDDS_PROFILE_VARIABLES):
        return None
    return fastdds_profile_variable_name(env)


def use_shm_profile() -> Optional[str]:
    """
    Set the large-image Fast DDS profile in ``os.environ`` unless the user chose their own.

    Returns the variable set, or None (a profile was chosen, or the file is missing).
    """
    variable = fastdds_profile_variable()
    if variable is None or not fastdds_profile().is_file():
        return None
    os.environ[variable] = str(fastdds_profile())
    return variable


#: The model's metadata file beside its label map (written by the training export).
MODEL_INFO_NAME = 'model_info.yaml'
#: The score threshold of a model without ``model_info.yaml``.
DEFAULT_SCORE_THRESHOLD = 0.5


def model_score_threshold(model_path: str | Path) -> float | None:
    """
    Return the calibrated ``score_threshold`` of the ``model_info.yaml`` beside `model_path`.

    None when the model has no such file. Raises ValueError for a file without a number in
    [0, 1].
    """
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
