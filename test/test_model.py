"""
SSD MobileNet v2 building blocks: anchors, box coding, matching, augmentation.

The Keras model and its losses, and the pretrained (TFLite ImageNet) initialisation.
"""
from __future__ import annotations

from pathlib import Path

from hand_tracker_ros.geometry import pairwise_iou
from hand_tracker_training import box_coding
from hand_tracker_training.anchors import AnchorConfig, feature_map_sizes, generate_anchors
from hand_tracker_training.augment import crop, hflip, SSDAugmenter
from hand_tracker_training.input_pipeline import normalised_boxes, read_rgb
import numpy as np
import pytest


WEIGHTS_TFLITE = ('mobilenet_v2_1.0_224_imagenet_int8.tflite')
#: The stride-8 network of config/train_recipe_s8.yaml.
STRIDE8 = AnchorConfig(num_levels=7, first_stride=8, reduce_boxes_in_lowest_layer=False,
                       explicit_scales=(0.04, 0.15, 0.31, 0.47, 0.63, 0.79, 0.95))
#: The shipped detector, exported by this package (its network config is in metrics.json).
SHIPPED = Path(__file__).resolve().parents[1] / 'models'


@pytest.fixture(scope='module')
def ego_samples(egohands_dir):
    from hand_tracker_training.datasets import load_egohands
    return load_egohands(egohands_dir, videos=['CARDS_OFFICE_S_B'])


@pytest.fixture(scope='module')
def tflite_weights(shared_data):
    path = shared_data.parent / 'weights' / WEIGHTS_TFLITE
    if not path.is_file():
        pytest.skip(f'pretrained MobileNetV2 TFLite not found at {path} '
                    f'(shared/weights beside the repo)')
    return path


# --------------------------------------------------------------------------- anchors
@pytest.mark.parametrize('size, expected', [(300, [19, 10, 5, 3, 2, 1]),
                                            (256, [16, 8, 4, 2, 1, 1]),
                                            (128, [8, 4, 2, 1, 1, 1])])
def test_feature_map_sizes(size, expected):
    assert feature_map_sizes(size, 6) == expected


@pytest.mark.parametrize('size, expected', [(300, [38, 19, 10, 5, 3, 2, 1]),
                                            (128, [16, 8, 4, 2, 1, 1, 1])])
def test_feature_map_sizes_with_the_stride_8_level(size, expected):
    assert feature_map_sizes(size, 7, first_stride=8) == expected


def test_explicit_scales_and_their_checks():
    cfg = AnchorConfig(num_levels=7, first_stride=8, reduce_boxes_in_lowest_layer=False,
                       explicit_scales=(0.04, 0.15, 0.31, 0.47, 0.63, 0.79, 0.95))
    assert cfg.scales() == [0.04, 0.15, 0.31, 0.47, 0.63, 0.79, 0.95, 1.0]
    assert cfg.boxes_per_cell() == [6] * 7
    anchors = generate_anchors(300, cfg)
    assert len(anchors) == 6 * sum(n * n for n in (38, 19, 10, 5, 3, 2, 1))
    # the first cell of the stride-8 map: a 0.04 square, then the interpolated sqrt(0.04 * 0.15)
    assert np.allclose(anchors[0], [0.5 / 38, 0.5 / 38, 0.04, 0.04])
    assert np.allclose(anchors[5, 2:], np.sqrt(0.04 * 0.15))
    assert AnchorConfig.from_dict(cfg.to_dict()) == cfg
    # a config written before these fields existed reads as the stride-16 network
    old = {k: v for k, v in AnchorConfig().to_dict().items()
           if k not in ('first_stride', 'explicit_scales')}
    assert AnchorConfig.from_dict(old) == AnchorConfig()
    with pytest.raises(ValueError, match='2 explicit_scales for 6 levels'):
        AnchorConfig(explicit_scales=(0.1, 0.2))
    with pytest.raises(ValueError, match='first_stride must be 8 or 16'):
        AnchorConfig(first_stride=4)


