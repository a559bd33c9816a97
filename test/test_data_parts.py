"""
The train/val/test parts of config/data_splits.yaml on the real data of ../shared/data.

Counts come from the data README and from listing the folders (independent of the module):
EgoHands 3 videos x 100 frames; webcam 1,245 + 312 = 1,557 frames in 17 sessions; ASL
1,512 / 144 / 72; close-up valid 188 + test 264; gesture photos 587 / 167 / 85.
"""
from __future__ import annotations

import argparse
from pathlib import Path
import re

from hand_tracker_training.cli_args import split_list
from hand_tracker_training.datasets import load_part, PARTS, read_data_splits
from hand_tracker_training.datasets.cli import main
from hand_tracker_training.datasets.parts import load_parts, parts_table
from hand_tracker_training.datasets.sources import add_source_options, load_sources
import numpy as np
from PIL import Image
import pytest

TOTAL_IMAGES = {'egohands': 300, 'hands_webcam_subhih': 1557, 'asl_letters_roboflow': 1728,
                'hands_closeup_roboflow': 452, 'hand_gestures_roboflow': 839}


@pytest.fixture(scope='module')
def config(shared_data):
    return read_data_splits(root=shared_data)


@pytest.fixture(scope='module')
def parts(config):
    return {name: load_parts(name, config) for name in config['sources']}


def test_every_source_has_three_nonempty_parts_and_keeps_every_image(parts, shared_data):
    assert set(parts) == set(TOTAL_IMAGES)
    for name, by_part in parts.items():
        assert all(by_part[p] for p in PARTS), name
        paths = [s.image_path for p in PARTS for s in by_part[p]]
        assert len(paths) == len(set(paths)) == TOTAL_IMAGES[name], name  # no file in two parts
        on_disk = [p for p in (shared_data / name).rglob('*') if p.suffix.lower() in ('.jpg',)]
        assert set(paths) == {str(p) for p in on_disk}, name
        assert {s.dataset for p in PARTS for s in by_part[p]} == {name}


def test_webcam_sessions_never_cross_parts(parts):
    def session(path):  # the file name up to its frame number, spelled independently here
        return re.match(r'(.*?)_?\d+\.jpg$', Path(path).name).group(1)

    sessions = {p: {session(s.image_path) for s in parts['hands_webcam_subhih'][p]}
                for p in PARTS}
    assert not sessions['train'] & sessions['val']
    assert not sessions['train'] & sessions['test']
    assert not sessions['val'] & sessions['test']
    assert sum(len(v) for v in sessions.values()) == 17
    assert '1528664299.56_pic' in sessions['test'] and '2_pic' in sessions['train']
    # the export's test/ folder alone would share every session with train/
    folder_sessions = {f: {session(p) for p in (Path(parts['hands_webcam_subhih']['train'][0]
                                                     .image_path).parents[2] / f / 'images')
                           .glob('*.jpg')} for f in ('train', 'test')}
    assert folder_sessions['test'] <= folder_sessions['train']


def _thumb(path):
    return np.asarray(Image.open(path).convert('L').resize((32, 32)), np.float32)


def test_closeup_photos_copied_into_valid_and_test_stay_out_of_test(parts):
    by_part = parts['hands_closeup_roboflow']
    photo = {p: {Path(s.image_path).name.split('.rf.')[0] for s in by_part[p]} for p in PARTS}
    assert not photo['test'] & (photo['train'] | photo['val'])
    assert all('/test/' in s.image_path for s in by_part['test'])
    # no test image has the same pixels (re-encoded) as a train/val image
    test = np.stack([_thumb(s.image_path) for s in by_part['test']])
    for s in by_part['train'] + by_part['val']:
        assert np.abs(test - _thumb(s.image_path)).mean(axis=(1, 2)).min() > 2.0, s.image_path


