"""``python -m pytest_camaudit merge SHARD.json... --report=report.html``: see :mod:`pytest_camaudit.runs.cli`."""

from __future__ import annotations

import sys

from .runs.cli import main

if __name__ == "__main__":
    sys.exit(main())
