"""Download and unzip the full EgoHands (``hand-tracker-dataset download``)."""
from __future__ import annotations

from collections.abc import Sequence
import hashlib
from pathlib import Path
from typing import Optional
import urllib.request
import zipfile

from hand_tracker_training.datasets.egohands import EGOHANDS_VIDEOS
from tqdm import tqdm

EGOHANDS_URL = 'http://vision.soic.indiana.edu/egohands_files/egohands_data.zip'
#: The Internet Archive's copy of the same file, tried when the official server fails.
EGOHANDS_ARCHIVE_URL = 'http://web.archive.org/web/20200713164330id_/' + EGOHANDS_URL


class DownloadError(OSError):
    """The data set could not be downloaded or its archive is not the expected one."""


def _fetch(url: str, part: Path, timeout: float, progress: bool) -> None:
    """Download `url` into `part`, resuming a partial file with an HTTP range request."""
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={'Range': f'bytes={have}-'} if have else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if response.headers.get_content_type() == 'text/html':
            raise DownloadError(f'the server answered with a web page, not the archive '
                                f'(moved? final address {response.geturl()})')
        resumed = have > 0 and getattr(response, 'status', None) == 206
        length = response.headers.get('Content-Length')
        total = (int(length) + (have if resumed else 0)) if length else None
        with open(part, 'ab' if resumed else 'wb') as out, tqdm(
                total=total, initial=have if resumed else 0, unit='B', unit_scale=True,
                unit_divisor=1024, desc=Path(url).name, disable=not progress) as bar:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                bar.update(len(chunk))
    size = part.stat().st_size
    if total is not None and size != total:
        raise DownloadError(f'incomplete download: {size} of {total} bytes (run again to resume)')


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _egohands_root_in(dest: Path) -> Optional[Path]:
    """
    Find the folder holding ``_LABELLED_SAMPLES``.

    It is `dest` or one of its sub-folders; None when there is none.
    """
    if not dest.is_dir():
        return None
    return next((f.parent for f in (dest / '_LABELLED_SAMPLES', *dest.glob('*/_LABELLED_SAMPLES'))
                 if f.is_dir()), None)


def download_egohands(dest: str | Path, urls: Sequence[str] = (EGOHANDS_URL, EGOHANDS_ARCHIVE_URL),
                      sha256: Optional[str] = None, timeout: float = 30.0,
                      progress: bool = True) -> Path:
    """
    Download ``egohands_data.zip`` (1.3 GB) into `dest`, check it and unzip it there.

    The URLs are tried in order; a partial ``egohands_data.zip.part`` is resumed. The archive
    must have the length the server announced and be a zip whose every member passes its CRC
    on extraction; its size and sha256 are printed so a run can be pinned with `sha256` (no
    official checksum is published). Does nothing when `dest` already holds the 48 videos.
    Returns the data set root (the folder of ``_LABELLED_SAMPLES``, for :func:`load_egohands`).
    Raises :class:`DownloadError` naming every URL and its failure.
    """
    dest = Path(dest)
    root = _egohands_root_in(dest)
    if root is not None and all((root / '_LABELLED_SAMPLES' / v / 'polygons.mat').is_file()
                                for v in EGOHANDS_VIDEOS):
        return root
    dest.mkdir(parents=True, exist_ok=True)
    archive, part = dest / 'egohands_data.zip', dest / 'egohands_data.zip.part'
    if not archive.is_file():
        errors = []
        for url in urls:
            try:
                _fetch(url, part, timeout, progress)
                break
            except (OSError, ValueError) as exc:  # URLError, HTTPError, timeouts, DownloadError
                errors.append(f'{url}: {exc}')
        else:
            raise DownloadError('could not download EgoHands:\n  ' + '\n  '.join(errors)
                                + f'\nDownload egohands_data.zip by hand into {dest} and run '
                                  f'again, or give another --url.')
        if not zipfile.is_zipfile(part):
            part.unlink()
            raise DownloadError(f'the downloaded file is not a zip archive (removed); '
                                f'tried {urls}')
        part.rename(archive)
    digest = _sha256(archive)
    print(f'{archive}: {archive.stat().st_size} bytes, sha256 {digest}')
    if sha256 and digest != sha256.lower():
        raise DownloadError(f'{archive}: sha256 {digest}, expected {sha256}; delete it and '
                            f'download again')
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in tqdm(zf.infolist(), desc='unzipping', unit='file',
                               disable=not progress):
                zf.extract(member, dest)  # checks each member's CRC; no paths outside dest
    except zipfile.BadZipFile as exc:
        raise DownloadError(f'{archive} is corrupt ({exc}); delete it and download again') \
            from None
    root = _egohands_root_in(dest)
    if root is None:
        raise DownloadError(f'{archive} holds no _LABELLED_SAMPLES folder: not EgoHands')
    return root
