"""
The README's first command, as written, in a fresh checkout with nothing beside it.

The checkout is a copy of the repository's tracked files (what a clone holds, with this working
tree's edits) in a temporary folder without ``../shared``. The command's set-up half
(``tools/setup_venv.sh``) is not run again: the checkout's ``.venv`` is this test's own venv and
``PYTHONPATH`` puts the checkout's packages first, so the checkout's code, README and sample
run, with the messages and share files the venv was built with. ``.ci/run`` runs the set-up
itself on a fresh clone. The annotated video is checked against the sample's hand labels, which
stay in ``../shared/data``.
"""
import glob
import os
from pathlib import Path
import re
import shutil
import subprocess
import sys

import cv2
from hand_tracker_ros.resources import SAMPLE_VIDEO
from hand_tracker_training.datasets.parts import GROUP_RULES, load_part, read_data_splits
import numpy as np
import procs
import pytest

REPO = Path(__file__).resolve().parents[1]
WEBCAM = 'hands_webcam_subhih'


def readme_first_command() -> str:
    """Return the first line of the README's first ``bash`` block."""
    block = re.search(r'```bash\n(.*?)```', (REPO / 'README.md').read_text(), re.S)
    assert block, 'README.md has no ```bash block'
    return block.group(1).splitlines()[0].strip()


@pytest.fixture(scope='module')
def fresh_checkout(tmp_path_factory) -> Path:
    """Copy the repository's tracked files into an empty folder (no ../shared); return it."""
    listed = subprocess.run(['git', 'ls-files', '-z'], cwd=REPO, capture_output=True)
    if listed.returncode != 0:
        pytest.skip(f'{REPO} is not a git checkout: which files a clone holds is unknown')
    checkout = tmp_path_factory.mktemp('fresh') / 'hand_tracker'
    for name in listed.stdout.decode().split('\0'):
        if name and (REPO / name).is_file():  # a tracked file deleted here is not in a clone
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, checkout / name)
    assert not (checkout.parent / 'shared').exists()
    return checkout


