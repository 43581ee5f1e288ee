"""``StashKey``s shared by the hooks and the fixtures (kept apart so neither imports the other)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .auditor import Auditor
    from .options import Settings
    from .session import RunCollector

SETTINGS = pytest.StashKey["Settings"]()
"""``config.stash``: the resolved :class:`~pytest_camaudit.options.Settings`."""

COLLECTOR = pytest.StashKey["RunCollector"]()
"""``config.stash``: the run's :class:`~pytest_camaudit.session.RunCollector` (controller side)."""

AUDITOR = pytest.StashKey["Auditor"]()
"""``item.stash``: the test's :class:`~pytest_camaudit.auditor.Auditor`, set by the ``camaudit`` fixture."""
