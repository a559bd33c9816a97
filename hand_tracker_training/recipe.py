"""
The many-domain training recipe: balanced sources, mosaic / zoom-out, copy-paste, negatives.

A balanced mix of sources, mosaic / zoom-out onto real images, copy-paste of hands and
hand-free (hard negative) crops.

Every training image is a :class:`~hand_tracker_training.input_pipeline.CachedImage` that knows its
source. Each epoch draws ``epoch_size`` images with the source weights of the
:class:`Recipe` (``mix.json`` in the run directory and the log say what was drawn); every
drawn image is then composed (:meth:`RecipeAugmenter.compose`) and goes through the SSD
crop / flip / colour jitter of :class:`~hand_tracker_training.augment.SSDAugmenter`.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
import functools
import os
from pathlib import Path

from hand_tracker_training.augment import (box_cutout, crop, Cutout, mosaic, negative_window,
                                           paste_cutout, polygon_cutout, SSDAugmenter,
                                           zoom_out_onto)
from hand_tracker_training.input_pipeline import CachedImage, SSDDataset
import numpy as np


@dataclass
class Recipe:
    """Everything the recipe draws from (``config/train_recipe.yaml`` holds the shipped one)."""

    weights: dict = field(default_factory=lambda: {
        'webcam': 0.3, 'egohands': 0.2, 'gestures': 0.2, 'asl': 0.15, 'closeup': 0.15})
    epoch_size: int = 3000
    mosaic_probability: float = 0.35
    mosaic_grids: tuple = (2, 2, 3)
    mosaic_size: tuple = (640, 480)
    zoom_probability: float = 0.2
    max_zoom: float = 4.0
    #: (lo, hi): shrink so that the image's tallest hand ends up log-uniform in this share of
    #: the image height (a person a few metres away) instead of 1.5-``max_zoom`` times
    zoom_hand_height: tuple | None = None
    paste_probability: float = 0.5
    paste_max_hands: int = 3
    paste_height: tuple = (0.03, 0.35)
    negative_probability: float = 0.08
    box_cutouts_per_source: int = 200
    min_cutout_side: int = 16
    augmenter: dict = field(default_factory=lambda: {
        'expand_probability': 0.1, 'max_expand': 2.0, 'crop_probability': 0.5})
    #: ``{images: N, seed: S}``: add a far-hands set made from the val parts to the validation
    #: parts (source ``far_hands``), so that the epoch kept and the operating threshold answer
    #: for small hands too (:func:`hand_tracker_training.datasets.far_hands.far_val_samples`)
    val_far_hands: dict | None = None

    @classmethod
    def from_dict(cls, d: dict) -> 'Recipe':
        """Make a recipe from a YAML/JSON mapping (unknown keys are an error)."""
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f'unknown recipe keys: {sorted(unknown)}')
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**d)

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return asdict(self)


def epoch_mix(sources: list[str], weights: dict, size: int,
              rng: np.random.Generator) -> np.ndarray:
    """
    Draw `size` image indices so each source's share is its weight.

    Sources without a weight or images get none; within a source, images are drawn without
    replacement in shuffled rounds (every image once before any twice).
    """
    by_source: dict[str, list[int]] = {}
    for i, s in enumerate(sources):
        by_source.setdefault(s, []).append(i)
    present = {s: w for s, w in weights.items() if w > 0 and s in by_source}
    if not present:
        raise ValueError(f'no training images of the weighted sources {sorted(weights)}')
    names = sorted(present)
    share = np.array([present[s] for s in names]) * size / sum(present.values())
    counts = np.floor(share).astype(int)  # largest remainder: the counts sum to `size`
    counts[np.argsort(counts - share)[:size - counts.sum()]] += 1
    picks = []
    for s, n in zip(names, counts):
        if n == 0:
            continue
        pool = np.asarray(by_source[s])
        rounds = -(-int(n) // len(pool))
        picks.append(np.concatenate([rng.permutation(pool) for _ in range(rounds)])[:n])
    return rng.permutation(np.concatenate(picks))


@functools.lru_cache(maxsize=8)
def _video_polygons(mat: str) -> np.ndarray:
    import scipy.io

    return scipy.io.loadmat(mat)['polygons'].ravel()


def egohands_polygons(image_path: str) -> list[np.ndarray]:
    """
    Return the non-empty hand polygons (``(N, 2)`` x, y pixels) of one EgoHands frame.

    Read from its video's ``polygons.mat`` (entries are in sorted frame name order).
    """
    path = Path(image_path)
    frames = sorted(p.name for p in path.parent.iterdir() if p.suffix.lower() in ('.jpg',
                                                                                  '.jpeg'))
    entry = _video_polygons(str(path.parent / 'polygons.mat'))[frames.index(path.name)]
    polys = [np.asarray(entry[n], np.float64) for n in entry.dtype.names]
    return [p for p in polys if p.ndim == 2 and p.shape[1] == 2 and len(p) >= 3]


def hand_bank(samples: list, images: list[CachedImage], recipe: Recipe,
              rng: np.random.Generator) -> tuple[list[Cutout], list[Cutout]]:
    """(mask cutouts of the EgoHands polygons, box cutouts of the other sources' hands)."""
    masks, boxes_by_source = [], {}
    for sample, img in zip(samples, images):
        if img.source == 'egohands':
            for poly in egohands_polygons(sample.image_path):
                c = polygon_cutout(img.rgb, poly * img.scale)
                if c is not None and min(c.rgb.shape[:2]) >= recipe.min_cutout_side:
                    masks.append(c)
        else:
            for b in img.boxes:
                if min(b[2] - b[0], b[3] - b[1]) >= recipe.min_cutout_side:
                    boxes_by_source.setdefault(img.source, []).append((img, b))
    cut = []
    for source, items in sorted(boxes_by_source.items()):
        for k in rng.permutation(len(items))[:recipe.box_cutouts_per_source]:
            cut.append(box_cutout(items[k][0].rgb, items[k][1]))
    return masks, cut


class RecipeAugmenter:
    """Composes one training example from the image pool (see the module doc)."""

    def __init__(self, images: list[CachedImage], recipe: Recipe, masks: list[Cutout],
                 box_cuts: list[Cutout], negatives: dict | None = None) -> None:
        self.images, self.recipe = images, recipe
        self.masks, self.box_cuts = masks, box_cuts
        self.negatives = negatives or {}
        self.base = SSDAugmenter(**recipe.augmenter)
        self.by_source: dict[str, list[int]] = {}
        for i, c in enumerate(images):
            if recipe.weights.get(c.source, 0) > 0:
                self.by_source.setdefault(c.source, []).append(i)
        self.names = sorted(self.by_source)
        w = np.array([recipe.weights[s] for s in self.names], np.float64)
        self.p = w / w.sum()

    def _draw(self, rng: np.random.Generator) -> CachedImage:
        """Another image: a source drawn by weight, then one of its images."""
        pool = self.by_source[self.names[int(rng.choice(len(self.names), p=self.p))]]
        return self.images[pool[int(rng.integers(len(pool)))]]

    def negative(self, i: int, rng: np.random.Generator):
        """
        Return a hand-free crop of image `i`, or None.

        The crop is around a mined false positive when the image has one.
        """
        item = self.images[i]
        mined = self.negatives.get(i, [])
        around = mined[int(rng.integers(len(mined)))] if len(mined) and rng.random() < 0.7 \
            else None
        h, w = item.rgb.shape[:2]
        win = negative_window(w, h, item.boxes, rng, around)
        if win is None:
            return None
        img, b, _ = crop(item.rgb, item.boxes, win)
        return img, b

    def compose(self, i: int, rng: np.random.Generator):
        """
        Compose image `i`, then paste hands onto it.

        The image becomes a mosaic with other drawn images, is zoomed out onto another one, or
        stays alone.
        """
        r = self.recipe
        item = self.images[i]
        image, boxes = item.rgb, item.boxes
        u = rng.random()
        if u < r.mosaic_probability:
            n = int(rng.choice(r.mosaic_grids))
            tiles = [(image, boxes)] + [(c.rgb, c.boxes) for c in
                                        (self._draw(rng) for _ in range(n * n - 1))]
            order = rng.permutation(len(tiles))
            image, boxes = mosaic([tiles[k] for k in order], *r.mosaic_size, rng)
        elif u < r.mosaic_probability + r.zoom_probability:
            bg = self._draw(rng)
            image, boxes = zoom_out_onto(image, boxes, bg.rgb, bg.boxes,
                                         self.zoom_ratio(image, boxes, rng),
                                         (rng.random(), rng.random()))
        if rng.random() < r.paste_probability:
            image, boxes = self.paste_hands(image, boxes, item.source, rng)
        return image, boxes

    def zoom_ratio(self, image: np.ndarray, boxes: np.ndarray, rng: np.random.Generator
                   ) -> float:
        """
        Draw how many times a zoomed-out image shrinks.

        1.5-``max_zoom``; with ``zoom_hand_height`` (and a hand in the image), the ratio that
        puts its tallest hand at a log-uniform share of the image height in that range (at
        least 1).
        """
        r = self.recipe
        if not r.zoom_hand_height or not len(boxes):
            return float(rng.uniform(1.5, r.max_zoom))
        tallest = float(np.max(boxes[:, 3] - boxes[:, 1])) / image.shape[0]
        target = float(np.exp(rng.uniform(*np.log(r.zoom_hand_height))))
        return max(1.0, tallest / target)

    def paste_hands(self, image, boxes, source: str, rng: np.random.Generator):
        """
        Paste 1..paste_max_hands hands at heights log-uniform in ``paste_height`` of the image.

        Box-cut hands go onto EgoHands backgrounds, polygon hands onto the others.
        """
        bank = self.box_cuts if source == 'egohands' else self.masks
        if not bank:
            return image, boxes
        lo, hi = np.log(self.recipe.paste_height)
        for _ in range(int(rng.integers(1, self.recipe.paste_max_hands + 1))):
            cut = bank[int(rng.integers(len(bank)))]
            height = np.exp(rng.uniform(lo, hi)) * image.shape[0]
            if rng.random() < 0.5:
                cut = Cutout(cut.rgb[:, ::-1], cut.mask[:, ::-1])
            image, boxes = paste_cutout(image, boxes, cut, height, (rng.random(), rng.random()))
        return image, boxes

    def __call__(self, i: int, rng: np.random.Generator):
        """One training example ``(rgb, pixel boxes)`` built around image `i`."""
        out = self.negative(i, rng) if rng.random() < self.recipe.negative_probability else None
        if out is None:
            out = self.compose(i, rng)
        return self.base(*out, rng)


class RecipeDataset(SSDDataset):
    """
    Serve :class:`SSDDataset` epochs that are :func:`epoch_mix` draws.

    Each drawn image is composed by a :class:`RecipeAugmenter`.
    """

    def __init__(self, images: list[CachedImage], anchors: np.ndarray, input_size: int,
                 recipe: Recipe, composer: RecipeAugmenter, **kwargs) -> None:
        self.recipe, self.composer = recipe, composer
        super().__init__(images, anchors, input_size, augment=True, **kwargs)

    def _permutation(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch, 7])
        return epoch_mix([c.source for c in self.images], self.recipe.weights,
                         self.recipe.epoch_size, rng)

    def __len__(self) -> int:
        return -(-self.recipe.epoch_size // self.batch_size)

    def mix(self) -> dict:
        """``{source: images drawn this epoch}``."""
        return dict(Counter(self.images[i].source for i in self._order))

    def example(self, i: int, rng: np.random.Generator | None):
        """Image `i` composed by the recipe, as network input and normalised boxes."""
        from hand_tracker_training.input_pipeline import normalised_boxes, to_network_input

        rgb, boxes = self.composer(i, rng)
        h, w = rgb.shape[:2]
        return to_network_input(rgb, self.input_size), normalised_boxes(boxes, w, h)


def false_positive_boxes(gt: np.ndarray, det_boxes: np.ndarray, det_scores: np.ndarray,
                         min_score: float = 0.3, max_overlap: float = 0.1) -> np.ndarray:
    """
    Return the detections scoring >= `min_score` that cover no hand.

    Less than `max_overlap` of the detection's area lies in any ground-truth box (a face, an arm,
    a sleeve, a background).
    """
    d = np.asarray(det_boxes, np.float32).reshape(-1, 4)[np.asarray(det_scores) >= min_score]
    g = np.asarray(gt, np.float32).reshape(-1, 4)
    if len(d) == 0 or len(g) == 0:
        return d
    lo = np.maximum(d[:, None, :2], g[None, :, :2])
    hi = np.minimum(d[:, None, 2:], g[None, :, 2:])
    inter = np.clip(hi - lo, 0, None).prod(axis=2)
    area = np.maximum((d[:, 2:] - d[:, :2]).prod(axis=1), 1e-6)
    return d[(inter / area[:, None]).max(axis=1) < max_overlap]


def mine_false_positives(model_path: str, samples: list, min_score: float = 0.3
                         ) -> dict[str, list]:
    """
    Return the false positives of a detector on `samples`' images.

    ``{real image path: [[x_min, y_min, x_max, y_max], ...]}`` (original pixels); the detector
    is one of :mod:`hand_tracker_ros.backends`.
    """
    from tqdm import tqdm

    from hand_tracker_ros.backends import load_detector
    from hand_tracker_training.input_pipeline import read_rgb

    detector = load_detector(model_path)
    found: dict[str, list] = {}
    unique = {os.path.realpath(s.image_path): s for s in samples}
    for key, s in tqdm(unique.items(), desc='mining false positives', unit='img', leave=False):
        det = detector.detect(read_rgb(s.image_path), min_score)
        fp = false_positive_boxes(s.boxes, det.boxes, det.scores, min_score)
        if len(fp):
            found[key] = fp.round(1).tolist()
    print(f'mined {sum(map(len, found.values()))} false positives of {model_path} on '
          f'{len(found)} of {len(samples)} training images', flush=True)
    return found
