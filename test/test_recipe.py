"""
Test the many-domain recipe on real images.

Source split, balanced mix, mosaic, zoom-out onto a real image, copy-paste of EgoHands polygon
hands and hand-free crops keep every box on its hand.
"""
from pathlib import Path

from hand_tracker_training.augment import (box_cutout, mosaic, motion_blur, negative_window,
                                           paste, paste_cutout, polygon_cutout, SSDAugmenter,
                                           zoom_out_onto)
from hand_tracker_training.datasets.parts import load_part
from hand_tracker_training.input_pipeline import read_rgb
from hand_tracker_training.recipe import egohands_polygons, epoch_mix, false_positive_boxes
from hand_tracker_training.sources import load_parts, load_recipe_part, SOURCE_DATASETS
import numpy as np
import pytest


@pytest.fixture(scope='module')
def ego(shared_data):
    """Three EgoHands frames with hands: (rgb, boxes, polygons, hand mask as RGB image)."""
    import cv2

    frames = [s for s in load_recipe_part('egohands', 'train')
              if len(s.boxes) >= 2][::37][:3]
    out = []
    for s in frames:
        rgb = read_rgb(s.image_path)
        polys = egohands_polygons(s.image_path)
        mask = np.zeros_like(rgb)
        for p in polys:
            cv2.fillPoly(mask, [np.round(p).astype(np.int32)], (255, 255, 255))
        out.append((rgb, s.boxes, polys, mask))
    return out


@pytest.fixture(scope='module')
def webcam(shared_data):
    return load_recipe_part('webcam', 'val')


def _assert_tight(mask: np.ndarray, boxes: np.ndarray, tol: int = 3) -> None:
    """Every box holds hand pixels that reach all four of its sides (within `tol` pixels)."""
    hand = mask[..., 0] > 0  # any hand coverage (downscaling blends the edges)
    assert len(boxes)
    for x0, y0, x1, y1 in np.round(boxes).astype(int):
        ys, xs = np.nonzero(hand[y0:y1, x0:x1])
        assert len(xs), f'box {(x0, y0, x1, y1)} has no hand pixel'
        assert xs.min() <= tol and ys.min() <= tol
        assert xs.max() >= x1 - x0 - 1 - tol and ys.max() >= y1 - y0 - 1 - tol


def test_egohands_polygons_match_the_reader_boxes(ego):
    for rgb, boxes, polys, _ in ego:
        h, w = rgb.shape[:2]
        from_polys = np.array([[max(p[:, 0].min(), 0), max(p[:, 1].min(), 0),
                                min(p[:, 0].max(), w), min(p[:, 1].max(), h)] for p in polys])
        assert np.allclose(np.sort(from_polys, axis=0), np.sort(boxes, axis=0), atol=0.01)


def test_motion_blur_smears_along_its_direction_only(ego):
    rgb = ego[0][0]
    grey = rgb.astype(np.float32).mean(axis=2)

    def energy(img):  # mean |gradient| across columns (x) and across rows (y)
        g = img.astype(np.float32).mean(axis=2)
        return np.abs(np.diff(g, axis=1)).mean(), np.abs(np.diff(g, axis=0)).mean()

    ex, ey = energy(rgb)
    hx, hy = energy(motion_blur(rgb, 25, 0.0))
    vx, vy = energy(motion_blur(rgb, 25, 90.0))
    # horizontal motion takes x detail much more than y detail (averaging along x lowers both)
    assert hx < 0.6 * ex and hx / ex < 0.75 * hy / ey
    assert vy < 0.6 * ey and vy / ey < 0.75 * vx / ex
    out = motion_blur(rgb, 25, 33.0)
    assert out.shape == rgb.shape and out.dtype == rgb.dtype
    assert abs(out.astype(np.float32).mean(axis=2).mean() - grey.mean()) < 1.0  # no light lost
    assert motion_blur(rgb, 1.0, 0.0) is rgb


