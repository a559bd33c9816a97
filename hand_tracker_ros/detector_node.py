"""
`hand_detector` node: camera images in, hand detections, tracks and gestures out.

Thin wiring around the rclpy-free modules: image_conversion -> chain (SSD and palm proposals,
upright landmark crops, merge; :mod:`~hand_tracker_ros.chain`) -> tracking -> gestures ->
annotate, run by a :class:`~hand_tracker_ros.pipeline.FramePipeline` so that
inference never runs in the subscription callback and the newest frame wins.

Topics (relative names, so namespaces and remapping work):
  sub  image                sensor_msgs/Image             (use_compressed: false)
  sub  image/compressed     sensor_msgs/CompressedImage   (use_compressed: true)
  pub  detections           vision_msgs/Detection2DArray  one per processed image, stamp order
  pub  detections/image     sensor_msgs/Image             annotated, only while subscribed
  pub  hands                hand_tracker/TrackedHandArray (track: true): with keypoints,
                                                        presence and handedness
  pub  gestures             hand_tracker/GestureEvent     (track: true)
"""
from __future__ import annotations

import collections
import dataclasses
import sys
import threading
import time
from typing import Optional

from hand_tracker.msg import GestureEvent, TrackedHandArray
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data, QoSProfile
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CompressedImage, Image
from vision_msgs.msg import Detection2DArray

from . import image_conversion as ic
from . import messages
from . import ros_compat
from .annotate import draw_annotations, RecentGestures
from .backends import Detector, load_detector, ModelLoadError
from .chain import CHAIN_GROUPS, ChainResult, HandChain
from .detections import Detections
from .gestures import GestureParams, GestureRecognizer
from .memory import MemoryReport, trim as memory_trim
from .pipeline import FramePipeline
from .poses import PoseClassifier, PoseHolds, PoseParams
from .resources import default_model_path, DEFAULT_SCORE_THRESHOLD, model_score_threshold
from .shutdown import REQUEST
from .spin import spin_node
from .tracking import HandTracker, TrackerParams
from .vocabulary import HAND


def _float_range(lo: float, hi: float) -> list:
    return [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]


def _int_range(lo: int, hi: int) -> list:
    return [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]


class _Frame:
    """
    One camera message as it came off the wire (CDR bytes), deserialized on first use.

    The subscriptions are raw, so the executor thread only takes the bytes; the message is
    built in a worker, and never for a frame dropped as stale. Deserializing a 1280x720 rgb8
    Image costs ~2 ms here: at 120 Hz in the executor thread that starved the take itself, and
    the middleware lost frames before the node saw them (test_overload_drops_stale_frames).
    """

    def __init__(self, raw: bytes, compressed: bool) -> None:
        self.raw, self.compressed = raw, compressed
        self._msg = None

    @property
    def msg(self):
        """Return the Image / CompressedImage (raises on a truncated or corrupt message)."""
        if self._msg is None:
            self._msg = deserialize_message(self.raw, CompressedImage if self.compressed
                                            else Image)
        return self._msg

    def describe(self) -> str:
        """Stamp and frame_id for a log line, or why there are none."""
        try:
            h = self.msg.header
        except Exception as exc:  # noqa: BLE001 - the bytes are what is broken
            return f'{len(self.raw)} bytes that do not deserialize: {exc}'
        return f'stamp {h.stamp.sec}.{h.stamp.nanosec:09d}, frame_id {h.frame_id!r}'


