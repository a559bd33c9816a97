"""
The words every part of hand_tracker shares: the class, its label map, hand sides, image files.

One home for each: the detector backends, the tracker, the datasets, the TFRecords and the
evaluation all import these instead of spelling them again.
"""
from __future__ import annotations


#: The one class of every box.
HAND = 'hand'

#: The label map of every hand model (OD API ids start at 1; 0 is the background).
HAND_LABEL_MAP: dict[int, str] = {1: HAND}

#: Hand sides as EgoHands labels them, in the field order of its ``polygons.mat``: the camera
#: wearer's ("own") and the partner's ("other") left and right hands.
SIDES = ('own_left', 'own_right', 'other_left', 'other_right')

#: The side of a hand whose side nobody knows (every detector hand; only EgoHands labels sides).
UNKNOWN_SIDE = ''

#: File suffixes read as images (lower case), by folder sources and dataset readers alike.
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.ppm', '.pgm', '.tif', '.tiff', '.webp')


def is_image_file(name) -> bool:
    """Whether a file name has one of :data:`IMAGE_SUFFIXES` (any case)."""
    return str(name).lower().endswith(IMAGE_SUFFIXES)
