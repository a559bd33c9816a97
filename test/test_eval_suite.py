"""
hand-tracker-eval --suite on the real shared data with the shipped models/model.tflite.

By default the node's whole chain (SSD and palm proposals, landmark check) runs; --ssd-only
the SSD alone, at the threshold of its model_info.yaml.

Small subsets (``limit``) keep it quick; what is checked does not depend on the model's quality:
rows per set and pooled, JSON keys per set as for one set, the threshold in force and where it
comes from, a user's own COCO / YOLO set dropping into the suite file, the plots.
"""
from __future__ import annotations

import json
import shutil

from conftest import REPO
from hand_tracker_training.datasets import load_part, read_data_splits, write_coco
from hand_tracker_training.eval_cli import main
from hand_tracker_training.eval_suite import model_threshold, read_suite
import pytest
import yaml

MODEL = REPO / 'models' / 'model.tflite'
SET_KEYS = {'AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR100', 'images', 'hands',
            'latency_ms_median', 'latency_ms_p95', 'threshold', 'precision', 'recall', 'F1',
            'recall_by_height'}


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    """Copy the shipped model, with a model_info.yaml giving its threshold."""
    folder = tmp_path_factory.mktemp('model')
    shutil.copy(MODEL, folder / 'model.tflite')
    shutil.copy(REPO / 'models' / 'label_map.pbtxt', folder / 'label_map.pbtxt')
    (folder / 'model_info.yaml').write_text('score_threshold: 0.3\n')
    return folder


def test_shipped_suite_rows_json_and_plots(shared_data, model_dir, tmp_path, capsys):
    out = tmp_path / 'eval.json'
    assert main(['--model', str(model_dir / 'model.tflite'), '--ssd-only', '--suite',
                 str(REPO / 'config' / 'eval_suite.yaml'), '--limit', '6', '--data-root',
                 str(shared_data), '--json', str(out), '--plots', str(tmp_path / 'plots')]) == 0
    report = json.loads(out.read_text())
    names = [e['name'] for e in read_suite(REPO / 'config' / 'eval_suite.yaml')]
    assert list(report['sets']) == names
    assert report['threshold'] == 0.3 and report['threshold_from'].endswith('model_info.yaml')
    for name, row in report['sets'].items():
        assert set(row) == SET_KEYS, name
        assert row['images'] == 6 and row['threshold'] == 0.3
        found = row['recall'] * row['hands']
        assert found == pytest.approx(round(found)), name  # a count of matched hands
    pooled = report['pooled']
    assert pooled['images'] == 6 * len(names)
    assert pooled['hands'] == sum(r['hands'] for r in report['sets'].values())
    metrics_table, height_table = capsys.readouterr().out.split('by hand height')
    for table in (metrics_table, height_table):  # the metrics, then recall per hand height
        rows = [line for line in table.splitlines() if line.startswith('| ')][1:]
        assert [r.split('|')[1].strip() for r in rows] == names + ['**pooled**']
    assert (tmp_path / 'plots' / 'pr_curves.png').stat().st_size > 10_000
    assert list((tmp_path / 'plots').glob('failures_*.png'))


def test_default_is_the_nodes_chain_at_its_operating_threshold(shared_data, tmp_path):
    from hand_tracker_ros.chain import MergeParams
    out = tmp_path / 'eval.json'
    assert main(['--suite', str(REPO / 'config' / 'eval_suite.yaml'), '--limit', '3',
                 '--data-root', str(shared_data), '--json', str(out), '--plots',
                 str(tmp_path / 'plots')]) == 0
    report = json.loads(out.read_text())
    assert report['backend'] == 'tflite+landmarks'
    assert report['model'] == str(MODEL.resolve()) or report['model'].endswith('model.tflite')
    assert report['threshold'] == MergeParams().score_threshold
    assert report['threshold_from'] == 'merge.score_threshold'
    for name, row in report['sets'].items():
        assert row['images'] == 3 and 0.0 <= row['AP50'] <= 1.0, name
    assert (tmp_path / 'plots' / 'pr_curves.png').stat().st_size > 10_000


