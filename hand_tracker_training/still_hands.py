r"""
Still hands: the motion gestures must stay quiet when nobody moves.

No continuous footage is in shared data, so each still-hand sequence is one real image of a
test part shown for ``--seconds`` at ``--fps``, every frame with a still camera's sensor noise
(Gaussian, ``--noise`` grey levels) and sub-pixel shake (``--shake`` pixels, uniform). The
frames go through what the node runs on video: the chain with its tracking memory
(:class:`~hand_tracker_ros.chain.HandChain`, ``still=False``), the tracker, the gesture
recognizer and the pose holds, at their defaults. Any swipe, push, pull or wave is a false
event; hold and held poses are expected (the hand is still)::

    python -m hand_tracker_training.still_hands --images 12 --seconds 2

prints, per source, the sequences, hands, minutes and events per minute of each kind.
"""
from __future__ import annotations

import argparse
from collections import Counter
import sys
from typing import Optional, Sequence

import cv2
import numpy as np

MOTION = ('swipe_left', 'swipe_right', 'swipe_up', 'swipe_down', 'push', 'pull', 'wave')


def still_frames(rgb: np.ndarray, n: int, noise: float, shake: float,
                 rng: np.random.Generator):
    """Yield `n` frames of `rgb`, each with Gaussian noise and a sub-pixel shift."""
    height, width = rgb.shape[:2]
    for _ in range(n):
        dx, dy = rng.uniform(-shake, shake, 2)
        frame = cv2.warpAffine(rgb, np.float32([[1, 0, dx], [0, 1, dy]]), (width, height),
                               borderMode=cv2.BORDER_REFLECT)
        noisy = frame.astype(np.float32) + rng.normal(0.0, noise, frame.shape)
        yield np.clip(noisy, 0, 255).astype(np.uint8)


def run_still_sequence(chain, detector, rgb: np.ndarray, seconds: float, fps: float,
                       noise: float, shake: float, seed: int = 0) -> dict:
    """
    Run one still-hand sequence through chain, tracker, gestures and pose holds.

    Returns ``{'events': Counter of event names, 'frames', 'seconds', 'max_hands'}``.
    """
    from hand_tracker_ros.gestures import GestureRecognizer
    from hand_tracker_ros.poses import PoseClassifier, PoseHolds
    from hand_tracker_ros.resources import model_score_threshold
    from hand_tracker_ros.tracking import HandTracker
    chain.reset()
    tracker, gestures = HandTracker(), GestureRecognizer()
    poses, holds = PoseClassifier(), PoseHolds()
    threshold = model_score_threshold(detector.model_path) or 0.5
    events: Counter = Counter()
    n = max(int(round(seconds * fps)), 1)
    most = 0
    for k, frame in enumerate(still_frames(rgb, n, noise, shake, np.random.default_rng(seed))):
        t = k / fps
        result = chain.process(frame, detector, threshold, 10)
        chain.remember(result)
        tracks = tracker.update(result.detections(), t)
        found = gestures.update(tracks, t, (rgb.shape[1], rgb.shape[0]))
        found += holds.update(tracks, poses(result.hands.keypoints), t)
        events.update(e.name for e in found)
        most = max(most, len(result.hands))
    return {'events': events, 'frames': n, 'seconds': n / fps, 'max_hands': most}


def _parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='python -m hand_tracker_training.still_hands',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--sources', nargs='+', default=['hands_webcam_subhih', 'egohands'])
    parser.add_argument('--part', default='test', choices=('train', 'val', 'test'))
    parser.add_argument('--images', type=int, default=12, help='images per source (spread)')
    parser.add_argument('--seconds', type=float, default=2.0, help='per still sequence')
    parser.add_argument('--fps', type=float, default=30.0)
    parser.add_argument('--noise', type=float, default=3.0, help='sensor noise, grey levels')
    parser.add_argument('--shake', type=float, default=0.5, help='camera shake, pixels')
    parser.add_argument('--threads', type=int, default=2)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print events per minute of still-hand sequences per source; 1 if a motion gesture."""
    args = _parse_args(argv)
    from hand_tracker_ros.backends import load_detector
    from hand_tracker_ros.chain import chain_from_defaults
    from hand_tracker_ros.resources import default_model_path
    from hand_tracker_training.datasets.parts import load_part
    detector = load_detector(str(default_model_path()), num_threads=args.threads)
    chain = chain_from_defaults(num_threads=args.threads, still=False)
    motion_total = 0
    for source in args.sources:
        samples = [s for s in load_part(source, args.part) if len(s.boxes)]
        step = max(len(samples) // max(args.images, 1), 1)
        total, seconds, hands = Counter(), 0.0, 0
        for i, sample in enumerate(samples[::step][:args.images]):
            rgb = cv2.cvtColor(cv2.imread(sample.image_path), cv2.COLOR_BGR2RGB)
            out = run_still_sequence(chain, detector, rgb, args.seconds, args.fps, args.noise,
                                     args.shake, seed=i)
            total.update(out['events'])
            seconds += out['seconds']
            hands += len(sample.boxes)
        minutes = seconds / 60.0
        motion = sum(total[k] for k in MOTION)
        motion_total += motion
        print(f'{source}/{args.part}: {min(len(samples), args.images)} still sequences, '
              f'{hands} labelled hands, {minutes:.2f} min at {args.fps:g} fps (noise '
              f'{args.noise:g}, shake {args.shake:g} px): motion gestures {motion} '
              f'({motion / minutes:.2f}/min); all events per minute: '
              + (', '.join(f'{k} {v / minutes:.1f}' for k, v in sorted(total.items()))
                 or 'none'))
    return 1 if motion_total else 0


if __name__ == '__main__':
    sys.exit(main())
