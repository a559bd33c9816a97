"""
The honest train / val / test parts of every data set, as ``config/data_splits.yaml`` says.

Images go into parts by *group* (an EgoHands video, a webcam recording session, a Roboflow
source photo), never one by one, and every group is in exactly one part: near-duplicates never
sit on both sides of a split. The YAML file is the one place the split is defined (its header
explains the rules); :func:`load_part` returns the samples of one (source, part) and
:func:`parts_table` the human-readable table of ``docs/DATA_SPLITS.md``.
"""
from __future__ import annotations

from collections.abc import Sequence
import hashlib
from pathlib import Path
import re
from typing import Callable, Optional

from hand_tracker_training.datasets.egohands import load_egohands
from hand_tracker_training.datasets.sample import Sample
from hand_tracker_training.datasets.yolo import load_yolo
import yaml

#: The parts, in the order they are reported. Model selection never reads ``test``.
PARTS = ('train', 'val', 'test')

#: The project's split file.
DATA_SPLITS = Path(__file__).resolve().parents[2] / 'config' / 'data_splits.yaml'


def session_of(path: str | Path) -> str:
    """
    Return a webcam recording session: the file name without its frame number and extension.

    ``3_1528499009.07_pic00017.jpg`` -> ``3_1528499009.07_pic``.
    """
    return re.sub(r'_?\d+$', '', Path(path).stem) or Path(path).stem


def photo_of(path: str | Path) -> str:
    """
    Return a Roboflow export's source photo: the file name before ``.rf.``.

    Augmented copies and re-exports of one photo share it.
    """
    return Path(path).name.split('.rf.')[0]


#: Group of a sample, by the ``group`` rule of a source.
GROUP_RULES: dict[str, Callable[[Sample], str]] = {
    'video': lambda s: s.source,
    'session': lambda s: session_of(s.image_path),
    'photo': lambda s: photo_of(s.image_path),
}


def read_data_splits(path: str | Path = DATA_SPLITS, root: Optional[str | Path] = None,
                     fold: Optional[str] = None) -> dict:
    """
    Read the split file as a dict, with ``root`` resolved (relative to the file, or `root`).

    `fold` (a group named in a source's ``folds``, or ``'all'``) replaces the parts of every
    source that has ``folds`` (EgoHands: leave one video out): that group is the test part, the
    other ``folds`` groups the train part, and there is no val part; ``'all'`` puts every one
    into train. Sources without ``folds`` keep their parts.

    Raises FileNotFoundError / ValueError for a missing or malformed file (unknown format,
    group rule, part or fold).
    """
    path = Path(path)
    config = yaml.safe_load(path.read_text(encoding='utf-8')) or {}
    sources = config.get('sources')
    if not isinstance(sources, dict) or not sources:
        raise ValueError(f'{path}: no "sources" mapping')
    for name, spec in sources.items():
        if spec.get('format') not in ('egohands', 'yolo') or spec.get('group') not in GROUP_RULES:
            raise ValueError(f'{path}: source {name}: format must be egohands or yolo and group '
                             f'one of {", ".join(GROUP_RULES)}')
        unknown = set(spec.get('parts', {})) - set(PARTS)
        if unknown or not spec.get('parts'):
            raise ValueError(f'{path}: source {name}: parts must be some of {PARTS}')
    config['root'] = Path(root) if root is not None else (path.parent / config.get('root', '.'))
    if fold:
        apply_fold(config, fold)
    return config


def fold_names(config: dict) -> list[str]:
    """Every fold of the split file: the groups in any source's ``folds``."""
    return [g for spec in config['sources'].values() for g in spec.get('folds', [])]


def apply_fold(config: dict, fold: str) -> None:
    """Replace the parts of the sources with ``folds`` by leave-`fold`-out (read_data_splits)."""
    names = fold_names(config)
    if fold != 'all' and fold not in names:
        raise ValueError(f'unknown fold {fold!r}: one of {", ".join(names + ["all"])}')
    for spec in config['sources'].values():
        groups = list(spec.get('folds', []))
        if not groups:
            continue
        held = [g for g in groups if g == fold]
        spec['parts'] = {'train': {'groups': [g for g in groups if g != fold]}}
        if held:
            spec['parts']['test'] = {'groups': held}


def _stable_fraction(text: str) -> float:
    """Return a fraction in [0, 1) from the sha1 of `text` (the same on every machine and run)."""
    return int(hashlib.sha1(text.encode('utf-8')).hexdigest()[:8], 16) / 2 ** 32


