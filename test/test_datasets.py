"""
hand_tracker_training.datasets on the real EgoHands and Roboflow data of ../shared/data.

Facts of the data used here (data README and task): the three EgoHands videos hold 100 labelled
1280x720 frames each, 913 hands in all (CARDS_LIVINGROOM_B_T 297, CARDS_OFFICE_S_B 262,
PUZZLE_LIVINGROOM_T_B 354); the Roboflow set has 587 train / 167 valid / 85 test images of
224x224. Everything else is recomputed here from the files, independently of the module.
"""
from __future__ import annotations

from collections import Counter
import hashlib
import json
import math
from pathlib import Path
import subprocess
import sys
import warnings
import zipfile

import cv2
from hand_tracker_ros.label_map import read_label_map
from hand_tracker_training.datasets import (dataset_stats, DatasetWarning, DEFAULT_SPLIT,
                                            download_egohands, DownloadError, EGOHANDS_ACTIVITIES,
                                            EGOHANDS_LOCATIONS, EGOHANDS_VIDEOS, load_coco,
                                            load_egohands, load_yolo, partner_video,
                                            plot_stats, Sample, SHIPPED_SPLIT, SIDE_COLOURS, SIDES,
                                            split_by_videos, write_coco, write_previews)
from hand_tracker_training.datasets.cli import main
from hand_tracker_training.tfrecord import read_tfrecord
import numpy as np
import pytest
import scipy.io


HANDS_PER_VIDEO = {'CARDS_LIVINGROOM_B_T': 297, 'CARDS_OFFICE_S_B': 262,
                   'PUZZLE_LIVINGROOM_T_B': 354}
YOLO_IMAGES = {'train': 587, 'valid': 167, 'test': 85}
FIELDS = ('myleft', 'myright', 'yourleft', 'yourright')
UNREACHABLE = 'http://127.0.0.1:9/egohands_data.zip'  # the discard port: connection refused


@pytest.fixture(scope='module')
def ego(egohands_dir) -> list[Sample]:
    with warnings.catch_warnings():
        warnings.simplefilter('error', DatasetWarning)  # the real polygons are all usable
        return load_egohands(egohands_dir, progress=False)


def frames_of(egohands_dir: Path, video: str) -> list[Path]:
    return sorted((egohands_dir / '_LABELLED_SAMPLES' / video).glob('frame_*.jpg'))


def real_polygons(egohands_dir: Path, video: str):
    return scipy.io.loadmat(egohands_dir / '_LABELLED_SAMPLES' / video / 'polygons.mat')[
        'polygons'][0]


def make_video(root: Path, name: str, frames: list[Path], entries: list[dict]) -> Path:
    """
    Return an EgoHands layout under `root`: real frames + a polygons.mat of `entries`.

    The frames are symlinks; `entries` are {field: N x 2 array}, missing fields are hands not in
    view.
    """
    folder = root / '_LABELLED_SAMPLES' / name
    folder.mkdir(parents=True)
    for frame in frames:
        (folder / frame.name).symlink_to(frame)
    polygons = np.empty((1, len(entries)), dtype=[(f, 'O') for f in FIELDS])
    for i, entry in enumerate(entries):
        for f in FIELDS:
            polygons[0, i][f] = np.asarray(entry.get(f, np.zeros((0, 0))), np.float64)
    scipy.io.savemat(folder / 'polygons.mat', {'polygons': polygons})
    return folder


# ----------------------------------------------------------------------------- EgoHands
def test_egohands_finds_every_hand_of_the_three_videos(ego):
    assert len(ego) == 300
    assert sum(len(s.boxes) for s in ego) == 913
    assert Counter(s.source for s in ego for _ in s.boxes) == HANDS_PER_VIDEO
    assert Counter(s.source for s in ego) == {v: 100 for v in HANDS_PER_VIDEO}
    for s in ego:
        assert (s.width, s.height) == (1280, 720)
        assert s.boxes.dtype == np.float32 and s.boxes.shape == (len(s.sides), 4)
        assert set(s.sides) <= set(SIDES)
        assert Path(s.image_path).parent.name == s.source


