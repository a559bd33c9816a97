"""`hand-tracker run`: camera + detector + tracker in one process on real frames, recorded."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest


@pytest.fixture()
def ten_frames(egohands_dir, tmp_path):
    src = sorted((egohands_dir / '_LABELLED_SAMPLES' / 'CARDS_OFFICE_S_B').glob('*.jpg'))[:10]
    d = tmp_path / 'frames'
    d.mkdir()
    for f in src:
        (d / f.name).symlink_to(f)
    return d


def run_cli(*args, timeout=180):
    return subprocess.run([sys.executable, '-m', 'hand_tracker_ros.cli', *args],
                          capture_output=True, text=True, timeout=timeout, env=dict(os.environ))


def test_run_folder_records_every_frame(ten_frames, tmp_path, fixture_models):
    out = tmp_path / 'annotated.mp4'
    r = run_cli('run', '--source', str(ten_frames), '--fps', '5', '--model',
                str(fixture_models['tflite']), '--record', str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'frames 10/10' in r.stderr, 'the progress line counts every frame'
    assert 'fps' in r.stderr and 'hands' in r.stderr
    cap = cv2.VideoCapture(str(out))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = cap.read()
    assert ok and frame.shape == (720, 1280, 3)
    assert n == 10, f'recorded {n} of 10 frames'


def test_run_with_missing_source_or_model_explains(tmp_path, fixture_models):
    r = run_cli('run', '--source', str(tmp_path / 'nothing.mp4'))
    assert r.returncode == 2 and 'neither a camera index' in r.stderr
    r = run_cli('run', '--source', '97', '--model', str(fixture_models['tflite']))
    assert r.returncode == 2 and 'pass a video file or a folder' in r.stderr
    bad = tmp_path / 'model.tflite'
    bad.write_bytes(b'not a model')
    frames = tmp_path / 'f'
    frames.mkdir()
    cv2.imwrite(str(frames / 'a.png'), np.zeros((48, 64, 3), np.uint8))
    r = run_cli('run', '--source', str(frames), '--model', str(bad))
    assert r.returncode == 2 and str(bad) in r.stderr