def _read_source(name: str, spec: dict, root: Path) -> list[Sample]:
    """Every sample of a source (the ``read`` splits or videos), ``dataset`` = `name`."""
    if spec['format'] == 'egohands':
        samples = load_egohands(root / spec['path'], spec.get('read'), progress=False)
    else:
        samples = load_yolo(root / spec['path'], spec.get('read'), progress=False)
    for sample in samples:
        sample.dataset = name
    return samples


def _group_homes(samples: Sequence[Sample], rule: Callable[[Sample], str]) -> dict[str, str]:
    """{group: the split folder (last part of ``source``) it was first read from}."""
    homes: dict[str, str] = {}
    for sample in samples:
        homes.setdefault(rule(sample), sample.source.rsplit('/', 1)[-1])
    return homes


def _selects(selector: dict, group: str, home: str) -> bool:
    groups, splits = selector.get('groups'), selector.get('splits')
    low, high = selector.get('hash', (0.0, 1.0))
    return ((groups is None or groups == 'rest' or group in groups)
            and (splits is None or home in splits)
            and low <= _stable_fraction(group) < high)


def assign_groups(name: str, spec: dict, homes: dict[str, str]) -> dict[str, str]:
    """
    Return {group: part} of a source.

    Raises ValueError for a group that two parts select, a listed group that does not exist, or
    a group no part takes.
    """
    parts = spec['parts']
    listed = [g for sel in parts.values() if isinstance(sel.get('groups'), list)
              for g in sel['groups']]
    missing = sorted(set(listed) - set(homes))
    if missing:
        raise ValueError(f'{name}: no images of group(s) {", ".join(missing)}')
    assigned: dict[str, str] = {}
    for rest in (False, True):  # named selections first, then `rest`
        for part, selector in parts.items():
            if (selector.get('groups') == 'rest') != rest:
                continue
            for group, home in homes.items():
                if not _selects(selector, group, home) or (rest and group in assigned):
                    continue
                if group in assigned:
                    raise ValueError(f'{name}: group {group} in both {assigned[group]} and '
                                     f'{part}')
                assigned[group] = part
    unassigned = sorted(set(homes) - set(assigned))
    if unassigned:
        raise ValueError(f'{name}: group(s) in no part: {", ".join(unassigned[:8])}')
    return assigned


def load_parts(source: str, config: Optional[dict] = None) -> dict[str, list[Sample]]:
    """``{part: samples}`` of one source of the split file (every part, possibly empty)."""
    config = config if config is not None else read_data_splits()
    spec = config['sources'].get(source)
    if spec is None:
        raise ValueError(f'no source {source!r} in the data splits (have: '
                         f'{", ".join(config["sources"])})')
    samples = _read_source(source, spec, Path(config['root']))
    rule = GROUP_RULES[spec['group']]
    part_of = assign_groups(source, spec, _group_homes(samples, rule))
    parts: dict[str, list[Sample]] = {part: [] for part in PARTS}
    for sample in samples:
        parts[part_of[rule(sample)]].append(sample)
    return parts


def load_part(source: str, part: str, config: Optional[dict] = None) -> list[Sample]:
    """
    Load the samples of `part` (``train``, ``val`` or ``test``) of `source`.

    `source` is a name in ``config/data_splits.yaml``, or in `config` as
    :func:`read_data_splits` returns it.
    """
    if part not in PARTS:
        raise ValueError(f'part must be one of {PARTS}, got {part!r}')
    return load_parts(source, config)[part]


def parts_table(config: Optional[dict] = None) -> str:
    """
    Return a Markdown table of images / hands / groups per source and part.

    It is the table of docs/DATA_SPLITS.md.
    """
    config = config if config is not None else read_data_splits()
    lines = ['| source | licence | unit | ' + ' | '.join(PARTS) + ' |',
             '|---|---|---|' + '---:|' * len(PARTS)]
    for name, spec in config['sources'].items():
        parts = load_parts(name, config)
        rule = GROUP_RULES[spec['group']]
        cells = [f'{len(p)} img, {sum(len(s.boxes) for s in p)} hands, '
                 f'{len({rule(s) for s in p})} {spec["group"]}s' for p in parts.values()]
        lines.append(f'| {name} | {spec.get("licence", "")} | {spec["group"]} | '
                     + ' | '.join(cells) + ' |')
    return '\n'.join(lines)
