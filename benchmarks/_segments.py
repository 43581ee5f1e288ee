"""Where a whole run's time per scene goes: a pytest plugin for ``bench_whole_run.py --segments``.

Loaded with ``-p _segments`` (this folder on ``PYTHONPATH``), it wraps the plugin's pieces (the
image's load, the hooked forward and the model inside it, the data-driven checks, the map, the
masses, the records) and pytest's phases with wall-clock timers, and prints each one's mean
milliseconds per scene from the second test on (the first loads the detector) when the session
ends. Pieces nest: ``call`` holds ``audit`` and ``check``, ``audit`` holds ``capture``, which holds
``model``. The benchmark's bare script times its model and read alike.
Wrapping costs about a microsecond per call, far below what is measured.
"""

from __future__ import annotations

import functools
import importlib
import sys
import time
from collections import defaultdict
from collections.abc import Generator
from typing import Any

import pytest

PIECES = [
    ("pytest_camaudit.engine.images", "load_image", "load_image"),
    ("pytest_camaudit.audit.auditor", "Auditor.audit", "audit"),
    ("pytest_camaudit.engine.engine", "CamEngine._capture", "capture"),
    ("pytest_camaudit.detectors.family", "Family.run", "model"),
    ("pytest_camaudit.dataset.entries", "CaseEntry.check", "check"),
    ("pytest_camaudit.audit.casebase", "cam_for", "map"),
    ("pytest_camaudit.dataset.checks", "box_mass", "box_mass"),
    ("pytest_camaudit.dataset.checks", "region_mass", "outline mass"),
    ("pytest_camaudit.datatypes", "PolygonOutline.mask", "outline fill"),
    ("pytest_camaudit.dataset.checks", "assert_detected", "assert_detected"),
    ("pytest_camaudit.dataset.checks", "object_row", "object_row"),
    ("pytest_camaudit.plugin.reports", "case_records", "records"),
    ("pytest_camaudit.audit.auditor", "Auditor.release", "release"),
    ("pytest_camaudit.plugin.fixtures", "give_back_memory", "malloc_trim"),
]
"""``(module, attribute, label)`` of each timed piece."""

_totals: defaultdict[str, float] = defaultdict(float)
_tests = 0


def _timed(f: Any, label: str) -> Any:
    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _tests < 2:
            return f(*args, **kwargs)
        t = time.perf_counter()
        try:
            return f(*args, **kwargs)
        finally:
            _totals[label] += time.perf_counter() - t

    return wrapper


def pytest_configure(config: pytest.Config) -> None:
    for module, attribute, label in PIECES:
        owner: Any = importlib.import_module(module)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        setattr(owner, name, _timed(getattr(owner, name), label))


def _phase(label: str) -> Any:
    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def hook(**kwargs: Any) -> Generator[None, Any, Any]:
        t = time.perf_counter()
        try:
            return (yield)
        finally:
            if _tests >= 2:
                _totals[label] += time.perf_counter() - t

    return hook


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, Any, Any]:
    global _tests
    _tests += 1
    t = time.perf_counter()
    try:
        return (yield)
    finally:
        if _tests >= 2:
            _totals["whole test"] += time.perf_counter() - t


pytest_runtest_setup = _phase("setup")
pytest_runtest_call = _phase("call")
pytest_runtest_teardown = _phase("teardown")


def pytest_sessionfinish(session: pytest.Session) -> None:
    n = _tests - 1
    if n < 1:
        return
    lines = [f"segments per scene ({n} scenes, from the second):"]
    lines += [f"  {label:16} {seconds / n * 1000:7.2f} ms" for label, seconds in sorted(_totals.items(), key=lambda kv: -kv[1])]
    sys.stderr.write("\n" + "\n".join(lines) + "\n")

