"""tools/video_contact_sheet.py on real landscape and portrait (phone-shaped) clips."""
from pathlib import Path
import subprocess
import sys

import cv2
import numpy as np
import pytest

TOOL = Path(__file__).resolve().parents[1] / 'tools' / 'video_contact_sheet.py'
BACKGROUND = 30  # the grey of contact_sheet() where no image is


def write_clip(frames: list[np.ndarray], path: Path) -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), 10.0, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


@pytest.mark.parametrize('portrait', [False, True], ids=['landscape 1280x720',
                                                         'portrait 720x1280'])
def test_cells_follow_the_frames_aspect_and_fill_the_sheet(egohands_dir, tmp_path, portrait):
    files = sorted((egohands_dir / '_LABELLED_SAMPLES' / 'CARDS_OFFICE_S_B').glob('*.jpg'))[:12]
    frames = [cv2.imread(str(f)) for f in files]
    if portrait:  # a phone held upright: the same real frames, turned
        frames = [cv2.rotate(f, cv2.ROTATE_90_CLOCKWISE) for f in frames]
    clip = write_clip(frames, tmp_path / 'clip.mp4')
    png = tmp_path / 'sheet.png'
    r = subprocess.run([sys.executable, str(TOOL), str(clip), str(png), '--frames', '12',
                        '--columns', '4'], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    sheet = cv2.imread(str(png))
    rows, cols = 3, 4
    cell_h, cell_w = sheet.shape[0] / rows, sheet.shape[1] / cols
    frame_h, frame_w = frames[0].shape[:2]
    assert max(cell_h, cell_w) == 480, 'the longer side of a cell is --cell-size (480)'
    assert cell_w / cell_h == pytest.approx(frame_w / frame_h, rel=0.01)
    empty = np.all(sheet == BACKGROUND, axis=2).mean()
    assert empty < 0.01, f'{empty:.0%} of the sheet is empty'
    # the cells hold the clip's frames in order: the first and the last, scaled
    first = cv2.resize(frames[0], (int(cell_w), int(cell_h)), interpolation=cv2.INTER_AREA)
    last = cv2.resize(frames[-1], (int(cell_w), int(cell_h)), interpolation=cv2.INTER_AREA)
    top_left = sheet[:int(cell_h), :int(cell_w)]
    bottom_right = sheet[-int(cell_h):, -int(cell_w):]
    assert cv2.PSNR(top_left, first) > 25 and cv2.PSNR(bottom_right, last) > 25
