"""
hand_tracker_training.evaluate on real EgoHands annotations with the real pycocotools.

Every expected metric is derived by hand in the comments from how COCO's AP works: detections of
all images sorted by score, precision made monotone (the best precision at any higher recall),
then read at the 101 recall thresholds 0, 0.01, ..., 1 (0 beyond the highest recall reached), and
averaged; AP (0.5:0.95) is the mean over the IoU thresholds 0.50, 0.55, ..., 0.95. COCO computes
precision as tp / (tp + fp + eps), eps = 2.2e-16, so a perfect score may read 1 - 2e-16: compare
with ONE, not == 1.0.
"""
from __future__ import annotations

import json
import re

import cv2
from fixture_models import bright_cell_frame, expected_boxes
from hand_tracker_ros.detections import Detections
from hand_tracker_ros.geometry import pairwise_iou
from hand_tracker_training.datasets import load_egohands, Sample, write_coco
from hand_tracker_training.eval_cli import main
from hand_tracker_training.evaluate import (coco_metrics, format_table, handedness_report,
                                            match_detections, MISSED_COLOUR, plot_pr_curve,
                                            TP_COLOUR, write_failure_cases)
import numpy as np
import pytest


VIDEO = 'CARDS_OFFICE_S_B'
ONE = pytest.approx(1.0, abs=1e-9)


