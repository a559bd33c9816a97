"""
Training and export of the SSD on real EgoHands frames: the loss goes down.

The exported frozen graph and TFLite give the Keras model's detections, and the smoke run works end
to end (with --resume).
"""
from __future__ import annotations

import csv
import json

from hand_tracker_training.input_pipeline import (cache_images, read_rgb, SSDDataset,
                                                  to_network_input)
import pytest


SIZE = 128


@pytest.fixture(scope='module')
def frames(egohands_dir):
    from hand_tracker_training.datasets import load_egohands
    train = load_egohands(egohands_dir, videos=['CARDS_LIVINGROOM_B_T'])[::12][:8]
    val = load_egohands(egohands_dir, videos=['CARDS_OFFICE_S_B'])[:2]
    return train, val


@pytest.fixture(scope='module')
def trained(frames):
    """
    Return a 128 px SSD after 12 steps on 8 real frames, and the loss before and after.

    The backbone is ImageNet-initialised when the shared weights exist.
    """
    from hand_tracker_training.losses import BoxLoss, FocalLoss
    from hand_tracker_training.model import build_ssd, SSDConfig
    from hand_tracker_training.pretrained import initialise
    from hand_tracker_training.train import SHARED_TFLITE
    import keras

    keras.utils.set_random_seed(0)
    config = SSDConfig(input_size=SIZE)
    model = build_ssd(config)
    if SHARED_TFLITE.is_file():
        initialise(model, str(SHARED_TFLITE))
    ds = SSDDataset(cache_images(frames[0], progress=False), config.anchor_boxes(), SIZE,
                    batch_size=8, augment=False)
    x, y = ds[0]
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss={'boxes': BoxLoss(), 'classes': FocalLoss()})
    before = model.evaluate(x, y, verbose=0, return_dict=True)
    model.fit(x, y, batch_size=8, epochs=12, verbose=0)
    after = model.evaluate(x, y, verbose=0, return_dict=True)
    return model, config, before, after


def test_loss_decreases_on_real_frames(trained):
    _, _, before, after = trained
    assert after['loss'] < 0.7 * before['loss'], (before, after)
    assert after['boxes_loss'] < before['boxes_loss']
    assert after['classes_loss'] < before['classes_loss']


def _assert_same_detections(ref, got, k: int = 10) -> None:
    """Check that the `k` best Keras detections are in `got` (IoU > 0.9, score within 0.02)."""
    from hand_tracker_ros.geometry import pairwise_iou
    assert len(ref) > 0 and len(got) > 0
    top = ref.boxes[:k]
    overlaps = pairwise_iou(top, got.boxes)
    for i in range(len(top)):
        j = overlaps[i].argmax()
        assert overlaps[i, j] > 0.9, (i, top[i], got.boxes[j])
        assert abs(ref.scores[i] - got.scores[j]) < 0.02, (ref.scores[i], got.scores[j])


def test_export_gives_the_keras_detections(trained, frames, tmp_path):
    """
    Frozen graph and float TFLite.

    Loaded by the ROS node's backends, detect what the Keras model detects on a real held-out
    frame (scores >= 0.05).
    """
    from hand_tracker_ros.backends import load_detector
    from hand_tracker_training.export import export_frozen_graph, export_tflite, make_detect_fn
    from hand_tracker_training.model import predict_detections

    model, config, _, _ = trained
    sample = frames[1][0]
    rgb = read_rgb(sample.image_path)
    ref = predict_detections(model, config, [to_network_input(rgb, SIZE)],
                             [(sample.width, sample.height)], min_score=0.05)[0]
    pb = export_frozen_graph(make_detect_fn(model, config, min_score=0.05), tmp_path / 'g.pb')
    tfl = export_tflite(make_detect_fn(model, config, fixed_size=True, min_score=0.05),
                        tmp_path / 'm.tflite', SIZE)
    for path in (pb, tfl):
        det = load_detector(str(path)).detect(rgb, min_score=0.05)
        assert det.boxes.max() > SIZE  # pixels of the 1280x720 frame, not of the network input
        _assert_same_detections(ref, det)


@pytest.mark.slow
def test_smoke_training_end_to_end_and_resume(egohands_dir, tmp_path):
    """
    ``hand-tracker-train --smoke`` trains, selects, plots and exports files that load and score.

    ``--resume`` continues from the last epoch.
    """
    from hand_tracker_ros.backends import load_detector
    from hand_tracker_training.train import main

    out = tmp_path / 'run'
    args = ['--smoke', '--egohands', str(egohands_dir), '--train-videos',
            'CARDS_LIVINGROOM_B_T', '--val-videos', 'CARDS_OFFICE_S_B', '--out', str(out)]
    assert main(args) == 0
    for name in ('config.json', 'last.keras', 'best.weights.h5', 'history.csv',
                 'training_curves.png', 'export/frozen_inference_graph.pb',
                 'export/model.tflite', 'export/model_int8.tflite', 'export/label_map.pbtxt'):
        assert (out / name).is_file(), name
    metrics = json.loads((out / 'export' / 'metrics.json').read_text())
    for key in ('frozen_graph', 'tflite', 'tflite_int8'):
        assert 0.0 <= metrics[key]['AP50'] <= 1.0 and metrics[key]['latency_ms_median'] > 0
    det = load_detector(str(out / 'export' / 'model_int8.tflite'))
    assert tuple(det.input_size) == (128, 128)
    with open(out / 'history.csv') as f:
        rows = list(csv.DictReader(f))
    assert [r['epoch'] for r in rows] == ['0', '1']
    with open(out / 'validation.csv') as f:
        val = list(csv.DictReader(f))
    assert [r['epoch'] for r in val] == ['1', '2']
    assert 0.0 <= float(val[-1]['AP50']) <= 1.0

    assert main(args + ['--resume', '--epochs', '3', '--no-export']) == 0
    with open(out / 'history.csv') as f:
        assert [r['epoch'] for r in csv.DictReader(f)] == ['0', '1', '2']
    assert json.loads((out / 'state.json').read_text())['epoch'] == 3


def test_fine_tuning_an_exported_model_keeps_its_network(tmp_path):
    """--init models/model.tflite: the run gets the shipped network and anchors (metrics.json)."""
    from pathlib import Path

    from hand_tracker_training.train import new_config, parse_args

    models = Path(__file__).resolve().parents[1] / 'models'
    shipped = json.loads((models / 'metrics.json').read_text())['config']
    args = parse_args(['--yolo', str(tmp_path), '--init', str(models / 'model.tflite'),
                       '--input-size', '300', '--out', str(tmp_path / 'run')])
    config = new_config(args)
    assert config.anchors.to_dict() == {**shipped['anchors'], 'first_stride': 16,
                                        'explicit_scales': []}
    assert config.input_size == shipped['input_size']
    # a MobileNetV2 classifier (no metrics.json beside it) gets the default anchors
    args = parse_args(['--yolo', str(tmp_path), '--init', str(tmp_path / 'x.tflite'),
                       '--input-size', '300', '--out', str(tmp_path / 'run')])
    assert new_config(args).anchors.to_dict() != config.anchors.to_dict()
