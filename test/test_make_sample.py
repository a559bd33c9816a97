"""tools/make_sample.py: the shipped sample is the held-out session the split file names."""
from pathlib import Path
import subprocess
import sys

import cv2
from hand_tracker_ros.resources import SAMPLE_VIDEO
import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / 'tools' / 'make_sample.py'


def read_video(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while (frame := cap.read())[0]:
        frames.append(frame[1])
    cap.release()
    return frames


def test_make_sample_rewrites_the_shipped_video_from_the_session(shared_data, tmp_path):
    out = tmp_path / 'sample.mp4'
    r = subprocess.run([sys.executable, str(TOOL), '--data-root', str(shared_data), '--out',
                        str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    made, shipped = read_video(out), read_video(REPO / SAMPLE_VIDEO)
    session = sorted(shared_data.glob('hands_webcam_subhih/*/images/16_pic*.jpg'),
                     key=lambda p: p.name)
    assert len(made) == len(shipped) == len(session) == 46
    for k in (0, 23, 45):  # the same frames, in file-name order, encoded the same way
        assert cv2.PSNR(made[k], shipped[k]) > 40
        assert cv2.PSNR(shipped[k], cv2.imread(str(session[k]))) > 30
    assert cv2.PSNR(shipped[0], cv2.imread(str(session[45]))) < 25, 'frames differ'


def test_make_sample_refuses_a_session_that_training_reads(shared_data, tmp_path):
    config = yaml.safe_load((REPO / 'config' / 'data_splits.yaml').read_text())
    config['sources']['hands_webcam_subhih']['sample']['group'] = '2_pic'  # a train session
    splits = tmp_path / 'data_splits.yaml'
    splits.write_text(yaml.safe_dump(config))
    r = subprocess.run([sys.executable, str(TOOL), '--data-splits', str(splits), '--data-root',
                        str(shared_data), '--out', str(tmp_path / 'x.mp4')],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and 'must be in the test part alone' in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / 'x.mp4').exists()
