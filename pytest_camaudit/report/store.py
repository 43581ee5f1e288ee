"""Figures streamed to disk as each case finishes, so a run's memory does not grow with its failures.

A finished case's figures arrive (on its test report, from an xdist worker or from this process) as
encoded bytes in its :class:`~pytest_camaudit.records.FigureRecord` s. :meth:`FigureStore.put`
writes them into the run's figure folder under content-hashed names (the report's side-file
names, :func:`~pytest_camaudit.report.files.side_file_name`) and returns the record with the bytes
replaced by those names. The folder is the report's side folder when there is a report, so writing
the report at the end only links what is already there.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from pathlib import Path

from ..records import FigureRecord
from .files import side_file_name, write_side_files

_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


class FigureStore:
    """A folder of a run's figures (created on first use).

    Attributes:
        folder: where the files go.
        written: how many figures were stored.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.written = 0

    def put(self, case_name: str, figure: FigureRecord) -> FigureRecord:
        """Write ``figure``'s full-size picture and thumbnail; the record naming the files instead.

        A record that already names its files, or carries no picture, is returned as it is. Bytes
        that are not base64 leave the record unchanged (the report then says the figure is broken).
        """
        if figure.file or not figure.png:
            return figure
        try:
            full = base64.b64decode(figure.png, validate=True)
            thumb = base64.b64decode(figure.thumb, validate=True) if figure.thumb else b""
        except (binascii.Error, ValueError):
            return figure
        stem = f"{case_name}-{figure.name}"
        files = {side_file_name(stem, full, _EXT.get(figure.mime, "png")): full}
        if thumb:
            files[side_file_name(stem, thumb, "jpg", "thumb")] = thumb
        write_side_files(self.folder, files)
        self.written += 1
        names = list(files)
        return dataclasses.replace(figure, png="", thumb="", file=names[0], thumb_file=names[1] if thumb else "")

    def path(self, name: str) -> Path:
        """Where the stored file ``name`` is."""
        return self.folder / name