def test_anchor_count_and_geometry():
    cfg = AnchorConfig()
    anchors = generate_anchors(300, cfg)
    per_cell = cfg.boxes_per_cell()
    assert per_cell == [3, 6, 6, 6, 6, 6]
    assert len(anchors) == sum(n * n * k for n, k in zip([19, 10, 5, 3, 2, 1], per_cell)) == 1917
    # the OD API scales: lowest layer (0.1, 1), then 0.2 .. 0.95 linearly
    assert np.allclose(cfg.scales()[:6], np.linspace(0.2, 0.95, 6))
    first = anchors[0]
    assert np.allclose(first, [0.5 / 19, 0.5 / 19, 0.1, 0.1])
    # an aspect-ratio-2 box is wider than high with the same area as its square
    ar2 = anchors[1]
    assert ar2[3] / ar2[2] == pytest.approx(2.0) and ar2[2] * ar2[3] == pytest.approx(0.04)
    # the 1x1 level is centred
    assert np.allclose(anchors[-6:, :2], 0.5)


# --------------------------------------------------------------------------- box coding
def test_encode_decode_round_trip():
    rng = np.random.default_rng(0)
    anchors = generate_anchors(300)
    y0, x0 = rng.uniform(0, 0.7, (2, len(anchors)))
    boxes = np.stack([y0, x0, y0 + rng.uniform(0.02, 0.3, len(anchors)),
                      x0 + rng.uniform(0.02, 0.3, len(anchors))], axis=1).astype(np.float32)
    codes = box_coding.encode(boxes, anchors)
    np.testing.assert_allclose(box_coding.decode(codes, anchors), boxes, atol=1e-5)
    # a box equal to its anchor encodes to zero
    np.testing.assert_allclose(
        box_coding.encode(box_coding.anchors_to_corners(anchors), anchors), 0, atol=1e-5)


def test_keras_decode_matches_numpy():
    from hand_tracker_training.model import decode_boxes
    import keras
    anchors = generate_anchors(128)
    codes = np.random.default_rng(1).normal(0, 1, (2, len(anchors), 4)).astype(np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(decode_boxes(codes, anchors)),
                               box_coding.decode(codes, anchors), atol=1e-5)


def test_matching_gives_every_ground_truth_an_anchor(ego_samples):
    anchors = generate_anchors(300)
    for s in ego_samples[:20]:
        gt = normalised_boxes(s.boxes, s.width, s.height)
        m = box_coding.match(gt, anchors)
        assert set(range(len(gt))) <= set(m[m >= 0].tolist())
        # a positive anchor overlaps its box at 0.5 IoU unless it is that box's forced best
        ious = pairwise_iou(gt, box_coding.anchors_to_corners(anchors))
        forced = set(ious.argmax(axis=1).tolist())
        for a in np.flatnonzero(m >= 0):
            assert a in forced or ious[m[a], a] >= 0.5
        box_t, cls_t = box_coding.encode_targets(gt, anchors)
        pos = box_t[:, 4] == 1
        np.testing.assert_array_equal(pos, cls_t[:, 0] == 1)
        np.testing.assert_allclose(box_coding.decode(box_t[pos, :4], anchors[pos]),
                                   gt[m[pos]], atol=1e-5)


def test_matching_thresholds():
    anchors = np.array([[0.5, 0.5, 0.4, 0.4], [0.5, 0.5, 0.3, 0.3], [0.1, 0.1, 0.1, 0.1]],
                       np.float32)
    gt = np.array([[0.3, 0.3, 0.7, 0.7]], np.float32)  # = anchor 0; IoU with anchor 1 0.5625
    m = box_coding.match(gt, anchors, pos_iou=0.6, neg_iou=0.4)
    assert m.tolist() == [0, -2, -1]
    assert box_coding.match(np.zeros((0, 4)), anchors).tolist() == [-1, -1, -1]


# --------------------------------------------------------------------------- augmentation
def _mask(shape, boxes):
    m = np.zeros(shape[:2], bool)
    for x0, y0, x1, y1 in np.round(boxes).astype(int):
        m[y0:y1, x0:x1] = True
    return m