def test_augmenter_blurs_only_when_asked_and_keeps_the_boxes(ego):
    rgb, boxes = ego[0][0], ego[0][1]
    still = {'expand_probability': 0.0, 'crop_probability': 0.0, 'flip_probability': 0.0,
             'photometric_probability': 0.0}
    same, b = SSDAugmenter(**still)(rgb, boxes, np.random.default_rng(0))
    assert np.array_equal(same, rgb) and np.allclose(b, boxes)
    # off by default: the random stream of existing recipes is unchanged
    r1, r2 = np.random.default_rng(5), np.random.default_rng(5)
    SSDAugmenter()(rgb, boxes, r1)
    SSDAugmenter(blur_probability=0.0)(rgb, boxes, r2)
    assert r1.random() == r2.random()
    blurred, b = SSDAugmenter(**still, blur_probability=1.0, max_blur=0.05)(
        rgb, boxes, np.random.default_rng(0))
    assert np.allclose(b, boxes) and not np.array_equal(blurred, rgb)
    diff = np.abs(np.diff(blurred.astype(np.float32), axis=1)).mean()
    assert diff < np.abs(np.diff(rgb.astype(np.float32), axis=1)).mean()


def test_pasted_hand_box_is_the_box_of_its_changed_pixels(ego, webcam):
    rgb, _, polys, _ = ego[0]
    cut = polygon_cutout(rgb, polys[0])
    canvas = read_rgb(webcam[0].image_path)
    before = np.asarray(webcam[0].boxes, np.float32)
    for height in (15, 40, 120):
        out, boxes = paste_cutout(canvas, before, cut, height, (0.9, 0.1))
        changed = np.any(out != canvas, axis=2)
        ys, xs = np.nonzero(changed)
        new = boxes[-1]
        assert new[3] - new[1] == pytest.approx(height, abs=1)
        assert xs.min() >= new[0] and xs.max() < new[2]
        assert ys.min() >= new[1] and ys.max() < new[3]
        assert abs(xs.min() - new[0]) <= 2 and abs(xs.max() + 1 - new[2]) <= 2
        assert abs(ys.min() - new[1]) <= 2 and abs(ys.max() + 1 - new[3]) <= 2
        # a polygon hand is not its box: background pixels inside the box are unchanged
        x0, y0, x1, y1 = np.round(new).astype(int)
        assert changed[y0:y1, x0:x1].mean() < 0.95


def test_paste_drops_a_hand_it_covers_and_keeps_the_others(webcam):
    s = next(s for s in webcam if len(s.boxes) >= 1)
    canvas = read_rgb(s.image_path)
    box = s.boxes[0]
    cover = box_cutout(read_rgb(webcam[-1].image_path), box)
    x0, y0 = int(np.floor(box[0])), int(np.floor(box[1]))
    _, kept = paste(canvas, s.boxes, cover.rgb, cover.mask, x0, y0)
    assert len(kept) == len(s.boxes) - 1
    small = cover.rgb[:8, :8]
    _, kept = paste(canvas, s.boxes, small, np.ones((8, 8), np.uint8), 0, 0)
    far = [b for b in s.boxes if b[0] > 10 or b[1] > 10]
    assert len(kept) >= len(far)


def test_mosaic_keeps_boxes_on_hands(ego):
    tiles = [(rgb, boxes) for rgb, boxes, _, _ in ego] + [(ego[0][0], ego[0][1])]
    masks = [(mask, boxes) for _, boxes, _, mask in ego] + [(ego[0][3], ego[0][1])]
    for seed in range(4):
        img, boxes = mosaic(tiles, 640, 480, np.random.default_rng(seed))
        mimg, mboxes = mosaic(masks, 640, 480, np.random.default_rng(seed))
        assert img.shape == (480, 640, 3) and np.array_equal(boxes, mboxes)
        _assert_tight(mimg, boxes)
        assert (boxes[:, 2:] <= [640, 480]).all() and (boxes[:, :2] >= 0).all()
    nine = mosaic(masks * 2 + masks[:1], 640, 480, np.random.default_rng(0))
    _assert_tight(*nine)
    with pytest.raises(ValueError, match='square'):
        mosaic(tiles[:3], 640, 480, np.random.default_rng(0))


