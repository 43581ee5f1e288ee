"""Read a run file (:mod:`.layout`) as a stream: the header at once, cases and tests one line at a time.

Each pass over the cases or the tests opens the file again and parses one line at a time, so a
reader holds one entry, never the run. Anything that is not a complete run file of this format is
a :class:`RunFileError` naming the file and the line: a foreign or older format, a corrupt entry,
entries out of order, a file cut short (no closing line, or fewer entries than it says).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from .layout import FORMAT
from .writer import HEADER_KEYS, figures_dir

_START = b'{"format": '


class RunFileError(Exception):
    """A file that cannot be read as a complete run file; the message says which line and why."""


class RunFile:
    """One run file.

    Attributes:
        path: the file.
        folder: the folder of its figures.
        header: ``format`` and :data:`~.writer.HEADER_KEYS` (``run``, ``totals``, ``gates``, ``per_class``, ``tables``).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.folder = figures_dir(self.path)
        self.header = self._read_header()

    @property
    def run(self) -> dict[str, Any]:
        return dict(self.header.get("run") or {})

    def _open(self) -> BinaryIO:
        try:
            return self.path.open("rb")
        except OSError as exc:
            raise RunFileError(f"cannot read {self.path}: {exc.strerror or exc}") from None

    def _fail(self, lineno: int, why: str, line: bytes = b"") -> RunFileError:
        shown = f": {line[:80].decode('utf-8', 'replace')!r}" if line else ""
        return RunFileError(f"{self.path}:{lineno}: {why}{shown}")

    def _truncated(self, lineno: int) -> RunFileError:
        return RunFileError(f"{self.path} is truncated after line {lineno}: its closing line is missing "
                            "(was the shard killed, or the artifact cut short? run that shard again)")

    def _read_header(self) -> dict[str, Any]:
        header: dict[str, Any] = {}
        with self._open() as fh:
            first = fh.readline()
            if not first.startswith(_START):
                raise RunFileError(f"{self.path} is not a pytest-camaudit run file (it does not begin with {_START.decode()}…)")
            lineno, line = 1, b"{" + first[1:]
            while line != b'"cases": [\n':
                if not line:
                    raise self._truncated(lineno - 1)
                try:
                    header.update(json.loads(b"{" + line.lstrip(b"{").rstrip(b",\n") + b"}"))
                except ValueError as exc:
                    raise self._fail(lineno, f"corrupt header ({exc})", line) from None
                if lineno == 1 and header.get("format") != FORMAT:
                    raise RunFileError(f"{self.path} has format {header.get('format')!r}; this version reads {FORMAT!r} "
                                       "(write the shards with --camaudit-json of the same pytest-camaudit version as the merge)")
                line, lineno = fh.readline(), lineno + 1
        missing = [k for k in HEADER_KEYS if k not in header]
        if missing:
            raise RunFileError(f"{self.path}: the header lacks {', '.join(missing)}")
        return header

    def _entries(self, fh: BinaryIO, lineno: int, name: str) -> Iterator[tuple[int, dict[str, Any]]]:
        """The entries of section ``name`` from the open file, positioned anywhere before it."""
        opening = f'"{name}": [\n'.encode()
        line = fh.readline()
        while line != opening:
            if not line:
                raise self._truncated(lineno)
            line, lineno = fh.readline(), lineno + 1
        lineno += 1
        line = fh.readline()
        while line != b"],\n":
            if not line.endswith(b"\n"):
                raise self._truncated(lineno - 1)
            try:
                entry = json.loads(line[:-2] if line.endswith(b",\n") else line)
            except ValueError as exc:
                raise self._fail(lineno, f"corrupt {name[:-1]} entry ({exc})", line) from None
            if not isinstance(entry, dict) or "nodeid" not in entry:
                raise self._fail(lineno, f"a {name[:-1]} entry must be an object with a nodeid", line)
            yield lineno, entry
            line, lineno = fh.readline(), lineno + 1

    def _ordered(self, name: str, key: Any) -> Iterator[dict[str, Any]]:
        with self._open() as fh:
            last = None
            for lineno, entry in self._entries(fh, 0, name):
                k = key(entry)
                if last is not None and k < last:
                    raise self._fail(lineno, f"{name} out of node-id order (a run file is written sorted)")
                last = k
                yield entry

    def cases(self) -> Iterator[dict[str, Any]]:
        """Every case line, in ``(nodeid, name)`` order."""
        return self._ordered("cases", lambda c: (str(c["nodeid"]), str(c.get("name", ""))))

    def tests(self) -> Iterator[dict[str, Any]]:
        """Every test line, in node-id order."""
        return self._ordered("tests", lambda t: str(t["nodeid"]))

    def verify(self) -> tuple[int, int]:
        """Read the whole file once: every line must parse and the closing line must match the counts.

        Returns:
            ``(cases, tests)``.
        """
        n_cases = sum(1 for _ in self.cases())
        n_tests = sum(1 for _ in self.tests())
        with self._open() as fh:
            fh.seek(max(0, self.path.stat().st_size - 4096))
            lines = fh.read().rsplit(b"\n", 2)
        end = lines[-2] if len(lines) >= 2 and lines[-1] == b"" else b""
        if not end.startswith(b'"end": '):
            raise self._truncated(n_cases + n_tests)
        try:
            counts = json.loads(b"{" + end + b"\n")["end"]
        except (ValueError, KeyError, TypeError):
            raise RunFileError(f"{self.path}: its closing line is corrupt: {end[:80]!r}") from None
        if counts != {"cases": n_cases, "tests": n_tests}:
            raise RunFileError(f"{self.path} says it holds {counts} but holds {n_cases} cases and {n_tests} tests")
        return n_cases, n_tests
