"""A pytest plugin for ``bench_memory.py``: after each test, append ``<tests done> <VmRSS MB>`` to
the file named by ``$CAMAUDIT_RSS_LOG``, so growth is measured against tests (images) done rather
than seconds elapsed. Loaded with ``-p _rss_probe`` (this folder on ``PYTHONPATH``)."""

from __future__ import annotations

import os

_done = 0


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def pytest_runtest_logfinish(nodeid: str, location: object) -> None:
    global _done
    _done += 1
    path = os.environ.get("CAMAUDIT_RSS_LOG")
    if path:
        with open(path, "a") as f:
            f.write(f"{_done} {_rss_mb():.1f}\n")