def test_egohands_boxes_are_the_polygon_extents_in_frame_order(egohands_dir, ego):
    for video in HANDS_PER_VIDEO:
        samples = [s for s in ego if s.source == video]
        assert [Path(s.image_path) for s in samples] == frames_of(egohands_dir, video)
        for sample, entry in zip(samples, real_polygons(egohands_dir, video)):
            expected, sides = [], []
            for field, side in zip(FIELDS, ('own_left', 'own_right', 'other_left',
                                            'other_right')):
                if entry[field].size:
                    p = entry[field]
                    expected.append([max(p[:, 0].min(), 0), max(p[:, 1].min(), 0),
                                     min(p[:, 0].max(), 1280), min(p[:, 1].max(), 720)])
                    sides.append(side)
            np.testing.assert_array_equal(sample.boxes,
                                          np.asarray(expected, np.float32).reshape(-1, 4))
            assert sample.sides == sides


def test_egohands_boxes_inside_image_and_border_hands_kept(ego):
    border = Counter()
    for s in ego:
        b = s.boxes
        assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all()
        assert (b[:, 2] <= s.width).all() and (b[:, 3] <= s.height).all()
        assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
        touching = ((b[:, 0] <= 2) | (b[:, 1] <= 2) | (b[:, 2] >= s.width - 2)
                    | (b[:, 3] >= s.height - 2))
        border[s.source] += int(touching.sum())
    # hands entering the view touch the border in every video, and they are all there (913)
    assert set(border) == set(HANDS_PER_VIDEO) and min(border.values()) > 0
    assert sum(len(s.boxes) for s in ego) == 913


def test_frame_without_hands_clipping_and_degenerate_polygons(egohands_dir, tmp_path):
    video = 'CARDS_OFFICE_S_B'
    real = real_polygons(egohands_dir, video)[0]['yourleft']
    outside_right = np.array([[1200, 600], [1400, 650], [1300, 800]], np.float64)
    frames = frames_of(egohands_dir, video)[:3]
    make_video(tmp_path, video, frames, [
        {},  # no hand in view
        {'myleft': real, 'yourright': outside_right},
        {'myleft': [[10, 10], [50, 60]],  # two points
         'myright': [[1300, 10], [1400, 10], [1350, 50]],  # entirely right of the image
         'yourleft': [[10, 10], [np.nan, 20], [30, 70]]},  # two finite points
    ])
    with pytest.warns(DatasetWarning, match='dropped 3 ') as record:
        samples = load_egohands(tmp_path, progress=False)
    for side in ('own_left', 'own_right', 'other_left'):
        assert f'{video}/{frames[2].name}:{side}' in str(record[0].message)
    assert len(samples) == 3
    assert samples[0].boxes.shape == (0, 4) and samples[0].sides == []
    np.testing.assert_array_equal(samples[1].boxes, np.float32(
        [[real[:, 0].min(), real[:, 1].min(), real[:, 0].max(), real[:, 1].max()],
         [1200, 600, 1280, 720]]))  # the hand leaving the image is clipped, not dropped
    assert samples[1].sides == ['own_left', 'other_right']
    assert samples[2].boxes.shape == (0, 4)
    assert dataset_stats(samples)['images_without_boxes'] == 2


def test_egohands_bad_input(egohands_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match='CARDS_OFFICE_S_B'):  # names what is there
        load_egohands(egohands_dir, videos=['CHESS_OFFICE_B_S'])
    with pytest.raises(FileNotFoundError, match='_LABELLED_SAMPLES'):
        load_egohands(tmp_path)
    make_video(tmp_path, 'CARDS_OFFICE_S_B', frames_of(egohands_dir, 'CARDS_OFFICE_S_B')[:3],
               [{}, {}])
    with pytest.raises(ValueError, match='2 polygon entries but 3 frames'):
        load_egohands(tmp_path)
    (tmp_path / '_LABELLED_SAMPLES' / 'CARDS_OFFICE_S_B' / 'polygons.mat').write_bytes(b'x' * 64)
    with pytest.raises(ValueError, match='not an EgoHands polygons.mat'):
        load_egohands(tmp_path)