def iou(a, b) -> float:
    """Return the IoU of two [x0, y0, x1, y1] boxes, written independently of the code tested."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def dets(boxes, scores) -> Detections:
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    return Detections(boxes, np.broadcast_to(np.asarray(scores, np.float32), len(boxes)),
                      np.ones(len(boxes), np.int32))


@pytest.fixture(scope='module')
def samples(egohands_dir):
    """Return the 100 labelled frames of one real EgoHands video."""
    s = load_egohands(egohands_dir, videos=[VIDEO])
    assert len(s) == 100
    assert sum(len(x.boxes) for x in s) > 100
    return s


@pytest.fixture(scope='module')
def n_hands(samples) -> int:
    return sum(len(x.boxes) for x in samples)


def test_predictions_equal_to_ground_truth_score_perfectly(samples, n_hands):
    m = coco_metrics(samples, [dets(s.boxes, 1.0) for s in samples])
    # every detection is its own GT box (IoU 1 at every threshold) and there is no false
    # positive: precision 1 at every recall up to 1
    for key in ('AP', 'AP50', 'AP75', 'AR10', 'AR100', 'APl'):
        assert m[key] == ONE, key   # (APl: 1280x720 egocentric frames have hands > 96x96 px)
    for key in ('APs', 'APm'):      # 1, or -1 if no hand of that size in the video
        assert m[key] == ONE or m[key] == -1.0, key
    # one detection per image finds one of its hands: AR1 = images with a hand / all hands
    assert m['AR1'] == pytest.approx(sum(len(s.boxes) > 0 for s in samples) / n_hands, abs=1e-9)
    assert m['precision'].shape == (10, 101, 1, 4, 3)


def test_boxes_shifted_to_iou_0625_match_at_050_not_at_075(samples):
    # Moving a w x h box right by dx = f*w keeps its height: intersection (w - dx) h, union
    # (w + dx) h, IoU = (1 - f) / (1 + f). f = 3/13 gives IoU = (10/13) / (16/13) = 0.625.
    shifted = []
    for s in samples:
        b = s.boxes.astype(np.float64).copy()
        dx = (b[:, 2] - b[:, 0]) * 3.0 / 13.0
        b[:, 0] += dx
        b[:, 2] += dx
        shifted.append(dets(b, 1.0))
        for i, (moved, gt) in enumerate(zip(shifted[-1].boxes, s.boxes)):
            assert 0.62 < iou(moved, gt) < 0.63
            # and it overlaps no other hand of the image enough to be matched to it instead
            assert all(iou(moved, other) < 0.5 for j, other in enumerate(s.boxes) if j != i)
    m = coco_metrics(samples, shifted)
    assert m['AP50'] == ONE   # every detection matches its hand at IoU >= 0.5
    assert m['AP75'] == 0.0   # and none at 0.75: all are false positives, precision 0
    # thresholds 0.50, 0.55, 0.60 <= 0.625 give AP 1, the seven above give 0: 3/10
    assert m['AP'] == pytest.approx(0.3, abs=1e-9)


def test_half_of_the_hands_missing(samples, n_hands):
    # Keep every other ground-truth box (counted over the whole video): the kept ones are exact
    # detections, the rest are missed.
    preds, k = [], 0
    for s in samples:
        keep = [(k + i) % 2 == 0 for i in range(len(s.boxes))]
        k += len(s.boxes)
        preds.append(dets(s.boxes[keep], 1.0))
    kept = (n_hands + 1) // 2
    recall = kept / n_hands
    m = coco_metrics(samples, preds)
    # recall = kept / all at every IoU threshold, so AR100 is exactly that (~0.5)
    assert m['AR100'] == pytest.approx(recall, abs=1e-9)
    assert m['AR100'] == pytest.approx(0.5, abs=0.01)
    # precision is 1 up to recall kept/all and 0 beyond: AP50 = share of the 101 recall
    # thresholds r = i/100 with r <= kept/all, i.e. (floor(100 * kept/all) + 1) / 101
    assert m['AP50'] == pytest.approx((np.floor(100 * recall + 1e-9) + 1) / 101, abs=1e-9)
    assert m['AP50'] < 1.0


def _far_box(s) -> list[float]:
    """Return a 60x60 box not touching any hand of sample `s` (searched over a grid)."""
    for y in range(0, s.height - 60, 30):
        for x in range(0, s.width - 60, 30):
            box = [x, y, x + 60, y + 60]
            if all(iou(box, g) == 0.0 for g in s.boxes):
                return box
    raise AssertionError('no free place for a false positive')


def test_false_positive_above_all_true_positives(samples):
    two = [s for s in samples if len(s.boxes)][:2]
    n = sum(len(s.boxes) for s in two)
    fp = _far_box(two[0])
    assert all(iou(fp, g) == 0.0 for g in two[0].boxes)
    # n exact detections with score 0.9, plus one false positive scoring 0.95 in image 1.
    # Ranked by score: FP first (precision 0/1 at recall 0), then the k-th TP gives precision
    # k/(k+1) at recall k/n. The monotone envelope at any recall r is the best precision at
    # recall >= r, which is n/(n+1) (the last TP) for every r, 0 included: AP50 = n/(n+1).
    preds = [dets(np.vstack([two[0].boxes, [fp]]), [0.9] * len(two[0].boxes) + [0.95]),
             dets(two[1].boxes, 0.9)]
    m = coco_metrics(two, preds)
    assert m['AP50'] == pytest.approx(n / (n + 1), abs=1e-6)
    assert m['AP'] == pytest.approx(n / (n + 1), abs=1e-6)   # same at every IoU (exact boxes)
    # The same false positive scoring below every TP comes after recall 1 is reached: it never
    # lowers the precision at any recall threshold, AP50 = 1.
    preds[0] = dets(np.vstack([two[0].boxes, [fp]]), [0.9] * len(two[0].boxes) + [0.5])
    assert coco_metrics(two, preds)['AP50'] == ONE


def test_empty_predictions_score_zero(samples):
    m = coco_metrics(samples, [Detections() for _ in samples])
    assert m['AP'] == m['AP50'] == m['AP75'] == m['AR100'] == 0.0


def test_mismatched_lengths_are_rejected(samples):
    with pytest.raises(ValueError, match='samples'):
        coco_metrics(samples, [Detections()])


def test_pycocotools_is_silent_unless_verbose(samples, capsys):
    preds = [dets(s.boxes, 1.0) for s in samples[:3]]
    coco_metrics(samples[:3], preds)
    assert capsys.readouterr().out == ''
    coco_metrics(samples[:3], preds, verbose=True)
    assert 'Average Precision' in capsys.readouterr().out


def test_pairwise_iou_and_greedy_matching():
    # [0,0,10,10] vs [5,0,15,10]: intersection 5x10 = 50, union 100 + 100 - 50 = 150 -> 1/3
    assert pairwise_iou([[0, 0, 10, 10]], [[5, 0, 15, 10]])[0, 0] == pytest.approx(1 / 3)
    gt = np.array([[0, 0, 10, 10], [100, 100, 120, 120]], np.float32)
    # the 0.9 box overlaps GT 0 with IoU 1/3 (< 0.5): FP; the 0.8 box equals GT 0: TP;
    # the 0.7 box duplicates GT 0, already taken: FP; GT 1 is missed
    d = dets([[5, 0, 15, 10], [0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.8, 0.7])
    det_tp, gt_found = match_detections(gt, d, 0.5)
    assert det_tp.tolist() == [False, True, False]
    assert gt_found.tolist() == [True, False]


def test_pr_curve_png(samples, tmp_path):
    m = coco_metrics(samples, [dets(s.boxes, 1.0) for s in samples])
    png = plot_pr_curve(m, tmp_path / 'plots' / 'pr.png')
    img = cv2.imread(str(png))
    assert img is not None and img.shape == (450, 600, 3)
    assert img.std() > 10   # axes, curves and legend drawn, not a blank canvas


def test_failure_cases_rank_the_worst_images(samples, tmp_path):
    # Drop the last box of every image with more than two hands and of every third image
    # (missed hands), and add a false positive to image 0.
    preds, errors = [], []
    for i, s in enumerate(samples):
        keep = len(s.boxes) - (1 if (len(s.boxes) > 2 or i % 3 == 0) and len(s.boxes) else 0)
        boxes = s.boxes[:keep]
        fp = [] if i else [_far_box(s)]
        preds.append(dets(np.vstack([boxes.reshape(-1, 4), np.reshape(fp, (-1, 4))]), 0.9))
        errors.append(len(s.boxes) - keep + len(fp))
    paths = write_failure_cases(samples, preds, tmp_path / 'fail', n=4)
    assert len(paths) == min(4, sum(e > 0 for e in errors))
    written = [int(re.match(r'\d\d_(\d+)err_', p.name).group(1)) for p in paths]
    assert written == sorted(errors, reverse=True)[:len(paths)]
    img = cv2.cvtColor(cv2.imread(str(paths[0])), cv2.COLOR_BGR2RGB)
    assert img.shape[:2] == (samples[0].height, samples[0].width)
    # the worst image has missed hands and found ones: both colours are drawn
    assert np.all(img == MISSED_COLOUR, axis=-1).sum() > 100
    assert np.all(img == TP_COLOUR, axis=-1).sum() > 100
    # exact predictions: no error, nothing written
    assert write_failure_cases(samples, [dets(s.boxes, 1.0) for s in samples],
                               tmp_path / 'none') == []


def test_format_table_holds_the_numbers(samples):
    b = []
    for s in samples:
        x = s.boxes.astype(np.float64).copy()
        x[:, [0, 2]] += ((x[:, 2] - x[:, 0]) * 3.0 / 13.0)[:, None]
        b.append(dets(x, 1.0))
    table = format_table(coco_metrics(samples, b))   # AP 0.3, AP50 1, AP75 0 (see above)
    rows = {line.split('|')[1].strip(): [c.strip() for c in line.split('|')[2:4]]
            for line in table.splitlines() if line.startswith('| ') and 'metric' not in line}
    assert list(rows) == ['AP', 'AP@0.5', 'AP@0.75', 'AP small', 'AP medium', 'AP large',
                          'AR@100']
    assert rows['AP'] == ['0.3000', '0.6022']
    assert rows['AP@0.5'] == ['1.0000', '0.9426']
    assert rows['AP@0.75'] == ['0.0000', '0.7235']
    assert rows['AR@100'] == ['0.3000', '-']   # recall 1 at 3 of the 10 IoU thresholds
    assert 'not comparable' in table


JSON_KEYS = {'AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR100', 'model', 'backend', 'images',
             'hands', 'latency_ms_median', 'latency_ms_p95', 'threshold', 'threshold_from',
             'precision', 'recall', 'F1', 'recall_by_height'}


def test_cli_evaluates_a_frozen_graph_end_to_end(fixture_models, egohands_dir, n_hands, tmp_path,
                                                 capsys):
    # The bright-cell fixture detector (test/fixture_models.py) through the real frozen-graph
    # backend on the 100 real frames of one video: not a hand detector, so only the plumbing and
    # the value ranges are known, not the scores.
    out = tmp_path / 'out' / 'eval.json'
    rc = main(['--model', str(fixture_models['frozen_graph']), '--ssd-only', '--egohands',
               str(egohands_dir), '--videos', VIDEO, '--threads', '2', '--json', str(out),
               '--plots', str(tmp_path / 'plots')])
    assert rc == 0
    report = json.loads(out.read_text())
    assert set(report) == JSON_KEYS
    assert report['backend'] == 'frozen_graph'
    assert report['model'] == str(fixture_models['frozen_graph'])
    assert report['images'] == 100 and report['hands'] == n_hands
    for key in ('AP', 'AP50', 'AP75', 'AR100'):
        assert 0.0 <= report[key] <= 1.0, key
    for key in ('APs', 'APm', 'APl'):
        assert report[key] == -1.0 or 0.0 <= report[key] <= 1.0, key
    assert report['AP75'] <= report['AP50']   # a stricter IoU can only lose matches
    assert 0.0 < report['latency_ms_median'] <= report['latency_ms_p95'] < 10_000
    stdout = capsys.readouterr().out
    assert f"| AP@0.5    | {report['AP50']:>10.4f} |" in stdout
    assert (tmp_path / 'plots' / 'pr_curve.png').stat().st_size > 10_000
    failures = sorted((tmp_path / 'plots' / 'failures').glob('*.png'))
    # ten grid cells at most per frame can never match all 262 hands: there are failures
    assert 1 <= len(failures) <= 8 and all(f.stat().st_size > 0 for f in failures)


@pytest.mark.parametrize('kind', ['frozen_graph', 'tflite'])
def test_cli_scores_known_detections_exactly(fixture_models, kind, tmp_path):
    # Two 1280x720 frames the bright-cell detector reads exactly (test/fixture_models.py): each
    # painted grid cell with grey level v is detected with score v/255 and the cell as its box.
    # Frame a: cells (0,0) and (5,5) at 200, both labelled hands. Frame b: cell (2,3) at 200,
    # a labelled hand, and cell (7,7) at 255, unlabelled. So 3 true positives scoring 0.78 with
    # boxes equal to their hands (IoU 1 at every threshold) and 1 false positive scoring 1.0,
    # ranked first: as in test_false_positive_above_all_true_positives, AP50 = AP = n/(n+1) =
    # 3/4, and every hand is found: AR100 = 1.
    frames = {'a.png': ([(0, 0), (5, 5)], [200, 200], 2),
              'b.png': ([(2, 3), (7, 7)], [200, 255], 1)}
    samples = []
    for name, (cells, values, n_labelled) in frames.items():
        assert cv2.imwrite(str(tmp_path / name), bright_cell_frame(1280, 720, cells, values))
        samples.append(Sample(tmp_path / name, 1280, 720,
                              expected_boxes(1280, 720, cells[:n_labelled])))
    coco_json = write_coco(samples, tmp_path / 'cells.json', image_dir=tmp_path)
    out = tmp_path / 'eval.json'
    assert main(['--model', str(fixture_models[kind]), '--ssd-only', '--coco', str(coco_json),
                 '--json', str(out)]) == 0
    report = json.loads(out.read_text())
    assert report['backend'] == kind and report['images'] == 2 and report['hands'] == 3
    assert report['AP50'] == pytest.approx(0.75, abs=1e-6)
    assert report['AP'] == pytest.approx(0.75, abs=1e-6)
    assert report['AR100'] == ONE


def test_cli_reports_a_missing_model_without_traceback(egohands_dir, tmp_path, capsys):
    out = tmp_path / 'eval.json'
    rc = main(['--model', str(tmp_path / 'no_such_model.pb'), '--egohands', str(egohands_dir),
               '--videos', VIDEO, '--json', str(out)])
    err = capsys.readouterr().err
    assert rc != 0
    assert 'no_such_model.pb' in err and 'Traceback' not in err
    assert not out.exists()


def test_cli_needs_a_data_set(tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(['--model', 'm.pb', '--json', str(tmp_path / 'x.json')])
    assert exc.value.code == 2


def test_handedness_report_counts_sided_hands_per_side_and_owner():
    # one frame, four labelled hands; the detections' sides: right, left, unsure, right
    sample = Sample('f.jpg', 640, 480, [[0, 0, 50, 50], [100, 0, 150, 50], [200, 0, 250, 50],
                                        [300, 0, 350, 50]],
                    sides=['own_right', 'own_left', 'other_left', 'other_left'])
    det = Detections(sample.boxes + 1, [0.9, 0.8, 0.7, 0.6], [1, 1, 1, 1],
                     right=[0.95, 0.1, 0.55, 0.9])
    report = handedness_report([sample], [det], min_score=0.5, min_confidence=0.8)
    assert report['all'] == {'sided': 3, 'correct': 2, 'accuracy': 2 / 3, 'unknown': 1}
    assert report['own']['correct'] == 2 and report['own']['sided'] == 2
    assert report['other'] == {'sided': 1, 'correct': 0, 'accuracy': 0.0, 'unknown': 1}
    assert report['other_right']['accuracy'] is None
    # below the score threshold nothing is matched; without handedness nothing is counted
    assert handedness_report([sample], [det], 0.95, 0.8)['all']['sided'] == 0
    plain = Detections(det.boxes, det.scores, det.classes)
    assert handedness_report([sample], [plain], 0.5, 0.8)['all']['sided'] == 0