@pytest.mark.parametrize('name', ['asl_letters_roboflow', 'hand_gestures_roboflow'])
def test_roboflow_sets_keep_their_own_splits(parts, name):
    folders = {'train': 'train', 'val': 'valid', 'test': 'test'}
    for part, folder in folders.items():
        assert all(f'/{folder}/images/' in s.image_path for s in parts[name][part])


def test_counts_per_part(parts):
    counts = {n: {p: len(v[p]) for p in PARTS} for n, v in parts.items()}
    assert counts['egohands'] == {'train': 100, 'val': 100, 'test': 100}
    assert counts['asl_letters_roboflow'] == {'train': 1512, 'val': 144, 'test': 72}
    assert counts['hand_gestures_roboflow'] == {'train': 587, 'val': 167, 'test': 85}
    webcam = counts['hands_webcam_subhih']
    assert 0.15 < webcam['test'] / 1557 < 0.25 and 0.1 < webcam['val'] / 1557 < 0.2


def test_load_part_and_cli_options_agree(config, parts, shared_data):
    assert [s.image_path for s in load_part('egohands', 'test', config)] == [
        s.image_path for s in parts['egohands']['test']]
    parser = argparse.ArgumentParser()
    add_source_options(parser)
    args = parser.parse_args(['--sources', 'egohands,hand_gestures_roboflow',
                              '--data-root', str(shared_data)])
    val = load_sources(args, 'val')
    assert len(val) == 100 + 167
    with pytest.raises(ValueError, match='both'):
        bad = {**config, 'sources': {'egohands': {**config['sources']['egohands'], 'parts': {
            'train': {'groups': 'rest'}, 'val': {'groups': ['CARDS_OFFICE_S_B']},
            'test': {'groups': ['CARDS_OFFICE_S_B']}}}}}
        load_parts('egohands', bad)


def test_parts_table_and_command(config, shared_data, tmp_path, capsys):
    table = parts_table(config)
    assert '| egohands |' in table and '100 img, 262 hands, 1 videos' in table
    out = tmp_path / 'DATA_SPLITS.md'
    assert main(['parts', '--data-root', str(shared_data), '--markdown', str(out)]) == 0
    assert table in out.read_text() and table in capsys.readouterr().out
    assert 'session `16_pic` of the hands_webcam_subhih test part' in out.read_text()
    assert 'far-hands test set' in out.read_text()


def test_split_list():
    assert split_list(' a, b,,c ') == ['a', 'b', 'c']
    assert split_list('') is None and split_list(None) is None and split_list(' , ') is None


@pytest.mark.parametrize('fold', ['CARDS_OFFICE_S_B', 'PUZZLE_LIVINGROOM_T_B',
                                  'CARDS_LIVINGROOM_B_T', 'all'])
def test_leave_one_video_out_folds(shared_data, parts, fold):
    folded = read_data_splits(root=shared_data, fold=fold)
    ego = load_parts('egohands', folded)
    videos = {part: {Path(s.image_path).parent.name for s in ego[part]} for part in PARTS}
    every = {'CARDS_OFFICE_S_B', 'PUZZLE_LIVINGROOM_T_B', 'CARDS_LIVINGROOM_B_T'}
    held = set() if fold == 'all' else {fold}
    assert videos == {'train': every - held, 'val': set(), 'test': held}
    assert len(ego['train']) == 100 * len(every - held)
    # the other sources keep their parts
    webcam = load_parts('hands_webcam_subhih', folded)
    assert {p: [s.image_path for s in v] for p, v in webcam.items()} == {
        p: [s.image_path for s in v] for p, v in parts['hands_webcam_subhih'].items()}


def test_unknown_fold_names_the_folds(shared_data):
    with pytest.raises(ValueError, match='unknown fold .NOPE.: one of CARDS_OFFICE_S_B, '
                                         'PUZZLE_LIVINGROOM_T_B, CARDS_LIVINGROOM_B_T, all'):
        read_data_splits(root=shared_data, fold='NOPE')
