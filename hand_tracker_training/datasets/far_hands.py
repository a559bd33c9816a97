r"""
Far hands: a generated test set of small hands in real scenes, built from ``test`` parts only.

The same generator, given ``part='val'`` (``--part val``), builds a *validation* counterpart
from the ``val`` parts (webcam val sessions and gesture val photos, pasted into hand-free
rectangles of the EgoHands val video; where a leave-one-video-out fold leaves EgoHands no val
part, the scenes are its ``train`` videos' frames: only their hand-free backgrounds are used,
the people are always val). The training recipe's ``val_far_hands`` adds it to the validation
parts, so that the epoch kept and the operating threshold also answer for small hands
(:func:`far_val_samples`). Nothing of a ``test`` part is read for it. The text below describes
the test set; for ``val`` read "val" for "test".

No test part of ``../shared/data`` has hands of a person a few metres from the camera (the
webcam set's hands are 24-90 % of the image height). This set shrinks held-out people into
held-out scenes so that their hands are 4-15 % of the image height, roughly even over the
recall bins of :data:`~hand_tracker_training.evaluate.HEIGHT_BINS` below 16 %. Nothing is
trained, selected or calibrated on it: every image it reads comes from a ``test`` part of
``config/data_splits.yaml`` through :func:`~hand_tracker_training.datasets.parts.load_part`.

What it uses (all ``test`` parts):

- **people** (pasted, whole image, scaled down): every image of ``hands_webcam_subhih`` test
  (4 recording sessions, 317 frames of a person raising one or two hands; the whole 640x480
  frame is kept, head, shoulders and the room around them, so a hand keeps its body context)
  and, for a share :data:`GESTURE_SHARE` of the pastes, a whole ``hand_gestures_roboflow``
  test photo (phone photos of a hand and forearm, 86 labelled hands in 85 photos; 224x224 as
  exported). Unlabelled hands: in the webcam set only the raised hand(s) are labelled; a look
  at 24 evenly spread one-hand test frames found the other arm hanging out of the frame in
  every one, and 24 gesture test photos showed no other hand, but an unlabelled hand cannot be
  ruled out in every image.
- **scenes** (the background, no hand in it): ``egohands`` test (video ``CARDS_OFFICE_S_B``,
  1280x720), where every hand, the camera wearer's and the partner's, is labelled. From each
  frame the largest rectangle of the output's aspect ratio that keeps :data:`MARGIN` (a
  fraction of the hand's size, plus :data:`MARGIN_PX`) away from every labelled hand is cut out
  and resized to the output size; frames whose hand-free rectangle is under
  :data:`MIN_SCENE_FRACTION` of the frame's height are not used (left: 92 of the 100 frames
  for 4:3, 17 for 16:9, rectangles 336-544 pixels high; many frames show the same wall,
  chair and table, so the scenes are a few views of one office).

Each image is 640x480 (4:3, a robot's camera) or, with probability :data:`WIDE_SHARE`,
1280x720. It gets up to 3 people (1, 2 or 3 drawn; person, scale and place redrawn up to 20
times until one fits), at random places, not overlapping. A person's scale is drawn
so that its largest hand falls in a size bin drawn uniformly from 4-8, 8-12 and 12-15 % of the
output height (every hand of the paste must stay within 4-15 %), the paste's edge is blended
over :data:`FEATHER_PX` pixels. Labels are the source boxes scaled and moved with the pixels.

The output is a YOLO folder that ``hand-tracker-eval --yolo DIR --yolo-splits test`` and the
suite read: ``DIR/test/images/far_NNNN.jpg``, ``DIR/test/labels/far_NNNN.txt`` (``0 cx cy w
h``), ``DIR/data.yaml`` and ``DIR/manifest.json`` (the parameters and, per image, the scene
rectangle and each paste: source image, its pasted size and place, which label each source
box became).
The same seed and parameters give the same bytes. Command line::

    hand-tracker-dataset far-hands --out data/far_hands            # 300 images, seed 0
    python -m hand_tracker_training.datasets.far_hands --out data/far_hands --images 300

The evaluation suite (``config/eval_suite.yaml``) generates it when absent or out of date
(:func:`ensure_far_hands`).
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import shutil
import sys
import tempfile
from typing import Optional, Sequence

import cv2
from hand_tracker_training.datasets.parts import DATA_SPLITS, load_part, read_data_splits
from hand_tracker_training.datasets.sample import Sample
from hand_tracker_training.evaluate import HEIGHT_BINS
import numpy as np

#: Bumped whenever the output for the same parameters changes (ensure_far_hands regenerates).
VERSION = 1
#: The data sets of the people pasted and of the scenes; the test set reads their ``test`` parts.
PEOPLE = ('hands_webcam_subhih', 'hand_gestures_roboflow')
SCENES = 'egohands'
PART = 'test'
#: The parts a set can be made from (``--part``): the test set, or its validation counterpart.
PARTS_ALLOWED = ('test', 'val')
#: Hand height range of the set, a fraction of the output image's height.
MIN_HEIGHT, MAX_HEIGHT = 0.04, 0.15
#: Share of pastes that are a gesture photo rather than a webcam frame.
GESTURE_SHARE = 0.25
#: Share of 1280x720 images (else 640x480).
WIDE_SHARE = 0.25
#: Where generated sets live by default (ignored by git): ``data/`` of the checkout.
GENERATED_DIR = Path(__file__).resolve().parents[2] / 'data'
#: Output sizes (width, height).
SIZES = ((640, 480), (1280, 720))
#: A scene keeps this fraction of a hand's longer side, plus MARGIN_PX, away from every hand.
MARGIN, MARGIN_PX = 0.25, 12
#: Scenes whose hand-free rectangle is lower than this fraction of the frame are not used.
MIN_SCENE_FRACTION = 0.45
#: Width of the blended edge of a paste, in output pixels.
FEATHER_PX = 3
#: Default size and seed.
DEFAULT_IMAGES, DEFAULT_SEED = 300, 0
#: The test set's split folder (``hand-tracker-eval --yolo DIR --yolo-splits test``): its part.
SPLIT = PART


def size_bins() -> list[tuple[float, float]]:
    """Return the bins of HEIGHT_BINS clipped to [MIN_HEIGHT, MAX_HEIGHT], empty ones left out."""
    bins = []
    for _, low, high in HEIGHT_BINS:
        low, high = max(low, MIN_HEIGHT), min(high, MAX_HEIGHT)
        if high > low:
            bins.append((low, high))
    return bins


def hand_free_rect(sample: Sample, aspect: float, step: int = 16) -> Optional[tuple[int, ...]]:
    """
    Return the largest ``(x, y, w, h)`` of aspect `aspect` (w / h) clear of every hand.

    Clear = outside each box grown by MARGIN of its longer side plus MARGIN_PX; the rectangle
    lies on a `step`-pixel grid, the first (top-left-most) of the largest is returned, None when
    none is MIN_SCENE_FRACTION of the frame high.
    """
    width, height = sample.width, sample.height
    blocked = np.zeros((height, width), np.int32)
    for x0, y0, x1, y1 in sample.boxes:
        grow = MARGIN * max(x1 - x0, y1 - y0) + MARGIN_PX
        blocked[max(0, int(y0 - grow)):int(np.ceil(y1 + grow)),
                max(0, int(x0 - grow)):int(np.ceil(x1 + grow))] = 1
    integral = cv2.integral(blocked.astype(np.uint8))
    for h in range(height - height % step, int(MIN_SCENE_FRACTION * height) - 1, -step):
        w = int(round(h * aspect))
        if w > width:
            continue
        ys = np.arange(0, height - h + 1, step)[:, None]
        xs = np.arange(0, width - w + 1, step)[None, :]
        inside = (integral[ys + h, xs + w] - integral[ys, xs + w] - integral[ys + h, xs]
                  + integral[ys, xs])
        free = np.argwhere(inside == 0)
        if len(free):
            iy, ix = free[0]
            return int(xs[0, ix]), int(ys[iy, 0]), w, h
    return None


def _read_bgr(path: str) -> np.ndarray:
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f'cannot read image {path}')
    return bgr


def _paste_scale(sample: Sample, out_height: int, rng: np.random.Generator
                 ) -> Optional[float]:
    """Draw a scale putting the largest hand in a random bin, every hand in range; or None."""
    heights = sample.boxes[:, 3] - sample.boxes[:, 1]
    low = MIN_HEIGHT * out_height / heights.min()
    high = MAX_HEIGHT * out_height / heights.max()
    bins = size_bins()
    lo_bin, hi_bin = bins[int(rng.integers(len(bins)))]
    low = max(low, lo_bin * out_height / heights.max())
    high = min(high, hi_bin * out_height / heights.max())
    return float(rng.uniform(low, high)) if high > low else None


def _feather(h: int, w: int) -> np.ndarray:
    """Alpha (h, w, 1) rising from 1/(FEATHER_PX+1) at the edge to 1 FEATHER_PX inside."""
    ramp_y = np.minimum(np.arange(h), np.arange(h)[::-1]) + 1
    ramp_x = np.minimum(np.arange(w), np.arange(w)[::-1]) + 1
    ramp = np.minimum(ramp_y[:, None], ramp_x[None, :]) / (FEATHER_PX + 1)
    return np.clip(ramp, 0.0, 1.0)[:, :, None].astype(np.float32)


def _relative(path: str, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _compose(index: int, people: dict[str, list[Sample]], scenes: dict[tuple, list],
             rng: np.random.Generator, root: Path) -> tuple[np.ndarray, list, dict]:
    """One image: (BGR pixels, [[x0, y0, x1, y1], ...] boxes, its manifest entry)."""
    width, height = SIZES[1] if rng.random() < WIDE_SHARE else SIZES[0]
    candidates = scenes[(width, height)]
    scene, (sx, sy, sw, sh) = candidates[int(rng.integers(len(candidates)))]
    canvas = cv2.resize(_read_bgr(scene.image_path)[sy:sy + sh, sx:sx + sw], (width, height),
                        interpolation=cv2.INTER_AREA if sw >= width else cv2.INTER_LINEAR)
    canvas = canvas.astype(np.float32)
    boxes, pastes, taken = [], [], []
    for _ in range(int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2]))):
        for _attempt in range(20):
            source = PEOPLE[1] if rng.random() < GESTURE_SHARE else PEOPLE[0]
            person = people[source][int(rng.integers(len(people[source])))]
            scale = _paste_scale(person, height, rng)
            if scale is None:
                continue
            pw, ph = int(round(person.width * scale)), int(round(person.height * scale))
            if pw < 8 or ph < 8 or pw > width or ph > height:
                continue
            x, y = int(rng.integers(0, width - pw + 1)), int(rng.integers(0, height - ph + 1))
            if any(x < tx1 and tx0 < x + pw and y < ty1 and ty0 < y + ph
                   for tx0, ty0, tx1, ty1 in taken):
                continue
            patch = cv2.resize(_read_bgr(person.image_path), (pw, ph),
                               interpolation=cv2.INTER_AREA).astype(np.float32)
            alpha = _feather(ph, pw)
            canvas[y:y + ph, x:x + pw] = alpha * patch + (1 - alpha) * canvas[y:y + ph, x:x + pw]
            fx, fy = pw / person.width, ph / person.height
            labels = []
            for x0, y0, x1, y1 in person.boxes.tolist():
                labels.append(len(boxes))
                boxes.append([x0 * fx + x, y0 * fy + y, x1 * fx + x, y1 * fy + y])
            taken.append((x, y, x + pw, y + ph))
            pastes.append({'source': source, 'image': _relative(person.image_path, root),
                           'size': [pw, ph], 'at': [x, y], 'labels': labels})
            break
    entry = {'file': f'far_{index:04d}.jpg', 'size': [width, height],
             'scene': {'image': _relative(scene.image_path, root), 'rect': [sx, sy, sw, sh]},
             'pastes': pastes}
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8), boxes, entry


def scene_part(part: str, config: dict) -> str:
    """
    Return the part of :data:`SCENES` whose frames give the backgrounds of a `part` set.

    `part` itself; for ``val`` under a leave-one-video-out fold that leaves EgoHands no val
    part, ``train`` (hand-free rectangles only). A test set never falls back.
    """
    if part not in PARTS_ALLOWED:
        raise ValueError(f'far hands: part must be one of {PARTS_ALLOWED}, got {part!r}')
    if part == 'val' and 'val' not in config['sources'][SCENES]['parts']:
        return 'train'
    return part


def generate_far_hands(out: str | Path, images: int = DEFAULT_IMAGES, seed: int = DEFAULT_SEED,
                       data_splits: str | Path = DATA_SPLITS,
                       data_root: Optional[str | Path] = None, part: str = PART,
                       fold: Optional[str] = None) -> Path:
    """
    Write the far-hands YOLO folder to `out` (replacing it) and return `out`.

    `part`: ``test`` (the suite's set) or ``val`` (people of the val parts; :func:`scene_part`
    says where the scenes come from); `fold`: a leave-one-video-out fold of the split file.
    Images go to ``out/<part>/``. Deterministic: the same `images`, `seed`, part, fold and data
    give the same files. The folder appears at once when done (written beside it, renamed).
    """
    out = Path(out)
    config = read_data_splits(data_splits, data_root, fold=fold)
    root = Path(config['root'])
    backgrounds = scene_part(part, config)
    people = {name: [s for s in load_part(name, part, config) if len(s.boxes)]
              for name in PEOPLE}
    for name, found in people.items():
        if not found:
            raise ValueError(f'far hands: no labelled hand in {name} {part}')
    scenes: dict[tuple, list] = {size: [] for size in SIZES}
    for scene in load_part(SCENES, backgrounds, config):
        for size in SIZES:
            rect = hand_free_rect(scene, size[0] / size[1])
            if rect is not None:
                scenes[size].append((scene, rect))
    for size, found in scenes.items():
        if not found:
            raise ValueError(f'far hands: no hand-free {size[0]}x{size[1]} scene in {SCENES} '
                             f'{backgrounds}')
    rng = np.random.default_rng(seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{out.name}.', dir=out.parent))
    try:
        (tmp / part / 'images').mkdir(parents=True)
        (tmp / part / 'labels').mkdir(parents=True)
        entries = []
        for index in range(images):
            pixels, boxes, entry = _compose(index, people, scenes, rng, root)
            if not cv2.imwrite(str(tmp / part / 'images' / entry['file']), pixels,
                               [cv2.IMWRITE_JPEG_QUALITY, 92]):
                raise OSError(f'cannot write {entry["file"]}')
            w, h = entry['size']
            (tmp / part / 'labels' / f'far_{index:04d}.txt').write_text(''.join(
                f'0 {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} {(x1 - x0) / w:.6f} '
                f'{(y1 - y0) / h:.6f}\n' for x0, y0, x1, y1 in boxes), encoding='utf-8')
            entries.append(entry)
        (tmp / 'data.yaml').write_text("names: ['hand']\nnc: 1\n", encoding='utf-8')
        manifest = {'generator': __name__, **_parameters(images, seed, part, fold),
                    'people': [f'{name}/{part}' for name in PEOPLE],
                    'scenes': f'{SCENES}/{backgrounds}', 'images': entries}
        (tmp / 'manifest.json').write_text(json.dumps(manifest, indent=1) + '\n',
                                           encoding='utf-8')
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def _parameters(images: int, seed: int, part: str, fold: Optional[str]) -> dict:
    return {'version': VERSION, 'count': images, 'seed': seed,
            'hand_height': [MIN_HEIGHT, MAX_HEIGHT], 'part': part, 'fold': fold}


def ensure_far_hands(out: str | Path, images: int = DEFAULT_IMAGES, seed: int = DEFAULT_SEED,
                     data_splits: str | Path = DATA_SPLITS,
                     data_root: Optional[str | Path] = None, part: str = PART,
                     fold: Optional[str] = None) -> Path:
    """Return `out`, generating it first when absent or made with other parameters/version."""
    out = Path(out)
    try:
        manifest = json.loads((out / 'manifest.json').read_text(encoding='utf-8'))
        if all(manifest.get(k) == v for k, v in _parameters(images, seed, part, fold).items()):
            return out
    except (OSError, ValueError):
        pass
    print(f'generating the far-hands {part} set ({images} images, seed {seed}) in {out}',
          file=sys.stderr)
    return generate_far_hands(out, images, seed, data_splits, data_root, part, fold)


def far_val_samples(out: str | Path, images: int, seed: int = DEFAULT_SEED,
                    data_root: Optional[str | Path] = None, fold: Optional[str] = None,
                    source: str = 'far_hands') -> list[Sample]:
    """
    Return the samples of the val far-hands set at `out` (made when absent or out of date).

    Each sample's ``source`` is `source`, so that validation reports it as a source of its own.
    """
    from hand_tracker_training.datasets.yolo import load_yolo

    folder = ensure_far_hands(out, images, seed, data_root=data_root, part='val', fold=fold)
    samples = load_yolo(folder, splits=['val'], progress=False)
    for sample in samples:
        sample.source = source
    return samples


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``hand-tracker-dataset far-hands`` (and ``python -m``) to `parser`."""
    parser.add_argument('--out', type=Path, required=True, help='output YOLO folder (replaced)')
    parser.add_argument('--images', type=int, default=DEFAULT_IMAGES,
                        help=f'number of images (default {DEFAULT_IMAGES})')
    parser.add_argument('--seed', type=int, default=DEFAULT_SEED,
                        help=f'random seed (default {DEFAULT_SEED})')
    parser.add_argument('--data-splits', type=Path, default=DATA_SPLITS,
                        help='split file (default: config/data_splits.yaml)')
    parser.add_argument('--data-root', type=Path, help="data folder (default: the file's root)")
    parser.add_argument('--part', choices=PARTS_ALLOWED, default=PART,
                        help="test (the suite's set, default) or val (the validation "
                             'counterpart, from val parts only)')
    parser.add_argument('--fold', help='leave-one-video-out fold of the split file (val sets)')


def run(args: argparse.Namespace) -> None:
    """Generate from parsed :func:`add_arguments` options and say what was written."""
    out = generate_far_hands(args.out, args.images, args.seed, args.data_splits, args.data_root,
                             args.part, args.fold)
    print(f'wrote {args.images} far-hand images to {out} '
          f'(hand-tracker-eval --yolo {out} --yolo-splits {args.part})')


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m hand_tracker_training.datasets.far_hands``; 0 ok, 2 unreadable data."""
    parser = argparse.ArgumentParser(prog='far_hands', description=__doc__.split('\n')[1])
    add_arguments(parser)
    try:
        run(parser.parse_args(argv))
    except (OSError, ValueError) as exc:
        print(f'far_hands: {exc}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
