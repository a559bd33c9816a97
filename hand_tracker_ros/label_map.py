"""
Read and write TF Object Detection API label maps (``label_map.pbtxt``).

A label map is the protobuf text format of the OD API's ``StringIntLabelMap`` message::

    item { id: 1 name: 'hand' }
    item { id: 2 name: 'face' display_name: 'Face' }

It is parsed with protobuf's own text-format parser against the OD API's message definition
(same field names and numbers), so comments, either quote style and field order all work, and
fields this package does not use (``keypoints``, ``frequency``, ...) are skipped.
"""
from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral
from pathlib import Path
import re

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format


def _label_map_class():
    """Return the ``object_detection.protos.StringIntLabelMap`` class (the fields used here)."""
    fdp = descriptor_pb2.FileDescriptorProto(
        name='object_detection/protos/string_int_label_map.proto',
        package='object_detection.protos', syntax='proto2')
    item = fdp.message_type.add(name='StringIntLabelMapItem')
    optional = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    for name, number, ftype in (('name', 1, descriptor_pb2.FieldDescriptorProto.TYPE_STRING),
                                ('id', 2, descriptor_pb2.FieldDescriptorProto.TYPE_INT32),
                                ('display_name', 3,
                                 descriptor_pb2.FieldDescriptorProto.TYPE_STRING)):
        item.field.add(name=name, number=number, type=ftype, label=optional)
    label_map = fdp.message_type.add(name='StringIntLabelMap')
    label_map.field.add(name='item', number=1,
                        label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
                        type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                        type_name='.object_detection.protos.StringIntLabelMapItem')
    pool = descriptor_pool.DescriptorPool()  # private: no clash with an installed OD API
    pool.Add(fdp)
    descriptor = pool.FindMessageTypeByName('object_detection.protos.StringIntLabelMap')
    get_class = getattr(message_factory, 'GetMessageClass', None)  # protobuf >= 3.20
    if get_class is None:  # Ubuntu 22.04's python3-protobuf 3.12
        return message_factory.MessageFactory(pool).GetPrototype(descriptor)
    return get_class(descriptor)


_StringIntLabelMap = _label_map_class()


def read_label_map(path: str | Path) -> dict[int, str]:
    """
    ``{id: name}`` of the label map at `path` (``name``, else ``display_name``).

    Raises FileNotFoundError for a missing file and ValueError naming the file (and the line for
    syntax errors) for a malformed one: bad syntax, an item without an id >= 1 or without a
    name, a duplicate id, or no items at all.
    """
    path = Path(path)
    text = path.read_text(encoding='utf-8')
    msg = _StringIntLabelMap()
    try:
        text_format.Parse(text, msg, allow_unknown_field=True)
    except text_format.ParseError as exc:
        where = f'line {exc.GetLine()}, column {exc.GetColumn()}: ' if exc.GetLine() else ''
        reason = re.sub(r'^\d+:\d+ : ', '', str(exc))
        raise ValueError(f'{path}: {where}not a valid label map: {reason}') from None
    labels: dict[int, str] = {}
    for k, item in enumerate(msg.item, 1):
        name = item.name or item.display_name
        if not item.HasField('id') or item.id < 1:
            raise ValueError(f'{path}: item {k} ({name or "unnamed"}) needs an id >= 1 '
                             f'(0 is the background class)')
        if not name:
            raise ValueError(f'{path}: item {k} (id {item.id}) has no name or display_name')
        if item.id in labels:
            raise ValueError(f'{path}: item {k}: duplicate id {item.id} '
                             f'({labels[item.id]!r} and {name!r})')
        labels[item.id] = name
    if not labels:
        raise ValueError(f'{path}: the label map has no items')
    return labels


def write_label_map(path: str | Path, labels: Mapping[int, str]) -> Path:
    """
    Write `labels` (``{id: name}``, ids >= 1) as an OD API ``label_map.pbtxt``.

    Returns the path. Raises ValueError for an empty map, a non-positive id or an empty name.
    """
    if not labels:
        raise ValueError('write_label_map: no labels')
    msg = _StringIntLabelMap()
    for label_id, name in sorted(labels.items()):
        if isinstance(label_id, bool) or not isinstance(label_id, Integral) or label_id < 1:
            raise ValueError(f'write_label_map: id {label_id!r} must be an int >= 1')
        if not isinstance(name, str) or not name:
            raise ValueError(f'write_label_map: id {label_id} needs a non-empty name, '
                             f'got {name!r}')
        msg.item.add(id=int(label_id), name=name)
    path = Path(path)
    path.write_text(text_format.MessageToString(msg), encoding='utf-8')
    return path
