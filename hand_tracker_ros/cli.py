"""`hand-tracker`: the package's nodes without `ros2 launch` (pip-only machines).

  hand-tracker run --source 0|VIDEO|DIR|BAG [--model M] [--record out.mp4] [--params-file F]
      [--bag-topic T] [--bag-rate R] [--record-bag out.mcap]
      camera + hand_detector (+ tracker) in one process, same parameters as webcam.launch.py,
      a live progress line (fps, hands), optional recording of the annotated stream.
  hand-tracker detect [--ros-args ...]   the detector node alone (= ros2 run hand_tracker hand_detector)
  hand-tracker camera [--ros-args ...]   the camera node alone (= ros2 run hand_tracker camera)
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path
from typing import Optional

from .resources import default_params_file, fastdds_profile


PROFILE_VARIABLES = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')


def use_shm_profile() -> None:
    """Large-image-friendly Fast DDS settings unless the user chose their own. Fast DDS 2.x
    (Humble, Jazzy) reads FASTRTPS_DEFAULT_PROFILES_FILE, 3.x (Kilted, the wheels) FASTDDS_..."""
    if any(v in os.environ for v in PROFILE_VARIABLES) or not fastdds_profile().is_file():
        return
    var = PROFILE_VARIABLES[1] if os.environ.get('ROS_DISTRO') in ('humble', 'jazzy') \
        else PROFILE_VARIABLES[0]
    os.environ[var] = str(fastdds_profile())


def _run(args: argparse.Namespace) -> int:
    use_shm_profile()
    import cv2
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Detection2DArray

    from .bag_run import BagError, make_source_node, start_bag_recording
    from .detector_node import HandDetectorNode
    from .frame_source import SourceError
    from .image_conversion import image_to_rgb

    ros_args = ['--ros-args', '--params-file', str(args.params_file)]
    if args.log_level:
        ros_args += ['--log-level', args.log_level]
    rclpy.init(args=[sys.argv[0]] + ros_args)
    nodes = []
    writer: Optional[cv2.VideoWriter] = None
    recorder = None
    try:
        cam_over = [Parameter('source', value=str(args.source)), Parameter('loop', value=args.loop)]
        if args.fps is not None:
            cam_over.append(Parameter('fps', value=float(args.fps)))
        det_over = [Parameter('model_path', value=str(args.model))] if args.model else []
        if not (str(args.source).isdigit() or str(args.source).startswith('/dev/video')):
            # recorded input: let frames wait (up to 30) instead of dropping them, so a slow
            # start or a busy machine does not cut frames out of the recording
            det_over.append(Parameter('queue_size', value=30))
        if args.no_tracking:
            det_over.append(Parameter('track', value=False))
        try:
            camera = make_source_node(args, cam_over, det_over, lambda: detector)
        except (SourceError, BagError) as exc:
            print(f'hand-tracker: {exc}', file=sys.stderr)
            return 2
        detector = HandDetectorNode(parameter_overrides=det_over)
        if detector._detector is None:
            print('hand-tracker: no usable model (see the error above); pass --model PATH',
                  file=sys.stderr)
            return 2
        monitor = rclpy.create_node('hand_tracker_monitor')
        nodes = [camera, detector, monitor]
        state = {'n': 0, 'hands': 0, 't0': time.monotonic(), 'last': 0}

        def on_dets(msg: Detection2DArray) -> None:
            state['n'] += 1
            state['hands'] = len(msg.detections)
            state['last'] = time.monotonic()

        monitor.create_subscription(Detection2DArray, 'detections', on_dets, QoSProfile(depth=10))
        if args.record_bag:
            recorder = start_bag_recording(monitor, args.record_bag, det_over)
        if args.record:
            lock = threading.Lock()

            def on_vis(msg: Image) -> None:
                nonlocal writer
                rgb = image_to_rgb(msg.encoding, msg.height, msg.width, msg.step,
                                   msg.is_bigendian, msg.data)
                with lock:
                    if writer is None:
                        fps = args.fps or camera.source.native_fps or 30.0
                        writer = cv2.VideoWriter(str(args.record), cv2.VideoWriter_fourcc(*'mp4v'),
                                                 fps, (msg.width, msg.height))
                        if not writer.isOpened():
                            raise RuntimeError(f'cannot write video {args.record}')
                    writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

            monitor.create_subscription(Image, 'detections/image', on_vis, QoSProfile(depth=30))
        executor = SingleThreadedExecutor()  # see hand_tracker_ros/spin.py for why
        for n in nodes:
            executor.add_node(n)
        def spin_quietly() -> None:
            try:
                executor.spin()
            except ExternalShutdownException:
                pass

        spin = threading.Thread(target=spin_quietly, daemon=True)
        spin.start()
        deadline = time.monotonic() + args.duration if args.duration else None
        total = len(camera.source) if camera.source.kind != 'camera' and not args.loop else 0
        try:
            while rclpy.ok():
                time.sleep(0.25)
                el = time.monotonic() - state['t0']
                st = detector.pipeline.stats
                line = (f'\r[hand-tracker] frames {state["n"]}' + (f'/{total}' if total else '')
                        + f' | {st.outputs.rate():5.1f} fps | hands {state["hands"]} '
                        f'| dropped {st.dropped_stale} | {el:6.1f} s')
                print(line, end='', file=sys.stderr, flush=True)
                if deadline and time.monotonic() > deadline:
                    break
                if camera.finished.is_set() and detector.pipeline.pending() == 0 and \
                        time.monotonic() - state['last'] > 1.0:
                    break
        except KeyboardInterrupt:
            pass
        print(f'\n[hand-tracker] {detector.pipeline.stats.summary()}', file=sys.stderr)
        executor.shutdown(timeout_sec=2.0)
    except ExternalShutdownException:
        pass
    finally:
        for n in nodes:
            n.destroy_node()
        if recorder is not None:
            print(f'[hand-tracker] wrote {recorder.close()} {recorder.counts}', file=sys.stderr)
        if writer is not None:
            writer.release()
            print(f'[hand-tracker] wrote {args.record}', file=sys.stderr)
        rclpy.try_shutdown()
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ('detect', 'camera'):
        use_shm_profile()
        if argv[0] == 'detect':
            from .detector_node import main as node_main
        else:
            from .camera_node import main as node_main
        return node_main(args=[sys.argv[0]] + argv[1:])
    ap = argparse.ArgumentParser(prog='hand-tracker', description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='cmd', required=True)
    run = sub.add_parser('run', help='camera + detector + tracker in one process')
    run.add_argument('--source', default='0', help='camera index, /dev/videoN, video file or folder')
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
    run.add_argument('--log-level', default='', help='ROS log level (debug, info, warn, ...)')
    sub.add_parser('detect', help='the detector node alone; takes --ros-args')
    sub.add_parser('camera', help='the camera node alone; takes --ros-args')
    args = ap.parse_args(argv)
    return _run(args)


if __name__ == '__main__':
    sys.exit(main())
