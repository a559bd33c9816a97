"""
Hand detection data: the :class:`Sample` type, one reader per format, splits, statistics.

Every reader returns :class:`Sample` objects (``sample``): one image, its size and its hands as
``float32 (N, 4)`` [x_min, y_min, x_max, y_max] pixel boxes of the single class ``hand``.

Modules, each importing only those above it (no cycles; ``tfrecord.py`` imports this package,
never the other way round):

- ``sample``    the Sample type, image sizes, box clipping, DatasetWarning
- ``egohands``  EgoHands videos (polygons.mat); ``yolo``: YOLO txt; ``coco``: COCO JSON
- ``splits``    EgoHands splits by video (DEFAULT_SPLIT, SHIPPED_SPLIT, split_by_videos)
- ``parts``     the train/val/test parts of every shared source (``config/data_splits.yaml``)
- ``far_hands`` the generated far-hands test set (test parts only, hands 4-15 % of the height)
- ``stats``     statistics, their plots and preview images
- ``download``  the EgoHands download
- ``sources``   the command-line source options shared by every CLI (add_source_options,
  load_sources)
- ``cli``       ``hand-tracker-dataset`` (convert to TFRecords, stats, parts, download)
"""
from hand_tracker_ros.vocabulary import HAND, IMAGE_SUFFIXES, SIDES
from hand_tracker_training.datasets.coco import load_coco, write_coco
from hand_tracker_training.datasets.download import (download_egohands, DownloadError,
                                                     EGOHANDS_ARCHIVE_URL, EGOHANDS_URL)
from hand_tracker_training.datasets.egohands import (EGOHANDS_ACTIVITIES, EGOHANDS_LOCATIONS,
                                                     egohands_samples_dir, EGOHANDS_VIDEOS,
                                                     load_egohands, partner_video)
from hand_tracker_training.datasets.parts import load_part, PARTS, read_data_splits
from hand_tracker_training.datasets.sample import DatasetWarning, image_size, Sample
from hand_tracker_training.datasets.splits import (DEFAULT_SPLIT, SHIPPED_SPLIT, split_by_videos,
                                                   VideoSplit)
from hand_tracker_training.datasets.stats import (BOX_SIZE_EDGES, COCO_MEDIUM, COCO_SMALL,
                                                  dataset_stats, plot_stats, PREVIEW_MAX_SIDE,
                                                  SIDE_COLOURS, write_previews)
from hand_tracker_training.datasets.yolo import load_yolo

__all__ = [
    'BOX_SIZE_EDGES', 'COCO_MEDIUM', 'COCO_SMALL', 'DEFAULT_SPLIT', 'EGOHANDS_ACTIVITIES',
    'EGOHANDS_ARCHIVE_URL', 'EGOHANDS_LOCATIONS', 'EGOHANDS_URL', 'EGOHANDS_VIDEOS', 'HAND',
    'IMAGE_SUFFIXES', 'PARTS', 'PREVIEW_MAX_SIDE', 'SHIPPED_SPLIT', 'SIDES', 'SIDE_COLOURS',
    'DatasetWarning', 'DownloadError', 'Sample', 'VideoSplit', 'dataset_stats',
    'download_egohands', 'egohands_samples_dir', 'image_size', 'load_coco', 'load_egohands',
    'load_part', 'load_yolo', 'partner_video', 'plot_stats', 'read_data_splits',
    'split_by_videos', 'write_coco', 'write_previews',
]