def test_a_users_coco_and_yolo_sets_drop_in(shared_data, model_dir, tmp_path):
    config = read_data_splits(root=shared_data)
    test_part = load_part('egohands', 'test', config)
    test_part = [test_part[i] for i in (0, 33, 66, 99)]  # what `limit: 4` keeps of 100
    coco = write_coco(test_part, tmp_path / 'mine.json', image_dir=shared_data)
    suite = tmp_path / 'suite.yaml'
    suite.write_text(yaml.safe_dump({'sets': [
        {'name': 'ego_part', 'part': 'test', 'source': 'egohands', 'limit': 4},
        {'name': 'my_coco', 'format': 'coco', 'path': str(coco), 'images': str(shared_data)},
        {'name': 'my_yolo', 'format': 'yolo', 'splits': ['test'], 'limit': 5,
         'path': str(shared_data / 'hand_gestures_roboflow')},
    ], 'data_splits': str(REPO / 'config' / 'data_splits.yaml')}))
    out = tmp_path / 'eval.json'
    assert main(['--model', str(model_dir / 'model.tflite'), '--suite', str(suite),
                 '--data-root', str(shared_data), '--threshold', '0.5',
                 '--json', str(out)]) == 0
    report = json.loads(out.read_text())
    assert report['threshold'] == 0.5 and report['threshold_from'] == '--threshold'
    sets = report['sets']
    assert [sets[n]['images'] for n in sets] == [4, 4, 5]
    # the same four frames read through the split file and through the user's COCO JSON
    for key in ('AP', 'AP50', 'AP75', 'precision', 'recall', 'hands'):
        assert sets['my_coco'][key] == sets['ego_part'][key], key


def test_threshold_falls_back_to_the_node_default(model_dir, tmp_path):
    info = model_dir / 'model_info.yaml'
    assert model_threshold(model_dir / 'model.tflite') == (0.3, str(info))
    bare = tmp_path / 'bare'
    bare.mkdir()
    shutil.copy(MODEL, bare / 'model.tflite')  # no model_info.yaml beside it
    assert model_threshold(bare / 'model.tflite') == (0.5, 'the node default')
    shipped = yaml.safe_load((MODEL.parent / 'model_info.yaml').read_text())['score_threshold']
    assert model_threshold(MODEL) == (shipped, str(MODEL.parent / 'model_info.yaml'))


def test_bad_suite_is_a_clear_error(model_dir, tmp_path, capsys):
    suite = tmp_path / 'bad.yaml'
    suite.write_text('sets:\n  - {name: x, path: nowhere}\n')
    assert main(['--model', str(model_dir / 'model.tflite'), '--suite', str(suite),
                 '--json', str(tmp_path / 'o.json')]) == 2
    assert 'format' in capsys.readouterr().err


def test_recall_by_hand_height_bins_at_the_threshold():
    from hand_tracker_ros.detections import Detections
    from hand_tracker_training.datasets import Sample
    from hand_tracker_training.eval_suite import operating_point
    # a 100-pixel-high image: a hand of height h is h % of it; bins are [low, high)
    heights = [5, 7.9, 8, 11, 12, 15, 16, 40]
    boxes = [[10 * i, 0, 10 * i + 8, h] for i, h in enumerate(heights)]
    sample = Sample('made_up.png', 200, 100, boxes)
    # found: 7.9 %, 8 %, 15 %, 40 %; the 11 % hand only below the threshold; one false box
    found = [1, 2, 5, 7]
    det = Detections(boxes=[boxes[i] for i in found] + [boxes[3], [150, 50, 190, 90]],
                     scores=[0.9] * len(found) + [0.2, 0.8], classes=[1] * (len(found) + 2))
    result = operating_point([sample], [det], threshold=0.5)
    assert result['recall_by_height'] == {
        '<8%': {'hands': 2, 'recall': 0.5}, '8-12%': {'hands': 2, 'recall': 0.5},
        '12-16%': {'hands': 2, 'recall': 0.5}, '>16%': {'hands': 2, 'recall': 0.5}}
    assert result['recall'] == 0.5 and result['precision'] == 0.8
    empty = operating_point([Sample('none.png', 640, 480, [])], [Detections()], 0.5)
    assert all(b == {'hands': 0, 'recall': None} for b in empty['recall_by_height'].values())