def read_video(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            cap.release()
            return frames
        frames.append(frame)


def box_drawn_around(annotated: np.ndarray, raw: np.ndarray, box) -> bool:
    """
    Return True when drawing (pixels changed by > 60) runs along 3/4 of `box`'s outline.

    A drawn box counts within 15 % of the labelled box's longer side (+4 px) of its outline.
    """
    drawn = (np.abs(annotated.astype(np.int16) - raw.astype(np.int16)).max(axis=2) > 60)
    x0, y0, x1, y1 = (float(v) for v in box)
    tol = int(0.15 * max(x1 - x0, y1 - y0)) + 4
    near = cv2.dilate(drawn.astype(np.uint8), np.ones((2 * tol + 1, 2 * tol + 1), np.uint8))
    t = np.linspace(0.0, 1.0, 100, endpoint=False)
    xs = np.concatenate([x0 + (x1 - x0) * t, x0 + (x1 - x0) * t, np.full_like(t, x0),
                         np.full_like(t, x1)])
    ys = np.concatenate([np.full_like(t, y0), np.full_like(t, y1), y0 + (y1 - y0) * t,
                         y0 + (y1 - y0) * t])
    h, w = near.shape
    xi = np.clip(np.round(xs).astype(int), 0, w - 1)
    yi = np.clip(np.round(ys).astype(int), 0, h - 1)
    return near[yi, xi].mean() >= 0.75


def test_readme_names_the_sample_the_split_file_holds_out(shared_data):
    """The first command runs on the shipped sample, a group of the webcam set's test part."""
    command = readme_first_command()
    config = read_data_splits(root=shared_data)
    spec = config['sources'][WEBCAM]
    assert spec['sample']['file'] == str(SAMPLE_VIDEO) and str(SAMPLE_VIDEO) in command
    group, rule = spec['sample']['group'], GROUP_RULES[spec['group']]
    homes = {part for part in ('train', 'val', 'test')
             if any(rule(s) == group for s in load_part(WEBCAM, part, config))}
    assert homes == {'test'}, f'the sample session {group} must be in the test part alone'


def test_readme_first_command_in_a_fresh_checkout_records_boxes_on_the_hands(
        fresh_checkout, shared_data):
    command = readme_first_command()
    setup, run = (part.strip() for part in command.split('&&'))
    assert setup == 'tools/setup_venv.sh', command
    if not (Path(sys.prefix) / 'bin' / 'hand-tracker').is_file():
        pytest.skip(f'{sys.prefix} is not a venv made by tools/setup_venv.sh (no '
                    f'bin/hand-tracker): tools/setup_venv.sh && pytest runs this test')
    (fresh_checkout / '.venv').symlink_to(sys.prefix, target_is_directory=True)
    env = dict(os.environ, PYTHONPATH=str(fresh_checkout))
    imported = subprocess.run(
        ['.venv/bin/python', '-c', 'import hand_tracker_ros; print(hand_tracker_ros.__file__)'],
        cwd=fresh_checkout, env=env, capture_output=True, text=True, timeout=120)
    assert imported.stdout.startswith(str(fresh_checkout)), "the checkout's code must run"

    r = procs.run(['bash', '-c', run], cwd=fresh_checkout, env=env, capture_output=True,
                  text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    sample = read_video(fresh_checkout / SAMPLE_VIDEO)
    annotated = read_video(fresh_checkout / 'hands.mp4')
    assert f'frames {len(sample)}/{len(sample)}' in r.stderr, r.stderr[-2000:]
    assert len(annotated) == len(sample) > 0, 'one annotated frame per sample frame'
    assert annotated[0].shape == sample[0].shape

    # the sample's frames are its session's labelled images, in file-name order
    config = read_data_splits(root=shared_data)
    spec = config['sources'][WEBCAM]
    rule = GROUP_RULES[spec['group']]
    labelled = sorted((s for s in load_part(WEBCAM, 'test', config)
                       if rule(s) == spec['sample']['group']),
                      key=lambda s: Path(s.image_path).name)
    assert len(labelled) == len(sample)
    hands = [(k, box) for k, s in enumerate(labelled) for box in s.boxes]
    boxed = [box_drawn_around(annotated[k], sample[k], box) for k, box in hands]
    assert len(hands) > len(sample)  # most frames show both hands
    # the project's target recall (0.85) at the operating threshold, on the drawn video
    assert np.mean(boxed) >= 0.85, f'{sum(boxed)} of {len(hands)} labelled hands boxed'
    # boxes where the hands are, not everywhere: another frame's labels (half the clip away)
    # are met far less often
    half = len(sample) // 2
    elsewhere = [box_drawn_around(annotated[k], sample[k], box) for k in range(len(sample))
                 for box in labelled[(k + half) % len(sample)].boxes]
    assert np.mean(elsewhere) < 0.5, f'{sum(elsewhere)} of {len(elsewhere)} misplaced labels met'


@pytest.mark.parametrize('source', [
    pytest.param([], id='no source', marks=pytest.mark.skipif(
        bool(glob.glob('/dev/video*')), reason='this machine has a V4L2 camera (/dev/video*): '
        '`hand-tracker run` opens it; the "no camera 97" case checks the same message')),
    pytest.param(['--source', '97'], id='no camera 97')])
def test_run_without_a_webcam_names_the_readme_command(source):
    """No camera: exit 2, the camera error, and the README's first command on the sample."""
    r = procs.run([sys.executable, '-m', 'hand_tracker_ros.cli', 'run', *source], cwd=REPO,
                  capture_output=True, text=True, timeout=180, env=dict(os.environ))
    assert r.returncode == 2 and 'cannot open camera' in r.stderr, r.stderr[-2000:]
    run = readme_first_command().split('&&')[1].strip()
    assert run.replace('.venv/bin/', '') in r.stderr, r.stderr[-2000:]