# ----------------------------------------------------------------------------- splits
def test_video_names_and_default_split():
    assert len(set(EGOHANDS_VIDEOS)) == 48
    for video in EGOHANDS_VIDEOS:
        activity, location, viewer, partner = video.split('_')
        assert activity in EGOHANDS_ACTIVITIES and location in EGOHANDS_LOCATIONS
        assert {viewer, partner} <= set('BHST') and viewer != partner
        assert partner_video(video) in EGOHANDS_VIDEOS
    per_scene = Counter(tuple(v.split('_')[:2]) for v in EGOHANDS_VIDEOS)
    assert set(per_scene.values()) == {4} and len(per_scene) == 12
    assert set(HANDS_PER_VIDEO) <= set(EGOHANDS_VIDEOS)

    sets = DEFAULT_SPLIT.as_dict()
    assert {k: len(v) for k, v in sets.items()} == {'train': 36, 'val': 4, 'test': 8}
    assert sorted(DEFAULT_SPLIT.videos()) == sorted(EGOHANDS_VIDEOS)  # a partition
    for name, videos in sets.items():
        assert {partner_video(v) for v in videos} == set(videos), name  # interactions whole
    for part in ('train', 'test'):
        assert {v.split('_')[0] for v in sets[part]} == set(EGOHANDS_ACTIVITIES)
        assert {v.split('_')[1] for v in sets[part]} == set(EGOHANDS_LOCATIONS)
    assert set(Counter(v.split('_')[1] for v in sets['train']).values()) == {12}
    # a model of the shipped split can be tested on the default test set
    assert set(SHIPPED_SPLIT.train) <= set(sets['train'])
    assert set(SHIPPED_SPLIT.test) <= set(sets['test'])


def test_split_by_videos(ego):
    parts = split_by_videos(ego, **SHIPPED_SPLIT.as_dict())
    assert {k: len(v) for k, v in parts.items()} == {'train': 200, 'val': 100, 'test': 100}
    assert sum(len(s.boxes) for s in parts['train']) == 297 + 354
    assert {s.source for s in parts['train']} == set(SHIPPED_SPLIT.train)
    assert {s.source for s in parts['test']} == {'CARDS_OFFICE_S_B'}
    assert not {s.image_path for s in parts['train']} & {s.image_path for s in parts['test']}

    parts = split_by_videos(ego, train=['PUZZLE_LIVINGROOM_T_B'], test=['CARDS_OFFICE_S_B'])
    assert (len(parts['train']), len(parts['val']), len(parts['test'])) == (100, 0, 100)
    with pytest.raises(ValueError, match='both in train and in val/test'):
        split_by_videos(ego, train=['CARDS_OFFICE_S_B'], val=['CARDS_OFFICE_S_B'])
    with pytest.raises(ValueError, match='CHESS_OFFICE_B_S'):
        split_by_videos(ego, train=['CARDS_OFFICE_S_B'], test=['CHESS_OFFICE_B_S'])


def test_split_warns_about_partner_videos(egohands_dir, tmp_path):
    frames = frames_of(egohands_dir, 'CARDS_OFFICE_S_B')[:2]
    for name in ('CARDS_OFFICE_S_B', 'CARDS_OFFICE_B_S'):  # real frames under both names
        make_video(tmp_path, name, frames, [{}, {}])
    samples = load_egohands(tmp_path, progress=False)
    with pytest.warns(DatasetWarning, match='CARDS_OFFICE_B_S'):
        parts = split_by_videos(samples, train=['CARDS_OFFICE_B_S'], test=['CARDS_OFFICE_S_B'])
    assert len(parts['train']) == len(parts['test']) == 2


# ----------------------------------------------------------------------------- YOLO
def test_yolo_counts_and_box_conversion(roboflow_dir):
    samples = load_yolo(roboflow_dir, splits=None, progress=False)
    assert Counter(s.source.split('/')[1] for s in samples) == YOLO_IMAGES
    for split, n_images in YOLO_IMAGES.items():
        part = [s for s in samples if s.source == f'hand_gestures_roboflow/{split}']
        lines = [line for f in (roboflow_dir / split / 'labels').glob('*.txt')
                 for line in f.read_text().splitlines() if line.strip()]
        assert len(part) == n_images
        assert sum(len(s.boxes) for s in part) == len(lines)
    assert all((s.width, s.height) == (224, 224) and set(s.sides) <= {''} for s in samples)
    assert len(load_yolo(roboflow_dir, splits=['val'], progress=False)) == 167

    # one label line, by hand: x = (cx -+ w/2) * 224, y = (cy -+ h/2) * 224
    stem = 'IMG-20230312-WA0065_jpg.rf.465771d5e2525d1245add62b20dac28e'
    line = (roboflow_dir / 'train' / 'labels' / f'{stem}.txt').read_text().strip()
    assert line == '1 0.47544642857142855 0.5691964285714286 0.6941964285714286 0.6607142857142857'
    # cx - w/2 = 0.128348..., cy - h/2 = 0.238839..., cx + w/2 = 0.822544...,
    # cy + h/2 = 0.899553...
    sample = next(s for s in samples if Path(s.image_path).stem == stem)
    np.testing.assert_allclose(sample.boxes, [[28.75, 53.5, 184.25, 201.5]], atol=1e-4)


