"""``StashKey``s shared by the hooks and the fixtures (kept apart so neither imports the other)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ..audit.auditor import Auditor
    from .collector import RunCollector
    from .options import Settings

SETTINGS: pytest.StashKey[Settings] = pytest.StashKey()
"""``config.stash``: the resolved :class:`~pytest_camaudit.plugin.options.Settings`."""

COLLECTOR: pytest.StashKey[RunCollector] = pytest.StashKey()
"""``config.stash``: the run's :class:`~pytest_camaudit.plugin.collector.RunCollector` (controller side)."""

AUDITOR: pytest.StashKey[Auditor] = pytest.StashKey()
"""``item.stash``: the test's :class:`~pytest_camaudit.audit.auditor.Auditor`, set by the ``camaudit`` fixture."""