def test_crop_and_flip_keep_boxes_on_the_same_pixels(ego_samples):
    s = next(s for s in ego_samples if len(s.boxes) >= 2)
    rgb = read_rgb(s.image_path)
    # tag the hands' pixels so they can be followed through the transforms
    tagged = rgb.copy()
    tagged[..., 0] = 0
    tagged[_mask(rgb.shape, s.boxes), 0] = 255
    x0, y0 = int(s.boxes[:, 0].min()) + 10, 50
    window = (x0, y0, min(x0 + 700, s.width), s.height - 40)
    out, boxes, keep = crop(tagged, s.boxes, window, min_visible=0.3)
    assert out.shape == (window[3] - window[1], window[2] - window[0], 3)
    assert keep.sum() == len(boxes) >= 1
    for b in np.round(boxes).astype(int):
        assert out[b[1]:b[3], b[0]:b[2], 0].mean() > 250  # still on hand pixels
    flipped, fboxes = hflip(out, boxes)
    np.testing.assert_array_equal(flipped, out[:, ::-1])
    for b in np.round(fboxes).astype(int):
        assert flipped[b[1]:b[3], b[0]:b[2], 0].mean() > 250
    np.testing.assert_array_equal(_mask(out.shape, boxes), _mask(out.shape, fboxes)[:, ::-1])


def test_crop_drops_hands_mostly_cut_away():
    boxes = np.array([[0, 0, 100, 100], [90, 0, 200, 100]], np.float32)
    img = np.zeros((100, 300, 3), np.uint8)
    _, out, keep = crop(img, boxes, (80, 0, 300, 100), min_visible=0.3)
    assert keep.tolist() == [False, True]
    np.testing.assert_allclose(out, [[10, 0, 120, 100]])


def test_random_augmentation_keeps_boxes_inside(ego_samples):
    aug = SSDAugmenter()
    rng = np.random.default_rng(3)
    s = ego_samples[0]
    rgb = read_rgb(s.image_path)
    kept = 0
    for _ in range(20):
        img, boxes = aug(rgb, s.boxes, rng)
        h, w = img.shape[:2]
        assert img.dtype == np.uint8 and boxes.shape[1] == 4
        assert (boxes >= 0).all()
        assert (boxes[:, [0, 2]] <= w).all() and (boxes[:, [1, 3]] <= h).all()
        assert (boxes[:, 2:] > boxes[:, :2]).all()
        kept += len(boxes)
    assert kept > 0


# --------------------------------------------------------------------------- model
def test_model_outputs_match_anchors():
    from hand_tracker_training.model import build_ssd, SSDConfig
    for size, alpha in ((128, 0.35), (160, 0.5)):
        cfg = SSDConfig(input_size=size, alpha=alpha)
        model = build_ssd(cfg)
        out = model.predict(np.zeros((2, size, size, 3), np.float32), verbose=0)
        n = len(cfg.anchor_boxes())
        assert out['boxes'].shape == (2, n, 4) and out['classes'].shape == (2, n, 1)
        # the class prior: sigmoid(bias) = 0.01 on a fresh model
        assert abs(1 / (1 + np.exp(-out['classes'])).mean() - 0.01) < 0.01
    assert SSDConfig.from_json(cfg.to_json()) == cfg


def test_stride_8_model_outputs_match_anchors():
    from hand_tracker_training.model import build_ssd, SSDConfig
    cfg = SSDConfig(input_size=128, alpha=0.35, anchors=STRIDE8)
    model = build_ssd(cfg)
    out = model.predict(np.zeros((1, 128, 128, 3), np.float32), verbose=0)
    assert out['boxes'].shape == (1, len(cfg.anchor_boxes()), 4)
    # the stride-8 level has its own names; the stride-16 level keeps 'box_head_0'
    assert model.get_layer('box_head_s8').output.shape[1:3] == (16, 16)
    assert model.get_layer('box_head_0').output.shape[1:3] == (8, 8)
    assert SSDConfig.from_json(cfg.to_json()) == cfg