def test_yolo_bad_and_unusual_labels(roboflow_dir, tmp_path):
    image = next((roboflow_dir / 'train' / 'images').glob('*.jpg'))
    root = tmp_path / 'yolo'
    (root / 'train' / 'images').mkdir(parents=True)
    (root / 'train' / 'labels').mkdir()
    (root / 'data.yaml').write_text("nc: 2\nnames: ['five', 'four']\n")
    for name in ('a', 'b', 'c'):
        (root / 'train' / 'images' / f'{name}.jpg').symlink_to(image)
    labels = root / 'train' / 'labels'
    (labels / 'a.txt').write_text('0 0.25 0.25 0.1 0.1 0.5 0.5\n')  # a polygon: its extent
    (labels / 'b.txt').write_text('1 0.5 0.5 0.5 0.5\n0 1.5 1.5 0.2 0.2\n')  # 2nd: outside
    # c.jpg has no label file: an image without hands
    with pytest.warns(DatasetWarning, match='dropped 1 .*b.txt:2'):
        samples = load_yolo(root, progress=False)
    np.testing.assert_allclose(samples[0].boxes, [[0.1 * 224, 0.1 * 224, 0.5 * 224, 0.5 * 224]],
                               rtol=1e-6)
    np.testing.assert_allclose(samples[1].boxes, [[56, 56, 168, 168]])
    assert samples[2].boxes.shape == (0, 4)

    (labels / 'a.txt').write_text('0 0.5 0.5\n')
    with pytest.raises(ValueError, match=r'a\.txt:1'):
        load_yolo(root, progress=False)
    (labels / 'a.txt').write_text('2 0.5 0.5 0.1 0.1\n')
    with pytest.raises(ValueError, match='class 2 not in data.yaml'):
        load_yolo(root, progress=False)
    with pytest.raises(FileNotFoundError, match="'test'"):
        load_yolo(root, splits=['test'], progress=False)


# ----------------------------------------------------------------------------- COCO
def test_coco_round_trip(egohands_dir, ego, tmp_path):
    path = write_coco(ego, tmp_path / 'egohands.json', image_dir=egohands_dir)
    data = json.loads(path.read_text())
    first = ego[0]
    assert data['images'][0]['file_name'] == str(Path(first.image_path).relative_to(egohands_dir))
    x0, y0, x1, y1 = first.boxes[0].tolist()
    assert data['annotations'][0]['bbox'] == [x0, y0, x1 - x0, y1 - y0]
    assert len(data['annotations']) == 913

    back = load_coco(path, image_dir=egohands_dir)
    assert len(back) == len(ego)
    for a, b in zip(ego, back):
        assert Path(a.image_path) == Path(b.image_path)
        assert (a.width, a.height) == (b.width, b.height)
        np.testing.assert_array_equal(a.boxes, b.boxes)
        assert a.sides == b.sides
    assert {s.source for s in back} == {'egohands'}


def test_coco_categories_crowd_and_sizes_from_images(egohands_dir, tmp_path):
    frame = frames_of(egohands_dir, 'CARDS_OFFICE_S_B')[0]
    (tmp_path / frame.name).symlink_to(frame)
    data = {'images': [{'id': 7, 'file_name': frame.name}],  # no size: read from the JPEG
            'categories': [{'id': 1, 'name': 'hand'}, {'id': 2, 'name': 'face'}],
            'annotations': [
                {'id': 1, 'image_id': 7, 'category_id': 1, 'bbox': [10, 20, 30, 40]},
                {'id': 2, 'image_id': 7, 'category_id': 2, 'bbox': [100, 100, 50, 50]},
                {'id': 3, 'image_id': 7, 'category_id': 1, 'bbox': [0, 0, 99, 99],
                 'iscrowd': 1},
                {'id': 4, 'image_id': 7, 'category_id': 1, 'bbox': [1250, 700, 60, 60]}]}
    path = tmp_path / 'x.json'
    path.write_text(json.dumps(data))
    (sample,) = load_coco(path, category_names=['hand'])
    assert (sample.width, sample.height) == (1280, 720)
    np.testing.assert_array_equal(sample.boxes, [[10, 20, 40, 60], [1250, 700, 1280, 720]])
    assert sample.sides == ['', '']
    assert len(load_coco(path)[0].boxes) == 3
    with pytest.raises(ValueError, match='no category paw'):
        load_coco(path, category_names=['paw'])
    path.write_text('{"annotations": []}')
    with pytest.raises(ValueError, match='not a COCO'):
        load_coco(path)


