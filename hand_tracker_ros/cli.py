"""
`hand-tracker`: the package's nodes without `ros2 launch` (pip-only machines).

Commands::

  hand-tracker run --source 0|VIDEO|DIR|BAG [--model M] [--record out.mp4] [--params-file F]
      [--bag-topic T] [--bag-rate R] [--record-bag out.mcap] [--bag-compression zstd|none]
      camera + hand_detector (+ tracker) in one process, same parameters as webcam.launch.py,
      a live progress line (fps, hands), optional recording of the annotated stream.
  hand-tracker detect [--ros-args ...]   the detector node alone (= ros2 run hand_tracker
                                         hand_detector)
  hand-tracker camera [--ros-args ...]   the camera node alone (= ros2 run hand_tracker camera)
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
import sys
import time
from typing import Optional

from .resources import default_params_file, sample_video, use_shm_profile
from .shutdown import REQUEST, run_main, Shutdown


class StartupError(RuntimeError):
    """`hand-tracker run` cannot start (no source, no model); the message says why."""


def _camera_overrides(args: argparse.Namespace) -> list:
    from rclpy.parameter import Parameter
    overrides = [Parameter('source', value=str(args.source)), Parameter('loop', value=args.loop)]
    if args.fps is not None:
        overrides.append(Parameter('fps', value=float(args.fps)))
    return overrides


def _detector_overrides(args: argparse.Namespace) -> list:
    from rclpy.parameter import Parameter

    from .frame_source import is_camera_source
    overrides = [Parameter('model_path', value=str(args.model))] if args.model else []
    if not is_camera_source(str(args.source)):
        # recorded input: let frames wait (up to 30) instead of dropping them, so a slow
        # start or a busy machine does not cut frames out of the recording
        overrides.append(Parameter('queue_size', value=30))
    if args.no_tracking:
        overrides.append(Parameter('track', value=False))
    return overrides


def _sample_hint(source: str) -> str:
    """For a camera that cannot be opened: the command that runs on the shipped sample."""
    from .frame_source import FrameSource, is_camera_source, SourceError

    sample = sample_video()
    if sample is None or not is_camera_source(source):
        return ''
    shown = os.path.relpath(sample) if sample.is_relative_to(Path.cwd()) else str(sample)
    try:
        video = FrameSource(str(sample))
    except SourceError:  # a damaged copy: no hint rather than a second error
        return ''
    fps = video.native_fps
    video.close()
    return (f'\nNo webcam here? See it work on the sample recording: '
            f'hand-tracker run --source {shown} --fps {fps:g} --record hands.mp4')


def _start_nodes(args: argparse.Namespace) -> list:
    """[camera, detector] with the command's parameters; StartupError if one cannot work."""
    from .bag_run import BagError, make_source_node
    from .detector_node import HandDetectorNode
    from .frame_source import SourceError

    detector_overrides = _detector_overrides(args)
    nodes: list = []
    try:  # a bag player instead of the camera node when the source is a bag
        camera = make_source_node(args, _camera_overrides(args), detector_overrides,
                                  lambda: nodes[1])
    except (SourceError, BagError) as exc:
        raise StartupError(str(exc) + _sample_hint(str(args.source))) from exc
    detector = HandDetectorNode(parameter_overrides=detector_overrides)
    nodes += [camera, detector]
    if detector.detector is None:
        camera.destroy_node()
        detector.destroy_node()
        raise StartupError('no usable model (see the error above); pass --model PATH')
    return nodes


class ProgressLine:
    """Counts the detection messages of a node and prints a one-line progress report."""

    def __init__(self, node, total: int = 0) -> None:
        from rclpy.qos import QoSProfile
        from vision_msgs.msg import Detection2DArray

        self.total, self.frames, self.hands = total, 0, 0
        self.started = self.last = time.monotonic()
        node.create_subscription(Detection2DArray, 'detections', self._on_detections,
                                 QoSProfile(depth=10))

    def _on_detections(self, msg) -> None:
        self.frames += 1
        self.hands = len(msg.detections)
        self.last = time.monotonic()

    def text(self, stats) -> str:
        """Return the line: frames (of total), output rate, hands, stale drops and elapsed time."""
        elapsed = time.monotonic() - self.started
        frames = f'{self.frames}/{self.total}' if self.total else f'{self.frames}'
        return (f'[hand-tracker] frames {frames} | {stats.outputs.rate():5.1f} fps | '
                f'hands {self.hands} | dropped {stats.dropped_stale} | {elapsed:6.1f} s')

    def quiet_for(self) -> float:
        """Seconds since the last detection message."""
        return time.monotonic() - self.last


class Recorder:
    """Writes the annotated images (``detections/image``) of a node to an .mp4 file."""

    def __init__(self, node, path: Path, fps: float) -> None:
        import threading

        from rclpy.qos import QoSProfile
        from sensor_msgs.msg import Image

        self.path, self.fps = Path(path), fps
        self._writer = None
        self._lock = threading.Lock()
        node.create_subscription(Image, 'detections/image', self._on_image, QoSProfile(depth=30))

    def _on_image(self, msg) -> None:
        import cv2

        from .image_conversion import image_to_rgb
        rgb = image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian,
                           msg.data)
        with self._lock:
            if self._writer is None:
                self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*'mp4v'),
                                               self.fps, (msg.width, msg.height))
                if not self._writer.isOpened():
                    raise RuntimeError(f'cannot write video {self.path}')
            self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> bool:
        """Finish the file; True if any frame was written."""
        with self._lock:
            if self._writer is None:
                return False
            self._writer.release()
            self._writer = None
            return True