def test_losses_are_zero_for_perfect_predictions_and_ignore_ignored():
    from hand_tracker_training.losses import BoxLoss, FocalLoss
    import keras
    cls_t = np.array([[[1.0], [0.0], [-1.0], [0.0]]], np.float32)
    box_t = np.zeros((1, 4, 5), np.float32)
    box_t[0, 0] = [0.5, -0.2, 0.1, 0.3, 1]
    good = np.array([[[20.0], [-20.0], [0.0], [-20.0]]], np.float32)
    assert float(FocalLoss()(cls_t, good)) < 1e-6
    # the ignored anchor's prediction does not matter
    flipped = good.copy()
    flipped[0, 2] = 50.0
    assert float(FocalLoss()(cls_t, flipped)) < 1e-6
    bad = good.copy()
    bad[0, 1] = 3.0
    assert float(FocalLoss()(cls_t, bad)) > 0.1
    assert float(BoxLoss()(box_t, box_t[..., :4])) == pytest.approx(0.0, abs=1e-7)
    off = box_t[..., :4].copy()
    off[0, 0, 0] += 0.5  # smooth L1: 0.5 * 0.5^2 / 1 positive
    off[0, 3] += 5.0     # not a positive anchor: no box loss
    assert float(BoxLoss()(box_t, off)) == pytest.approx(0.125, rel=1e-4)
    assert keras.losses.deserialize(keras.losses.serialize(FocalLoss(gamma=1.5))).gamma == 1.5


# --------------------------------------------------------------------------- pretrained
def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())
    return e / e.sum()


def test_tflite_weights_transfer_to_keras(tflite_weights, ego_samples, roboflow_dir):
    """
    Check the Keras MobileNetV2 with the TFLite weights against the TFLite classifier.

    Same ImageNet logits (up to int8 quantization noise) on real images.
    """
    from ai_edge_litert.interpreter import Interpreter
    import cv2
    from hand_tracker_training.pretrained import load_tflite_backbone
    import keras

    base = keras.applications.MobileNetV2(weights=None, include_top=False,
                                          input_shape=(224, 224, 3))
    dense = keras.layers.Dense(1001)
    clf = keras.Model(base.input, dense(keras.layers.GlobalAveragePooling2D()(base.output)))
    assert load_tflite_backbone(clf, tflite_weights, classifier=dense) == 52

    interp = Interpreter(model_path=str(tflite_weights))
    interp.allocate_tensors()
    inp, outp = interp.get_input_details()[0], interp.get_output_details()[0]
    in_scale, in_zero = inp['quantization']
    out_scale, out_zero = outp['quantization']
    paths = [s.image_path for s in ego_samples[:2]] + sorted(
        (roboflow_dir / 'test' / 'images').iterdir())[:3]
    agree, corr = 0, []
    for p in paths:
        rgb = cv2.resize(read_rgb(p), (224, 224), interpolation=cv2.INTER_AREA)
        interp.set_tensor(inp['index'], rgb[None])
        interp.invoke()
        probs_t = (interp.get_tensor(outp['index'])[0].astype(np.float32) - out_zero) * out_scale
        probs_k = _softmax(clf.predict(((rgb.astype(np.float32) - in_zero) * in_scale)[None],
                                       verbose=0)[0])
        agree += probs_t.argmax() in np.argsort(probs_k)[-3:]
        corr.append(np.corrcoef(probs_t, probs_k)[0, 1])
    assert agree == len(paths)
    assert min(corr) > 0.8, corr


def test_tflite_init_of_the_ssd_backbone(tflite_weights):
    from hand_tracker_training.model import build_ssd, SSDConfig
    from hand_tracker_training.pretrained import backbone_convolutions, initialise
    model = build_ssd(SSDConfig(input_size=128))
    before = {c.name: c.kernel.numpy().copy() for c, _ in backbone_convolutions(model)}
    heads = model.get_layer('box_head_0').kernel.numpy().copy()
    assert '52 backbone convolutions' in initialise(model, str(tflite_weights))
    for conv, bn in backbone_convolutions(model):
        assert not np.allclose(conv.kernel.numpy(), before[conv.name])
        np.testing.assert_allclose(bn.moving_mean.numpy(), 0)
    np.testing.assert_array_equal(model.get_layer('box_head_0').kernel.numpy(), heads)


