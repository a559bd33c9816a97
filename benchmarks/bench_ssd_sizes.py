"""
Network cost of SSD MobileNet v2 variants by input size: float TFLite ``invoke`` time.

  .venv/bin/python benchmarks/bench_ssd_sizes.py [--sizes 300 448] [--runs 40] [--threads 2]

Each variant is built with random weights (the cost does not depend on them), converted to a
float TFLite model of the network alone (no box decoding or NMS) and invoked ``--runs`` times
on one random image; the first 5 runs are warm-up. The baseline, run first in the same
invocation, is the shipped network (stride 16, 300 px, ``models/metrics.json``); then the
stride-8 network of ``config/train_recipe_s8.yaml`` at each ``--sizes``. Prints median and p95
ms per variant and the ratio to the baseline.
"""
from __future__ import annotations

import argparse
from pathlib import Path
import sys
import time

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _time(config, runs: int, threads: int) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter
    from hand_tracker_training.model import build_ssd
    import tensorflow as tf

    model = tf.lite.TFLiteConverter.from_keras_model(build_ssd(config)).convert()
    interp = Interpreter(model_content=model, num_threads=threads)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    image = np.random.default_rng(0).uniform(0, 255, inp['shape']).astype(np.float32)
    times = []
    for _ in range(runs + 5):
        interp.set_tensor(inp['index'], image)
        t = time.perf_counter()
        interp.invoke()
        times.append((time.perf_counter() - t) * 1e3)
    return np.array(times[5:])


def main(argv: list[str] | None = None) -> int:
    import yaml

    from hand_tracker_training.anchors import AnchorConfig
    from hand_tracker_training.model import exported_config, SSDConfig

    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0].strip())
    p.add_argument('--sizes', type=int, nargs='+', default=[300, 448])
    p.add_argument('--runs', type=int, default=40)
    p.add_argument('--threads', type=int, default=2)
    args = p.parse_args(argv)
    shipped = exported_config(REPO / 'models' / 'model.tflite')
    recipe = yaml.safe_load((REPO / 'config' / 'train_recipe_s8.yaml').read_text())
    stride8 = AnchorConfig(**{k: tuple(v) if isinstance(v, list) else v
                              for k, v in recipe['anchors'].items()})
    cases = [('shipped (stride 16)', shipped)] + [
        ('stride 8', SSDConfig(input_size=s, anchors=stride8)) for s in args.sizes]
    base = None
    print(f'float TFLite invoke, {args.threads} threads, {args.runs} runs each')
    print('| network | input | anchors | median ms | p95 ms | x baseline |')
    print('|---|---:|---:|---:|---:|---:|')
    for name, config in cases:
        t = _time(config, args.runs, args.threads)
        base = np.median(t) if base is None else base
        print(f'| {name} | {config.input_size} | {len(config.anchor_boxes())} | '
              f'{np.median(t):.1f} | {np.percentile(t, 95):.1f} | {np.median(t) / base:.2f} |',
              flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