def _watch(args: argparse.Namespace, camera, detector, progress: ProgressLine, stop) -> None:
    """Print the progress line until --duration passed, the input ended or SIGINT/SIGTERM."""
    import rclpy

    deadline = time.monotonic() + args.duration if args.duration else None
    while not stop.requested and rclpy.ok():
        time.sleep(0.25)
        print('\r' + progress.text(detector.pipeline.stats), end='', file=sys.stderr,
              flush=True)
        if deadline and time.monotonic() > deadline:
            return
        if camera.finished.is_set() and detector.pipeline.pending() == 0 \
                and progress.quiet_for() > 1.0:
            return


def _ros_args(args: argparse.Namespace) -> list[str]:
    ros_args = [sys.argv[0], '--ros-args', '--params-file', str(args.params_file)]
    return ros_args + (['--log-level', args.log_level] if args.log_level else [])


def _run(args: argparse.Namespace) -> int:
    """``hand-tracker run``: camera + detector + a monitor node in one process."""
    import rclpy
    from rclpy.executors import ExternalShutdownException

    from .spin import BackgroundSpinner, init_rclpy, READY_LOG

    use_shm_profile()
    stop = REQUEST.install()
    nodes, recorder, bag, spinner = [], None, None, None
    try:
        stop.check()
        init_rclpy(_ros_args(args))
        camera, detector = nodes = _start_nodes(args)
        monitor = rclpy.create_node('hand_tracker_monitor')
        nodes.append(monitor)
        if args.record_bag:
            from .bag_run import start_bag_recording
            bag = start_bag_recording(monitor, args.record_bag,
                                      [detector.get_parameter('use_compressed')],
                                      compression=args.bag_compression)
        total = len(camera.source) if camera.source.kind != 'camera' and not args.loop else 0
        progress = ProgressLine(monitor, total)
        if args.record:
            recorder = Recorder(monitor, args.record,
                                args.fps or camera.source.native_fps or 30.0)
        spinner = BackgroundSpinner(nodes)
        stop.running()
        monitor.get_logger().info(READY_LOG)
        _watch(args, camera, detector, progress, stop)
        print(f'\n[hand-tracker] {detector.pipeline.stats.summary()}', file=sys.stderr)
    except StartupError as exc:
        print(f'hand-tracker: {exc}', file=sys.stderr)
        return 2
    except (Shutdown, ExternalShutdownException):
        pass
    finally:
        if spinner is not None:
            spinner.close()
        for node in nodes:
            node.destroy_node()
        if bag is not None:
            print(f'[hand-tracker] wrote {bag.close()} {bag.counts}', file=sys.stderr)
        if recorder is not None and recorder.close():
            print(f'[hand-tracker] wrote {args.record}', file=sys.stderr)
        rclpy.try_shutdown()
    return 0


def _run_node(command: str, ros_args: list[str]) -> int:
    """``hand-tracker detect`` / ``camera``: one node, spun until Ctrl-C, `ros_args` passed on."""
    use_shm_profile()
    if command == 'detect':
        from .detector_node import main as node_main
    else:
        from .camera_node import main as node_main
    return node_main(args=[sys.argv[0]] + list(ros_args))


def _parser() -> argparse.ArgumentParser:
    from .bags import COMPRESSIONS
    ap = argparse.ArgumentParser(prog='hand-tracker', description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='cmd', required=True)
    run = sub.add_parser('run', help='camera + detector + tracker in one process')
    run.add_argument('--source', default='0',
                     help='camera index, /dev/videoN, video file or folder')
    run.add_argument('--model', type=Path, help='model file (default: the shipped model)')
    run.add_argument('--params-file', type=Path, default=default_params_file())
    run.add_argument('--record', type=Path, help='write the annotated stream to this .mp4')
    run.add_argument('--fps', type=float, help='publishing rate for files/folders (Hz)')
    run.add_argument('--loop', action='store_true', help='loop a file or folder')
    run.add_argument('--duration', type=float, default=0.0, help='stop after this many seconds')
    run.add_argument('--no-tracking', action='store_true')
    run.add_argument('--bag-topic', help='image topic of a --source bag (Image or '
                     'CompressedImage; default: its only image topic)')
    run.add_argument('--bag-rate', type=float, default=1.0, help='replay speed of a bag: 1 = '
                     'recorded, 0 = as fast as the detector goes')
    run.add_argument('--record-bag', type=Path, help='write the images with detections, hands '
                     'and gestures to this bag (.mcap file, .db3, or a rosbag2 folder name)')
    run.add_argument('--bag-compression', default='zstd', choices=COMPRESSIONS,
                     help='MCAP chunk compression of --record-bag (default zstd; none: '
                     'uncompressed, larger but no CPU spent on it)')
    run.add_argument('--log-level', default='', help='ROS log level (debug, info, warn, ...)')
    for name, what in (('detect', 'the detector node'), ('camera', 'the camera node')):
        node = sub.add_parser(name, help=f'{what} alone; takes --ros-args ...',
                              description=f'{what} alone, as `ros2 run hand_tracker`; '
                                          'everything after the command goes to ROS')
        node.add_argument('ros_args', nargs='*', metavar='--ros-args ...',
                          help='ROS arguments, e.g. --ros-args -p source:=0')
    return ap


NODE_COMMANDS = ('detect', 'camera')


def main(argv: Optional[list[str]] = None) -> int:
    """Run a ``hand-tracker`` command and exit with its status (SIGINT/SIGTERM: ``run_main``)."""
    run_main(lambda: _main(argv))


def _main(argv: Optional[list[str]]) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in NODE_COMMANDS and not {'-h', '--help'} & set(argv[1:2]):
        # everything after the command is ROS's (argparse would take --ros-args for its own)
        return _run_node(argv[0], argv[1:])
    args = _parser().parse_args(argv)
    return _run(args)


if __name__ == '__main__':
    sys.exit(main())
