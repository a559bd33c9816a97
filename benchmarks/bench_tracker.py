"""
Cost of one ``HandTracker.update`` in isolation, on real detections.

  .venv/bin/python benchmarks/bench_tracker.py [--model models/model.tflite] [--repeat 5]

The shipped detector is run once over the EgoHands test video and a held-out webcam session
(their real detections at the model's operating threshold); the tracker then replays them
`--repeat` times, alone in this process, and the time of every update is reported by the number
of hands in the frame (median, p95). ``bench_node.py`` times the same call inside the running
node, where it shares the interpreter with the inference threads; the two together tell the
tracker's own cost from what it waits for there.
"""
from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path
import sys
import time

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0].strip())
    p.add_argument('--model', default=str(REPO / 'models' / 'model.tflite'))
    p.add_argument('--repeat', type=int, default=5)
    args = p.parse_args(argv)

    from hand_tracker_ros.backends import load_detector
    from hand_tracker_ros.resources import model_score_threshold
    from hand_tracker_ros.tracking import HandTracker
    from hand_tracker_training.input_pipeline import read_rgb
    from hand_tracker_training.sources import load_recipe_part

    detector = load_detector(args.model)
    threshold = model_score_threshold(args.model)
    sequences = {}
    for source in ('egohands', 'webcam'):
        samples = sorted(load_recipe_part(source, 'test'), key=lambda s: s.image_path)[:150]
        sequences[source] = [detector.detect(read_rgb(s.image_path), threshold)
                             for s in samples]
    print(f'{args.model} at {threshold}: detections of '
          + ', '.join(f'{len(v)} {k} test frames' for k, v in sequences.items()))
    by_hands: dict[int, list[float]] = defaultdict(list)
    for _ in range(args.repeat):
        for dets in sequences.values():
            tracker = HandTracker()
            for i, d in enumerate(dets):
                t0 = time.perf_counter()
                tracker.update(d, i / 30.0)
                by_hands[len(d.boxes)].append((time.perf_counter() - t0) * 1e3)
    print('| hands in frame | updates | median ms | p95 ms |\n|---:|---:|---:|---:|')
    for n in sorted(by_hands):
        t = np.asarray(by_hands[n])
        print(f'| {n} | {len(t)} | {np.median(t):.3f} | {np.percentile(t, 95):.3f} |')
    every = np.concatenate([np.asarray(v) for v in by_hands.values()])
    print(f'| all | {len(every)} | {np.median(every):.3f} | {np.percentile(every, 95):.3f} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