def test_zoom_out_onto_a_real_image_keeps_visible_background_hands(ego):
    (rgb, boxes, _, mask), (bg, bg_boxes, _, bg_mask) = ego[0], ego[1]
    for ratio, offset in ((2.0, (0.0, 0.0)), (3.5, (1.0, 1.0)), (1.5, (0.5, 0.5))):
        out, b = zoom_out_onto(mask, boxes, bg_mask, bg_boxes, ratio, offset)
        _assert_tight(out, b)
        assert len(boxes) <= len(b) <= len(boxes) + len(bg_boxes)
        img, b2 = zoom_out_onto(rgb, boxes, bg, bg_boxes, ratio, offset)
        assert np.array_equal(b, b2) and img.shape == rgb.shape


def test_zoom_to_a_hand_height_puts_the_tallest_hand_of_real_frames_in_that_range(webcam):
    """``zoom_hand_height``: the zoomed-out webcam frame's tallest hand is a far person's."""
    from hand_tracker_training.input_pipeline import CachedImage
    from hand_tracker_training.recipe import Recipe, RecipeAugmenter

    images = [CachedImage(rgb=read_rgb(s.image_path), boxes=s.boxes, scale=1.0,
                          source='webcam') for s in webcam[::40] if len(s.boxes)]
    recipe = Recipe(weights={'webcam': 1.0}, mosaic_probability=0.0, zoom_probability=1.0,
                    paste_probability=0.0, zoom_hand_height=(0.04, 0.08))
    aug = RecipeAugmenter(images, recipe, masks=[], box_cuts=[])
    rng = np.random.default_rng(0)
    for i, item in enumerate(images):
        tallest = (item.boxes[:, 3] - item.boxes[:, 1]).max() / item.rgb.shape[0]
        assert tallest > 0.2, 'webcam hands are 24-90 % of the frame height'
        image, boxes = aug.compose(i, rng)
        own = boxes[len(boxes) - len(item.boxes):]  # the shrunk frame's hands come last
        share = (own[:, 3] - own[:, 1]).max() / image.shape[0]
        assert 0.04 - 0.01 <= share <= 0.08 + 0.01, (i, share)
    default = RecipeAugmenter(images, Recipe(weights={'webcam': 1.0}), masks=[], box_cuts=[])
    ratios = [default.zoom_ratio(images[0].rgb, images[0].boxes, rng) for _ in range(50)]
    assert 1.5 <= min(ratios) and max(ratios) <= 4.0, 'without it: 1.5-max_zoom times'


def test_negative_window_holds_no_hand(webcam):
    rng = np.random.default_rng(0)
    for s in webcam[:20]:
        win = negative_window(s.width, s.height, s.boxes, rng)
        if win is None:
            continue
        x0, y0, x1, y1 = win
        lo = np.maximum(s.boxes[:, :2], [x0, y0])
        hi = np.minimum(s.boxes[:, 2:], [x1, y1])
        assert not (np.clip(hi - lo, 0, None).prod(axis=1) > 0).any()
    s = webcam[0]
    assert negative_window(s.width, s.height, [[0, 0, s.width, s.height]], rng) is None


def test_false_positive_boxes_are_those_off_every_hand(webcam):
    s = webcam[0]
    hand = s.boxes[0]
    off = np.array([0, 0, 20, 20], np.float32) if hand[0] > 30 and hand[1] > 30 else \
        np.array([s.width - 20, s.height - 20, s.width, s.height], np.float32)
    dets = np.stack([hand, off, off])
    fp = false_positive_boxes(s.boxes, dets, np.array([0.9, 0.8, 0.1]), min_score=0.3)
    assert np.array_equal(fp, off[None])


def test_recipe_sources_are_the_data_split_parts(shared_data):
    """The recipe reads exactly the parts of config/data_splits.yaml, tagged with its names."""
    for source, dataset in SOURCE_DATASETS.items():
        for part in ('train', 'val'):
            got = load_recipe_part(source, part)
            assert [s.image_path for s in got] == \
                [s.image_path for s in load_part(dataset, part)]
            assert {s.source for s in got} <= {source}
    with pytest.raises(ValueError, match='unknown'):
        load_recipe_part('webcam', 'dev')