# ----------------------------------------------------------------------------- stats, previews
def test_stats_consistent_with_samples(ego):
    stats = dataset_stats(ego)
    boxes = np.concatenate([s.boxes for s in ego]).astype(np.float64)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    assert stats['images'] == 300 and stats['boxes'] == 913
    per_image = Counter(len(s.boxes) for s in ego)
    assert stats['boxes_per_image'] == [per_image[n] for n in range(max(per_image) + 1)]
    assert stats['images_without_boxes'] == per_image[0]
    edges = [b['from'] for b in stats['box_size']] + [math.inf]
    assert [b['count'] for b in stats['box_size']] == \
        np.histogram(np.sqrt(areas), bins=edges)[0].tolist()
    assert stats['coco_sizes'] == {'small': int((areas < 32 ** 2).sum()),
                                   'medium': int(((areas >= 32 ** 2) & (areas < 96 ** 2)).sum()),
                                   'large': int((areas >= 96 ** 2).sum())}
    assert sum(stats['coco_sizes'].values()) == 913
    assert stats['sides'] == Counter(side for s in ego for side in s.sides)
    assert stats['sources'] == {v: 100 for v in HANDS_PER_VIDEO}
    assert stats['image_sizes'] == {'1280x720': 300}
    assert dataset_stats([])['images'] == 0


def test_plot_and_previews(ego, tmp_path):
    png = plot_stats(ego, tmp_path / 'stats.png', title='EgoHands')
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert cv2.imread(str(png)).shape == (360, 1200, 3)

    paths = write_previews(ego, tmp_path / 'previews', n=4)
    assert len(paths) == 4 and all(p.suffix == '.png' for p in paths)
    assert paths[0].name.startswith('preview_00_CARDS_LIVINGROOM_B_T_frame_')
    sample = ego[-1]  # the last of the evenly spread picks
    image = cv2.imread(str(paths[-1]))
    assert image.shape == (540, 960, 3)  # 1280x720 at 0.75
    x0, y0, _, y1 = sample.boxes[-1] * 0.75  # the last box is drawn on top of the others
    colour = SIDE_COLOURS[sample.sides[-1]][::-1]
    assert tuple(image[int(round((y0 + y1) / 2)), int(round(x0))]) == colour


def test_sample_validates_its_fields():
    with pytest.raises(ValueError, match='2 boxes but 1 sides'):
        Sample('x.jpg', 10, 10, np.zeros((2, 4)), ['own_left'])
    assert Sample('x.jpg', 10, 10, [[1, 2, 3, 4]]).sides == ['']


# ----------------------------------------------------------------------------- command line
def test_convert_shipped_split_with_roboflow(egohands_dir, roboflow_dir, tmp_path):
    out = tmp_path / 'records'
    assert main(['convert', '--egohands', str(egohands_dir), '--split', 'shipped',
                 '--yolo', str(roboflow_dir), '--splits', 'train,valid', '--out', str(out),
                 '--previews', '2']) == 0
    stats = json.loads((out / 'stats.json').read_text())
    assert {k: (v['images'], v['boxes']) for k, v in stats.items()} == {
        'train': (200 + 587, 297 + 354 + 587), 'val': (100 + 167, 262 + 167),
        'test': (100, 262)}
    assert read_label_map(out / 'label_map.pbtxt') == {1: 'hand'}
    test_records = read_tfrecord(out / 'test.record')
    assert len(test_records) == 100
    assert {r['image/source_id'].split('/')[0] for r in test_records} == {'CARDS_OFFICE_S_B'}
    assert sum(len(r['image/object/class/label']) for r in test_records) == 262
    for name in ('train', 'val', 'test'):
        assert (out / f'stats_{name}.png').is_file()
        assert len(list((out / 'previews' / name).glob('*.png'))) == 2