class DetectorCore:
    """
    The detector's parameters, model, processing and outputs, for a Node or a LifecycleNode.

    A mixin: :class:`HandDetectorNode` (a plain node that starts processing at once) and
    :class:`~hand_tracker_ros.lifecycle_detector_node.LifecycleHandDetectorNode` (brought up
    in lifecycle steps) are this plus their own start-up and shut-down.
    """

    def _init_state(self) -> None:
        """Set the counters and the (empty) model slot; parameters are declared before."""
        self.drop_reasons: collections.Counter = collections.Counter()
        self._error_log_times: dict[str, float] = {}
        self._detector: Optional[Detector] = None
        self._last_model_error = ''
        self._detector_lock = threading.Lock()
        self._threshold_cache: tuple = ('', DEFAULT_SCORE_THRESHOLD)
        self._follow_model_threshold = True
        # memory upkeep (_log_memory): last trim, MB freed in all, the report (made on first use)
        self._trimmed_at, self._freed_mb = 0.0, 0.0
        self._memory: Optional[MemoryReport] = None
        self._memory_at = 0.0
        # Iron+; on Humble the parameter keeps -1 (see _threshold_in_force)
        ros_compat.add_pre_set_parameters_callback(self, self._resolve_score_threshold)
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def _make_outputs(self, create_publisher) -> list:
        """Create tracker, gestures, publishers (with `create_publisher`) and the pipeline."""
        p = lambda name: self.get_parameter(name).value  # noqa: E731
        self._tracking = bool(p('track'))
        self._tracker = HandTracker(self._group_params(TrackerParams, 'tracker'))
        self._gestures = GestureRecognizer(self._group_params(GestureParams, 'gestures'))
        self._recent_gestures = RecentGestures(keep_s=1.0)
        self._make_poses(self._group_params(PoseParams, 'poses'))
        self._make_chain()
        out_qos = QoSProfile(depth=10)
        self.pub_detections = create_publisher(Detection2DArray, 'detections', out_qos)
        self.pub_annotated = create_publisher(Image, 'detections/image', QoSProfile(depth=2))
        made = [self.pub_detections, self.pub_annotated]
        if self._tracking:
            self.pub_hands = create_publisher(TrackedHandArray, 'hands', out_qos)
            self.pub_gestures = create_publisher(GestureEvent, 'gestures', out_qos)
            made += [self.pub_hands, self.pub_gestures]
        self.pipeline = FramePipeline(self._process, self._finish,
                                      workers=p('num_workers'), queue_size=p('queue_size'),
                                      on_drop=lambda f: self._count_drop('stale'),
                                      on_error=self._on_error, name='hand_detector')
        return made

    def _make_poses(self, params: PoseParams) -> None:
        """Build the pose stage and its hold events (a bad thumb model: logged, the rule)."""
        try:
            self._poses = PoseClassifier(params)
        except (OSError, ValueError) as exc:
            self.get_logger().error(f'{exc}; the thumb is read by the rule until the file is '
                                    'there and the node restarted')
            self._poses = PoseClassifier(dataclasses.replace(params, thumb_classifier=False))
        self._pose_holds = PoseHolds(params)

    def _make_chain(self) -> None:
        """
        Build the chain from the ssd/palm/landmarks/merge parameters.

        A missing or corrupt palm / landmark model is logged with the file and the set-up
        command; the node keeps running and drops every frame (counted) rather than publish
        boxes the landmark check did not verify. landmarks.enable false is the SSD alone.
        """
        groups = {g: self._group_params(cls, g) for g, cls in CHAIN_GROUPS.items()}
        self._chain_error = ''
        try:
            self._chain = HandChain(groups['ssd'], groups['palm'], groups['landmarks'],
                                    groups['merge'],
                                    num_threads=self.get_parameter('num_threads').value)
        except ModelLoadError as exc:
            REQUEST.check()  # a signal that cut the model's import is a stop, not a bad file
            self._chain = None
            self._chain_error = str(exc)
            self.get_logger().error(
                f'{exc}. The node keeps running but drops every frame (counted) until the '
                'file is there and the node restarted; landmarks.enable:=false runs the SSD '
                'alone')
            return
        lm = groups['landmarks']
        self.get_logger().info(
            'chain: ' + ('SSD alone' if not lm.enable else
                         f'SSD{" + palm" if groups["palm"].enable else ""} proposals, '
                         f'landmarks {self._chain.landmarks.model_path.name}, operating '
                         f'threshold {groups["merge"].score_threshold}'))

    def _subscribe(self) -> None:
        """Subscribe to the camera and start the statistics timer."""
        # Sensor-data QoS (best effort, shallow) for the camera; overridable with the standard
        # qos_overrides.<topic>.subscription.* parameters.
        # The image callback only queues the frame (inference runs in the pipeline's workers);
        # a model reload (parameter service) pauses it for the reload's duration.
        p = lambda name: self.get_parameter(name).value  # noqa: E731
        qos_overrides = QoSOverridingOptions.with_default_policies()
        # frames the middleware lost before this node saw them (best effort: the reader's
        # history overflowed, or a shared-memory buffer was reused): counted, never silent
        events = ros_compat.subscription_event_callbacks(message_lost=self._on_message_lost)
        # the history holds at least queue_size frames: a burst (a bag replayed while the
        # process was busy) would otherwise overwrite frames the queue has room for, uncounted
        image_qos = QoSProfile(history=qos_profile_sensor_data.history,
                               depth=max(qos_profile_sensor_data.depth, p('queue_size')),
                               reliability=qos_profile_sensor_data.reliability,
                               durability=qos_profile_sensor_data.durability)
        if p('use_compressed'):
            self.sub = self.create_subscription(
                CompressedImage, 'image/compressed', self._on_compressed,
                image_qos, qos_overriding_options=qos_overrides,
                event_callbacks=events, raw=True)
        else:
            self.sub = self.create_subscription(
                Image, 'image', self._on_image, image_qos,
                qos_overriding_options=qos_overrides, event_callbacks=events, raw=True)
        self._last_input = time.monotonic()
        self._warned_silent = False
        self.stats_timer = self.create_timer(p('stats_period'), self._log_stats)

    # ------------------------------------------------------------------ parameters
    def _declare_parameters(self) -> None:
        def declare(name, value, description, read_only=False, **ranges):
            self.declare_parameter(name, value, ParameterDescriptor(
                description=description, read_only=read_only, **ranges))

        declare('model_path', '', 'TFLite (.tflite) or TF OD API frozen graph (.pb); empty = the '
                'shipped model. Setting it at run time loads the new model (rejected if invalid)')
        declare('label_map_path', '', 'label_map.pbtxt; empty = the one beside the model')
        declare('score_threshold', -1.0, "minimum detection score [0, 1]; -1 = the model's "
                'calibrated threshold (score_threshold in model_info.yaml beside the model, else '
                f'{DEFAULT_SCORE_THRESHOLD}). Reads back as the threshold in force',
                floating_point_range=_float_range(-1.0, 1.0))
        declare('max_detections', 10, 'maximum hands per image', integer_range=_int_range(1, 100))
        declare('num_workers', 1, 'inference threads (frames processed in parallel)',
                read_only=True, integer_range=_int_range(1, 8))
        declare('num_threads', 2, 'CPU threads per inference (TFLite/TF intra-op)',
                read_only=True, integer_range=_int_range(1, 64))
        declare('queue_size', 1, 'frames waiting for a worker; older ones are dropped (counted); '
                "the image subscription's history keeps at least as many",
                read_only=True, integer_range=_int_range(1, 30))
        declare('use_compressed', False,
                'subscribe image/compressed (CompressedImage) instead of image',
                read_only=True)
        declare('track', True,
                'run the tracker and gesture recognizer, publish hands and gestures',
                read_only=True)
        declare('stats_period', 5.0, 'seconds between statistics log lines', read_only=True,
                floating_point_range=_float_range(0.1, 3600.0))
        declare('memory_report_period', 0.0, 'seconds between memory log lines (RSS, glibc heap; '
                'checked with the statistics); 0 = off', read_only=True,
                floating_point_range=_float_range(0.0, 86400.0))
        declare('malloc_trim_period', 60.0, "seconds between returning glibc's free arena pages "
                'to the system (malloc_trim; RSS otherwise creeps up with fragmentation, see '
                'README); 0 = never', read_only=True,
                floating_point_range=_float_range(0.0, 86400.0))
        declare('memory_trace', False, 'add Python heap growth by component to the memory lines '
                '(tracemalloc: slower; for finding leaks)', read_only=True)
        declare('input_timeout', 3.0, 'warn when no image arrived for this many seconds',
                floating_point_range=_float_range(0.1, 3600.0))
        groups = [('tracker', TrackerParams, False), ('gestures', GestureParams, False),
                  ('poses', PoseParams, False)]
        groups += [(g, cls, True) for g, cls in CHAIN_GROUPS.items()]
        for group, cls, read_only in groups:
            for f in dataclasses.fields(cls):
                default = f.default
                meta = f.metadata or {}
                ranges = {}
                if 'range' in meta:
                    lo, hi = meta['range']
                    if isinstance(default, bool):
                        pass
                    elif isinstance(default, int):
                        ranges['integer_range'] = _int_range(lo, hi)
                    else:
                        ranges['floating_point_range'] = _float_range(lo, hi)
                declare(f'{group}.{f.name}', default, meta.get('description', f'{group} {f.name}'),
                        read_only=read_only, **ranges)

    # score_threshold: -1 (the YAML default) follows the model's calibrated threshold; the
    # parameter then holds that value, so `ros2 param get` shows the threshold in force.
    def _model_threshold(self, path: str) -> float:
        """Return the calibrated threshold of the model at `path` ('' = shipped), else default."""
        path = path or str(default_model_path())
        try:
            value = model_score_threshold(path)
        except ValueError as exc:
            self.get_logger().error(f'{exc}; using score_threshold {DEFAULT_SCORE_THRESHOLD}')
            return DEFAULT_SCORE_THRESHOLD
        return DEFAULT_SCORE_THRESHOLD if value is None else value

    def _threshold_in_force(self, detector: Detector) -> float:
        """
        Return the score threshold for `detector`: the parameter, or the model's when it is < 0.

        On Iron and newer the pre-set hook replaces -1 by the model's value, so the parameter
        already holds it; Humble's rclpy has no such hook and keeps -1 in the parameter.
        """
        value = self.get_parameter('score_threshold').value
        if value >= 0:
            return value
        if self._threshold_cache[0] != detector.model_path:
            self._threshold_cache = (detector.model_path,
                                     self._model_threshold(detector.model_path))
        return self._threshold_cache[1]

    def _init_score_threshold(self) -> None:
        self._follow_model_threshold = self.get_parameter('score_threshold').value < 0
        if self._follow_model_threshold:
            value = self._model_threshold(self.get_parameter('model_path').value)
            self.set_parameters([Parameter('score_threshold', Parameter.Type.DOUBLE, value)])
        self.get_logger().info(
            f'score_threshold {self.get_parameter("score_threshold").value:.3f} ('
            f'{"the model" if self._follow_model_threshold else "set by the user"})')

    def _resolve_score_threshold(self, params: list) -> list:
        """
        Pre-set hook: score_threshold -1 becomes the model's threshold.

        A new model_path brings its own threshold unless the user set one.
        """
        names = {p.name: p for p in params}
        model = names['model_path'].value if 'model_path' in names else \
            self.get_parameter('model_path').value
        user = names.get('score_threshold')
        if user is not None and not (isinstance(user.value, float) and -1 <= user.value <= 1):
            return params  # rejected by the descriptor / type check, nothing changes
        if user is not None:
            self._follow_model_threshold = user.value < 0
        out = [p for p in params if p.name != 'score_threshold' or p.value >= 0]
        if self._follow_model_threshold and ('model_path' in names or user is not None):
            out.append(Parameter('score_threshold', Parameter.Type.DOUBLE,
                                 self._model_threshold(model)))
        return out

    def _group_params(self, cls, group: str, overrides: Optional[dict] = None):
        values = {f.name: self.get_parameter(f'{group}.{f.name}').value
                  for f in dataclasses.fields(cls)}
        values.update(overrides or {})
        return cls(**values)

    @property
    def detector(self) -> Optional[Detector]:
        """Return the model in use (read-only; None while no model could be loaded)."""
        with self._detector_lock:
            return self._detector

    @property
    def tracker_params(self) -> TrackerParams:
        """Return the tracker settings in use (read-only: set the ``tracker.*`` parameters)."""
        return self._tracker.params

    @property
    def gesture_params(self) -> GestureParams:
        """Return the gesture settings in use (read-only: set the ``gestures.*`` parameters)."""
        return self._gestures.params

    def _on_set_parameters(self, params) -> SetParametersResult:
        """
        Validate the whole batch (new tracker/gesture settings, the new model), then commit.

        A rejected batch changes nothing: no setting and no model is applied unless all are
        valid.
        """
        changes = {p.name: p.value for p in params}
        try:
            groups = {}
            for group, cls in (('tracker', TrackerParams), ('gestures', GestureParams),
                               ('poses', PoseParams)):
                sub = {k.split('.', 1)[1]: v for k, v in changes.items()
                       if k.startswith(group + '.')}
                if sub:
                    groups[group] = self._group_params(cls, group, sub)  # validates
        except (ValueError, TypeError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        if 'poses' in groups and groups['poses'].thumb_classifier and self._poses.thumb is None:
            return SetParametersResult(successful=False, reason='poses.thumb_classifier: the '
                                       'thumb model did not load (see the log)')
        detector = None
        if 'model_path' in changes:
            label_map = changes.get('label_map_path',
                                    self.get_parameter('label_map_path').value)
            detector = self._try_load_model(changes['model_path'], label_map, at_startup=False)
            if detector is None:
                return SetParametersResult(
                    successful=False, reason=f'cannot load model {changes["model_path"]!r}: '
                                             f'{self._last_model_error}')
        if 'tracker' in groups:
            self._tracker.params = groups['tracker']
        if 'gestures' in groups:
            self._gestures.params = groups['gestures']
        if 'poses' in groups:
            self._poses.params = self._pose_holds.params = groups['poses']
        if detector is not None:
            self._use_model(detector)
        return SetParametersResult(successful=True)

    def _load_model(self, path: str, at_startup: bool) -> bool:
        """Load the model at `path` (empty: the shipped one) and use it; False if it failed."""
        detector = self._try_load_model(path, self.get_parameter('label_map_path').value,
                                        at_startup)
        if detector is not None:
            self._use_model(detector)
        return detector is not None

    def _try_load_model(self, path: str, label_map_path: str,
                        at_startup: bool) -> Optional[Detector]:
        """Return the model at `path` (empty: the shipped one), or None after logging why not."""
        path = path or str(default_model_path())
        try:
            detector = load_detector(path, label_map_path or None,
                                     num_threads=self.get_parameter('num_threads').value)
        except ModelLoadError as exc:
            REQUEST.check()  # a signal that cut the model's import is a stop, not a bad file
            self._last_model_error = str(exc)
            self.get_logger().error(
                f'{exc}. The node keeps running without a model; frames are dropped and counted '
                f'until a valid model is set: ros2 param set {self.get_fully_qualified_name()} '
                f'model_path /path/to/model.tflite' if at_startup else str(exc))
            return None
        self.get_logger().info(f'loaded {detector.name} model {path} (labels {detector.labels})')
        return detector

    def _use_model(self, detector: Detector) -> None:
        with self._detector_lock:
            self._detector = detector

    # ------------------------------------------------------------------ input
    def _on_image(self, raw: bytes) -> None:
        self._last_input = time.monotonic()
        self.pipeline.submit(_Frame(raw, False))

    def _on_compressed(self, raw: bytes) -> None:
        self._last_input = time.monotonic()
        self.pipeline.submit(_Frame(raw, True))

    def _count_drop(self, reason: str) -> None:
        self.drop_reasons[reason] += 1

    def _on_message_lost(self, info) -> None:
        self.drop_reasons['lost_in_transport'] += info.total_count_change
        self.get_logger().warning(
            f'{info.total_count_change} image(s) lost by the middleware before they reached '
            f'this node ({info.total_count} in all): it takes frames slower than they come',
            throttle_duration_sec=5.0)

    def _on_error(self, frame: _Frame, exc: BaseException) -> None:
        reason = type(exc).__name__
        self.drop_reasons[reason] += 1
        # rate-limited per distinct message: a camera sending the same bad frame 30 times a
        # second gives one line every few seconds, a different problem gets its own line
        now = time.monotonic()
        text = str(exc)
        if now - self._error_log_times.get(text, -1e9) < 5.0:
            return
        self._error_log_times[text] = now
        if len(self._error_log_times) > 256:
            self._error_log_times.clear()
        self.get_logger().error(
            f'dropped image ({frame.describe()}): {text} [{reason} x{self.drop_reasons[reason]}]')

    # ------------------------------------------------------------------ worker side
    def _process(self, frame: _Frame):
        m = frame.msg
        if frame.compressed:
            rgb = ic.compressed_to_rgb(m.format, m.data)
        else:
            rgb = ic.image_to_rgb(m.encoding, m.height, m.width, m.step, m.is_bigendian, m.data)
        with self._detector_lock:
            detector = self._detector
        if detector is None:
            raise ModelLoadError(f'no model loaded ({self._last_model_error})')
        if self._chain is None:
            raise ModelLoadError(f'the landmark chain is not loaded ({self._chain_error})')
        result = self._chain.process(rgb, detector, self._threshold_in_force(detector),
                                     self.get_parameter('max_detections').value)
        return rgb, result, detector.labels

    # ------------------------------------------------------------------ ordered output
    def _finish(self, frame: _Frame, result) -> None:
        rgb, chain_result, labels = result
        chain_result: ChainResult
        hands = chain_result.hands
        # frame order: the next frames' landmark crops
        self._chain.remember(chain_result)
        dets = hands.detections(next((k for k, v in labels.items() if v == HAND), 1))
        header = frame.msg.header
        tracks, events, shown = [], [], []
        poses = self._poses(hands.keypoints) if self._poses.params.enable else None
        if self._tracking:
            tracks, events, shown = self._track(dets, header.stamp, rgb.shape, poses)
        self.pub_detections.publish(messages.detections_to_msg(
            header, dets, labels, messages.track_ids_by_detection(tracks, len(dets))))
        if self._tracking:
            self.pub_hands.publish(messages.tracks_to_msg(
                header, tracks, rgb.shape[1], rgb.shape[0], hands,
                self._chain.lm_params.min_handedness, poses))
            for ev in events:
                self.pub_gestures.publish(messages.gesture_to_msg(header, ev))
                self.get_logger().info(f'gesture {ev.name} by hand {ev.hand_id}')
        if self.pub_annotated.get_subscription_count() > 0:
            vis = draw_annotations(rgb, detections=dets,
                                   tracks=tracks if self._tracking else None,
                                   gestures=shown if self._tracking else None, labels=labels,
                                   keypoints=hands.keypoints,
                                   poses=None if poses is None else [
                                       f'{n} {c:.2f}' if p else '' for n, c, p in zip(
                                           poses.names(), poses.confidence, poses.pose)],
                                   status=f'{self.pipeline.stats.outputs.rate():.1f} fps, '
                                          f'{len(dets)} hand{"" if len(dets) == 1 else "s"}')
            self.pub_annotated.publish(messages.rgb_to_image_msg(header, vis))

    def _track(self, dets: Detections, stamp, shape: tuple[int, ...], poses=None):
        """(tracks, new gesture events, gestures to show) of this frame."""
        t = messages.stamp_to_sec(stamp)
        tracks = self._tracker.update(dets, t)
        events = self._gestures.update(tracks, t, (shape[1], shape[0]))
        if poses is not None:
            events += self._pose_holds.update(tracks, poses, t)
        return tracks, events, self._recent_gestures.update(events, t)

    # ------------------------------------------------------------------ statistics
    def _log_stats(self) -> None:
        self._log_memory()
        silent = time.monotonic() - self._last_input
        timeout = self.get_parameter('input_timeout').value
        if silent > timeout:
            if not self._warned_silent:
                self.get_logger().warning(
                    f'no image on {self.sub.topic_name} for {silent:.1f} s: is the camera '
                    f'running and publishing there (ros2 topic hz {self.sub.topic_name})?')
                self._warned_silent = True
            return
        self._warned_silent = False
        drops = ', '.join(f'{k} {v}' for k, v in sorted(self.drop_reasons.items())) or 'none'
        self.get_logger().info(f'{self.pipeline.stats.summary()}; drops by reason: {drops}')

    def _log_memory(self) -> None:
        """Every malloc_trim_period trim glibc's heap, every memory_report_period log memory."""
        now = time.monotonic()
        trim_period = self.get_parameter('malloc_trim_period').value
        if trim_period > 0 and now - self._trimmed_at >= trim_period - 1e-3:
            self._trimmed_at = now
            self._freed_mb += memory_trim() or 0.0
        period = self.get_parameter('memory_report_period').value
        if period <= 0:
            return
        if self._memory is None:
            self._memory = MemoryReport(trace=self.get_parameter('memory_trace').value)
            self._memory_at = now - period
        if now - self._memory_at >= period - 1e-3:
            self._memory_at = now
            trimmed = f'; malloc_trim freed {self._freed_mb:.1f} MB in all' if trim_period > 0 \
                else ''
            self.get_logger().info(self._memory.line() + trimmed)


class HandDetectorNode(DetectorCore, Node):
    """Runs the hand detector (and tracker) on every newest camera frame."""

    def __init__(self, **kwargs):
        super().__init__('hand_detector', **kwargs)
        self._declare_parameters()
        self._init_state()
        self._load_model(self.get_parameter('model_path').value, at_startup=True)
        self._init_score_threshold()
        self._make_outputs(self.create_publisher)
        self._subscribe()
        p = lambda name: self.get_parameter(name).value  # noqa: E731
        self.get_logger().info(
            f'listening on {self.sub.topic_name} '
            f'({"CompressedImage" if p("use_compressed") else "Image"}), '
            f'model {self.detector.model_path if self.detector else "NONE"}, '
            f'{p("num_workers")} worker(s), tracking {"on" if self._tracking else "off"}')

    def destroy_node(self) -> None:
        """Stop the pipeline's workers, then destroy the node (also a half-constructed one)."""
        pipeline = getattr(self, 'pipeline', None)  # absent when SIGTERM cut __init__ short
        if pipeline is not None:
            pipeline.close()
        super().destroy_node()


def main(args=None) -> int:
    return spin_node(HandDetectorNode, args)


if __name__ == '__main__':
    sys.exit(main())