def test_epoch_mix_follows_the_weights(shared_data):
    parts = load_parts('train', ('egohands', 'closeup', 'webcam'))
    sources = [k for k, v in parts.items() for _ in v]
    weights = {'egohands': 0.5, 'closeup': 0.25, 'webcam': 0.25}
    drawn = epoch_mix(sources, weights, 1000, np.random.default_rng(0))
    counts = {k: sum(sources[i] == k for i in drawn) for k in weights}
    assert counts == {'egohands': 500, 'closeup': 250, 'webcam': 250}
    ego = np.bincount([i for i in drawn if sources[i] == 'egohands'])
    ego = ego[ego > 0]  # shuffled rounds: every image 5 times for 500 draws of 100
    assert len(ego) == len(parts['egohands']) == 100 and set(ego) == {5}
    with pytest.raises(ValueError, match='no training images'):
        epoch_mix(sources, {'asl': 1.0}, 10, np.random.default_rng(0))


@pytest.mark.slow
def test_recipe_smoke_run_mixes_selects_per_source_and_calibrates(shared_data, tmp_path):
    """
    Run ``hand-tracker-train --recipe config/train_recipe.yaml --smoke``.

    The mix is written, the best epoch is chosen on the source-mean AP@0.5, the export writes
    model_info.yaml with a threshold chosen on every validation source, and --resume continues.
    """
    import json

    import yaml

    from hand_tracker_ros.backends import load_detector
    from hand_tracker_ros.resources import model_score_threshold
    from hand_tracker_training.train import SHARED_TFLITE, main

    repo = Path(__file__).resolve().parents[1]
    out = tmp_path / 'run'
    args = ['--recipe', str(repo / 'config' / 'train_recipe.yaml'), '--smoke', '--epochs', '1',
            '--input-size', '128', '--smoke-images', '4', '--data-root', str(shared_data),
            '--init', str(SHARED_TFLITE), '--mine-model', str(repo / 'models' / 'model.tflite'),
            '--out', str(out)]
    assert main(args) == 0
    mix = json.loads((out / 'mix.json').read_text())
    assert sum(mix['drawn_per_epoch'].values()) == 16
    assert set(mix['training_images']) == {'egohands', 'webcam', 'asl', 'gestures', 'closeup'}
    assert mix['polygon_cutouts'] > 0 and mix['box_cutouts'] > 0
    assert json.loads((out / 'best.json').read_text())['selected_on'] == 'AP50_source_mean'
    assert (out / 'hard_negatives.json').is_file()
    info = yaml.safe_load((out / 'export' / 'model_info.yaml').read_text())
    assert set(info['validation']) == {'egohands', 'webcam', 'asl', 'gestures', 'closeup'}
    assert 0.05 <= info['score_threshold'] <= 0.95 and info['recall_floor'] == 0.85
    assert model_score_threshold(out / 'export' / 'model.tflite') == info['score_threshold']
    assert load_detector(str(out / 'export' / 'model.tflite')).input_size == (128, 128)
    assert main(args + ['--resume', '--epochs', '2', '--no-export']) == 0
    assert json.loads((out / 'state.json').read_text())['epoch'] == 2


def test_mined_negatives_cache_is_keyed_by_real_path_and_a_foreign_one_is_mined_again(
        webcam, tmp_path):
    """
    A ``hard_negatives.json`` from another checkout names none of these images: it is mined again.

    Its keys are real paths, so the same images reached through another path (``a/../a``) find
    their boxes, scaled to the cached image size.
    """
    import argparse
    import dataclasses
    import json
    import os

    from hand_tracker_training.input_pipeline import CachedImage
    from hand_tracker_training.train import mined_negatives

    repo = Path(__file__).resolve().parents[1]
    samples = webcam  # the val part: 243 frames of 3 sessions
    images = [CachedImage(rgb=np.zeros((1, 1, 3), np.uint8), boxes=s.boxes, scale=0.5)
              for s in samples]
    args = argparse.Namespace(mine_model=str(repo / 'models' / 'model.tflite'))
    cache = tmp_path / 'hard_negatives.json'
    cache.write_text(json.dumps({'/elsewhere/checkout/pic.jpg': [[1.0, 2.0, 30.0, 40.0]]}))
    found = mined_negatives(args, samples, images, tmp_path)
    written = json.loads(cache.read_text())
    assert '/elsewhere/checkout/pic.jpg' not in written
    real = {os.path.realpath(s.image_path) for s in samples}
    assert written and set(written) <= real, 'the shipped model makes no false positive here'
    assert len(found) == len(written)
    for i, boxes in found.items():
        key = os.path.realpath(samples[i].image_path)
        assert np.allclose(boxes, np.asarray(written[key]) * 0.5)
    # the same images through a path with '..' in it find the same cached boxes, no re-mining
    detour = [dataclasses.replace(s, image_path=os.path.join(
        os.path.dirname(s.image_path), '..', os.path.basename(os.path.dirname(s.image_path)),
        os.path.basename(s.image_path))) for s in samples]
    mtime = cache.stat().st_mtime_ns
    again = mined_negatives(args, detour, images, tmp_path)
    assert cache.stat().st_mtime_ns == mtime
    assert sorted(again) == sorted(found)