def test_convert_selected_videos_sharded(egohands_dir, tmp_path):
    out = tmp_path / 'records'
    assert main(['convert', '--egohands', str(egohands_dir), '--videos', 'CARDS_OFFICE_S_B',
                 '--out', str(out), '--shards', '2', '--previews', '0']) == 0
    assert sorted(p.name for p in out.glob('all.record*')) == [
        'all.record-00000-of-00002', 'all.record-00001-of-00002']
    assert len(read_tfrecord(out / 'all.record')) == 100
    stats = json.loads((out / 'stats.json').read_text())
    assert (stats['all']['images'], stats['all']['boxes']) == (100, 262)
    assert stats['all']['files'] == ['all.record-00000-of-00002', 'all.record-00001-of-00002']


def test_cli_errors(egohands_dir, tmp_path, capsys):
    # the default split needs all 48 videos: a clear message, exit status 2
    assert main(['convert', '--egohands', str(egohands_dir), '--out', str(tmp_path)]) == 2
    assert 'CARDS_COURTYARD_B_T' in capsys.readouterr().err
    assert main(['convert', '--egohands', str(egohands_dir), '--videos', 'CARDS_OFFICE_S_B',
                 '--split', 'shipped', '--out', str(tmp_path)]) == 2
    assert '--videos' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(['convert', '--out', str(tmp_path)])  # no source: argparse error


def test_stats_command(roboflow_dir, tmp_path, capsys):
    assert main(['stats', '--yolo', str(roboflow_dir), '--splits', 'valid,test',
                 '--png', str(tmp_path / 'rf.png')]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert {k: v['images'] for k, v in stats.items()} == {'val': 167, 'test': 85}
    assert (tmp_path / 'rf_val.png').is_file() and (tmp_path / 'rf_test.png').is_file()


def test_commands_without_records_start_without_tensorflow(roboflow_dir, tmp_path):
    # only `convert` writes TFRecords; the other commands must not pay TensorFlow's import
    code = ('import sys; from hand_tracker_training.datasets.cli import main; '
            f'rc = main(["stats", "--yolo", {str(roboflow_dir)!r}, "--splits", "test", '
            f'"--png", {str(tmp_path / "s.png")!r}]); '
            'print("tensorflow" in sys.modules); sys.exit(rc)')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == 'False'
    assert (tmp_path / 's_test.png').is_file()


# ----------------------------------------------------------------------------- download
def test_download_fails_cleanly_without_network(tmp_path, capsys):
    with pytest.raises(DownloadError, match='127.0.0.1:9') as info:
        download_egohands(tmp_path / 'eh', urls=[UNREACHABLE], timeout=5, progress=False)
    assert 'by hand' in str(info.value)
    assert not (tmp_path / 'eh' / 'egohands_data.zip').exists()
    assert main(['download', '--dest', str(tmp_path / 'eh'), '--url', UNREACHABLE]) == 2
    assert 'could not download EgoHands' in capsys.readouterr().err


def test_download_checks_and_unzips_an_archive(egohands_dir, tmp_path, capsys):
    """The whole path on a small archive in the original layout, served from a file:// URL."""
    video = 'CARDS_OFFICE_S_B'
    frames = frames_of(egohands_dir, video)[:2]
    polygons = real_polygons(egohands_dir, video)[:2]
    make_video(tmp_path / 'src', video, frames,
               [{f: entry[f] for f in FIELDS} for entry in polygons])
    archive = tmp_path / 'egohands_data.zip'
    with zipfile.ZipFile(archive, 'w') as zf:
        for f in sorted((tmp_path / 'src').rglob('*')):
            if f.is_file():
                zf.write(f, f.relative_to(tmp_path / 'src'))
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()

    with pytest.raises(DownloadError, match='sha256'):
        download_egohands(tmp_path / 'bad', urls=[archive.as_uri()], sha256='0' * 64,
                          progress=False)
    root = download_egohands(tmp_path / 'dest', urls=[archive.as_uri()], sha256=digest,
                             progress=False)
    assert digest in capsys.readouterr().out
    assert root == tmp_path / 'dest'
    samples = load_egohands(root, progress=False)
    reference = load_egohands(egohands_dir, videos=[video], progress=False)[:2]
    for got, want in zip(samples, reference):
        np.testing.assert_array_equal(got.boxes, want.boxes)
        assert Path(got.image_path).read_bytes() == Path(want.image_path).read_bytes()

    with pytest.raises(DownloadError, match='not a zip'):  # e.g. a web page instead
        download_egohands(tmp_path / 'jpeg', urls=[frames[0].as_uri()], progress=False)
