"""Several run files as one run: what may be merged, and the merged streams of cases and tests.

Shards merge when they audited the same model (weights identity) with the same method and the same
verdict-affecting settings (:data:`~.layout.VERDICT_SETTINGS`); anything else is a :class:`Refusal`
saying which file differs from which, in what. A test may appear in several shards only with the
same result (a rerun of the same code on the same model): its entry and its cases, figures aside,
must be identical; it then counts once.

Every file is sorted by node id (:mod:`.layout`), so the merged streams are a k-way merge of the
files, one entry per file in memory: the merge never holds the run. The first file (in command-line
order) that has a test owns it; its copies in later files are skipped.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, cast

from ..records import FinishedTest, ObjectRow
from .layout import VERDICT_SETTINGS
from .reader import RunFile, RunFileError


class Refusal(Exception):
    """The shards cannot be merged into one run; the message says why and what to do."""


def open_shards(paths: Iterable[str | Path], expect: int | None = None) -> list[RunFile]:
    """Open and fully check every shard, then check that they are one run; raises :class:`Refusal`."""
    unique: list[Path] = []
    for p in (Path(x) for x in paths):
        if all(p.resolve() != q.resolve() for q in unique):
            unique.append(p)
    if expect is not None and len(unique) < expect:
        raise Refusal(f"expected {expect} shards (--expect-shards), got {len(unique)}: {', '.join(map(str, unique)) or 'none'}; "
                      "did a shard's job fail before it uploaded its JSON?")
    try:
        shards = [RunFile(p) for p in unique]
        for shard in shards:
            shard.verify()
    except RunFileError as exc:
        raise Refusal(str(exc)) from None
    check_compatible(shards)
    check_duplicates(shards)
    return shards


def _value(shard: RunFile, path: tuple[str, ...]) -> Any:
    value: Any = shard.run
    for key in path:
        value = (value or {}).get(key)
    return value


def _check_same(shards: list[RunFile], what: str, path: tuple[str, ...]) -> None:
    first = shards[0]
    base = _value(first, path)
    for other in shards[1:]:
        if json.dumps(_value(other, path), sort_keys=True, default=str) != json.dumps(base, sort_keys=True, default=str):
            raise Refusal(f"{other.path} has {what} {_value(other, path)!r} but {first.path} has {base!r}: shards of different "
                          "models, methods or verdict-affecting settings are not one run; run every shard with the same ones")


def check_compatible(shards: list[RunFile]) -> None:
    """Same model identity (where a shard knows it), model, method and verdict-affecting settings; else :class:`Refusal`."""
    _check_same([s for s in shards if s.run.get("identity")] or shards[:1], "model identity (weights hash)", ("identity",))
    for key in ("model", "method"):
        _check_same(shards, key, (key,))
    for key in VERDICT_SETTINGS:
        _check_same(shards, f"setting {key}", ("settings", key))


def _tagged(entries: Iterator[dict[str, Any]], index: int) -> Iterator[tuple[dict[str, Any], int]]:
    for entry in entries:
        yield entry, index


def _digest(tests: list[dict[str, Any]], cases: list[dict[str, Any]]) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for entry in [*tests, *({k: v for k, v in c.items() if k != "figures"} for c in cases)]:
        h.update(json.dumps(entry, sort_keys=True).encode())
    return h.digest()


def _results(index: int, shard: RunFile) -> Iterator[tuple[str, int, bytes, str]]:
    """``(nodeid, index, digest of its test entries and cases, outcome)`` per node id of ``shard``, in order."""
    tests = ((t["nodeid"], 0, t) for t in shard.tests())
    cases = ((c["nodeid"], 1, c) for c in shard.cases())
    for nodeid, group in itertools.groupby(heapq.merge(tests, cases, key=lambda x: (x[0], x[1])), key=lambda x: x[0]):
        entries = list(group)
        ts, cs = [e[2] for e in entries if e[1] == 0], [e[2] for e in entries if e[1] == 1]
        outcome = "/".join(sorted({str(t.get("outcome")) for t in ts})) or "no result"
        yield str(nodeid), index, _digest(ts, cs), outcome


def check_duplicates(shards: list[RunFile]) -> None:
    """A test in several shards must have the same result in each (figures aside); else :class:`Refusal`."""
    merged = heapq.merge(*(_results(i, s) for i, s in enumerate(shards)), key=lambda r: (r[0], r[1]))
    for nodeid, group in itertools.groupby(merged, key=lambda r: r[0]):
        first, *others = list(group)
        for other in others:
            if other[2] != first[2]:
                a, b = shards[first[1]].path, shards[other[1]].path
                what = (f"{first[3]} in {a}, {other[3]} in {b}" if first[3] != other[3]
                        else f"{first[3]} in both, with different measurements in {a} and {b}")
                raise Refusal(f"test {nodeid} has different results: {what}; an identical rerun merges, a different one "
                              "cannot (which is right?): rerun the shards from one commit and one model")


def _owned(stream: Iterator[tuple[dict[str, Any], int]]) -> Iterator[tuple[dict[str, Any], int]]:
    """Entries of the node id's first shard only (the others are identical copies, checked)."""
    nodeid, owner = None, -1
    for entry, index in stream:
        if entry["nodeid"] != nodeid:
            nodeid, owner = entry["nodeid"], index
        if index == owner:
            yield entry, index


def merged_cases(shards: list[RunFile]) -> Iterator[tuple[dict[str, Any], RunFile]]:
    """Every case once, in ``(nodeid, name)`` order, with the shard it came from (its figures are there)."""
    streams = [_tagged(s.cases(), i) for i, s in enumerate(shards)]
    for case, index in _owned(heapq.merge(*streams, key=lambda e: (e[0]["nodeid"], e[0]["name"], e[1]))):
        yield case, shards[index]


def merged_tests(shards: list[RunFile]) -> Iterator[FinishedTest]:
    """Every test once, in node-id order (each a test line of a run file, read back as written)."""
    streams = [_tagged(s.tests(), i) for i, s in enumerate(shards)]
    for test, _ in _owned(heapq.merge(*streams, key=lambda e: (e[0]["nodeid"], e[1]))):
        yield cast("FinishedTest", test)


class MergedRows:
    """The gate inputs of every test once, in node-id order; iterable any number of times (each pass reads the files)."""

    def __init__(self, shards: list[RunFile]) -> None:
        self.shards = shards

    def __iter__(self) -> Iterator[ObjectRow]:
        for test in merged_tests(self.shards):
            yield from test.get("objects") or []