def test_imagenet_download_failure_is_reported_cleanly():
    import os

    from hand_tracker_training.model import build_ssd, SSDConfig
    from hand_tracker_training.pretrained import initialise, PretrainedUnavailable
    model = build_ssd(SSDConfig(input_size=128, alpha=0.35))
    try:
        msg = initialise(model, 'imagenet', alpha=0.35)
    except PretrainedUnavailable as e:
        assert '--init' in str(e) and '.tflite' in str(e)
    else:  # a machine with network (or the weights in KERAS_HOME) loads them
        assert 'layers' in msg and os.environ.get('KERAS_HOME')


def _shipped_config():
    from hand_tracker_training.model import exported_config
    return exported_config(SHIPPED / 'model.tflite')


def test_shipped_model_rebuilt_from_its_tflite_detects_the_same_hands(shared_data):
    """Backbone in order, SSD layers by name: the Keras model gives the TFLite's detections."""
    from hand_tracker_ros.backends import load_detector
    from hand_tracker_training.input_pipeline import to_network_input
    from hand_tracker_training.model import build_ssd, predict_detections
    from hand_tracker_training.pretrained import _is_backbone_layer, initialise
    import keras

    cfg = _shipped_config()
    model = build_ssd(cfg)
    ssd_layers = [layer for layer in model.layers if not _is_backbone_layer(layer.name)
                  and isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))]
    assert initialise(model, str(SHIPPED / 'model.tflite')) == (
        f'{SHIPPED / "model.tflite"}: 52 backbone convolutions, {len(ssd_layers)} SSD layers')
    detector = load_detector(str(SHIPPED / 'model.tflite'))
    images = sorted((shared_data / 'hands_webcam_subhih' / 'test' / 'images').iterdir())[:4]
    found = 0
    for path in images:
        rgb = read_rgb(path)
        h, w = rgb.shape[:2]
        ours = predict_detections(model, cfg, [to_network_input(rgb, cfg.input_size)],
                                  [(w, h)], min_score=0.3)[0]
        theirs = detector.detect(rgb, min_score=0.3)
        assert len(ours) == len(theirs), path
        if len(ours):
            iou = pairwise_iou(ours.boxes, theirs.boxes)
            assert iou.max(axis=1).min() > 0.9
            np.testing.assert_allclose(np.sort(ours.scores), np.sort(theirs.scores), atol=0.05)
        found += len(ours)
    assert found >= 3


def test_stride_8_model_starts_with_the_shipped_levels():
    """The levels whose anchors did not change score every anchor as the shipped model does."""
    from hand_tracker_training.model import build_ssd, SSDConfig
    from hand_tracker_training.pretrained import initialise

    old_cfg = _shipped_config()
    new_cfg = SSDConfig(anchors=STRIDE8)
    old, new = build_ssd(old_cfg), build_ssd(new_cfg)
    initialise(old, str(SHIPPED / 'model.tflite'))
    assert initialise(new, str(SHIPPED / 'model.tflite')).endswith('34 SSD layers')
    shared = len(old_cfg.anchor_boxes()) - 19 * 19 * 3  # the shipped levels from stride 32 on
    np.testing.assert_allclose(new_cfg.anchor_boxes()[-shared:], old_cfg.anchor_boxes()[-shared:])
    image = np.random.default_rng(0).uniform(0, 255, (1, 300, 300, 3)).astype(np.float32)
    a, b = old.predict(image, verbose=0), new.predict(image, verbose=0)
    np.testing.assert_allclose(b['classes'][0, -shared:], a['classes'][0, -shared:], atol=1e-4)
    np.testing.assert_allclose(b['boxes'][0, -shared:], a['boxes'][0, -shared:], atol=1e-4)
