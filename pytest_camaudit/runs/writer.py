"""Write a run file (:mod:`.layout`) line by line, its figures linked into the folder beside it.

Nothing is held but the current entry: cases and tests arrive as iterables (sorted by the caller),
each case with the folder its figure files are in. Figures are hard-linked (copied where links
are not possible) into ``<stem>_figures/`` beside the file, before the file itself appears
(atomically); figure files of an earlier run that the new file no longer names are then removed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from ..fileio import atomic_writer
from ..records import RunHeader
from ..report.files import SIDE_FILE, SideFolder
from .layout import FORMAT, plain

HEADER_KEYS = ("run", "totals", "gates", "per_class", "tables", "discovery")
"""The header's keys after ``format``, in the order they are written."""


def figures_dir(path: str | Path) -> Path:
    """``out/shard-1.json`` → ``out/shard-1_figures`` (kept apart from a report's ``_files`` folder)."""
    p = Path(path)
    return p.with_name(f"{p.stem}_figures")


def _dumps(value: Any) -> bytes:
    return json.dumps(plain(value), ensure_ascii=False, allow_nan=False, default=str).encode("utf-8")


class _Section:
    """Writes ``"name": [`` then one entry per line, each but the last followed by a comma."""

    def __init__(self, fh: BinaryIO, name: str) -> None:
        self.fh = fh
        self.pending: bytes | None = None
        self.count = 0
        fh.write(f'"{name}": [\n'.encode())

    def add(self, entry: Mapping[str, Any]) -> None:
        if self.pending is not None:
            self.fh.write(self.pending + b",\n")
        self.pending = _dumps(entry)
        self.count += 1

    def close(self) -> int:
        if self.pending is not None:
            self.fh.write(self.pending + b"\n")
        self.fh.write(b"],\n")
        return self.count


class RunWriter:
    """Streams one run file to ``path``; :meth:`write` does it all.

    Attributes:
        path: the run file.
        folder: its figure folder.
        missing: figure files that could not be linked (their source was gone).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.folder = figures_dir(self.path)
        self.missing: list[str] = []
        self._same: dict[Path, bool] = {}

    def _figures(self, side: SideFolder, case: dict[str, Any], source: Path | None) -> None:
        for f in case.get("figures", []):
            for name in (f.get("file"), f.get("thumb_file")):
                if not name or not SIDE_FILE.match(str(name)):
                    continue
                if source is not None and self._same.setdefault(source, source.resolve() == self.folder.resolve()):
                    side.keep(name)
                    continue
                try:
                    if source is None:
                        raise FileNotFoundError(name)
                    side.put(name, source / name)
                except OSError:
                    self.missing.append(name)

    def write(self, header: RunHeader, cases: Iterable[tuple[dict[str, Any], Path | None]], tests: Iterable[Mapping[str, Any]]) -> Path:
        """Write ``header`` (:data:`HEADER_KEYS`), ``cases`` (case line, its figure folder) and ``tests``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        side = SideFolder(self.folder)
        with atomic_writer(self.path) as fh:
            fh.write(b'{"format": ' + _dumps(FORMAT) + b",\n")
            for key in HEADER_KEYS:
                fh.write(_dumps(key) + b": " + _dumps(header.get(key)) + b",\n")
            section = _Section(fh, "cases")
            for case, source in cases:
                self._figures(side, case, source)
                section.add(case)
            n_cases = section.close()
            section = _Section(fh, "tests")
            for test in tests:
                section.add(test)
            n_tests = section.close()
            fh.write(b'"end": ' + _dumps({"cases": n_cases, "tests": n_tests}) + b"}\n")
        side.prune()
        return self.path


def with_folder(cases: Iterable[dict[str, Any]], folder: Path | None) -> Iterator[tuple[dict[str, Any], Path | None]]:
    """Pair every case line with the one folder its figures are in."""
    for case in cases:
        yield case, folder
