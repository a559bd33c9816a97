r"""
``hand-tracker-eval``: COCO evaluation of what the node publishes, one set or a suite of sets.

By default the node's chain at its defaults on still images (:class:`hand_tracker_ros.chain.
ChainDetector`: SSD and palm proposals, landmark check, merge; every source on, no tracking),
at its operating threshold ``merge.score_threshold``; ``--ssd-only`` evaluates the SSD alone
through the node's backends (:func:`hand_tracker_ros.backends.load_detector`) at the model's
threshold::

    hand-tracker-eval --model models/model.tflite --suite config/eval_suite.yaml \
        --json eval.json --plots eval_plots/
    hand-tracker-eval --model models/model.tflite --egohands ../shared/data/egohands \
        --videos CARDS_OFFICE_S_B --json eval.json --plots eval_plots/

One set (the source options of :mod:`hand_tracker_training.datasets.sources`, ``--part``):
the report table beside the original project's numbers, JSON of the metrics, ``--plots``: a PR
curve and the worst failures. A suite (:mod:`hand_tracker_training.eval_suite`): one row per set
and a pooled row below, at the operating threshold; JSON ``{model, backend, threshold,
threshold_from, sets: {name: report}, pooled: report}``; ``--plots``: ``pr_curves.png`` (a curve
per set) and ``failures_<set>.png`` sheets.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
from typing import Optional, Sequence

from hand_tracker_training.datasets.sources import add_source_options, has_sources, load_sources
from hand_tracker_training.eval_suite import (format_height_table, format_suite_table, load_suite,
                                              model_threshold, operating_point, plot_pr_curves,
                                              POOLED, read_suite, write_failure_sheets)
from hand_tracker_training.evaluate import (coco_metrics, evaluate_detector, format_table,
                                            handedness_report, JSON_METRIC_KEYS, plot_pr_curve,
                                            write_failure_cases)


def _parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='hand-tracker-eval',
        description='COCO bbox evaluation of a hand detector (frozen graph .pb or .tflite) '
                    'through the backends of the ROS node.')
    parser.add_argument('--model', type=Path, help='SSD: .pb frozen graph or .tflite (default: '
                                                   'the shipped model)')
    parser.add_argument('--ssd-only', action='store_true',
                        help="evaluate the SSD alone (default: the node's whole chain: SSD and "
                             'palm proposals checked by the hand-landmark model)')
    parser.add_argument('--suite', type=Path, help='suite YAML: one row per set (replaces the '
                                                   'source options)')
    parser.add_argument('--limit', type=int, help='suite: at most N images per set (spread)')
    parser.add_argument('--threshold', type=float,
                        help='operating score threshold of precision/recall/F1 (default: '
                             'score_threshold of model_info.yaml beside the model, else 0.5)')
    add_source_options(parser)
    parser.add_argument('--part', choices=('train', 'val', 'test'), default='test',
                        help='the part of the sources to evaluate (default: test); sources given '
                             'without a split (--videos, --split none) are always evaluated')
    parser.add_argument('--label-map', type=Path, help='label_map.pbtxt (default: beside model)')
    parser.add_argument('--min-score', type=float, default=0.0,
                        help='drop detections below this score before scoring (default 0.0)')
    parser.add_argument('--threads', type=int, default=2, help='inference threads (default 2)')
    parser.add_argument('--poses', action='store_true',
                        help='also the static hand pose (finger count) on sets with finger '
                             'labels (labels_fingers/ beside labels/, or count class names): '
                             'pose_accuracy (ground-truth boxes), pose_accuracy_end_to_end, '
                             'pose_confusion')
    parser.add_argument('--json', required=True, type=Path, help='metrics JSON to write')
    parser.add_argument('--plots', type=Path, help='folder for the PR curve(s) and failures')
    args = parser.parse_args(argv)
    if not (args.suite or has_sources(args)):
        parser.error('give --suite or at least one of --sources, --egohands, --yolo, --coco')
    if args.poses and args.ssd_only:
        parser.error('--poses needs the keypoints of the chain (not --ssd-only)')
    return args


def set_report(samples: Sequence, metrics: dict) -> dict:
    """Report one set in JSON: images, hands, COCO metrics and latency (when measured)."""
    report = {'images': len(samples), 'hands': int(sum(len(s.boxes) for s in samples))}
    report.update({key: metrics[key] for key in JSON_METRIC_KEYS})
    report.update({key: metrics[key] for key in ('latency_ms_median', 'latency_ms_p95')
                   if key in metrics})
    return report


def _write_json(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + '\n')
    print(f'wrote {path}')


def _threshold(args: argparse.Namespace, detector) -> tuple[float, str]:
    """(operating threshold, where it comes from): --threshold, the model's or the chain's."""
    return ((args.threshold, '--threshold') if args.threshold is not None
            else model_threshold(args.model) if args.ssd_only
            else (detector.operating_threshold, 'merge.score_threshold'))


def _single(args: argparse.Namespace, detector) -> int:
    samples = load_sources(args, (args.part, 'all'))
    if not samples:
        raise ValueError('the data set has no images')
    metrics, predictions = evaluate_detector(detector, samples, min_score=args.min_score)
    threshold, origin = _threshold(args, detector)
    report = {'model': str(args.model), 'backend': detector.name, **set_report(samples, metrics),
              **operating_point(samples, predictions, threshold), 'threshold_from': origin}
    print(f'{args.model} ({detector.name}): {report["images"]} images, {report["hands"]} hands')
    print(format_table(metrics))
    print(f'latency per image: median {report["latency_ms_median"]:.1f} ms, '
          f'p95 {report["latency_ms_p95"]:.1f} ms ({args.threads} threads)')
    print(f'at the operating threshold {threshold:g} ({origin}): precision '
          f'{report["precision"]:.3f}, recall {report["recall"]:.3f}; recall by hand height:')
    print(format_height_table({'this set': report}))
    if args.poses:
        _add_poses(report, 'this set', detector, samples, predictions, threshold)
    _write_json(args.json, report)
    if args.plots:
        png = plot_pr_curve(metrics, args.plots / 'pr_curve.png')
        failures = write_failure_cases(samples, predictions, args.plots / 'failures')
        print(f'wrote {png} and {len(failures)} failure cases in {args.plots / "failures"}')
    return 0


def _add_poses(report: dict, name: str, detector, samples: Sequence, predictions: Sequence,
               threshold: float) -> None:
    """Add the pose accuracy of a set with finger labels to its report, and print it."""
    from hand_tracker_ros.poses import PoseClassifier
    from hand_tracker_training.poses import format_confusion, pose_evaluation
    result = pose_evaluation(detector.chain, PoseClassifier(), samples, predictions, threshold)
    if result is None:
        print(f'poses on {name}: no finger labels')
        return
    report.update(result)
    print(f'finger count on {name} ({result["pose_hands"]} hands): ground-truth boxes '
          f'{result["pose_accuracy"]:.3f}, end to end at {threshold:g} '
          f'{result["pose_accuracy_end_to_end"]:.3f}')
    print(format_confusion(result['pose_confusion']['ground_truth_boxes']))


def _evaluate_sets(detector, sets: dict, min_score: float) -> tuple[dict, dict]:
    """
    Evaluate every set: (metrics, predictions) by set name.

    Under POOLED, those of every set together (the same detections, no latency).
    """
    metrics, predictions = {}, {}
    for name, samples in sets.items():
        metrics[name], predictions[name] = evaluate_detector(detector, samples,
                                                             min_score=min_score, progress=False)
    predictions[POOLED] = [d for name in sets for d in predictions[name]]
    metrics[POOLED] = coco_metrics([s for name in sets for s in sets[name]], predictions[POOLED])
    return metrics, predictions


def _suite(args: argparse.Namespace, detector) -> int:
    threshold, origin = _threshold(args, detector)
    sets = load_suite(read_suite(args.suite), args.data_root, args.limit,
                      args.fold)
    metrics, predictions = _evaluate_sets(detector, sets, args.min_score)
    sets[POOLED] = [s for samples in sets.values() for s in samples]
    reports = {name: {**set_report(samples, metrics[name]),
                      **operating_point(samples, predictions[name], threshold)}
               for name, samples in sets.items()}
    print(f'{args.model} ({detector.name}), operating threshold {threshold:g} ({origin}):')
    print(format_suite_table(reports))
    print('recall at the operating threshold by hand height / image height (hands in the bin):')
    print(format_height_table(reports))
    min_confidence = getattr(detector, 'min_handedness', None)
    for name, samples in sets.items():
        if name == POOLED or min_confidence is None or not any(
                side for s in samples for side in s.sides):
            continue
        reports[name]['handedness'] = report = handedness_report(
            samples, predictions[name], threshold, min_confidence)
        print(f'handedness on {name} (sided at {min_confidence:g}): ' + ', '.join(
            f'{k} {v["correct"]}/{v["sided"]} ({v["unknown"]} unknown)'
            for k, v in report.items()))
    if args.poses:
        for name, samples in sets.items():
            if name != POOLED:
                _add_poses(reports[name], name, detector, samples, predictions[name], threshold)
    _write_json(args.json, {'model': str(args.model), 'backend': detector.name,
                            'threshold': threshold, 'threshold_from': origin,
                            'sets': {n: r for n, r in reports.items() if n != POOLED},
                            POOLED: reports[POOLED]})
    if args.plots:
        png = plot_pr_curves(metrics, args.plots / 'pr_curves.png')
        del sets[POOLED]
        sheets = write_failure_sheets(sets, predictions, args.plots, threshold)
        print(f'wrote {png} and {len(sheets)} failure sheets in {args.plots}')
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``hand-tracker-eval``; returns the exit status (0 ok, 2 unusable model or data)."""
    args = _parse_args(argv)
    from hand_tracker_ros.backends import load_detector, ModelLoadError
    from hand_tracker_ros.chain import chain_from_defaults, ChainDetector
    from hand_tracker_ros.resources import default_model_path

    args.model = args.model or default_model_path()
    try:
        detector = load_detector(str(args.model), str(args.label_map) if args.label_map else None,
                                 num_threads=args.threads)
        if not args.ssd_only:
            detector = ChainDetector(detector, chain_from_defaults(num_threads=args.threads))
    except ModelLoadError as exc:
        print(f'hand-tracker-eval: {exc}', file=sys.stderr)
        return 2
    try:
        return _suite(args, detector) if args.suite else _single(args, detector)
    except (OSError, ValueError) as exc:
        print(f'hand-tracker-eval: cannot read the data set: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