def test_recipe_stage_options_sit_between_the_file_args_and_the_command_line(tmp_path):
    """``--stage NAME`` takes the stage's options over the file's ``args``; the command wins."""
    from hand_tracker_training.train import parse_args

    recipe = tmp_path / 'recipe.yaml'
    recipe.write_text('args: {epochs: 12, lr: 0.001, warmup_epochs: 1.0}\n'
                      'stages:\n  finetune: {epochs: 8, lr: 0.0003}\n')
    base = parse_args(['--recipe', str(recipe), '--out', 'x'])
    assert (base.epochs, base.lr, base.warmup_epochs) == (12, 0.001, 1.0)
    stage = parse_args(['--recipe', str(recipe), '--stage', 'finetune', '--out', 'x'])
    assert (stage.epochs, stage.lr, stage.warmup_epochs) == (8, 0.0003, 1.0)
    cli = parse_args(['--recipe', str(recipe), '--stage', 'finetune', '--epochs', '3',
                      '--out', 'x'])
    assert (cli.epochs, cli.lr) == (3, 0.0003)
    with pytest.raises(SystemExit, match="no stage 'polish'"):
        parse_args(['--recipe', str(recipe), '--stage', 'polish', '--out', 'x'])
    recipe.write_text('args: {epochs: 12}\nstages:\n  finetune: {epoch: 8}\n')
    with pytest.raises(SystemExit, match=r"unknown args \['epoch'\]"):
        parse_args(['--recipe', str(recipe), '--stage', 'finetune', '--out', 'x'])


@pytest.mark.slow
def test_train_default_model_runs_the_stages_in_turn_and_skips_finished_ones(shared_data,
                                                                             tmp_path):
    """
    ``tools/train_default_model.sh RUN`` (foreground): base, then every recipe stage.

    A stage starts from the best weights of the one before and mines that one's exported model;
    ``RUN/final`` names the last stage; the same command again finds every stage done.
    """
    import os

    import procs
    import yaml

    repo = Path(__file__).resolve().parents[1]
    stages = list(yaml.safe_load((repo / 'config' / 'train_recipe.yaml').read_text())['stages'])
    run = tmp_path / 'run'
    cmd = [str(repo / 'tools' / 'train_default_model.sh'), str(run), '--smoke', '--epochs', '1',
           '--input-size', '128', '--smoke-images', '4', '--data-root', str(shared_data)]
    env = {**os.environ, 'HAND_TRACKER_STAGES_FOREGROUND': '1'}
    first = procs.run(cmd, env=env, capture_output=True, text=True, timeout=1500)
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    out = first.stdout
    prev = run / 'base'
    for stage in stages:
        assert f'initialisation: {prev}/best.weights.h5' in out
        assert f'false positives of {prev}/export/model.tflite' in out
        assert (run / stage / 'export' / 'model_info.yaml').is_file()
        prev = run / stage
    assert (run / 'final').read_text().strip() == str(prev)
    again = procs.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0
    assert [f'== {run / s}: done' for s in ['base', *stages]] == [
        line for line in again.stdout.splitlines() if line.endswith(': done')]
