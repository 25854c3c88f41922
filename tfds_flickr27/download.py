"""Where the archive comes from: a local file when there is one, else a download.

:func:`archive_path` is the one way to it, for the builder (with TFDS's download manager,
which checks ``checksums.tsv``) and for the demo (with :func:`download_file`, a plain
download with a timeout). :func:`link_manual_dir` makes a manual dir out of any local
copy of the archive, whatever its file name.
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tfds_flickr27.names import ARCHIVE_NAME, URL

DOWNLOAD_TIMEOUT_S = 20


def download_file(url: str, target: str | os.PathLike, timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Downloads ``url`` to ``target`` atomically (a ``.partial`` file renamed at the end)."""
    target = Path(target)
    partial = target.with_name(target.name + ".partial")
    target.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url, timeout=timeout) as response, partial.open("wb") as out:
        shutil.copyfileobj(response, out, length=1 << 20)
    partial.rename(target)
    return target


class MissingArchiveError(FileNotFoundError):
    """A manual dir the user named does not hold the archive (nothing was downloaded)."""


def missing_archive_message(manual_dir) -> str:
    """Why ``manual_dir`` is no source of the archive: the file expected, what the
    folder holds instead (a few names), and what to do."""
    try:
        names = sorted(entry.name for entry in Path(manual_dir).iterdir())
    except OSError as error:
        held = f"it cannot be read ({error.strerror or error})"
    else:
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        held = f"it holds {shown}" if names else "it is empty"
    return (
        f"flickr_logos27: the manual dir {manual_dir} has no {ARCHIVE_NAME} (expected "
        f"{Path(manual_dir) / ARCHIVE_NAME}; {held}); put the archive there under that "
        "name (tfds_flickr27.download.link_manual_dir links any copy), or give no manual "
        "dir to download it"
    )


def archive_path(
    manual_dir,
    download: Callable[[str], os.PathLike] | None = None,
    *,
    required: bool = False,
):
    """The archive: ``manual_dir/flickr_logos_27_dataset.tar.gz`` when that file is there,
    else ``download(URL)``.

    ``manual_dir`` is a directory (``str``, :class:`pathlib.Path` or an ``etils`` path) or
    ``None``. ``required``: the user named ``manual_dir``, so a manual dir without the
    archive is a :class:`MissingArchiveError` saying so, and nothing is downloaded.
    ``download`` defaults to :func:`download_file` into ``manual_dir`` (so the next call
    finds the local file). Download errors propagate unchanged.
    """
    if isinstance(manual_dir, str):
        manual_dir = Path(manual_dir)
    if manual_dir is not None and (manual_dir / ARCHIVE_NAME).exists():
        return manual_dir / ARCHIVE_NAME
    if required and manual_dir is not None:
        raise MissingArchiveError(missing_archive_message(manual_dir))
    if download is None:
        if manual_dir is None:
            raise ValueError("archive_path: the default download needs a manual_dir to write to")
        return download_file(URL, manual_dir / ARCHIVE_NAME)
    return download(URL)


def link_manual_dir(archive: str | os.PathLike, directory: str | os.PathLike) -> Path:
    """Makes ``directory`` a TFDS manual dir holding ``archive`` under the official file
    name (a symlink, replaced if there is one); returns ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    link = directory / ARCHIVE_NAME
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(Path(archive).resolve())
    return directory
