"""
The training recipe's short source names over the project's one split file.

The parts themselves (train / val / test of every data set) are defined in
``config/data_splits.yaml`` and read by :mod:`hand_tracker_training.datasets.parts`; this module
only maps the recipe's short names (the keys of its ``weights``) to the data sets there and tags
each sample with its short name (``sample.source``), which the balanced mix draws by.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from hand_tracker_training.datasets.parts import load_part, PARTS, read_data_splits

#: Recipe source name -> data set name in ``config/data_splits.yaml``.
SOURCE_DATASETS = {'egohands': 'egohands', 'webcam': 'hands_webcam_subhih',
                   'asl': 'asl_letters_roboflow', 'gestures': 'hand_gestures_roboflow',
                   'closeup': 'hands_closeup_roboflow'}
SOURCES = tuple(SOURCE_DATASETS)
#: Default data root: ``shared/data`` beside the project checkout.
DATA_ROOT = Path(__file__).resolve().parents[2] / 'shared' / 'data'


def load_recipe_part(source: str, part: str, data_root: Optional[str | Path] = None,
                     fold: Optional[str] = None) -> list:
    """
    Return the samples of one part of one recipe source; ``sample.source`` = the short name.

    `fold`: leave-one-video-out fold of the split file (:func:`read_data_splits`).
    """
    if source not in SOURCE_DATASETS or part not in PARTS:
        raise ValueError(f'unknown source/part {source}/{part}: sources {SOURCES}, parts {PARTS}')
    config = (read_data_splits(root=data_root, fold=fold)
              if data_root is not None or fold else None)
    samples = load_part(SOURCE_DATASETS[source], part, config)
    for s in samples:
        s.source = source
    return samples


def load_parts(part: str, sources=SOURCES, data_root: Optional[str | Path] = None,
               fold: Optional[str] = None) -> dict:
    """``{source: samples}`` of one part for several sources (sources with none left out)."""
    out = {s: load_recipe_part(s, part, data_root, fold) for s in sources}
    return {k: v for k, v in out.items() if v}


def recipe_samples(weights: dict, data_root: Optional[str | Path] = None,
                   limit: int = 0, fold: Optional[str] = None,
                   val_far_hands: Optional[dict] = None) -> tuple[list, list]:
    """
    Return (training, validation) samples of the sources with a weight > 0, and print counts.

    `limit` > 0 keeps that many training images of each source (half as many validation ones,
    at least 2): the smoke run's subset. `fold`: a leave-one-video-out fold (its held-out
    video is in neither). `val_far_hands` (the recipe's ``{images, seed}``): a far-hands set
    made from the val parts joins the validation samples as source ``far_hands``.
    """
    sources = [s for s, w in weights.items() if w > 0]
    train = load_parts('train', sources, data_root, fold)
    val = load_parts('val', sources, data_root, fold)
    if val_far_hands:
        from hand_tracker_training.datasets import far_hands

        unknown = set(val_far_hands) - {'images', 'seed'}
        if unknown:
            raise ValueError(f'val_far_hands: unknown keys {sorted(unknown)} (images, seed)')
        images = int(val_far_hands.get('images', 150))
        seed = int(val_far_hands.get('seed', far_hands.DEFAULT_SEED))
        out = far_hands.GENERATED_DIR / f'far_hands_val{"_" + fold if fold else ""}'
        val['far_hands'] = far_hands.far_val_samples(out, images, seed, data_root, fold)
    if limit:
        train = {k: v[:limit] for k, v in train.items()}
        val = {k: v[:max(2, limit // 2)] for k, v in val.items()}
    for name, parts in (('train', train), ('val', val)):
        print(f'{name}: ' + ', '.join(f'{k} {len(v)} images / {sum(len(s.boxes) for s in v)} '
                                      f'hands' for k, v in parts.items()), flush=True)
    return [s for v in train.values() for s in v], [s for v in val.values() for s in v]
