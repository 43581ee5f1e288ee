"""The report's side files: safe names, atomic writes, and pruning of files no report uses.

A report ``out/report.html`` keeps its pictures and stylesheet in ``out/report_files/`` (the
layout browsers use for "save page as"). Every side file is named by its content —
``<slug>-<sha1[:16]>.<ext>``, the slug made from the case name with only ``[A-Za-z0-9_-]`` kept —
so a case name can never point outside the folder (no ``..``, no separators, no leading dot), two
cases never overwrite each other, and an unchanged picture is not rewritten.

Writing is ordered so that a reader never sees a report whose pictures are missing: new side files
first (each through :func:`pytest_camaudit.fileio.atomic_write`), then the HTML (same), then the old
files that the new HTML no longer references are removed.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path

from ..fileio import atomic_write

SLUG_CHARS = re.compile(r"[^A-Za-z0-9_-]+")
SIDE_FILE = re.compile(r"^[A-Za-z0-9_-]+-[0-9a-f]{16}\.(png|jpg|webp|css)$")
"""Names this module creates; only such files are ever pruned from a report's folder."""


def assets_dir(report: Path) -> Path:
    """``out/report.html`` → ``out/report_files``."""
    return report.with_name(f"{report.stem}_files")


def slug(text: str, limit: int = 40) -> str:
    """A file-name-safe slug of ``text``: ``[A-Za-z0-9_-]`` only, at most ``limit`` characters."""
    s = SLUG_CHARS.sub("-", text).strip("-_")[:limit].strip("-_")
    return s or "x"


def side_file_name(stem: str, data: bytes, ext: str, tag: str = "") -> str:
    """``<slug(stem)>[-tag]-<sha1(data)[:16]>.<ext>`` (``ext`` one of png, jpg, webp, css; ``tag`` ``[a-z]*``)."""
    if ext not in ("png", "jpg", "webp", "css"):
        raise ValueError(f"unsupported side file type {ext!r}; expected png, jpg, webp or css")
    if not re.fullmatch(r"[a-z]*", tag):
        raise ValueError(f"side file tag must be lowercase letters, got {tag!r}")
    return f"{slug(stem)}{'-' + tag if tag else ''}-{hashlib.sha1(data).hexdigest()[:16]}.{ext}"


def write_side_files(folder: Path, files: Mapping[str, bytes | Path]) -> None:
    """Write each ``name → bytes`` (or copy ``name → file``) into ``folder`` (created), skipping names already there.

    Names are content hashes, so an existing file of that name already holds these bytes. A file
    is hard-linked where the filesystem allows, else copied (atomically, like bytes).

    Raises:
        ValueError: a name that :func:`side_file_name` would not produce (a path, ``..``…).
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        write_side_file(folder, name, data)


def write_side_file(folder: Path, name: str, data: bytes | Path) -> None:
    """One file of :func:`write_side_files` into an existing ``folder``."""
    if not SIDE_FILE.match(name):
        raise ValueError(f"refusing side file name {name!r}: not a name made by side_file_name()")
    target = folder / name
    if target.is_file():
        return
    if isinstance(data, Path):
        _link_or_copy(data, target)
    else:
        atomic_write(target, data)


class SideFolder:
    """A side folder being (re)written by a streaming writer: files go in as they come, and the
    folder's earlier files that this write does not use are removed at the end (:meth:`prune`).

    Only the earlier files' names are held (none for a new folder), never the new ones, so
    writing a folder of any size takes constant memory.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.stale = {e.name for e in folder.iterdir() if SIDE_FILE.match(e.name) and e.is_file()}

    def put(self, name: str, data: bytes | Path) -> None:
        """Write (or link) ``name`` unless it is there; it is kept."""
        write_side_file(self.folder, name, data)
        self.stale.discard(name)

    def keep(self, name: str) -> None:
        """``name`` (already in the folder) is used by this write."""
        self.stale.discard(name)

    def prune(self) -> int:
        """Remove the earlier files this write did not use; returns how many."""
        for name in self.stale:
            (self.folder / name).unlink(missing_ok=True)
        n, self.stale = len(self.stale), set()
        return n


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        atomic_write(target, lambda fh: fh.write(source.read_bytes()))


def prune_side_files(folder: Path, keep: set[str]) -> int:
    """Remove this module's files in ``folder`` that are not in ``keep``; returns how many."""
    if not folder.is_dir():
        return 0
    removed = 0
    for entry in folder.iterdir():
        if entry.name not in keep and SIDE_FILE.match(entry.name) and entry.is_file():
            entry.unlink(missing_ok=True)
            removed += 1
    return removed
